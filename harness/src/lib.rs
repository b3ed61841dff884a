//! # harness
//!
//! Runs a test against a real cluster: loads a DB spec ([`spec`]), creates the hosts and starts the nodes
//! ([`deployment`]: the `local` backend on loopback ports, the `netns` backend with one network namespace per
//! node on a bridge of its own, the [`ssh`] backend with one node per host of a hosts file), drives the clients and the nemesis, heals, reads back, tears down, checks and
//! writes the run folder ([`run`]). Everything it creates is written to the run's state file ([`state`])
//! before or as it is created, so [`heal`] can remove whatever a killed harness left.
//!
//! It is **not** where clients, faults, checking or reports are implemented: those live in `workloads`,
//! `nemesis`, `checker` and `results`; the harness wires them together. It never talks to an address outside
//! 127.0.0.0/8 or the namespaces it creates, except the hosts a user names in an ssh hosts file (its own
//! tests reach those only as namespaces they create).

pub mod deployment;
mod fault_target;
pub mod heal;
pub mod probe;
mod record;
pub mod run;
pub mod spec;
pub mod ssh;
pub mod state;
pub mod suite;
pub mod sys;
pub mod trace;
pub mod unclassified;

pub use deployment::{Backend, Deployment, MemberChange, NodeInfo};
pub use fault_target::FaultTarget;
pub use heal::{heal_run, HealReport};
pub use run::{run, RunConfig, RunError, RunOutcome};
pub use spec::{DbSpec, LoadedSpec, SpecError};

/// What can go wrong in the harness. `src/cmd/run.rs` maps each kind to an exit code: the user's input
/// (254), the run failing (3), or faultline itself failing (255).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The DB spec is wrong (the user's input: exit 254).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A flag or input is wrong (exit 254).
    #[error("{0}")]
    BadInput(String),
    /// The results store (`--store`) cannot hold the run.
    #[error("--store {}: {source}", dir.display())]
    Store {
        dir: std::path::PathBuf,
        #[source]
        source: results::StoreError,
    },
    /// A system command (`ip`, `iptables`) failed.
    #[error("{command}: {reason}")]
    System { command: String, reason: String },
    /// The system under test could not be set up (a node exited, never became ready...): exit 3.
    #[error("{0}")]
    Setup(String),
    /// A node cannot do what was asked now (it is not running, already running, torn down, unknown...).
    #[error("{node}: {reason}")]
    Node { node: String, reason: String },
    /// A node's lazyfs data directory could not be mounted or crashed.
    #[error("{node}: {source}")]
    Lazyfs {
        node: String,
        #[source]
        source: lazyfs::LazyError,
    },
    /// Signalling a node's process group failed.
    #[error("signal {signal} to {node}: {source}")]
    Signal {
        node: String,
        signal: nix::sys::signal::Signal,
        #[source]
        source: nix::Error,
    },
    /// A command run where a node's network lives could not be started.
    #[error("{command}: {source}")]
    Exec {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The spec's membership action did not succeed on any node in time.
    #[error("membership {change:?} of {node}: {last}")]
    Membership {
        change: MemberChange,
        node: String,
        last: String,
    },
    /// A membership request of a membership fault failed.
    #[error("{request}: {reason}")]
    MemberRequest { request: String, reason: String },
    /// A host of the ssh backend cannot be reached, lost its connection, or a command there timed out or
    /// failed (exit 3). One line: the host and the SSH error.
    #[error("{host}: ssh: {reason}")]
    Ssh { host: String, reason: String },
    /// The HTTP client for the spec's probes could not be built.
    #[error("http client: {0}")]
    Http(#[source] reqwest::Error),
    /// The run was interrupted (SIGINT/SIGTERM) and torn down.
    #[error("interrupted by {0}; everything the run created was removed")]
    Interrupted(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The run record (`test.json`) could not be written.
    #[error(transparent)]
    Record(#[from] results::RecordError),
    /// The history file could not be written.
    #[error("history: {0}")]
    History(#[from] workloads::RecorderError),
    /// The clients failed (not an operation failing: the driver itself).
    #[error("{phase}: {source}")]
    Clients {
        phase: &'static str,
        #[source]
        source: workloads::DriveError,
    },
    /// The history could not be read back for the check.
    #[error("reading the history back: {0}")]
    ReadBack(#[source] Box<checker::HistoryError>),
    /// The nemesis failed outside a fault (healing its leftovers, say).
    #[error(transparent)]
    Nemesis(Box<nemesis::NemesisError>),
    /// A task of the harness panicked (a bug of faultline: exit 255).
    #[error("{task} panicked: {source}")]
    Panicked {
        task: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The async runtime could not be built (exit 255).
    #[error("tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl HarnessError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
        let context = context.into();
        move |source| HarnessError::Io { context, source }
    }

    /// Whether the user's input is at fault (exit 254).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, HarnessError::Spec(_) | HarnessError::BadInput(_))
    }
}

impl From<checker::HistoryError> for HarnessError {
    fn from(e: checker::HistoryError) -> Self {
        HarnessError::ReadBack(Box::new(e))
    }
}

impl From<nemesis::NemesisError> for HarnessError {
    fn from(e: nemesis::NemesisError) -> Self {
        HarnessError::Nemesis(Box::new(e))
    }
}
