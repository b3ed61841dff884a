//! Pairing invokes with completions, and the errors of inconsistent histories (file, line, field).

use std::path::Path;

use checker::history::{read_bytes, Format, HistoryError};
use checker::{History, Outcome};

fn jsonl(text: &str) -> History {
    read_bytes(text.as_bytes(), Path::new("h.jsonl"), Format::Jsonl, false).expect("parses")
}

fn ops_err(text: &str) -> String {
    jsonl(text).operations().expect_err("inconsistent").to_string()
}

#[test]
fn pairs_ok_fail_info_and_open_ops() {
    let h = jsonl(concat!(
        r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"read","key":"a","value":null}"#,
        "\n",
        r#"{"index":1,"time":11,"process":1,"type":"invoke","f":"write","key":"a","value":3}"#,
        "\n",
        r#"{"index":2,"time":12,"process":"nemesis","type":"info","f":"start-partition","value":{"kind":"x"}}"#,
        "\n",
        r#"{"index":3,"time":13,"process":0,"type":"ok","f":"read","key":"a","value":3}"#,
        "\n",
        r#"{"index":4,"time":14,"process":1,"type":"info","f":"write","key":"a","value":3,"error":"timeout"}"#,
        "\n",
        r#"{"index":5,"time":15,"process":2,"type":"invoke","f":"cas","key":"a","value":[1,2]}"#,
        "\n",
        r#"{"index":6,"time":16,"process":2,"type":"fail","f":"cas","key":"a","value":[1,2],"error":"cas-mismatch"}"#,
        "\n",
        r#"{"index":7,"time":17,"process":3,"type":"invoke","f":"write","key":"b","value":9}"#,
        "\n",
        r#"{"index":8,"time":18,"process":7,"type":"info","f":"write","value":9}"#,
        "\n",
    ));
    let ops = h.operations().unwrap();
    assert_eq!(ops.len(), 4);
    assert_eq!(
        (ops[0].outcome, ops[0].output.clone(), ops[0].ret),
        (Outcome::Ok, 3.into(), Some(13))
    );
    assert_eq!(ops[0].input, serde_json::Value::Null);
    assert_eq!(
        (ops[1].outcome, ops[1].ret, ops[1].complete_index),
        (Outcome::Info, None, Some(4))
    );
    assert_eq!(ops[1].error.as_deref(), Some("timeout"));
    assert_eq!((ops[2].outcome, ops[2].ret), (Outcome::Fail, Some(16)));
    assert_eq!(ops[2].error.as_deref(), Some("cas-mismatch"));
    assert_eq!(
        (ops[3].outcome, ops[3].ret, ops[3].complete_index),
        (Outcome::Info, None, None)
    );
    assert_eq!(ops[3].key.as_deref(), Some("b"));
    assert_eq!((ops[3].call, ops[3].invoke_index), (17, 7));
}

#[test]
fn completion_without_invoke_names_file_line_field() {
    let e = ops_err(concat!(
        r#"{"time":1,"process":0,"type":"invoke","f":"read"}"#,
        "\n",
        r#"{"time":2,"process":0,"type":"ok","f":"read","value":1}"#,
        "\n",
        r#"{"time":3,"process":0,"type":"ok","f":"read","value":1}"#,
        "\n"
    ));
    assert_eq!(
        e,
        "h.jsonl:3: type: ok completion of read on process 0, which has no open invoke"
    );
}

#[test]
fn second_invoke_on_open_process() {
    let e = ops_err(concat!(
        r#"{"time":1,"process":4,"type":"invoke","f":"read"}"#,
        "\n\n",
        r#"{"time":2,"process":4,"type":"invoke","f":"write","value":1}"#,
        "\n"
    ));
    assert_eq!(
        e,
        "h.jsonl:3: process: process 4 invokes write while its read invoked at line 1 has not completed"
    );
}

#[test]
fn time_going_backwards_within_a_process() {
    let e = ops_err(concat!(
        r#"{"time":5,"process":0,"type":"invoke","f":"read"}"#,
        "\n",
        r#"{"time":4,"process":0,"type":"ok","f":"read"}"#,
        "\n"
    ));
    assert_eq!(
        e,
        "h.jsonl:2: time: time goes backwards on process 0: 4 is before 5 at line 1"
    );
}

#[test]
fn time_may_go_backwards_across_processes() {
    // As in Jepsen histories: a worker reads the clock, then appends under a lock.
    let h = jsonl(concat!(
        r#"{"time":5,"process":0,"type":"invoke","f":"read"}"#,
        "\n",
        r#"{"time":4,"process":1,"type":"invoke","f":"read"}"#,
        "\n"
    ));
    assert_eq!(h.operations().unwrap().len(), 2);
}

#[test]
fn completion_with_other_f() {
    let e = ops_err(concat!(
        r#"{"time":1,"process":0,"type":"invoke","f":"read"}"#,
        "\n",
        r#"{"time":2,"process":0,"type":"ok","f":"write","value":1}"#,
        "\n"
    ));
    assert_eq!(
        e,
        "h.jsonl:2: f: completion is write but the invoke at line 1 is read"
    );
}

#[test]
fn completion_with_other_key() {
    let e = ops_err(concat!(
        r#"{"time":1,"process":0,"type":"invoke","f":"read","key":"a"}"#,
        "\n",
        r#"{"time":2,"process":0,"type":"ok","f":"read","key":"b","value":1}"#,
        "\n"
    ));
    assert_eq!(
        e,
        "h.jsonl:2: key: completion has key \"b\" but the invoke at line 1 has \"a\""
    );
}

#[test]
fn in_memory_history_names_event_position() {
    let mut h = jsonl(concat!(
        r#"{"time":1,"process":0,"type":"ok","f":"read","value":1}"#,
        "\n"
    ));
    h.source = None;
    assert_eq!(
        h.operations().unwrap_err().to_string(),
        "event 0: type: ok completion of read on process 0, which has no open invoke"
    );
}

#[test]
fn error_at_for_other_checkers() {
    let h = jsonl(concat!(
        "\n",
        r#"{"time":1,"process":0,"type":"invoke","f":"frob"}"#,
        "\n"
    ));
    assert_eq!(h.line_of(0), Some(2));
    let e = HistoryError::at(&h, 0, "f", "unknown f \"frob\" for model cas-register");
    assert_eq!(
        e.to_string(),
        "h.jsonl:2: f: unknown f \"frob\" for model cas-register"
    );
    assert_eq!(e.line, Some(2));
    assert_eq!(h.position_of_index(0), Some(0));
}

#[test]
fn lenient_pairing_never_fails() {
    let h = jsonl(concat!(
        r#"{"time":5,"process":0,"type":"ok","f":"read","value":1}"#,
        "\n",
        r#"{"time":4,"process":1,"type":"invoke","f":"read"}"#,
        "\n",
        r#"{"time":6,"process":1,"type":"invoke","f":"read"}"#,
        "\n",
        r#"{"time":7,"process":1,"type":"ok","f":"read","value":2}"#,
        "\n"
    ));
    let ops = h.operations_lenient();
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0].outcome, Outcome::Info);
    assert_eq!(ops[1].outcome, Outcome::Ok);
}
