//! Bad specs and flags fail before anything starts: one line naming the file, the line and the field, exit
//! 254, no run folder created.

#[path = "run_support.rs"]
mod support;

use std::process::Command;
use support::*;

const GOOD: &str = r#"name = "x"
command = ["/bin/sleep", "{port}"]
[ready]
kind = "tcp"
[client]
protocol = "http-kv"
"#;

/// Runs `faultline run` on a spec text with extra flags; returns (exit code, stderr), and checks that no run
/// folder was created.
fn run_spec(text: &str, flags: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("db.toml");
    std::fs::write(&spec, text).unwrap();
    let store = dir.path().join("store");
    let out = Command::new(faultline())
        .args(["run", "--backend", "local", "--time-limit", "1", "--db"])
        .arg(&spec)
        .arg("--store")
        .arg(&store)
        .args(flags)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!store.join("latest").exists(), "a run folder was created: {err}");
    let error_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "{err}");
    (
        out.status.code().unwrap_or(-1),
        error_lines[0].replace(&format!("{}", spec.display()), "db.toml"),
    )
}

#[test]
fn unknown_field_names_file_line_and_field() {
    let (code, err) = run_spec(
        &GOOD.replace("kind = \"tcp\"", "kind = \"tcp\"\ntimeuot_s = 3"),
        &[],
    );
    assert_eq!(code, 254);
    assert!(err.starts_with("error: db.toml:5:"), "{err}");
    assert!(err.contains("unknown field `timeuot_s`"), "{err}");
}

#[test]
fn unknown_placeholder_and_wrong_type() {
    let (code, err) = run_spec(&GOOD.replace("{port}", "{prot}"), &[]);
    assert_eq!(code, 254);
    assert!(
        err.starts_with("error: db.toml:2: command[1]: unknown placeholder {prot}"),
        "{err}"
    );
    let (code, err) = run_spec(&GOOD.replace("name = \"x\"", "name = 5"), &[]);
    assert_eq!(code, 254);
    assert!(err.starts_with("error: db.toml:1:"), "{err}");
}

#[test]
fn missing_binary_says_what_provides_it() {
    let text = GOOD.replace("/bin/sleep", "faultline-no-such-node").replace(
        "name = \"x\"",
        "name = \"x\"\nprovided_by = \"the package x-server\"",
    );
    let (code, err) = run_spec(&text, &[]);
    assert_eq!(code, 254);
    assert!(
        err.contains("command[0]: program \"faultline-no-such-node\" not found"),
        "{err}"
    );
    assert!(err.contains("the package x-server"), "{err}");
}

#[test]
fn unknown_protocol_setting_is_a_spec_error() {
    let (code, err) = run_spec(
        &GOOD.replace("protocol = \"http-kv\"", "protocol = \"http-kv\"\ntimeout = 5"),
        &[],
    );
    assert_eq!(code, 254);
    assert!(err.starts_with("error: db.toml:5: client:"), "{err}");
}

#[test]
fn bad_flags() {
    for (flags, needle) in [
        (&["--workload", "queue-of-cats"][..], "--workload"),
        (&["--nemesis", "partition,meteor"][..], "--nemesis"),
        (&["--nodes", "0"][..], "--nodes"),
        (&["--rate=-3"][..], "--rate"),
        (&["--nemesis", "kill", "--max-dead", "3"][..], "--max-dead"),
    ] {
        let (code, err) = run_spec(GOOD, flags);
        assert_eq!(code, 254, "{flags:?}: {err}");
        assert!(err.contains(needle), "{flags:?}: {err}");
    }
}

#[test]
fn external_nodes_must_be_on_loopback() {
    let text = format!("{GOOD}[external]\nnodes = [{{ id = \"n1\", address = \"192.0.2.7:80\" }}]\n");
    let (code, err) = run_spec(&text, &[]);
    assert_eq!(code, 254);
    assert!(
        err.contains("external.nodes[0].address: faultline only talks to loopback"),
        "{err}"
    );
}

#[test]
fn clock_faults_are_refused_for_systems_libfaketime_cannot_reach() {
    let text = GOOD.replace("name = \"x\"", "name = \"x\"\nfaketime = false");
    let (code, err) = run_spec(&text, &["--nemesis", "clock"]);
    assert_eq!(code, 254);
    assert!(
        err.contains("--nemesis clock:") && err.contains("faketime = false"),
        "{err}"
    );
}

/// A node that dies at start-up fails the run (exit 3), quoting its log, and leaves nothing behind.
#[test]
fn a_node_that_exits_at_start_up_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("dies.toml");
    let text = GOOD.replace(
        r#"["/bin/sleep", "{port}"]"#,
        r#"["/bin/sh", "-c", "echo boom {id}; exit 7"]"#,
    );
    std::fs::write(&spec, text).unwrap();
    let store = dir.path().join("store");
    let out = Command::new(faultline())
        .args(["run", "--backend", "local", "--time-limit", "1", "--db"])
        .arg(&spec)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("exited during start-up") && err.contains("boom n"),
        "{err}"
    );
    assert_eq!(leftovers(&latest(&store)), Vec::<String>::new());
}
