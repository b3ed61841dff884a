//! `faultline run` end to end with the crash-electorate fault against 5 real raftkv nodes in network
//! namespaces, on a random seed each time (printed in the output): raftkv's `--bug volatile-vote` (term and
//! vote kept only in memory) is caught, correct raftkv stays valid under the same fault, and nothing is left
//! behind.

#[path = "run_support.rs"]
mod support;

use std::time::Duration;
use support::*;

/// One run of `secs` seconds on 5 nodes with `--nemesis crash-electorate` every 2 s on average; returns the
/// exit code, the nemesis events and the output.
fn run(
    bug: Option<&str>,
    secs: &str,
    store: &std::path::Path,
) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let bug_arg = bug.map(|b| format!("--node-arg=--bug={b}"));
    let mut args = vec![
        "--nemesis",
        "crash-electorate",
        "--nemesis-interval",
        "2",
        "--time-limit",
        secs,
    ];
    args.extend(bug_arg.as_deref());
    netns_run(&args, store, Duration::from_secs(240))
}

/// The fault's steps happened: the old and new leaders cut apart at least once, every kill restarted, every
/// pause resumed.
fn assert_steps(events: &[serde_json::Value]) {
    let cuts = events
        .iter()
        .filter(|e| e["f"] == "start-partition" && e["value"]["kind"] == "crash-electorate")
        .filter(|e| e["value"]["stage"] == "cut")
        .count();
    assert!(cuts >= 1, "no crash-electorate cut: {events:?}");
    let count = |f: &str| events.iter().filter(|e| e["f"] == f).count();
    assert_eq!(count("kill"), count("restart"), "{events:?}");
    assert_eq!(count("pause"), count("resume"), "{events:?}");
}

#[test]
fn crash_electorate_catches_volatile_vote() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    // Each episode of the fault (one every 8-10 s) exposes the bug with some chance only: the restarted voters
    // must have missed the new leader's first entry. Measured: 30 s runs found it on 4 of 6 seeds, 60 s runs
    // on 8 of 9 (the suite's 5 and seeds 401-404), the first anomaly 11-40 s in; one 90 s run would still
    // miss about once in 25. So: up to three 45 s runs, each on a fresh seed; the first that finds the bug
    // ends the test, and three valid runs fail it (about once in 150 if the fault works as measured, every
    // time if it no longer exposes the bug).
    found_within_three_runs(
        "volatile-vote",
        |store| run(Some("volatile-vote"), "45", store),
        assert_steps,
    );
}

#[test]
fn correct_raftkv_stays_valid_under_crash_electorate() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    let store = store();
    let (code, events, out) = run(None, "30", store.path());
    assert_steps(&events);
    assert_eq!(code, Some(0), "{out}");
}
