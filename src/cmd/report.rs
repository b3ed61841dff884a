//! `faultline report`: re-renders a run's plots and `report.html` from the files in its folder (after a
//! checker upgrade, say), and refreshes the store's index when the folder sits in a store.

use super::bad_input;
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `faultline report`.
#[derive(clap::Args)]
pub struct Args {
    /// The run folder (`store/<test>/<timestamp>/`, or `store/latest`).
    pub run_dir: PathBuf,
    /// Check the history again instead of using results.json (rewrites results.json). Also done when the
    /// run has no results.json.
    #[arg(long)]
    pub recheck: bool,
    /// The model to check against when re-checking (default: test.json's `model`, else its `workload`,
    /// else cas-register).
    #[arg(long)]
    pub model: Option<String>,
    /// Give up re-checking (verdict unknown) after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub time_limit: u64,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let dir = &args.run_dir;
    if !dir.is_dir() {
        return Err(bad_input(format!("{}: no such run folder", dir.display())));
    }
    let run = results::RunDir::open(dir).map_err(|e| bad_input(e.to_string()))?;
    if !run.history_path().is_file() {
        return Err(bad_input(format!(
            "{}: no {} in this run folder",
            dir.display(),
            results::store::HISTORY_FILE
        )));
    }
    let results_path = run.results_path();
    let check = if args.recheck || !results_path.is_file() {
        recheck(&run, &args)?
    } else {
        Some(results::data::read_results(&results_path).map_err(|e| bad_input(e.to_string()))?)
    };
    let rendered = results::render_run_with(&run, check.as_ref()).map_err(|e| match e {
        results::ReportError::Read(r) => bad_input(r.to_string()),
        other => anyhow::Error::new(other),
    })?;
    // A run folder inside a store: refresh the store's index too.
    if let Some(root) = run.path().parent().and_then(|p| p.parent()) {
        if root.join(results::store::LATEST_LINK).exists() || root.join(results::store::INDEX_FILE).is_file()
        {
            results::Store::open(root)
                .and_then(|s| s.write_index())
                .with_context(|| format!("refreshing the index of {}", root.display()))?;
        }
    }
    let verdict = check.as_ref().map(|c| c.verdict);
    println!(
        "{} ({} bytes){}",
        rendered.report.display(),
        rendered.bytes,
        match verdict {
            Some(v) => format!(": {}", format!("{v:?}").to_lowercase()),
            None => ": not checked".to_string(),
        }
    );
    Ok(verdict.map(|v| v.exit_code() as u8).unwrap_or(0))
}

/// Checks the run's history again and writes `results.json` (replacing only its `checks` when the file
/// wraps the report in more).
fn recheck(run: &results::RunDir, args: &Args) -> anyhow::Result<Option<checker::CheckReport>> {
    // The run's record says how the run judged it; a folder without one is checked with the defaults.
    let record = match run.record() {
        Ok(r) => r,
        Err(results::RecordError::Missing(_)) => results::RunRecord::default(),
        Err(e) => return Err(bad_input(e.to_string())),
    };
    let from_test = [&record.model, &record.workload]
        .into_iter()
        .find_map(|name| checker::ModelKind::parse(name));
    let model = match &args.model {
        Some(m) => checker::ModelKind::parse(m).ok_or_else(|| {
            let names: Vec<&str> = checker::ModelKind::ALL.iter().map(|m| m.name()).collect();
            bad_input(format!(
                "--model: unknown model {m:?} (one of {})",
                names.join(", ")
            ))
        })?,
        None => from_test.unwrap_or(checker::ModelKind::CasRegister),
    };
    let history = checker::history::read_path(&run.history_path(), checker::history::Format::Jsonl, false)
        .map_err(|e| bad_input(e.to_string()))?;
    let mut options = checker::CheckOptions::default();
    // Availability as the run judged it: its recovery limit, and stalls for its cluster size.
    if record.recovery_limit.is_finite() && record.recovery_limit > 0.0 {
        options.recovery_limit = std::time::Duration::from_secs_f64(record.recovery_limit);
    }
    options.cluster_size = (record.node_count > 0).then_some(record.node_count);
    options.linearizability.model = model;
    options.linearizability.time_limit = Some(std::time::Duration::from_secs(args.time_limit));
    let mut report = checker::check(&history, &options).map_err(|e| bad_input(e.to_string()))?;
    // As `faultline run` judges a run: the worst of linearizability and availability.
    if let Some(a) = &report.availability {
        report.verdict = report.verdict.worst(a.verdict);
    }
    let path = run.results_path();
    let existing: Option<serde_json::Value> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let value = match existing {
        Some(serde_json::Value::Object(mut m)) if m.contains_key("checks") => {
            m.insert("checks".into(), serde_json::to_value(&report)?);
            serde_json::Value::Object(m)
        }
        _ => serde_json::to_value(&report)?,
    };
    std::fs::write(&path, serde_json::to_vec_pretty(&value)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(report))
}
