//! The resp client against a real TCP server speaking RESP2 on loopback (tests/support/resp_server.rs,
//! an in-test server: no redis-server is installed or needed).

mod support;

use std::sync::Arc;
use std::time::Duration;

use checker::history::{read_path, Format};
use checker::{EventType, Outcome};
use serde_json::json;
use support::resp_server::RespServer;
use workloads::*;

fn resp(timeout_ms: u64) -> RespSettings {
    RespSettings {
        timeout_ms,
        ..RespSettings::default()
    }
}

fn op(key: &str, call: Call) -> Op {
    Op {
        key: key.into(),
        call,
    }
}

#[tokio::test]
async fn every_operation_and_its_classification() {
    let server = RespServer::start().await;
    let mut c = Protocol::Resp(resp(500))
        .connector()
        .unwrap()
        .client(&server.node());

    assert_eq!(c.call(&op("r", Call::Read)).await, Completion::ok(json!(null)));
    assert_eq!(
        c.call(&op("r", Call::Write(json!(4)))).await,
        Completion::ok(json!(4))
    );
    assert_eq!(c.call(&op("r", Call::Read)).await, Completion::ok(json!(4)));
    // The default cas command is an EVAL of a compare-and-set script.
    assert_eq!(
        c.call(&op("r", Call::Cas(json!(4), json!(1)))).await,
        Completion::ok(json!([4, 1]))
    );
    let miss = c.call(&op("r", Call::Cas(json!(4), json!(2)))).await;
    assert_eq!(
        (miss.kind, miss.error.as_deref()),
        (EventType::Fail, Some("cas-mismatch"))
    );
    assert_eq!(c.call(&op("r", Call::Read)).await, Completion::ok(json!(1)));
    assert_eq!(
        c.call(&op("a", Call::Append("t1.0;".into()))).await.kind,
        EventType::Ok
    );
    assert_eq!(
        c.call(&op("a", Call::Append("t1.1;".into()))).await.kind,
        EventType::Ok
    );
    assert_eq!(
        c.call(&op("a", Call::Read)).await,
        Completion::ok(json!("t1.0;t1.1;"))
    );
    for e in [9, 3] {
        assert_eq!(c.call(&op("s", Call::Add(e))).await.kind, EventType::Ok);
    }
    assert_eq!(
        c.call(&op("s", Call::ReadSet)).await,
        Completion::ok(json!([3, 9]))
    );

    // A definite error reply (first word in definite_errors): fail, nothing applied.
    let refused = c.call(&op("noleader-1", Call::Write(json!(1)))).await;
    assert_eq!(refused.kind, EventType::Fail, "{refused:?}");
    assert!(refused.error.unwrap().contains("NOLEADER"));
    // Any other error reply to a write may hide an applied write: info. To a read: fail.
    let open = c.call(&op("timeout-1", Call::Write(json!(1)))).await;
    assert_eq!(open.kind, EventType::Info, "{open:?}");
    assert_eq!(
        server
            .data
            .lock()
            .unwrap()
            .strings
            .get("timeout-1")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(c.call(&op("timeout-1", Call::Read)).await.kind, EventType::Fail);
    // The connection keeps working after error replies.
    assert_eq!(c.call(&op("r", Call::Read)).await, Completion::ok(json!(1)));

    // A reply that never comes within the timeout: info for a write, fail for a read; then a new connection.
    let slow = c.call(&op("slow-1", Call::Write(json!(1)))).await;
    assert_eq!(
        (slow.kind, slow.error.as_deref()),
        (EventType::Info, Some("client-timeout"))
    );
    let slow = c.call(&op("slow-1", Call::Read)).await;
    assert_eq!(
        (slow.kind, slow.error.as_deref()),
        (EventType::Fail, Some("client-timeout"))
    );
    assert_eq!(c.call(&op("r", Call::Read)).await, Completion::ok(json!(1)));

    // The server hangs up after reading the command: info for a cas, fail for a read.
    assert_eq!(
        c.call(&op("drop-1", Call::Cas(json!(1), json!(2)))).await.kind,
        EventType::Info
    );
    assert_eq!(c.call(&op("drop-1", Call::Read)).await.kind, EventType::Fail);
    assert_eq!(c.call(&op("r", Call::Read)).await, Completion::ok(json!(1)));
}

#[tokio::test]
async fn a_module_style_cas_command_from_the_settings() {
    let server = RespServer::start().await;
    let protocol: Protocol =
        toml::from_str("protocol = \"resp\"\ncas_command = [\"CAS\", \"{key}\", \"{from}\", \"{to}\"]\n")
            .unwrap();
    let mut c = protocol.connector().unwrap().client(&server.node());
    assert_eq!(c.call(&op("m", Call::Write(json!(0)))).await.kind, EventType::Ok);
    assert_eq!(
        c.call(&op("m", Call::Cas(json!(0), json!(3)))).await.kind,
        EventType::Ok
    );
    assert_eq!(
        c.call(&op("m", Call::Cas(json!(0), json!(4))))
            .await
            .error
            .as_deref(),
        Some("cas-mismatch")
    );
    assert_eq!(c.call(&op("m", Call::Read)).await, Completion::ok(json!(3)));
}

#[tokio::test]
async fn nothing_listening_is_a_definite_failure() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Protocol::Resp(resp(500))
        .connector()
        .unwrap()
        .client(&format!("127.0.0.1:{port}"));
    let done = c.call(&op("k", Call::Write(json!(1)))).await;
    assert_eq!(done.kind, EventType::Fail);
    assert!(done.error.unwrap().starts_with("connection-refused"));
}

#[tokio::test]
async fn the_driver_over_resp() {
    let server = RespServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let recorder = Recorder::create(&path).unwrap();
    let counters = Arc::new(Counters::default());
    let protocol = Protocol::Resp(resp(1000));
    let nodes = vec![server.node()];
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let config = DriveConfig::new(Workload::Set, 4, 5);
    let task = {
        let (p, n, r, c) = (
            protocol.clone(),
            nodes.clone(),
            recorder.clone(),
            counters.clone(),
        );
        tokio::spawn(async move { drive(&config, &p, &n, &r, c, stop_rx).await })
    };
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while counters.snapshot().ok < 200 {
        assert!(std::time::Instant::now() < give_up, "{:?}", counters.snapshot());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    let summary = task.await.unwrap().unwrap();
    let reads = FinalReadConfig {
        workload: Workload::Set,
        first_process: summary.next_process,
        parallelism: 2,
        within: Duration::from_secs(10),
    };
    let finals = final_reads(&reads, &protocol, &nodes, &recorder, &summary.keys)
        .await
        .unwrap();
    assert_eq!(finals.read, summary.keys.len());
    recorder.finish().unwrap();
    let ops = read_path(&path, Format::Jsonl, false)
        .unwrap()
        .operations()
        .unwrap();
    // Every added element is in its key's final read.
    for key in &summary.keys {
        let final_read = ops
            .iter()
            .rev()
            .find(|o| o.key.as_deref() == Some(key) && o.f == "read")
            .unwrap();
        assert_eq!(final_read.outcome, Outcome::Ok);
        let seen: Vec<i64> = serde_json::from_value(final_read.output.clone()).unwrap();
        for add in ops
            .iter()
            .filter(|o| o.key.as_deref() == Some(key) && o.f == "add")
        {
            assert!(seen.contains(&add.input.as_i64().unwrap()));
        }
    }
}
