//! The harness's overhead on the client side: 50 clients against an in-process http-kv server that answers
//! at once (tests/support/http_kv_server.rs), on this machine's cores shared by client and server.
//!
//! Rows:
//! - `bare reqwest`: 50 tasks sending the same mix of requests with reqwest directly, recording nothing;
//! - `drive()`: the real driver (generators, classification, the recorder writing history.jsonl).
//!
//! Latency is client-observed per operation; "server time" is the mean time spent inside the server's
//! handlers. The added latency of the driver is its mean minus the bare loop's mean.
//!
//! `cargo bench -p workloads` (optional: `BENCH_SECS=10`).

#[path = "../tests/support/http_kv_server.rs"]
mod http_kv_server;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checker::history::{read_path, Format};
use checker::{EventType, Process};
use http_kv_server::Server;
use serde_json::json;
use workloads::*;

const CLIENTS: usize = 50;

struct Row {
    name: &'static str,
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

async fn bare(server: &Server, secs: f64) -> Row {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let before = (
        server.store.requests.load(Ordering::Relaxed),
        server.store.busy_ns.load(Ordering::Relaxed),
    );
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let cpu0 = cpu_us();
    let mut tasks = Vec::new();
    for t in 0..CLIENTS {
        let http = http.clone();
        let base = format!("http://{}/kv/", server.node());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < end {
                let key = format!("b{}", t / 5);
                let t0 = Instant::now();
                let r = match i % 3 {
                    0 => http.get(format!("{base}{key}")).send().await,
                    1 => {
                        http.put(format!("{base}{key}"))
                            .json(&json!({"value": i % 5}))
                            .send()
                            .await
                    }
                    _ => {
                        http.post(format!("{base}{key}/cas"))
                            .json(&json!({"from": i % 5, "to": (i + 1) % 5}))
                            .send()
                            .await
                    }
                };
                let _ = r.unwrap().bytes().await.unwrap();
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
    let requests = server.store.requests.load(Ordering::Relaxed) - before.0;
    let busy = server.store.busy_ns.load(Ordering::Relaxed) - before.1;
    Row {
        cpu_us: cpu / latencies_us.len().max(1) as f64,
        name: "bare reqwest",
        ops: latencies_us.len() as u64,
        secs,
        latencies_us,
        server_us: busy as f64 / requests.max(1) as f64 / 1e3,
    }
}

async fn driven(server: &Server, secs: f64) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let recorder = Recorder::create(&path).unwrap();
    let counters = Arc::new(Counters::default());
    let protocol = Protocol::HttpKv(HttpKvSettings { timeout_ms: 5000 });
    let nodes = vec![server.node()];
    let before = (
        server.store.requests.load(Ordering::Relaxed),
        server.store.busy_ns.load(Ordering::Relaxed),
    );
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
    let requests = server.store.requests.load(Ordering::Relaxed) - before.0;
    let busy = server.store.busy_ns.load(Ordering::Relaxed) - before.1;

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
    assert_eq!(summary.counts.info, 0);
    Row {
        cpu_us: cpu / summary.counts.total().max(1) as f64,
        name: "drive() + recorder",
        ops: summary.counts.total(),
        secs,
        latencies_us,
        server_us: busy as f64 / requests.max(1) as f64 / 1e3,
    }
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = Server::start().await;
        // Warm up connections and code paths.
        let _ = bare(&server, 0.5).await;
        let mut rows = vec![bare(&server, secs).await, driven(&server, secs).await];
        for r in &mut rows {
            r.latencies_us.sort_by(f64::total_cmp);
        }
        println!();
        println!(
            "{CLIENTS} clients, {secs} s each, {cores} cores shared by clients and server (same process)"
        );
        println!(
            "{:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>10}",
            "", "ops", "ops/s", "mean µs", "p50 µs", "p99 µs", "server µs/op", "cpu µs/op"
        );
        for r in &rows {
            println!(
                "{:<20} {:>10} {:>10.0} {:>10.1} {:>10.1} {:>10.1} {:>12.1} {:>10.1}",
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
        let added = mean(&rows[1].latencies_us) - mean(&rows[0].latencies_us);
        println!();
        println!(
            "recorded ops/s: {:.0} (target >= 20000)",
            rows[1].ops as f64 / rows[1].secs
        );
        println!("added latency per op vs bare reqwest: {added:.1} µs (mean)");
        println!(
            "added CPU per op vs bare reqwest: {:.1} µs; at that CPU cost {cores} idle cores would sustain about \
             {:.0} recorded ops/s",
            rows[1].cpu_us - rows[0].cpu_us,
            cores as f64 * 1e6 / rows[1].cpu_us
        );
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!("machine load average during the run: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
        println!(
            "driver latency minus server time: {:.1} µs (mean)",
            mean(&rows[1].latencies_us) - rows[1].server_us
        );
    });
}
