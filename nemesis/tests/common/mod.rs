//! Real test clusters for the nemesis: network namespaces on a bridge of their own (netns backend) or
//! processes on loopback in cgroups of their own (local backend), each node an "agent" process (this test
//! binary re-executed) that answers over TCP and counts UDP datagrams. Everything is removed on drop, also
//! when a test fails.

#![allow(dead_code)]

pub mod raft;

use nemesis::{BoxFuture, Cluster, ClusterError, EventSink, ExecOutput, NetLayout, Node, NodeCgroup};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Env var that turns this test binary into an agent listening on the given address.
const AGENT: &str = "FL_NEMESIS_TEST_AGENT";

/// Called by each test file's `agent` test: when this process was started as an agent, serve forever.
/// Otherwise return at once.
pub fn agent_main_if_requested() {
    let Ok(addr) = std::env::var(AGENT) else { return };
    let addr: SocketAddr = addr.parse().expect("agent address");
    let udp = UdpSocket::bind(addr).expect("agent udp bind");
    let count: Arc<Mutex<BTreeMap<IpAddr, u64>>> = Arc::default();
    let c = count.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((_, from)) = udp.recv_from(&mut buf) {
            *c.lock().unwrap().entry(from.ip()).or_default() += 1;
        }
    });
    let listener = TcpListener::bind(addr).expect("agent tcp bind");
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let mut line = String::new();
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        if BufReader::new(&conn).read_line(&mut line).is_err() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            ["time"] => {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap();
                format!("{}", t.as_millis())
            }
            ["count"] => format!(
                "{}",
                std::mem::take(&mut *count.lock().unwrap()).values().sum::<u64>()
            ),
            ["counts"] => std::mem::take(&mut *count.lock().unwrap())
                .iter()
                .fold("#".to_string(), |acc, (ip, n)| format!("{acc} {ip}={n}")),
            ["probe", target] => {
                match tcp_request(target.parse().unwrap(), "ping", Duration::from_millis(800)) {
                    Some(r) if r == "ping" => "ok".into(),
                    _ => "fail".into(),
                }
            }
            ["udp", n, targets @ ..] => {
                let sock = UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).unwrap();
                for i in 0..n.parse::<u32>().unwrap() {
                    for target in targets {
                        let _ =
                            sock.send_to(format!("d{i}").as_bytes(), target.parse::<SocketAddr>().unwrap());
                    }
                    if i % 4 == 3 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                "sent".into()
            }
            _ => line.trim().to_string(),
        };
        let _ = conn.write_all(format!("{reply}\n").as_bytes());
    }
}

/// One request to an agent (or any line server): the reply, or `None` on refusal/timeout.
pub fn tcp_request(addr: SocketAddr, line: &str, timeout: Duration) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(format!("{line}\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let out = out.trim().to_string();
    (!out.is_empty()).then_some(out)
}

/// Polls `f` until it is true or `limit` passes (a bound for failure, not a timing assertion).
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sh(argv: &[&str]) -> Result<String, String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("{argv:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(argv: &[&str]) -> String {
    sh(argv).unwrap_or_else(|e| panic!("{e}"))
}

/// Claims a 10.a.b.0/24 (a in 64..128, apart from the harness's 160..224) that no route on the host uses,
/// with an O_EXCL file in /run/faultline/subnets as the harness does, so parallel tests and runs never share
/// a subnet.
fn claim_subnet(h: u32) -> (u32, u32, PathBuf) {
    let dir = PathBuf::from("/run/faultline/subnets");
    std::fs::create_dir_all(&dir).unwrap();
    let routes = must(&["ip", "-4", "route", "show", "table", "all"]);
    for i in 0..4096u32 {
        let x = h.wrapping_add(i.wrapping_mul(0x9E37_79B9));
        let (a, b) = (64 + (x >> 24) % 64, (x >> 8) & 0xff);
        if routes.contains(&format!("10.{a}.{b}.")) {
            continue;
        }
        let path = dir.join(format!("10.{a}.{b}"));
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .is_ok()
        {
            return (a, b, path);
        }
    }
    panic!("no free 10.x.y.0/24 for the test namespaces");
}

fn tag_of(test: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in format!("{test}/{}", std::process::id()).bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h
}

/// Records every nemesis event.
#[derive(Default, Clone)]
pub struct Events(pub Arc<Mutex<Vec<(String, serde_json::Value)>>>);

impl EventSink for Events {
    fn record(&self, f: &str, value: serde_json::Value) {
        self.0.lock().unwrap().push((f.to_string(), value));
    }
}

impl Events {
    pub fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|(f, _)| f.clone()).collect()
    }
    pub fn last(&self, f: &str) -> Option<serde_json::Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(g, _)| g == f)
            .map(|(_, v)| v.clone())
    }
}

/// A test cluster of agent processes.
pub struct Lab {
    pub backend: NetLayout,
    pub nodes: Vec<Node>,
    pub run_id: String,
    /// netns: the bridge; local: none.
    bridge: Option<String>,
    /// False for a view of another process's lab: dropping it removes nothing.
    owned: bool,
    /// netns: the claim file of the subnet (shared with the harness's claims, so runs never share one).
    claim: Option<PathBuf>,
    cgroups: Vec<NodeCgroup>,
    procs: Mutex<BTreeMap<String, Child>>,
    env: Mutex<BTreeMap<String, Vec<(String, String)>>>,
    pub leader: Mutex<Option<String>>,
    /// Nodes are etcd members (client port = `ports[0]`, peer port = `ports[1]`) instead of agents.
    pub etcd: bool,
    _dir: tempfile::TempDir,
}

impl Lab {
    /// `n` namespaces on a bridge of their own, subnet 10.X.Y.0/24 derived from the test name and PID.
    pub fn netns(test: &str, n: usize) -> Lab {
        let h = tag_of(test);
        let tag = format!("{:06x}", h & 0xff_ffff);
        let bridge = format!("flb{tag}");
        let mut lab = Lab::empty(NetLayout::Netns, &format!("t{tag}"));
        let (a, b, claim) = claim_subnet(h);
        lab.claim = Some(claim);
        lab.bridge = Some(bridge.clone());
        must(&["ip", "link", "add", &bridge, "type", "bridge"]);
        must(&["ip", "addr", "add", &format!("10.{a}.{b}.254/24"), "dev", &bridge]);
        must(&["ip", "link", "set", &bridge, "up"]);
        for i in 1..=n {
            let ns = format!("flns-{tag}-{i}");
            let (vh, vn) = (format!("flh{tag}{i}"), format!("fln{tag}{i}"));
            let addr = format!("10.{a}.{b}.{i}");
            lab.nodes.push(Node {
                id: format!("n{i}"),
                addr: addr.parse().unwrap(),
                ports: vec![7000 + i as u16],
                netns: Some(ns.clone()),
                cgroup: None,
                faketime_file: Some(lab._dir.path().join(format!("n{i}.faketime"))),
            });
            must(&["ip", "netns", "add", &ns]);
            must(&["ip", "link", "add", &vh, "type", "veth", "peer", "name", &vn]);
            must(&["ip", "link", "set", &vn, "netns", &ns]);
            must(&["ip", "link", "set", &vh, "master", &bridge, "up"]);
            must(&["ip", "-n", &ns, "link", "set", &vn, "name", "eth0"]);
            must(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            must(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
        lab
    }

    /// `n` agents on 127.0.0.1, each in a cgroup of its own, on free ports.
    pub fn local(test: &str, n: usize) -> Lab {
        let h = tag_of(test);
        let mut lab = Lab::empty(NetLayout::Local, &format!("t{:08x}", h));
        for i in 1..=n {
            let id = format!("n{i}");
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let cg = NodeCgroup::create(&lab.run_id, &id).expect("node cgroup");
            lab.nodes.push(Node {
                id,
                addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                ports: vec![port],
                netns: None,
                cgroup: Some(cg.path().to_string()),
                faketime_file: Some(lab._dir.path().join(format!("n{i}.faketime"))),
            });
            lab.cgroups.push(cg);
        }
        lab
    }

    fn empty(backend: NetLayout, run_id: &str) -> Lab {
        Lab {
            backend,
            nodes: Vec::new(),
            run_id: run_id.to_string(),
            bridge: None,
            owned: true,
            claim: None,
            cgroups: Vec::new(),
            procs: Mutex::new(BTreeMap::new()),
            env: Mutex::new(BTreeMap::new()),
            leader: Mutex::new(None),
            etcd: false,
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A view of the nodes of a lab another process owns (for a child process that runs a nemesis on it).
    pub fn attach(backend: NetLayout, run_id: &str, nodes: Vec<Node>) -> Lab {
        let mut lab = Lab::empty(backend, run_id);
        lab.owned = false;
        lab.nodes = nodes;
        lab
    }

    /// `id=addr=netns,...`: what [`Lab::attach`] needs, for a child's environment.
    pub fn describe(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}={}={}", n.id, n.addr, n.netns.clone().unwrap_or_default()))
            .collect();
        format!("{};{}", self.run_id, nodes.join(","))
    }

    /// The inverse of [`Lab::describe`] (netns labs).
    pub fn attach_described(text: &str) -> Lab {
        let (run_id, nodes) = text.split_once(';').unwrap();
        let nodes = nodes
            .split(',')
            .map(|n| {
                let f: Vec<&str> = n.split('=').collect();
                Node {
                    id: f[0].into(),
                    addr: f[1].parse().unwrap(),
                    ports: vec![7000],
                    netns: Some(f[2].into()),
                    cgroup: None,
                    faketime_file: None,
                }
            })
            .collect();
        Lab::attach(NetLayout::Netns, run_id, nodes)
    }

    pub fn node(&self, id: &str) -> &Node {
        self.nodes.iter().find(|n| n.id == id).unwrap()
    }

    pub fn ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    pub fn agent_addr(&self, id: &str) -> SocketAddr {
        let n = self.node(id);
        SocketAddr::new(n.addr, n.ports[0])
    }

    /// Extra environment for a node's agent (e.g. libfaketime), used at every (re)start.
    pub fn set_env(&self, id: &str, env: Vec<(String, String)>) {
        self.env.lock().unwrap().insert(id.to_string(), env);
    }

    /// Starts the agent of `id` in its own process group (and namespace or cgroup) and waits until it answers.
    pub fn start(&self, id: &str) {
        let node = self.node(id).clone();
        let exe = std::env::current_exe().unwrap();
        let program = if self.etcd {
            PathBuf::from("/usr/bin/etcd")
        } else {
            exe
        };
        let mut cmd = match &node.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        if self.etcd {
            cmd.args(self.etcd_args(&node));
        } else {
            cmd.args(["--exact", "agent", "--nocapture", "--test-threads=1"]);
        }
        cmd.env(AGENT, self.agent_addr(id).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some(env) = self.env.lock().unwrap().get(id) {
            cmd.envs(env.iter().cloned());
        }
        if let Some(cg) = self
            .cgroups
            .iter()
            .find(|c| c.path() == node.cgroup.as_deref().unwrap_or(""))
        {
            let procs =
                std::ffi::CString::new(cg.procs_file().into_os_string().into_encoded_bytes()).unwrap();
            // SAFETY: NodeCgroup::enter only makes async-signal-safe calls.
            unsafe {
                cmd.pre_exec(move || NodeCgroup::enter(&procs));
            }
        }
        let child = cmd.spawn().expect("spawn agent");
        self.procs.lock().unwrap().insert(id.to_string(), child);
        let addr = self.agent_addr(id);
        if self.etcd {
            assert!(
                eventually(Duration::from_secs(20), || TcpStream::connect_timeout(
                    &addr,
                    Duration::from_secs(1)
                )
                .is_ok()),
                "etcd {id} never listened"
            );
            return;
        }
        assert!(
            eventually(Duration::from_secs(20), || self
                .ask_host(addr, "hello")
                .as_deref()
                == Some("hello")),
            "agent {id} never answered"
        );
    }

    /// etcd's arguments for `node`: client port `ports[0]`, peer port `ports[1]`, data in the lab's folder.
    fn etcd_args(&self, node: &Node) -> Vec<String> {
        let url = |n: &Node, i: usize| format!("http://{}:{}", n.addr, n.ports[i]);
        let cluster: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.id, url(n, 1)))
            .collect();
        let data = self._dir.path().join(format!("{}.etcd", node.id));
        [
            "--name",
            &node.id,
            "--data-dir",
            &data.display().to_string(),
            "--listen-client-urls",
            &url(node, 0),
            "--advertise-client-urls",
            &url(node, 0),
            "--listen-peer-urls",
            &url(node, 1),
            "--initial-advertise-peer-urls",
            &url(node, 1),
            "--initial-cluster",
            &cluster.join(","),
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            &self.run_id,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Makes the lab's nodes etcd members (netns: fixed ports, each namespace has its own; local: free ports).
    pub fn use_etcd(&mut self) {
        self.etcd = true;
        let local = self.backend == NetLayout::Local;
        let free = || {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        for n in &mut self.nodes {
            n.ports = if local {
                vec![free(), free()]
            } else {
                vec![12379, 12380]
            };
            n.faketime_file = None;
        }
    }

    pub fn start_all(&self) {
        for id in self.ids() {
            self.start(&id);
        }
    }

    /// A request from the host (outside every node's namespace and cgroup): a client's view.
    pub fn ask_host(&self, addr: SocketAddr, line: &str) -> Option<String> {
        tcp_request(addr, line, Duration::from_millis(800))
    }

    pub fn ask(&self, id: &str, line: &str) -> Option<String> {
        self.ask_host(self.agent_addr(id), line)
    }

    /// Whether `src` can reach `dst` right now: netns: a UDP datagram from src's namespace arrives in dst's
    /// (packet level); local: src's agent can make a TCP request to dst's agent (connection level).
    pub fn reaches(&self, src: &str, dst: &str) -> bool {
        match self.backend {
            NetLayout::Local => {
                let target = self.agent_addr(dst);
                self.ask(src, &format!("probe {target}")).as_deref() == Some("ok")
            }
            NetLayout::Netns => self.udp_delivered(src, dst, 5) > 0,
        }
    }

    /// Sends `n` UDP datagrams from `src`'s agent to `dst`'s and returns how many arrived.
    pub fn udp_delivered(&self, src: &str, dst: &str, n: u32) -> u64 {
        self.ask(dst, "count").expect("count");
        let target = self.agent_addr(dst);
        assert_eq!(
            self.ask(src, &format!("udp {n} {target}")).as_deref(),
            Some("sent")
        );
        std::thread::sleep(Duration::from_millis(500));
        self.ask(dst, "count").expect("count").parse().unwrap()
    }

    /// Every ordered pair's reachability.
    pub fn matrix(&self) -> BTreeMap<(String, String), bool> {
        if self.backend == NetLayout::Netns {
            return self.udp_matrix();
        }
        let mut m = BTreeMap::new();
        for a in self.ids() {
            for b in self.ids() {
                if a != b {
                    m.insert((a.clone(), b.clone()), self.reaches(&a, &b));
                }
            }
        }
        m
    }

    /// Netns: every node sends 5 datagrams to every other at once; a pair reaches if any arrived.
    fn udp_matrix(&self) -> BTreeMap<(String, String), bool> {
        let ids = self.ids();
        for id in &ids {
            self.ask(id, "counts").expect("counts");
        }
        for src in &ids {
            let targets: Vec<String> = ids
                .iter()
                .filter(|d| *d != src)
                .map(|d| self.agent_addr(d).to_string())
                .collect();
            assert_eq!(
                self.ask(src, &format!("udp 5 {}", targets.join(" "))).as_deref(),
                Some("sent")
            );
        }
        std::thread::sleep(Duration::from_millis(400));
        let mut m = BTreeMap::new();
        for dst in &ids {
            let counts = self.ask(dst, "counts").unwrap_or_default();
            for src in ids.iter().filter(|s| *s != dst) {
                let ip = self.node(src).addr.to_string();
                let got = counts
                    .split_whitespace()
                    .any(|kv| kv.split_once('=').is_some_and(|(k, _)| k == ip));
                m.insert((src.clone(), dst.clone()), got);
            }
        }
        m
    }

    /// iptables -S where node `id`'s rules live.
    pub fn iptables_listing(&self, id: &str) -> String {
        match &self.node(id).netns {
            Some(ns) => must(&["ip", "netns", "exec", ns, "iptables", "-w", "-S"]),
            None => must(&["iptables", "-w", "-S"]),
        }
    }

    pub fn namespaces(&self) -> Vec<String> {
        self.nodes.iter().filter_map(|n| n.netns.clone()).collect()
    }

    fn pid(&self, id: &str) -> Option<i32> {
        self.procs.lock().unwrap().get(id).map(|c| c.id() as i32)
    }

    /// The state letter of the agent's process (`S`, `T` stopped, ...).
    pub fn proc_state(&self, id: &str) -> Option<char> {
        let pid = self.pid(id)?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit(')').next()?.trim().chars().next()
    }

    fn signal(&self, id: &str, sig: nix::sys::signal::Signal) -> Result<(), ClusterError> {
        let pid = self
            .pid(id)
            .ok_or_else(|| ClusterError(format!("{id} is not running")))?;
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), sig)
            .map_err(|e| ClusterError(e.to_string()))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}

impl Lab {
    /// Kills the lab's processes and removes its rules, namespaces, bridge, claim and cgroups (a second call
    /// finds nothing). Drop calls it; so does `raft::TearDownOnPanic` when a test panics while other threads
    /// still hold the lab.
    pub fn teardown(&self) {
        if !self.owned {
            return;
        }
        for (_, mut child) in std::mem::take(&mut *self.procs.lock().unwrap()) {
            let pg = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
        }
        let _ = nemesis::heal_leftovers(Some(&self.run_id), &self.namespaces());
        for ns in self.namespaces() {
            let _ = sh(&["ip", "netns", "del", &ns]);
        }
        if let Some(br) = &self.bridge {
            let _ = sh(&["ip", "link", "del", br]);
        }
        if let Some(claim) = &self.claim {
            let _ = std::fs::remove_file(claim);
        }
        for cg in &self.cgroups {
            let _ = cg.remove();
        }
    }
}

impl Cluster for Lab {
    fn layout(&self) -> NetLayout {
        self.backend
    }

    fn nodes(&self) -> Vec<Node> {
        self.nodes.clone()
    }

    fn exec<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<ExecOutput, ClusterError>> {
        Box::pin(async move {
            let mut cmd = match &self.node(node).netns {
                Some(ns) => {
                    let mut c = tokio::process::Command::new("ip");
                    c.args(["netns", "exec", ns]).args(argv);
                    c
                }
                None => {
                    let mut c = tokio::process::Command::new(&argv[0]);
                    c.args(&argv[1..]);
                    c
                }
            };
            let out = cmd
                .output()
                .await
                .map_err(|e| ClusterError(format!("{argv:?}: {e}")))?;
            Ok(ExecOutput {
                status: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        })
    }

    fn kill<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            self.signal(node, nix::sys::signal::Signal::SIGKILL)?;
            if let Some(mut child) = self.procs.lock().unwrap().remove(node) {
                child.wait().map_err(|e| ClusterError(e.to_string()))?;
            }
            Ok(())
        })
    }

    fn restart<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            tokio::task::block_in_place(|| self.start(node));
            Ok(())
        })
    }

    fn pause<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move { self.signal(node, nix::sys::signal::Signal::SIGSTOP) })
    }

    fn resume<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move { self.signal(node, nix::sys::signal::Signal::SIGCONT) })
    }

    fn leader(&self) -> BoxFuture<'_, Result<Option<String>, ClusterError>> {
        Box::pin(async move {
            if self.etcd {
                return Ok(tokio::task::block_in_place(|| self.etcd_leader()));
            }
            Ok(self.leader.lock().unwrap().clone())
        })
    }
}

/// The faketime file of a node, as a path.
pub fn faketime_file(lab: &Lab, id: &str) -> PathBuf {
    lab.node(id).faketime_file.clone().unwrap()
}

/// One HTTP/1.1 request with a JSON body: `(status, body)`, or `None` on refusal or timeout. The body is the
/// JSON object in the answer (which also reads a chunked one), else everything after the headers.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = match (out.find('{'), out.rfind('}')) {
        (Some(a), Some(b)) if a < b => out[a..=b].to_string(),
        _ => out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    };
    Some((status, body))
}

/// [`http`] with POST.
pub fn http_post(addr: SocketAddr, path: &str, body: &str, timeout: Duration) -> Option<(u16, String)> {
    http(addr, "POST", path, body, timeout)
}

impl Lab {
    /// A put through node `id` (key "fl", base64 "Zmw="): true when etcd acknowledged it.
    pub fn etcd_put(&self, id: &str, timeout: Duration) -> bool {
        let body = r#"{"key":"Zmw=","value":"dg=="}"#;
        matches!(http_post(self.agent_addr(id), "/v3/kv/put", body, timeout), Some((200, b)) if b.contains("header"))
    }

    /// The member that node `id` says leads, if `id` answers and is that member.
    fn etcd_status(&self, id: &str) -> Option<(String, String)> {
        let (_, body) = http_post(
            self.agent_addr(id),
            "/v3/maintenance/status",
            "{}",
            Duration::from_secs(2),
        )?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some((
            v["header"]["member_id"].as_str()?.to_string(),
            v["leader"].as_str()?.to_string(),
        ))
    }

    /// The node that is leader by its own account.
    pub fn etcd_leader(&self) -> Option<String> {
        self.ids()
            .into_iter()
            .find(|id| self.etcd_status(id).is_some_and(|(me, leader)| me == leader))
    }
}
