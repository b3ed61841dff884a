//! # lazyfs
//!
//! A FUSE filesystem that behaves like a disk behind a page cache that never writes back on its own: what a
//! process writes stays in this filesystem's memory until the process syncs it (`fsync`/`fdatasync` of the
//! file for its data and size, `fsync` of a directory for the names in it), and a *crash* ([`Mount::crash`])
//! drops everything not synced. faultline mounts one over each node's data directory to find systems that
//! acknowledge writes before they are durable (the `lose-unsynced` fault).
//!
//! - [`pages`]: a file's content, cached pages over its durable object.
//! - [`tree`]: the namespace, the durable objects, sync and crash; no FUSE types, tested on its own.
//! - [`Mount`]: serves a tree with FUSE from a thread of the calling process; [`unmount_stale`] removes a mount
//!   whose process died.
//!
//! What is simulated and what is not is written down in `docs/nemesis.md` ("Losing un-synced writes").
//! It needs `/dev/fuse` and root (it mounts with `mount(2)`); [`check_available`] says why not.

mod fuse;
mod mount;
pub mod pages;
pub mod tree;

pub use mount::{check_available, is_mounted, mounted, unmount_stale, Mount, FS_NAME};
pub use tree::{Lost, Names};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum LazyError {
    /// FUSE cannot be used on this machine.
    #[error("FUSE is not available: {0}")]
    Unavailable(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl LazyError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LazyError {
        let context = context.into();
        move |source| LazyError::Io { context, source }
    }
}
