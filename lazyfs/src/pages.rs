//! The content of one regular file: its durable object on the backing store, overlaid with the pages written
//! since the last sync.
//!
//! Whole pages of [`PAGE`] bytes are cached: a write into a page the cache does not hold yet first copies the
//! page's current content, so a sync writes back exactly the pages that changed. Truncations are cached too
//! (`clean_limit`): bytes of the durable object at or beyond it are gone as far as readers can tell, and are cut
//! off the durable object at the next sync.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The size of one cached page.
pub const PAGE: u64 = 4096;

/// A file's content as its readers see it, and what its durable object holds.
#[derive(Debug, Default)]
pub struct Content {
    /// The size readers see.
    size: u64,
    /// The durable object's size (as of the last sync or load).
    durable_size: u64,
    /// Bytes of the durable object below this offset are still current (unless their page is dirty); at or
    /// beyond it, what is not in a dirty page reads as zeros. Never above `size` or `durable_size`.
    clean_limit: u64,
    /// Pages written since the last sync, by page index. Bytes beyond `size` in the last page are zero.
    dirty: BTreeMap<u64, Box<[u8]>>,
}

impl Content {
    /// A file whose durable object holds `durable_size` bytes and nothing cached.
    pub fn clean(durable_size: u64) -> Content {
        Content {
            size: durable_size,
            durable_size,
            clean_limit: durable_size,
            dirty: BTreeMap::new(),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether anything changed since the last sync (data or size).
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty() || self.size != self.durable_size || self.clean_limit != self.durable_size
    }

    /// Bytes cached and not yet synced (whole pages).
    pub fn dirty_bytes(&self) -> u64 {
        self.dirty.len() as u64 * PAGE
    }

    /// Reads up to `len` bytes at `off` (fewer at the end of the file).
    pub fn read(&self, durable: Option<&File>, off: u64, len: u32) -> io::Result<Vec<u8>> {
        let end = self.size.min(off.saturating_add(u64::from(len)));
        if off >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - off) as usize];
        let mut pos = off;
        while pos < end {
            let page = pos / PAGE;
            let page_end = ((page + 1) * PAGE).min(end);
            let dst = &mut out[(pos - off) as usize..(page_end - off) as usize];
            match self.dirty.get(&page) {
                Some(p) => {
                    dst.copy_from_slice(&p[(pos - page * PAGE) as usize..(page_end - page * PAGE) as usize])
                }
                None => read_durable(durable, pos, self.clean_limit, dst)?,
            }
            pos = page_end;
        }
        Ok(out)
    }

    /// Writes `data` at `off` into the cache, growing the file if needed.
    pub fn write(&mut self, durable: Option<&File>, off: u64, data: &[u8]) -> io::Result<()> {
        let end = off + data.len() as u64;
        let mut pos = off;
        while pos < end {
            let page = pos / PAGE;
            let page_end = ((page + 1) * PAGE).min(end);
            if !self.dirty.contains_key(&page) {
                let mut buf = vec![0u8; PAGE as usize].into_boxed_slice();
                let limit = self.size.min(self.clean_limit);
                read_durable(durable, page * PAGE, limit, &mut buf)?;
                self.dirty.insert(page, buf);
            }
            let p = self.dirty.get_mut(&page).expect("inserted above");
            let src = &data[(pos - off) as usize..(page_end - off) as usize];
            p[(pos - page * PAGE) as usize..(page_end - page * PAGE) as usize].copy_from_slice(src);
            pos = page_end;
        }
        self.size = self.size.max(end);
        Ok(())
    }

    /// Sets the size readers see; bytes beyond a shrunken size are gone, a grown file reads zeros there.
    pub fn set_size(&mut self, size: u64) {
        if size < self.size {
            self.dirty.retain(|&page, _| page * PAGE < size);
            if let Some(p) = self.dirty.get_mut(&(size / PAGE)) {
                p[(size % PAGE) as usize..].fill(0);
            }
            self.clean_limit = self.clean_limit.min(size);
        }
        self.size = size;
    }

    /// Writes the cached pages and the size to the durable object and syncs it (`fdatasync`).
    pub fn sync_to(&mut self, file: &File) -> io::Result<()> {
        if self.clean_limit < self.durable_size {
            file.set_len(self.clean_limit)?;
        }
        for (&page, bytes) in &self.dirty {
            let start = page * PAGE;
            let n = (self.size - start).min(PAGE) as usize;
            file.write_all_at(&bytes[..n], start)?;
        }
        if file.metadata()?.len() != self.size {
            file.set_len(self.size)?;
        }
        file.sync_data()?;
        self.dirty.clear();
        self.durable_size = self.size;
        self.clean_limit = self.size;
        Ok(())
    }
}

/// Fills `dst` with the durable bytes at `pos` below `limit`, zeros elsewhere.
fn read_durable(durable: Option<&File>, pos: u64, limit: u64, dst: &mut [u8]) -> io::Result<()> {
    dst.fill(0);
    let (Some(f), true) = (durable, pos < limit) else {
        return Ok(());
    };
    let want = ((limit - pos) as usize).min(dst.len());
    let mut done = 0;
    while done < want {
        match f.read_at(&mut dst[done..want], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn durable(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, bytes).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        (d, f)
    }

    #[test]
    fn writes_stay_cached_until_synced() {
        let (_d, f) = durable(b"hello world");
        let mut c = Content::clean(11);
        c.write(Some(&f), 6, b"there!").unwrap();
        assert_eq!(c.read(Some(&f), 0, 100).unwrap(), b"hello there!");
        assert_eq!(std::fs::read(_d.path().join("f")).unwrap(), b"hello world");
        assert!(c.is_dirty());
        c.sync_to(&f).unwrap();
        assert!(!c.is_dirty());
        assert_eq!(std::fs::read(_d.path().join("f")).unwrap(), b"hello there!");
    }

    #[test]
    fn truncate_then_grow_reads_zeros_and_syncs_them() {
        let (d, f) = durable(&[7u8; 10000]);
        let mut c = Content::clean(10000);
        c.set_size(100);
        c.set_size(5000);
        let r = c.read(Some(&f), 0, 6000).unwrap();
        assert_eq!(r.len(), 5000);
        assert!(r[..100].iter().all(|&b| b == 7) && r[100..].iter().all(|&b| b == 0));
        // A write into the page holding the cut must not bring the old bytes back.
        c.write(Some(&f), 4090, b"xy").unwrap();
        let r = c.read(Some(&f), 0, 6000).unwrap();
        assert!(r[100..4090].iter().all(|&b| b == 0), "old bytes came back");
        c.sync_to(&f).unwrap();
        let on_disk = std::fs::read(d.path().join("f")).unwrap();
        assert_eq!(on_disk, r);
    }

    #[test]
    fn pages_across_boundaries_and_holes() {
        let mut c = Content::clean(0);
        c.write(None, PAGE - 2, b"abcd").unwrap();
        c.write(None, 3 * PAGE, b"z").unwrap();
        assert_eq!(c.size(), 3 * PAGE + 1);
        let r = c.read(None, PAGE - 3, 6).unwrap();
        assert_eq!(r, b"\0abcd\0");
        assert_eq!(c.read(None, 2 * PAGE, 10).unwrap(), vec![0; 10]);
        assert_eq!(c.dirty_bytes(), 3 * PAGE);
    }
}
