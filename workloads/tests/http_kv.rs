//! The http-kv client and the driver against real HTTP servers on loopback: an in-test axum server speaking
//! http-kv (tests/support/http_kv_server.rs), a raw TCP server that hangs up, and a closed port.

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use checker::history::{read_path, Format};
use checker::{EventType, Outcome, Process};
use serde_json::json;
use support::http_kv_server::Server;
use tokio::io::AsyncReadExt;
use workloads::*;

fn http_kv(timeout_ms: u64) -> Protocol {
    Protocol::HttpKv(HttpKvSettings { timeout_ms })
}

fn op(key: &str, call: Call) -> Op {
    Op {
        key: key.to_string(),
        call,
    }
}

async fn call(node: &str, key: &str, c: Call) -> Completion {
    let connector = http_kv(500).connector().unwrap();
    connector.client(node).call(&op(key, c)).await
}

#[tokio::test]
async fn classifies_every_answer_of_a_real_server() {
    let server = Server::start().await;
    let node = server.node();
    let n = node.as_str();
    let (w, cas, append) = (
        Call::Write(json!(3)),
        Call::Cas(json!(3), json!(4)),
        Call::Append("x;".into()),
    );

    // Plain successes, reads of absent keys, cas both ways.
    assert_eq!(call(n, "a", Call::Read).await, Completion::ok(json!(null)));
    assert_eq!(call(n, "a", w.clone()).await, Completion::ok(json!(3)));
    assert_eq!(call(n, "a", Call::Read).await, Completion::ok(json!(3)));
    assert_eq!(call(n, "a", cas.clone()).await, Completion::ok(json!([3, 4])));
    let mismatch = call(n, "a", cas.clone()).await;
    assert_eq!(
        (mismatch.kind, mismatch.error.as_deref()),
        (EventType::Fail, Some("cas-mismatch"))
    );
    assert_eq!(mismatch.value, json!([3, 4]));
    assert_eq!(call(n, "s", append.clone()).await, Completion::ok(json!("x;")));
    assert_eq!(call(n, "s", Call::Append("y;".into())).await.kind, EventType::Ok);
    assert_eq!(call(n, "s", Call::Read).await, Completion::ok(json!("x;y;")));
    // Set adds over http-kv are appends of "e,"; the set read parses them.
    assert_eq!(call(n, "set", Call::Add(7)).await, Completion::ok(json!(7)));
    assert_eq!(call(n, "set", Call::Add(2)).await.kind, EventType::Ok);
    assert_eq!(call(n, "set", Call::ReadSet).await, Completion::ok(json!([2, 7])));

    // Definite failures: 503 not-leader and 400 bad-request.
    for key in ["e503-1", "e400-1"] {
        for c in [w.clone(), cas.clone(), append.clone(), Call::Read] {
            let done = call(n, key, c.clone()).await;
            assert_eq!(done.kind, EventType::Fail, "{key} {c:?}: {done:?}");
        }
    }
    assert_eq!(
        call(n, "e503-1", w.clone()).await.error.as_deref(),
        Some("not-leader")
    );

    // Indeterminate: 504 timeout and 500 leadership-lost (the server applied them): info for updates,
    // fail for reads.
    for key in ["e504-1", "e500-1"] {
        for (i, c) in [w.clone(), Call::Cas(json!(null), json!(1)), append.clone()]
            .into_iter()
            .enumerate()
        {
            let done = call(n, &format!("{key}-{i}"), c.clone()).await;
            assert_eq!(done.kind, EventType::Info, "{key} {c:?}: {done:?}");
            assert_eq!(done.value, c.invoke_value());
        }
        assert_eq!(call(n, key, Call::Read).await.kind, EventType::Fail);
    }
    assert_eq!(
        call(n, "e500-2", w.clone()).await.error.as_deref(),
        Some("leadership-lost")
    );
    assert_eq!(
        call(n, "e504-2", w.clone()).await.error.as_deref(),
        Some("timeout")
    );

    // Our own timeout (the server answers after 3 s; the client waits 500 ms).
    let timed_out = call(n, "slow-1", w.clone()).await;
    assert_eq!(
        (timed_out.kind, timed_out.error.as_deref()),
        (EventType::Info, Some("client-timeout"))
    );
    let timed_out = call(n, "slow-1", Call::Read).await;
    assert_eq!(
        (timed_out.kind, timed_out.error.as_deref()),
        (EventType::Fail, Some("client-timeout"))
    );
}

#[tokio::test]
async fn connection_refused_is_a_definite_failure() {
    // A port that was free a moment ago and has no listener now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let node = format!("127.0.0.1:{port}");
    for c in [
        Call::Write(json!(1)),
        Call::Cas(json!(1), json!(2)),
        Call::Append("a;".into()),
        Call::Read,
    ] {
        let done = call(&node, "k", c).await;
        assert_eq!(
            (done.kind, done.error.as_deref()),
            (EventType::Fail, Some("connection-refused"))
        );
    }
}

#[tokio::test]
async fn a_connection_lost_after_sending_is_indeterminate() {
    // A server that reads the request, then hangs up without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    let done = call(&node, "k", Call::Write(json!(1))).await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    let done = call(&node, "k", Call::Cas(json!(1), json!(2))).await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    let done = call(&node, "k", Call::Read).await;
    assert_eq!(done.kind, EventType::Fail, "{done:?}");
    server.abort();
}

/// Runs the driver for at least `run_for` and until `enough` holds of the live counts (giving up after
/// 60 s: a bounded wait, not a timing assertion), then the final reads; returns the recorded history's path.
async fn drive_for(
    dir: &tempfile::TempDir,
    nodes: &[String],
    config: DriveConfig,
    run_for: Duration,
    enough: impl Fn(Counts) -> bool,
) -> (DriveSummary, FinalReadSummary, std::path::PathBuf, Duration) {
    let path = dir.path().join("history.jsonl");
    let recorder = Recorder::create(&path).unwrap();
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let protocol = http_kv(1000);
    let started = std::time::Instant::now();
    let task = {
        let (protocol, nodes, recorder, counters) = (
            protocol.clone(),
            nodes.to_vec(),
            recorder.clone(),
            counters.clone(),
        );
        tokio::spawn(async move { drive(&config, &protocol, &nodes, &recorder, counters, stop_rx).await })
    };
    tokio::time::sleep(run_for).await;
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while !enough(counters.snapshot()) && std::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let live = counters.snapshot();
    stop_tx.send(true).unwrap();
    let summary = task.await.unwrap().unwrap();
    let elapsed = started.elapsed();
    assert!(summary.counts.total() >= live.total());
    let reads = FinalReadConfig {
        workload: Workload::CasRegister,
        first_process: summary.next_process,
        parallelism: 4,
        within: Duration::from_secs(10),
    };
    let finals = final_reads(&reads, &protocol, nodes, &recorder, &summary.keys)
        .await
        .unwrap();
    recorder.finish().unwrap();
    (summary, finals, path, elapsed)
}

#[tokio::test]
async fn the_driver_records_a_well_formed_history_with_final_reads() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = DriveConfig::new(Workload::CasRegister, 8, 1);
    config.keys = KeyPlan {
        tasks_per_key: 4,
        ops_per_task_per_key: 20,
    };
    let (summary, finals, path, _) =
        drive_for(&dir, &[server.node()], config, Duration::from_millis(500), |c| {
            c.ok > 300
        })
        .await;
    assert!(summary.counts.ok > 100, "{summary:?}");
    assert_eq!(summary.counts.info, 0);
    assert!(summary.keys.len() > 2, "{:?}", summary.keys);
    assert_eq!(finals.read, summary.keys.len());
    assert!(finals.unread.is_empty());

    let history = read_path(&path, Format::Jsonl, false).unwrap();
    assert!(history.warnings().is_empty());
    for (i, e) in history.events.iter().enumerate() {
        assert_eq!(e.index, i as u64);
        if i > 0 {
            assert!(e.time >= history.events[i - 1].time);
        }
    }
    let ops = history.operations().unwrap();
    assert!(ops.iter().all(|o| o.outcome != Outcome::Info));
    // Every key the summary names got a final read, on the final-read processes, that saw the server's value.
    let data = server.store.data.lock().unwrap().clone();
    for key in &summary.keys {
        let last = ops.iter().rev().find(|o| o.key.as_deref() == Some(key)).unwrap();
        assert!(last.process >= summary.next_process);
        assert_eq!((last.f.as_str(), last.outcome), ("read", Outcome::Ok));
        assert_eq!(last.output, data.get(key).cloned().unwrap_or(json!(null)));
    }
    // Some cas succeeded and some did not: a cas expects a value its group mates wrote recently.
    let cas = |outcome| {
        ops.iter()
            .filter(|o| o.f == "cas" && o.outcome == outcome)
            .count()
    };
    assert!(cas(Outcome::Ok) > 0 && cas(Outcome::Fail) > 0);
}

#[tokio::test]
async fn after_an_info_a_task_continues_as_a_new_process() {
    let server = Server::start().await;
    server.store.flaky_every.store(5, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let concurrency = 4;
    let config = DriveConfig::new(Workload::Register, concurrency, 2);
    let (summary, _, path, _) = drive_for(&dir, &[server.node()], config, Duration::from_millis(500), |c| {
        c.info > 30
    })
    .await;
    assert!(summary.counts.info > 10, "{summary:?}");
    let history = read_path(&path, Format::Jsonl, false).unwrap();
    let mut info_seen: HashMap<u64, bool> = HashMap::new();
    let mut last_kind: HashMap<u64, EventType> = HashMap::new();
    let mut per_task: HashMap<u64, Vec<u64>> = HashMap::new();
    let c = concurrency as u64;
    for e in &history.events {
        let Process::Client(p) = e.process else { continue };
        if p >= summary.next_process {
            continue; // final reads
        }
        assert!(
            !info_seen.get(&p).copied().unwrap_or(false),
            "process {p} reused after its info: {e:?}"
        );
        if e.kind == EventType::Info {
            info_seen.insert(p, true);
        }
        last_kind.insert(p, e.kind);
        let seq = per_task.entry(p % c).or_default();
        if seq.last() != Some(&p) {
            // A task moves to its next process number only after an info.
            if let Some(prev) = seq.last() {
                assert_eq!(
                    last_kind[prev],
                    EventType::Info,
                    "task {} left {prev} without an info",
                    p % c
                );
            }
            seq.push(p);
        }
    }
    // Each task's processes are task, task + concurrency, task + 2 * concurrency, ...
    for (task, ps) in &per_task {
        let expected: Vec<u64> = (0..ps.len() as u64).map(|k| task + k * c).collect();
        assert_eq!(ps, &expected);
    }
    assert!(per_task.values().any(|ps| ps.len() > 2));
    history.operations().unwrap();
}

/// An address nothing listens on (a port bound and released at once).
fn dead_node() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// One client task (cas-register, `seed`) that stays `ops_per_key` operations on each key.
fn one_task(seed: u64, ops_per_key: u64) -> DriveConfig {
    let mut config = DriveConfig::new(Workload::CasRegister, 1, seed);
    config.keys = KeyPlan {
        tasks_per_key: 1,
        ops_per_task_per_key: ops_per_key,
    };
    config
}

/// The operations the driver's tasks recorded (not the final reads).
fn driven_ops(path: &std::path::Path, summary: &DriveSummary) -> Vec<checker::Operation> {
    let history = read_path(path, Format::Jsonl, false).unwrap();
    history
        .operations()
        .unwrap()
        .into_iter()
        .filter(|o| o.process < summary.next_process)
        .collect()
}

#[tokio::test]
async fn a_client_moves_to_the_next_node_after_an_error_and_goes_home_at_its_next_key() {
    let server = Server::start().await;
    let nodes = vec![dead_node(), server.node()];
    let dir = tempfile::tempdir().unwrap();
    // Task 0's own node is the dead one: it fails to connect, moves to the live one for the rest of the key,
    // and tries its own node again at the start of each key.
    let config = one_task(3, 5);
    let (summary, _, path, _) =
        drive_for(&dir, &nodes, config, Duration::from_millis(200), |c| c.ok > 30).await;
    let ops = driven_ops(&path, &summary);
    assert!(summary.counts.ok > 10, "{summary:?}");
    assert!(ops.len() > 10);
    for (i, o) in ops.iter().enumerate() {
        let refused = o.error.as_deref() == Some("connection-refused");
        assert_eq!(refused, i % 5 == 0, "op {i}: {o:?}");
    }
}

#[tokio::test]
async fn a_client_away_from_its_node_moves_on_after_a_timeout() {
    let server = Server::start().await;
    // A node that accepts connections and never answers, as a paused process does (the kernel completes the
    // handshake; nobody reads).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nodes = vec![
        dead_node(),
        silent.local_addr().unwrap().to_string(),
        server.node(),
    ];
    let dir = tempfile::tempdir().unwrap();
    // Task 0's own node is the dead one: refused there, it moves to the silent one; a timeout there (away from
    // its own node) moves it on to the live one. One key for the whole run, so it never goes home meanwhile.
    let config = one_task(5, 1_000_000);
    let (summary, _, path, _) =
        drive_for(&dir, &nodes, config, Duration::from_millis(2500), |c| c.ok > 5).await;
    assert!(summary.counts.ok > 5, "{summary:?}");
    let ops = driven_ops(&path, &summary);
    let errors: Vec<_> = ops.iter().take(2).map(|o| o.error.clone()).collect();
    assert_eq!(
        errors,
        [
            Some("connection-refused".to_string()),
            Some("client-timeout".to_string())
        ],
        "{ops:?}"
    );
    assert!(ops[2..]
        .iter()
        .all(|o| o.error.is_none() || o.error.as_deref() == Some("cas-mismatch")));
    drop(silent);
}

#[tokio::test]
async fn a_task_slowed_by_timeouts_catches_up_with_its_groups_key() {
    let server = Server::start().await;
    // Task 0's own node never answers (a paused or cut-off node: timeouts keep it there, one operation a
    // second); task 1's answers at once. Both share each key, 5 operations each, so task 1 moves through
    // many keys while task 0 waits.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nodes = vec![silent.local_addr().unwrap().to_string(), server.node()];
    let dir = tempfile::tempdir().unwrap();
    let mut config = DriveConfig::new(Workload::CasRegister, 2, 9);
    config.keys = KeyPlan {
        tasks_per_key: 2,
        ops_per_task_per_key: 5,
    };
    let (summary, _, path, _) =
        drive_for(&dir, &nodes, config, Duration::from_millis(3600), |c| c.ok > 50).await;
    let ops = driven_ops(&path, &summary);
    let key = |o: &checker::Operation| {
        o.key
            .as_deref()
            .unwrap()
            .trim_start_matches('k')
            .parse::<u64>()
            .unwrap()
    };
    let slow: Vec<&checker::Operation> = ops.iter().filter(|o| o.process % 2 == 0).collect();
    let fast_keys = ops.iter().filter(|o| o.process % 2 == 1).map(key).max().unwrap();
    assert!(slow.len() >= 3, "{slow:?}");
    assert!(
        slow.iter().all(|o| o.error.as_deref() == Some("client-timeout")),
        "{slow:?}"
    );
    assert!(fast_keys > 20, "task 1 reached key {fast_keys}");
    // Without catching up task 0 would stay on k0 for its 5 operations (5 s); each later operation starts
    // on the key its mate is on by then.
    assert_eq!(key(slow[0]), 0);
    for pair in slow.windows(2) {
        assert!(
            key(pair[1]) > key(pair[0]) + 2,
            "{:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    drop(silent);
}

#[tokio::test]
async fn a_rate_limit_spaces_operations() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = DriveConfig::new(Workload::Register, 4, 4);
    config.rate = Some(20.0);
    let (summary, _, _, elapsed) = drive_for(
        &dir,
        &[server.node()],
        config,
        Duration::from_millis(1000),
        |_| true,
    )
    .await;
    // At most rate x elapsed, plus one first tick per task (however slow the machine was).
    let bound = 20.0 * elapsed.as_secs_f64() + 4.0 + 1.0;
    assert!(summary.counts.total() >= 1, "{summary:?}");
    assert!(
        summary.counts.total() as f64 <= bound,
        "{summary:?} in {elapsed:?}"
    );
}

#[tokio::test]
async fn bad_driver_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::create(dir.path().join("h.jsonl")).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let counters = Arc::new(Counters::default());
    let p = http_kv(100);
    let c = DriveConfig::new(Workload::Register, 1, 0);
    let e = drive(&c, &p, &[], &recorder, counters.clone(), rx.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, DriveError::NoNodes));
    let mut c0 = c.clone();
    c0.concurrency = 0;
    let e = drive(
        &c0,
        &p,
        &["127.0.0.1:1".into()],
        &recorder,
        counters.clone(),
        rx.clone(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DriveError::NoConcurrency));
    let mut cr = c.clone();
    cr.rate = Some(-1.0);
    let e = drive(&cr, &p, &["127.0.0.1:1".into()], &recorder, counters, rx)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("rate"));
}

#[tokio::test]
async fn final_reads_rotate_over_nodes_and_give_up_at_the_deadline() {
    let server = Server::start().await;
    let dead = dead_node();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let recorder = Recorder::create(&path).unwrap();
    let protocol = http_kv(500);
    let keys: Vec<String> = (0..6).map(|k| format!("k{k}")).collect();
    let config = FinalReadConfig {
        workload: Workload::CasRegister,
        first_process: 100,
        parallelism: 3,
        within: Duration::from_secs(30),
    };
    // A dead node and a live one: reads that hit the dead node fail and move on to the live one.
    let nodes = vec![dead.clone(), server.node()];
    let summary = final_reads(&config, &protocol, &nodes, &recorder, &keys)
        .await
        .unwrap();
    assert_eq!((summary.read, summary.unread.len()), (6, 0));
    // Only a dead node: every key is given up at the deadline, each attempt recorded as a failed read.
    let config = FinalReadConfig {
        within: Duration::from_millis(300),
        ..config
    };
    let summary = final_reads(&config, &protocol, &[dead], &recorder, &keys)
        .await
        .unwrap();
    assert_eq!(summary.read, 0);
    assert_eq!(summary.unread, keys);
    recorder.finish().unwrap();
    let ops = read_path(&path, Format::Jsonl, false)
        .unwrap()
        .operations()
        .unwrap();
    assert!(ops
        .iter()
        .all(|o| o.f == "read" && (100..103).contains(&o.process)));
    let fails = ops.iter().filter(|o| o.outcome == Outcome::Fail).count();
    assert!(fails >= 6, "at least one failed attempt per key: {fails}");
    assert_eq!(ops.iter().filter(|o| o.outcome == Outcome::Ok).count(), 6);
}

#[tokio::test]
async fn a_timed_out_connection_is_closed_not_left_behind() {
    // A server that accepts, reads the request and never answers (as a node behind a partition would);
    // it counts the connections the client closed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = listener.local_addr().unwrap().to_string();
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while socket.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
                let _ = closed_tx.send(());
            });
        }
    });
    let connector = http_kv(200).connector().unwrap();
    let mut client = connector.client(&node);
    for i in 0..5 {
        let done = client.call(&op("k", Call::Write(json!(i)))).await;
        assert_eq!(
            (done.kind, done.error.as_deref()),
            (EventType::Info, Some("client-timeout"))
        );
    }
    // Each timed-out request's connection was closed by the client (a new one was made for the next).
    for _ in 0..5 {
        tokio::time::timeout(Duration::from_secs(30), closed_rx.recv())
            .await
            .unwrap()
            .unwrap();
    }
    server.abort();
}

#[tokio::test]
async fn the_driver_stops_when_the_stop_sender_is_dropped() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::create(dir.path().join("h.jsonl")).unwrap();
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut config = DriveConfig::new(Workload::Register, 3, 0);
    config.rate = Some(50.0);
    let task = {
        let (nodes, recorder, counters) = (vec![server.node()], recorder.clone(), counters.clone());
        tokio::spawn(async move { drive(&config, &http_kv(500), &nodes, &recorder, counters, stop_rx).await })
    };
    while counters.snapshot().ok < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(stop_tx);
    let summary = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(summary.counts.ok >= 3);
    recorder.finish().unwrap();
}
