//! # checker
//!
//! What a history means and whether it is linearizable.
//!
//! This crate holds the history types and parsers ([`history`]: faultline's JSON Lines, Jepsen's EDN and
//! Jepsen's text logs), the sequential specifications of the systems under test ([`model`]), the
//! linearizability search ([`linearizability`]), and the checkers that read a history for other properties
//! ([`availability`], [`stats`]). [`result`] holds what they conclude; [`check`] runs them all.
//!
//! It is **not** a test runner: it has no async runtime and does no network I/O; its only I/O is reading
//! history files. A user can run it alone as `faultline check history.jsonl`.

pub mod availability;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod result;
pub mod stats;

pub use history::{Event, EventType, History, HistoryError, Operation, Outcome, Process};
pub use linearizability::Options;
pub use model::ModelKind;
pub use result::{CheckReport, Verdict};

use std::time::Duration;

/// What [`check`] runs and how.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub linearizability: linearizability::Options,
    /// The availability checker's limit on recovery after the final heal (and on stalls).
    pub recovery_limit: Duration,
    /// The number of nodes of the cluster the history was recorded on, when known: then availability also
    /// fails the run on a stall (see [`availability::check_cluster`]).
    pub cluster_size: Option<usize>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            linearizability: Options::default(),
            recovery_limit: Duration::from_secs(30),
            cluster_size: None,
        }
    }
}

/// Runs every checker on `history`: linearizability (per key), availability and stats.
///
/// The report's verdict is the linearizability verdict: availability and stats describe the run, and a
/// caller that wants availability to count looks at `report.availability`. Errors name the file and line
/// of the event at fault (an inconsistent history, an operation the model does not know).
pub fn check(history: &History, options: &CheckOptions) -> Result<CheckReport, HistoryError> {
    let ops = history.operations()?;
    let lin = linearizability::check(&ops, &options.linearizability).map_err(|e| model_error(history, e))?;
    let availability = match options.cluster_size {
        Some(n) => availability::check_cluster(history, options.recovery_limit, n),
        None => availability::check(history, options.recovery_limit),
    };
    let stats = stats::compute(history);
    Ok(CheckReport {
        verdict: lin.verdict,
        linearizability: Some(lin),
        availability: Some(availability),
        stats: Some(stats),
    })
}

/// A model error as a history error at the event's line.
pub fn model_error(history: &History, e: model::ModelError) -> HistoryError {
    let pos = history.position_of_index(e.invoke_index).unwrap_or(0);
    if e.field == "initial" {
        return HistoryError {
            path: None,
            line: None,
            position: None,
            field: Some("--initial".into()),
            message: e.message,
        };
    }
    HistoryError::at(history, pos, e.field, e.message)
}
