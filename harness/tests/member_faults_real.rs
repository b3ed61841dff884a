//! The nemesis's membership faults on a real deployment: 5 raftkv nodes and 2 spares in network namespaces
//! (root), driven through the harness's own `nemesis::Cluster` (the spec's `[membership]` requests, real
//! processes, real iptables). Each test asserts what the fault did from raftkv's side (its `/status`, which
//! node accepts a write) and from the deployment's (processes, data directories, the clients' addresses).

use harness::deployment::{new_run_id, DeploymentOptions};
use harness::state::StateFile;
use harness::{Backend, Deployment, FaultTarget};
use nemesis::{Action, Nemesis};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

type Log = Arc<Mutex<Vec<(String, Value)>>>;

struct Lab {
    dep: Arc<Deployment>,
    nem: Nemesis,
    log: Log,
    _dir: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.dep.teardown();
    }
}

async fn lab(node_args: &[&str]) -> Lab {
    support::ensure_raftkv();
    let dir = tempfile::tempdir().unwrap();
    let run_id = new_run_id();
    let opts = DeploymentOptions {
        node_args: node_args.iter().map(|a| a.to_string()).collect(),
        run_id: run_id.clone(),
        spares: 2,
        ..DeploymentOptions::plain(Backend::Netns, 5, dir.path().to_path_buf())
    };
    let state = StateFile::create(dir.path()).unwrap();
    let dep = Arc::new(Deployment::create(support::spec("raftkv.toml"), &opts, state).unwrap());
    dep.start_all().unwrap();
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    dep.wait_ready(&mut rx).await.unwrap();
    let log: Log = Arc::default();
    let l = log.clone();
    let sink = move |f: &str, v: Value| l.lock().unwrap().push((f.to_string(), v));
    let nem = Nemesis::new(&run_id, Arc::new(FaultTarget(dep.clone())), Arc::new(sink));
    Lab {
        dep,
        nem,
        log,
        _dir: dir,
    }
}

impl Lab {
    fn events(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().map(|(f, _)| f.clone()).collect()
    }

    fn addr(&self, id: &str) -> String {
        let n = self.dep.nodes().iter().find(|n| n.id == id).unwrap();
        n.client_address.clone()
    }

    async fn request(&self, id: &str, method: &str, path: &str, body: &str) -> Option<(u16, Value)> {
        let c = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let rq = c
            .request(m, format!("http://{}{path}", self.addr(id)))
            .header("content-type", "application/json")
            .body(body.to_string());
        let resp = rq.send().await.ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// `/status` of a node: (role, members).
    async fn status(&self, id: &str) -> Option<(String, Vec<String>)> {
        let (_, v) = self.request(id, "GET", "/status", "").await?;
        let members = v["members"]
            .as_array()?
            .iter()
            .filter_map(|m| m.as_str())
            .map(String::from);
        Some((v["role"].as_str()?.to_string(), members.collect()))
    }

    /// Polls until `id` lists exactly `want` as members (10 s at most).
    async fn await_members(&self, id: &str, want: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.status(id).await.map(|s| s.1);
            if got.as_deref().is_some_and(|g| g == want) {
                return;
            }
            assert!(Instant::now() < deadline, "{id} lists {got:?}, not {want:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn write_ok(&self, id: &str, value: i64) -> bool {
        let body = format!("{{\"value\":{value}}}");
        matches!(self.request(id, "PUT", "/kv/m", &body).await, Some((200, _)))
    }

    /// Whether a write through `id` succeeds within 10 s (the cluster may be electing a leader when a change
    /// removed the old one).
    async fn write_ok_within(&self, id: &str, value: i64) -> bool {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if self.write_ok(id, value).await {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        false
    }

    /// Whether a TCP connection from `src`'s namespace to `dst`'s raftkv port opens within 2 s.
    async fn connects(&self, src: &str, dst: &str) -> bool {
        let script = format!("exec 3<>/dev/tcp/{}", self.addr(dst).replace(':', "/"));
        let argv: Vec<String> = ["timeout", "2", "bash", "-c", &script].map(String::from).to_vec();
        self.dep.exec(src, &argv).await.unwrap().status.success()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_two_members_in_one_request_then_restore() {
    assert!(
        harness::sys::is_root(),
        "needs root (namespaces); CI runs as root"
    );
    let lab = lab(&[]).await;
    let spare_addr = lab.addr("n6");
    assert!(!lab.dep.member_addresses().borrow().contains(&spare_addr));
    lab.nem
        .apply(&Action::MemberReplace {
            remove: vec!["n2".into(), "n3".into()],
        })
        .await
        .unwrap();
    assert_eq!(
        lab.events(),
        ["member-request", "member-ok", "member-retire", "member-retire"]
    );
    let ok = lab.log.lock().unwrap()[1].1.clone();
    assert_eq!(ok["add"], serde_json::json!(["n6", "n7"]), "{ok}");
    // raftkv's own view, on a member that stayed and on a fresh one.
    let now = ["n1", "n4", "n5", "n6", "n7"];
    lab.await_members("n1", &now).await;
    lab.await_members("n6", &now).await;
    for gone in ["n2", "n3"] {
        let node = lab.dep.nodes().iter().find(|n| n.id == gone).unwrap();
        assert!(lab.dep.process_of(gone).is_none(), "{gone} still runs");
        assert!(!node.data_dir.exists(), "{gone}'s data was not wiped");
    }
    // The clients follow: n6 gets clients, n2 loses its own.
    let addrs = lab.dep.member_addresses().borrow().clone();
    assert!(
        addrs.contains(&spare_addr) && !addrs.contains(&lab.addr("n2")),
        "{addrs:?}"
    );
    assert!(
        lab.write_ok_within("n6", 1).await,
        "a fresh member serves (forwarding to the leader)"
    );

    lab.nem.apply(&Action::MemberRestore).await.unwrap();
    let initial = ["n1", "n2", "n3", "n4", "n5"];
    lab.await_members("n1", &initial).await;
    lab.await_members("n2", &initial).await;
    assert!(lab.dep.process_of("n6").is_none() && lab.dep.process_of("n2").is_some());
    let restored = lab.log.lock().unwrap()[5].1.clone();
    assert_eq!(
        (restored["kind"].as_str(), restored["members"].clone()),
        (Some("restore"), serde_json::json!(initial)),
        "{restored}"
    );
    lab.nem.heal().await.unwrap();
}

/// Member-split on correct raftkv and with `--bug unsafe-membership`: the cut is in force both ways; the
/// unsafe change is acknowledged and both sides elect a leader that accepts writes; the joint-consensus
/// change is refused and only the old side accepts writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_split_makes_two_majorities_only_without_joint_consensus() {
    assert!(
        harness::sys::is_root(),
        "needs root (namespaces, iptables); CI runs as root"
    );
    for unsafe_membership in [true, false] {
        let args: &[&str] = if unsafe_membership {
            &["--bug=unsafe-membership"]
        } else {
            &[]
        };
        let lab = lab(args).await;
        lab.nem.apply(&Action::MemberSplit { seed: 7 }).await.unwrap();
        let log = lab.log.lock().unwrap().clone();
        let (f, cut) = &log[0];
        assert_eq!(
            (f.as_str(), cut["kind"].as_str()),
            ("start-partition", Some("member-split"))
        );
        let side = |i: usize| -> Vec<String> {
            cut["groups"][i]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let (new, old) = (side(0), side(1));
        assert_eq!((new.len(), old.len()), (3, 4), "{cut}");
        assert_eq!(Some(new[0].as_str()), cut["leader"].as_str());
        assert!(new[1..].iter().all(|s| s == "n6" || s == "n7"), "{cut}");
        assert!(!lab.connects(&new[0], &old[0]).await && !lab.connects(&old[1], &new[1]).await);
        assert!(lab.connects(&new[0], &new[1]).await && lab.connects(&old[0], &old[1]).await);
        let answer = log[2].0.as_str();
        assert_eq!(
            answer,
            if unsafe_membership {
                "member-ok"
            } else {
                "member-fail"
            },
            "{log:?}"
        );

        // Which side accepts writes, polled for up to 10 s (the old side needs an election first).
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut new_writes, mut old_writes) = (false, false);
        let mut value = 0;
        while Instant::now() < deadline && !(new_writes && old_writes) {
            value += 1;
            new_writes |= lab.write_ok(&new[0], value).await;
            for o in &old {
                if lab.status(o).await.is_some_and(|s| s.0 == "leader") {
                    old_writes |= lab.write_ok(o, value).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            old_writes,
            "the old configuration's majority elects a leader that accepts writes"
        );
        assert_eq!(
            new_writes, unsafe_membership,
            "the new side accepts writes exactly when the change skipped joint consensus"
        );
        lab.nem.apply(&Action::StopPartition).await.unwrap();
        lab.nem.apply(&Action::MemberRestore).await.unwrap();
        lab.nem.heal().await.unwrap();
    }
}
