//! The history recorder: the only writer of `history.jsonl`.
//!
//! A [`Recorder`] hands out each event's `index` and `time` (nanoseconds since the run's start, from the
//! monotonic clock) under one lock, so the file's order is the order in which events happened and `index`
//! and `time` both grow along it. Lines are serialised into a memory buffer; a background thread writes the
//! buffer out every [`FLUSH_INTERVAL`] (and a writer that finds the buffer large writes it out itself), so
//! at most about 50 ms of history is only in memory. Every write hands the kernel whole lines, so if the
//! harness dies, the file on disk ends with a whole line (or, at worst after a kernel-level short write, a
//! partial last line, which `faultline check` skips with a warning). [`Recorder::finish`] writes the rest
//! and fsyncs the file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use checker::{Event, EventType, Process};
use serde_json::Value;

/// How often the background thread writes buffered events to the file (at most; see the module docs).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// A writer that finds this many bytes buffered writes them out at once instead of waiting for the flusher.
const EAGER_FLUSH_BYTES: usize = 1 << 20;

/// Why the recorder could not create or write the history file.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("{path}: cannot create the history file: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot write the history file: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Where an event landed in the history: its `index` and `time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub index: u64,
    /// Nanoseconds since the run's start.
    pub time: u64,
}

/// Appends events to `history.jsonl`. Cheap to clone: clones share one file, one index counter and one
/// clock. Recording never blocks on disk I/O (except for the rare eager flush of a large buffer) and never
/// fails; a write error is kept and reported by [`Recorder::flush`] and [`Recorder::finish`].
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    start: Instant,
    /// Lock order: `file` before `state`.
    file: Mutex<Option<File>>,
    state: Mutex<State>,
    /// Wakes the flusher early (finish) or tells it to stop.
    wake: Condvar,
}

struct State {
    next_index: u64,
    buf: Vec<u8>,
    error: Option<std::io::Error>,
    stopping: bool,
}

impl Recorder {
    /// Creates (truncates) the history file at `path`; the run's clock starts now.
    pub fn create(path: impl AsRef<Path>) -> Result<Recorder, RecorderError> {
        Recorder::create_at(path, Instant::now())
    }

    /// Creates (truncates) the history file at `path`; `time` counts from `start`.
    pub fn create_at(path: impl AsRef<Path>, start: Instant) -> Result<Recorder, RecorderError> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|source| RecorderError::Create {
            path: path.clone(),
            source,
        })?;
        let shared = Arc::new(Shared {
            path,
            start,
            file: Mutex::new(Some(file)),
            state: Mutex::new(State {
                next_index: 0,
                buf: Vec::with_capacity(64 * 1024),
                error: None,
                stopping: false,
            }),
            wake: Condvar::new(),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("history-flusher".into())
            .spawn(move || flusher(weak))
            .map_err(|source| RecorderError::Create {
                path: shared.path.clone(),
                source,
            })?;
        Ok(Recorder { shared })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The instant the run's clock counts from.
    pub fn start(&self) -> Instant {
        self.shared.start
    }

    /// Nanoseconds since the run's start, as `time` would be now.
    pub fn now(&self) -> u64 {
        nanos_since(self.shared.start)
    }

    /// Records that client `process` invokes `f` on `key` with argument `value`.
    pub fn invoke(&self, process: u64, f: &str, key: Option<&str>, value: Value) -> Stamp {
        self.record(Process::Client(process), EventType::Invoke, f, key, value, None)
    }

    /// Records how client `process`'s pending operation ended (`kind` is ok, fail or info).
    pub fn complete(
        &self,
        process: u64,
        kind: EventType,
        f: &str,
        key: Option<&str>,
        value: Value,
        error: Option<String>,
    ) -> Stamp {
        self.record(Process::Client(process), kind, f, key, value, error)
    }

    /// Records a nemesis event (process `"nemesis"`), e.g. `nemesis(Info, "start-partition", json!({..}))`.
    pub fn nemesis(&self, kind: EventType, f: &str, value: Value) -> Stamp {
        self.record(Process::Nemesis, kind, f, None, value, None)
    }

    /// Records any event; `index` and `time` are assigned here.
    pub fn record(
        &self,
        process: Process,
        kind: EventType,
        f: &str,
        key: Option<&str>,
        value: Value,
        error: Option<String>,
    ) -> Stamp {
        let mut event = Event {
            index: 0,
            time: 0,
            process,
            kind,
            f: f.to_string(),
            key: key.map(str::to_string),
            value,
            error,
        };
        let large = {
            let mut state = lock(&self.shared.state);
            event.index = state.next_index;
            event.time = nanos_since(self.shared.start);
            state.next_index += 1;
            // Serialising an Event cannot fail: its keys are strings and its values are JSON values.
            if serde_json::to_writer(&mut state.buf, &event).is_ok() {
                state.buf.push(b'\n');
            }
            state.buf.len() >= EAGER_FLUSH_BYTES
        };
        if large {
            self.shared.write_out(false);
        }
        Stamp {
            index: event.index,
            time: event.time,
        }
    }

    /// Writes buffered events to the file now (no fsync). Reports the first write error seen so far.
    pub fn flush(&self) -> Result<(), RecorderError> {
        self.shared.write_out(false);
        self.shared.take_error()
    }

    /// Writes everything, fsyncs the file and stops the flusher. Events recorded afterwards (by a straggling
    /// clone) are still written by later flushes and when the last clone is dropped, but not fsynced.
    pub fn finish(&self) -> Result<(), RecorderError> {
        {
            let mut state = lock(&self.shared.state);
            state.stopping = true;
        }
        self.shared.wake.notify_all();
        self.shared.write_out(true);
        self.shared.take_error()
    }

    /// How many events were recorded so far.
    pub fn len(&self) -> u64 {
        lock(&self.shared.state).next_index
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shared {
    /// Moves the buffer to the file; with `sync`, fsyncs it too.
    fn write_out(&self, sync: bool) {
        let mut file = lock(&self.file);
        let buf = {
            let mut state = lock(&self.state);
            if state.buf.is_empty() && !sync {
                return;
            }
            std::mem::replace(&mut state.buf, Vec::with_capacity(64 * 1024))
        };
        let Some(f) = file.as_mut() else { return };
        let mut result = f.write_all(&buf);
        if sync && result.is_ok() {
            result = f.sync_all();
        }
        if let Err(e) = result {
            let mut state = lock(&self.state);
            if state.error.is_none() {
                state.error = Some(e);
            }
        }
    }

    fn take_error(&self) -> Result<(), RecorderError> {
        match lock(&self.state).error.take() {
            Some(source) => Err(RecorderError::Write {
                path: self.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last clone is gone: whatever is still buffered goes to the file.
        self.write_out(false);
    }
}

/// The background flusher: writes the buffer every FLUSH_INTERVAL until the recorder finishes or is dropped.
fn flusher(weak: Weak<Shared>) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        {
            let state = lock(&shared.state);
            if state.stopping {
                return;
            }
            let (state, _) = shared
                .wake
                .wait_timeout(state, FLUSH_INTERVAL)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if state.stopping {
                return;
            }
        }
        shared.write_out(false);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves consistent data here (whole lines only).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn nanos_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
