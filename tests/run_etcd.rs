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
