//! `faultline probe --db SPEC`: start the spec's cluster, send one of each operation, print each request, its
//! answer and how the spec's rules classified it, tear down. The work is done by `harness::trace`.

use super::{bad_input, RunFailed};
use harness::trace::{trace, TraceConfig};
use harness::{Backend, HarnessError, LoadedSpec};
use std::path::PathBuf;

/// Arguments of `faultline probe`.
#[derive(clap::Args)]
pub struct Args {
    /// The DB spec (TOML) to try.
    #[arg(long, value_name = "SPEC")]
    pub db: PathBuf,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// local or netns (default: netns when root, local otherwise).
    #[arg(long, value_parser = ["local", "netns"])]
    pub backend: Option<String>,
    /// Where the probe's run folder (node logs) goes.
    #[arg(long, default_value = "store", value_name = "DIR")]
    pub store: PathBuf,
}

/// Exit 0 when every answer was classified by a rule, 1 when some answer was not.
pub fn main(args: Args) -> anyhow::Result<u8> {
    let spec = LoadedSpec::from_path(&args.db).map_err(|e| bad_input(e.to_string()))?;
    let config = TraceConfig {
        spec,
        backend: args.backend.as_deref().map(|b| {
            if b == "netns" {
                Backend::Netns
            } else {
                Backend::Local
            }
        }),
        nodes: args.nodes,
        store: args.store,
    };
    match trace(&config) {
        Ok(t) => {
            print!("{}", t.render());
            Ok(u8::from(t.steps.iter().any(|s| s.unclassified)))
        }
        Err(e) if e.is_bad_input() => Err(bad_input(e.to_string())),
        Err(e @ (HarnessError::Setup(_) | HarnessError::Interrupted(_))) => {
            Err(anyhow::Error::new(RunFailed(e.to_string())))
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}
