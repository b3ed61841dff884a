//! `faultline run` end to end with the crash faults and the minority-leader composite against 5 real raftkv
//! nodes in network namespaces: correct raftkv stays valid under them (and every node is back), and
//! raftkv's `--bug stale-leader-read` is caught by the minority-leader cut (its followers' clients reach the
//! cut-off leader through forwarding).

#[path = "run_support.rs"]
mod support;

use std::time::Duration;
use support::*;

/// One 20 s run on 5 nodes with `nemesis`; returns the exit code, the nemesis events and the output.
fn run(
    nemesis: &str,
    bug: Option<&str>,
    store: &std::path::Path,
) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let bug_arg = bug.map(|b| format!("--node-arg=--bug={b}"));
    // No --seed: a fresh one each run (test.json records it). The schedule puts the first fault in the
    // first half interval and draws only what fits, so a named composite fault always happens.
    let mut args = MINORITY_LEADER_RUN.to_vec();
    args[1] = nemesis; // the same run with `nemesis` as its faults
    args.extend(bug_arg.as_deref());
    netns_run(&args, store, Duration::from_secs(180))
}

#[test]
fn correct_raftkv_stays_valid_under_crash_faults_and_minority_leader() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    let store = store();
    let (code, events, out) = run("crash,minority-leader", None, store.path());
    assert_eq!(code, Some(0), "{out}");
    // Whatever the schedule drew, its steps happened: kills tagged with their fault, each one restarted.
    let kills: Vec<&serde_json::Value> = events.iter().filter(|e| e["f"] == "kill").collect();
    assert!(!kills.is_empty(), "no crash fault ran: {events:?}");
    for k in &kills {
        let fault = k["value"]["fault"].as_str().unwrap_or("");
        assert!(
            [
                "kill-several",
                "kill-election",
                "restart-majority",
                "minority-leader"
            ]
            .contains(&fault),
            "{k}"
        );
    }
    let restarts = events.iter().filter(|e| e["f"] == "restart").count();
    assert_eq!(restarts, kills.len(), "{events:?}");
}

#[test]
fn minority_leader_catches_stale_leader_reads() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    let store = store();
    let (code, events, out) = run("minority-leader", Some("stale-leader-read"), store.path());
    assert!(
        events.iter().any(|e| e["value"]["kind"] == "minority-leader"),
        "{events:?}"
    );
    assert_eq!(code, Some(1), "stale reads not caught: {out}");
}
