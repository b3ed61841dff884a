//! Histories: the events a run recorded, in the order they happened.
//!
//! One [`Event`] per line of `history.jsonl`, with Jepsen's semantics: an `invoke` opens an operation on a
//! process; the next `ok`, `fail` or `info` of the same process completes it. See `docs/history.md`.

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
}

/// Where a history was read from, so errors can name the file and line.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub path: std::path::PathBuf,
    /// For each event, the 1-based line (or for EDN, the line where its map starts).
    pub lines: Vec<usize>,
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
