//! The nemesis's errors. Messages are one line and carry no "nemesis:" prefix: the caller says which flag
//! or phase they belong to (e.g. `--nemesis: unknown fault kind "x" (known: ...)`).

use crate::cluster::ClusterError;

/// Everything that can go wrong in the nemesis.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// `--nemesis` named a fault kind this crate does not know.
    #[error("unknown fault kind \"{name}\" (known: {known})")]
    UnknownFault { name: String, known: String },
    /// A flag's value is out of range.
    #[error("{flag}: {message}")]
    BadOption { flag: &'static str, message: String },
    /// The fault cannot work for this cluster or on this machine; the message says why. Decided before the
    /// run (or from the machine's answer to a probe), never from how the cluster behaves during it.
    #[error("{0}")]
    Unsupported(String),
    /// A fault aimed at the leader found none to aim at during the run (no node claims to lead, the probe
    /// did not answer in time, no new leader was elected): the step is undone and recorded as failed.
    #[error("{fault}: {reason}")]
    NoLeader { fault: String, reason: String },
    /// A command the nemesis ran (iptables, tc, ...) failed.
    #[error("`{argv}` on {place} failed ({status}): {stderr}")]
    Command {
        place: String,
        argv: String,
        status: String,
        stderr: String,
    },
    /// The cluster could not do what was asked.
    #[error("{action} {node}: {source}")]
    Cluster {
        action: &'static str,
        node: String,
        #[source]
        source: ClusterError,
    },
    /// Reading or writing a local file (a faketime control file, a cgroup) failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Several steps of a heal failed; each is listed.
    #[error("healing failed: {}", .0.join("; "))]
    Heal(Vec<String>),
}
