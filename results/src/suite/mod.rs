//! Suites: the typed record of one `faultline suite` run (`suite.json`), how its rows are judged against
//! their expectations, and what is rendered from it: `summary.html` (the matrix, detection rates, false
//! alarms and the trend over previous suite runs of the same name), JUnit XML, and the Markdown detection
//! table (`faultline suite report`).
//!
//! Words: a **row** is one combination of DB spec, workload, nemesis and node arguments with an
//! expectation; a **cell** is one row on one seed, i.e. one `faultline run`. The harness writes the record
//! (`harness::suite`); this module only reads and renders it.

mod cases;
mod judge;
mod links;
mod markdown;
mod record;
mod summary_html;
mod trend;

pub use cases::junit;
pub use judge::{judge, judge_row, RowJudgement, RowStatus, SuiteJudgement};
pub(crate) use links::suites_section;
pub use links::{suite_links, SuiteLink};
pub use markdown::render_markdown;
pub use record::{
    cell_facts, CellFacts, CellOutcome, Counts, Expectation, RunningCell, Share, SuiteCell, SuiteRecord,
    SuiteRow, SuiteStatus, SUITES_DIR, SUITE_FILE, SUMMARY_FILE,
};
pub use summary_html::{render_summary, write_summary};
pub use trend::{previous_records, TrendPoint};

use crate::run_dir::StoreError;
use std::path::{Path, PathBuf};

/// What can go wrong reading or writing a suite record.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A `suite.json` that is not a suite record.
    #[error("{}: not a suite record: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Shards that do not belong to one suite.
    #[error("{0}")]
    Mismatch(String),
}

/// The folder of one suite run: `<store>/suites/<name>/<UTC time>/`.
pub fn suite_dir(store: &Path, name: &str, timestamp: &str) -> PathBuf {
    store.join(SUITES_DIR).join(name).join(timestamp)
}

/// Joins shards' records (same suite name, same seeds) into one: the union of their rows and cells.
/// A cell present in two shards is an error (the shards overlap).
pub fn merge(records: &[SuiteRecord]) -> Result<SuiteRecord, SuiteError> {
    let Some(first) = records.first() else {
        return Err(SuiteError::Mismatch("nothing to merge".into()));
    };
    let mut out = first.clone();
    out.shard = None;
    out.planned.clear();
    out.cells.clear();
    out.rows.clear();
    out.running = None;
    out.merged_from = Vec::new();
    for r in records {
        if r.name != first.name {
            return Err(SuiteError::Mismatch(format!(
                "suite {:?} and suite {:?} are different suites",
                first.name, r.name
            )));
        }
        if r.seeds != first.seeds {
            return Err(SuiteError::Mismatch(format!(
                "suite {}: the shards ran different seeds ({:?} and {:?})",
                r.name, first.seeds, r.seeds
            )));
        }
        for row in &r.rows {
            match out.rows.iter().find(|x| x.id == row.id) {
                Some(x) if x != row => {
                    return Err(SuiteError::Mismatch(format!(
                        "row {}: the shards describe it differently (different suite files?)",
                        row.id
                    )))
                }
                Some(_) => {}
                None => out.rows.push(row.clone()),
            }
        }
        for key in &r.planned {
            if out.planned.contains(key) {
                return Err(SuiteError::Mismatch(format!(
                    "cell {} seed {} is in two shards",
                    key.0, key.1
                )));
            }
            out.planned.push(key.clone());
        }
        out.cells.extend(r.cells.iter().cloned());
        out.started_at = out.started_at.clone().min(r.started_at.clone());
        out.ended_at = match (&out.ended_at, &r.ended_at) {
            (Some(a), Some(b)) => Some(a.clone().max(b.clone())),
            _ => None,
        };
        out.status = out.status.worst(r.status);
        out.merged_from.push(match r.shard {
            Some((k, n)) => format!("shard {k}/{n} started {}", r.started_at),
            None => format!("started {}", r.started_at),
        });
    }
    // Keep the rows' order of the suite file (every shard records every row); cells follow their rows, then
    // seeds.
    let order: Vec<String> = out.rows.iter().map(|r| r.id.clone()).collect();
    let seeds = out.seeds.clone();
    let pos = |row: &str, seed: u64| {
        (
            order.iter().position(|x| x == row).unwrap_or(usize::MAX),
            seeds.iter().position(|x| *x == seed).unwrap_or(usize::MAX),
        )
    };
    out.planned.sort_by_key(|(row, seed)| pos(row, *seed));
    out.cells.sort_by_key(|c| pos(&c.row, c.seed));
    Ok(out)
}
