//! CI runs the smoke suite for real (`suites/smoke.toml`, about 2 minutes): correct raftkv valid under
//! partitions, kills and pauses; raftkv with accept-stale-term found invalid under the zombie-leader fault;
//! etcd valid. Every cell must be as expected, the exit code 0, the summary and JUnit written, and nothing
//! left behind. This is the test that checks verdicts under real faults.

#[path = "run_support.rs"]
mod support;

use std::process::Command;
use support::*;

#[test]
fn smoke_suite_every_cell_as_expected() {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    ensure_raftkv();
    let store = store();
    let junit = store.path().join("junit.xml");
    let out = Command::new(faultline())
        .arg("suite")
        .arg(root().join("suites/smoke.toml"))
        .arg("--store")
        .arg(store.path())
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let suites = store.path().join("suites/smoke");
    let dir = std::fs::read_dir(&suites)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("suite.json")).unwrap()).unwrap();
    assert_eq!(record["status"], "complete");
    let cells = record["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3, "{record}");
    let outcome = |row: &str| {
        cells
            .iter()
            .find(|c| c["row"] == row)
            .map(|c| c["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(outcome("raftkv").as_deref(), Some("valid"), "{record}");
    assert_eq!(
        outcome("raftkv-accept-stale-term").as_deref(),
        Some("invalid"),
        "{record}"
    );
    assert_eq!(outcome("etcd").as_deref(), Some("valid"), "{record}");
    for c in cells {
        assert_eq!(c["as_expected"], true, "{c}");
        let run = store.path().join(c["run"].as_str().unwrap());
        assert!(run.join("report.html").is_file(), "{}", run.display());
        assert_eq!(leftovers(&run), Vec::<String>::new(), "{}", run.display());
    }
    let bug = cells.iter().find(|c| c["outcome"] == "invalid").unwrap();
    assert!(!bug["caught_by"].as_array().unwrap().is_empty(), "{bug}");
    assert!(bug["first_anomaly_s"].as_f64().is_some(), "{bug}");
    for line in [
        "[1/3] raftkv seed 1: valid",
        "[2/3] raftkv-accept-stale-term seed 1: found",
        "[3/3] etcd seed 1: valid",
    ] {
        assert!(stdout.contains(line), "progress line {line:?} in:\n{stdout}");
    }
    let html = std::fs::read_to_string(dir.join("summary.html")).unwrap();
    assert!(html.contains("Every row as expected"), "{html}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("tests=\"3\" failures=\"0\" errors=\"0\""), "{x}");
    let index = std::fs::read_to_string(store.path().join("index.html")).unwrap();
    assert!(index.contains("suites/smoke/"), "the index links the suite");
}
