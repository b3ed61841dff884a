//! Histories: the events a run recorded, in the order they happened.
//!
//! One [`Event`] per line of `history.jsonl`, with Jepsen's semantics: an `invoke` opens an operation on a
//! process; the next `ok`, `fail` or `info` of the same process completes it. See `docs/history.md`.
//!
//! Three formats are read ([`Format`]): faultline's JSON Lines, Jepsen's EDN (`history.edn`, Knossos and
//! Porcupine data) and Jepsen's text logs (`INFO  jepsen.util - 3\t:invoke\t:write\t4`). Only JSON Lines is
//! written. [`History::operations`] pairs invokes with completions. This module does not judge whether a
//! history is linearizable, and it never prints: warnings are returned in [`Source::warnings`].

mod edn;
mod error;
mod format;
mod jepsen_log;
mod jsonl;
mod pairing;
mod raw;

pub use error::HistoryError;
pub use format::{read_bytes, read_path, write_jsonl, Format};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an event says about its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The operation starts.
    Invoke,
    /// It took effect and its result is known.
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// Indeterminate: it may take effect at any time after its invoke, or never.
    Info,
}

/// Who performed an event: a client process (one logical thread), or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) if n.as_u64().is_some() => Ok(Process::Client(n.as_u64().unwrap_or(0))),
            Value::String(s) if s == "nemesis" => Ok(Process::Nemesis),
            other => Err(serde::de::Error::custom(format!(
                "process must be a non-negative integer or \"nemesis\", not {other}"
            ))),
        }
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the whole history, from 0.
    pub index: u64,
    /// Nanoseconds since the run started (monotonic).
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The operation's function: `read`, `write`, `cas`, `append`, ... or a nemesis action.
    pub f: String,
    /// The independent key, when the workload has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Argument (on invoke) or result (on ok); `null` when there is none.
    #[serde(default)]
    pub value: Value,
    /// Why an operation failed or is indeterminate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A whole history, events in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub events: Vec<Event>,
    /// The file it came from, when it was parsed from one.
    pub source: Option<Source>,
}

impl History {
    /// A history built in memory, with no source file.
    pub fn new(events: Vec<Event>) -> History {
        History { events, source: None }
    }

    /// Pairs each invoke with the next completion of the same process (Jepsen's semantics).
    ///
    /// Operations come in invoke order. `ok` copies its value into `output`; `fail` is kept as
    /// [`Outcome::Fail`]; an `info` completion, or no completion at all, gives [`Outcome::Info`] with
    /// `ret: None`. Nemesis events, and `info` events of a process with no open invoke, are skipped.
    ///
    /// Errors on an inconsistent history: a completion with no open invoke, a second invoke while one is
    /// open on that process, time going backwards within a process, a completion whose `f` or `key` differs
    /// from its invoke's. Times may go backwards *across* processes (Jepsen reads a worker's clock, then
    /// appends under a lock; Knossos' `mutex/bad/etcd.edn` does this): real-time order is the order of
    /// the events, not their `time`.
    pub fn operations(&self) -> Result<Vec<Operation>, HistoryError> {
        pairing::pair(self, true)
    }

    /// The 1-based line of the event at `position` in [`History::events`], when the history came from a file.
    pub fn line_of(&self, position: usize) -> Option<usize> {
        self.source.as_ref().and_then(|s| s.lines.get(position).copied())
    }

    /// The position in [`History::events`] of the event whose `index` is `index`.
    pub fn position_of_index(&self, index: u64) -> Option<usize> {
        // Indices are usually the positions themselves; fall back to a scan otherwise.
        let guess = usize::try_from(index).ok()?;
        if self.events.get(guess).is_some_and(|e| e.index == index) {
            return Some(guess);
        }
        self.events.iter().position(|e| e.index == index)
    }

    /// What the parser noticed but tolerated (e.g. a trailing partial line skipped), for the caller to print.
    pub fn warnings(&self) -> &[String] {
        self.source.as_ref().map(|s| s.warnings.as_slice()).unwrap_or(&[])
    }
}

/// Where a history was read from, so errors can name the file and line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Source {
    pub path: std::path::PathBuf,
    /// For each event, the 1-based line (or for EDN, the line where its map starts).
    pub lines: Vec<usize>,
    /// The format it was parsed as (after auto-detection).
    pub format: Format,
    /// Problems the parser tolerated, one line each, naming file and line.
    pub warnings: Vec<String>,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Fail,
    /// Completed with `info`, or never completed: it may take effect at any time after its invoke, or never.
    Info,
}

/// An invoke paired with its completion: what the checkers reason about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Client process that ran it.
    pub process: u64,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The invoke's value (the argument).
    pub input: Value,
    /// The completion's value (`ok`: the result; otherwise what the completion carried, or null).
    pub output: Value,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `index` of the invoke event.
    pub invoke_index: u64,
    /// `index` of the completion event; None when it never completed.
    pub complete_index: Option<u64>,
    /// `time` of the invoke.
    pub call: u64,
    /// `time` of the completion; None when it never completed.
    pub ret: Option<u64>,
}
