//! The `resp` client: the Redis serialization protocol (RESP2) over TCP, one connection per client.
//!
//! Commands are argument arrays from the settings with `{key}`, `{value}`, `{from}`, `{to}` replaced.
//! Classification: a connection that cannot be made, or an error reply whose first word is in
//! `definite_errors`, is a definite failure; a cas answering `:0` or nil is a `cas-mismatch` failure; any
//! other error reply, a timeout or a broken connection after the command was sent is indeterminate (info
//! for writes, fail for reads). After any I/O problem the connection is dropped and made again next time.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::completion::{text_to_value, value_to_text, Completion};
use crate::exchange::{Answer, Exchange};
use crate::settings::RespSettings;
use crate::workload::{Call, Op};

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// A client of one RESP node.
#[derive(Debug)]
pub struct RespClient {
    node: String,
    timeout: Duration,
    settings: RespSettings,
    conn: Option<BufReader<TcpStream>>,
    /// Each command and its reply, while `call_traced` runs.
    exchanges: Option<Vec<Exchange>>,
}

/// Why an exchange produced no reply.
enum Trouble {
    /// The connection could not be made: nothing was sent.
    NotSent(String),
    /// The command may have been received.
    Unknown(String),
}

impl RespClient {
    pub(crate) fn new(node: &str, timeout: Duration, settings: RespSettings) -> RespClient {
        RespClient {
            node: node.to_string(),
            timeout,
            settings,
            conn: None,
            exchanges: None,
        }
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Like `call`, with the command sent and the reply.
    pub(crate) async fn call_traced(&mut self, op: &Op) -> (Completion, Vec<Exchange>) {
        self.exchanges = Some(Vec::new());
        let done = self.call(op).await;
        (done, self.exchanges.take().unwrap_or_default())
    }

    pub(crate) async fn call(&mut self, op: &Op) -> Completion {
        let call = &op.call;
        let (template, value, from, to) = match call {
            Call::Read => (
                &self.settings.read_command,
                String::new(),
                String::new(),
                String::new(),
            ),
            Call::ReadSet => (
                &self.settings.read_set_command,
                String::new(),
                String::new(),
                String::new(),
            ),
            Call::Write(v) => (
                &self.settings.write_command,
                value_to_text(v),
                String::new(),
                String::new(),
            ),
            Call::Cas(f, t) => (
                &self.settings.cas_command,
                String::new(),
                value_to_text(f),
                value_to_text(t),
            ),
            Call::Append(s) => (
                &self.settings.append_command,
                s.clone(),
                String::new(),
                String::new(),
            ),
            Call::Add(e) => (
                &self.settings.add_command,
                e.to_string(),
                String::new(),
                String::new(),
            ),
        };
        let args: Vec<String> = template
            .iter()
            .map(|a| {
                a.replace("{key}", &op.key)
                    .replace("{value}", &value)
                    .replace("{from}", &from)
                    .replace("{to}", &to)
            })
            .collect();
        let result = self.exchange(&args).await;
        if let Some(kept) = self.exchanges.as_mut() {
            kept.push(Exchange {
                request: command_text(&args),
                request_body: None,
                answer: match &result {
                    Ok(r) => Ok(Answer::Resp(notation(r))),
                    Err(Trouble::NotSent(e) | Trouble::Unknown(e)) => Err(e.clone()),
                },
                rule: None,
            });
        }
        let reply = match result {
            Ok(r) => r,
            Err(Trouble::NotSent(e)) => return Completion::fail(call, e),
            Err(Trouble::Unknown(e)) => return Completion::unknown(call, e),
        };
        self.classify(call, reply)
    }

    fn classify(&self, call: &Call, reply: Reply) -> Completion {
        if let Reply::Error(message) = &reply {
            let first = message.split_whitespace().next().unwrap_or("");
            let error = format!("resp-error: {message}");
            return if call.is_read() || self.settings.definite_errors.iter().any(|d| d == first) {
                Completion::fail(call, error)
            } else {
                Completion::unknown(call, error)
            };
        }
        match call {
            Call::Read => match reply {
                Reply::Bulk(None) | Reply::Array(None) => Completion::ok(Value::Null),
                Reply::Bulk(Some(b)) => Completion::ok(text_to_value(&b)),
                Reply::Simple(s) => Completion::ok(text_to_value(s.as_bytes())),
                Reply::Integer(i) => Completion::ok(json!(i)),
                other => Completion::fail(call, format!("unexpected reply {other:?}")),
            },
            Call::ReadSet => {
                let items = match reply {
                    Reply::Array(Some(items)) => items,
                    Reply::Array(None) | Reply::Bulk(None) => Vec::new(),
                    other => return Completion::fail(call, format!("unexpected reply {other:?}")),
                };
                let mut elements = Vec::with_capacity(items.len());
                for item in items {
                    let parsed = match &item {
                        Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).parse::<i64>().ok(),
                        Reply::Integer(i) => Some(*i),
                        _ => None,
                    };
                    match parsed {
                        Some(e) => elements.push(e),
                        None => return Completion::fail(call, format!("unexpected set element {item:?}")),
                    }
                }
                elements.sort_unstable();
                Completion::ok(json!(elements))
            }
            Call::Cas(..) => match reply {
                Reply::Integer(1) => Completion::done(call),
                Reply::Simple(s) if s.eq_ignore_ascii_case("OK") => Completion::done(call),
                Reply::Integer(0) | Reply::Bulk(None) | Reply::Array(None) => {
                    Completion::fail(call, "cas-mismatch")
                }
                other => Completion::unknown(call, format!("unexpected reply {other:?}")),
            },
            // A write, append or add that answered without an error took effect.
            _ => Completion::done(call),
        }
    }

    /// Sends one command and reads its reply, connecting first when needed.
    async fn exchange(&mut self, args: &[String]) -> Result<Reply, Trouble> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        if self.conn.is_none() {
            let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(&self.node)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(Trouble::NotSent(format!("connection-refused: {e}"))),
                Err(_) => return Err(Trouble::NotSent("connect-timeout".into())),
            };
            let _ = stream.set_nodelay(true);
            self.conn = Some(BufReader::new(stream));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Trouble::NotSent("no connection".into()));
        };
        let request = encode_command(args);
        let result = tokio::time::timeout_at(deadline, async {
            conn.get_mut()
                .write_all(&request)
                .await
                .map_err(|e| format!("connection error: {e}"))?;
            read_reply(conn).await
        })
        .await;
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.conn = None;
                Err(Trouble::Unknown(e))
            }
            Err(_) => {
                self.conn = None;
                Err(Trouble::Unknown("client-timeout".into()))
            }
        }
    }
}

/// Sends one command on a new connection to `address` and reads its reply, all within `timeout`, for probes
/// (readiness, the leader, membership actions). `Ok(Ok(text))`: the reply as text (a simple or bulk string as
/// it is, an integer as its digits, nil as empty, an array's items one per line); `Ok(Err(message))`: an
/// error reply; `Err(problem)`: no reply (refused, timed out, broken, not RESP).
pub async fn query(
    address: &str,
    args: &[String],
    timeout: Duration,
) -> Result<Result<String, String>, String> {
    let exchange = async {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| format!("connection-refused: {e}"))?;
        let mut conn = BufReader::new(stream);
        conn.get_mut()
            .write_all(&encode_command(args))
            .await
            .map_err(|e| format!("connection error: {e}"))?;
        read_reply(&mut conn).await
    };
    let reply = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| "timeout".to_string())??;
    Ok(match reply {
        Reply::Error(e) => Err(e),
        other => Ok(reply_text(&other)),
    })
}

/// A command as a person types it: its arguments separated by spaces, those that hold white space or are
/// empty quoted.
fn command_text(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) || a.contains('"') {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A reply in the wire's own notation: `+OK`, `-ERR ...`, `:1`, `$"bulk"`, `$nil`, `*[...]`, `*nil`.
fn notation(r: &Reply) -> String {
    match r {
        Reply::Simple(s) => format!("+{s}"),
        Reply::Error(e) => format!("-{e}"),
        Reply::Integer(i) => format!(":{i}"),
        Reply::Bulk(Some(b)) => format!("${:?}", String::from_utf8_lossy(b)),
        Reply::Bulk(None) => "$nil".into(),
        Reply::Array(None) => "*nil".into(),
        Reply::Array(Some(items)) => {
            format!("*[{}]", items.iter().map(notation).collect::<Vec<_>>().join(", "))
        }
    }
}

fn reply_text(r: &Reply) -> String {
    match r {
        Reply::Simple(s) | Reply::Error(s) => s.clone(),
        Reply::Integer(i) => i.to_string(),
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
        Reply::Bulk(None) | Reply::Array(None) => String::new(),
        Reply::Array(Some(items)) => items.iter().map(reply_text).collect::<Vec<_>>().join("\n"),
    }
}

/// A command as a RESP array of bulk strings.
pub(crate) fn encode_command(args: &[String]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply (nested arrays up to a small depth).
pub(crate) async fn read_reply<R: tokio::io::AsyncBufRead + Unpin + Send>(
    r: &mut R,
) -> Result<Reply, String> {
    read_reply_depth(r, 0).await
}

fn read_reply_depth<'a, R: tokio::io::AsyncBufRead + Unpin + Send>(
    r: &'a mut R,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, String>> + Send + 'a>> {
    Box::pin(async move {
        if depth > 8 {
            return Err("protocol error: replies nested too deep".into());
        }
        let line = read_line(r).await?;
        let (tag, rest) = line.split_at(1.min(line.len()));
        let int = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| format!("protocol error: bad length {s:?}"))
        };
        match tag {
            "+" => Ok(Reply::Simple(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            ":" => Ok(Reply::Integer(int(rest)?)),
            "$" => {
                let n = int(rest)?;
                if n < 0 {
                    return Ok(Reply::Bulk(None));
                }
                if n > 512 * 1024 * 1024 {
                    return Err("protocol error: bulk string too large".into());
                }
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf)
                    .await
                    .map_err(|e| format!("connection error: {e}"))?;
                buf.truncate(n as usize);
                Ok(Reply::Bulk(Some(buf)))
            }
            "*" => {
                let n = int(rest)?;
                if n < 0 {
                    return Ok(Reply::Array(None));
                }
                let mut items = Vec::with_capacity((n as usize).min(1024));
                for _ in 0..n {
                    items.push(read_reply_depth(r, depth + 1).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(format!("protocol error: unexpected reply line {line:?}")),
        }
    })
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<String, String> {
    let mut line = Vec::new();
    let n = r
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("connection error: {e}"))?;
    if n == 0 {
        return Err("connection closed".into());
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| "protocol error: reply line is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_replies() {
        let input: &[u8] = b"+OK\r\n-ERR x y\r\n:5\r\n$3\r\nabc\r\n$-1\r\n*2\r\n$1\r\n1\r\n:2\r\n*-1\r\n";
        let mut r = BufReader::new(input);
        assert_eq!(read_reply(&mut r).await.unwrap(), Reply::Simple("OK".into()));
        assert_eq!(read_reply(&mut r).await.unwrap(), Reply::Error("ERR x y".into()));
        assert_eq!(read_reply(&mut r).await.unwrap(), Reply::Integer(5));
        assert_eq!(
            read_reply(&mut r).await.unwrap(),
            Reply::Bulk(Some(b"abc".to_vec()))
        );
        assert_eq!(read_reply(&mut r).await.unwrap(), Reply::Bulk(None));
        assert_eq!(
            read_reply(&mut r).await.unwrap(),
            Reply::Array(Some(vec![Reply::Bulk(Some(b"1".to_vec())), Reply::Integer(2)]))
        );
        assert_eq!(read_reply(&mut r).await.unwrap(), Reply::Array(None));
        assert!(read_reply(&mut r).await.is_err());
    }

    #[test]
    fn encodes_commands() {
        assert_eq!(
            encode_command(&["GET".into(), "k1".into()]),
            b"*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n".to_vec()
        );
    }
}
