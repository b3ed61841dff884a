//! Judging rows against their expectations, and the suite's exit code.
//!
//! A row expected `valid` is met when every seed is valid, and fails on any invalid seed (a false alarm). A
//! row expected `invalid` on at least `k of n` seeds is met when at least `ceil(k/n x seeds)` seeds found the
//! bug, and fails when even counting its unknown, failed and missing cells it could not get there. Anything
//! between is unknown: the row could not be decided.

use super::record::{CellOutcome, Expectation, SuiteRecord, SuiteRow};

/// A row's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowStatus {
    Met,
    /// Some cell is unknown, failed or did not run, and the row is not already lost.
    Undecided,
    NotMet,
}

impl RowStatus {
    pub fn name(self) -> &'static str {
        match self {
            RowStatus::Met => "as expected",
            RowStatus::Undecided => "undecided",
            RowStatus::NotMet => "NOT as expected",
        }
    }
}

/// One row's judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct RowJudgement {
    pub row: String,
    pub status: RowStatus,
    /// Seeds the row runs on.
    pub seeds: usize,
    /// Seeds found invalid.
    pub found: usize,
    /// Seeds that must be found invalid (0 for a row expected valid).
    pub needed: usize,
    pub valid: usize,
    pub unknown: usize,
    pub run_failed: usize,
    /// Seeds with no finished cell.
    pub missing: usize,
    /// Invalid seeds of a row expected valid.
    pub false_alarms: usize,
    /// Median seconds to the first anomaly over the found seeds.
    pub median_first_anomaly_s: Option<f64>,
    /// One line: `found 4 of 5 (needed 4), median 23 s to first anomaly`.
    pub text: String,
}

/// The whole suite's judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteJudgement {
    pub rows: Vec<RowJudgement>,
}

impl SuiteJudgement {
    /// 0 every row met; 1 some row not met; 3 (none not met) some run failed; 2 (neither) some row
    /// undecided.
    pub fn exit_code(&self) -> u8 {
        if self.rows.iter().any(|r| r.status == RowStatus::NotMet) {
            1
        } else if self.rows.iter().any(|r| r.run_failed > 0) {
            3
        } else if self.rows.iter().any(|r| r.status == RowStatus::Undecided) {
            2
        } else {
            0
        }
    }

    pub fn row(&self, id: &str) -> Option<&RowJudgement> {
        self.rows.iter().find(|r| r.row == id)
    }
}

/// Judges every row of a record, over the seeds each row was planned on (all seeds for a merged or whole
/// suite; a shard judges only the rows it ran, on the seeds it ran them).
pub fn judge(record: &SuiteRecord) -> SuiteJudgement {
    let rows = record
        .rows
        .iter()
        .filter_map(|row| {
            let seeds: Vec<u64> = record
                .planned
                .iter()
                .filter(|(r, _)| *r == row.id)
                .map(|(_, s)| *s)
                .collect();
            (!seeds.is_empty()).then(|| judge_row(record, row, &seeds))
        })
        .collect();
    SuiteJudgement { rows }
}

/// Judges one row over `seeds`.
pub fn judge_row(record: &SuiteRecord, row: &SuiteRow, seeds: &[u64]) -> RowJudgement {
    let mut j = RowJudgement {
        row: row.id.clone(),
        status: RowStatus::Met,
        seeds: seeds.len(),
        found: 0,
        needed: 0,
        valid: 0,
        unknown: 0,
        run_failed: 0,
        missing: 0,
        false_alarms: 0,
        median_first_anomaly_s: None,
        text: String::new(),
    };
    let mut firsts = Vec::new();
    for &seed in seeds {
        match record.cell(&row.id, seed).map(|c| (c.outcome, c.first_anomaly_s)) {
            Some((CellOutcome::Valid, _)) => j.valid += 1,
            Some((CellOutcome::Invalid, first)) => {
                j.found += 1;
                firsts.extend(first);
            }
            Some((CellOutcome::Unknown, _)) => j.unknown += 1,
            Some((CellOutcome::RunFailed, _)) => j.run_failed += 1,
            None => j.missing += 1,
        }
    }
    let undecided = j.unknown + j.run_failed + j.missing;
    j.median_first_anomaly_s = median(&mut firsts);
    match row.expect {
        Expectation::Valid => {
            j.false_alarms = j.found;
            j.status = if j.found > 0 {
                RowStatus::NotMet
            } else if undecided > 0 {
                RowStatus::Undecided
            } else {
                RowStatus::Met
            };
        }
        Expectation::Invalid { at_least } => {
            j.needed = at_least.needed(seeds.len());
            j.status = if j.found >= j.needed {
                RowStatus::Met
            } else if j.found + undecided >= j.needed {
                RowStatus::Undecided
            } else {
                RowStatus::NotMet
            };
        }
    }
    j.text = describe(&j, row.expect);
    j
}

fn describe(j: &RowJudgement, expect: Expectation) -> String {
    let mut t = match expect {
        Expectation::Valid if j.found == 0 => format!("valid on {} of {}", j.valid, j.seeds),
        Expectation::Valid => format!(
            "{} false alarm{} of {}",
            j.found,
            if j.found == 1 { "" } else { "s" },
            j.seeds
        ),
        Expectation::Invalid { .. } => {
            format!("found {} of {} (needed {})", j.found, j.seeds, j.needed)
        }
    };
    if let Some(m) = j.median_first_anomaly_s {
        t.push_str(&format!(", median {m:.1} s to first anomaly"));
    }
    for (n, what) in [
        (j.unknown, "unknown"),
        (j.run_failed, "run failed"),
        (j.missing, "not run"),
    ] {
        if n > 0 {
            t.push_str(&format!(", {n} {what}"));
        }
    }
    t
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::record::*;

    fn row(id: &str, expect: Expectation) -> SuiteRow {
        SuiteRow {
            id: id.into(),
            db: "raftkv".into(),
            spec: "dbs/raftkv.toml".into(),
            workload: "cas-register".into(),
            nemesis: "partition".into(),
            node_args: vec![],
            nodes: 3,
            concurrency: 4,
            time_limit_s: 10.0,
            expect,
        }
    }

    fn cell(row: &str, seed: u64, outcome: CellOutcome, first: Option<f64>) -> SuiteCell {
        SuiteCell {
            row: row.into(),
            seed,
            outcome,
            as_expected: false,
            caught_by: vec![],
            first_anomaly_s: first,
            counts: None,
            ops_per_s: None,
            wall_s: 1.0,
            run: None,
            verdict_line: String::new(),
            finished_at: String::new(),
        }
    }

    fn record(rows: Vec<SuiteRow>, seeds: Vec<u64>, cells: Vec<SuiteCell>) -> SuiteRecord {
        let planned = rows
            .iter()
            .flat_map(|r| seeds.iter().map(move |s| (r.id.clone(), *s)))
            .collect();
        SuiteRecord {
            format: 1,
            name: "t".into(),
            description: String::new(),
            file: "t.toml".into(),
            started_at: "20261204T000000Z".into(),
            ended_at: None,
            status: SuiteStatus::Complete,
            shard: None,
            seeds,
            rows,
            planned,
            cells,
            running: None,
            merged_from: vec![],
        }
    }

    const FOUR_OF_FIVE: Expectation = Expectation::Invalid {
        at_least: Share { found: 4, of: 5 },
    };

    #[test]
    fn shares_scale_with_the_seed_count() {
        let s = Share { found: 4, of: 5 };
        assert_eq!(
            (s.needed(5), s.needed(10), s.needed(1), s.needed(3)),
            (4, 8, 1, 3)
        );
    }

    #[test]
    fn a_bug_found_often_enough_is_met_and_too_rarely_is_not() {
        use CellOutcome::*;
        let outcomes = [Invalid, Invalid, Valid, Invalid, Invalid];
        let cells = (1..=5)
            .map(|s| cell("b", s, outcomes[s as usize - 1], Some(s as f64 * 10.0)))
            .collect();
        let r = record(vec![row("b", FOUR_OF_FIVE)], (1..=5).collect(), cells);
        let j = judge(&r);
        assert_eq!(j.rows[0].status, RowStatus::Met);
        assert_eq!(j.rows[0].median_first_anomaly_s, Some(30.0));
        assert_eq!(j.exit_code(), 0);
        let mut r2 = r.clone();
        r2.cells[0].outcome = Valid;
        assert_eq!(judge(&r2).rows[0].status, RowStatus::NotMet);
        assert_eq!(judge(&r2).exit_code(), 1);
        // An unknown seed in place of the missed one: still 4 found.
        let mut r3 = r.clone();
        r3.cells[2].outcome = Unknown;
        assert_eq!(judge(&r3).rows[0].status, RowStatus::Met);
        // 3 found and 2 unknown: undecided, the unknown ones could still make it.
        r3.cells[1].outcome = Unknown;
        assert_eq!(judge(&r3).rows[0].status, RowStatus::Undecided);
        assert_eq!(judge(&r3).exit_code(), 2);
    }

    #[test]
    fn one_false_alarm_fails_a_valid_row_and_run_failures_exit_3() {
        use CellOutcome::*;
        let cells = vec![cell("c", 1, Valid, None), cell("c", 2, Invalid, Some(3.0))];
        let r = record(vec![row("c", Expectation::Valid)], vec![1, 2], cells);
        let j = judge(&r);
        assert_eq!((j.rows[0].status, j.rows[0].false_alarms), (RowStatus::NotMet, 1));
        let cells = vec![cell("c", 1, Valid, None), cell("c", 2, RunFailed, None)];
        let r = record(vec![row("c", Expectation::Valid)], vec![1, 2], cells);
        assert_eq!(judge(&r).exit_code(), 3);
        // A missing cell leaves the row undecided.
        let r = record(
            vec![row("c", Expectation::Valid)],
            vec![1, 2],
            vec![cell("c", 1, Valid, None)],
        );
        assert_eq!(judge(&r).rows[0].status, RowStatus::Undecided);
        assert!(
            judge(&r).rows[0].text.contains("1 not run"),
            "{}",
            judge(&r).rows[0].text
        );
    }

    #[test]
    fn merge_unions_shards_and_refuses_overlaps() {
        use CellOutcome::*;
        let full = record(
            vec![row("a", Expectation::Valid), row("b", FOUR_OF_FIVE)],
            vec![1, 2],
            vec![],
        );
        let mut s1 = full.clone();
        let mut s2 = full.clone();
        s1.shard = Some((1, 2));
        s2.shard = Some((2, 2));
        s1.planned = vec![("a".into(), 1), ("b".into(), 1)];
        s2.planned = vec![("a".into(), 2), ("b".into(), 2)];
        s1.cells = vec![cell("a", 1, Valid, None), cell("b", 1, Invalid, Some(1.0))];
        s2.cells = vec![cell("b", 2, Invalid, Some(2.0)), cell("a", 2, Valid, None)];
        let m = crate::suite::merge(&[s2.clone(), s1.clone()]).unwrap();
        assert_eq!(m.planned, full.planned);
        assert_eq!(m.cells.len(), 4);
        assert_eq!(m.cells[0].row, "a");
        assert_eq!(judge(&m).exit_code(), 0);
        assert!(crate::suite::merge(&[s1.clone(), s1.clone()]).is_err());
        let mut other = s2.clone();
        other.seeds = vec![7, 8];
        assert!(crate::suite::merge(&[s1, other]).is_err());
    }
}
