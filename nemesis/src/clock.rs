//! Clock faults through libfaketime.
//!
//! What can move a node's clock here, and what cannot:
//! - libfaketime (`LD_PRELOAD`) changes what `clock_gettime`, `time`, `gettimeofday` return to a program that
//!   calls them through libc: C and C++ programs, Python, and Rust (std's `SystemTime` and `Instant` go
//!   through libc). With `FAKETIME_TIMESTAMP_FILE` the offset is re-read from a file (here every second), so
//!   the nemesis can move a running node's clock. Both the wall clock and the monotonic clock move.
//! - Go programs (etcd) read the clock through the vDSO without libc: libfaketime cannot reach them.
//! - A time namespace (`unshare --time`) offsets only CLOCK_MONOTONIC and CLOCK_BOOTTIME, and only before its
//!   first process starts: it can neither move the wall clock nor bump a running node.
//!
//! So a clock fault needs the node started under libfaketime ([`faketime_env`]); for any other node the
//! nemesis refuses clock faults with a message saying why. The nemesis moves a clock through
//! [`crate::Cluster::set_clock`]: by default [`write_offset`] here; a cluster whose nodes run on other hosts
//! (the harness's ssh backend) writes the same file content there.

use crate::error::NemesisError;
use std::path::{Path, PathBuf};

/// Where Debian and others install libfaketime (a cluster whose nodes run elsewhere looks there, on their
/// hosts).
pub const CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
];

/// The installed libfaketime, if any (Debian package `libfaketime`).
pub fn libfaketime_path() -> Option<PathBuf> {
    CANDIDATES.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Whether clock faults can work for nodes on this machine: libfaketime is installed here.
pub fn available_here() -> Result<(), String> {
    match libfaketime_path() {
        Some(_) => Ok(()),
        None => Err(
            "clock faults need libfaketime, which is not installed (Debian: apt-get install libfaketime)"
                .into(),
        ),
    }
}

/// The environment a node must be started with so that the nemesis can move its clock through `file`.
/// Creates `file` with a zero offset. Fails when libfaketime is not installed.
pub fn faketime_env(file: &Path) -> Result<Vec<(String, String)>, NemesisError> {
    let lib = libfaketime_path().ok_or_else(|| {
        NemesisError::Unsupported(
            "clock faults need libfaketime, which is not installed (Debian: apt-get install libfaketime)"
                .to_string(),
        )
    })?;
    write_offset(file, 0)?;
    Ok(faketime_vars(&lib, file))
}

/// The environment of a node under libfaketime `lib` reading its offset from `file` (re-read every second).
/// Both paths are where the node runs: [`faketime_env`] for this machine. Only the wall clock moves: the
/// monotonic clock that timers follow is left alone, as a step of the system clock (NTP, `date`) leaves it.
pub fn faketime_vars(lib: &Path, file: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".to_string(), lib.display().to_string()),
        ("FAKETIME_TIMESTAMP_FILE".to_string(), file.display().to_string()),
        ("FAKETIME_CACHE_DURATION".to_string(), "1".to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".to_string(), "1".to_string()),
    ]
}

/// libfaketime's relative offset syntax: `+1.500`, `-60.000` (seconds): what a control file holds.
pub fn offset_spec(offset_ms: i64) -> String {
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let a = offset_ms.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

/// Sets the node's clock offset in its control file on this machine (atomically: a reader never sees half a
/// file).
pub fn write_offset(file: &Path, offset_ms: i64) -> Result<(), NemesisError> {
    let io = |source| NemesisError::Io {
        path: file.display().to_string(),
        source,
    };
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", offset_spec(offset_ms))).map_err(io)?;
    std::fs::rename(&tmp, file).map_err(io)
}

/// Why a node's clock cannot be moved.
pub(crate) fn refusal(node: &str) -> NemesisError {
    NemesisError::Unsupported(format!(
        "clock faults need node {node} started under libfaketime (the DB spec must opt in; Go programs such as \
         etcd read the clock without libc and cannot be faked, and a time namespace cannot move the wall clock \
         or a running process's clock)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_specs() {
        assert_eq!(offset_spec(0), "+0.000");
        assert_eq!(offset_spec(1500), "+1.500");
        assert_eq!(offset_spec(-60_000), "-60.000");
        assert_eq!(offset_spec(-5), "-0.005");
    }
}
