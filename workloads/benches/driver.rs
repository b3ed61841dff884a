//! The harness's overhead on the client side: 50 clients against an in-process http-kv server that answers
//! at once, on this machine's cores (shared by the clients, the server and whatever else runs).
//!
//! Servers: `lean` is a minimal http-kv server on hyper written here (GET, PUT, cas; one map behind a
//! mutex), so that as much CPU as possible is left to the client side; `axum` is the tests' server
//! (tests/support/http_kv_server.rs).
//!
//! Rows:
//! - `bare reqwest`: 50 tasks sending the cas-register mix with reqwest, recording nothing;
//! - `bare hyper`: the same with one hyper keep-alive connection per task (what the http-kv client uses),
//!   recording nothing: the baseline for the driver's added cost;
//! - `drive()`: the real driver: generators, classification, the recorder writing history.jsonl.
//!
//! Columns: completed ops, ops/s, client-observed latency (mean, p50, p99), the server's own time per
//! request (inside its handler), and the CPU time of the whole process per op (user + system, clients and
//! server together; less sensitive to other load on the machine than wall-clock figures).
//!
//! `cargo bench -p workloads` (optional: `BENCH_SECS=3` per row and round, `BENCH_ROUNDS=3`).

#[path = "../tests/support/http_kv_server.rs"]
mod http_kv_server;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use checker::history::{read_path, Format};
use checker::{EventType, Process};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use workloads::*;

const CLIENTS: usize = 50;

/// A server under the benchmark: its address and its (requests, nanoseconds in handlers) counters.
struct Target {
    name: &'static str,
    addr: SocketAddr,
    counters: Box<dyn Fn() -> (u64, u64)>,
}

impl Target {
    fn stats(&self) -> (u64, u64) {
        (self.counters)()
    }
}

/// The lean http-kv server: GET /kv/k, PUT /kv/k, POST /kv/k/cas.
async fn lean_server() -> Target {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
    let requests = Arc::new(AtomicU64::new(0));
    let busy_ns = Arc::new(AtomicU64::new(0));
    let (r, b) = (requests.clone(), busy_ns.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            let (data, r, b) = (data.clone(), r.clone(), b.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (data, r, b) = (data.clone(), r.clone(), b.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                        let t0 = Instant::now();
                        let answer = lean_handle(&data, &parts.method, parts.uri.path(), &body);
                        r.fetch_add(1, Ordering::Relaxed);
                        b.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                        Ok::<_, Infallible>(answer)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Target {
        name: "lean",
        addr,
        counters: Box::new(move || (requests.load(Ordering::Relaxed), busy_ns.load(Ordering::Relaxed))),
    }
}

fn lean_handle(
    data: &Mutex<HashMap<String, Value>>,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, v: Value| {
        let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(hyper::header::CONTENT_TYPE, "application/json".parse().unwrap());
        r
    };
    let rest = path.strip_prefix("/kv/").unwrap_or("");
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut data = data.lock().unwrap();
    match (method, rest.strip_suffix("/cas")) {
        (&Method::GET, None) => reply(
            StatusCode::OK,
            json!({ "value": data.get(rest).cloned().unwrap_or(Value::Null) }),
        ),
        (&Method::PUT, None) => {
            data.insert(rest.to_string(), body["value"].clone());
            reply(StatusCode::OK, json!({ "ok": true }))
        }
        (&Method::POST, Some(key)) => {
            let current = data.get(key).cloned().unwrap_or(Value::Null);
            if current == body["from"] {
                data.insert(key.to_string(), body["to"].clone());
                reply(StatusCode::OK, json!({ "ok": true }))
            } else {
                reply(
                    StatusCode::CONFLICT,
                    json!({ "error": "cas-mismatch", "value": current }),
                )
            }
        }
        _ => reply(StatusCode::BAD_REQUEST, json!({ "error": "bad-request" })),
    }
}

struct Row {
    name: String,
    ops: u64,
    secs: f64,
    latencies_us: Vec<f64>,
    server_us: f64,
    /// CPU time of the whole process (clients and server) per operation.
    cpu_us: f64,
}

/// User + system CPU time of this process so far, in microseconds.
fn cpu_us() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The cas-register mix without the driver: op `i` of a task.
fn bare_request(i: u64) -> (Method, &'static str, Option<Value>) {
    match i % 3 {
        0 => (Method::GET, "", None),
        1 => (Method::PUT, "", Some(json!({ "value": i % 5 }))),
        _ => (
            Method::POST,
            "/cas",
            Some(json!({ "from": i % 5, "to": (i + 1) % 5 })),
        ),
    }
}

/// Runs `CLIENTS` bare loops; `kind` is "reqwest" or "hyper".
async fn bare(target: &Target, kind: &'static str, secs: f64) -> Row {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let before = target.stats();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let cpu0 = cpu_us();
    let mut tasks = Vec::new();
    for t in 0..CLIENTS {
        let http = http.clone();
        let addr = target.addr;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let path = format!("/kv/b{}", t / 5);
            let mut sender = if kind == "hyper" {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                Some(sender)
            } else {
                None
            };
            let mut i = 0u64;
            while Instant::now() < end {
                let (method, suffix, body) = bare_request(i);
                let t0 = Instant::now();
                match sender.as_mut() {
                    Some(sender) => {
                        let body = body.map(|b| b.to_string()).unwrap_or_default();
                        let req = Request::builder()
                            .method(method)
                            .uri(format!("{path}{suffix}"))
                            .header(hyper::header::HOST, addr.to_string())
                            .header(hyper::header::CONTENT_TYPE, "application/json")
                            .body(Full::new(Bytes::from(body)))
                            .unwrap();
                        let response = sender.send_request(req).await.unwrap();
                        let bytes = response.into_body().collect().await.unwrap().to_bytes();
                        let _: Value = serde_json::from_slice(&bytes).unwrap();
                    }
                    None => {
                        let mut req = http.request(
                            reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
                            format!("http://{addr}{path}{suffix}"),
                        );
                        if let Some(b) = body {
                            req = req.json(&b);
                        }
                        let bytes = req.send().await.unwrap().bytes().await.unwrap();
                        let _: Value = serde_json::from_slice(&bytes).unwrap();
                    }
                }
                lat.push(t0.elapsed().as_secs_f64() * 1e6);
                i += 1;
            }
            lat
        }));
    }
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_us() - cpu0;
    let after = target.stats();
    Row {
        name: format!("bare {kind} / {}", target.name),
        ops: latencies_us.len() as u64,
        secs,
        cpu_us: cpu / latencies_us.len().max(1) as f64,
        latencies_us,
        server_us: (after.1 - before.1) as f64 / (after.0 - before.0).max(1) as f64 / 1e3,
    }
}

async fn driven(target: &Target, secs: f64) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let recorder = Recorder::create(&path).unwrap();
    let counters = Arc::new(Counters::default());
    let protocol = Protocol::HttpKv(HttpKvSettings { timeout_ms: 5000 });
    let nodes = vec![target.addr.to_string()];
    let before = target.stats();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let config = DriveConfig::new(Workload::CasRegister, CLIENTS, 1);
    let started = Instant::now();
    let cpu0 = cpu_us();
    let task = {
        let (p, n, r, c) = (
            protocol.clone(),
            nodes.clone(),
            recorder.clone(),
            counters.clone(),
        );
        tokio::spawn(async move { drive(&config, &p, &n, &r, c, stop_rx).await })
    };
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop_tx.send(true).unwrap();
    let summary = task.await.unwrap().unwrap();
    let secs = started.elapsed().as_secs_f64();
    recorder.finish().unwrap();
    let cpu = cpu_us() - cpu0;
    let after = target.stats();

    let history = read_path(&path, Format::Jsonl, false).unwrap();
    let mut open: HashMap<u64, u64> = HashMap::new();
    let mut latencies_us = Vec::new();
    for e in &history.events {
        let Process::Client(p) = e.process else { continue };
        if e.kind == EventType::Invoke {
            open.insert(p, e.time);
        } else if let Some(t0) = open.remove(&p) {
            latencies_us.push((e.time - t0) as f64 / 1e3);
        }
    }
    assert_eq!(latencies_us.len() as u64, summary.counts.total());
    assert_eq!(
        summary.counts.info, 0,
        "no indeterminate ops against a server that answers at once"
    );
    Row {
        name: format!("drive() / {}", target.name),
        ops: summary.counts.total(),
        secs,
        cpu_us: cpu / summary.counts.total().max(1) as f64,
        latencies_us,
        server_us: (after.1 - before.1) as f64 / (after.0 - before.0).max(1) as f64 / 1e3,
    }
}

fn print_rows(rows: &[Row]) {
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9}",
        "", "ops", "ops/s", "mean µs", "p50 µs", "p99 µs", "server µs", "cpu µs/op"
    );
    for r in rows {
        println!(
            "{:<24} {:>9} {:>9.0} {:>9.1} {:>9.1} {:>10.1} {:>10.2} {:>9.1}",
            r.name,
            r.ops,
            r.ops as f64 / r.secs,
            mean(&r.latencies_us),
            quantile(&r.latencies_us, 0.5),
            quantile(&r.latencies_us, 0.99),
            r.server_us,
            r.cpu_us
        );
    }
}

fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn main() {
    let env = |name: &str, default: f64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let secs = env("BENCH_SECS", 3.0);
    let rounds = env("BENCH_ROUNDS", 3.0).max(1.0) as usize;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let lean = lean_server().await;
        let axum_server = http_kv_server::Server::start().await;
        let store = axum_server.store.clone();
        let axum = Target {
            name: "axum",
            addr: axum_server.addr,
            counters: Box::new(move || {
                (store.requests.load(Ordering::Relaxed), store.busy_ns.load(Ordering::Relaxed))
            }),
        };
        let load_before = load_average();
        // Warm up connections and code paths.
        let _ = bare(&lean, "hyper", 0.5).await;
        // Rounds interleave the rows, so that a burst of other load on the machine hits them alike; each row
        // keeps its best round (the least disturbed one).
        let mut runs: Vec<Vec<Row>> = (0..4).map(|_| Vec::new()).collect();
        for _ in 0..rounds {
            runs[0].push(bare(&lean, "reqwest", secs).await);
            runs[1].push(bare(&lean, "hyper", secs).await);
            runs[2].push(driven(&lean, secs).await);
            runs[3].push(driven(&axum, secs).await);
        }
        println!();
        println!(
            "{CLIENTS} clients; {rounds} rounds of {secs} s per row; {cores} cores shared by clients and server \
             (one process) and by everything else on the machine"
        );
        println!("load average before: {load_before}; after: {}", load_average());
        println!();
        println!("ops/s per round:");
        for row in &runs {
            let per_round: Vec<String> = row.iter().map(|r| format!("{:.0}", r.ops as f64 / r.secs)).collect();
            println!("  {:<24} {}", row[0].name, per_round.join("  "));
        }
        let mut best: Vec<Row> = runs
            .into_iter()
            .map(|row| {
                row.into_iter().max_by(|a, b| (a.ops as f64 / a.secs).total_cmp(&(b.ops as f64 / b.secs))).unwrap()
            })
            .collect();
        for r in &mut best {
            r.latencies_us.sort_by(f64::total_cmp);
        }
        println!();
        println!("best round of each row:");
        print_rows(&best);
        let (base, d) = (&best[1], &best[2]);
        println!();
        println!("recorded ops/s (drive() / lean): {:.0} (target >= 20000)", d.ops as f64 / d.secs);
        println!(
            "added latency per op vs bare hyper: {:.1} µs mean, {:.1} µs p50",
            mean(&d.latencies_us) - mean(&base.latencies_us),
            quantile(&d.latencies_us, 0.5) - quantile(&base.latencies_us, 0.5)
        );
        println!(
            "added CPU per op vs bare hyper: {:.1} µs; at drive()'s {:.1} µs/op, {cores} idle cores would sustain \
             about {:.0} recorded ops/s",
            d.cpu_us - base.cpu_us,
            d.cpu_us,
            cores as f64 * 1e6 / d.cpu_us
        );
    });
}
