//! `faultline run` end to end against a real 3-node raftkv cluster, on both backends: the run is valid, with
//! hundreds of ok operations over several keys, and leaves nothing behind.

#[path = "run_support.rs"]
mod support;

use std::time::Duration;
use support::*;

fn run_valid(backend: &str) {
    ensure_raftkv();
    let store = store();
    let s = store.path().to_str().unwrap();
    let (status, out, err) = Running::start(&[
        "--backend",
        backend,
        "--time-limit",
        "10",
        "--concurrency",
        "8",
        "--seed",
        "7",
        "--store",
        s,
    ])
    .finish(Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.starts_with("VALID"), "{out}");
    let run = latest(store.path());
    let per_key = ok_per_key(&run);
    let ok: usize = per_key.values().sum();
    assert!(ok >= 300, "only {ok} ok operations: {per_key:?}");
    assert!(
        per_key.values().filter(|n| **n >= 10).count() >= 3,
        "too few keys: {per_key:?}"
    );
    for f in [
        "history.jsonl",
        "test.json",
        "results.json",
        "nodes/n1.log",
        "nodes/n3.log",
    ] {
        assert!(run.join(f).is_file(), "{f} missing in {}", run.display());
    }
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("test.json")).unwrap()).unwrap();
    assert_eq!(test["seed"], 7);
    assert_eq!(test["backend"], backend);
    assert!(
        test["system_version"].as_str().unwrap_or("").contains("raftkv"),
        "{}",
        test["system_version"]
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["verdict"], "valid");
    assert!(created(&run).len() >= 4, "the run recorded what it created");
    assert_eq!(leftovers(&run), Vec::<String>::new());
}

#[test]
fn raftkv_three_nodes_in_namespaces_is_valid() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    run_valid("netns");
}

#[test]
fn raftkv_three_nodes_on_loopback_is_valid() {
    run_valid("local");
}

/// The other workloads run end to end too, each checked with its own model.
#[test]
fn register_append_and_set_workloads_on_loopback_are_valid() {
    ensure_raftkv();
    for (workload, model) in [("register", "register"), ("append", "kv"), ("set", "set")] {
        let store = store();
        let (status, out, err) = Running::start(&[
            "--backend",
            "local",
            "--workload",
            workload,
            "--time-limit",
            "3",
            "--concurrency",
            "4",
            "--store",
            store.path().to_str().unwrap(),
        ])
        .finish(Duration::from_secs(90));
        assert_eq!(
            status.code(),
            Some(0),
            "{workload}: stdout:\n{out}\nstderr:\n{err}"
        );
        let run = latest(store.path());
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
        assert_eq!(results["linearizability"]["model"], model);
        assert!(ok_per_key(&run).values().sum::<usize>() >= 50, "{workload}");
        assert_eq!(leftovers(&run), Vec::<String>::new());
    }
}
