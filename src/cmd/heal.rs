//! `faultline heal`: remove whatever a run left behind (node processes, namespaces, links, iptables chains),
//! from the run's state file. Idempotent.

use super::{bad_input, RunFailed};
use std::path::{Path, PathBuf};

/// Arguments of `faultline heal`.
#[derive(clap::Args)]
pub struct Args {
    /// The run folder (default: the newest run of the store).
    pub run_dir: Option<PathBuf>,
    /// The results store (used when no run folder is given).
    #[arg(long, default_value = "store", value_name = "DIR")]
    pub store: PathBuf,
    /// Heal every run of the store (runs still going are skipped unless --force).
    #[arg(long, conflicts_with = "run_dir")]
    pub all: bool,
    /// Heal even if the run's faultline process is still running.
    #[arg(long)]
    pub force: bool,
}

fn open_store(store: &Path) -> anyhow::Result<results::Store> {
    if !store.is_dir() {
        return Err(bad_input(format!(
            "{}: no such store; name a run folder",
            store.display()
        )));
    }
    results::Store::open(store).map_err(|e| bad_input(e.to_string()))
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let dirs: Vec<PathBuf> = match (&args.run_dir, args.all) {
        (Some(d), _) => vec![d.clone()],
        (None, true) => {
            let store = open_store(&args.store)?;
            let runs = store.runs().map_err(|e| bad_input(e.to_string()))?;
            // Runs that never created anything have no state file: nothing to heal there.
            runs.iter()
                .map(|r| r.path().to_path_buf())
                .filter(|p| p.join(harness::state::STATE_FILE).is_file())
                .collect()
        }
        (None, false) => {
            let store = open_store(&args.store)?;
            let newest = store
                .latest()
                .or_else(|| store.runs().ok().and_then(|r| r.into_iter().next()));
            match newest {
                Some(r) => vec![r.path().to_path_buf()],
                None => {
                    return Err(bad_input(format!(
                        "{}: the store holds no run",
                        args.store.display()
                    )))
                }
            }
        }
    };
    let mut failures = Vec::new();
    for dir in &dirs {
        match harness::heal_run(dir, args.force) {
            Ok(report) => {
                if report.was_clean() {
                    println!("{}: nothing left to heal", dir.display());
                }
                for p in &report.processes_stopped {
                    println!("stopped {p}");
                }
                for r in &report.removed {
                    println!("removed {r}");
                }
                if !report.errors.is_empty() {
                    failures.push(format!(
                        "{}: could not remove: {}",
                        dir.display(),
                        report.errors.join("; ")
                    ));
                }
            }
            // With --all, a run still going is reported and skipped; alone, it is the user's mistake.
            Err(e) if e.is_bad_input() && !args.all => return Err(bad_input(e.to_string())),
            Err(e) if e.is_bad_input() => println!("skipped {e}"),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if !failures.is_empty() {
        return Err(anyhow::Error::new(RunFailed(failures.join("; "))));
    }
    Ok(0)
}
