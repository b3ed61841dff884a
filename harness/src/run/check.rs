//! Phases **check** (the checkers on the history read back) and the verdict line for the terminal.

use super::Driven;
use crate::HarnessError;
use checker::{CheckReport, Verdict};
use std::path::Path;
use std::time::Duration;
use workloads::Workload;

/// Reads the history back and runs the checkers: linearizability with the workload's model, availability
/// with the recovery limit (and stalls of a cluster of `nodes`), stats. The verdict is the worst of
/// linearizability and availability.
pub fn check_history(
    path: &Path,
    workload: Workload,
    recovery_limit: Duration,
    nodes: usize,
) -> Result<CheckReport, HarnessError> {
    let history = checker::history::read_path(path, checker::history::Format::Jsonl, true)?;
    // Every workload names a model of the checker (workloads' tests hold it to that).
    let model = checker::ModelKind::parse(workload.model_name()).unwrap_or(checker::ModelKind::CasRegister);
    let options = checker::CheckOptions {
        linearizability: checker::Options {
            model,
            time_limit: Some(Duration::from_secs(120)),
            // Decide every key: a run's report lists what is wrong with each, not "another key is invalid".
            all_keys: true,
            ..Default::default()
        },
        recovery_limit,
        cluster_size: Some(nodes),
    };
    let mut report = checker::check(&history, &options)?;
    if report.stats.is_none() {
        report.stats = Some(checker::stats::compute(&history));
    }
    let mut verdict = report
        .linearizability
        .as_ref()
        .map(|l| l.verdict)
        .unwrap_or(Verdict::Unknown);
    if let Some(a) = &report.availability {
        verdict = verdict.worst(a.verdict);
    }
    report.verdict = verdict;
    Ok(report)
}

/// The verdict for the terminal: counts, and by key only the invalid ones (and how many are unknown).
pub(crate) fn verdict_line(
    r: &CheckReport,
    d: &Driven,
    unclassified: &[results::record::UnclassifiedAnswer],
    run_dir: &Path,
) -> String {
    let verdict = match r.verdict {
        Verdict::Valid => "VALID",
        Verdict::Invalid => "INVALID",
        Verdict::Unknown => "UNKNOWN",
    };
    let mut out = format!(
        "{verdict}: {} ok, {} fail, {} info over {} keys\n",
        d.counts.ok,
        d.counts.fail,
        d.counts.info,
        d.keys.len()
    );
    if let Some(l) = &r.linearizability {
        out.push_str(&linearizability_line(l));
    }
    if let Some(a) = &r.availability {
        out.push_str(&format!(
            "  availability: {}, longest gap without an ok {:.1} s\n",
            format!("{:?}", a.verdict).to_lowercase(),
            a.longest_gap_ns as f64 / 1e9
        ));
    }
    out.push_str(&crate::unclassified::summary_lines(unclassified));
    if !d.unread.is_empty() {
        out.push_str(&format!(
            "  {} keys could not be read back after the heal\n",
            d.unread.len()
        ));
    }
    out.push_str(&format!("  results: {}", run_dir.display()));
    let report = run_dir.join(results::store::REPORT_FILE);
    if report.is_file() {
        out.push_str(&format!("\n  report: {}", report.display()));
    }
    out
}

/// At most this many invalid keys are named on the verdict line.
const NAMED_INVALID_KEYS: usize = 10;

fn linearizability_line(l: &checker::result::LinearizabilityResult) -> String {
    let count = |v: Verdict| l.keys.iter().filter(|k| k.verdict == v).count();
    let (invalid, unknown) = (count(Verdict::Invalid), count(Verdict::Unknown));
    let mut out = format!("  linearizability ({}): {:?}", l.model, l.verdict).to_lowercase();
    if l.keys.len() > 1 {
        out.push_str(&format!(
            " — keys: {} valid, {invalid} invalid, {unknown} unknown",
            l.keys.len() - invalid - unknown
        ));
    }
    let named: Vec<&str> = l
        .keys
        .iter()
        .filter(|k| k.verdict == Verdict::Invalid)
        .take(NAMED_INVALID_KEYS)
        .map(|k| k.key.as_deref().unwrap_or("-"))
        .collect();
    if !named.is_empty() && l.keys.len() > 1 {
        let more = if invalid > named.len() { ", ..." } else { "" };
        out.push_str(&format!(" (invalid: {}{more})", named.join(", ")));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::result::{KeyResult, LinearizabilityResult};

    fn key(i: usize, verdict: Verdict) -> KeyResult {
        KeyResult {
            key: Some(format!("k{i}")),
            verdict,
            ops: 10,
            elapsed_ms: 0.0,
            reason: None,
            progress: None,
            counterexample: None,
        }
    }

    #[test]
    fn the_verdict_line_counts_keys_and_names_only_invalid_ones() {
        let mut keys: Vec<KeyResult> = (0..938).map(|i| key(i, Verdict::Valid)).collect();
        keys[3].verdict = Verdict::Invalid;
        keys[700].verdict = Verdict::Invalid;
        keys[5].verdict = Verdict::Unknown;
        let l = LinearizabilityResult {
            verdict: Verdict::Invalid,
            model: "cas-register".into(),
            keys,
            elapsed_ms: 1.0,
        };
        let line = linearizability_line(&l);
        assert_eq!(
            line,
            "  linearizability (cas-register): invalid — keys: 935 valid, 2 invalid, 1 unknown (invalid: k3, k700)\n"
        );
        // Many invalid keys: the first ten, then "...".
        let mut many = l.clone();
        many.keys.iter_mut().for_each(|k| k.verdict = Verdict::Invalid);
        let line = linearizability_line(&many);
        assert!(
            line.contains("(invalid: k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, ...)"),
            "{line}"
        );
    }
}
