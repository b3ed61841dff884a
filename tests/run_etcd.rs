//! `faultline run` end to end against a real 3-node etcd 3.4 cluster (Debian's /usr/bin/etcd) in network
//! namespaces: valid, hundreds of ok operations over several keys, nothing left behind.

#[path = "run_support.rs"]
mod support;

use std::time::Duration;
use support::*;

#[test]
fn etcd_three_nodes_in_namespaces_is_valid() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    let spec = root().join("dbs/etcd.toml");
    let store = store();
    let (status, out, err) = Running::start(&[
        "--db",
        spec.to_str().unwrap(),
        "--backend",
        "netns",
        "--time-limit",
        "10",
        "--concurrency",
        "8",
        "--store",
        store.path().to_str().unwrap(),
    ])
    .finish(Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let run = latest(store.path());
    let per_key = ok_per_key(&run);
    let ok: usize = per_key.values().sum();
    assert!(ok >= 300, "only {ok} ok operations: {per_key:?}");
    assert!(
        per_key.values().filter(|n| **n >= 10).count() >= 3,
        "too few keys: {per_key:?}"
    );
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("test.json")).unwrap()).unwrap();
    assert_eq!(test["db"], "etcd");
    assert!(
        test["system_version"].as_str().unwrap_or("").contains("3.4"),
        "{}",
        test["system_version"]
    );
    assert_eq!(leftovers(&run), Vec::<String>::new());
}

/// One `faultline run` of `spec` on 3 etcd members in namespaces whose nodes are isolated one at a time (every
/// 3 s on average) for 20 s, on a fresh seed each time (test.json records it); returns the exit code, the run
/// folder's results.json and the run's output.
fn isolated_run(spec: &str, store: &std::path::Path) -> (Option<i32>, serde_json::Value, String) {
    let spec = root().join(spec);
    let (status, out, err) = Running::start(&[
        "--db",
        spec.to_str().unwrap(),
        "--backend",
        "netns",
        "--nemesis",
        "isolate",
        "--nemesis-interval",
        "3",
        "--time-limit",
        "20",
        "--concurrency",
        "9",
        "--store",
        store.to_str().unwrap(),
    ])
    .finish(Duration::from_secs(180));
    let run = latest(store);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(leftovers(&run), Vec::<String>::new());
    (status.code(), results, format!("stdout:\n{out}\nstderr:\n{err}"))
}

/// etcd's serializable reads are answered from the member's own state: a member cut off from the others
/// keeps answering them with what it had, so the checker finds stale reads. Linearizable reads under the
/// same faults stay valid.
#[test]
fn etcd_serializable_reads_are_stale_under_partitions_and_linearizable_reads_are_not() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    let store = store();
    let (code, results, out) = isolated_run("dbs/etcd-serializable.toml", store.path());
    assert_eq!(code, Some(1), "serializable reads were not found stale: {out}");
    assert_eq!(results["linearizability"]["verdict"], "invalid", "{results}");
    let store = self::store();
    let (code, results, out) = isolated_run("dbs/etcd.toml", store.path());
    assert_eq!(code, Some(0), "linearizable reads: {results}\n{out}");
}
