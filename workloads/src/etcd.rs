//! The `etcd` client: etcd's v3 JSON gateway over HTTP.
//!
//! Keys and values are base64 in the JSON bodies; 64-bit integers are strings. Values are stored as text
//! (numbers as their JSON text, strings as they are).
//! - read: `POST /v3/kv/range`; a missing key answers without `kvs` (read as null). With the setting
//!   `serializable = true` the range carries `"serializable": true`: the member answers from its own state
//!   without a quorum round (allowed to be stale; etcd's linearizable default is the other).
//! - write: `POST /v3/kv/put`.
//! - cas: `POST /v3/kv/txn` comparing the value; a txn whose comparison failed answers 200 without
//!   `succeeded`, which is a definite `cas-mismatch` failure.
//! - append: read the value and its `mod_revision`, then a txn that writes the concatenation only if the
//!   revision is unchanged; a lost race is retried (nothing was written), a bounded number of times.
//! - set add: a put of `{key}/{element}`; the set's read is a range over the prefix `{key}/`.
//!
//! Errors: with `has_leader_header`, a node without a leader answers "etcdserver: no leader" before doing
//! anything (definite). "too many requests" and any 4xx are definite too. Everything else that is not a 200
//! (503 "request timed out", 500 "context deadline exceeded", ...) may have been applied: info for writes.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::completion::{text_to_value, value_to_text, Completion};
use crate::http::{HttpConn, HttpTrouble};
use crate::settings::EtcdSettings;
use crate::workload::{Call, Op};

/// How often an append retries after losing a race to another writer of the same key.
const APPEND_ATTEMPTS: u32 = 100;

/// A client of one etcd member.
#[derive(Debug)]
pub struct EtcdClient {
    conn: HttpConn,
    has_leader_header: bool,
    serializable: bool,
}

/// The outcome of one gateway request.
enum Answer {
    /// 200 with a JSON body.
    Body(Value),
    /// The request ended without a usable 200: already classified.
    Done(Completion),
}

impl EtcdClient {
    pub(crate) fn new(node: &str, timeout: Duration, settings: &EtcdSettings) -> Self {
        EtcdClient {
            conn: HttpConn::new(node, timeout),
            has_leader_header: settings.has_leader_header,
            serializable: settings.serializable,
        }
    }

    /// The body of a read's range request: `serializable` when the settings ask for it.
    fn range(&self, mut body: Value) -> Value {
        if self.serializable {
            body["serializable"] = Value::Bool(true);
        }
        body
    }

    pub(crate) fn node(&self) -> &str {
        self.conn.node()
    }

    async fn post(&mut self, call: &Call, path: &str, body: Value) -> Answer {
        let headers: &[(&str, &str)] = if self.has_leader_header {
            &[("Grpc-Metadata-hasleader", "true")]
        } else {
            &[]
        };
        let path = format!("/v3/kv/{path}");
        let (status, bytes) = match self
            .conn
            .request(Method::POST, &path, Some(body.to_string().into_bytes()), headers)
            .await
        {
            Ok(answer) => answer,
            Err(HttpTrouble::NotSent(e)) => return Answer::Done(Completion::fail(call, e)),
            Err(HttpTrouble::Unknown(e)) => return Answer::Done(Completion::unknown(call, e)),
        };
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status == StatusCode::OK {
            return match body {
                Some(b) => Answer::Body(b),
                None => Answer::Done(Completion::unknown(call, "bad-response")),
            };
        }
        Answer::Done(classify_error(call, status, body.as_ref()))
    }

    /// Like `call`, with each request and its answer (an append makes several).
    pub(crate) async fn call_traced(&mut self, op: &Op) -> (Completion, Vec<crate::exchange::Exchange>) {
        self.conn.record_exchanges();
        let done = self.call(op).await;
        (done, self.conn.take_exchanges())
    }

    pub(crate) async fn call(&mut self, op: &Op) -> Completion {
        let call = &op.call;
        let key = B64.encode(op.key.as_bytes());
        match call {
            Call::Read => match self.post(call, "range", self.range(json!({ "key": key }))).await {
                Answer::Body(b) => match first_value(&b) {
                    Ok(v) => Completion::ok(v.map(|(v, _)| v).unwrap_or(Value::Null)),
                    Err(e) => Completion::fail(call, e),
                },
                Answer::Done(c) => c,
            },
            Call::ReadSet => {
                let prefix = format!("{}/", op.key);
                let body = self.range(
                    json!({ "key": B64.encode(&prefix), "range_end": B64.encode(prefix_end(&prefix)) }),
                );
                match self.post(call, "range", body).await {
                    Answer::Body(b) => match set_elements(&b) {
                        Ok(v) => Completion::ok(v),
                        Err(e) => Completion::fail(call, e),
                    },
                    Answer::Done(c) => c,
                }
            }
            Call::Write(v) => {
                let body = json!({ "key": key, "value": B64.encode(value_to_text(v)) });
                match self.post(call, "put", body).await {
                    Answer::Body(_) => Completion::done(call),
                    Answer::Done(c) => c,
                }
            }
            Call::Add(e) => {
                let element_key = B64.encode(format!("{}/{e}", op.key));
                let body = json!({ "key": element_key, "value": B64.encode(e.to_string()) });
                match self.post(call, "put", body).await {
                    Answer::Body(_) => Completion::done(call),
                    Answer::Done(c) => c,
                }
            }
            Call::Cas(from, to) => {
                let body = json!({
                    "compare": [{ "key": key, "target": "VALUE", "result": "EQUAL",
                                  "value": B64.encode(value_to_text(from)) }],
                    "success": [{ "request_put": { "key": key, "value": B64.encode(value_to_text(to)) } }],
                });
                match self.post(call, "txn", body).await {
                    Answer::Body(b) if succeeded(&b) => Completion::done(call),
                    Answer::Body(_) => Completion::fail(call, "cas-mismatch"),
                    Answer::Done(c) => c,
                }
            }
            Call::Append(s) => self.append(call, &key, s).await,
        }
    }

    /// Read-modify-write guarded by the key's `mod_revision`. A txn that loses the race writes nothing and
    /// brings back the current value (its failure branch is a range), so the next attempt needs no extra read.
    async fn append(&mut self, call: &Call, key: &str, suffix: &str) -> Completion {
        // The read is part of a write: its failure is still definite (nothing was written yet).
        let read = Call::Read;
        let (mut current, mut revision) = match self.post(&read, "range", json!({ "key": key })).await {
            Answer::Body(b) => match first_value(&b) {
                Ok(Some((v, rev))) => (value_to_text(&v), rev),
                Ok(None) => (String::new(), 0),
                Err(e) => return Completion::fail(call, e),
            },
            Answer::Done(c) => return Completion::fail(call, c.error.unwrap_or_default()),
        };
        for attempt in 0..APPEND_ATTEMPTS {
            let body = json!({
                "compare": [{ "key": key, "target": "MOD", "result": "EQUAL", "mod_revision": revision.to_string() }],
                "success": [{ "request_put": { "key": key, "value": B64.encode(format!("{current}{suffix}")) } }],
                "failure": [{ "request_range": { "key": key } }],
            });
            let answer = match self.post(call, "txn", body).await {
                Answer::Body(b) => b,
                Answer::Done(c) => return c,
            };
            if succeeded(&answer) {
                return Completion::done(call);
            }
            let range = answer
                .get("responses")
                .and_then(|r| r.get(0))
                .and_then(|r| r.get("response_range").or_else(|| r.get("responseRange")));
            match range.map(first_value) {
                Some(Ok(Some((v, rev)))) => (current, revision) = (value_to_text(&v), rev),
                Some(Ok(None)) => (current, revision) = (String::new(), 0),
                _ => return Completion::fail(call, "bad-response: failed txn without its range"),
            }
            // Back off a little, at random, so that racing appenders spread out.
            let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=(1u64 << attempt.min(5)));
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Completion::fail(call, "append-contention")
    }
}

/// Whether a txn answer says its comparisons held (a failed txn has no `succeeded` field).
fn succeeded(body: &Value) -> bool {
    body.get("succeeded").and_then(Value::as_bool).unwrap_or(false)
}

/// The first kv of a range answer: its decoded value and `mod_revision`; None when the key is absent.
fn first_value(body: &Value) -> Result<Option<(Value, i64)>, String> {
    let Some(kv) = body
        .get("kvs")
        .and_then(Value::as_array)
        .and_then(|kvs| kvs.first())
    else {
        return Ok(None);
    };
    let bytes = match kv.get("value").and_then(Value::as_str) {
        Some(v) => B64
            .decode(v)
            .map_err(|e| format!("bad-response: value is not base64: {e}"))?,
        None => Vec::new(), // an empty value is omitted
    };
    let revision = kv.get("mod_revision").map(int64).unwrap_or(0);
    Ok(Some((text_to_value(&bytes), revision)))
}

/// The elements of a set: the values of every kv in a range answer, sorted.
fn set_elements(body: &Value) -> Result<Value, String> {
    let mut elements = Vec::new();
    for kv in body
        .get("kvs")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let bytes = B64
            .decode(kv.get("value").and_then(Value::as_str).unwrap_or_default())
            .map_err(|e| format!("bad-response: {e}"))?;
        let text = String::from_utf8_lossy(&bytes);
        elements.push(
            text.parse::<i64>()
                .map_err(|_| format!("bad-response: set element {text:?}"))?,
        );
    }
    elements.sort_unstable();
    Ok(json!(elements))
}

/// An int64 the gateway wrote as a string (or, leniently, as a number).
fn int64(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        other => other.as_i64().unwrap_or(0),
    }
}

/// The smallest key above every key that starts with `prefix` (etcd's `range_end` for a prefix).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Classifies a non-200 answer of the gateway.
fn classify_error(call: &Call, status: StatusCode, body: Option<&Value>) -> Completion {
    let message = body
        .and_then(|b| b.get("error").or_else(|| b.get("message")))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let error = if message.is_empty() {
        format!("http-{}", status.as_u16())
    } else {
        format!("http-{}: {message}", status.as_u16())
    };
    let definite = status.is_client_error()
        || message.contains("etcdserver: no leader")
        || message.contains("etcdserver: too many requests");
    if definite {
        Completion::fail(call, error)
    } else {
        Completion::unknown(call, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::EventType::*;

    #[test]
    fn classifies_gateway_errors() {
        let w = Call::Write(json!(1));
        let body = |m: &str| json!({ "error": m, "message": m, "code": 14 });
        let c = |call: &Call, s: u16, m: &str| {
            classify_error(call, StatusCode::from_u16(s).unwrap(), Some(&body(m)))
        };
        assert_eq!(c(&w, 503, "etcdserver: request timed out").kind, Info);
        assert_eq!(c(&w, 500, "context deadline exceeded").kind, Info);
        assert_eq!(c(&w, 503, "etcdserver: no leader").kind, Fail);
        assert_eq!(c(&w, 400, "etcdserver: key is not provided").kind, Fail);
        assert_eq!(c(&Call::Read, 503, "etcdserver: request timed out").kind, Fail);
    }

    #[test]
    fn prefix_end_is_the_next_key() {
        assert_eq!(prefix_end("k1/"), b"k10".to_vec());
    }
}
