//! `kill -9` of the harness during a partition leaves nodes, namespaces and iptables rules behind;
//! `faultline heal` removes all of it, and a second heal finds nothing left.

#[path = "run_support.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

fn kill_9_during_a_partition_then_heal(backend: &str) {
    assert!(is_root(), "network faults need root (CI runs as root)");
    ensure_raftkv();
    let store = store();
    let args = [
        "--backend",
        backend,
        "--time-limit",
        "60",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "1",
        "--seed",
        "5",
        "--concurrency",
        "4",
        "--store",
        store.path().to_str().unwrap(),
    ];
    let (run, run_dir, _guard) = start_until_run_phase(&args, store.path());
    // While the run goes on, heal refuses.
    let out = Command::new(faultline())
        .arg("heal")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the run is still going"));
    // Wait until a partition is in force.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(run_dir.join("history.jsonl")).unwrap_or_default();
        if text.contains("\"start-partition\"") {
            break;
        }
        assert!(Instant::now() < deadline, "no partition started");
        std::thread::sleep(Duration::from_millis(100));
    }
    run.signal("KILL");
    let (status, _, _) = run.finish(Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal");
    let left = leftovers(&run_dir);
    let shows = if backend == "netns" {
        "netns"
    } else {
        "nemesis chain"
    };
    assert!(left.iter().any(|l| l.starts_with(shows)), "{left:?}");
    assert!(left.iter().any(|l| l.starts_with("process")), "{left:?}");

    // Heal the newest run of the store (no folder given).
    let out = Command::new(faultline())
        .args(["heal", "--store", store.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("stopped n1"), "{stdout}");
    let removed = if backend == "netns" {
        "removed namespace"
    } else {
        "removed host: FL-"
    };
    assert!(stdout.contains(removed), "{stdout}");
    assert_eq!(leftovers(&run_dir), Vec::<String>::new());

    // Idempotent.
    let out = Command::new(faultline())
        .arg("heal")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing left to heal"));
    // Also through --all over the whole store.
    let out = Command::new(faultline())
        .args(["heal", "--all", "--store", store.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing left to heal"));
}

#[test]
fn heal_after_kill_9_during_a_partition_in_namespaces() {
    kill_9_during_a_partition_then_heal("netns");
}

/// On the local backend the partition lives in the host's iptables (a chain matching the nodes' cgroups).
#[test]
fn heal_after_kill_9_during_a_partition_on_loopback() {
    kill_9_during_a_partition_then_heal("local");
}

#[test]
fn heal_of_a_folder_that_is_no_run_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(faultline())
        .arg("heal")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no state file"));
}
