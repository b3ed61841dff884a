//! `lazyfs [--names-immediate] BACKING WORK MOUNTPOINT`: mounts a lazy filesystem by hand (faultline itself
//! mounts in-process). SIGUSR1 crashes it (drops everything not synced); SIGINT or SIGTERM unmounts it and
//! exits. `--names-immediate`: creates, removes and renames are durable at once (see `lazyfs::Names`).

use nix::sys::signal::{SigSet, Signal};
use std::path::PathBuf;

fn main() {
    let mut args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let names = match args.first().and_then(|a| a.to_str()) {
        Some("--names-immediate") => {
            args.remove(0);
            lazyfs::Names::Immediate
        }
        _ => lazyfs::Names::OnDirSync,
    };
    let [backing, work, mountpoint] = args.as_slice() else {
        eprintln!("usage: lazyfs [--names-immediate] BACKING WORK MOUNTPOINT (SIGUSR1: crash; SIGINT/SIGTERM: unmount)");
        std::process::exit(254);
    };
    let mut set = SigSet::empty();
    for s in [Signal::SIGUSR1, Signal::SIGINT, Signal::SIGTERM] {
        set.add(s);
    }
    // Blocked before the serving thread starts, so only sigwait below sees them.
    if let Err(e) = set.thread_block() {
        eprintln!("lazyfs: blocking signals: {e}");
        std::process::exit(255);
    }
    let mount = match lazyfs::Mount::new(backing, work, mountpoint, names) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("lazyfs: {e}");
            std::process::exit(3);
        }
    };
    eprintln!(
        "lazyfs: {} serves {} (pid {})",
        mountpoint.display(),
        backing.display(),
        std::process::id()
    );
    while let Ok(Signal::SIGUSR1) = set.wait() {
        match mount.crash() {
            Ok(lost) => eprintln!("lazyfs: crashed: {lost:?}"),
            Err(e) => eprintln!("lazyfs: crash failed: {e}"),
        }
    }
    if let Err(e) = mount.unmount() {
        eprintln!("lazyfs: {e}");
        std::process::exit(1);
    }
}
