//! The tree alone (no FUSE): what survives a crash after each kind of sync.

use lazyfs::tree::{Names, Tree, ROOT};
use std::ffi::OsStr;
use std::path::Path;

fn tree() -> (tempfile::TempDir, Tree) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("backing")).unwrap();
    let t = Tree::open(
        &d.path().join("backing"),
        &d.path().join("work"),
        Names::OnDirSync,
    )
    .unwrap();
    (d, t)
}

fn names(t: &mut Tree, dir: u64) -> Vec<String> {
    t.entries(dir)
        .unwrap()
        .into_iter()
        .map(|(_, _, n)| n.to_string_lossy().into_owned())
        .collect()
}

fn read_all(t: &mut Tree, parent: u64, name: &str) -> Option<Vec<u8>> {
    let a = t.lookup(parent, OsStr::new(name)).ok()?;
    Some(t.read(a.ino, 0, 1 << 20).unwrap())
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn unsynced_create_and_write_are_lost() {
    let (d, mut t) = tree();
    let f = t.create(ROOT, os("a"), 0o644, 0, 0).unwrap().ino;
    t.write(f, 0, b"hello").unwrap();
    assert_eq!(read_all(&mut t, ROOT, "a").unwrap(), b"hello");
    let lost = t.crash().unwrap();
    assert_eq!((lost.files, lost.dirs), (1, 1), "{lost:?}");
    assert!(names(&mut t, ROOT).is_empty());
    assert_eq!(std::fs::read_dir(d.path().join("work")).unwrap().count(), 0);
}

#[test]
fn file_sync_without_directory_sync_keeps_no_name() {
    let (_d, mut t) = tree();
    let f = t.create(ROOT, os("a"), 0o644, 0, 0).unwrap().ino;
    t.write(f, 0, b"hello").unwrap();
    t.sync(f).unwrap();
    t.crash().unwrap();
    assert!(names(&mut t, ROOT).is_empty());
}

#[test]
fn directory_sync_without_file_sync_keeps_an_empty_file() {
    let (_d, mut t) = tree();
    let f = t.create(ROOT, os("a"), 0o644, 0, 0).unwrap().ino;
    t.write(f, 0, b"hello").unwrap();
    t.sync(ROOT).unwrap();
    t.crash().unwrap();
    assert_eq!(read_all(&mut t, ROOT, "a").unwrap(), b"");
}

#[test]
fn both_syncs_keep_everything_and_later_writes_are_lost() {
    let (d, mut t) = tree();
    let f = t.create(ROOT, os("a"), 0o644, 0, 0).unwrap().ino;
    t.write(f, 0, b"hello").unwrap();
    t.sync(f).unwrap();
    t.sync(ROOT).unwrap();
    assert_eq!(std::fs::read(d.path().join("backing/a")).unwrap(), b"hello");
    t.write(f, 5, b" world").unwrap();
    t.set_size(f, 8).unwrap();
    t.crash().unwrap();
    assert_eq!(read_all(&mut t, ROOT, "a").unwrap(), b"hello");
}

#[test]
fn atomic_replace_needs_the_directory_sync() {
    let (d, mut t) = tree();
    // state = "v1", durable.
    let f = t.create(ROOT, os("state"), 0o644, 0, 0).unwrap().ino;
    t.write(f, 0, b"v1").unwrap();
    t.sync(f).unwrap();
    t.sync(ROOT).unwrap();
    // write tmp, fsync it, rename over state: without the directory sync a crash keeps v1.
    let tmp = t.create(ROOT, os("state.tmp"), 0o644, 0, 0).unwrap().ino;
    t.write(tmp, 0, b"v2").unwrap();
    t.sync(tmp).unwrap();
    t.rename(ROOT, os("state.tmp"), ROOT, os("state"), false).unwrap();
    assert_eq!(read_all(&mut t, ROOT, "state").unwrap(), b"v2");
    t.crash().unwrap();
    assert_eq!(names(&mut t, ROOT), ["state"]);
    assert_eq!(read_all(&mut t, ROOT, "state").unwrap(), b"v1");
    // Again, with the directory sync: v2, and no temporary left anywhere.
    let tmp = t.create(ROOT, os("state.tmp"), 0o644, 0, 0).unwrap().ino;
    t.write(tmp, 0, b"v2").unwrap();
    t.sync(tmp).unwrap();
    t.rename(ROOT, os("state.tmp"), ROOT, os("state"), false).unwrap();
    t.sync(ROOT).unwrap();
    t.crash().unwrap();
    assert_eq!(names(&mut t, ROOT), ["state"]);
    assert_eq!(read_all(&mut t, ROOT, "state").unwrap(), b"v2");
    let backing: Vec<_> = std::fs::read_dir(d.path().join("backing")).unwrap().collect();
    assert_eq!(backing.len(), 1);
}

#[test]
fn unlink_and_subdirectories_follow_their_directory_syncs() {
    let (d, mut t) = tree();
    let sub = t.mkdir(ROOT, os("sub"), 0o755, 0, 0).unwrap().ino;
    let f = t.create(sub, os("x"), 0o644, 0, 0).unwrap().ino;
    t.write(f, 0, b"x").unwrap();
    t.sync(f).unwrap();
    t.sync(sub).unwrap();
    // sub's own name is not durable yet: its synced content lives in the work directory and is lost.
    t.crash().unwrap();
    assert!(names(&mut t, ROOT).is_empty());
    let sub = t.mkdir(ROOT, os("sub"), 0o755, 0, 0).unwrap().ino;
    let f = t.create(sub, os("x"), 0o644, 0, 0).unwrap().ino;
    t.write(f, 0, b"x").unwrap();
    t.sync(f).unwrap();
    t.sync(sub).unwrap();
    t.sync(ROOT).unwrap();
    assert!(d.path().join("backing/sub/x").exists());
    t.remove(sub, os("x"), false).unwrap();
    t.crash().unwrap();
    let sub = t.lookup(ROOT, os("sub")).unwrap().ino;
    assert_eq!(read_all(&mut t, sub, "x").unwrap(), b"x");
    t.remove(sub, os("x"), false).unwrap();
    t.sync(sub).unwrap();
    t.crash().unwrap();
    let sub = t.lookup(ROOT, os("sub")).unwrap().ino;
    assert!(names(&mut t, sub).is_empty());
    assert!(!d.path().join("backing/sub/x").exists());
}

#[test]
fn rename_across_directories_is_durable_with_the_destination_sync() {
    let (d, mut t) = tree();
    let a = t.mkdir(ROOT, os("a"), 0o755, 0, 0).unwrap().ino;
    let b = t.mkdir(ROOT, os("b"), 0o755, 0, 0).unwrap().ino;
    let f = t.create(a, os("f"), 0o644, 0, 0).unwrap().ino;
    t.write(f, 0, b"data").unwrap();
    for ino in [f, a, b, ROOT] {
        t.sync(ino).unwrap();
    }
    t.rename(a, os("f"), b, os("g"), false).unwrap();
    t.sync(b).unwrap();
    t.crash().unwrap();
    let a = t.lookup(ROOT, os("a")).unwrap().ino;
    let b = t.lookup(ROOT, os("b")).unwrap().ino;
    assert!(names(&mut t, a).is_empty());
    assert_eq!(read_all(&mut t, b, "g").unwrap(), b"data");
    assert!(Path::new(&d.path().join("backing/b/g")).exists());
}

#[test]
fn rename_errors() {
    let (_d, mut t) = tree();
    let a = t.mkdir(ROOT, os("a"), 0o755, 0, 0).unwrap().ino;
    t.mkdir(a, os("b"), 0o755, 0, 0).unwrap();
    t.create(ROOT, os("f"), 0o644, 0, 0).unwrap();
    assert_eq!(t.rename(ROOT, os("a"), a, os("x"), false), Err(libc::EINVAL));
    assert_eq!(t.rename(ROOT, os("f"), ROOT, os("a"), false), Err(libc::EISDIR));
    assert_eq!(t.rename(ROOT, os("a"), ROOT, os("f"), false), Err(libc::ENOTDIR));
    t.create(ROOT, os("g"), 0o644, 0, 0).unwrap();
    assert_eq!(t.rename(ROOT, os("f"), ROOT, os("g"), true), Err(libc::EEXIST));
    assert_eq!(t.remove(ROOT, os("a"), true), Err(libc::ENOTEMPTY));
}

#[test]
fn existing_backing_content_is_served_and_survives_crashes() {
    let d = tempfile::tempdir().unwrap();
    let backing = d.path().join("backing");
    std::fs::create_dir_all(backing.join("dir")).unwrap();
    std::fs::write(backing.join("dir/file"), b"old").unwrap();
    let mut t = Tree::open(&backing, &d.path().join("work"), Names::OnDirSync).unwrap();
    let dir = t.lookup(ROOT, os("dir")).unwrap().ino;
    let f = t.lookup(dir, os("file")).unwrap().ino;
    t.write(f, 0, b"new!").unwrap();
    t.crash().unwrap();
    let dir = t.lookup(ROOT, os("dir")).unwrap().ino;
    assert_eq!(read_all(&mut t, dir, "file").unwrap(), b"old");
}

#[test]
fn immediate_names_survive_without_directory_syncs_but_data_does_not() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("backing")).unwrap();
    let mut t = Tree::open(
        &d.path().join("backing"),
        &d.path().join("work"),
        Names::Immediate,
    )
    .unwrap();
    let sub = t.mkdir(ROOT, os("member"), 0o755, 0, 0).unwrap().ino;
    let f = t.create(sub, os("wal"), 0o644, 0, 0).unwrap().ino;
    t.write(f, 0, b"entry").unwrap();
    let g = t.create(sub, os("tmp"), 0o644, 0, 0).unwrap().ino;
    t.write(g, 0, b"synced").unwrap();
    t.sync(g).unwrap();
    t.rename(sub, os("tmp"), sub, os("snap"), false).unwrap();
    t.crash().unwrap();
    let sub = t.lookup(ROOT, os("member")).unwrap().ino;
    assert_eq!(names(&mut t, sub), ["snap", "wal"]);
    assert_eq!(read_all(&mut t, sub, "wal").unwrap(), b"");
    assert_eq!(read_all(&mut t, sub, "snap").unwrap(), b"synced");
}
