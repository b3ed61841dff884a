//! The bundled example histories (`examples/*.jsonl`): they parse and pair, and a tiny brute-force
//! cas-register search written here (independent of the crate's checker) agrees with their names.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use checker::history::{read_path, Format};
use checker::result::Verdict;
use checker::{availability, stats, Operation, Outcome};
use serde_json::Value;

fn examples() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("Cargo.toml")
        .canonicalize()
        .unwrap();
    manifest.parent().unwrap().parent().unwrap().join("examples")
}

/// Whether the ops of one key are linearizable as a cas-register starting absent (null). Fail ops are left
/// out; info ops may take effect at any time after their invoke, or never.
fn linearizable(ops: &[&Operation]) -> bool {
    assert!(ops.len() <= 64);
    let must: u64 = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.outcome == Outcome::Ok)
        .map(|(i, _)| 1 << i)
        .sum();
    let mut seen = HashSet::new();
    fn search(
        ops: &[&Operation],
        must: u64,
        done: u64,
        state: Value,
        seen: &mut HashSet<(u64, String)>,
    ) -> bool {
        if done & must == must {
            return true;
        }
        if !seen.insert((done, state.to_string())) {
            return false;
        }
        for (i, op) in ops.iter().enumerate() {
            if done & (1 << i) != 0 {
                continue;
            }
            // Some op not yet placed returned before this one was invoked: it must come first.
            let blocked = ops
                .iter()
                .enumerate()
                .any(|(j, o)| j != i && done & (1 << j) == 0 && o.ret.is_some_and(|r| r < op.call));
            if blocked {
                continue;
            }
            let next = match op.f.as_str() {
                "read" if op.outcome == Outcome::Info => Some(state.clone()),
                "read" => (op.output == state).then(|| state.clone()),
                "write" => Some(op.input.clone()),
                "cas" => (op.input[0] == state).then(|| op.input[1].clone()),
                other => panic!("unexpected f {other}"),
            };
            if let Some(next) = next {
                if search(ops, must, done | (1 << i), next, seen) {
                    return true;
                }
            }
        }
        false
    }
    search(ops, must, 0, Value::Null, &mut seen)
}

fn keys_linearizable(path: &Path) -> BTreeMap<String, bool> {
    let h = read_path(path, Format::Auto, false).unwrap();
    let ops = h.operations().unwrap();
    let mut by_key: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.outcome != Outcome::Fail) {
        by_key.entry(op.key.clone().unwrap()).or_default().push(op);
    }
    by_key
        .into_iter()
        .map(|(k, ops)| (k, linearizable(&ops)))
        .collect()
}

#[test]
fn valid_example_is_linearizable_on_every_key() {
    let path = examples().join("cas-register-valid.jsonl");
    let keys = keys_linearizable(&path);
    assert_eq!(keys.len(), 3);
    assert!(keys.values().all(|&ok| ok), "{keys:?}");

    let h = read_path(&path, Format::Auto, false).unwrap();
    let s = stats::compute(&h);
    assert_eq!(s.ok + s.fail + s.info, 60);
    assert!(s.fail > 0 && s.info > 0);
    let a = availability::check(&h, Duration::from_secs(10));
    assert_eq!(a.recoveries.len(), 1);
    assert_eq!(a.verdict, Verdict::Valid);
}

#[test]
fn invalid_example_has_one_bad_key() {
    let keys = keys_linearizable(&examples().join("cas-register-invalid.jsonl"));
    assert_eq!(
        keys.iter()
            .filter(|(_, &ok)| !ok)
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["k1"]
    );
}
