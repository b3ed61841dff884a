//! One cgroup (v2) per node on the local backend. On loopback every node has the same address; iptables can
//! still tell which node sent a packet through the `cgroup` match on the sending socket's cgroup, provided
//! each node runs in a cgroup of its own. The harness creates one with [`NodeCgroup::create`] and starts the
//! node inside it (see [`NodeCgroup::enter`]).

use crate::error::NemesisError;
use std::ffi::CStr;
use std::path::{Path, PathBuf};

/// The folder under the cgroup2 root that holds faultline's cgroups.
const TOP: &str = "faultline";

/// A node's own cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCgroup {
    dir: PathBuf,
    rel: String,
}

/// Where the cgroup2 hierarchy is mounted (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`), if it is.
pub fn cgroup2_root() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let mut f = left.split_whitespace();
        let root = f.nth(3)?;
        let mount = f.next()?;
        (fstype == "cgroup2" && root == "/").then(|| PathBuf::from(mount))
    })
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn run_dir(run_id: &str) -> Option<(PathBuf, String)> {
    let root = cgroup2_root()?;
    let rel = format!("{TOP}/{}", clean(run_id));
    Some((root.join(&rel), rel))
}

impl NodeCgroup {
    /// Creates (or reuses) `<cgroup2 root>/faultline/<run id>/<node>`.
    pub fn create(run_id: &str, node: &str) -> Result<NodeCgroup, NemesisError> {
        let (dir, rel) = run_dir(run_id).ok_or_else(|| {
            NemesisError::Unsupported(
                "no cgroup2 hierarchy is mounted: the local backend cannot cut nodes".into(),
            )
        })?;
        let dir = dir.join(clean(node));
        std::fs::create_dir_all(&dir).map_err(|source| NemesisError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(NodeCgroup {
            dir,
            rel: format!("{rel}/{}", clean(node)),
        })
    }

    /// The path relative to the cgroup2 root: the value of [`crate::Node::cgroup`].
    pub fn path(&self) -> &str {
        &self.rel
    }

    /// The `cgroup.procs` file; writing a PID there moves that process in.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Moves the process `pid` into this cgroup. Sockets keep the cgroup they were created in, so a node
    /// must be moved before it opens any: prefer [`NodeCgroup::enter`] in the child before `exec`.
    pub fn add_pid(&self, pid: u32) -> Result<(), NemesisError> {
        let f = self.procs_file();
        std::fs::write(&f, pid.to_string()).map_err(|source| NemesisError::Io {
            path: f.display().to_string(),
            source,
        })
    }

    /// Moves the calling process into the cgroup whose `cgroup.procs` is `procs` (a NUL-terminated path).
    /// Only async-signal-safe calls: meant for `CommandExt::pre_exec`, between fork and exec.
    pub fn enter(procs: &CStr) -> std::io::Result<()> {
        // SAFETY: open/write/close on a valid NUL-terminated path and a stack buffer.
        unsafe {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let zero = b"0";
            let n = libc::write(fd, zero.as_ptr().cast(), 1);
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            if n != 1 {
                return Err(err);
            }
        }
        Ok(())
    }

    /// Removes the cgroup. It must hold no process any more; while a killed process is still exiting, waits
    /// for up to 3 s.
    pub fn remove(&self) -> Result<(), NemesisError> {
        if self.dir.exists() && !remove_when_empty(&self.dir) {
            remove_dir(&self.dir)?;
        }
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        Ok(())
    }
}

fn remove_dir(dir: &Path) -> Result<(), NemesisError> {
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NemesisError::Io {
            path: dir.display().to_string(),
            source,
        }),
    }
}

/// Removes an empty cgroup; while it is busy (a killed process not yet gone), retries for up to 3 s.
fn remove_when_empty(dir: &Path) -> bool {
    for _ in 0..150 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(_) => return false,
        }
    }
    false
}

/// Removes every node cgroup of a run that holds no process any more (waiting a little for processes that
/// are exiting), and then the run's folder; a cgroup still in use is left alone. Returns what was removed.
pub(crate) fn remove_run(run_id: &str) -> Vec<String> {
    let Some((dir, _)) = run_dir(run_id) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.path().is_dir() && remove_when_empty(&e.path()) {
                removed.push(e.path().display().to_string());
            }
        }
    }
    if std::fs::remove_dir(&dir).is_ok() {
        removed.push(dir.display().to_string());
    }
    removed
}
