//! iptables rules in faultline's own chain. The nemesis only ever creates its chain, appends and deletes its
//! own rules in it, inserts and deletes its own jump rule, and at the end flushes and deletes its own chain.
//! It never touches any other chain's rules.

use crate::cluster::{Cluster, NetLayout, Node};
use crate::error::NemesisError;
use crate::partition::Drops;

/// Prefix of every chain faultline creates.
pub const CHAIN_PREFIX: &str = "FL-";

/// iptables' limit on chain names.
const MAX_CHAIN: usize = 28;

/// The chain of a run: `FL-<run id>`, with characters iptables dislikes replaced by `_`; a long run id is
/// shortened and given a hash suffix so that it stays unique and within iptables' 28 characters.
pub fn chain_name(run_id: &str) -> String {
    let clean: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if CHAIN_PREFIX.len() + clean.len() <= MAX_CHAIN {
        return format!("{CHAIN_PREFIX}{clean}");
    }
    // FNV-1a of the whole id keeps distinct long ids distinct.
    let mut h: u32 = 0x811c_9dc5;
    for b in run_id.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    let keep = MAX_CHAIN - CHAIN_PREFIX.len() - 9;
    format!("{CHAIN_PREFIX}{}-{h:08x}", &clean[..keep])
}

/// The built-in chain that jumps to ours: incoming packets in a node's namespace, outgoing ones on the host.
pub(crate) fn hook(backend: NetLayout) -> &'static str {
    match backend {
        NetLayout::Netns => "INPUT",
        NetLayout::Local => "OUTPUT",
    }
}

/// One rule of ours: where it lives (the node whose netfilter table holds it) and its match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub place: String,
    pub spec: Vec<String>,
}

/// Where the rules of `node` live: on the local backend every node shares the host's table, held by the
/// first node.
pub(crate) fn place_of<'a>(backend: NetLayout, nodes: &'a [Node], node: &'a str) -> &'a str {
    match backend {
        NetLayout::Netns => node,
        NetLayout::Local => nodes.first().map(|n| n.id.as_str()).unwrap_or(node),
    }
}

/// Every place that can hold our rules.
pub(crate) fn places(backend: NetLayout, nodes: &[Node]) -> Vec<String> {
    match backend {
        NetLayout::Netns => nodes.iter().map(|n| n.id.clone()).collect(),
        NetLayout::Local => nodes.first().map(|n| vec![n.id.clone()]).unwrap_or_default(),
    }
}

/// The rules that make every `dst` drop packets from each of its `drops[dst]` (with `probability`, or all).
pub(crate) fn drop_rules(
    backend: NetLayout,
    nodes: &[Node],
    drops: &Drops,
    probability: Option<f64>,
) -> Result<Vec<Rule>, NemesisError> {
    let find = |id: &str| {
        nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| NemesisError::Unsupported(format!("no node {id} in the cluster")))
    };
    let stat: Vec<String> = match probability {
        Some(p) => ["-m", "statistic", "--mode", "random", "--probability"]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("{p}")])
            .collect(),
        None => Vec::new(),
    };
    let mut rules = Vec::new();
    for (dst, srcs) in drops {
        let d = find(dst)?;
        for src in srcs {
            let s = find(src)?;
            match backend {
                NetLayout::Netns => {
                    let mut spec = vec!["-s".to_string(), format!("{}", s.addr)];
                    spec.extend(stat.iter().cloned());
                    spec.extend(["-j".to_string(), "DROP".to_string()]);
                    rules.push(Rule {
                        place: d.id.clone(),
                        spec,
                    });
                }
                NetLayout::Local => rules.extend(local_drop_rules(nodes, d, s, &stat)?),
            }
        }
    }
    Ok(rules)
}

/// The local backend's rules that drop what `s` sends to `d` (every node shares the host's loopback, so a
/// packet is told by the cgroup of the process that sends it and the ports): per protocol, what `s` sends
/// from its own ports on connections `d` opened, and what it sends to `d`'s ports. `stat` is the
/// `statistic` match of a lossy fault, or empty.
fn local_drop_rules(nodes: &[Node], d: &Node, s: &Node, stat: &[String]) -> Result<Vec<Rule>, NemesisError> {
    let cgroup = s.cgroup.as_ref().ok_or_else(|| no_cgroup(&s.id))?;
    if d.ports.is_empty() {
        return Err(NemesisError::Unsupported(format!("node {} lists no ports", d.id)));
    }
    let ports: Vec<String> = d.ports.iter().map(u16::to_string).collect();
    let src_ports: Vec<String> = s.ports.iter().map(u16::to_string).collect();
    let place = place_of(NetLayout::Local, nodes, &d.id).to_string();
    let dst_addr = d.addr.to_string();
    let rule = |head: &[&str]| {
        let mut spec: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        spec.extend(stat.iter().cloned());
        spec.extend(["-j".to_string(), "DROP".to_string()]);
        Rule {
            place: place.clone(),
            spec,
        }
    };
    let mut rules = Vec::new();
    for proto in ["tcp", "udp"] {
        let base = [
            "-p",
            proto,
            "-m",
            "cgroup",
            "--path",
            cgroup,
            "-d",
            &dst_addr,
            "-m",
            "multiport",
        ];
        // What src sends from its own ports on connections dst opened.
        if !src_ports.is_empty() {
            let mark = mark_of(nodes, &d.id);
            let extra = [
                "--sports",
                &src_ports.join(","),
                "-m",
                "connmark",
                "--mark",
                &mark,
            ];
            rules.push(rule(&[&base[..], &extra[..]].concat()));
        }
        // What src sends to dst's ports.
        let extra = ["--dports", &ports.join(",")];
        rules.push(rule(&[&base[..], &extra[..]].concat()));
    }
    Ok(rules)
}

/// Bits of the conntrack mark the local backend uses to remember which node opened a connection.
const MARK_MASK: u32 = 0x3F00_0000;

/// The largest cluster the local backend can mark.
pub(crate) const MAX_MARKED_NODES: usize = 63;

fn mark_of(nodes: &[Node], id: &str) -> String {
    let i = nodes.iter().position(|n| n.id == id).unwrap_or(0) as u32;
    format!("{:#x}/{MARK_MASK:#x}", (i + 1) << 24)
}

/// Local backend: rules that stamp every connection between two nodes with the node on its connecting side:
/// a packet a node's processes send to any node's declared port sets the sender's bits of the conntrack mark
/// (no reliance on conntrack's idea of direction, which is wrong for connections it picked up mid-stream).
/// The drop rules use the stamp to find the packets a node sends from its own ports on connections another
/// node opened, which no port can tell apart from replies to clients. Netns backend: none.
pub(crate) fn mark_rules(backend: NetLayout, nodes: &[Node]) -> Result<Vec<Rule>, NemesisError> {
    if backend == NetLayout::Netns {
        return Ok(Vec::new());
    }
    if nodes.len() > MAX_MARKED_NODES {
        return Err(NemesisError::Unsupported(format!(
            "network faults on the local backend handle at most {MAX_MARKED_NODES} nodes"
        )));
    }
    let mut all_ports: Vec<String> = nodes
        .iter()
        .flat_map(|n| n.ports.iter().map(u16::to_string))
        .collect();
    all_ports.sort();
    all_ports.dedup();
    let mut rules = Vec::new();
    for n in nodes {
        let cgroup = n.cgroup.as_ref().ok_or_else(|| no_cgroup(&n.id))?;
        // multiport takes at most 15 ports.
        for chunk in all_ports.chunks(15) {
            for proto in ["tcp", "udp"] {
                let spec: Vec<String> = [
                    "-p",
                    proto,
                    "-m",
                    "cgroup",
                    "--path",
                    cgroup,
                    "-m",
                    "multiport",
                    "--dports",
                    &chunk.join(","),
                ]
                .iter()
                .map(|s| s.to_string())
                .chain([
                    "-j".into(),
                    "CONNMARK".into(),
                    "--set-xmark".into(),
                    mark_of(nodes, &n.id),
                ])
                .collect();
                rules.push(Rule {
                    place: place_of(backend, nodes, &n.id).to_string(),
                    spec,
                });
            }
        }
    }
    Ok(rules)
}

pub(crate) fn no_cgroup(node: &str) -> NemesisError {
    NemesisError::Unsupported(format!(
        "network faults on the local backend need every node in its own cgroup (node {node} has none): \
         on loopback the sending node can only be told apart by its cgroup"
    ))
}

/// Runs `argv` at `place` and fails unless it exits 0.
pub(crate) async fn run(cluster: &dyn Cluster, place: &str, argv: &[String]) -> Result<String, NemesisError> {
    let out = cluster
        .exec(place, argv)
        .await
        .map_err(|source| NemesisError::Cluster {
            action: "exec on",
            node: place.to_string(),
            source,
        })?;
    if out.status == Some(0) {
        Ok(out.stdout)
    } else {
        Err(NemesisError::Command {
            place: place.to_string(),
            argv: argv.join(" "),
            status: out
                .status
                .map_or("killed by a signal".to_string(), |s| format!("exit {s}")),
            stderr: out.stderr.trim().lines().next().unwrap_or("").to_string(),
        })
    }
}

/// `iptables -w ARGS...` as an argument array.
pub fn iptables(args: &[&str]) -> Vec<String> {
    let mut v = vec!["iptables".to_string(), "-w".to_string()];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// Creates our chain at `place` if needed and makes `hook` jump to it (once).
/// When it creates the chain, it first fills it with `marks` (see [`mark_rules`]).
pub(crate) async fn ensure_chain(
    cluster: &dyn Cluster,
    place: &str,
    chain: &str,
    hook: &str,
    marks: &[Rule],
) -> Result<(), NemesisError> {
    let listing = run(cluster, place, &iptables(&["-S"])).await?;
    let has_chain = listing.lines().any(|l| l.trim() == format!("-N {chain}"));
    if !has_chain {
        run(cluster, place, &iptables(&["-N", chain])).await?;
        for m in marks {
            append(cluster, chain, m).await?;
        }
    }
    let jump = format!("-A {hook} -j {chain}");
    if !listing.lines().any(|l| l.trim() == jump) {
        run(cluster, place, &iptables(&["-I", hook, "1", "-j", chain])).await?;
    }
    Ok(())
}

/// Appends `rule` to our chain.
pub(crate) async fn append(cluster: &dyn Cluster, chain: &str, rule: &Rule) -> Result<(), NemesisError> {
    let mut argv = iptables(&["-A", chain]);
    argv.extend(rule.spec.iter().cloned());
    run(cluster, &rule.place, &argv).await.map(|_| ())
}

/// Deletes `rule` from our chain.
pub(crate) async fn delete(cluster: &dyn Cluster, chain: &str, rule: &Rule) -> Result<(), NemesisError> {
    let mut argv = iptables(&["-D", chain]);
    argv.extend(rule.spec.iter().cloned());
    run(cluster, &rule.place, &argv).await.map(|_| ())
}

/// From an `iptables -S` listing, the commands that remove the chains `wanted` selects: delete each jump
/// to them, then flush and delete them. Touches nothing else.
pub fn removal_commands(listing: &str, wanted: impl Fn(&str) -> bool) -> Vec<Vec<String>> {
    let mut chains = Vec::new();
    let mut jumps = Vec::new();
    for line in listing.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        match t.as_slice() {
            ["-N", c] if wanted(c) => chains.push(c.to_string()),
            ["-A", from, "-j", to] if wanted(to) && !wanted(from) => {
                jumps.push(iptables(&["-D", from, "-j", to]));
            }
            _ => {}
        }
    }
    let mut cmds = jumps;
    for c in &chains {
        cmds.push(iptables(&["-F", c]));
    }
    for c in &chains {
        cmds.push(iptables(&["-X", c]));
    }
    cmds
}

/// Removes our chain at `place` (jump, rules, chain); does nothing if it is not there.
pub(crate) async fn remove_chain(
    cluster: &dyn Cluster,
    place: &str,
    chain: &str,
) -> Result<(), NemesisError> {
    let listing = run(cluster, place, &iptables(&["-S"])).await?;
    for argv in removal_commands(&listing, |c| c == chain) {
        run(cluster, place, &argv).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_fit_and_stay_distinct() {
        assert_eq!(chain_name("run1"), "FL-run1");
        assert_eq!(chain_name("a b/c"), "FL-a_b_c");
        let a = chain_name("raftkv-cas-register-20261130T111300Z-aaaa");
        let b = chain_name("raftkv-cas-register-20261130T111300Z-aaab");
        assert!(a.len() <= 28 && b.len() <= 28 && a != b, "{a} {b}");
        assert!(a.starts_with(CHAIN_PREFIX));
    }

    #[test]
    fn removal_touches_only_the_wanted_chain() {
        let listing = "-P INPUT ACCEPT\n-P OUTPUT ACCEPT\n-N FL-r1\n-N FL-r2\n-N KUBE-X\n\
                       -A INPUT -j KUBE-X\n-A INPUT -j FL-r1\n-A INPUT -j FL-r2\n-A FL-r1 -s 10.0.0.2/32 -j DROP\n\
                       -A KUBE-X -j FL-r1\n";
        let cmds = removal_commands(listing, |c| c == "FL-r1");
        let text: Vec<String> = cmds.iter().map(|c| c[2..].join(" ")).collect();
        assert_eq!(
            text,
            ["-D INPUT -j FL-r1", "-D KUBE-X -j FL-r1", "-F FL-r1", "-X FL-r1"]
        );
        let all = removal_commands(listing, |c| c.starts_with(CHAIN_PREFIX));
        assert_eq!(all.len(), 2 + 2 + 2 + 1);
    }

    fn node(id: &str, ports: &[u16], cgroup: Option<&str>) -> Node {
        Node {
            id: id.into(),
            addr: "127.0.0.1".parse().unwrap(),
            ports: ports.to_vec(),
            netns: None,
            cgroup: cgroup.map(String::from),
            faketime_file: None,
        }
    }

    #[test]
    fn local_drop_rules_match_by_cgroup_ports_and_mark_with_and_without_loss() {
        let nodes = [
            node("n1", &[7001, 7002], Some("fl/n1")),
            node("n2", &[7003], Some("fl/n2")),
        ];
        let drops: Drops = [("n2".to_string(), ["n1".to_string()].into())]
            .into_iter()
            .collect();
        let rules = drop_rules(NetLayout::Local, &nodes, &drops, Some(0.25)).unwrap();
        let text: Vec<String> = rules
            .iter()
            .map(|r| format!("{}: {}", r.place, r.spec.join(" ")))
            .collect();
        let head = |p: &str| format!("n1: -p {p} -m cgroup --path fl/n1 -d 127.0.0.1 -m multiport");
        let tail = "-m statistic --mode random --probability 0.25 -j DROP";
        let mark = format!("{:#x}/{:#x}", 2u32 << 24, MARK_MASK);
        let mut want = Vec::new();
        for p in ["tcp", "udp"] {
            want.push(format!(
                "{} --sports 7001,7002 -m connmark --mark {} {tail}",
                head(p),
                mark
            ));
            want.push(format!("{} --dports 7003 {tail}", head(p)));
        }
        assert_eq!(text, want);
        let all = drop_rules(NetLayout::Local, &nodes, &drops, None).unwrap();
        assert!(all
            .iter()
            .all(|r| r.spec.ends_with(&["-j".into(), "DROP".into()])));
        assert!(all.iter().all(|r| !r.spec.contains(&"statistic".to_string())));
        let no_cgroup = [node("n1", &[7001], None), node("n2", &[7003], Some("fl/n2"))];
        assert!(drop_rules(NetLayout::Local, &no_cgroup, &drops, None).is_err());
        let net = drop_rules(NetLayout::Netns, &nodes, &drops, None).unwrap();
        assert_eq!(
            net,
            vec![Rule {
                place: "n2".into(),
                spec: ["-s", "127.0.0.1", "-j", "DROP"].map(String::from).to_vec()
            }]
        );
    }
}
