//! What a run folder says about itself, for the index and JUnit: the run record (`test.json`, typed in
//! [`crate::record`]) and the verdict and counts of `results.json`, which may be missing (a run that failed
//! before checking) or be a bare `CheckReport` or one under `checks`.

use crate::record::RunRecord;
use crate::run_dir::RunDir;
use checker::{CheckReport, Verdict};
use serde_json::Value;

/// The facts of one run that the index shows.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub name: String,
    pub started_at: String,
    pub db: String,
    pub workload: String,
    pub nemesis: String,
    pub verdict: Option<Verdict>,
    pub ops: Option<u64>,
    pub duration_ns: Option<u64>,
    pub has_report: bool,
    /// Why the run did not complete, as its record says.
    pub error: Option<String>,
    /// Why the run record could not be read, when it could not (a missing one is not an error).
    pub record_error: Option<String>,
}

/// Interprets the text of `results.json`: a `CheckReport`, or an object with one under `checks`.
pub fn parse_results(text: &str) -> Result<CheckReport, serde_json::Error> {
    let v: Value = serde_json::from_str(text)?;
    match v.get("checks") {
        Some(c) if c.is_object() => serde_json::from_value(c.clone()),
        _ => serde_json::from_value(v),
    }
}

/// Reads what the index needs from a run folder; never fails (missing parts stay empty).
pub fn summarize(run: &RunDir) -> RunSummary {
    let (record, record_error) = match run.record() {
        Ok(r) => (r, None),
        Err(crate::RecordError::Missing(_)) => (RunRecord::default(), None),
        Err(e) => (RunRecord::default(), Some(e.to_string())),
    };
    let results_text = std::fs::read_to_string(run.results_path()).ok();
    let report = results_text.as_deref().and_then(|t| parse_results(t).ok());
    // A results.json the checker type does not fit still often has a verdict we can show.
    let loose_verdict = results_text
        .as_deref()
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .and_then(|v| v.get("verdict").cloned())
        .and_then(|v| serde_json::from_value::<Verdict>(v).ok());
    let stats = report.as_ref().and_then(|r| r.stats.as_ref());
    let or_folder = |s: &str, folder: &str| {
        if s.is_empty() {
            folder.to_string()
        } else {
            s.to_string()
        }
    };
    RunSummary {
        name: or_folder(&record.name, run.test_name()),
        started_at: readable_timestamp(&or_folder(&record.started_at, run.timestamp())),
        db: record.db.clone(),
        workload: record.workload.clone(),
        nemesis: record
            .nemesis
            .faults
            .split(',')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(", "),
        verdict: report.as_ref().map(|r| r.verdict).or(loose_verdict),
        // The harness also records the counts in test.json.
        ops: stats
            .map(|s| s.ok + s.fail + s.info)
            .or(record.counts.map(|c| c.total())),
        duration_ns: stats
            .map(|s| s.duration_ns)
            .filter(|d| *d > 0)
            .or((record.time_limit > 0.0).then_some((record.time_limit * 1e9) as u64)),
        has_report: run.report_path().is_file(),
        error: record.error.clone(),
        record_error,
    }
}

/// `20261130T120102Z` (maybe with `-N`) as `2026-11-30 12:01:02 UTC`; anything else as it is.
pub fn readable_timestamp(ts: &str) -> String {
    let b = ts.as_bytes();
    if b.len() >= 16 && b[..16].is_ascii() && b[8] == b'T' && b[15] == b'Z' {
        let d = |r: std::ops::Range<usize>| &ts[r];
        format!(
            "{}-{}-{} {}:{}:{} UTC",
            d(0..4),
            d(4..6),
            d(6..8),
            d(9..11),
            d(11..13),
            d(13..15)
        )
    } else {
        ts.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::readable_timestamp;

    #[test]
    fn timestamps_read_well_and_odd_ones_pass_through() {
        assert_eq!(readable_timestamp("20261130T120102Z"), "2026-11-30 12:01:02 UTC");
        assert_eq!(
            readable_timestamp("20261130T120102Z-2"),
            "2026-11-30 12:01:02 UTC"
        );
        assert_eq!(readable_timestamp("yesterday"), "yesterday");
        assert_eq!(readable_timestamp("ééééT1234567Z"), "ééééT1234567Z");
    }
}
