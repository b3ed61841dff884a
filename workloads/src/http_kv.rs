//! The `http-kv` client (docs/http-kv.md): JSON over HTTP, one path per key.
//!
//! Classification: a read is ok on 200 and fail on anything else. A write, cas or append is ok on 200;
//! fail on 409 `cas-mismatch`, 503 `not-leader`, any other 4xx, or when the connection could not be made;
//! info on 504 `timeout`, 500 `leadership-lost`, any other 5xx, a client-side timeout, or a connection error
//! after the request was sent.
//!
//! The set workload's `add` is an append of `"{element},"`; its final read splits the string.

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::completion::Completion;
use crate::http::{HttpConn, HttpTrouble};
use crate::workload::{Call, Op};

/// A client of one http-kv node.
#[derive(Debug)]
pub struct HttpKvClient {
    conn: HttpConn,
}

impl HttpKvClient {
    pub(crate) fn new(node: &str, timeout: Duration) -> HttpKvClient {
        HttpKvClient {
            conn: HttpConn::new(node, timeout),
        }
    }

    pub(crate) fn node(&self) -> &str {
        self.conn.node()
    }

    /// Like `call`, with each request and its answer.
    pub(crate) async fn call_traced(&mut self, op: &Op) -> (Completion, Vec<crate::exchange::Exchange>) {
        self.conn.record_exchanges();
        let done = self.call(op).await;
        (done, self.conn.take_exchanges())
    }

    pub(crate) async fn call(&mut self, op: &Op) -> Completion {
        let path = format!("/kv/{}", encode_segment(&op.key));
        let call = &op.call;
        let body = |v: Value| Some(v.to_string().into_bytes());
        let (method, path, body) = match call {
            Call::Read | Call::ReadSet => (Method::GET, path, None),
            Call::Write(v) => (Method::PUT, path, body(json!({ "value": v }))),
            Call::Cas(from, to) => (
                Method::POST,
                path + "/cas",
                body(json!({ "from": from, "to": to })),
            ),
            Call::Append(s) => (Method::POST, path + "/append", body(json!({ "value": s }))),
            Call::Add(e) => (
                Method::POST,
                path + "/append",
                body(json!({ "value": format!("{e},") })),
            ),
        };
        match self.conn.request(method, &path, body, &[]).await {
            Ok((status, bytes)) => {
                let body: Option<Value> = serde_json::from_slice(&bytes).ok();
                classify(call, status, body.as_ref())
                    .unwrap_or_else(|| Completion::unknown(call, "bad-response"))
            }
            Err(HttpTrouble::NotSent(e)) => Completion::fail(call, e),
            Err(HttpTrouble::Unknown(e)) => Completion::unknown(call, e),
        }
    }
}

/// Maps an answer to a completion; None when the body is needed but unusable.
fn classify(call: &Call, status: StatusCode, body: Option<&Value>) -> Option<Completion> {
    let code = || {
        body.and_then(|b| b.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("http-{}", status.as_u16()))
    };
    if status == StatusCode::OK {
        return match call {
            Call::Read => Some(Completion::ok(body?.get("value")?.clone())),
            Call::ReadSet => Some(Completion::ok(parse_set(body?.get("value")?)?)),
            _ => Some(Completion::done(call)),
        };
    }
    if call.is_read() {
        return Some(Completion::fail(call, code()));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE || status.is_client_error() {
        // 409 cas-mismatch, 503 not-leader, 400 bad-request: the server did nothing.
        return Some(Completion::fail(call, code()));
    }
    Some(Completion::unknown(call, code()))
}

/// The elements of a set stored as `"1,5,9,"`, sorted; None when the text is not such a list.
fn parse_set(v: &Value) -> Option<Value> {
    let text = match v {
        Value::Null => "",
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    let mut elements = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        elements.push(part.trim().parse::<i64>().ok()?);
    }
    elements.sort_unstable();
    Some(json!(elements))
}

/// Percent-encodes a key as one URL path segment.
pub(crate) fn encode_segment(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_keys_as_one_segment() {
        assert_eq!(encode_segment("k12"), "k12");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn classification_table() {
        let w = Call::Write(json!(1));
        let cas = Call::Cas(json!(1), json!(2));
        let err = |e: &str| json!({ "error": e });
        let kind =
            |c: &Call, s: u16, b: Value| classify(c, StatusCode::from_u16(s).unwrap(), Some(&b)).unwrap();
        use checker::EventType::*;
        assert_eq!(
            kind(&Call::Read, 200, json!({"value": 3})),
            Completion::ok(json!(3))
        );
        assert_eq!(kind(&Call::Read, 504, err("timeout")).kind, Fail);
        assert_eq!(kind(&w, 200, json!({"ok": true})), Completion::ok(json!(1)));
        assert_eq!(
            kind(&cas, 409, err("cas-mismatch")).error.as_deref(),
            Some("cas-mismatch")
        );
        assert_eq!(kind(&cas, 409, err("cas-mismatch")).kind, Fail);
        assert_eq!(kind(&w, 503, err("not-leader")).kind, Fail);
        assert_eq!(kind(&w, 400, err("bad-request")).kind, Fail);
        assert_eq!(kind(&w, 504, err("timeout")).kind, Info);
        assert_eq!(kind(&w, 500, err("leadership-lost")).kind, Info);
        assert_eq!(kind(&w, 502, json!(null)).error.as_deref(), Some("http-502"));
        assert_eq!(
            kind(&Call::ReadSet, 200, json!({"value": "5,1,"})),
            Completion::ok(json!([1, 5]))
        );
        assert_eq!(
            kind(&Call::ReadSet, 200, json!({"value": null})),
            Completion::ok(json!([]))
        );
    }
}
