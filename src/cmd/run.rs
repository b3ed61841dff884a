//! `faultline run`: start a cluster from a DB spec, drive clients under faults, heal, read back, tear down,
//! check, report. The work is done by `harness::run`; this module parses flags and maps errors to exit codes.

use super::{bad_input, RunFailed};
use harness::{Backend, HarnessError, LoadedSpec, RunConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `faultline run`.
#[derive(clap::Args)]
pub struct Args {
    /// The DB spec (TOML). Default: the bundled raftkv spec (dbs/raftkv.toml, embedded).
    #[arg(long, value_name = "SPEC")]
    pub db: Option<PathBuf>,
    /// register, cas-register, append or set (default: the spec's `workload`, else cas-register).
    #[arg(long)]
    pub workload: Option<String>,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Concurrent clients (Jepsen processes).
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Operations per second over all clients (default: as fast as the system answers).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of client traffic.
    #[arg(long, default_value_t = 20.0, value_name = "SECONDS")]
    pub time_limit: f64,
    /// Seeds the operations and the fault schedule (default: random, recorded in test.json).
    #[arg(long)]
    pub seed: Option<u64>,
    /// local (processes on 127.0.0.1), netns (a network namespace per node; root) or ssh (one node per host
    /// of --hosts). Default: ssh with --hosts, else netns when root, local otherwise.
    #[arg(long, value_parser = ["local", "netns", "ssh"])]
    pub backend: Option<String>,
    /// The hosts file of the ssh backend (TOML; see docs/ssh.md).
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// Ssh backend: add the key of a host that known_hosts does not list yet (first contact). A changed key
    /// is refused all the same.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// An argument appended to every node's command (repeatable), e.g. --node-arg=--bug=stale-leader-read.
    #[arg(long = "node-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Faults: a comma-separated list of partition, kill, pause, loss, clock, ... or none.
    #[arg(long, default_value = "none")]
    pub nemesis: String,
    /// Mean seconds between two fault changes.
    #[arg(long, value_name = "SECONDS")]
    pub nemesis_interval: Option<f64>,
    /// At most this many nodes killed or paused at once (default: a minority).
    #[arg(long, value_name = "N")]
    pub max_dead: Option<usize>,
    /// Also write the verdict as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// The run is invalid when no operation succeeds within this many seconds after the final heal.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub recovery_limit: f64,
    /// Debugging the tear-down guarantee: panic on purpose as this phase begins (setup, run, heal,
    /// final-reads, teardown, check, report). Hidden from --help; see docs/results.md.
    #[arg(long, value_name = "PHASE", hide = true)]
    pub debug_panic_in: Option<String>,
    /// The results store.
    #[arg(long, default_value = "store", value_name = "DIR")]
    pub store: PathBuf,
    /// Test name (default: <db>-<workload>).
    #[arg(long)]
    pub name: Option<String>,
}

fn seconds(flag: &str, v: f64) -> anyhow::Result<Duration> {
    if !(0.0..1e7).contains(&v) {
        return Err(bad_input(format!("{flag} {v}: must be a number of seconds")));
    }
    Ok(Duration::from_secs_f64(v))
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let junit = args.junit.clone();
    if let Some(phase) = &args.debug_panic_in {
        harness::run::debug_panic_in(phase);
    }
    let spec = match &args.db {
        Some(p) => LoadedSpec::from_path(p).map_err(|e| bad_input(e.to_string()))?,
        None => LoadedSpec::raftkv(),
    };
    let config = RunConfig {
        spec,
        backend: args.backend.as_deref().map(|b| match b {
            "netns" => Backend::Netns,
            "ssh" => Backend::Ssh,
            _ => Backend::Local,
        }),
        ssh: match &args.hosts {
            Some(path) => Some(harness::ssh::SshOptions {
                hosts: harness::ssh::HostsFile::load(path).map_err(|e| bad_input(e.to_string()))?,
                accept_new: args.accept_new_host_keys,
            }),
            None if args.backend.as_deref() == Some("ssh") => {
                return Err(bad_input("--backend ssh: needs --hosts FILE"))
            }
            None => None,
        },
        workload: args.workload,
        nodes: args.nodes,
        concurrency: args.concurrency,
        rate: args.rate,
        time_limit: seconds("--time-limit", args.time_limit)?,
        seed: args.seed,
        node_args: args.node_args,
        nemesis: args.nemesis,
        nemesis_interval: args
            .nemesis_interval
            .map(|v| seconds("--nemesis-interval", v))
            .transpose()?,
        max_dead: args.max_dead,
        recovery_limit: seconds("--recovery-limit", args.recovery_limit)?,
        store: args.store,
        name: args.name,
        progress: true,
    };
    match harness::run(&config) {
        Ok(outcome) => {
            println!("{}", outcome.summary);
            if let Some(path) = &junit {
                let run = results::RunDir::open(&outcome.run_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
                let suite = results::JunitSuite {
                    name: "faultline".into(),
                    cases: vec![results::JunitCase::from_run(&run)],
                };
                suite
                    .write(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
            Ok(outcome.exit_code())
        }
        Err(e) => Err(run_error(e)),
    }
}

/// The exit code of a run that did not complete, by what went wrong.
fn run_error(e: harness::RunError) -> anyhow::Error {
    use HarnessError as E;
    match &e.error {
        // The user's input: the spec, a flag, the store folder (exit 254).
        E::Spec(_) | E::BadInput(_) | E::Store { .. } => bad_input(e.to_string()),
        // The run itself failed (exit 3): the system under test or this machine did not do what the run
        // needed, or a signal stopped it. The run folder (if any) says how far it got.
        E::System { .. }
        | E::Setup(_)
        | E::Node { .. }
        | E::Lazyfs { .. }
        | E::Signal { .. }
        | E::Exec { .. }
        | E::Membership { .. }
        | E::MemberRequest { .. }
        | E::Http(_)
        | E::Ssh { .. }
        | E::Interrupted(_)
        | E::Io { .. }
        | E::Record(_)
        | E::History(_)
        | E::Clients { .. }
        | E::ReadBack(_)
        | E::Nemesis(_) => anyhow::Error::new(RunFailed(e.to_string())),
        // faultline itself failed (exit 255): a task panicked, or there is no async runtime.
        E::Panicked { .. } | E::Runtime(_) => anyhow::anyhow!("{e}"),
    }
}
