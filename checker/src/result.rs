//! What a check concludes.

use serde::{Deserialize, Serialize};

/// The answer of a checker, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The property holds.
    Valid,
    /// The checker could not decide in its time or memory budget.
    Unknown,
    /// The property is violated; there is a counterexample.
    Invalid,
}

impl Verdict {
    /// Jepsen's exit codes: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
        }
    }

    /// The worse of two verdicts.
    pub fn worst(self, other: Verdict) -> Verdict {
        self.max(other)
    }
}

use crate::history::Operation;
use serde_json::Value;

/// Everything the checkers concluded about one history (`results.json`'s `checks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The worst verdict of the checkers below.
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linearizability: Option<LinearizabilityResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
}

/// The linearizability checker's answer for a whole history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearizabilityResult {
    pub verdict: Verdict,
    /// Model name, e.g. `cas-register`.
    pub model: String,
    /// One entry per independent key (one entry with `key: None` when the history is not split).
    pub keys: Vec<KeyResult>,
    pub elapsed_ms: f64,
}

/// The answer for one independent key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyResult {
    pub key: Option<String>,
    pub verdict: Verdict,
    /// Operations of this key that the search considered.
    pub ops: usize,
    pub elapsed_ms: f64,
    /// Why the verdict is `unknown` (time limit, memory bound, cancelled because another key failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How far an undecided search got (only when `unknown` after the search began).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
}

/// How far the search of an undecided key got before it gave up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Operations in the longest linearizable prefix the search built.
    pub longest_prefix: usize,
    /// Operations the search had to linearize: every one that completed `ok` (or is a failed cas that
    /// observed a mismatch); indeterminate ones may be left out, so a prefix can also hold some of those.
    pub required: usize,
    /// Search steps taken.
    pub steps: u64,
}

/// Why a key is not linearizable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The operation that no linearization of the longest prefixes can place.
    pub op: Operation,
    /// The operations of this key around the failure (a bounded window), in invoke order: what a report draws.
    pub window: Vec<Operation>,
    /// The longest linearizable prefixes found, longest first (a few of them).
    pub prefixes: Vec<Prefix>,
}

/// A linearizable prefix: operations in linearization order with the model state after each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prefix {
    /// `invoke_index` of each operation, in linearization order.
    pub ops: Vec<u64>,
    /// The model state after each of `ops` (same length).
    pub states: Vec<Value>,
    /// How many operations were linearized before the first of `ops` (long prefixes keep only their end).
    #[serde(default)]
    pub omitted: usize,
    /// `invoke_index` of the operation that completed while this prefix could not be extended to include it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<u64>,
}

/// The availability checker's answer: how long the system served nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AvailabilityResult {
    pub verdict: Verdict,
    /// The longest window with no `ok` completion, in nanoseconds, and where it was.
    pub longest_gap_ns: u64,
    pub longest_gap_start: u64,
    /// For each heal (a nemesis event that ends a fault), the time until the first `ok` after it.
    pub recoveries: Vec<Recovery>,
    /// The limit on recovery after the final heal, in nanoseconds.
    pub recovery_limit_ns: u64,
    /// Gaps between `ok` completions in which a live, connected majority existed for longer than the limit
    /// (judged only when the cluster's size is known).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stalls: Vec<Stall>,
}

/// A gap between two `ok` completions in which a live, connected majority (no network fault in force, only
/// a minority killed or paused) existed for longer than the recovery limit in total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stall {
    /// The `ok` completion (or the first event) that begins the gap.
    pub start: u64,
    /// The `ok` completion (or the last event) that ends it.
    pub end: u64,
    /// Nanoseconds of the gap during which a live, connected majority existed.
    pub majority_ns: u64,
}

/// Recovery after one heal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// Time of the heal event.
    pub heal_time: u64,
    /// The nemesis `f` that healed (e.g. `stop-partition`).
    pub f: String,
    /// Nanoseconds to the first `ok` completion of an operation invoked after the heal; None if none came.
    pub recovery_ns: Option<u64>,
}

/// Counts and latencies.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Stats {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Per function (`read`, `write`, ...): counts by outcome.
    pub by_f: std::collections::BTreeMap<String, OutcomeCounts>,
    /// Latency quantiles of completed operations, nanoseconds: p50, p95, p99, max.
    pub latency_ns: Quantiles,
    /// `ok` operations per second over the whole history.
    pub ok_per_sec: f64,
    /// Time from first to last event, nanoseconds.
    pub duration_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OutcomeCounts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Quantiles {
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}
