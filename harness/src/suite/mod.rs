//! Suites (`faultline suite`): a matrix of runs with expectations, run one cell at a time through the same
//! [`crate::run`] as `faultline run`, recorded as each cell ends (`results::suite::SuiteRecord`), resumable
//! after a kill, shardable over machines.
//!
//! - [`file`]: the suite file (TOML) and its line-pointing errors;
//! - [`plan`]: rows expanded and checked before anything starts, seeds, `--only`, `--shard`;
//! - [`execute`]: the loop, signals, `--time-budget`, `--resume` (healing what a killed suite left), the
//!   progress lines.

pub mod execute;
pub mod file;
pub mod plan;

pub use execute::{run_suite, SuiteOptions, SuiteOutcome, SuiteRunError};
pub use file::LoadedSuite;
pub use plan::{parse_seeds, parse_shard, plan, Plan, PlanOptions};

/// A bad suite file or flag, as one line `file:line: field: reason` (exit 254).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{line}: {field}{reason}", line = line.map(|l| format!(":{l}")).unwrap_or_default(),
        field = if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct SuiteFileError {
    /// The suite file, or `command line` for a flag.
    pub file: String,
    pub line: Option<usize>,
    pub field: String,
    pub reason: String,
}

impl SuiteFileError {
    /// An error about a command-line flag.
    pub fn flag(flag: &str, reason: impl Into<String>) -> SuiteFileError {
        SuiteFileError {
            file: "command line".into(),
            line: None,
            field: flag.into(),
            reason: reason.into(),
        }
    }
}
