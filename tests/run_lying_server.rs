//! A deliberately lying server: a small in-test HTTP server speaking http-kv whose reads lag one write
//! behind (stale reads). `faultline run` against it, through a spec whose `[external]` node is its address,
//! must find the history not linearizable (exit 1).

#[path = "run_support.rs"]
mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// Per key: (current value, the value before the last change).
type Store = Arc<Mutex<HashMap<String, (Value, Value)>>>;

fn answer(store: &Store, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut s = store.lock().unwrap();
    match (method, parts.as_slice()) {
        ("GET", ["status"]) => (200, json!({"id": "n1", "role": "leader", "leader": "n1"})),
        // The lie: a read answers the value before the last change.
        ("GET", ["kv", key]) => (
            200,
            json!({"value": s.get(*key).map(|e| e.1.clone()).unwrap_or(Value::Null)}),
        ),
        ("PUT", ["kv", key]) => {
            let e = s.entry(key.to_string()).or_insert((Value::Null, Value::Null));
            *e = (body["value"].clone(), e.0.clone());
            (200, json!({"ok": true}))
        }
        ("POST", ["kv", key, "cas"]) => {
            let e = s.entry(key.to_string()).or_insert((Value::Null, Value::Null));
            if e.0 == body["from"] {
                *e = (body["to"].clone(), e.0.clone());
                (200, json!({"ok": true}))
            } else {
                (409, json!({"error": "cas-mismatch", "value": e.0}))
            }
        }
        _ => (400, json!({"error": "bad-request", "message": "unknown route"})),
    }
}

fn serve_connection(stream: TcpStream, store: Store) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut it = request_line.split_whitespace();
        let (method, path) = (
            it.next().unwrap_or("").to_string(),
            it.next().unwrap_or("").to_string(),
        );
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, v) = answer(&store, &method, &path, &body);
        let text = v.to_string();
        let reason = if status == 200 { "OK" } else { "Error" };
        let resp = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// Starts the lying server on a free loopback port; it lives until the test process ends.
fn lying_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let store: Store = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let store = store.clone();
            std::thread::spawn(move || serve_connection(stream, store));
        }
    });
    port
}

#[test]
fn stale_reads_are_found_invalid() {
    let port = lying_server();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("liar.toml");
    std::fs::write(
        &spec,
        format!(
            r#"name = "liar"
[ready]
kind = "http"
path = "/status"
[leader]
path = "/status"
leader_pointer = "/leader"
[client]
protocol = "http-kv"
[external]
nodes = [{{ id = "n1", address = "127.0.0.1:{port}" }}]
"#
        ),
    )
    .unwrap();
    let store = store();
    let (status, out, err) = Running::start(&[
        "--db",
        spec.to_str().unwrap(),
        "--time-limit",
        "4",
        "--concurrency",
        "4",
        "--store",
        store.path().to_str().unwrap(),
        "--junit",
        dir.path().join("junit.xml").to_str().unwrap(),
    ])
    .finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.starts_with("INVALID"), "{out}");
    let run = latest(store.path());
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["linearizability"]["verdict"], "invalid");
    let test: Value = serde_json::from_str(&std::fs::read_to_string(run.join("test.json")).unwrap()).unwrap();
    assert_eq!(test["backend"], "external");
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"1\""), "{junit}");
}
