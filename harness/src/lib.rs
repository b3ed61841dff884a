//! # harness
//!
//! Runs a test against a real cluster: loads a DB spec ([`spec`]), creates the hosts and starts the nodes
//! ([`deployment`]: the `local` backend on loopback ports, the `netns` backend with one network namespace per
//! node on a bridge of its own), drives the clients and the nemesis, heals, reads back, tears down, checks and
//! writes the run folder ([`runner`]). Everything it creates is written to the run's state file ([`state`])
//! before or as it is created, so [`heal`] can remove whatever a killed harness left.
//!
//! It is **not** where clients, faults, checking or reports are implemented: those live in `workloads`,
//! `nemesis`, `checker` and `results`; the harness wires them together. It never talks to an address outside
//! 127.0.0.0/8 or the namespaces it creates.

pub mod deployment;
pub mod heal;
mod record;
pub mod runner;
pub mod spec;
pub mod state;
pub mod suite;
pub mod sys;

pub use deployment::{Backend, Deployment, MemberChange, NodeInfo};
pub use heal::{heal_run, HealReport};
pub use runner::{run, RunConfig, RunOutcome};
pub use spec::{DbSpec, LoadedSpec, SpecError};

/// What can go wrong in the harness.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The DB spec is wrong (the user's input: exit 254).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A flag or input is wrong (exit 254).
    #[error("{0}")]
    BadInput(String),
    /// A system command (`ip`, `iptables`) failed.
    #[error("{command}: {reason}")]
    System { command: String, reason: String },
    /// The system under test could not be set up (a node exited, never became ready...): exit 3.
    #[error("{0}")]
    Setup(String),
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
    /// Another crate failed (workloads, nemesis, results, checker).
    #[error("{0}")]
    Other(String),
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
