//! Membership faults in a real run: `faultline run --nemesis member,partition` on 5 raftkv nodes in
//! namespaces (real processes, real iptables, spares started on demand). The composite member-split fault
//! replaces two members by two fresh nodes in one request while the leader and the fresh nodes are cut from
//! the rest: raftkv with `--bug unsafe-membership` acknowledges the change and serves on both sides (the
//! run is invalid); correct raftkv (joint consensus) refuses it and the run stays valid. The seed is drawn
//! at random by each run: coverage makes member-split the first fault of every such schedule.

#[path = "run_support.rs"]
mod run_support;

use assert_cmd::Command;
use checker::Process;
use serde_json::Value;

/// Runs 20 s on 5 raftkv nodes with `node_args`; returns the exit code and the nemesis events (f, value).
fn run(name: &str, node_args: &[&str]) -> (i32, Vec<(String, Value)>) {
    run_support::ensure_raftkv();
    let store = run_support::store();
    let name = format!("{name}-{}", std::process::id());
    let out = Command::cargo_bin("faultline")
        .unwrap()
        .args(["run", "--backend", "netns", "--nodes", "5", "--time-limit", "20"])
        .args(["--nemesis", "member,partition", "--nemesis-interval", "2"])
        .args(node_args)
        .args(["--name", &name, "--store"])
        .arg(store.path())
        .timeout(std::time::Duration::from_secs(240))
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let run = results::Store::open(store.path()).unwrap().latest().unwrap();
    let events = results::data::read_history(&run.history_path()).unwrap();
    let nemesis = events
        .into_iter()
        .filter(|e| e.process == Process::Nemesis)
        .map(|e| (e.f, e.value))
        .collect();
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    (code, nemesis)
}

/// The answer (`member-ok` or `member-fail`) to the member-split's change, after checking that the split's
/// cut came first and that the nemesis asked for the initial members back; with `restorable`, that the run
/// ended with them restored. (A system that took the unsafe change may have lost every quorum since: it can
/// no longer agree to any change, and asking is all the nemesis can do.)
fn split_answer(events: &[(String, Value)], restorable: bool) -> String {
    let cut = events
        .iter()
        .position(|(f, v)| f == "start-partition" && v["kind"] == "member-split")
        .unwrap_or_else(|| panic!("no member-split: {events:?}"));
    let (f, request) = &events[cut + 1];
    assert_eq!(
        (f.as_str(), request["kind"].as_str()),
        ("member-request", Some("split")),
        "the change is asked for once the cut is in force: {events:?}"
    );
    assert_eq!(request["add"].as_array().unwrap().len(), 2, "{request}");
    assert_eq!(request["remove"].as_array().unwrap().len(), 2, "{request}");
    let answer = events[cut + 2..]
        .iter()
        .find(|(f, _)| f.starts_with("member-") && f != "member-retire")
        .unwrap();
    let initial = serde_json::json!(["n1", "n2", "n3", "n4", "n5"]);
    let asked = events
        .iter()
        .any(|(f, v)| f == "member-request" && v["kind"] == "restore" && v["target"] == initial);
    assert!(asked, "no restore of the initial members asked for: {events:?}");
    if restorable {
        let restored = events
            .iter()
            .rev()
            .find(|(f, _)| f.starts_with("member-") && f != "member-retire")
            .unwrap();
        assert_eq!(restored.0, "member-ok", "{events:?}");
        assert_eq!(restored.1["members"], initial, "{events:?}");
    }
    answer.0.clone()
}

#[test]
fn member_split_finds_unsafe_membership_and_correct_raftkv_stays_valid() {
    assert!(
        run_support::is_root(),
        "the netns backend needs root (CI runs as root)"
    );
    let (code, events) = run("member-unsafe", &["--node-arg=--bug=unsafe-membership"]);
    assert_eq!(split_answer(&events, false), "member-ok", "{events:?}");
    assert_eq!(code, 1, "unsafe-membership under member-split is invalid");

    let (code, events) = run("member-correct", &[]);
    assert_eq!(split_answer(&events, true), "member-fail", "{events:?}");
    assert_eq!(code, 0, "correct raftkv under the same faults is valid");
}
