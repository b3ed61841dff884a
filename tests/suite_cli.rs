//! `faultline suite` end to end with the real binary and real raftkv clusters: bad suite files are refused
//! before anything starts; `--shard 1/2` + `--shard 2/2` + `merge` give the whole cell set; a suite killed
//! with SIGKILL mid-cell and resumed keeps its finished cells, leaves nothing behind and completes its
//! summary; SIGINT stops after the running cell is torn down and still writes the summary.

#[path = "run_support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

fn raftkv_spec() -> String {
    root().join("dbs/raftkv.toml").display().to_string()
}

/// Writes a suite file into `dir` and returns its path.
fn suite_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text.replace("SPEC", &raftkv_spec())).unwrap();
    p
}

fn suite(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(faultline())
        .arg("suite")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn record(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("suite.json")).unwrap()).unwrap()
}

/// The suite run folders of a store, oldest first.
fn suite_runs(store: &Path, name: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(store.join("suites").join(name))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The summary's matrix table.
fn matrix(html: &str) -> &str {
    let start = html.find("id=\"matrix\"").expect("the matrix");
    let end = html[start..].find("</table>").unwrap() + start;
    &html[start..end]
}

fn cell_keys(v: &serde_json::Value, field: &str) -> Vec<(String, u64)> {
    let mut keys: Vec<(String, u64)> = v[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| match c {
            serde_json::Value::Array(a) => (a[0].as_str().unwrap().to_string(), a[1].as_u64().unwrap()),
            c => (
                c["row"].as_str().unwrap().to_string(),
                c["seed"].as_u64().unwrap(),
            ),
        })
        .collect();
    keys.sort();
    keys
}

const GOOD_HEAD: &str = r#"
seeds = [1, 2]
[defaults]
db = "SPEC"
backend = "local"
time_limit = 2
concurrency = 3
"#;

#[test]
fn bad_suite_files_exit_254_with_one_line_and_start_nothing() {
    ensure_raftkv();
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown-top",
            "seeds = [1]\ncolour = \"red\"\n[[row]]\nname = \"a\"\ndb = \"SPEC\"\nexpect = \"valid\"\n",
            ":2: colour: unknown field",
        ),
        (
            "unknown-row",
            &format!("{GOOD_HEAD}[[row]]\nname = \"a\"\nexpect = \"valid\"\nnemsis = \"kill\"\n"),
            ":11: nemsis: unknown field",
        ),
        (
            "unknown-bug",
            &format!(
                "{GOOD_HEAD}[[row]]\nname = \"ok\"\nexpect = \"valid\"\n[[row]]\nname = \"b\"\nexpect = \"invalid\"\nat_least = \"1/2\"\nnode_args = [\"--bug=no-such-bug\"]\n"
            ),
            ":15: row[1].node_args: raftkv refuses \"--bug=no-such-bug\": raftkv: --bug: unknown bug \"no-such-bug\"",
        ),
        (
            "zero-seeds",
            "seeds = []\n[[row]]\nname = \"a\"\ndb = \"SPEC\"\nexpect = \"valid\"\n",
            ":1: seeds: lists no seed",
        ),
        (
            "missing-spec",
            "seeds = [1]\n[[row]]\nname = \"a\"\ndb = \"no/such/spec.toml\"\nexpect = \"valid\"\n",
            ":4: row[0].db: no/such/spec.toml: ",
        ),
        (
            "bad-expect",
            &format!("{GOOD_HEAD}[[row]]\nname = \"a\"\nexpect = \"invalid\"\n"),
            ":8: row[0].at_least: expect = \"invalid\" needs the share",
        ),
    ];
    for (name, text, want) in cases {
        let store = dir.path().join(format!("store-{name}"));
        let file = suite_file(dir.path(), name, text);
        let (code, out, err) = suite(&[file.to_str().unwrap(), "--store", store.to_str().unwrap()]);
        assert_eq!(code, 254, "{name}: stdout {out}\nstderr {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: one line: {err}");
        let expected = format!("error: {}{want}", file.display());
        assert!(
            lines[0].starts_with(&expected),
            "{name}: {:?} does not start with {expected:?}",
            lines[0]
        );
        assert!(
            !store.exists(),
            "{name}: the store was created: something started"
        );
    }
    // A bad flag too.
    let file = suite_file(
        dir.path(),
        "ok",
        &format!("{GOOD_HEAD}[[row]]\nname = \"a\"\nexpect = \"valid\"\n"),
    );
    for flag in [["--shard", "3/2"], ["--seeds", "x"], ["--only", "zzz*"]] {
        let (code, _, err) = suite(&[
            file.to_str().unwrap(),
            flag[0],
            flag[1],
            "--store",
            "/nonexistent/x",
        ]);
        assert_eq!(code, 254, "{flag:?}: {err}");
        assert!(
            err.starts_with(&format!("error: command line: {}: ", flag[0])),
            "{err}"
        );
    }
}

#[test]
fn shards_merge_into_the_whole_cell_set() {
    ensure_raftkv();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let file = suite_file(
        dir.path(),
        "sharded",
        &format!(
            "{GOOD_HEAD}[[row]]\nname = \"correct\"\nexpect = \"valid\"\nworkload = [\"cas-register\", \"register\"]\n[[row]]\nname = \"kills\"\nexpect = \"valid\"\nnemesis = \"kill\"\nnemesis_interval = 1\n"
        ),
    );
    let f = file.to_str().unwrap();
    let (c1, o1, e1) = suite(&[f, "--shard", "1/2", "--store", s]);
    assert_eq!(c1, 0, "shard 1: {o1}\n{e1}");
    let (c2, o2, e2) = suite(&[f, "--shard", "2/2", "--store", s]);
    assert_eq!(c2, 0, "shard 2: {o2}\n{e2}");
    let runs = suite_runs(&store, "sharded");
    assert_eq!(runs.len(), 2);
    let (r1, r2) = (record(&runs[0]), record(&runs[1]));
    let (k1, k2) = (cell_keys(&r1, "cells"), cell_keys(&r2, "cells"));
    assert!(!k1.is_empty() && !k2.is_empty(), "{k1:?} {k2:?}");
    assert!(
        k1.iter().all(|k| !k2.contains(k)),
        "shards overlap: {k1:?} {k2:?}"
    );
    let out = dir.path().join("merged");
    let junit = dir.path().join("junit.xml");
    let (cm, om, em) = suite(&[
        "merge",
        runs[0].to_str().unwrap(),
        runs[1].to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--store",
        s,
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(cm, 0, "merge: {om}\n{em}");
    let merged = record(&out);
    let mut whole = Vec::new();
    for row in ["correct[cas-register]", "correct[register]", "kills"] {
        for seed in [1, 2] {
            whole.push((row.to_string(), seed));
        }
    }
    whole.sort();
    assert_eq!(cell_keys(&merged, "planned"), whole);
    assert_eq!(cell_keys(&merged, "cells"), whole);
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    assert_eq!(
        matrix(&html).matches("class=\"cell o-expected\"").count(),
        6,
        "{html}"
    );
    let x = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(x.matches("<testcase ").count(), 6);
    assert!(x.contains("failures=\"0\" errors=\"0\""), "{x}");
    // The store index links both suite runs.
    let index = std::fs::read_to_string(store.join("index.html")).unwrap();
    assert_eq!(index.matches("suites/sharded/").count(), 2, "{index}");
}

/// A 3-cell suite on the netns backend with partitions, started through `Running` so its stderr is
/// followed; returns it once the second cell is in its run phase.
fn start_three_cells(dir: &Path, store: &Path) -> Running {
    let file = suite_file(
        dir,
        "three",
        "seeds = [1, 2, 3]\n[[row]]\nname = \"correct\"\ndb = \"SPEC\"\nexpect = \"valid\"\nnemesis = \"partition,kill\"\nnemesis_interval = 1\ntime_limit = 6\nconcurrency = 3\n",
    );
    let mut run = Running::start_sub(
        "suite",
        &[file.to_str().unwrap(), "--store", store.to_str().unwrap()],
    );
    for n in 1..=2 {
        assert!(
            run.wait_for("faultline: phase run", Duration::from_secs(120)),
            "cell {n} never ran: {}",
            run.stderr.join("\n")
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    run
}

/// Every run folder of the store's cell runs of suite `three`.
fn cell_run_dirs(store: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for seed in 1..=3 {
        let d = store.join(format!("three.correct.s{seed}"));
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            v.push(e.path());
        }
    }
    v
}

#[test]
fn sigkill_mid_cell_then_resume_keeps_finished_cells_and_heals() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    ensure_raftkv();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let run = start_three_cells(dir.path(), &store);
    run.signal("KILL");
    let (status, _, _) = run.finish(Duration::from_secs(30));
    assert_eq!(status.code(), None, "killed by a signal");
    let suite_dir = suite_runs(&store, "three").pop().unwrap();
    let before = record(&suite_dir);
    assert_eq!(before["cells"].as_array().unwrap().len(), 1, "{before}");
    assert_eq!(before["running"]["seed"], 2, "{before}");
    assert_eq!(before["status"], "running");
    // The killed cell left its cluster: namespaces, chains, processes.
    let killed = store.join("three.correct.s2");
    let killed_run = std::fs::read_dir(&killed)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let _guard = HealGuard(killed_run.clone());
    assert!(
        !leftovers(&killed_run).is_empty(),
        "SIGKILL left nothing to heal?"
    );

    let (code, out, err) = suite(&[
        dir.path().join("three.toml").to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--resume",
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("resuming"), "{err}");
    assert!(err.contains("healed"), "{err}");
    assert_eq!(
        suite_runs(&store, "three").len(),
        1,
        "resumed into the same folder"
    );
    let after = record(&suite_dir);
    assert_eq!(after["status"], "complete");
    assert_eq!(
        after["cells"][0], before["cells"][0],
        "the finished cell is kept as it was"
    );
    assert_eq!(cell_keys(&after, "cells").len(), 3);
    assert!(after["running"].is_null());
    for d in cell_run_dirs(&store) {
        if d.join("state.jsonl").is_file() {
            assert_eq!(leftovers(&d), Vec::<String>::new(), "{}", d.display());
        }
    }
    let html = std::fs::read_to_string(suite_dir.join("summary.html")).unwrap();
    assert_eq!(matrix(&html).matches("class=\"cell o-expected\"").count(), 3);
    assert!(html.contains("3 of 3 cells finished"), "{html}");
}

#[test]
fn sigint_stops_after_the_running_cell_and_writes_the_summary() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    ensure_raftkv();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let run = start_three_cells(dir.path(), &store);
    run.signal("INT");
    let (status, out, err) = run.finish(Duration::from_secs(90));
    assert_eq!(
        status.code(),
        Some(2),
        "undecided: cells did not run\n{out}\n{err}"
    );
    let suite_dir = suite_runs(&store, "three").pop().unwrap();
    let r = record(&suite_dir);
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["cells"].as_array().unwrap().len(), 1, "{r}");
    assert!(r["running"].is_null());
    assert!(
        !store.join("three.correct.s3").exists(),
        "no cell started after the signal"
    );
    for d in cell_run_dirs(&store) {
        assert_eq!(leftovers(&d), Vec::<String>::new(), "{}", d.display());
    }
    let html = std::fs::read_to_string(suite_dir.join("summary.html")).unwrap();
    assert!(html.contains("1 of 3 cells finished"), "{html}");
    assert!(html.contains("interrupted"));
    assert_eq!(matrix(&html).matches("class=\"cell o-not-run\"").count(), 2);
    assert!(out.contains("[1/3] correct seed 1: valid"), "{out}");
}
