//! The namespace and the durable objects behind it: what the filesystem's users see (the volatile tree), and
//! what a disk would hold after a power cut (the backing directory, plus a work directory of objects that have
//! no durable name yet).
//!
//! Every inode may have a *durable object*: a file, directory or symlink in the backing directory (at a
//! durable name) or in the work directory (`ino-N`, no durable name). Changes reach durable objects only
//! through [`Tree::sync`]:
//! - a file's sync writes its cached pages and size to its object (creating one in the work directory if it has
//!   none yet) and `fdatasync`s it;
//! - a directory's sync makes the durable entries of that directory equal to its volatile entries (creating,
//!   moving in or out, removing durable objects as needed) and `fsync`s it.
//!
//! [`Tree::crash`] forgets the volatile tree and empties the work directory: what remains is exactly what was
//! synced.

use crate::pages::Content;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// An inode number; the root is [`ROOT`].
pub type Ino = u64;
/// The root directory's inode number.
pub const ROOT: Ino = 1;
/// An errno value (`libc::ENOENT`, ...).
pub type Errno = i32;
pub type Res<T> = Result<T, Errno>;

fn errno(e: std::io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EIO)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// What `stat` shows of an inode.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

/// When changes to names (create, remove, rename) become durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Names {
    /// Only when their directory is fsynced (what POSIX promises).
    #[default]
    OnDirSync,
    /// As soon as they are made, as on a journaling filesystem whose journal committed before the crash
    /// (what most programs silently rely on). File data still waits for its fsync.
    Immediate,
}

/// What a crash dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lost {
    /// Files whose data or size changed since their last sync.
    pub files: usize,
    /// Cached pages dropped, in bytes.
    pub bytes: u64,
    /// Directories whose entries changed since their last sync.
    pub dirs: usize,
}

#[derive(Debug)]
struct DirBody {
    children: BTreeMap<OsString, Ino>,
    durable_children: BTreeMap<OsString, Ino>,
    /// The durable entries have been read from the backing directory.
    loaded: bool,
}

#[derive(Debug)]
enum Body {
    File(Content),
    Dir(DirBody),
    Symlink(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// The backing directory itself (the root).
    Root,
    /// Entry `name` of durable directory `ino`.
    In(Ino, OsString),
    /// In the work directory: durable content, no durable name.
    Work(OsString),
}

#[derive(Debug)]
struct Durable {
    place: Place,
    /// Regular files: the object, opened on first use (it follows renames).
    file: Option<File>,
}

#[derive(Debug)]
struct Inode {
    body: Body,
    perm: u16,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
    /// Where the inode is in the volatile tree; `None` once unlinked.
    linked: Option<(Ino, OsString)>,
    open: u32,
    durable: Option<Durable>,
}

/// The whole filesystem state of one mount.
#[derive(Debug)]
pub struct Tree {
    backing: PathBuf,
    work: PathBuf,
    inodes: HashMap<Ino, Inode>,
    next: Ino,
    names: Names,
}

fn inode_from(meta: &fs::Metadata, body: Body, linked: Option<(Ino, OsString)>, place: Place) -> Inode {
    let t = |s: i64, ns: i64| SystemTime::UNIX_EPOCH + std::time::Duration::new(s.max(0) as u64, ns as u32);
    Inode {
        body,
        perm: (meta.mode() & 0o7777) as u16,
        uid: meta.uid(),
        gid: meta.gid(),
        atime: t(meta.atime(), meta.atime_nsec()),
        mtime: t(meta.mtime(), meta.mtime_nsec()),
        ctime: t(meta.ctime(), meta.ctime_nsec()),
        linked,
        open: 0,
        durable: Some(Durable { place, file: None }),
    }
}

fn new_dir_body(loaded: bool) -> Body {
    Body::Dir(DirBody {
        children: BTreeMap::new(),
        durable_children: BTreeMap::new(),
        loaded,
    })
}

impl Tree {
    /// The tree of `backing` as it is on disk; `work` (emptied here) holds objects without a durable name.
    pub fn open(backing: &Path, work: &Path, names: Names) -> std::io::Result<Tree> {
        match fs::remove_dir_all(work) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        fs::create_dir_all(work)?;
        let meta = fs::metadata(backing)?;
        let mut inodes = HashMap::new();
        inodes.insert(
            ROOT,
            inode_from(&meta, new_dir_body(false), Some((ROOT, ".".into())), Place::Root),
        );
        Ok(Tree {
            backing: backing.to_path_buf(),
            work: work.to_path_buf(),
            inodes,
            next: ROOT + 1,
            names,
        })
    }

    /// Drops everything not synced: the tree becomes what the backing directory holds. Inode numbers are never
    /// reused, so the kernel's cached inodes of before the crash cannot alias new ones.
    pub fn crash(&mut self) -> std::io::Result<Lost> {
        let mut lost = Lost::default();
        for i in self.inodes.values().filter(|i| i.linked.is_some()) {
            match &i.body {
                Body::File(c) if c.is_dirty() || i.durable.is_none() => {
                    lost.files += 1;
                    lost.bytes += c.dirty_bytes();
                }
                Body::Dir(d) if d.loaded && d.children != d.durable_children => lost.dirs += 1,
                _ => {}
            }
        }
        let next = self.next;
        *self = Tree::open(&self.backing.clone(), &self.work.clone(), self.names)?;
        self.next = next;
        Ok(lost)
    }

    fn get(&self, ino: Ino) -> Res<&Inode> {
        self.inodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn get_mut(&mut self, ino: Ino) -> Res<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn dir(&self, ino: Ino) -> Res<&DirBody> {
        match &self.get(ino)?.body {
            Body::Dir(d) => Ok(d),
            _ => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Res<&mut DirBody> {
        match &mut self.get_mut(ino)?.body {
            Body::Dir(d) => Ok(d),
            _ => Err(libc::ENOTDIR),
        }
    }

    fn place_path(&self, place: &Place) -> Option<PathBuf> {
        match place {
            Place::Root => Some(self.backing.clone()),
            Place::Work(name) => Some(self.work.join(name)),
            Place::In(dir, name) => Some(self.durable_path(*dir)?.join(name)),
        }
    }

    fn durable_path(&self, ino: Ino) -> Option<PathBuf> {
        self.place_path(&self.inodes.get(&ino)?.durable.as_ref()?.place)
    }

    /// Reads a directory's durable entries from the backing store the first time it is needed.
    fn load(&mut self, dir: Ino) -> Res<()> {
        if self.dir(dir)?.loaded {
            return Ok(());
        }
        let mut found = Vec::new();
        if let Some(path) = self.durable_path(dir) {
            for entry in fs::read_dir(&path).map_err(errno)? {
                let entry = entry.map_err(errno)?;
                let meta = entry.metadata().map_err(errno)?;
                let body = if meta.is_dir() {
                    new_dir_body(false)
                } else if meta.is_file() {
                    Body::File(Content::clean(meta.len()))
                } else if meta.file_type().is_symlink() {
                    Body::Symlink(fs::read_link(entry.path()).map_err(errno)?)
                } else {
                    continue;
                };
                let name = entry.file_name();
                let place = Place::In(dir, name.clone());
                found.push((name.clone(), inode_from(&meta, body, Some((dir, name)), place)));
            }
        }
        for (name, inode) in found {
            let ino = self.next;
            self.next += 1;
            self.inodes.insert(ino, inode);
            let d = self.dir_mut(dir)?;
            d.children.insert(name.clone(), ino);
            d.durable_children.insert(name, ino);
        }
        self.dir_mut(dir)?.loaded = true;
        Ok(())
    }

    pub fn attr(&self, ino: Ino) -> Res<Attr> {
        let i = self.get(ino)?;
        let (kind, size, nlink) = match &i.body {
            Body::File(c) => (Kind::File, c.size(), u32::from(i.linked.is_some())),
            Body::Dir(d) => {
                let subdirs = d
                    .children
                    .values()
                    .filter(|c| matches!(self.inodes.get(c).map(|c| &c.body), Some(Body::Dir(_))))
                    .count();
                (Kind::Dir, 4096, 2 + subdirs as u32)
            }
            Body::Symlink(t) => (Kind::Symlink, t.as_os_str().len() as u64, 1),
        };
        Ok(Attr {
            ino,
            kind,
            size,
            perm: i.perm,
            nlink,
            uid: i.uid,
            gid: i.gid,
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
        })
    }

    pub fn lookup(&mut self, parent: Ino, name: &OsStr) -> Res<Attr> {
        self.load(parent)?;
        let ino = *self.dir(parent)?.children.get(name).ok_or(libc::ENOENT)?;
        self.attr(ino)
    }

    /// Entries of a directory (without `.` and `..`), in name order.
    pub fn entries(&mut self, dir: Ino) -> Res<Vec<(Ino, Kind, OsString)>> {
        self.load(dir)?;
        let d = self.dir(dir)?;
        Ok(d.children
            .iter()
            .filter_map(|(name, &ino)| Some((ino, self.attr(ino).ok()?.kind, name.clone())))
            .collect())
    }

    /// The parent of a directory in the volatile tree (the root is its own parent).
    pub fn parent(&self, dir: Ino) -> Res<Ino> {
        Ok(self.get(dir)?.linked.as_ref().map_or(ROOT, |(p, _)| *p))
    }

    fn add(&mut self, parent: Ino, name: &OsStr, body: Body, perm: u16, uid: u32, gid: u32) -> Res<Attr> {
        self.load(parent)?;
        if self.dir(parent)?.children.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let now = SystemTime::now();
        let ino = self.next;
        self.next += 1;
        self.inodes.insert(
            ino,
            Inode {
                body,
                perm,
                uid,
                gid,
                atime: now,
                mtime: now,
                ctime: now,
                linked: Some((parent, name.to_os_string())),
                open: 0,
                durable: None,
            },
        );
        self.dir_mut(parent)?.children.insert(name.to_os_string(), ino);
        self.touch(parent);
        self.names_changed(parent)?;
        self.attr(ino)
    }

    fn touch(&mut self, ino: Ino) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            let now = SystemTime::now();
            i.mtime = now;
            i.ctime = now;
        }
    }

    pub fn create(&mut self, parent: Ino, name: &OsStr, perm: u16, uid: u32, gid: u32) -> Res<Attr> {
        self.add(parent, name, Body::File(Content::clean(0)), perm, uid, gid)
    }

    pub fn mkdir(&mut self, parent: Ino, name: &OsStr, perm: u16, uid: u32, gid: u32) -> Res<Attr> {
        self.add(parent, name, new_dir_body(true), perm, uid, gid)
    }

    pub fn symlink(&mut self, parent: Ino, name: &OsStr, target: &Path, uid: u32, gid: u32) -> Res<Attr> {
        self.add(parent, name, Body::Symlink(target.to_path_buf()), 0o777, uid, gid)
    }

    pub fn readlink(&self, ino: Ino) -> Res<PathBuf> {
        match &self.get(ino)?.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(libc::EINVAL),
        }
    }

    /// Removes `name` from `parent` (a directory only with `dir`, and only when empty).
    pub fn remove(&mut self, parent: Ino, name: &OsStr, dir: bool) -> Res<()> {
        self.load(parent)?;
        let ino = *self.dir(parent)?.children.get(name).ok_or(libc::ENOENT)?;
        let is_dir = matches!(self.get(ino)?.body, Body::Dir(_));
        match (dir, is_dir) {
            (true, false) => return Err(libc::ENOTDIR),
            (false, true) => return Err(libc::EISDIR),
            (true, true) => {
                self.load(ino)?;
                if !self.dir(ino)?.children.is_empty() {
                    return Err(libc::ENOTEMPTY);
                }
            }
            _ => {}
        }
        self.dir_mut(parent)?.children.remove(name);
        self.touch(parent);
        self.get_mut(ino)?.linked = None;
        self.release_if_unused(ino)?;
        self.names_changed(parent)
    }

    /// With [`Names::Immediate`], makes a directory's changed entries durable at once.
    fn names_changed(&mut self, dir: Ino) -> Res<()> {
        match self.names {
            Names::OnDirSync => Ok(()),
            Names::Immediate => self.sync_dir(dir),
        }
    }

    /// Moves `name` of `parent` to `new_name` of `new_parent`, replacing what is there (unless `noreplace`).
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        noreplace: bool,
    ) -> Res<()> {
        self.load(parent)?;
        self.load(new_parent)?;
        let src = *self.dir(parent)?.children.get(name).ok_or(libc::ENOENT)?;
        let src_dir = matches!(self.get(src)?.body, Body::Dir(_));
        if src_dir {
            // Never into itself or one of its descendants.
            let mut at = new_parent;
            loop {
                if at == src {
                    return Err(libc::EINVAL);
                }
                let up = self.parent(at)?;
                if up == at {
                    break;
                }
                at = up;
            }
        }
        if let Some(&dst) = self.dir(new_parent)?.children.get(new_name) {
            if dst == src {
                return Ok(());
            }
            if noreplace {
                return Err(libc::EEXIST);
            }
            match (src_dir, matches!(self.get(dst)?.body, Body::Dir(_))) {
                (false, true) => return Err(libc::EISDIR),
                (true, false) => return Err(libc::ENOTDIR),
                (true, true) => {
                    self.load(dst)?;
                    if !self.dir(dst)?.children.is_empty() {
                        return Err(libc::ENOTEMPTY);
                    }
                }
                _ => {}
            }
            self.dir_mut(new_parent)?.children.remove(new_name);
            self.get_mut(dst)?.linked = None;
            self.release_if_unused(dst)?;
        }
        self.dir_mut(parent)?.children.remove(name);
        self.dir_mut(new_parent)?
            .children
            .insert(new_name.to_os_string(), src);
        self.get_mut(src)?.linked = Some((new_parent, new_name.to_os_string()));
        self.touch(parent);
        self.touch(new_parent);
        self.names_changed(new_parent)?;
        if new_parent != parent {
            self.names_changed(parent)?;
        }
        Ok(())
    }

    pub fn opened(&mut self, ino: Ino) -> Res<()> {
        self.get_mut(ino)?.open += 1;
        Ok(())
    }

    pub fn released(&mut self, ino: Ino) -> Res<()> {
        let i = self.get_mut(ino)?;
        i.open = i.open.saturating_sub(1);
        self.release_if_unused(ino)
    }

    /// Frees an inode nobody can reach any more, unless a durable name still refers to it (a later sync of that
    /// directory moves the object out and frees it then).
    fn release_if_unused(&mut self, ino: Ino) -> Res<()> {
        let i = self.get(ino)?;
        if i.linked.is_some() || i.open > 0 {
            return Ok(());
        }
        let is_dir = matches!(i.body, Body::Dir(_));
        match i.durable.as_ref().map(|d| &d.place) {
            None => {
                self.inodes.remove(&ino);
            }
            Some(Place::Work(_)) if !is_dir => {
                if let Some(p) = self.durable_path(ino) {
                    let _ = fs::remove_file(p);
                }
                self.inodes.remove(&ino);
            }
            _ => {
                if let Body::File(c) = &mut self.get_mut(ino)?.body {
                    *c = Content::clean(0);
                }
            }
        }
        Ok(())
    }

    /// Opens the durable object of a regular file, if it has one.
    fn durable_file(&mut self, ino: Ino) -> Res<()> {
        let path = self.durable_path(ino);
        let i = self.get_mut(ino)?;
        if let (Some(d), Some(path)) = (i.durable.as_mut(), path) {
            if d.file.is_none() && matches!(i.body, Body::File(_)) {
                d.file = Some(
                    OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(path)
                        .map_err(errno)?,
                );
            }
        }
        Ok(())
    }

    fn content(&mut self, ino: Ino) -> Res<(&mut Content, Option<&File>)> {
        self.durable_file(ino)?;
        let i = self.get_mut(ino)?;
        match &mut i.body {
            Body::File(c) => Ok((c, i.durable.as_ref().and_then(|d| d.file.as_ref()))),
            Body::Dir(_) => Err(libc::EISDIR),
            Body::Symlink(_) => Err(libc::EINVAL),
        }
    }

    pub fn read(&mut self, ino: Ino, off: u64, len: u32) -> Res<Vec<u8>> {
        let (c, f) = self.content(ino)?;
        c.read(f, off, len).map_err(errno)
    }

    pub fn write(&mut self, ino: Ino, off: u64, data: &[u8]) -> Res<()> {
        let (c, f) = self.content(ino)?;
        c.write(f, off, data).map_err(errno)?;
        self.touch(ino);
        Ok(())
    }

    pub fn set_size(&mut self, ino: Ino, size: u64) -> Res<()> {
        self.content(ino)?.0.set_size(size);
        self.touch(ino);
        Ok(())
    }

    /// Changes permissions, owner or times (kept in memory; see the crate docs).
    pub fn set_meta(
        &mut self,
        ino: Ino,
        perm: Option<u16>,
        uid: Option<u32>,
        gid: Option<u32>,
        times: [Option<SystemTime>; 2],
    ) -> Res<()> {
        let i = self.get_mut(ino)?;
        i.perm = perm.unwrap_or(i.perm);
        i.uid = uid.unwrap_or(i.uid);
        i.gid = gid.unwrap_or(i.gid);
        i.atime = times[0].unwrap_or(i.atime);
        i.mtime = times[1].unwrap_or(i.mtime);
        i.ctime = SystemTime::now();
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file or a directory.
    pub fn sync(&mut self, ino: Ino) -> Res<()> {
        match self.get(ino)?.body {
            Body::File(_) => {
                self.ensure_durable(ino)?;
                let (c, f) = self.content(ino)?;
                c.sync_to(f.ok_or(libc::EIO)?).map_err(errno)
            }
            Body::Dir(_) => self.sync_dir(ino),
            Body::Symlink(_) => Ok(()),
        }
    }

    /// Gives an inode a durable object in the work directory if it has none (an empty file or directory).
    fn ensure_durable(&mut self, ino: Ino) -> Res<()> {
        let i = self.get(ino)?;
        if i.durable.is_some() {
            return Ok(());
        }
        let name = OsString::from(format!("ino-{ino}"));
        let path = self.work.join(&name);
        let mode = u32::from(i.perm);
        let file = match &i.body {
            Body::File(_) => Some(
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&path)
                    .map_err(errno)?,
            ),
            Body::Dir(_) => {
                fs::DirBuilder::new().mode(mode).create(&path).map_err(errno)?;
                None
            }
            Body::Symlink(t) => {
                std::os::unix::fs::symlink(t, &path).map_err(errno)?;
                None
            }
        };
        if let Some(f) = &file {
            // The mode given at creation is masked by the umask.
            let _ = f.set_permissions(fs::Permissions::from_mode(mode));
        }
        self.get_mut(ino)?.durable = Some(Durable {
            place: Place::Work(name),
            file,
        });
        Ok(())
    }

    /// Renames an inode's durable object to `to` and keeps the durable entries of both directories in step.
    fn move_durable(&mut self, ino: Ino, to: Place) -> Res<()> {
        let from = self.durable_path(ino).ok_or(libc::EIO)?;
        let to_path = self.place_path(&to).ok_or(libc::EIO)?;
        fs::rename(&from, &to_path).map_err(errno)?;
        let old = std::mem::replace(
            &mut self.get_mut(ino)?.durable.as_mut().ok_or(libc::EIO)?.place,
            to.clone(),
        );
        if let Place::In(dir, name) = old {
            self.dir_mut(dir)?.durable_children.remove(&name);
        }
        if let Place::In(dir, name) = to {
            self.dir_mut(dir)?.durable_children.insert(name, ino);
        }
        Ok(())
    }

    /// Makes the durable entries of `dir` what its volatile entries are, then fsyncs it on the backing store.
    fn sync_dir(&mut self, dir: Ino) -> Res<()> {
        self.load(dir)?;
        self.ensure_durable(dir)?;
        let d = self.dir(dir)?;
        let (volatile, durable) = (d.children.clone(), d.durable_children.clone());
        for (name, ino) in &durable {
            if volatile.get(name) != Some(ino) {
                self.move_durable(*ino, Place::Work(format!("ino-{ino}").into()))?;
                self.release_if_unused(*ino)?;
            }
        }
        for (name, ino) in &volatile {
            if self.dir(dir)?.durable_children.get(name) != Some(ino) {
                self.ensure_durable(*ino)?;
                self.move_durable(*ino, Place::In(dir, name.clone()))?;
            }
        }
        let path = self.durable_path(dir).ok_or(libc::EIO)?;
        File::open(path).and_then(|f| f.sync_all()).map_err(errno)
    }

    /// Space figures of the backing store, for `statfs`.
    pub fn backing(&self) -> &Path {
        &self.backing
    }
}
