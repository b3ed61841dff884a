//! Shared helpers of the `run_*` and `heal_*` tests (included with `#[path]`; as a test target of its own it
//! holds no tests). They drive the real `faultline` binary against real node processes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harness::state::{read_state, Resource};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn faultline() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
}

/// Makes sure `raftkv` sits next to `faultline` (where dbs/raftkv.toml finds it), building it with the same
/// profile when it does not (`cargo test --workspace` builds it anyway).
pub fn ensure_raftkv() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let exe = faultline();
        let dir = exe.parent().unwrap();
        if dir.join("raftkv").is_file() {
            return;
        }
        let profile = dir.file_name().unwrap().to_string_lossy().to_string();
        let target = dir.parent().unwrap();
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "raftkv", "--target-dir"])
            .arg(target)
            .current_dir(root());
        if profile == "release" {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("cargo build -p raftkv");
        assert!(st.success(), "building raftkv failed");
        assert!(
            dir.join("raftkv").is_file(),
            "raftkv not found next to {}",
            exe.display()
        );
    });
}

pub fn is_root() -> bool {
    harness::sys::is_root()
}

/// The 20 s minority-leader run of the stale-read tests (run_crash, run_ssh). A stale read needs a client on
/// the cut-off side to read a key after the majority wrote it; each write there waits out the 1 s client
/// timeout, so such reads are few: an 8 s mean interval (20 s runs default to 5 s) holds the cut 2.4-6.4 s
/// after the majority elects, and 20 clients put 8 on the cut-off side. Measured (docs/detection-history.md):
/// 3-7 keys found stale per run at these settings, 1-4 at the defaults.
pub const MINORITY_LEADER_RUN: [&str; 8] = [
    "--nemesis",
    "minority-leader",
    "--time-limit",
    "20",
    "--nemesis-interval",
    "8",
    "--concurrency",
    "20",
];

/// A store folder that is removed at the end of the test.
pub fn store() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("faultline-store-")
        .tempdir()
        .unwrap()
}

/// The newest run folder of a store.
pub fn latest(store: &Path) -> PathBuf {
    std::fs::canonicalize(store.join("latest")).expect("store/latest")
}

/// A `faultline run` in progress, its stderr read line by line.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub stderr: Vec<String>,
}

impl Running {
    pub fn start(args: &[&str]) -> Running {
        Running::start_sub("run", args)
    }

    /// Starts `faultline SUB ARGS...` (`suite`, ...).
    pub fn start_sub(sub: &str, args: &[&str]) -> Running {
        let mut child = Command::new(faultline())
            .arg(sub)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: rx,
            stderr: Vec::new(),
        }
    }

    /// Waits until stderr shows `needle` (true) or the process ends or `within` passes (false).
    pub fn wait_for(&mut self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    self.stderr.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
        }
        false
    }

    /// Sends a signal by name (`INT`, `KILL`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Waits for the end (at most `within`; a run that hangs is killed and fails the test).
    pub fn finish(mut self, within: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.stderr.push(l);
                }
                let mut out = String::new();
                use std::io::Read;
                self.child
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut out)
                    .unwrap();
                return (st, out, self.stderr.join("\n"));
            }
            if Instant::now() > deadline {
                // Dropping `self` interrupts it (so it tears down) before the test fails.
                panic!(
                    "faultline did not finish within {within:?}; stderr:\n{}",
                    self.stderr.join("\n")
                );
            }
            while let Ok(l) = self.lines.try_recv() {
                self.stderr.push(l);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    /// A test that fails while faultline runs interrupts it (SIGINT: it tears down), and kills it only if it
    /// does not end within a minute.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `faultline heal --force` on a run folder when dropped: a failing test still leaves nothing behind.
pub struct HealGuard(pub PathBuf);

impl Drop for HealGuard {
    fn drop(&mut self) {
        let _ = Command::new(faultline())
            .args(["heal", "--force"])
            .arg(&self.0)
            .output();
    }
}

/// Starts `faultline run` with `args` and waits (up to 60 s) for its run phase; returns it with its run
/// folder and a guard that heals that folder when dropped, whatever the test does next.
pub fn start_until_run_phase(args: &[&str], store: &Path) -> (Running, PathBuf, HealGuard) {
    let mut run = Running::start(args);
    assert!(
        run.wait_for("faultline: phase run", Duration::from_secs(60)),
        "{}",
        run.stderr.join("\n")
    );
    let run_dir = latest(store);
    let guard = HealGuard(run_dir.clone());
    (run, run_dir, guard)
}

/// Every resource a run's state file lists that still exists (empty: nothing left behind).
pub fn leftovers(run_dir: &Path) -> Vec<String> {
    let resources = read_state(&run_dir.join("state.jsonl")).expect("state.jsonl");
    let mut left = Vec::new();
    for r in &resources {
        match r {
            Resource::Netns { name } if harness::sys::netns_exists(name) => {
                left.push(format!("netns {name}"))
            }
            Resource::Bridge { name } | Resource::Veth { name } if harness::sys::link_exists(name) => {
                left.push(format!("link {name}"))
            }
            Resource::Chain { table, chain, .. } if harness::sys::chain_exists(table, chain) => {
                left.push(format!("chain {chain}"))
            }
            Resource::Process {
                node,
                pid,
                start_time,
            } if harness::sys::is_ours_and_alive(*pid, *start_time) => {
                left.push(format!("process {node} {pid}"))
            }
            Resource::SubnetClaim { path, .. } if Path::new(path).exists() => {
                left.push(format!("claim {path}"))
            }
            Resource::Mount { path, .. } if lazyfs::is_mounted(Path::new(path)) => {
                left.push(format!("mount {path}"))
            }
            Resource::NemesisRun { run_id, .. } => {
                let chain = nemesis::chain_name(run_id);
                if harness::sys::chain_exists("filter", &chain) {
                    left.push(format!("nemesis chain {chain}"));
                }
            }
            _ => {}
        }
    }
    left
}

/// What the state file says was created (to check a test really created something).
pub fn created(run_dir: &Path) -> Vec<Resource> {
    read_state(&run_dir.join("state.jsonl")).unwrap_or_default()
}

/// The history's lines as JSON.
pub fn history(run_dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run_dir.join("history.jsonl")).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// ok operations per key (client operations only).
pub fn ok_per_key(run_dir: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for e in history(run_dir) {
        if e["type"] == "ok" && e["process"].is_u64() {
            if let Some(k) = e["key"].as_str() {
                *m.entry(k.to_string()).or_default() += 1;
            }
        }
    }
    m
}

/// Runs `faultline run --backend netns --nodes 5` with `args` and the store, waits at most `limit`, checks
/// that nothing was left behind, and returns the exit code, the nemesis's history events and the output.
pub fn netns_run(
    args: &[&str],
    store: &Path,
    limit: Duration,
) -> (Option<i32>, Vec<serde_json::Value>, String) {
    ensure_raftkv();
    let mut all = vec!["--backend", "netns", "--nodes", "5", "--store"];
    all.push(store.to_str().unwrap());
    all.extend_from_slice(args);
    let (status, out, err) = Running::start(&all).finish(limit);
    let run = latest(store);
    assert_eq!(leftovers(&run), Vec::<String>::new());
    let nemesis: Vec<serde_json::Value> = history(&run)
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .collect();
    (status.code(), nemesis, format!("stdout:\n{out}\nstderr:\n{err}"))
}

/// For a bug that each run exposes with some chance only: up to three runs, each in a fresh store and on a
/// fresh seed, of `run` (which returns what [`netns_run`] does); `steps` checks each run's nemesis events. The
/// first run that finds the bug (exit code 1) ends it; three valid runs fail it, as does any other outcome
/// (a run error) at once.
pub fn found_within_three_runs(
    bug: &str,
    run: impl Fn(&Path) -> (Option<i32>, Vec<serde_json::Value>, String),
    steps: impl Fn(&[serde_json::Value]),
) {
    let mut missed = Vec::new();
    for _ in 0..3 {
        let store = store();
        let (code, events, out) = run(store.path());
        steps(&events);
        match code {
            Some(1) => return,
            Some(0) => missed.push(out),
            _ => panic!("the run failed: {out}"),
        }
    }
    panic!("{bug} was not found in three runs:\n{}", missed.join("\n"));
}
