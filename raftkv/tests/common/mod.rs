//! Real raftkv processes on loopback for the integration test and the benchmark.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A free loopback port (bound to port 0 and released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().unwrap().port()
}

/// A cluster of raftkv processes, killed (SIGKILL, by PID) when dropped.
pub struct Cluster {
    pub ids: Vec<String>,
    pub addrs: Vec<String>,
    pub dir: tempfile::TempDir,
    pub procs: Vec<Option<Child>>,
    pub extra: Vec<String>,
    pub joiners: Vec<usize>,
}

impl Cluster {
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        let ids: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let addrs: Vec<String> = (0..n).map(|_| format!("127.0.0.1:{}", free_port())).collect();
        let mut c = Cluster {
            ids,
            addrs,
            dir: tempfile::tempdir().expect("tempdir"),
            procs: (0..n).map(|_| None).collect(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            joiners: Vec::new(),
        };
        for i in 0..n {
            c.start_node(i);
        }
        c
    }

    /// Starts a new node with `--join` (not a member until added through `POST /members`).
    pub fn start_joiner(&mut self) -> usize {
        let i = self.ids.len();
        self.ids.push(format!("n{}", i + 1));
        self.addrs.push(format!("127.0.0.1:{}", free_port()));
        self.procs.push(None);
        self.joiners.push(i);
        self.start_node(i);
        i
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.ids[i]))
    }

    /// The last `n` lines of every node's log, for a failure message.
    pub fn log_tails(&self, n: usize) -> String {
        let mut out = String::new();
        for i in 0..self.ids.len() {
            let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {} (last {n} lines)\n", self.ids[i]));
            for l in &lines[lines.len().saturating_sub(n)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    pub fn start_node(&mut self, i: usize) {
        let all: Vec<usize> = (0..self.ids.len()).collect();
        self.start_node_knowing(i, &all);
    }

    /// Starts node `i` with only the nodes of `known` (but itself) as its `--peers`.
    pub fn start_node_knowing(&mut self, i: usize, known: &[usize]) {
        let peers: Vec<String> = known
            .iter()
            .filter(|&&j| j != i)
            .map(|&j| format!("{}={}", self.ids[j], self.addrs[j]))
            .collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .args([
                "--id",
                &self.ids[i],
                "--listen",
                &self.addrs[i],
                "--peers",
                &peers.join(","),
            ])
            .arg("--data-dir")
            .arg(self.dir.path().join(&self.ids[i]))
            .args(&self.extra)
            .args(if self.joiners.contains(&i) {
                &["--join"][..]
            } else {
                &[][..]
            })
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start raftkv");
        self.procs[i] = Some(child);
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to node `i`'s process.
    pub fn signal(&self, i: usize, signal: &str) {
        let pid = self.procs[i].as_ref().expect("node is running").id();
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{signal} {pid}");
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}{}", self.addrs[i], path)
    }

    pub fn alive(&self) -> Vec<usize> {
        (0..self.ids.len()).filter(|&i| self.procs[i].is_some()).collect()
    }

    /// The index of the node that some live node reports as leader (and that itself says it leads).
    pub async fn leader(&self, client: &reqwest::Client, within: Duration) -> usize {
        let end = Instant::now() + within;
        while Instant::now() < end {
            for i in self.alive() {
                if let Some(s) = status(client, &self.url(i, "/status")).await {
                    if s["role"] == "leader" {
                        return i;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no leader within {within:?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            if self.procs[i].is_some() {
                self.signal(i, "CONT");
            }
            self.kill(i);
        }
    }
}

pub async fn status(client: &reqwest::Client, url: &str) -> Option<Value> {
    let r = client.get(url).send().await.ok()?;
    r.json().await.ok()
}
