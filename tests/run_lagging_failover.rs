//! `faultline run` end to end with the lagging-failover fault against 5 real raftkv nodes in network
//! namespaces, on a random seed each time (printed in the output): two followers are paused, the leader is
//! killed as they resume, and the new leader with the follower that kept up is cut from the laggards and the
//! restarted old leader; raftkv's `--bug skip-prev-log-check` (AppendEntries accepted without the
//! prevLogIndex/prevLogTerm check) is caught, correct raftkv stays valid under the same fault, and nothing
//! is left behind.

#[path = "run_support.rs"]
mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

/// One 20 s run on 5 nodes of the append workload with `--nemesis lagging-failover`; returns the exit code,
/// the nemesis events and the output.
fn run(bug: Option<&str>, store: &std::path::Path) -> (Option<i32>, Vec<Value>, String) {
    let bug_arg = bug.map(|b| format!("--node-arg=--bug={b}"));
    let mut args = vec![
        "--workload",
        "append",
        "--nemesis",
        "lagging-failover",
        "--time-limit",
        "20",
    ];
    args.extend(bug_arg.as_deref());
    netns_run(&args, store, Duration::from_secs(180))
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The fault's steps happened as documented, in order: two followers paused, both resumed, the leader
/// killed; then a cut with the new leader and the follower that was not paused on one side, the paused two
/// and the old leader on the other, both ways; the old leader restarted inside it; the cut stopped.
fn assert_steps(events: &[Value]) {
    let f = |i: usize| events[i]["f"].as_str().unwrap();
    let cuts: Vec<usize> = (0..events.len())
        .filter(|&i| f(i) == "start-partition" && events[i]["value"]["kind"] == "lagging-failover")
        .collect();
    assert!(!cuts.is_empty(), "no lagging-failover cut: {events:?}");
    for &c in &cuts {
        assert!(c >= 5, "{events:?}");
        let steps: Vec<&str> = (c - 5..=c + 2).map(f).collect();
        let want = [
            "pause",
            "pause",
            "resume",
            "resume",
            "kill",
            "start-partition",
            "restart",
            "stop-partition",
        ];
        assert_eq!(steps, want, "{events:?}");
        let paused: BTreeSet<String> = (c - 5..c - 3)
            .map(|i| events[i]["value"]["node"].as_str().unwrap().to_string())
            .collect();
        let kill = &events[c - 1]["value"];
        assert_eq!(kill["fault"], "lagging-failover", "{kill}");
        assert_eq!(kill["leader"], true, "{kill}");
        let old = kill["node"].as_str().unwrap().to_string();
        assert_eq!(events[c + 1]["value"]["node"], old.as_str());
        let cut = &events[c]["value"];
        let (kept_up, rest) = (names(&cut["groups"][0]), names(&cut["groups"][1]));
        let mut laggards = paused.clone();
        laggards.insert(old.clone());
        assert_eq!(rest, laggards, "{cut}");
        assert_eq!(kept_up.len(), 2, "{cut}");
        assert!(kept_up.contains(cut["leader"].as_str().unwrap()), "{cut}");
        assert!(kept_up.is_disjoint(&rest), "{cut}");
        for (dst, from) in cut["drops"].as_object().unwrap() {
            let other = if kept_up.contains(dst) { &rest } else { &kept_up };
            assert_eq!(&names(from), other, "{dst}: {cut}");
        }
    }
}

#[test]
fn lagging_failover_catches_skip_prev_log_check() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    // Measured: 20 s runs with one step of the fault found the bug on 4 seeds of 4 (9011-9014, two clusters
    // at once), each time with both laggards logging that they took entries whose previous entry did not
    // match; 60 s runs on 15 of 15 (1601-1605, 1701-1710). Still a chance per step, so: up to three runs on
    // fresh seeds.
    found_within_three_runs(
        "skip-prev-log-check",
        |store| run(Some("skip-prev-log-check"), store),
        assert_steps,
    );
}

#[test]
fn correct_raftkv_stays_valid_under_lagging_failover() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    let store = store();
    let (code, events, out) = run(None, store.path());
    assert_steps(&events);
    assert_eq!(code, Some(0), "{out}");
}
