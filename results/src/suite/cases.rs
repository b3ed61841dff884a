//! A suite record as JUnit: one test case per planned cell.
//!
//! A cell passes when it is as expected, and also when it missed a bug on its seed while its row still met
//! its share (the row is what the suite promises). It fails (`invalid`) when it is not as expected and its
//! row did not meet its expectation, fails (`unknown`) when its checker could not decide or it did not run,
//! and is an error when its run failed. The message is the verdict line; the details name the run folder.

use super::judge::{judge, RowStatus};
use super::record::{CellOutcome, SuiteRecord};
use crate::junit::{JunitCase, JunitSuite};
use checker::Verdict;

/// The JUnit document of a suite run. `store` is shown in the details (run folders are relative to it).
pub fn junit(record: &SuiteRecord, store: &str) -> JunitSuite {
    let j = judge(record);
    let cases = record
        .planned
        .iter()
        .map(|(row_id, seed)| {
            let cell = record.cell(row_id, *seed);
            let row_met = j.row(row_id).is_some_and(|r| r.status == RowStatus::Met);
            let expect = record
                .row(row_id)
                .map(|r| r.expect.describe())
                .unwrap_or_default();
            let (verdict, message) = match cell {
                None => (Some(Verdict::Unknown), "did not run".to_string()),
                Some(c) if c.outcome == CellOutcome::RunFailed => (None, c.verdict_line.clone()),
                Some(c) if c.outcome == CellOutcome::Unknown => {
                    (Some(Verdict::Unknown), c.verdict_line.clone())
                }
                Some(c) if c.as_expected || row_met => (Some(Verdict::Valid), String::new()),
                Some(c) => (
                    Some(Verdict::Invalid),
                    format!("expected {expect}: {}", c.verdict_line),
                ),
            };
            let details = match cell {
                Some(c) => format!(
                    "{}\nexpected: {expect}\nrun folder: {}",
                    c.verdict_line,
                    c.run
                        .as_deref()
                        .map(|r| format!("{store}/{r}"))
                        .unwrap_or_else(|| "-".into())
                ),
                None => format!("expected: {expect}\nnot run"),
            };
            JunitCase {
                name: format!("{row_id} seed {seed}"),
                classname: format!("faultline.suite.{}", record.name),
                time_secs: cell.map(|c| c.wall_s).unwrap_or(0.0),
                verdict,
                message,
                details,
            }
        })
        .collect();
    JunitSuite {
        name: format!("faultline suite {}", record.name),
        cases,
    }
}
