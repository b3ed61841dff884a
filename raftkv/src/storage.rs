//! Durable state of one node in its data directory, written with fsync before the node answers anything.
//!
//! - `meta.json`: the node's id and its first configuration (written once);
//! - `state.json`: term and vote, replaced atomically (write, fsync, rename, fsync the directory);
//! - `log.jsonl`: an append-only log of records, one JSON object a line: an entry, or a truncation point;
//!   appends of one batch share one `fdatasync` (group commit);
//! - `snapshot.json`: the latest snapshot, replaced atomically; the log is then rewritten without the
//!   entries it covers.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::{Entry, HardState, LogOp, Membership, NodeId, Persisted, Snapshot};

/// A failure to read or write the data directory.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

type Result<T> = std::result::Result<T, StorageError>;

#[derive(Serialize, Deserialize)]
struct Meta {
    id: NodeId,
    base: Membership,
}

#[derive(Serialize, Deserialize)]
enum Record {
    #[serde(rename = "e")]
    Entry(Entry),
    #[serde(rename = "t")]
    Truncate(u64),
}

/// The open data directory of a node.
pub struct Storage {
    dir: PathBuf,
    log: File,
    buf: Vec<u8>,
    /// `--bug skip-fsync`: log appends are written but never fsynced.
    skip_fsync: bool,
}

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = io(&tmp, File::create(&tmp))?;
    io(&tmp, f.write_all(bytes))?;
    io(&tmp, f.sync_all())?;
    io(&path, fs::rename(&tmp, &path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    let d = io(dir, File::open(dir))?;
    io(dir, d.sync_all())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read_to_string(path) {
        Ok(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                path: path.to_path_buf(),
                line: e.line(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Reads the node's `meta.json`, checking it belongs to node `id`, or writes it with `base` on first
/// start. Returns the node's first configuration.
fn open_meta(dir: &Path, id: &str, base: Membership) -> Result<Membership> {
    let meta_path = dir.join("meta.json");
    match read_json::<Meta>(&meta_path)? {
        Some(meta) => {
            if meta.id != id {
                return Err(StorageError::Corrupt {
                    path: meta_path,
                    line: 1,
                    message: format!(
                        "field id: this directory belongs to node {:?}, not {id:?}",
                        meta.id
                    ),
                });
            }
            Ok(meta.base)
        }
        None => {
            let meta = Meta {
                id: id.to_string(),
                base,
            };
            write_atomic(
                dir,
                "meta.json",
                &serde_json::to_vec(&meta).expect("meta serialises"),
            )?;
            Ok(meta.base)
        }
    }
}

/// Reads `log.jsonl` after a snapshot at `snap_index`: the entries it holds (truncations applied) and
/// whether its last record was torn by a crash during the write.
fn read_log(log_path: &Path, snap_index: u64) -> Result<(Vec<Entry>, bool)> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut torn = false;
    match fs::read_to_string(log_path) {
        Ok(text) => {
            let lines: Vec<&str> = text.split('\n').collect();
            for (n, line) in lines.iter().enumerate() {
                if line.is_empty() {
                    continue;
                }
                let rec: Record = match serde_json::from_str(line) {
                    Ok(r) => r,
                    // A record cut short by a crash during the write: it was never acknowledged.
                    Err(_) if n + 1 == lines.len() => {
                        torn = true;
                        break;
                    }
                    Err(e) => {
                        return Err(StorageError::Corrupt {
                            path: log_path.to_path_buf(),
                            line: n + 1,
                            message: e.to_string(),
                        })
                    }
                };
                match rec {
                    Record::Truncate(i) => entries.retain(|e| e.index < i),
                    Record::Entry(e) => {
                        if e.index <= snap_index {
                            continue;
                        }
                        let expect = entries.last().map_or(snap_index + 1, |l| l.index + 1);
                        if e.index != expect {
                            if e.index < expect {
                                entries.retain(|x| x.index < e.index);
                            } else {
                                return Err(StorageError::Corrupt {
                                    path: log_path.to_path_buf(),
                                    line: n + 1,
                                    message: format!("field index: expected {expect}, found {}", e.index),
                                });
                            }
                        }
                        entries.push(e);
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(StorageError::Io {
                path: log_path.to_path_buf(),
                source: e,
            })
        }
    }
    Ok((entries, torn))
}

impl Storage {
    /// Opens (creating if needed) the data directory of node `id`. Returns the storage, what was persisted,
    /// and the node's first configuration (`base` on first start, the recorded one afterwards).
    pub fn open(dir: &Path, id: &str, base: Membership) -> Result<(Storage, Persisted, Membership)> {
        io(dir, fs::create_dir_all(dir))?;
        let base = open_meta(dir, id, base)?;
        let hard_state: HardState = read_json(&dir.join("state.json"))?.unwrap_or_default();
        let snapshot: Option<Snapshot> = read_json(&dir.join("snapshot.json"))?;
        let snap_index = snapshot.as_ref().map_or(0, |s| s.index);
        let log_path = dir.join("log.jsonl");
        let (entries, torn) = read_log(&log_path, snap_index)?;
        let existed = log_path.exists();
        let log = io(
            &log_path,
            OpenOptions::new().create(true).append(true).open(&log_path),
        )?;
        if !existed {
            sync_dir(dir)?;
        }
        let mut storage = Storage {
            dir: dir.to_path_buf(),
            log,
            buf: Vec::new(),
            skip_fsync: false,
        };
        if torn {
            storage.rewrite_log(&entries)?;
        }
        Ok((
            storage,
            Persisted {
                hard_state,
                snapshot,
                entries,
            },
            base,
        ))
    }

    /// Switches on `--bug skip-fsync` (see [`Storage::append`]).
    pub fn skip_fsync(&mut self, on: bool) {
        self.skip_fsync = on;
    }

    /// Persists term and vote.
    pub fn save_hard_state(&mut self, hs: &HardState) -> Result<()> {
        write_atomic(
            &self.dir,
            "state.json",
            &serde_json::to_vec(hs).expect("state serialises"),
        )
    }

    /// Appends log records and fsyncs them (once for the whole batch).
    pub fn append(&mut self, ops: &[LogOp]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        for op in ops {
            let rec = match op {
                LogOp::Truncate(i) => Record::Truncate(*i),
                LogOp::Append(e) => Record::Entry(e.clone()),
            };
            serde_json::to_writer(&mut self.buf, &rec).expect("records serialise");
            self.buf.push(b'\n');
        }
        let path = self.dir.join("log.jsonl");
        io(&path, self.log.write_all(&self.buf))?;
        if self.skip_fsync {
            // BUG(skip-fsync): the batch counts as durable once written; the caller goes on to answer (votes,
            // AppendEntries replies, clients) while the entries are only in the OS's page cache. A kill -9
            // cannot lose them, a power cut can.
            return Ok(());
        }
        io(&path, self.log.sync_data())
    }

    /// Persists a snapshot atomically.
    pub fn save_snapshot(&mut self, snap: &Snapshot) -> Result<()> {
        write_atomic(
            &self.dir,
            "snapshot.json",
            &serde_json::to_vec(snap).expect("snapshot serialises"),
        )
    }

    /// Replaces the log file by exactly `entries` (after a snapshot).
    pub fn rewrite_log(&mut self, entries: &[Entry]) -> Result<()> {
        let mut buf = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut buf, &Record::Entry(e.clone())).expect("records serialise");
            buf.push(b'\n');
        }
        write_atomic(&self.dir, "log.jsonl", &buf)?;
        let path = self.dir.join("log.jsonl");
        self.log = io(&path, OpenOptions::new().append(true).open(&path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::EntryData;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: EntryData::Command(format!("c{index}")),
        }
    }

    #[test]
    fn log_survives_reopen_with_truncation_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, p, _) = Storage::open(dir.path(), "n1", Membership::default()).unwrap();
        assert!(p.entries.is_empty());
        s.append(&[
            LogOp::Append(e(1, 1)),
            LogOp::Append(e(2, 1)),
            LogOp::Append(e(3, 1)),
        ])
        .unwrap();
        s.append(&[LogOp::Truncate(2), LogOp::Append(e(2, 2))]).unwrap();
        s.save_hard_state(&HardState {
            term: 2,
            vote: Some("n2".into()),
        })
        .unwrap();
        drop(s);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("log.jsonl"))
            .unwrap();
        f.write_all(b"{\"e\":{\"index\":3,").unwrap();
        let (_, p, _) = Storage::open(dir.path(), "n1", Membership::default()).unwrap();
        assert_eq!(p.entries, vec![e(1, 1), e(2, 2)]);
        assert_eq!(p.hard_state.term, 2);
        let err = Storage::open(dir.path(), "n9", Membership::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("belongs to node"), "{err}");
    }

    #[test]
    fn snapshot_then_rewrite_drops_covered_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _, _) = Storage::open(dir.path(), "n1", Membership::default()).unwrap();
        s.append(&[
            LogOp::Append(e(1, 1)),
            LogOp::Append(e(2, 1)),
            LogOp::Append(e(3, 1)),
        ])
        .unwrap();
        s.save_snapshot(&Snapshot {
            index: 2,
            term: 1,
            ..Snapshot::default()
        })
        .unwrap();
        s.rewrite_log(&[e(3, 1)]).unwrap();
        s.append(&[LogOp::Append(e(4, 1))]).unwrap();
        let (_, p, _) = Storage::open(dir.path(), "n1", Membership::default()).unwrap();
        assert_eq!(p.snapshot.unwrap().index, 2);
        assert_eq!(p.entries, vec![e(3, 1), e(4, 1)]);
    }
}
