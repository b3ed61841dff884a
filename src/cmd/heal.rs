//! `faultline heal`: remove whatever a run left behind (node processes, namespaces, links, iptables chains),
//! from the run's state file. Idempotent.

use super::{bad_input, RunFailed};
use std::path::PathBuf;

/// Arguments of `faultline heal`.
#[derive(clap::Args)]
pub struct Args {
    /// The run folder (default: the newest run of the store).
    pub run_dir: Option<PathBuf>,
    /// The results store (used when no run folder is given).
    #[arg(long, default_value = "store", value_name = "DIR")]
    pub store: PathBuf,
    /// Heal even if the run's faultline process is still running.
    #[arg(long)]
    pub force: bool,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let dir = match args.run_dir {
        Some(d) => d,
        None => {
            if !args.store.is_dir() {
                return Err(bad_input(format!(
                    "{}: no such store; name a run folder",
                    args.store.display()
                )));
            }
            let store = results::Store::open(&args.store).map_err(|e| bad_input(e.to_string()))?;
            let newest = store
                .latest()
                .or_else(|| store.runs().ok().and_then(|r| r.into_iter().next()));
            match newest {
                Some(r) => r.path().to_path_buf(),
                None => {
                    return Err(bad_input(format!(
                        "{}: the store holds no run",
                        args.store.display()
                    )))
                }
            }
        }
    };
    let report = harness::heal_run(&dir, args.force).map_err(|e| {
        if e.is_bad_input() {
            bad_input(e.to_string())
        } else {
            anyhow::Error::new(RunFailed(e.to_string()))
        }
    })?;
    if report.was_clean() {
        println!("{}: nothing left to heal", dir.display());
    } else {
        for p in &report.processes_stopped {
            println!("stopped {p}");
        }
        for r in &report.removed {
            println!("removed {r}");
        }
    }
    if !report.errors.is_empty() {
        return Err(anyhow::Error::new(RunFailed(format!(
            "{}: could not remove: {}",
            dir.display(),
            report.errors.join("; ")
        ))));
    }
    Ok(0)
}
