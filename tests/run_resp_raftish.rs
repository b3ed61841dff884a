//! A RESP system with no HTTP at all, whose replies are simple strings (`+value`): a small leader-forwarding
//! key-value node in Python (tests/fixtures/resp_raftish.py), three real processes on loopback, tested through
//! its spec alone (tests/fixtures/resp_raftish.toml): RESP readiness (`PING`), the leader found by a RESP probe
//! (`INFO raft`, read by regex), the `resp` client.

#[path = "run_support.rs"]
mod support;

use std::time::Duration;
use support::*;

fn run(spec: &std::path::Path) -> (Option<i32>, String, String, tempfile::TempDir) {
    let store = store();
    let (status, out, err) = Running::start(&[
        "--db",
        spec.to_str().unwrap(),
        "--backend",
        "local",
        "--time-limit",
        "4",
        "--concurrency",
        "4",
        "--store",
        store.path().to_str().unwrap(),
    ])
    .finish(Duration::from_secs(90));
    (status.code(), out, err, store)
}

#[test]
fn a_resp_system_with_simple_string_replies_runs_end_to_end() {
    let spec = root().join("tests/fixtures/resp_raftish.toml");
    let (code, out, err, store) = run(&spec);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let run_dir = latest(store.path());
    let per_key = ok_per_key(&run_dir);
    let ok: usize = per_key.values().sum();
    assert!(ok >= 100, "only {ok} ok operations");
    // Reads of written values came back from `+value` simple strings.
    let read_values = history(&run_dir)
        .into_iter()
        .filter(|e| e["type"] == "ok" && e["f"] == "read" && e["value"].is_number())
        .count();
    assert!(read_values >= 10, "only {read_values} reads returned a value");
    assert_eq!(leftovers(&run_dir), Vec::<String>::new());
}

#[test]
fn without_a_leader_from_the_resp_probe_the_cluster_is_not_ready() {
    // The same system, with a leader regex that matches nothing: readiness waits for a leader and gives up.
    let text = std::fs::read_to_string(root().join("tests/fixtures/resp_raftish.toml")).unwrap();
    let wrong = text
        .replace(
            r#"leader_regex = "leader:(\\w+)""#,
            r#"leader_regex = "chief:(\\w+)""#,
        )
        .replace("[ready]\n", "[ready]\ntimeout_s = 3\n");
    assert_ne!(wrong, text);
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("resp_raftish.toml");
    std::fs::write(&spec, wrong).unwrap();
    std::fs::copy(
        root().join("tests/fixtures/resp_raftish.py"),
        dir.path().join("resp_raftish.py"),
    )
    .unwrap();
    let (code, out, err, _store) = run(&spec);
    assert_eq!(code, Some(3), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("no leader was elected"), "{err}");
}
