//! `suite.json`: the typed record of one suite run, written by the harness as each cell ends.

use super::SuiteError;
use checker::{CheckReport, Verdict};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The folder of the store that holds suite runs: `<store>/suites/<name>/<UTC time>/`.
pub const SUITES_DIR: &str = "suites";
/// The record's file name in a suite run's folder.
pub const SUITE_FILE: &str = "suite.json";
/// The summary page's file name in a suite run's folder.
pub const SUMMARY_FILE: &str = "summary.html";

/// A share of seeds, `found` of `of` (4 of 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub found: u32,
    pub of: u32,
}

impl Share {
    /// How many of `seeds` seeds must find the bug: the share scaled up (4 of 5 on 10 seeds: 8).
    pub fn needed(&self, seeds: usize) -> usize {
        if self.of == 0 {
            return seeds;
        }
        (seeds as u64 * self.found as u64).div_ceil(self.of as u64) as usize
    }
}

/// What a row must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum Expectation {
    /// A correct system: valid on every seed (any invalid seed is a false alarm).
    Valid,
    /// A system with a bug: found invalid on at least this share of the seeds.
    Invalid { at_least: Share },
}

impl Expectation {
    /// `valid` or `invalid on at least 4 of 5 seeds`.
    pub fn describe(&self) -> String {
        match self {
            Expectation::Valid => "valid on every seed".into(),
            Expectation::Invalid { at_least } => {
                format!("invalid on at least {} of {} seeds", at_least.found, at_least.of)
            }
        }
    }
}

/// One row of the matrix: what runs (without the seed) and what it must show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteRow {
    /// Unique in the suite: the suite file's row name, plus the parameters that vary inside the row.
    pub id: String,
    /// The DB spec's `name` (`raftkv`, `etcd`).
    pub db: String,
    /// Where the spec came from (a path, or the embedded raftkv spec).
    pub spec: String,
    pub workload: String,
    /// The `--nemesis` list (`partition,kill,pause`, `none`).
    pub nemesis: String,
    pub node_args: Vec<String>,
    pub nodes: usize,
    pub concurrency: usize,
    pub time_limit_s: f64,
    pub expect: Expectation,
}

/// A finished cell's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellOutcome {
    Valid,
    Invalid,
    Unknown,
    /// The run did not complete (a node never became ready, ...): no verdict.
    RunFailed,
}

impl CellOutcome {
    pub fn from_verdict(v: Verdict) -> CellOutcome {
        match v {
            Verdict::Valid => CellOutcome::Valid,
            Verdict::Invalid => CellOutcome::Invalid,
            Verdict::Unknown => CellOutcome::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CellOutcome::Valid => "valid",
            CellOutcome::Invalid => "invalid",
            CellOutcome::Unknown => "unknown",
            CellOutcome::RunFailed => "run failed",
        }
    }
}

/// ok, fail and info completions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

/// One finished cell: one run of a row on a seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteCell {
    /// The row's id.
    pub row: String,
    pub seed: u64,
    pub outcome: CellOutcome,
    /// Whether the outcome is what the row expects of one seed (a found bug, or a valid correct system).
    pub as_expected: bool,
    /// `linearizability`, `availability`: the checkers that failed the run.
    pub caught_by: Vec<String>,
    /// Seconds into the history of the first anomaly (the counterexample's failing operation, else the
    /// first stall, else the final heal not recovered from).
    pub first_anomaly_s: Option<f64>,
    pub counts: Option<Counts>,
    /// Completed operations per second.
    pub ops_per_s: Option<f64>,
    /// Seconds the whole run took (set-up to report).
    pub wall_s: f64,
    /// The run folder relative to the store root (`<test-name>/<timestamp>`), when one was created.
    pub run: Option<String>,
    /// One line: the verdict and why, or the run's error.
    pub verdict_line: String,
    pub finished_at: String,
}

/// How far a suite run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuiteStatus {
    /// Every planned cell finished.
    Complete,
    /// Cells are still running (or the suite was killed: `--resume` continues it).
    Running,
    /// `--time-budget` ran out before every cell ran.
    OutOfTime,
    /// Stopped by SIGINT/SIGTERM/SIGHUP after healing the running cell.
    Interrupted,
}

impl SuiteStatus {
    /// The less finished of two (for merged shards).
    pub fn worst(self, other: SuiteStatus) -> SuiteStatus {
        self.max(other)
    }
}

/// The cell running now (written before it starts, so `--resume` can heal what a kill left).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningCell {
    pub row: String,
    pub seed: u64,
    /// The run's test name: its folders are `<store>/<test_name>/<timestamp>/`.
    pub test_name: String,
    pub started_at: String,
}

/// `suite.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteRecord {
    /// 1.
    pub format: u32,
    pub name: String,
    pub description: String,
    /// The suite file as given.
    pub file: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub status: SuiteStatus,
    /// `(k, n)` for `--shard k/n`.
    pub shard: Option<(u32, u32)>,
    pub seeds: Vec<u64>,
    /// Every row of the suite (also in a shard: a shard plans only some of their cells).
    pub rows: Vec<SuiteRow>,
    /// The cells this run (or shard) set out to run, as (row id, seed), in order.
    pub planned: Vec<(String, u64)>,
    /// The finished cells, in the order they finished.
    pub cells: Vec<SuiteCell>,
    pub running: Option<RunningCell>,
    /// For a merged record: the shards it was made from.
    #[serde(default)]
    pub merged_from: Vec<String>,
}

impl SuiteRecord {
    /// Reads a `suite.json` (or the one in a suite run's folder).
    pub fn load(path: &Path) -> Result<SuiteRecord, SuiteError> {
        let path = if path.is_dir() {
            path.join(SUITE_FILE)
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&path).map_err(|source| crate::run_dir::StoreError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| SuiteError::Parse { path, source })
    }

    /// Writes `suite.json` into `dir` atomically (readers never see half a record).
    pub fn save(&self, dir: &Path) -> Result<(), SuiteError> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        crate::run_dir::write_atomically(&dir.join(SUITE_FILE), text.as_bytes())?;
        Ok(())
    }

    /// The row of a cell.
    pub fn row(&self, id: &str) -> Option<&SuiteRow> {
        self.rows.iter().find(|r| r.id == id)
    }

    /// The finished cell of a row and seed.
    pub fn cell(&self, row: &str, seed: u64) -> Option<&SuiteCell> {
        self.cells.iter().find(|c| c.row == row && c.seed == seed)
    }

    /// Planned cells that have not finished.
    pub fn unfinished(&self) -> Vec<(String, u64)> {
        self.planned
            .iter()
            .filter(|(r, s)| self.cell(r, *s).is_none())
            .cloned()
            .collect()
    }
}

/// What a check report says about where a run went wrong.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellFacts {
    pub caught_by: Vec<String>,
    pub first_anomaly_s: Option<f64>,
    pub counts: Option<Counts>,
    pub ops_per_s: Option<f64>,
}

/// Which checkers failed a run, the time of its first anomaly, its counts and throughput.
pub fn cell_facts(report: &CheckReport) -> CellFacts {
    let mut f = CellFacts::default();
    let mut first: Option<u64> = None;
    if let Some(l) = &report.linearizability {
        let bad: Vec<_> = l.keys.iter().filter(|k| k.verdict == Verdict::Invalid).collect();
        if !bad.is_empty() || l.verdict == Verdict::Invalid {
            f.caught_by.push("linearizability".into());
        }
        first = bad
            .iter()
            .filter_map(|k| k.counterexample.as_ref().map(|c| c.op.call))
            .min();
    }
    if let Some(a) = &report.availability {
        if a.verdict == Verdict::Invalid {
            f.caught_by.push("availability".into());
            if first.is_none() {
                first = a.stalls.first().map(|s| s.start).or_else(|| {
                    a.recoveries
                        .iter()
                        .filter(|r| !matches!(r.recovery_ns, Some(n) if n <= a.recovery_limit_ns))
                        .map(|r| r.heal_time)
                        .max()
                });
            }
        }
    }
    f.first_anomaly_s = first.map(|ns| ns as f64 / 1e9);
    if let Some(s) = &report.stats {
        f.counts = Some(Counts {
            ok: s.ok,
            fail: s.fail,
            info: s.info,
        });
        if s.duration_ns > 0 {
            f.ops_per_s = Some((s.ok + s.fail + s.info) as f64 / (s.duration_ns as f64 / 1e9));
        }
    }
    f
}
