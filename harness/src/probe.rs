//! The spec's probes of one node, over HTTP, RESP or a program: readiness, who the leader is, membership
//! actions.
//!
//! Each probe is a [`Query`]: an HTTP request to the node's client address (`kind = "http"`), a RESP
//! command sent there (`kind = "resp"`), or a program run on the harness's host with the node's
//! placeholders filled in (`kind = "command"`, an argument array, never a shell string; e.g. the system's
//! own CLI). Its answer is text (the body, the reply, the program's stdout); a field is read from it by a
//! JSON pointer, a regex (capture group 1, else the whole match), or is the whole text, trimmed.
//!
//! The leader: every node is asked; a node's answer either says whether it is the leader itself
//! (`self_pointer`/`self_regex`: the leader field equals its own id field, as etcd answers) or names the
//! leader, which is matched against each node's `leader_is` template (default `{id}`; e.g.
//! `"{host}:{peer_port}"` when the system names its leader by address). The most named node wins, a node
//! naming itself counting double.

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;

use crate::deployment::NodeInfo;
use crate::spec::{LeaderProbe, ProbeKind, ReadyProbe, Vars};

/// Placeholders of a probe of a node (commands, RESP commands, HTTP paths and bodies of probes).
pub const PROBE_PLACEHOLDERS: &[&str] = &[
    "id",
    "index",
    "host",
    "port",
    "client_port",
    "peer_port",
    "client_urls",
    "peer_urls",
    "client_address",
    "data_dir",
];

/// One probe request, not yet filled in for a node.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub kind: ProbeKind,
    pub method: &'a str,
    pub path: Option<&'a str>,
    pub body: Option<&'a str>,
    pub command: Option<&'a [String]>,
}

/// What a probe got back.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// A 2xx status, a reply that is not an error, a program that exited 0.
    pub success: bool,
    /// The body, the reply as text, or the program's stdout.
    pub text: String,
}

/// The placeholders of a node, for probes.
pub fn node_vars(n: &NodeInfo) -> Vars {
    let mut v = Vars::new();
    v.set("id", &n.id)
        .set("index", n.index)
        .set("host", n.host)
        .set("port", n.client_port)
        .set("client_port", n.client_port)
        .set("peer_port", n.peer_port)
        .set("client_urls", format!("http://{}:{}", n.host, n.client_port))
        .set("peer_urls", format!("http://{}:{}", n.host, n.peer_port))
        .set("client_address", &n.client_address)
        .set("data_dir", n.data_dir.display());
    v
}

/// Sends `q` about (and, for HTTP and RESP, to) node `n` with the placeholders `vars`, within `timeout`.
/// `Err` when there was no answer at all.
pub async fn ask(
    http: &reqwest::Client,
    q: Query<'_>,
    n: &NodeInfo,
    vars: &Vars,
    timeout: Duration,
) -> Result<Answer, String> {
    let exchange = async {
        match q.kind {
            ProbeKind::Tcp => tokio::net::TcpStream::connect(n.client_address.as_str())
                .await
                .map(|_| Answer {
                    success: true,
                    text: String::new(),
                })
                .map_err(|e| format!("connect {}: {e}", n.client_address)),
            ProbeKind::Http => {
                let path = vars.fill(q.path.unwrap_or("/"));
                let url = format!("http://{}{}", n.client_address, path);
                let m = reqwest::Method::from_bytes(q.method.as_bytes()).map_err(|e| e.to_string())?;
                let mut rq = http.request(m, url);
                if let Some(b) = q.body {
                    rq = rq.header("content-type", "application/json").body(vars.fill(b));
                }
                let resp = rq.send().await.map_err(|e| e.to_string())?;
                let success = resp.status().is_success();
                let text = resp.text().await.map_err(|e| e.to_string())?;
                Ok(Answer { success, text })
            }
            ProbeKind::Resp => {
                let argv = fill_argv(q.command.unwrap_or(&[]), vars);
                match workloads::resp::query(&n.client_address, &argv, timeout).await? {
                    Ok(text) => Ok(Answer { success: true, text }),
                    Err(text) => Ok(Answer { success: false, text }),
                }
            }
            ProbeKind::Command => run_command(&fill_argv(q.command.unwrap_or(&[]), vars)).await,
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
}

fn fill_argv(t: &[String], vars: &Vars) -> Vec<String> {
    t.iter().map(|a| vars.fill(a)).collect()
}

/// Runs a program (no shell), capturing its output. Killed when the caller gives up on it (timeout).
async fn run_command(argv: &[String]) -> Result<Answer, String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let out = tokio::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{prog}: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.trim().is_empty() {
            text.push_str(err.trim());
        }
    }
    Ok(Answer {
        success: out.status.success(),
        text,
    })
}

/// The query of a readiness probe.
pub fn ready_query(r: &ReadyProbe) -> Query<'_> {
    Query {
        kind: r.kind,
        method: &r.method,
        path: r.path.as_deref(),
        body: r.body.as_deref(),
        command: r.command.as_deref(),
    }
}

/// One readiness probe of one node: an answer that succeeded (and matches `expect_regex`, when given).
pub async fn probe_ready(http: &reqwest::Client, r: &ReadyProbe, n: &NodeInfo) -> bool {
    let timeout = Duration::from_secs(2);
    match ask(http, ready_query(r), n, &node_vars(n), timeout).await {
        Ok(a) if a.success => match &r.expect_regex {
            Some(re) => Regex::new(re).is_ok_and(|re| re.is_match(&a.text)),
            None => true,
        },
        _ => false,
    }
}

/// The query of a leader probe.
pub fn leader_query(l: &LeaderProbe) -> Query<'_> {
    Query {
        kind: l.kind,
        method: &l.method,
        path: l.path.as_deref(),
        body: l.body.as_deref(),
        command: l.command.as_deref(),
    }
}

/// Reads a field from a probe's answer: a JSON pointer, a regex (group 1, else the whole match), or the whole
/// text; trimmed; `None` when it is not there, empty, or JSON null.
pub fn read_field(text: &str, pointer: Option<&str>, regex: Option<&str>) -> Option<String> {
    let found = if let Some(p) = pointer {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        match v.pointer(p)? {
            serde_json::Value::Null => return None,
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    } else if let Some(r) = regex {
        let caps = Regex::new(r).ok()?.captures(text)?;
        caps.get(1).or_else(|| caps.get(0))?.as_str().to_string()
    } else {
        text.to_string()
    };
    let t = found.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// What one node said about the leader.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderView {
    /// The leader field, as read.
    pub leader: Option<String>,
    /// The node's own id field (with `self_pointer`/`self_regex`).
    pub me: Option<String>,
}

/// Reads a node's answer to the leader probe.
pub fn leader_view(l: &LeaderProbe, text: &str) -> LeaderView {
    let me = if l.self_pointer.is_some() || l.self_regex.is_some() {
        read_field(text, l.self_pointer.as_deref(), l.self_regex.as_deref())
    } else {
        None
    };
    LeaderView {
        leader: read_field(text, l.leader_pointer.as_deref(), l.leader_regex.as_deref()),
        me,
    }
}

/// Who the nodes' answers name as the leader: `views` pairs a node's id with what it said.
pub fn tally(l: &LeaderProbe, nodes: &[NodeInfo], views: &[(String, LeaderView)]) -> Option<String> {
    let by_self = l.self_pointer.is_some() || l.self_regex.is_some();
    let template = l.leader_is.as_deref().unwrap_or("{id}");
    let names: Vec<(String, &str)> = nodes
        .iter()
        .map(|n| (node_vars(n).fill(template), n.id.as_str()))
        .collect();
    let mut votes: BTreeMap<String, usize> = BTreeMap::new();
    for (id, v) in views {
        let Some(leader) = &v.leader else { continue };
        if by_self {
            if Some(leader) == v.me.as_ref() {
                *votes.entry(id.clone()).or_default() += 1;
            }
        } else if let Some((_, named)) = names.iter().find(|(name, _)| name == leader) {
            // A node naming itself counts double: it knows best.
            *votes.entry(named.to_string()).or_default() += if *named == id { 2 } else { 1 };
        }
    }
    votes.into_iter().max_by_key(|(_, c)| *c).map(|(id, _)| id)
}

/// The leader through the spec's leader probe: every node asked at once, each within `timeout`.
pub async fn find_leader(
    http: &reqwest::Client,
    l: &LeaderProbe,
    nodes: &[NodeInfo],
    timeout: Duration,
) -> Option<String> {
    let q = leader_query(l);
    let asks = nodes.iter().map(|n| async move {
        let a = ask(http, q, n, &node_vars(n), timeout).await.ok()?;
        a.success.then(|| (n.id.clone(), leader_view(l, &a.text)))
    });
    let views: Vec<(String, LeaderView)> = futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect();
    tally(l, nodes, &views)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: usize) -> NodeInfo {
        let mut n = NodeInfo::for_tests(&format!("n{i}"), &format!("127.0.0.1:{}", 7000 + i));
        n.peer_port = 9000 + i as u16;
        n
    }

    fn probe(extra: &str) -> LeaderProbe {
        toml::from_str(&format!("kind = \"command\"\ncommand = [\"x\"]\n{extra}")).unwrap()
    }

    #[test]
    fn fields_by_pointer_regex_or_whole_text() {
        assert_eq!(
            read_field(r#"{"a": {"b": 3}}"#, Some("/a/b"), None).as_deref(),
            Some("3")
        );
        assert_eq!(read_field(r#"{"a": null}"#, Some("/a"), None), None);
        assert_eq!(
            read_field("role:leader\nleader_id:n2\n", None, Some(r"leader_id:(\w+)")).as_deref(),
            Some("n2")
        );
        assert_eq!(read_field("no", None, Some(r"leader_id:(\w+)")), None);
        assert_eq!(
            read_field(" 127.0.0.1:9001\n", None, None).as_deref(),
            Some("127.0.0.1:9001")
        );
        assert_eq!(read_field("  \n", None, None), None);
    }

    #[test]
    fn the_leader_named_by_address_is_matched_to_its_node() {
        let nodes = [node(1), node(2), node(3)];
        let l = probe("leader_is = \"{host}:{peer_port}\"");
        let said = |who: &str| LeaderView {
            leader: Some(who.into()),
            me: None,
        };
        // n1 still thinks it leads; n2 and n3 name n2.
        let views = [
            ("n1".to_string(), said("127.0.0.1:9001")),
            ("n2".to_string(), said("127.0.0.1:9002")),
            ("n3".to_string(), said("127.0.0.1:9002")),
        ];
        assert_eq!(tally(&l, &nodes, &views).as_deref(), Some("n2"));
        // An address of no node names nobody.
        assert_eq!(tally(&l, &nodes, &[("n1".into(), said("10.0.0.1:1"))]), None);
        // Without leader_is the field is a node id.
        let l = probe("");
        assert_eq!(
            tally(&l, &nodes, &[("n1".into(), said("n3"))]).as_deref(),
            Some("n3")
        );
    }

    #[test]
    fn a_node_that_recognises_itself_is_the_leader() {
        let nodes = [node(1), node(2)];
        let l = probe("leader_regex = \"leader=(\\\\d+)\"\nself_regex = \"me=(\\\\d+)\"");
        let v1 = leader_view(&l, "me=11 leader=12");
        let v2 = leader_view(&l, "me=12 leader=12");
        assert_eq!(
            tally(&l, &nodes, &[("n1".into(), v1), ("n2".into(), v2)]).as_deref(),
            Some("n2")
        );
    }

    #[tokio::test]
    async fn a_command_probe_runs_the_program_with_the_node_filled_in() {
        let n = node(2);
        let argv = vec!["echo".to_string(), "{id}@{host}:{peer_port}".to_string()];
        let q = Query {
            kind: ProbeKind::Command,
            method: "GET",
            path: None,
            body: None,
            command: Some(&argv),
        };
        let http = reqwest::Client::new();
        let a = ask(&http, q, &n, &node_vars(&n), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            a,
            Answer {
                success: true,
                text: "n2@127.0.0.1:9002\n".into()
            }
        );
        let argv = vec!["false".to_string()];
        let q = Query {
            command: Some(&argv),
            ..q
        };
        assert!(
            !ask(&http, q, &n, &node_vars(&n), Duration::from_secs(5))
                .await
                .unwrap()
                .success
        );
        // A program that does not finish in time is given up (and killed).
        let argv = vec!["sleep".to_string(), "30".to_string()];
        let q = Query {
            command: Some(&argv),
            ..q
        };
        let e = ask(&http, q, &n, &node_vars(&n), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(e.contains("no answer within 200 ms"), "{e}");
    }
}
