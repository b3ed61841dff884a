//! `faultline probe` through the real binary, for every client protocol: it starts a real cluster, and for
//! each operation prints the request, the answer as it came and how it was classified, then tears down.
//! http-kv (raftkv), etcd (Debian's etcd), resp (tests/fixtures/resp_raftish.py) and the templated `http`
//! protocol (raftkv's API described by rules, one of them deliberately missing).

#[path = "run_support.rs"]
mod support;

use std::time::Duration;
use support::*;

/// `faultline probe --db SPEC --backend BACKEND`: (exit code, stdout, stderr).
fn probe(spec: &std::path::Path, backend: &str) -> (Option<i32>, String, String) {
    let store = store();
    let (status, out, err) = Running::start_sub(
        "probe",
        &[
            "--db",
            spec.to_str().unwrap(),
            "--backend",
            backend,
            "--store",
            store.path().to_str().unwrap(),
        ],
    )
    .finish(Duration::from_secs(120));
    let run = latest(store.path());
    assert_eq!(leftovers(&run), Vec::<String>::new(), "{out}");
    (status.code(), out, err)
}

/// The block of the trace about the `nth` operation whose heading starts with `heading`.
fn step<'a>(out: &'a str, heading: &str, nth: usize) -> &'a str {
    let blocks: Vec<&str> = out.split("\n\n").filter(|b| b.starts_with(heading)).collect();
    blocks
        .get(nth)
        .unwrap_or_else(|| panic!("no step {nth} {heading:?} in:\n{out}"))
}

/// Asserts that `block` holds each line of `lines`, in order.
fn lines_in_order(block: &str, lines: &[&str]) {
    let mut from = 0;
    for l in lines {
        match block[from..].find(l) {
            Some(i) => from += i + l.len(),
            None => panic!("{l:?} (in order) not in:\n{block}"),
        }
    }
}

#[test]
fn http_kv_requests_answers_and_classification() {
    ensure_raftkv();
    let (code, out, err) = probe(&root().join("dbs/raftkv.toml"), "local");
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("client protocol: http-kv"), "{out}");
    let write = step(&out, "write faultline-probe-1 1", 0);
    lines_in_order(
        write,
        &[
            "> PUT /kv/faultline-probe-1",
            "> body \"{\\\"value\\\":1}\"",
            "< HTTP 200 ",
            "= ok (by the http-kv protocol's own rules)",
        ],
    );
    let read = step(&out, "read faultline-probe-1", 1);
    lines_in_order(
        read,
        &["> GET /kv/faultline-probe-1", "< HTTP 200 ", "= ok, read: 1"],
    );
    let mismatch = step(&out, "cas faultline-probe-1 1 -> 3", 0);
    lines_in_order(
        mismatch,
        &[
            "> POST /kv/faultline-probe-1/cas",
            "< HTTP 409 ",
            "= fail (cas-mismatch)",
        ],
    );
}

#[test]
fn resp_commands_replies_and_classification() {
    let (code, out, err) = probe(&root().join("tests/fixtures/resp_raftish.toml"), "local");
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("client protocol: resp"), "{out}");
    let absent = step(&out, "read faultline-probe-1", 0);
    lines_in_order(
        absent,
        &["> GET faultline-probe-1", "< $nil", "= ok, read: absent (null)"],
    );
    let write = step(&out, "write faultline-probe-1 1", 0);
    lines_in_order(
        write,
        &[
            "> SET faultline-probe-1 1",
            "< +OK",
            "= ok (by the resp protocol's own rules)",
        ],
    );
    let read = step(&out, "read faultline-probe-1", 1);
    lines_in_order(read, &["> GET faultline-probe-1", "< +1", "= ok, read: 1"]);
}

#[test]
fn etcd_gateway_requests_answers_and_classification() {
    assert!(
        is_root(),
        "etcd's fixed ports need the netns backend, which needs root (CI runs as root)"
    );
    let (code, out, err) = probe(&root().join("dbs/etcd.toml"), "netns");
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("client protocol: etcd"), "{out}");
    let write = step(&out, "write faultline-probe-1 1", 0);
    lines_in_order(write, &["> POST /v3/kv/put", "> body ", "< HTTP 200 ", "= ok"]);
    // An append is a read and a guarded txn: both are shown.
    let append = step(&out, "append faultline-probe-2", 0);
    lines_in_order(
        append,
        &[
            "> POST /v3/kv/range",
            "< HTTP 200 ",
            "> POST /v3/kv/txn",
            "< HTTP 200 ",
            "= ok",
        ],
    );
    let read = step(&out, "read faultline-probe-1", 1);
    lines_in_order(read, &["> POST /v3/kv/range", "< HTTP 200 ", "= ok, read: 1"]);
}

#[test]
fn templated_http_names_the_rule_and_the_answers_no_rule_covers() {
    ensure_raftkv();
    // raftkv's API as a templated spec whose write rules forget the 200 raftkv answers.
    let text = std::fs::read_to_string(root().join("dbs/raftkv.toml")).unwrap();
    let head = &text[..text.find("[client]").expect("dbs/raftkv.toml has [client]")];
    let spec_text = format!(
        "{head}{}",
        r#"[client]
protocol = "http"
encoding = "json"
timeout_ms = 1000

[client.read]
path = "/kv/{key}"
value = { pointer = "/value" }
rules = [{ status = 200, outcome = "ok" }]

[client.write]
path = "/kv/{key}"
body = '{"value": {value}}'
rules = [{ status = 204, outcome = "ok" }]
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("raftkv-templated.toml");
    std::fs::write(&spec, spec_text).unwrap();
    let (code, out, err) = probe(&spec, "local");
    // Exit 1: some answer was covered by no rule.
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("client protocol: http"), "{out}");
    let read = step(&out, "read faultline-probe-1", 0);
    lines_in_order(
        read,
        &[
            "> GET /kv/faultline-probe-1",
            "< HTTP 200 ",
            "= ok, read: absent (null) (by client.read.rules[0])",
        ],
    );
    let write = step(&out, "write faultline-probe-1 1", 0);
    lines_in_order(
        write,
        &[
            "> PUT /kv/faultline-probe-1",
            "> body \"{\\\"value\\\": 1}\"",
            "< HTTP 200 ",
            "= info (unclassified: HTTP 200",
        ],
    );
    assert!(out.contains("1 answers no rule of the spec covers"), "{out}");
}
