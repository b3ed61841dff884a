//! The run: the phases of a test, in order, with tear-down guaranteed.
//!
//! 1. **prepare** (nothing created yet): the spec, the client protocol, the workload, the faults and the
//!    schedule are all checked; any error here is the user's input (exit 254).
//! 2. **setup**: the run folder, the hosts, the node processes; wait until the spec's readiness probe passes.
//! 3. **run**: the clients and the nemesis, until the time limit.
//! 4. **heal**: stop the clients, undo every fault.
//! 5. **final-reads**: each key read until a read succeeds (or the recovery window passes).
//! 6. **teardown**: stop the nodes, remove namespaces, links and chains.
//! 7. **check**: linearizability, availability, stats; `results.json`.
//! 8. **report**: `report.html`, plots, the store index; the verdict.
//!
//! SIGINT, SIGTERM or SIGHUP at any point skips to the tear-down; a panic tears down through the cluster's
//! `Drop`; a `kill -9` leaves the state file for `faultline heal`. Each phase is announced on stderr as
//! `faultline: phase NAME` (tests use it to interrupt a run in a given phase).
//!
//! [`prepare`] runs before the async runtime exists; the other phases are the methods of `phases::Run`, in
//! `phases.rs`. The run record (`test.json`) is filled as they go (see `crate::record`).

mod cancel;
mod check;
mod phases;
mod prepare;
mod progress;
mod version;

pub use check::check_history;

use crate::spec::LoadedSpec;
use crate::{Backend, HarnessError};
use checker::{CheckReport, Verdict};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Everything a run needs, as the command line gives it.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub spec: LoadedSpec,
    /// `None`: netns when root, local otherwise.
    pub backend: Option<Backend>,
    /// `None`: the spec's `workload`, else `cas-register`.
    pub workload: Option<String>,
    pub nodes: usize,
    pub concurrency: usize,
    /// Operations per second over all clients; `None` for as fast as the system answers.
    pub rate: Option<f64>,
    pub time_limit: Duration,
    /// `None`: drawn at random (and recorded).
    pub seed: Option<u64>,
    pub node_args: Vec<String>,
    /// `--nemesis`, e.g. `partition,kill`; empty or `none` for no faults.
    pub nemesis: String,
    pub nemesis_interval: Option<Duration>,
    /// At most this many nodes killed or paused at once (`None`: a minority).
    pub max_dead: Option<usize>,
    pub recovery_limit: Duration,
    pub store: PathBuf,
    /// Test name; default `<db>-<workload>`.
    pub name: Option<String>,
    /// `--backend ssh`: the hosts file and whether new host keys may be added.
    pub ssh: Option<crate::ssh::SshOptions>,
    /// Show the live progress line (only sensible when stderr is a terminal).
    pub progress: bool,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub verdict: Verdict,
    pub report: CheckReport,
    /// One paragraph for the terminal.
    pub summary: String,
    /// The run record as written to `test.json`.
    pub record: results::RunRecord,
    /// From the start of prepare to the end of report.
    pub wall_time: Duration,
}

impl RunOutcome {
    /// 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(&self) -> u8 {
        self.verdict.exit_code() as u8
    }
}

/// A run that did not complete, with the run folder when one was created.
#[derive(Debug)]
pub struct RunError {
    pub error: HarnessError,
    pub run_dir: Option<PathBuf>,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.run_dir {
            Some(d) => write!(f, "{} (run folder: {})", self.error, d.display()),
            None => write!(f, "{}", self.error),
        }
    }
}

impl std::error::Error for RunError {}

/// What the clients did, for the record and the verdict line.
pub(crate) struct Driven {
    pub counts: workloads::Counts,
    pub keys: Vec<String>,
    pub unread: Vec<String>,
}

/// The phase in which to panic on purpose, set by `faultline run --debug-panic-in PHASE`.
static PANIC_IN: OnceLock<String> = OnceLock::new();

/// A debug switch for tests of the tear-down guarantee (`faultline run --debug-panic-in PHASE`, hidden from
/// `--help`, described in docs/results.md): the harness panics as `phase` begins.
pub fn debug_panic_in(phase: &str) {
    let _ = PANIC_IN.set(phase.to_string());
}

/// Announces a phase on stderr (and panics there when asked to by [`debug_panic_in`]).
pub(crate) fn phase(name: &str) {
    eprintln!("faultline: phase {name}");
    if PANIC_IN.get().is_some_and(|p| p == name) {
        panic!("--debug-panic-in {name}: panicking on purpose");
    }
}

/// Checks a configuration as a run's first phase does (spec, workload, faults, schedule, permissions),
/// without creating anything: `faultline suite` checks every cell before the first one starts.
pub fn validate(c: &RunConfig) -> Result<(), HarnessError> {
    prepare::prepare(c).map(|_| ())
}

/// Runs a whole test. Blocks; builds its own async runtime.
pub fn run(c: &RunConfig) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    phase("prepare");
    let p = prepare::prepare(c).map_err(|error| RunError { error, run_dir: None })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RunError {
            error: HarnessError::Runtime(e),
            run_dir: None,
        })?;
    let mut outcome = rt.block_on(phases::execute(c, p))?;
    outcome.wall_time = started.elapsed();
    Ok(outcome)
}
