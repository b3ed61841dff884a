//! Rough edges a new user meets with a spec of their own, driven through the real binary against real
//! raftkv processes: a spec-relative `./start.sh`, a spec without a `[leader]` probe, and plain (uncoloured)
//! output and warnings to a pipe.

#[path = "run_support.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use support::*;

/// Writes `specs/mine.toml` (raftkv's spec started through `./start.sh`, optionally without its `[leader]`
/// section) and `specs/start.sh` under `dir`.
fn write_spec(dir: &Path, with_leader: bool) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    let raftkv = faultline().parent().unwrap().join("raftkv");
    let script = specs.join("start.sh");
    std::fs::write(&script, format!("#!/bin/sh\nexec {} \"$@\"\n", raftkv.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = std::fs::read_to_string(root().join("dbs/raftkv.toml")).unwrap();
    let mut text = text.replacen(r#"command = ["raftkv","#, r#"command = ["./start.sh","#, 1);
    text = text.replace("version = [\"raftkv\", \"--version\"]\n", "");
    if !with_leader {
        text = text.replace("[leader]\npath = \"/status\"\nleader_pointer = \"/leader\"\n", "");
        text = text.replace("wait_for_leader = true", "wait_for_leader = false");
        assert!(!text.contains("[leader]"));
    }
    std::fs::write(specs.join("mine.toml"), text).unwrap();
}

/// `faultline run --db specs/mine.toml ...` from `dir`, so the spec's path is relative.
fn run_in(dir: &Path, store: &Path, extra: &[&str]) -> Output {
    Command::new(faultline())
        .args([
            "run",
            "--db",
            "specs/mine.toml",
            "--time-limit",
            "4",
            "--concurrency",
            "4",
        ])
        .args(["--seed", "5", "--store"])
        .arg(store)
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn a_spec_relative_start_script_runs_from_a_relative_spec_path() {
    ensure_raftkv();
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), true);
    let store = dir.path().join("store");
    let out = run_in(dir.path(), &store, &["--backend", "local"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // Output to a pipe carries no colour codes.
    assert!(!err.contains('\u{1b}') && !String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
    let run = latest(&store);
    let record: results::RunRecord =
        serde_json::from_slice(&std::fs::read(run.join("test.json")).unwrap()).unwrap();
    assert_eq!(record.nemesis.leader_targeted, Some(true));
    assert!(
        record.nodes[0].argv[0].ends_with("specs/./start.sh") && record.nodes[0].argv[0].starts_with('/')
    );
    warning_to_a_pipe_is_plain(&run);
}

/// A real warning written to a pipe carries no colour codes: the run's state file is given a torn last line
/// (as a harness killed mid-write leaves it), and `faultline heal` warns that it skips it.
fn warning_to_a_pipe_is_plain(run: &Path) {
    let state = run.join(harness::state::STATE_FILE);
    let mut text = std::fs::read_to_string(&state).unwrap();
    text.push_str("{\"kind\":\"process\",\"no");
    std::fs::write(&state, text).unwrap();
    let out = Command::new(faultline()).arg("heal").arg(run).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("WARN") && err.contains("skipping unreadable line"),
        "no warning: {err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in a piped warning: {err:?}"
    );
}

#[test]
fn without_a_leader_probe_no_fault_aims_at_the_leader() {
    assert!(is_root(), "partitions need root (CI runs as root)");
    ensure_raftkv();
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), false);
    let store = dir.path().join("store");
    // Named leader faults are refused before anything starts.
    let out = run_in(dir.path(), &store, &["--nemesis", "isolate-leader"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{err}");
    assert!(err.contains("has no [leader] probe"), "{err}");
    // Partitions, kills and pauses are drawn without their leader-aimed variants; none fails mid-run.
    let out = run_in(
        dir.path(),
        &store,
        &["--nemesis", "partition,kill,pause", "--nemesis-interval", "0.5"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{err}");
    assert!(!err.contains("leader"), "no fault looked for a leader: {err}");
    let run = latest(&store);
    let record: results::RunRecord =
        serde_json::from_slice(&std::fs::read(run.join("test.json")).unwrap()).unwrap();
    assert_eq!(record.nemesis.leader_targeted, Some(false));
    let steps = record.nemesis.schedule.expect("a schedule").steps;
    assert!(steps.len() >= 3, "{steps:?}");
    for s in &steps {
        assert!(!s.action.contains("leader"), "{s:?}");
    }
    assert_eq!(leftovers(&run), Vec::<String>::new());
}
