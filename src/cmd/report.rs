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
    /// Check the history again instead of using results.json (rewrites results.json).
    #[arg(long)]
    pub recheck: bool,
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
        recheck(&run)?
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

/// Checks the run's history again. The checker's top-level `check` is wired here once it lands; until
/// then a missing results.json renders the page without a verdict.
fn recheck(run: &results::RunDir) -> anyhow::Result<Option<checker::CheckReport>> {
    eprintln!(
        "warning: {}: no results.json and re-checking is not available in this build; rendering without a verdict",
        run.path().display()
    );
    Ok(None)
}
