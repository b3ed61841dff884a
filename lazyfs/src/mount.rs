//! Mounting a [`Tree`] with FUSE, crashing it, unmounting it, and finding mounts a killed process left behind.

use crate::fuse::LazyFs;
use crate::tree::{Lost, Names, Tree};
use crate::LazyError;
use fuser::{BackgroundSession, Config, MountOption, SessionACL};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A mounted lazy filesystem, served by a thread of this process. Dropping it unmounts it.
pub struct Mount {
    session: Option<BackgroundSession>,
    tree: Arc<Mutex<Tree>>,
    mountpoint: PathBuf,
    work: PathBuf,
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount")
            .field("mountpoint", &self.mountpoint)
            .finish()
    }
}

/// The source faultline's mounts show in `/proc/self/mountinfo` (their type is `fuse`).
pub const FS_NAME: &str = "lazyfs";

impl Mount {
    /// Serves `backing` at `mountpoint` (both existing directories). `work` (created, emptied) holds synced
    /// objects that have no durable name yet; it must be on the same filesystem as `backing` and outside it.
    /// `names` says when creates, removes and renames become durable.
    pub fn new(backing: &Path, work: &Path, mountpoint: &Path, names: Names) -> Result<Mount, LazyError> {
        check_available()?;
        let ctx = |what: &str, p: &Path| format!("{what} {}", p.display());
        let tree = Tree::open(backing, work, names).map_err(LazyError::io(ctx("opening", backing)))?;
        let tree = Arc::new(Mutex::new(tree));
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(FS_NAME.into()),
            MountOption::Subtype("lazyfs".into()),
            MountOption::DefaultPermissions,
        ];
        // Nodes may run as other users than the harness.
        config.acl = SessionACL::All;
        let fs = LazyFs { tree: tree.clone() };
        let session = fuser::spawn_mount(fs, mountpoint, &config)
            .map_err(LazyError::io(ctx("mounting lazyfs at", mountpoint)))?;
        Ok(Mount {
            session: Some(session),
            tree,
            mountpoint: mountpoint.to_path_buf(),
            work: work.to_path_buf(),
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Drops every write not yet synced: from now on the mount shows what the backing store holds. Stop the
    /// processes that use the mount first (a process still running would see its open files vanish).
    pub fn crash(&self) -> Result<Lost, LazyError> {
        let mut t = self.tree.lock().unwrap_or_else(|e| e.into_inner());
        t.crash()
            .map_err(LazyError::io(format!("crashing {}", self.mountpoint.display())))
    }

    /// Unmounts (lazily if something still uses it) and stops the serving thread.
    pub fn unmount(mut self) -> Result<(), LazyError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), LazyError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        if session.umount_and_join().is_err() || is_mounted(&self.mountpoint) {
            unmount_stale(&self.mountpoint)?;
        }
        // Objects without a durable name are gone with the mount, as at a crash.
        let _ = std::fs::remove_dir_all(&self.work);
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!("{e}");
        }
    }
}

/// Whether FUSE can be used here: `/dev/fuse` opens for reading and writing and the kernel knows `fuse`.
pub fn check_available() -> Result<(), LazyError> {
    let known = std::fs::read_to_string("/proc/filesystems")
        .map(|s| s.lines().any(|l| l.split_whitespace().last() == Some("fuse")))
        .unwrap_or(false);
    if !known {
        return Err(LazyError::Unavailable(
            "the kernel has no fuse filesystem (/proc/filesystems)".into(),
        ));
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(|e| LazyError::Unavailable(format!("/dev/fuse: {e}")))?;
    Ok(())
}

/// Mount points of lazyfs mounts in this mount namespace (from `/proc/self/mountinfo`).
pub fn mounted() -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let point = fields.get(4)?;
            let fuse = fields.get(sep + 1).is_some_and(|t| t.starts_with("fuse"));
            (fuse && fields.get(sep + 2) == Some(&FS_NAME)).then(|| PathBuf::from(unescape(point)))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a lazyfs is mounted at `path`.
pub fn is_mounted(path: &Path) -> bool {
    mounted().iter().any(|m| m == path)
}

/// Unmounts a lazyfs left at `path` (its serving process may be dead): a lazy `umount2(MNT_DETACH)`. Returns
/// whether something was mounted there.
pub fn unmount_stale(path: &Path) -> Result<bool, LazyError> {
    if !is_mounted(path) {
        return Ok(false);
    }
    nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| LazyError::io(format!("unmounting {}", path.display()))(std::io::Error::from(e)))?;
    Ok(true)
}
