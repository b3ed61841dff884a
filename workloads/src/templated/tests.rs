use super::*;
use checker::EventType::{Fail, Info, Ok as OkEv};

fn settings(text: &str) -> HttpSettings {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

fn compile_err(text: &str) -> String {
    match toml::from_str::<HttpSettings>(text) {
        Err(e) => e.to_string(),
        Ok(s) => compile(&s).map(|_| ()).unwrap_err().to_string(),
    }
}

/// dqlite-demo's API: PUT /key with a raw body answers `done`, GET /key the value; errors are 200 `Error: ...`.
const DQLITE: &str = r#"
[read]
path = "/{key}"
rules = [
  { body_regex = "^Error: sql: no rows in result set", outcome = "absent" },
  { body_regex = "^Error: ", outcome = "fail", error = "dqlite-error" },
  { status = 200, outcome = "ok" },
]
[write]
path = "/{key}"
body = "{value}"
rules = [
  { status = 200, body_regex = "^done\\s*$", outcome = "ok" },
  { status = 200, body_regex = "^Error: ", outcome = "info", error = "dqlite-error" },
]
"#;

fn plan(text: &str) -> Plan {
    compile(&settings(text)).unwrap_or_else(|e| panic!("{e}"))
}

fn op_plan(p: &Plan, kind: OpKind) -> &OpPlan {
    &p.ops.iter().find(|(k, _)| *k == kind).unwrap().1
}

fn run(p: &Plan, call: Call, status: u16, body: &str) -> Completion {
    classify(op_plan(p, OpKind::of(&call)), p.encoding, &call, status, body).0
}

#[test]
fn dqlite_answers_are_classified() {
    let p = plan(DQLITE);
    assert_eq!(run(&p, Call::Read, 200, "17\n"), Completion::ok(json!(17)));
    assert_eq!(
        run(&p, Call::Read, 200, "Error: sql: no rows in result set\n"),
        Completion::ok(Value::Null)
    );
    let r = run(&p, Call::Read, 200, "Error: context deadline exceeded\n");
    assert_eq!((r.kind, r.error.as_deref()), (Fail, Some("dqlite-error")));
    let w = Call::Write(json!(5));
    assert_eq!(run(&p, w.clone(), 200, "done\n"), Completion::ok(json!(5)));
    let r = run(&p, w.clone(), 200, "Error: leadership lost\n");
    assert_eq!((r.kind, r.error.as_deref()), (Info, Some("dqlite-error")));
}

#[test]
fn an_answer_no_rule_covers_is_indeterminate_and_named() {
    let p = plan(DQLITE);
    let w = Call::Write(json!(5));
    let r = run(&p, w, 418, "I'm a teapot");
    assert_eq!(r.kind, Info, "{r:?}");
    let e = r.error.unwrap();
    assert!(e.starts_with("unclassified: HTTP 418 \"I'm a teapot\""), "{e}");
    // A read that no rule covers changed nothing: fail, also named.
    let r = run(&p, Call::Read, 503, "busy");
    assert_eq!(r.kind, Fail);
    assert!(r.error.unwrap().starts_with("unclassified: HTTP 503"));
    // A write answered 200 with a body no rule expects is not taken for a success.
    let r = run(&p, Call::Write(json!(1)), 200, "maybe");
    assert_eq!(r.kind, Info);
}

#[test]
fn default_rule_is_2xx_ok_and_only_without_rules() {
    let p = plan("[read]\npath = \"/kv?key={key}\"\n[write]\npath = \"/kv?key={key}\"\nbody = \"{value}\"\n");
    assert_eq!(run(&p, Call::Write(json!(1)), 204, "").kind, OkEv);
    assert_eq!(run(&p, Call::Write(json!(1)), 500, "").kind, Info);
    assert_eq!(run(&p, Call::Read, 200, " 3 "), Completion::ok(json!(3)));
    let p = plan("rules = [{ status = 503, outcome = \"fail\" }]\n[write]\npath = \"/{key}\"\n");
    // Shared rules exist, so there is no default 2xx rule.
    assert_eq!(run(&p, Call::Write(json!(1)), 200, "").kind, Info);
    assert_eq!(run(&p, Call::Write(json!(1)), 503, "").kind, Fail);
}

#[test]
fn json_pointer_rules_and_values() {
    let p = plan(
        r#"
encoding = "json"
rules = [{ status = "5xx", outcome = "info" }, { status = [409, 412], outcome = "fail", error = "conflict" }]
[read]
path = "/v1/kv/{key}"
value = { pointer = "/node/value" }
rules = [{ status = 404, outcome = "absent" }, { status = 200, pointer = "/node", outcome = "ok" }]
[cas]
method = "PUT"
path = "/v1/kv/{key}"
body = '{"expect": {from}, "value": {to}}'
rules = [
  { status = 200, pointer = "/swapped", equals = true, outcome = "ok" },
  { status = 200, pointer = "/swapped", equals = false, outcome = "cas-mismatch" },
]
"#,
    );
    assert_eq!(
        run(&p, Call::Read, 200, r#"{"node": {"value": "x"}}"#),
        Completion::ok(json!("x"))
    );
    assert_eq!(
        run(&p, Call::Read, 200, r#"{"node": {"value": 4}}"#),
        Completion::ok(json!(4))
    );
    assert_eq!(run(&p, Call::Read, 404, ""), Completion::ok(Value::Null));
    let r = run(&p, Call::Read, 200, r#"{"other": 1}"#);
    assert_eq!(r.kind, Fail);
    assert!(r.error.unwrap().starts_with("unclassified"));
    let cas = Call::Cas(json!(1), json!(2));
    assert_eq!(run(&p, cas.clone(), 200, r#"{"swapped": true}"#).kind, OkEv);
    let r = run(&p, cas.clone(), 200, r#"{"swapped": false}"#);
    assert_eq!((r.kind, r.error.as_deref()), (Fail, Some("cas-mismatch")));
    assert_eq!(run(&p, cas.clone(), 200, r#"{"swapped": "?"}"#).kind, Info);
    assert_eq!(run(&p, cas.clone(), 502, "").kind, Info);
    let r = run(&p, cas, 412, "");
    assert_eq!((r.kind, r.error.as_deref()), (Fail, Some("conflict")));
}

#[test]
fn regex_values_base64_and_sets() {
    let p = plan(
        r#"
encoding = "base64"
[read]
path = "/get/{key}"
value = { regex = "value=(\\S+)" }
[read_set]
path = "/set/{key}"
value = { regex = "members: (.*)" }
[add]
path = "/set/{key}"
body = "{value}"
"#,
    );
    assert_eq!(
        run(&p, Call::Read, 200, "key=k1 value=MTc= rev=3"),
        Completion::ok(json!(17))
    );
    let r = run(&p, Call::Read, 200, "key=k1");
    assert!(r.error.unwrap().contains("does not match"));
    assert_eq!(
        run(&p, Call::ReadSet, 200, "members: NQ==, MQ==,Mw=="),
        Completion::ok(json!([1, 3, 5]))
    );
    assert_eq!(Encoding::Base64.encode(&json!("t1.2;")), "dDEuMjs=");
    assert_eq!(Encoding::Json.encode(&json!("a")), "\"a\"");
    assert_eq!(Encoding::Plain.encode(&json!(12)), "12");
}

#[test]
fn placeholders_in_urls_are_encoded() {
    let vars = [("key", "a/b c".to_string()), ("value", "x&y".to_string())];
    assert_eq!(fill("/kv/{key}?v={value}", &vars, true), "/kv/a%2Fb%20c?v=x%26y");
    assert_eq!(
        fill(r#"{"v": "{value}", "k": {}}"#, &vars, false),
        r#"{"v": "x&y", "k": {}}"#
    );
}

#[test]
fn every_rule_is_checked_when_read() {
    let cases = [
        (
            "[read]\npath = \"/{key}\"\nrules = [{ body_regex = \"(\", outcome = \"ok\" }]",
            "client.read.rules[0].body_regex: regex parse error",
        ),
        (
            "[read]\npath = \"/{key}\"\nvalue = { pointer = \"value\" }",
            "client.read.value.pointer: \"value\" is not a JSON pointer",
        ),
        (
            "[read]\npath = \"/{key}/{value}\"",
            "client.read.path: placeholder {value} cannot appear here (known here: {key})",
        ),
        (
            "[write]\npath = \"/{key}\"\nbody = \"{vaule}\"",
            "client.write.body: placeholder {vaule} is unknown",
        ),
        (
            "[cas]\npath = \"/{key}\"\nbody = \"{from} {to}\"",
            "client.cas.rules: a cas needs a rule with outcome = \"cas-mismatch\"",
        ),
        (
            "[write]\npath = \"/{key}\"\nrules = [{ status = 404, outcome = \"absent\" }]",
            "client.write.rules[0].outcome: outcome \"absent\" belongs in the rules of read",
        ),
        (
            "[write]\npath = \"/{key}\"\nrules = [{ outcome = \"ok\" }]",
            "client.write.rules[0]: matches every answer",
        ),
        (
            "[write]\npath = \"/{key}\"\nrules = [{ status = \"2xy\", outcome = \"ok\" }]",
            "client.write.rules[0].status: \"2xy\": expected a status",
        ),
        (
            "[write]\npath = \"/{key}\"\nrules = [{ status = 700, outcome = \"ok\" }]",
            "client.write.rules[0].status: 700 is not an HTTP status",
        ),
        (
            "[read]\npath = \"/{key}\"\nvalue = { regex = \"v=\\\\d+\" }",
            "client.read.value.group: the regex has no capture group 1",
        ),
        (
            "[read]\npath = \"/{key}\"\nmethod = \"FETCH\"",
            "client.read.method: unknown HTTP method",
        ),
        (
            "[read]\npath = \"{key}\"",
            "client.read.path: must start with '/'",
        ),
        (
            "[write]\npath = \"/{key}\"\nvalue = { pointer = \"/v\" }",
            "client.write.value: only reads",
        ),
        ("timeout_ms = 1", "client: describe at least one operation"),
        (
            "[read]\npath = \"/{key}\"\nrules = [{ status = 200, outcome = \"maybe\" }]",
            "unknown variant `maybe`",
        ),
        (
            "rules = [{ status = 200, outcome = \"cas-mismatch\" }]\n[read]\npath = \"/{key}\"",
            "client.rules[0].outcome: outcome \"cas-mismatch\" belongs in the rules of cas",
        ),
        (
            "[read]\npath = \"/{key}\"\nrules = [{ pointer = \"/a~2\", outcome = \"ok\" }]",
            "client.read.rules[0].pointer: \"/a~2\": '~' must be followed by 0 or 1",
        ),
        (
            "[write]\npath = \"/{key}\"\nheaders = { \"X Bad\" = \"1\" }",
            "client.write.headers.X Bad: not a valid header name",
        ),
    ];
    for (text, want) in cases {
        let e = compile_err(text);
        assert!(e.contains(want), "spec:\n{text}\nerror: {e}\nwanted: {want}");
    }
}

#[test]
fn workloads_need_their_operations() {
    let s = settings(DQLITE);
    assert!(s.missing_for(Workload::Register).is_empty());
    assert_eq!(s.missing_for(Workload::CasRegister), ["cas"]);
    assert_eq!(s.missing_for(Workload::Set), ["add", "read_set"]);
}
