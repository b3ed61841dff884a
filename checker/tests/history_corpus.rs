//! Every history of both corpora (Knossos EDN, Porcupine's Jepsen logs and kv EDN lines) parses, pairs,
//! and has the number of events and operations its MANIFEST.md states. Reads `<workspace>/../shared/corpus`:
//! a missing corpus is a failure, not a skip.

#[path = "support/corpus.rs"]
mod corpus_dir;
use corpus_dir::corpus;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use checker::history::{read_path, Format};
use checker::{EventType, Outcome, Process};

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|e| e == ext) {
            out.push(p);
        }
    }
    out.sort();
}

/// `file -> (events, op-type counts)` from a MANIFEST.md table whose columns 4 and 6 are those.
fn knossos_manifest(root: &Path) -> BTreeMap<String, (usize, String)> {
    let text = std::fs::read_to_string(root.join("knossos/MANIFEST.md")).unwrap();
    let mut rows = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("| `data/") && l.contains(".edn` |"))
    {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        rows.insert(
            cols[1].trim_matches('`').to_string(),
            (cols[4].parse().unwrap(), cols[6].to_string()),
        );
    }
    rows
}

#[test]
fn every_knossos_history_parses_with_the_manifest_counts() {
    let root = corpus();
    let manifest = knossos_manifest(&root);
    let mut all = Vec::new();
    files(&root.join("knossos/data"), "edn", &mut all);
    assert_eq!(all.len(), 122);
    for path in &all {
        let h = read_path(path, Format::Auto, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.source.as_ref().unwrap().format, Format::Edn);
        let rel = path
            .strip_prefix(root.join("knossos"))
            .unwrap()
            .to_string_lossy()
            .to_string();
        let (events, types) = &manifest[&rel];
        assert_eq!(h.events.len(), *events, "{rel}");
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &h.events {
            let k = match e.kind {
                EventType::Invoke => "invoke",
                EventType::Ok => "ok",
                EventType::Fail => "fail",
                EventType::Info => "info",
            };
            *counts.entry(k).or_default() += 1;
        }
        let counted: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(&counted.join(","), types, "{rel}");
        let ops = h.operations().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ops.len(), counts.get("invoke").copied().unwrap_or(0), "{rel}");
    }
}

#[test]
fn knossos_details_survive() {
    let root = corpus();
    let h = read_path(
        &root.join("knossos/data/cas-register/bad/immediate-failure.edn"),
        Format::Auto,
        false,
    )
    .unwrap();
    let ops = h.operations().unwrap();
    assert_eq!(ops[1].outcome, Outcome::Fail);
    assert_eq!(
        ops[1].error.as_deref(),
        Some(r#"["temporarily-unavailable",null]"#)
    );
    assert_eq!(ops[0].output, serde_json::json!(3));

    let h = read_path(&root.join("knossos/data/mutex/bad/etcd.edn"), Format::Auto, false).unwrap();
    assert_eq!(h.events[1].index, 1);
    assert_eq!(h.events[1].time, 342667129);
    assert_eq!(h.events[1].error.as_deref(), Some("not-held"));
    assert!(h.events.iter().any(|e| e.process == Process::Nemesis));

    let h = read_path(
        &root.join("knossos/data/multi-register/good/multi-register.edn"),
        Format::Auto,
        false,
    )
    .unwrap();
    let txn = h.events.iter().find(|e| e.f == "txn").unwrap();
    assert!(txn.value.is_array(), "{}", txn.value);
}

#[test]
fn every_porcupine_history_parses_with_the_manifest_counts() {
    let root = corpus();
    let text = std::fs::read_to_string(root.join("porcupine/MANIFEST.md")).unwrap();
    // | test_data/jepsen/etcd_000.log | 6664 | 85 | 19 | 17 | 16 | ...: file, bytes, ops, procs, max open, info
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| test_data/")) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        rows.insert(
            cols[1].to_string(),
            (
                cols[3].parse::<usize>().unwrap(),
                cols[6].parse::<usize>().unwrap(),
            ),
        );
    }
    assert_eq!(rows.len(), 109);
    for (rel, (ops_expected, info_expected)) in &rows {
        let path = root.join("porcupine").join(rel);
        let h = read_path(&path, Format::Auto, false).unwrap_or_else(|e| panic!("{e}"));
        let ops = h.operations().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ops.len(), *ops_expected, "{rel}");
        let never = ops.iter().filter(|o| o.outcome == Outcome::Info).count();
        assert_eq!(never, *info_expected, "{rel}");
        if rel.ends_with(".log") && *ops_expected > 0 {
            assert_eq!(h.source.as_ref().unwrap().format, Format::JepsenLog, "{rel}");
        }
        if rel.ends_with(".txt") {
            assert_eq!(h.source.as_ref().unwrap().format, Format::Edn, "{rel}");
            assert!(ops.iter().all(|o| o.key.is_some()), "{rel}");
        }
    }
}

#[test]
fn porcupine_log_details_survive() {
    let root = corpus();
    let h = read_path(
        &root.join("porcupine/test_data/jepsen/etcd_100.log"),
        Format::Auto,
        false,
    )
    .unwrap();
    let ops = h.operations().unwrap();
    let timed_out_read = ops
        .iter()
        .find(|o| o.f == "read" && o.outcome == Outcome::Fail)
        .unwrap();
    assert_eq!(timed_out_read.error.as_deref(), Some("timed-out"));
    assert_eq!(timed_out_read.output, serde_json::Value::Null);
    let cas = ops.iter().find(|o| o.f == "cas").unwrap();
    assert!(
        cas.input.as_array().is_some_and(|a| a.len() == 2),
        "{}",
        cas.input
    );

    let h = read_path(
        &root.join("porcupine/test_data/kv/c01-ok.txt"),
        Format::Auto,
        false,
    )
    .unwrap();
    let ops = h.operations().unwrap();
    let get = ops
        .iter()
        .find(|o| o.f == "get" && o.output != serde_json::json!(""))
        .unwrap();
    assert!(get.output.is_string());
    assert_eq!(h.line_of(0), Some(1));
    assert_eq!(h.line_of(5), Some(6));
}

#[test]
fn forced_formats_agree_with_detection() {
    let root = corpus();
    let log = root.join("porcupine/test_data/jepsen/etcd_000.log");
    assert_eq!(
        read_path(&log, Format::JepsenLog, false).unwrap().events,
        read_path(&log, Format::Auto, false).unwrap().events
    );
    let edn = root.join("knossos/data/cas-register/bad/cas-failure.edn");
    assert_eq!(
        read_path(&edn, Format::Edn, false).unwrap().events,
        read_path(&edn, Format::Auto, false).unwrap().events
    );
}
