//! A run interrupted with SIGINT in each phase stops cleanly and leaves nothing behind: no namespaces,
//! bridges, veths, chains or node processes (checked against everything its state file recorded).

#[path = "run_support.rs"]
mod support;

use std::time::Duration;
use support::*;

/// Starts a 3-node raftkv run with partitions and kills, sends SIGINT once stderr announces `phase`, and
/// checks the tear-down.
fn interrupt_in(phase: &str) {
    ensure_raftkv();
    let store = store();
    let mut run = Running::start(&[
        "--time-limit",
        "4",
        "--nemesis",
        "partition,kill",
        "--nemesis-interval",
        "1",
        "--concurrency",
        "4",
        "--seed",
        "11",
        "--store",
        store.path().to_str().unwrap(),
    ]);
    let marker = format!("faultline: phase {phase}");
    assert!(
        run.wait_for(&marker, Duration::from_secs(90)),
        "never reached {phase}: {}",
        run.stderr.join("\n")
    );
    run.signal("INT");
    let (status, out, err) = run.finish(Duration::from_secs(90));
    let run_dir = latest(store.path());
    // Where the signal landed decides the outcome. Before the check begins, the run stops, says so and
    // fails (exit 3). Once the check has begun, the run completes and exits with its verdict. Heal, final
    // reads and tear-down can be over within milliseconds, before the signal lands: then the run completes
    // too, and never says it received the signal.
    let code = status.code().unwrap_or(-1);
    let received = err.find("faultline: SIGINT received");
    let checking = err.find("faultline: phase check");
    let early = received.is_some_and(|r| checking.is_none_or(|c| r < c));
    if matches!(phase, "setup" | "run") {
        assert!(early, "{phase}: the signal did not land before the check:\n{err}");
    }
    if early {
        assert_eq!(
            code, 3,
            "{phase}: interrupted, yet exit {status:?}\nstdout:\n{out}\nstderr:\n{err}"
        );
        assert!(err.contains("interrupted by SIGINT"), "{phase}: {err}");
    } else {
        let results = std::fs::read_to_string(run_dir.join("results.json"))
            .unwrap_or_else(|e| panic!("{phase}: completed run without results.json ({e}):\n{err}"));
        let verdict: serde_json::Value = serde_json::from_str(&results).unwrap();
        let want = match verdict["verdict"].as_str() {
            Some("valid") => 0,
            Some("invalid") => 1,
            Some("unknown") => 2,
            v => panic!("{phase}: verdict {v:?}"),
        };
        assert_eq!(
            code, want,
            "{phase}: completed run, exit {status:?}\nstderr:\n{err}"
        );
    }
    assert!(!created(&run_dir).is_empty(), "{phase}: the run recorded nothing");
    assert_eq!(
        leftovers(&run_dir),
        Vec::<String>::new(),
        "{phase}: left behind; stderr:\n{err}"
    );
}

#[test]
fn sigint_during_setup_and_final_reads() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    interrupt_in("setup");
    interrupt_in("final-reads");
}

#[test]
fn sigint_during_run_and_heal() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    interrupt_in("run");
    interrupt_in("heal");
}

#[test]
fn sigint_during_teardown_and_check() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    interrupt_in("teardown");
    interrupt_in("check");
}

/// A panic in the middle of a run still tears everything down (the cluster's guard runs while unwinding).
#[test]
fn a_panic_during_the_run_still_tears_down() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    ensure_raftkv();
    for phase in ["run", "final-reads"] {
        let store = store();
        let out = std::process::Command::new(faultline())
            .args([
                "run",
                "--time-limit",
                "2",
                "--concurrency",
                "2",
                "--nemesis",
                "partition",
                "--debug-panic-in",
                phase,
                "--store",
            ])
            .arg(store.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("panicking on purpose"), "{err}");
        let run_dir = latest(store.path());
        assert!(!created(&run_dir).is_empty());
        assert_eq!(leftovers(&run_dir), Vec::<String>::new(), "{phase}: {err}");
    }
}
