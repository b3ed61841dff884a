//! The state file of a run (`state.jsonl` in the run folder): everything the harness created, written (and
//! fsynced) the moment before or after it is created, so that `faultline heal` can remove it after the harness
//! was killed.
//!
//! One JSON object a line; a line is only ever appended. A trailing partial line (the harness died while
//! writing it) is ignored when reading.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// File name of the state file inside a run folder.
pub const STATE_FILE: &str = "state.jsonl";

/// One thing the harness created (or is about to create).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Resource {
    /// The first line: which run this is.
    Run {
        run_id: String,
        backend: String,
        harness_pid: u32,
        /// The harness's start time (as for processes), so `heal` can tell whether the run is still going.
        #[serde(default)]
        harness_start_time: u64,
    },
    /// A network namespace (`ip netns add`).
    Netns { name: String },
    /// A bridge in the host namespace.
    Bridge { name: String },
    /// The host side of a veth pair (its peer lives in a namespace).
    Veth { name: String },
    /// An iptables chain in the host namespace with one jump rule to it from `from` (e.g. `FORWARD`).
    Chain {
        table: String,
        chain: String,
        from: String,
    },
    /// A node process (leader of its own process group). `start_time` is field 22 of `/proc/PID/stat`, so a
    /// recycled PID is never mistaken for ours.
    Process { node: String, pid: i32, start_time: u64 },
    /// The id the nemesis uses for its own iptables chains (it removes them with its own heal function).
    NemesisRun { run_id: String, namespaces: Vec<String> },
    /// A file claiming an address range for this run, so parallel runs never pick the same subnet.
    SubnetClaim { path: String, subnet: String },
    /// A host of the ssh backend, recorded before faultline connects to it: how `heal` reaches it again.
    /// The other `Ssh*` records name hosts by `index`.
    SshHost {
        index: usize,
        host: crate::ssh::SshHost,
        known_hosts: String,
    },
    /// The run's folder on an ssh host (`<dir>/<run id>`: node data and logs); removed at teardown.
    SshDir { host: usize, path: String },
    /// A node process on an ssh host (leader of its own session and process group), with its start time.
    SshProcess {
        host: usize,
        node: String,
        pid: i32,
        start_time: u64,
    },
    /// A file of the run on an ssh host, inside its run folder (a node's libfaketime control file, through
    /// which the nemesis moves that node's clock); removed with the folder, or on its own if the folder is not
    /// recorded.
    SshFile { host: usize, path: String },
    /// The nemesis may put its iptables chain (`FL-<run id>`) on this ssh host.
    SshChains { host: usize, run_id: String },
    /// A lazyfs mount over a node's data directory (served by the harness itself; `heal` detaches it when the
    /// harness died).
    Mount { node: String, path: String },
}

/// An append-only writer of the state file. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StateFile {
    inner: Arc<Mutex<(File, Vec<Resource>)>>,
    path: PathBuf,
}

impl StateFile {
    /// Creates (or appends to) `dir/state.jsonl`.
    pub fn create(dir: &Path) -> std::io::Result<StateFile> {
        let path = dir.join(STATE_FILE);
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(StateFile {
            inner: Arc::new(Mutex::new((f, Vec::new()))),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one resource and fsyncs, so it survives a `kill -9` of the harness right after.
    pub fn record(&self, r: &Resource) -> std::io::Result<()> {
        let mut line = serde_json::to_string(r).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.push(r.clone());
        g.0.write_all(line.as_bytes())?;
        g.0.sync_data()
    }

    /// Everything recorded through this writer, in order.
    pub fn recorded(&self) -> Vec<Resource> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1.clone()
    }
}

/// Reads a state file. Lines that are not whole (a harness killed mid-write) are skipped.
pub fn read_state(path: &Path) -> std::io::Result<Vec<Resource>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Resource>(line) {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!("{}: skipping unreadable line: {e}", path.display()),
        }
    }
    Ok(out)
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks since boot), and whether the process is a zombie.
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    parse_proc_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The start time and zombie state from the text of a `/proc/PID/stat` (read here or on a remote host).
pub fn parse_proc_stat(stat: &str) -> Option<(u64, bool)> {
    // The command name (field 2) may contain spaces and parentheses: fields restart after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); field 22 is index 19.
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    Some((fields.get(19)?.parse().ok()?, zombie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial_line() {
        let d = tempfile::tempdir().unwrap();
        let s = StateFile::create(d.path()).unwrap();
        s.record(&Resource::Netns { name: "a".into() }).unwrap();
        s.record(&Resource::Process {
            node: "n1".into(),
            pid: 5,
            start_time: 7,
        })
        .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(s.path())
            .unwrap()
            .write_all(b"{\"kind\":\"bri")
            .unwrap();
        let r = read_state(s.path()).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1],
            Resource::Process {
                node: "n1".into(),
                pid: 5,
                start_time: 7
            }
        );
    }

    #[test]
    fn own_start_time_is_readable() {
        let (t, z) = proc_start_time(std::process::id() as i32).unwrap();
        assert!(t > 0);
        assert!(!z);
    }
}
