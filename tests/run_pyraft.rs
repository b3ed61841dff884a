//! `faultline run` against pyraft (PyPI `pyraft` 1.0.0: a Raft key-value server in Python speaking RESP,
//! replies as simple strings), three real processes in network namespaces, through dbs/pyraft.toml alone:
//! RESP readiness and leader probe (`INFO`, read by regex), the `resp` client. pyraft answers `GET` from
//! each node's own state without asking the leader, so its reads are stale and faultline must say so.

#[path = "run_support.rs"]
mod support;

use std::process::Command;
use support::*;

/// A virtual environment with pyraft installed (pip, from the index pip is configured with).
fn pyraft_venv() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("pyraft-venv-").tempdir().unwrap();
    let st = Command::new("python3")
        .args(["-m", "venv"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success(), "python3 -m venv failed");
    let out = Command::new(dir.path().join("bin/pip"))
        .args(["install", "-q", "pyraft==1.0.0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip install pyraft failed (CI needs the package index): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[test]
fn pyraft_runs_from_its_spec_alone_and_its_local_reads_are_found_stale() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    let venv = pyraft_venv();
    let path = format!(
        "{}:{}",
        venv.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let store = store();
    let out = Command::new(faultline())
        .args(["run", "--db"])
        .arg(root().join("dbs/pyraft.toml"))
        .args([
            "--backend",
            "netns",
            "--nodes",
            "3",
            "--nemesis",
            "none",
            "--time-limit",
            "10",
        ])
        .arg("--store")
        .arg(store.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // Exit 1: invalid. Every operation was classified (no bad-response), and plenty of them were ok.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("linearizability (register): invalid"), "{stdout}");
    let run = latest(store.path());
    let done: Vec<serde_json::Value> = history(&run)
        .into_iter()
        .filter(|e| e["process"] != "nemesis" && e["type"] != "invoke")
        .collect();
    let ok = |f: &str| done.iter().filter(|e| e["type"] == "ok" && e["f"] == f).count();
    assert!(
        ok("write") >= 50 && ok("read") >= 50,
        "{} writes, {} reads ok",
        ok("write"),
        ok("read")
    );
    for e in &done {
        let err = e["error"].as_str().unwrap_or("");
        assert!(
            !err.contains("bad-response") && !err.contains("unexpected reply"),
            "{e}"
        );
    }
    assert_eq!(leftovers(&run), Vec::<String>::new());
}
