//! A raftkv cluster for real nemesis tests: one raftkv node per namespace of a [`Lab`] (netns backend, needs
//! root), implementing [`Cluster`] as the harness does (kill and restart on the same data directory, pause,
//! resume, the spec's leader probe). Every process is killed by its process group on drop.

use super::{http, Lab};
use nemesis::{BoxFuture, Cluster, ClusterError, ExecOutput, NetLayout, Node};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// raftkv next to this test's profile folder (`target/debug/raftkv`), built when missing.
pub fn raftkv_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let bin = profile_dir.join("raftkv");
    if !bin.is_file() {
        let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cmd.args(["build", "-p", "raftkv", "--target-dir"])
            .arg(profile_dir.parent().unwrap())
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "building raftkv failed");
    }
    bin
}

/// A raftkv cluster: one node per namespace of a [`Lab`] (which removes namespaces, bridge and rules on drop).
pub struct RaftLab {
    pub procs: Mutex<BTreeMap<String, Child>>,
    pub lab: Lab,
    pub bin: PathBuf,
    pub bugs: Vec<String>,
    pub dir: tempfile::TempDir,
}

impl Drop for RaftLab {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Tears a lab down when the test holding it panics. A test that spawns a step or a watcher hands them
/// clones of the lab; when it fails before they end, the test binary can exit with those clones alive, so
/// the lab's own `Drop` never runs (seen: processes, namespaces, bridges and subnet claims left behind).
pub struct TearDownOnPanic(pub std::sync::Arc<RaftLab>);

impl Drop for TearDownOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.kill_all();
            self.0.lab.teardown();
        }
    }
}

impl RaftLab {
    /// SIGKILLs every raftkv process of the lab (by process group) and reaps it.
    pub fn kill_all(&self) {
        for (_, mut child) in std::mem::take(&mut *self.procs.lock().unwrap()) {
            let pg = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    pub fn new(test: &str, bugs: &[&str]) -> RaftLab {
        RaftLab {
            procs: Mutex::default(),
            lab: Lab::netns(test, 5),
            bin: raftkv_binary(),
            bugs: bugs.iter().map(|b| b.to_string()).collect(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn addr(&self, id: &str) -> SocketAddr {
        self.lab.agent_addr(id)
    }

    pub fn start(&self, id: &str) {
        let node = self.lab.node(id);
        let peers: Vec<String> = self
            .lab
            .ids()
            .iter()
            .map(|p| format!("{p}={}", self.addr(p)))
            .collect();
        let log = std::fs::File::create(self.dir.path().join(format!("{id}.log"))).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", node.netns.as_deref().unwrap()])
            .arg(&self.bin)
            .args([
                "--id",
                id,
                "--listen",
                &self.addr(id).to_string(),
                "--peers",
                &peers.join(","),
            ])
            .arg("--data-dir")
            .arg(self.dir.path().join(id));
        for bug in &self.bugs {
            cmd.arg(format!("--bug={bug}"));
        }
        cmd.env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        let child = cmd.spawn().expect("spawn raftkv");
        self.procs.lock().unwrap().insert(id.to_string(), child);
    }

    pub fn start_all(&self) {
        for id in self.lab.ids() {
            self.start(&id);
        }
    }

    /// Node `id`'s `/status`, asked from the host as a client would.
    pub fn status(&self, id: &str) -> Option<Value> {
        let (code, body) = http(self.addr(id), "GET", "/status", "", Duration::from_secs(1))?;
        (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    }

    pub fn role(&self, id: &str) -> Option<String> {
        self.status(id)?["role"].as_str().map(str::to_string)
    }

    pub fn term(&self, id: &str) -> Option<u64> {
        self.status(id)?["term"].as_u64()
    }

    /// The nodes that say they lead, by their own `/status`.
    pub fn self_declared_leaders(&self) -> Vec<String> {
        self.lab
            .ids()
            .into_iter()
            .filter(|id| self.role(id).as_deref() == Some("leader"))
            .collect()
    }

    /// Every node answers and exactly one leads.
    pub fn settled(&self) -> bool {
        self.lab.ids().iter().all(|id| self.status(id).is_some()) && self.self_declared_leaders().len() == 1
    }

    /// Whether a TCP connection from `src`'s namespace to `dst`'s raftkv port opens within 3 s.
    pub fn connects(&self, src: &str, dst: &str) -> bool {
        let target = self.addr(dst);
        let script = format!("exec 3<>/dev/tcp/{}/{}", target.ip(), target.port());
        Command::new("ip")
            .args(["netns", "exec", self.lab.node(src).netns.as_deref().unwrap()])
            .args(["timeout", "3", "bash", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    pub fn put(&self, id: &str, key: &str, value: i64) -> Option<(u16, String)> {
        let body = format!("{{\"value\":{value}}}");
        http(
            self.addr(id),
            "PUT",
            &format!("/kv/{key}"),
            &body,
            Duration::from_secs(3),
        )
    }

    pub fn proc_state(&self, id: &str) -> Option<char> {
        let pid = self.procs.lock().unwrap().get(id)?.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit(')').next()?.trim().chars().next()
    }

    pub fn log_tail(&self, id: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("{id}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    pub fn signal(&self, id: &str, sig: nix::sys::signal::Signal) -> Result<(), ClusterError> {
        let pid = self
            .procs
            .lock()
            .unwrap()
            .get(id)
            .map(|c| c.id() as i32)
            .ok_or_else(|| ClusterError(format!("{id} is not running")))?;
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), sig)
            .map_err(|e| ClusterError(e.to_string()))
    }

    /// The harness's leader probe for raftkv's spec (`/status`, `leader_pointer = "/leader"`): every node is
    /// asked at once (2 s timeout), each names a leader, a node naming itself counts double.
    pub fn probe_leader(&self) -> Option<String> {
        let ids = self.lab.ids();
        let answers: Vec<(String, Option<Value>)> = std::thread::scope(|s| {
            let handles: Vec<_> = ids
                .iter()
                .map(|id| {
                    s.spawn(move || {
                        let v = http(self.addr(id), "GET", "/status", "", Duration::from_secs(2))
                            .and_then(|(c, b)| (c == 200).then_some(b))
                            .and_then(|b| serde_json::from_str(&b).ok());
                        (id.clone(), v)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut votes: BTreeMap<String, usize> = BTreeMap::new();
        for (id, v) in answers {
            if let Some(name) = v.as_ref().and_then(|v| v["leader"].as_str()) {
                if ids.iter().any(|n| n == name) {
                    *votes.entry(name.to_string()).or_default() += if name == id { 2 } else { 1 };
                }
            }
        }
        votes.into_iter().max_by_key(|(_, c)| *c).map(|(id, _)| id)
    }
}

impl Cluster for RaftLab {
    fn layout(&self) -> NetLayout {
        NetLayout::Netns
    }

    fn nodes(&self) -> Vec<Node> {
        self.lab.nodes.clone()
    }

    fn exec<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<ExecOutput, ClusterError>> {
        self.lab.exec(node, argv)
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
            self.start(node);
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
        Box::pin(async move { Ok(tokio::task::block_in_place(|| self.probe_leader())) })
    }
}
