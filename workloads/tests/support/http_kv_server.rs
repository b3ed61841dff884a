//! An in-process server speaking http-kv (docs/http-kv.md) for the tests and the benchmark.
//!
//! It is a correct single-copy store, except for keys whose names ask for trouble:
//! - `slow-*`: answers after 3 s (longer than the tests' client timeout);
//! - `e503-*`, `e504-*`, `e500-*`, `e400-*`: answers that status with the protocol's error body, after
//!   applying writes for `e504-*` and `e500-*` (as a real leader that committed but could not answer might);
//! - and, when `flaky_every` is N > 0, every Nth write, cas or append is applied and then answered 504.
//!
//! It counts the time spent inside handlers so that a benchmark can subtract the server's own time.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Default)]
pub struct Store {
    pub data: Mutex<HashMap<String, Value>>,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Nanoseconds spent in handlers.
    pub busy_ns: AtomicU64,
    /// Every Nth update answers 504 after applying (0: never).
    pub flaky_every: AtomicU64,
    updates: AtomicU64,
}

pub struct Server {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts a server on a free loopback port.
    pub async fn start() -> Server {
        let store = Arc::new(Store::default());
        let app = Router::new()
            .route("/kv/{key}", get(read).put(write))
            .route("/kv/{key}/cas", post(cas))
            .route("/kv/{key}/append", post(append))
            .with_state(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server { addr, store, task }
    }

    pub fn node(&self) -> String {
        self.addr.to_string()
    }
}

fn error(status: u16, code: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({ "error": code })),
    )
        .into_response()
}

/// Trouble a key asks for, before (`Some`) or instead of answering.
async fn trouble(key: &str) -> Option<Response> {
    if key.starts_with("slow-") {
        tokio::time::sleep(Duration::from_secs(3)).await;
        return None;
    }
    if key.starts_with("e503-") {
        return Some(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "not-leader", "leader": null})),
            )
                .into_response(),
        );
    }
    if key.starts_with("e400-") {
        return Some(error(400, "bad-request"));
    }
    None
}

/// After applying: statuses that hide a write's success.
fn after_update(s: &Store, key: &str) -> Option<Response> {
    let every = s.flaky_every.load(Ordering::Relaxed);
    let n = s.updates.fetch_add(1, Ordering::Relaxed) + 1;
    if every > 0 && n.is_multiple_of(every) {
        return Some(error(504, "timeout"));
    }
    after(key)
}

fn after(key: &str) -> Option<Response> {
    if key.starts_with("e504-") {
        return Some(error(504, "timeout"));
    }
    if key.starts_with("e500-") {
        return Some(error(500, "leadership-lost"));
    }
    None
}

struct Timer<'a>(&'a Store, Instant);
impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        self.0
            .busy_ns
            .fetch_add(self.1.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

async fn read(State(s): State<Arc<Store>>, Path(key): Path<String>) -> Response {
    let _t = Timer(&s, Instant::now());
    if let Some(r) = trouble(&key).await {
        return r;
    }
    if let Some(r) = after(&key) {
        return r;
    }
    let v = s.data.lock().unwrap().get(&key).cloned().unwrap_or(Value::Null);
    Json(json!({ "value": v })).into_response()
}

async fn write(State(s): State<Arc<Store>>, Path(key): Path<String>, Json(body): Json<Value>) -> Response {
    let _t = Timer(&s, Instant::now());
    if let Some(r) = trouble(&key).await {
        return r;
    }
    s.data.lock().unwrap().insert(key.clone(), body["value"].clone());
    after_update(&s, &key).unwrap_or_else(|| Json(json!({ "ok": true })).into_response())
}

async fn cas(State(s): State<Arc<Store>>, Path(key): Path<String>, Json(body): Json<Value>) -> Response {
    let _t = Timer(&s, Instant::now());
    if let Some(r) = trouble(&key).await {
        return r;
    }
    {
        let mut data = s.data.lock().unwrap();
        let current = data.get(&key).cloned().unwrap_or(Value::Null);
        if current != body["from"] {
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": "cas-mismatch", "value": current})),
            )
                .into_response();
        }
        data.insert(key.clone(), body["to"].clone());
    }
    after_update(&s, &key).unwrap_or_else(|| Json(json!({ "ok": true })).into_response())
}

async fn append(State(s): State<Arc<Store>>, Path(key): Path<String>, Json(body): Json<Value>) -> Response {
    let _t = Timer(&s, Instant::now());
    if let Some(r) = trouble(&key).await {
        return r;
    }
    let new = {
        let mut data = s.data.lock().unwrap();
        let current = data.get(&key).and_then(Value::as_str).unwrap_or("").to_string();
        let new = Value::String(current + body["value"].as_str().unwrap_or(""));
        data.insert(key.clone(), new.clone());
        new
    };
    after_update(&s, &key).unwrap_or_else(|| Json(json!({ "value": new })).into_response())
}
