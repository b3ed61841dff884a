//! `faultline run` end to end against dqlite (Debian's go-dqlite: `dqlite-demo`, three real nodes in network
//! namespaces), through the templated `http` client of dbs/dqlite.toml and its leader probe, which runs the
//! `dqlite` shell (`kind = "command"`).

#[path = "run_support.rs"]
mod support;

use std::time::Duration;
use support::*;

/// The outcome errors that come from the transport, not from an answer: no rule is needed for them.
const TRANSPORT: &[&str] = &[
    "client-timeout",
    "connection-refused",
    "connect-timeout",
    "connection error",
];

fn run_dqlite(
    spec: &std::path::Path,
    extra: &[&str],
) -> (Option<i32>, String, String, std::path::PathBuf, tempfile::TempDir) {
    assert!(is_root(), "the netns backend needs root (CI runs as root)");
    let store = store();
    let mut args = vec![
        "--db",
        spec.to_str().unwrap(),
        "--backend",
        "netns",
        "--nodes",
        "3",
        "--store",
        store.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (status, out, err) = Running::start(&args).finish(Duration::from_secs(180));
    let run = latest(store.path());
    (status.code(), out, err, run, store)
}

/// Every client completion of a history: (type, f, error).
fn completions(run: &std::path::Path) -> Vec<(String, String, Option<String>)> {
    history(run)
        .into_iter()
        .filter(|e| e["process"] != "nemesis" && e["type"] != "invoke")
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["f"].as_str().unwrap_or("").to_string(),
                e["error"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn dqlite_under_partitions_and_kills_gives_a_verdict_with_every_answer_classified() {
    let (code, out, err, run, _store) = run_dqlite(
        &root().join("dbs/dqlite.toml"),
        &["--nemesis", "partition,kill", "--time-limit", "10"],
    );
    assert!(
        matches!(code, Some(0..=2)),
        "no verdict ({code:?}):\n{out}\n{err}"
    );
    let done = completions(&run);
    let ok = |f: &str| done.iter().filter(|(t, g, _)| t == "ok" && g == f).count();
    assert!(
        ok("write") >= 20 && ok("read") >= 20,
        "too few ok operations: {} writes, {} reads",
        ok("write"),
        ok("read")
    );
    for (t, f, e) in &done {
        let Some(e) = e else { continue };
        let described = e.starts_with("dqlite: ") || TRANSPORT.iter().any(|p| e.starts_with(p));
        assert!(
            described,
            "{t} {f} with an error the spec does not describe: {e}\n{out}"
        );
    }
    assert!(!out.contains("no rule of the spec covers"), "{out}");
    assert_eq!(leftovers(&run), Vec::<String>::new());
}

#[test]
fn an_answer_the_spec_forgot_is_info_and_the_summary_and_report_name_it() {
    // The shipped spec without its write rules for errors: "database is locked" (SQLITE_BUSY, frequent with
    // 10 clients) is covered by no rule.
    let text = std::fs::read_to_string(root().join("dbs/dqlite.toml")).unwrap();
    let forgetful: String = text
        .lines()
        .filter(|l| {
            !(l.contains("body_regex = \"^Error: ") && (l.contains("\"info\"") || l.contains("locked")))
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        text.lines().count() - forgetful.lines().count(),
        2,
        "dbs/dqlite.toml's write rules changed"
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("dqlite-forgetful.toml");
    std::fs::write(&spec, forgetful).unwrap();
    let (code, out, err, run, _store) = run_dqlite(&spec, &["--time-limit", "5", "--concurrency", "10"]);
    assert!(
        matches!(code, Some(0..=2)),
        "no verdict ({code:?}):\n{out}\n{err}"
    );
    let locked: Vec<_> = completions(&run)
        .into_iter()
        .filter(|(_, _, e)| e.as_deref().is_some_and(|e| e.contains("database is locked")))
        .collect();
    assert!(
        !locked.is_empty(),
        "no write met a locked database in 5 s:\n{out}"
    );
    for (t, f, e) in &locked {
        let e = e.as_deref().unwrap();
        assert_eq!((t.as_str(), f.as_str()), ("info", "write"), "{e}");
        assert!(
            e.starts_with("unclassified: HTTP 200 \"Error: database is locked\""),
            "{e}"
        );
    }
    assert!(out.contains("answers no rule of the spec covers"), "{out}");
    assert!(
        out.contains("x write: unclassified: HTTP 200 \"Error: database is locked\""),
        "{out}"
    );
    // The record keeps them typed, and report.html names them (escaped) with the same count.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("test.json")).unwrap()).unwrap();
    let kinds = record["unclassified"]
        .as_array()
        .expect("test.json: unclassified");
    let kind = kinds
        .iter()
        .find(|k| {
            k["answer"]
                .as_str()
                .is_some_and(|a| a.contains("database is locked"))
        })
        .unwrap_or_else(|| panic!("test.json names the locked answer: {kinds:?}"));
    assert_eq!(
        (kind["f"].as_str(), kind["recorded_as"].as_str()),
        (Some("write"), Some("info"))
    );
    assert_eq!(kind["count"].as_u64(), Some(locked.len() as u64), "{kind}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let at = html
        .find("<section id=\"unclassified\">")
        .expect("report.html has the unclassified answers section");
    let section = &html[at..at + html[at..].find("</section>").unwrap()];
    let row = section
        .split("<tr>")
        .find(|r| r.contains("unclassified: HTTP 200 &quot;Error: database is locked&quot;"))
        .unwrap_or_else(|| panic!("report.html names the locked answer:\n{section}"));
    assert!(
        row.contains(&format!(">{}<", locked.len()))
            && row.contains("<code>write</code>")
            && row.contains(">info<"),
        "{row}"
    );
}
