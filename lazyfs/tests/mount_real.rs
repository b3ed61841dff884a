//! The filesystem mounted for real with FUSE: other processes write through it, a crash drops what they did
//! not sync. Needs root and /dev/fuse (as CI has).

use lazyfs::{Mount, Names};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Dirs {
    _tmp: tempfile::TempDir,
    backing: PathBuf,
    work: PathBuf,
    mnt: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let [backing, work, mnt] = ["backing", "work", "mnt"].map(|n| tmp.path().join(n));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    Dirs {
        _tmp: tmp,
        backing,
        work,
        mnt,
    }
}

/// Runs a shell script in `dir` as a separate process and waits for it.
fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_process_that_does_not_fsync_loses_its_writes_one_that_does_keeps_them() {
    let d = dirs();
    let m = Mount::new(&d.backing, &d.work, &d.mnt, Names::OnDirSync).unwrap();
    assert!(lazyfs::is_mounted(&d.mnt));
    // One directory per case, each durable already: not synced at all; the file data alone; the name alone;
    // both.
    sh(&d.mnt, "mkdir none data name both && sync .");
    sh(&d.mnt, "printf lost > none/f");
    sh(&d.mnt, "printf data > data/f && sync data/f");
    sh(&d.mnt, "printf name > name/f && sync name");
    sh(&d.mnt, "printf kept > both/f && sync both/f both");
    for case in ["none", "data", "name", "both"] {
        assert_eq!(
            std::fs::read(d.mnt.join(case).join("f")).unwrap().len(),
            4,
            "{case}"
        );
    }
    assert!(!d.backing.join("none/f").exists());
    let lost = m.crash().unwrap();
    // none/f and name/f had unsynced data; none and data had unsynced entries.
    assert_eq!((lost.files, lost.dirs), (2, 2), "{lost:?}");
    let exists = |case: &str| d.mnt.join(case).join("f").exists();
    assert!(!exists("none") && !exists("data"));
    assert_eq!(std::fs::read(d.mnt.join("name/f")).unwrap(), b"");
    assert_eq!(std::fs::read(d.mnt.join("both/f")).unwrap(), b"kept");
    assert_eq!(std::fs::read(d.backing.join("both/f")).unwrap(), b"kept");
    // Appends after the sync are lost too; the synced prefix stays.
    sh(&d.mnt, "printf ' and more' >> both/f");
    assert_eq!(std::fs::read(d.mnt.join("both/f")).unwrap(), b"kept and more");
    m.crash().unwrap();
    assert_eq!(std::fs::read(d.mnt.join("both/f")).unwrap(), b"kept");
    m.unmount().unwrap();
    assert!(!lazyfs::is_mounted(&d.mnt));
}

#[test]
fn atomic_replace_by_rename_is_durable_only_after_the_directory_fsync() {
    let d = dirs();
    let m = Mount::new(&d.backing, &d.work, &d.mnt, Names::OnDirSync).unwrap();
    sh(&d.mnt, "printf v1 > state && sync state .");
    sh(&d.mnt, "printf v2 > tmp && sync tmp && mv tmp state");
    assert_eq!(std::fs::read(d.mnt.join("state")).unwrap(), b"v2");
    m.crash().unwrap();
    assert_eq!(std::fs::read(d.mnt.join("state")).unwrap(), b"v1");
    sh(&d.mnt, "printf v2 > tmp && sync tmp && mv tmp state && sync .");
    m.crash().unwrap();
    assert_eq!(std::fs::read(d.mnt.join("state")).unwrap(), b"v2");
    assert!(!d.mnt.join("tmp").exists());
}

#[test]
fn large_files_directories_and_truncation_through_the_kernel() {
    let d = dirs();
    let m = Mount::new(&d.backing, &d.work, &d.mnt, Names::OnDirSync).unwrap();
    sh(
        &d.mnt,
        "mkdir -p a/b && head -c 3000000 /dev/urandom > a/b/big && sync a/b/big a/b a . && cp a/b/big copy",
    );
    let big = std::fs::read(d.mnt.join("a/b/big")).unwrap();
    assert_eq!(big.len(), 3_000_000);
    assert_eq!(std::fs::read(d.backing.join("a/b/big")).unwrap(), big);
    sh(&d.mnt, "truncate -s 10 a/b/big && printf x >> a/b/big");
    assert_eq!(std::fs::metadata(d.mnt.join("a/b/big")).unwrap().len(), 11);
    m.crash().unwrap();
    assert_eq!(std::fs::read(d.mnt.join("a/b/big")).unwrap(), big);
    assert!(!d.mnt.join("copy").exists());
}

#[test]
fn a_stale_mount_of_a_dead_server_is_removed() {
    let d = dirs();
    let m = Mount::new(&d.backing, &d.work, &d.mnt, Names::OnDirSync).unwrap();
    // Leak the mount as a killed process would (the serving thread keeps running until unmounted).
    std::mem::forget(m);
    assert!(lazyfs::is_mounted(&d.mnt));
    assert!(lazyfs::unmount_stale(&d.mnt).unwrap());
    assert!(!lazyfs::is_mounted(&d.mnt));
    assert!(!lazyfs::unmount_stale(&d.mnt).unwrap());
}
