//! What went over the wire for one operation, for `faultline probe`: each request a client sent, the answer
//! (or why there was none) and, for the templated `http` protocol, the rule that classified it. Clients
//! record exchanges only when asked ([`crate::NodeClient::call_traced`]); a run never does.

/// One request and its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// `PUT /k1` (HTTP) or `SET k1 1` (RESP).
    pub request: String,
    /// The HTTP request's body, when it had one.
    pub request_body: Option<String>,
    /// The answer, or why there was none (`connection-refused`, `client-timeout`, ...).
    pub answer: Result<Answer, String>,
    /// The rule that classified it (`client.write.rules[0]`), when a spec's rule did.
    pub rule: Option<String>,
}

/// An answer as it came.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// An HTTP status and body (as text, invalid UTF-8 replaced).
    Http { status: u16, body: String },
    /// A RESP reply in the wire's own notation: `+OK`, `-ERR ...`, `:1`, `$"bulk"`, `$nil`, `*[...]`.
    Resp(String),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Http { status, body } => write!(f, "HTTP {status} {:?}", shorten(body, 300)),
            Answer::Resp(r) => write!(f, "{}", shorten(r, 300)),
        }
    }
}

/// At most `max` characters of `s`, with `…` when cut.
fn shorten(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}
