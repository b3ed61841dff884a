//! A DB spec is checked when it is read: the templated client's rules, the probes over RESP and programs,
//! each error `file:line: field: reason` with the line of the element at fault.

use harness::deployment::DeploymentOptions;
use harness::state::StateFile;
use harness::{Backend, Deployment, LoadedSpec};
use std::sync::Arc;

const BASE: &str = r#"name = "x"
command = ["/bin/sleep", "{port}"]
[ready]
kind = "tcp"
"#;

fn load(text: &str) -> Result<LoadedSpec, String> {
    LoadedSpec::from_text(text, "t.toml", None).map_err(|e| e.to_string())
}

fn client(body: &str) -> String {
    format!("{BASE}[client]\nprotocol = \"http\"\n{body}")
}

#[test]
fn a_wrong_rule_is_named_with_its_line() {
    let text = client(
        r#"[client.write]
path = "/{key}"
body = "{value}"
rules = [
  { status = 200, body_regex = "^done", outcome = "ok" },
  { status = 200, body_regex = "^Error: (", outcome = "info" },
]
"#,
    );
    let e = load(&text).unwrap_err();
    assert!(
        e.starts_with("t.toml:12: client.write.rules[1].body_regex: regex parse error"),
        "{e}"
    );
    // The same rules as [[client.write.rules]] tables: the line of the second table.
    let text = client(
        "[client.write]\npath = \"/{key}\"\n[[client.write.rules]]\nstatus = 200\noutcome = \"ok\"\n\
         [[client.write.rules]]\npointer = \"leader\"\noutcome = \"fail\"\n",
    );
    let e = load(&text).unwrap_err();
    assert!(
        e.starts_with("t.toml:12: client.write.rules[1].pointer: \"leader\" is not a JSON pointer"),
        "{e}"
    );
}

#[test]
fn placeholders_that_cannot_appear_and_type_errors() {
    let e = load(&client("[client.read]\npath = \"/{key}?v={value}\"\n")).unwrap_err();
    assert!(
        e.starts_with("t.toml:8: client.read.path: placeholder {value} cannot appear here"),
        "{e}"
    );
    let e = load(&client(
        "[client.read]\npath = \"/{key}\"\nrules = [{ status = true, outcome = \"ok\" }]\n",
    ))
    .unwrap_err();
    assert!(
        e.starts_with("t.toml:9: client: invalid type: boolean `true`, expected a status"),
        "{e}"
    );
    let e = load(&client(
        "[client.read]\npath = \"/{key}\"\nrules = [{ status = 200, outcome = \"okay\" }]\n",
    ))
    .unwrap_err();
    assert!(
        e.starts_with("t.toml:9:") && e.contains("unknown variant `okay`"),
        "{e}"
    );
}

#[test]
fn the_spec_workload_must_be_describable() {
    let text = format!(
        "workload = \"cas-register\"\n{}",
        client("[client.read]\npath = \"/{key}\"\n[client.write]\npath = \"/{key}\"\n")
    );
    let e = load(&text).unwrap_err();
    assert!(
        e.starts_with("t.toml:1: workload: cas-register needs [client.cas]"),
        "{e}"
    );
    let ok = text.replace("cas-register", "register");
    let s = load(&ok).unwrap();
    assert_eq!(s.pick_workload(None).unwrap().name(), "register");
    let e = s.pick_workload(Some("set")).unwrap_err().to_string();
    assert!(e.contains("describes no [client.add], [client.read_set]"), "{e}");
}

#[test]
fn probes_over_resp_and_programs_are_checked() {
    let resp = format!("{BASE}[client]\nprotocol = \"resp\"\n");
    let with = |extra: &str| resp.replace("[ready]\nkind = \"tcp\"\n", extra);
    // RESP readiness defaults to PING; a RESP leader probe needs its command.
    load(&with("[ready]\nkind = \"resp\"\n")).unwrap();
    let e = load(&with(
        "[ready]\nkind = \"resp\"\n[leader]\nkind = \"resp\"\nleader_regex = \"leader:(\\\\w+)\"\n",
    ))
    .unwrap_err();
    assert!(e.contains("leader.command: missing"), "{e}");
    let good = "[ready]\nkind = \"resp\"\n[leader]\nkind = \"resp\"\ncommand = [\"RAFT.INFO\"]\nleader_regex = \"leader:(\\\\w+)\"\n";
    load(&with(good)).unwrap();
    let e = load(&with(&good.replace("(\\\\w+)", "(\\\\w+"))).unwrap_err();
    assert!(
        e.starts_with("t.toml:8: leader.leader_regex: regex parse error"),
        "{e}"
    );
    let e = load(&with(
        "[ready]\nkind = \"command\"\ncommand = [\"cli\", \"{nope}\"]\n",
    ))
    .unwrap_err();
    assert!(e.contains("ready.command[1]: unknown placeholder {nope}"), "{e}");
    let e = load(&with(
        "[ready]\nkind = \"command\"\npath = \"/x\"\ncommand = [\"cli\"]\n",
    ))
    .unwrap_err();
    assert!(
        e.contains("ready.path: a command query takes a command, not a path"),
        "{e}"
    );
    let e = load(&with("[ready]\nkind = \"tcp\"\n[leader]\nkind = \"command\"\ncommand = [\"cli\"]\nleader_is = \"{hots}\"\n")).unwrap_err();
    assert!(e.contains("leader.leader_is: unknown placeholder {hots}"), "{e}");
    let e = load(&with(
        "[ready]\nkind = \"tcp\"\n[leader]\npath = \"/s\"\nleader_pointer = \"/a\"\nleader_regex = \"b\"\n",
    ))
    .unwrap_err();
    assert!(
        e.contains("leader.leader_regex: give leader_pointer or leader_regex, not both"),
        "{e}"
    );
    let e = load(&with(
        "[ready]\nkind = \"tcp\"\n[membership.add]\nkind = \"command\"\ncommand = [\"cli\", \"{peerz}\"]\n",
    ))
    .unwrap_err();
    assert!(
        e.contains("membership.add.command[1]: unknown placeholder {peerz}"),
        "{e}"
    );
}

/// A spec whose `[leader]` probe runs `sh -c "sleep <secs>; echo n1"`, with `extra` in the section.
fn slow_leader(secs: &str, extra: &str) -> String {
    let leader = format!(
        "[leader]\nkind = \"command\"\ncommand = [\"/bin/sh\", \"-c\", \"sleep {secs}; echo n1\"]\n{extra}"
    );
    format!("{BASE}[client]\nprotocol = \"http-kv\"\n{leader}[external]\nnodes = [{{ id = \"n1\", address = \"127.0.0.1:9\" }}]\n")
}

#[test]
fn the_leader_probe_timeout_is_checked() {
    let spec = load(&slow_leader("0", "")).unwrap();
    assert_eq!(spec.spec.leader.unwrap().timeout_ms, 750);
    for bad in ["0", "2501"] {
        let e = load(&slow_leader("0", &format!("timeout_ms = {bad}\n"))).unwrap_err();
        assert_eq!(
            e,
            "t.toml:10: leader.timeout_ms: must be in 1..=2500 milliseconds"
        );
    }
    let e = load(&slow_leader("0", "timeout_ms = -5\n")).unwrap_err();
    assert!(e.starts_with("t.toml:10:"), "{e}");
}

/// The leader of an external one-node cluster through a probe program that answers after `secs`.
async fn leader_after(secs: &str, extra: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let spec = Arc::new(LoadedSpec::from_text(&slow_leader(secs, extra), "t.toml", None).unwrap());
    let opts = DeploymentOptions::plain(Backend::Local, 1, dir.path().to_path_buf());
    let cluster = Deployment::create(spec, &opts, StateFile::create(dir.path()).unwrap()).unwrap();
    cluster.leader().await.unwrap()
}

/// The probe's `timeout_ms` is what the leader query waits for each node: a program answering after 1.5 s is
/// given up on at the default 750 ms and heard with 2500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_leader_probe_is_heard_only_within_its_timeout() {
    assert_eq!(leader_after("0", "").await.as_deref(), Some("n1"));
    assert_eq!(leader_after("1.5", "").await, None);
    assert_eq!(
        leader_after("1.5", "timeout_ms = 2500\n").await.as_deref(),
        Some("n1")
    );
}
