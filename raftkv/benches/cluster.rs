//! Throughput and latency of real raftkv clusters (3 and 5 nodes) on loopback under concurrent clients.
//! Each client sends its requests one after another to the leader; every write is fsynced on a majority.
//! Prints a table. `RAFTKV_BENCH_SECS` sets the length of each measurement (default 3 s).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use serde_json::json;

#[derive(Clone, Copy)]
enum Op {
    Put,
    Get,
}

async fn measure(c: &Cluster, leader: usize, op: Op, clients: usize, secs: f64) -> (f64, f64, f64, usize) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for k in 0..clients {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let url = c.url(leader, &format!("/kv/bench{k}"));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut i = 0i64;
            while Instant::now() < end {
                i += 1;
                let t = Instant::now();
                let r = match op {
                    Op::Put => client.put(&url).json(&json!({ "value": i })).send().await,
                    Op::Get => client.get(&url).send().await,
                };
                match r {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| {
        if all.is_empty() {
            f64::NAN
        } else {
            all[((all.len() - 1) as f64 * p) as usize]
        }
    };
    (all.len() as f64 / secs, q(0.5), q(0.99), errors)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: f64 = std::env::var("RAFTKV_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    println!("raftkv on loopback, {secs} s per row; each client sends sequential requests to the leader");
    println!("| nodes | op  | clients |    ops/s | ops/s/client | p50 ms | p99 ms | errors |");
    println!("|------:|-----|--------:|---------:|-------------:|-------:|-------:|-------:|");
    for nodes in [3, 5] {
        let c = Cluster::start(nodes, &[]);
        let leader = c.leader(&probe, Duration::from_secs(20)).await;
        // Warm up connections and the log.
        measure(&c, leader, Op::Put, 4, 0.5).await;
        for (op, name, clients) in [
            (Op::Put, "put", 1),
            (Op::Put, "put", 4),
            (Op::Put, "put", 16),
            (Op::Put, "put", 64),
            (Op::Get, "get", 1),
            (Op::Get, "get", 16),
        ] {
            let (ops, p50, p99, errors) = measure(&c, leader, op, clients, secs).await;
            println!(
                "| {nodes:>5} | {name} | {clients:>7} | {ops:>8.0} | {:>12.0} | {p50:>6.2} | {p99:>6.2} | {errors:>6} |",
                ops / clients as f64
            );
        }
    }
}
