//! The etcd client against real etcd (`/usr/bin/etcd`, Debian's etcd-server 3.4) on 127.0.0.1 with free
//! ports and temporary data directories. Every etcd started here is killed by PID when the test ends,
//! whether it passes or not (and resumed first if it was paused).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use checker::history::{read_path, Format};
use checker::{EventType, Outcome};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;
use workloads::*;

const ETCD: &str = "/usr/bin/etcd";

/// etcd members this test started; killed on drop.
struct Cluster {
    children: Vec<Child>,
    clients: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let pid = Pid::from_raw(c.id() as i32);
            let _ = kill(pid, Signal::SIGCONT);
            let _ = kill(pid, Signal::SIGKILL);
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// Starts `n` members and waits until each answers a linearizable read.
    async fn start(n: usize) -> Cluster {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: install Debian's etcd-server"
        );
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{i}=http://127.0.0.1:{peer}"))
            .collect();
        let token = format!("workloads-test-{}-{}", std::process::id(), ports[0].0);
        let mut cluster = Cluster {
            children: Vec::new(),
            clients: Vec::new(),
            _dir: dir,
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let data = cluster._dir.path().join(format!("e{i}"));
            let log = std::fs::File::create(cluster._dir.path().join(format!("e{i}.log"))).unwrap();
            let child = Command::new(ETCD)
                .arg(format!("--name=e{i}"))
                .arg(format!("--data-dir={}", data.display()))
                .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
                .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"))
                .arg(format!("--initial-cluster={}", initial.join(",")))
                .arg(format!("--initial-cluster-token={token}"))
                .arg("--initial-cluster-state=new")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            cluster.children.push(child);
            cluster.clients.push(format!("127.0.0.1:{client}"));
        }
        let connector = Protocol::Etcd(EtcdSettings {
            timeout_ms: 1000,
            has_leader_header: true,
            serializable: false,
        })
        .connector()
        .unwrap();
        let give_up = Instant::now() + Duration::from_secs(60);
        for node in &cluster.clients {
            let mut client = connector.client(node);
            loop {
                let read = Op {
                    key: "ready".into(),
                    call: Call::Read,
                };
                if client.call(&read).await.kind == EventType::Ok {
                    break;
                }
                assert!(Instant::now() < give_up, "etcd on {node} never became ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        cluster
    }

    fn signal(&self, member: usize, signal: Signal) {
        kill(Pid::from_raw(self.children[member].id() as i32), signal).unwrap();
    }
}

fn etcd(timeout_ms: u64, has_leader_header: bool) -> Protocol {
    Protocol::Etcd(EtcdSettings {
        timeout_ms,
        has_leader_header,
        serializable: false,
    })
}

fn op(key: &str, call: Call) -> Op {
    Op {
        key: key.into(),
        call,
    }
}

#[tokio::test]
async fn every_operation_against_a_real_etcd() {
    let cluster = Cluster::start(1).await;
    let mut c = etcd(5000, true).connector().unwrap().client(&cluster.clients[0]);

    assert_eq!(c.call(&op("r", Call::Read)).await, Completion::ok(json!(null)));
    assert_eq!(
        c.call(&op("r", Call::Write(json!(2)))).await,
        Completion::ok(json!(2))
    );
    assert_eq!(c.call(&op("r", Call::Read)).await, Completion::ok(json!(2)));
    // cas: a failed txn answers 200 without `succeeded`: a definite cas-mismatch.
    let miss = c.call(&op("r", Call::Cas(json!(1), json!(3)))).await;
    assert_eq!(
        (miss.kind, miss.error.as_deref()),
        (EventType::Fail, Some("cas-mismatch"))
    );
    assert_eq!(c.call(&op("r", Call::Read)).await, Completion::ok(json!(2)));
    assert_eq!(
        c.call(&op("r", Call::Cas(json!(2), json!(3)))).await,
        Completion::ok(json!([2, 3]))
    );
    assert_eq!(c.call(&op("r", Call::Read)).await, Completion::ok(json!(3)));
    // cas on an absent key fails.
    assert_eq!(
        c.call(&op("absent", Call::Cas(json!(null), json!(1)))).await.kind,
        EventType::Fail
    );
    // append: read-modify-write guarded by mod_revision.
    assert_eq!(
        c.call(&op("a", Call::Append("t0.0;".into()))).await.kind,
        EventType::Ok
    );
    assert_eq!(
        c.call(&op("a", Call::Append("t0.1;".into()))).await.kind,
        EventType::Ok
    );
    assert_eq!(
        c.call(&op("a", Call::Read)).await,
        Completion::ok(json!("t0.0;t0.1;"))
    );
    // set: one key per element under a prefix; the read ranges over it.
    for e in [5, 1, 12] {
        assert_eq!(c.call(&op("s", Call::Add(e))).await, Completion::ok(json!(e)));
    }
    assert_eq!(
        c.call(&op("s", Call::ReadSet)).await,
        Completion::ok(json!([1, 5, 12]))
    );
    assert_eq!(
        c.call(&op("empty", Call::ReadSet)).await,
        Completion::ok(json!([]))
    );
}

#[tokio::test]
async fn concurrent_appends_are_all_applied_exactly_once() {
    let cluster = Cluster::start(1).await;
    let connector = etcd(5000, true).connector().unwrap();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let mut c = connector.client(&cluster.clients[0]);
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let done = c.call(&op("race", Call::Append(format!("t{t}.{i};")))).await;
                assert_eq!(done.kind, EventType::Ok, "{done:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = connector.client(&cluster.clients[0]);
    let read = c.call(&op("race", Call::Read)).await;
    let text = read.value.as_str().unwrap().to_string();
    let tokens: Vec<&str> = text.split(';').filter(|t| !t.is_empty()).collect();
    assert_eq!(tokens.len(), 40, "{text}");
    // Each task's appends appear in its own order.
    for t in 0..4 {
        let mine: Vec<&str> = tokens
            .iter()
            .copied()
            .filter(|x| x.starts_with(&format!("t{t}.")))
            .collect();
        let expected: Vec<String> = (0..10).map(|i| format!("t{t}.{i}")).collect();
        assert_eq!(mine, expected);
    }
}

#[tokio::test]
async fn a_killed_member_refuses_connections_which_is_a_definite_failure() {
    let mut cluster = Cluster::start(1).await;
    let node = cluster.clients[0].clone();
    cluster.children[0].kill().unwrap();
    cluster.children[0].wait().unwrap();
    let mut c = etcd(2000, true).connector().unwrap().client(&node);
    let done = c.call(&op("k", Call::Write(json!(1)))).await;
    assert_eq!(
        (done.kind, done.error.as_deref()),
        (EventType::Fail, Some("connection-refused"))
    );
}

#[tokio::test]
async fn the_driver_against_real_etcd_records_a_valid_looking_history() {
    let cluster = Cluster::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let recorder = Recorder::create(&path).unwrap();
    let counters = Arc::new(Counters::default());
    let protocol = etcd(5000, true);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let config = DriveConfig::new(Workload::CasRegister, 6, 9);
    let task = {
        let (p, n, r, c) = (
            protocol.clone(),
            cluster.clients.clone(),
            recorder.clone(),
            counters.clone(),
        );
        tokio::spawn(async move { drive(&config, &p, &n, &r, c, stop_rx).await })
    };
    // Run until a good number of operations completed (bounded wait, not a timing assertion).
    let give_up = Instant::now() + Duration::from_secs(60);
    while counters.snapshot().ok < 300 && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send(true).unwrap();
    let summary = task.await.unwrap().unwrap();
    assert!(summary.counts.ok >= 300, "{summary:?}");
    let reads = FinalReadConfig {
        workload: Workload::CasRegister,
        first_process: summary.next_process,
        parallelism: 3,
        within: Duration::from_secs(20),
    };
    let finals = final_reads(&reads, &protocol, &cluster.clients, &recorder, &summary.keys)
        .await
        .unwrap();
    assert!(finals.unread.is_empty(), "{finals:?}");
    recorder.finish().unwrap();
    let ops = read_path(&path, Format::Jsonl, false)
        .unwrap()
        .operations()
        .unwrap();
    let count = |f: &str, o: Outcome| ops.iter().filter(|x| x.f == f && x.outcome == o).count();
    assert!(count("cas", Outcome::Ok) > 0 && count("cas", Outcome::Fail) > 0);
    assert!(count("read", Outcome::Ok) > 0 && count("write", Outcome::Ok) > 0);
    assert_eq!(count("write", Outcome::Info) + count("cas", Outcome::Info), 0);
}

#[tokio::test]
async fn without_a_quorum_writes_are_indeterminate_or_refused_for_want_of_a_leader() {
    let cluster = Cluster::start(3).await;
    let node = cluster.clients[0].clone();
    // Member 0 loses its quorum: the two others are paused (SIGSTOP; resumed and killed at the end).
    cluster.signal(1, Signal::SIGSTOP);
    cluster.signal(2, Signal::SIGSTOP);

    // Without the leader header, a write waits for a commit that cannot happen; etcd gives up after its
    // own request timeout (about 7 s) with an error that leaves the outcome open: info, never fail.
    let mut patient = etcd(20_000, false).connector().unwrap().client(&node);
    let done = patient.call(&op("q", Call::Write(json!(1)))).await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");
    assert!(
        done.error.as_deref().unwrap_or("").starts_with("http-5"),
        "etcd's own answer: {done:?}"
    );
    let done = patient.call(&op("q", Call::Cas(json!(1), json!(2)))).await;
    assert_eq!(done.kind, EventType::Info, "{done:?}");

    // With the header, once member 0 knows it has no leader, it refuses at once: a definite failure.
    let mut eager = etcd(3000, true).connector().unwrap().client(&node);
    let give_up = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let done = eager.call(&op("q", Call::Write(json!(3)))).await;
        if done.kind == EventType::Fail {
            break done;
        }
        // Until then it may still believe in a leader: the write is left open (info), never ok.
        assert_eq!(done.kind, EventType::Info, "{done:?}");
        assert!(
            Instant::now() < give_up,
            "member 0 never noticed it lost its leader"
        );
    };
    assert!(
        refused.error.as_deref().unwrap_or("").contains("no leader"),
        "{refused:?}"
    );
    // A read without a quorum fails (it changed nothing), whatever the reason.
    assert_eq!(eager.call(&op("q", Call::Read)).await.kind, EventType::Fail);
}
