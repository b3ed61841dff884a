//! Real clusters of etcd (Debian's /usr/bin/etcd) on both backends: start, readiness, leader probe, exec,
//! kill/restart, pause/resume, tear-down leaving nothing behind.

use harness::deployment::DeploymentOptions;
use harness::state::{read_state, Resource, StateFile};
use harness::{Backend, Deployment, LoadedSpec};
use std::sync::Arc;

fn etcd_spec() -> Arc<LoadedSpec> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbs/etcd.toml");
    Arc::new(LoadedSpec::from_path(&p).unwrap())
}

/// Asserts that nothing a state file lists is left.
fn assert_nothing_left(resources: &[Resource]) {
    for r in resources {
        match r {
            Resource::Netns { name } => assert!(!harness::sys::netns_exists(name), "namespace {name} left"),
            Resource::Bridge { name } | Resource::Veth { name } => {
                assert!(!harness::sys::link_exists(name), "link {name} left")
            }
            Resource::Chain { table, chain, .. } => {
                assert!(!harness::sys::chain_exists(table, chain), "chain {chain} left")
            }
            Resource::Process {
                node,
                pid,
                start_time,
            } => {
                assert!(
                    !harness::sys::is_ours_and_alive(*pid, *start_time),
                    "{node} pid {pid} left"
                )
            }
            Resource::SubnetClaim { path, .. } => {
                assert!(!std::path::Path::new(path).exists(), "{path} left")
            }
            Resource::Mount { path, .. } => {
                assert!(
                    !lazyfs::is_mounted(std::path::Path::new(path)),
                    "mount {path} left"
                )
            }
            _ => {}
        }
    }
}

/// A process's state letter from /proc (`T` when stopped by a signal).
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim().chars().next()
}

/// Whether the process's state satisfies `want` within 3 s.
async fn eventually_state(pid: i32, want: impl Fn(char) -> bool) -> bool {
    for _ in 0..60 {
        if proc_state(pid).is_some_and(&want) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

async fn exercise(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let state = StateFile::create(dir.path()).unwrap();
    let opts = DeploymentOptions::plain(backend, 3, dir.path().to_path_buf());
    let cluster = Deployment::create(etcd_spec(), &opts, state.clone()).unwrap();
    async {
        cluster.start_all().unwrap();
        let (_tx, mut rx) = tokio::sync::watch::channel(false);
        cluster.wait_ready(&mut rx).await.unwrap();
        let leader = cluster.leader().await.unwrap().expect("a leader");
        assert!(cluster.nodes().iter().any(|n| n.id == leader));
        // exec runs where the node's network lives.
        let out = cluster
            .exec("n1", &["ip".into(), "-4".into(), "-o".into(), "addr".into()])
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&cluster.nodes()[0].host.to_string()), "{text}");
        // Kill a follower, restart it on the same data dir, and see the cluster whole again.
        let follower = cluster
            .nodes()
            .iter()
            .find(|n| n.id != leader)
            .unwrap()
            .id
            .clone();
        let (pid, st) = cluster.process_of(&follower).unwrap();
        cluster.kill_node(&follower).unwrap();
        assert!(!harness::sys::is_ours_and_alive(pid, st));
        cluster.start_node(&follower, false).unwrap();
        cluster.wait_ready(&mut rx).await.unwrap();
        // Pause it: the process is stopped (state T) and stops answering; resumed, it runs and answers again.
        let node = cluster.nodes().iter().find(|n| n.id == follower).unwrap().clone();
        let (pid, _) = cluster.process_of(&follower).unwrap();
        assert!(
            cluster.probe_ready(&node).await,
            "{follower} not ready before the pause"
        );
        cluster
            .signal_node(&follower, nix::sys::signal::Signal::SIGSTOP)
            .unwrap();
        assert!(
            eventually_state(pid, |s| s == 'T').await,
            "{follower} (pid {pid}) did not stop: {:?}",
            proc_state(pid)
        );
        assert!(
            !cluster.probe_ready(&node).await,
            "{follower} answers while paused"
        );
        cluster
            .signal_node(&follower, nix::sys::signal::Signal::SIGCONT)
            .unwrap();
        assert!(
            eventually_state(pid, |s| s != 'T').await,
            "{follower} (pid {pid}) still stopped after SIGCONT"
        );
        cluster.wait_ready(&mut rx).await.unwrap();
        assert!(
            cluster.probe_ready(&node).await,
            "{follower} does not answer after the resume"
        );
    }
    .await;
    let report = cluster.teardown();
    assert!(report.errors.is_empty(), "{report:?}");
    let resources = read_state(state.path()).unwrap();
    assert_nothing_left(&resources);
    assert_eq!(report.processes_stopped.len(), 3, "{report:?}");
    // Logs are in the run folder.
    let log = std::fs::read_to_string(dir.path().join("nodes/n1.log")).unwrap();
    assert!(log.contains("=== faultline: starting n1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_cluster_on_loopback() {
    exercise(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_cluster_in_namespaces() {
    exercise(Backend::Netns).await;
}

/// The spec's extra log files are copied next to the node's log; environment and placeholders reach the node.
#[test]
fn extra_log_files_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
name = "shell"
command = ["/bin/sh", "-c", "echo \"$GREETING from {id} on {port}\" > {data_dir}/own.log; exec sleep 30"]
[env]
GREETING = "hello {id}"
[ready]
kind = "tcp"
[client]
protocol = "http-kv"
[log]
files = ["{data_dir}/own.log"]
"#;
    let spec = Arc::new(LoadedSpec::from_text(text, "shell.toml", None).unwrap());
    let state = StateFile::create(dir.path()).unwrap();
    let opts = DeploymentOptions::plain(Backend::Local, 2, dir.path().to_path_buf());
    let cluster = Deployment::create(spec, &opts, state.clone()).unwrap();
    cluster.start_all().unwrap();
    let copied = dir.path().join("nodes/n2-own.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !copied.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        cluster.collect_logs();
    }
    let report = cluster.teardown();
    assert_eq!(report.processes_stopped.len(), 2, "{report:?}");
    let text = std::fs::read_to_string(&copied).unwrap();
    let port = cluster.nodes()[1].client_port;
    assert_eq!(text.trim(), format!("hello n2 from n2 on {port}"));
    assert_nothing_left(&read_state(state.path()).unwrap());
}
