//! Each model on small hand-written histories: what it accepts, what it rejects, and its errors.

use checker::linearizability::{check, Options};
use checker::{ModelKind, Operation, Outcome, Verdict};
use serde_json::{json, Value};

/// (process, f, input, output, outcome, call, ret).
type Spec<'a> = (u64, &'a str, Value, Value, Outcome, u64, Option<u64>);

/// Builds operations from specs, with positions as times.
fn ops(spec: &[Spec<'_>]) -> Vec<Operation> {
    spec.iter()
        .map(|(p, f, i, o, out, call, ret)| Operation {
            process: *p,
            f: f.to_string(),
            key: None,
            input: i.clone(),
            output: o.clone(),
            outcome: *out,
            error: None,
            invoke_index: *call,
            complete_index: *ret,
            call: *call,
            ret: if *out == Outcome::Info { None } else { *ret },
        })
        .collect()
}

fn verdict(model: ModelKind, ops: &[Operation]) -> Verdict {
    check(
        ops,
        &Options {
            model,
            ..Options::default()
        },
    )
    .unwrap()
    .verdict
}

use Outcome::{Info, Ok as O};

#[test]
fn mutex_needs_release_between_acquires() {
    let good = ops(&[
        (0, "acquire", Value::Null, Value::Null, O, 0, Some(1)),
        (0, "release", Value::Null, Value::Null, O, 2, Some(3)),
        (1, "acquire", Value::Null, Value::Null, O, 4, Some(5)),
    ]);
    assert_eq!(verdict(ModelKind::Mutex, &good), Verdict::Valid);
    let bad = ops(&[
        (0, "acquire", Value::Null, Value::Null, O, 0, Some(1)),
        (1, "acquire", Value::Null, Value::Null, O, 2, Some(3)),
    ]);
    assert_eq!(verdict(ModelKind::Mutex, &bad), Verdict::Invalid);
}

#[test]
fn set_reads_must_see_exactly_the_added_elements() {
    let good = ops(&[
        (0, "add", json!(1), json!(1), O, 0, Some(1)),
        (1, "add", json!(2), Value::Null, Info, 2, None),
        (0, "read", Value::Null, json!([1, 2]), O, 3, Some(4)),
    ]);
    assert_eq!(verdict(ModelKind::Set, &good), Verdict::Valid);
    let lost = ops(&[
        (0, "add", json!(1), json!(1), O, 0, Some(1)),
        (0, "read", Value::Null, json!([]), O, 2, Some(3)),
    ]);
    assert_eq!(verdict(ModelKind::Set, &lost), Verdict::Invalid);
}

#[test]
fn fifo_queue_keeps_order_and_unordered_queue_does_not() {
    let h = ops(&[
        (0, "enqueue", json!(1), Value::Null, O, 0, Some(1)),
        (0, "enqueue", json!(2), Value::Null, O, 2, Some(3)),
        (1, "dequeue", Value::Null, json!(2), O, 4, Some(5)),
    ]);
    assert_eq!(verdict(ModelKind::FifoQueue, &h), Verdict::Invalid);
    assert_eq!(verdict(ModelKind::UnorderedQueue, &h), Verdict::Valid);
    let empty = ops(&[
        (0, "enqueue", json!(1), Value::Null, O, 0, Some(1)),
        (1, "dequeue", Value::Null, Value::Null, O, 2, Some(3)),
    ]);
    assert_eq!(verdict(ModelKind::FifoQueue, &empty), Verdict::Invalid);
}

#[test]
fn multi_register_transactions_apply_in_order() {
    let h = ops(&[
        (
            0,
            "txn",
            json!([["w", "x", 1], ["w", "y", 2]]),
            json!([["w", "x", 1], ["w", "y", 2]]),
            O,
            0,
            Some(1),
        ),
        (
            1,
            "txn",
            json!([["r", "x", null], ["r", "y", null]]),
            json!([["r", "x", 1], ["r", "y", 2]]),
            O,
            2,
            Some(3),
        ),
    ]);
    assert_eq!(verdict(ModelKind::MultiRegister, &h), Verdict::Valid);
    let torn = ops(&[
        (
            0,
            "txn",
            json!([["w", "x", 1], ["w", "y", 2]]),
            json!([["w", "x", 1], ["w", "y", 2]]),
            O,
            0,
            Some(1),
        ),
        (
            1,
            "txn",
            json!([["r", "x", null], ["r", "y", null]]),
            json!([["r", "x", 1], ["r", "y", null]]),
            O,
            2,
            Some(3),
        ),
        (
            2,
            "txn",
            json!([["r", "y", null]]),
            json!([["r", "y", 5]]),
            O,
            4,
            Some(5),
        ),
    ]);
    assert_eq!(verdict(ModelKind::MultiRegister, &torn), Verdict::Invalid);
}

#[test]
fn kv_append_concatenates_and_porcupine_spellings_work() {
    let h = ops(&[
        (0, "put", json!("a"), json!("a"), O, 0, Some(1)),
        (0, "append", json!("b"), json!("b"), O, 2, Some(3)),
        (1, "get", Value::Null, json!("ab"), O, 4, Some(5)),
    ]);
    assert_eq!(verdict(ModelKind::Kv, &h), Verdict::Valid);
    let h = ops(&[
        (0, "append", json!("b"), json!("b"), O, 0, Some(1)),
        (1, "get", Value::Null, json!(""), O, 2, Some(3)),
    ]);
    assert_eq!(verdict(ModelKind::Kv, &h), Verdict::Invalid);
}

#[test]
fn failed_cas_with_a_mismatch_error_is_an_observation() {
    let mut h = ops(&[
        (0, "write", json!(1), json!(1), O, 0, Some(1)),
        (1, "cas", json!([1, 2]), json!([1, 2]), Outcome::Fail, 2, Some(3)),
    ]);
    // Without an error, a failed cas did nothing and says nothing.
    assert_eq!(verdict(ModelKind::CasRegister, &h), Verdict::Valid);
    h[1].error = Some("cas-mismatch".into());
    assert_eq!(verdict(ModelKind::CasRegister, &h), Verdict::Invalid);
}

#[test]
fn unknown_f_is_an_error_naming_the_op() {
    let h = ops(&[(0, "cas", json!([1, 2]), json!([1, 2]), O, 7, Some(8))]);
    let e = check(
        &h,
        &Options {
            model: ModelKind::Register,
            ..Options::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.invoke_index, 7);
    assert_eq!(e.field, "f");
    let e = check(
        &ops(&[(0, "cas", json!(3), json!(3), O, 0, Some(1))]),
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(e.field, "value");
}

#[test]
fn time_limit_and_memory_bound_give_unknown_not_a_hang() {
    // Many concurrent indeterminate writes and a read no order can explain: a search with no good answer.
    let mut spec = Vec::new();
    for p in 0..24u64 {
        spec.push((p, "write", json!(p), Value::Null, Info, p, None));
    }
    spec.push((100, "read", Value::Null, json!(999), O, 30, Some(31)));
    let h = ops(&spec);
    let r = check(
        &h,
        &Options {
            memory_limit: 1,
            ..Options::default()
        },
    )
    .unwrap();
    assert_ne!(r.verdict, Verdict::Valid);
}

/// A history the register model rejects before its search (a read of a value a completed write had replaced
/// before the read began) still gets a counterexample with a linearizable prefix: the operations that had
/// to come first, in a legal order, ending right before the impossible read.
#[test]
fn a_history_rejected_before_the_search_still_has_a_prefix() {
    let ops = ops(&[
        (1, "write", json!(1), json!(1), Outcome::Ok, 0, Some(1)),
        (2, "write", json!(2), json!(2), Outcome::Info, 2, None),
        (1, "write", json!(3), json!(3), Outcome::Ok, 3, Some(4)),
        (1, "read", json!(null), json!(2), Outcome::Ok, 5, Some(6)),
        (3, "read", json!(null), json!(1), Outcome::Ok, 7, Some(8)),
    ]);
    let result = check(
        &ops,
        &Options {
            model: ModelKind::CasRegister,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(result.verdict, Verdict::Invalid);
    let c = result.keys[0].counterexample.as_ref().unwrap();
    assert_eq!(c.op.invoke_index, 7, "the read of the replaced 1 is blamed");
    let prefix = &c.prefixes[0];
    assert_eq!(prefix.blocked, Some(7));
    // write 1, the indeterminate write 2 (the read of 2 needs it), write 3, read 2... is not legal after
    // write 3; the greedy order must have placed write 2 between write 3 and the read of 2.
    assert_eq!(
        prefix.ops,
        vec![0, 3, 2, 5],
        "a legal order of all that came before"
    );
    assert_eq!(prefix.states.len(), prefix.ops.len());
}
