//! Every row of the two public corpora's `expected.tsv` gets its expected verdict.
//!
//! The corpora are read from `<workspace root>/../shared/corpus` (never copied into the repository); a
//! missing corpus is a failure, not a skip.

#[path = "support/corpus.rs"]
mod corpus_dir;
use checker::history::{read_path, Format};
use checker::linearizability::{check, Options};
use checker::{ModelKind, Verdict};
use corpus_dir::corpus;

/// The options a row of `expected.tsv` asks for.
fn options(model: &str) -> Options {
    let mut o = Options {
        model: ModelKind::parse(model).unwrap_or_else(|| panic!("unknown model {model}")),
        ..Options::default()
    };
    if model == "kv-nopartition" {
        o.partition = false;
    }
    if model == "multi-register" {
        // Knossos checks this file with (multi-register {:x 0 :y 0}).
        o.initial = serde_json::json!({"x": 0, "y": 0});
    }
    o
}

fn check_corpus(name: &str, expected_rows: usize, adjust: impl Fn(Options) -> Options) {
    let dir = corpus().join(name);
    let tsv = std::fs::read_to_string(dir.join("expected.tsv"))
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()));
    let mut rows = 0;
    let mut wrong = Vec::new();
    for line in tsv
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("file\t"))
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, model, expected) = (cols[0], cols[1], cols[2]);
        rows += 1;
        let path = dir.join(file);
        let history = read_path(&path, Format::Auto, false).unwrap_or_else(|e| panic!("{e}"));
        let ops = history.operations().unwrap_or_else(|e| panic!("{e}"));
        let result = check(&ops, &adjust(options(model))).unwrap_or_else(|e| panic!("{file}: {e}"));
        let want = match expected {
            "linearizable" => Verdict::Valid,
            "not-linearizable" => Verdict::Invalid,
            other => panic!("unexpected expectation {other}"),
        };
        if result.verdict != want {
            wrong.push(format!(
                "{file} ({model}): expected {want:?}, got {:?}",
                result.verdict
            ));
        }
    }
    assert_eq!(rows, expected_rows, "rows of {name}/expected.tsv");
    assert!(
        wrong.is_empty(),
        "{} wrong verdicts:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn porcupine_corpus_verdicts() {
    check_corpus("porcupine", 112, |o| o);
}

#[test]
fn knossos_corpus_verdicts() {
    check_corpus("knossos", 122, |o| o);
}

/// Every key's search parallel from its first step (register and cas-register keys: two workers sharing a
/// cache; other models stay sequential).
fn parallel(o: Options) -> Options {
    Options {
        key_threads: 2,
        key_parallel_after: std::time::Duration::ZERO,
        ..o
    }
}

#[test]
fn porcupine_corpus_verdicts_in_parallel() {
    check_corpus("porcupine", 112, parallel);
}

#[test]
fn knossos_corpus_verdicts_in_parallel() {
    check_corpus("knossos", 122, parallel);
}
