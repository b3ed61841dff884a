//! The nemesis: the faults faultline injects into a cluster under test, and their seeded schedules.
//!
//! What it is for:
//! - [`Cluster`]: the small trait of what the nemesis needs from a cluster (its nodes and addresses, running a
//!   command in a node's network namespace, kill/restart, pause/resume, finding the leader). The harness
//!   implements it for each backend; this crate never starts nodes itself.
//! - Faults: partitions of six shapes ([`Shape`]) and packet loss, as iptables rules in faultline's own chain
//!   ([`chain_name`]); kills and pauses through the trait; the zombie leader (a paused leader resumed cut off
//!   from the leader elected meanwhile: a pause and a partition together); clock bumps and strobes through libfaketime
//!   ([`clock`]); delay through tc netem where the kernel has it; membership changes through the cluster's
//!   own membership actions, among them the composite member-split ([`membership`]); power cuts that drop every node's un-synced
//!   writes (`lose-unsynced`, through [`Cluster::lose_unsynced`]); crash faults (several nodes killed at once,
//!   kills during an election, a majority restarted in turn) and the composites built from kills, pauses and
//!   cuts around a leader change (minority-leader, crash-electorate, lagging-failover).
//! - [`Schedule`]: which fault starts or stops when, a pure function of seed, nodes, kinds and options.
//! - [`Nemesis`]: follows a schedule, records every start and stop through an [`EventSink`], and heals
//!   everything at the end; [`heal_leftovers`] cleans up after a harness that was killed.
//!
//! What it is not: it does not start or stop clusters, write the history file (the sink does), or decide
//! whether a run is valid. It only ever adds and deletes its own iptables rules and chain.
//!
//! See `docs/nemesis.md` for every fault, exactly what it does, and what the local backend cannot express.

pub mod cgroup;
pub mod clock;
mod cluster;
mod crash;
mod durability;
mod error;
mod firewall;
mod leftovers;
pub mod membership;
mod partition;
mod rng;
mod runner;
mod schedule;

pub use cgroup::NodeCgroup;
pub use cluster::{BoxFuture, Cluster, ClusterError, DataLoss, EventSink, ExecOutput, NetLayout, Node};
pub use crash::CrashKind;
pub use error::NemesisError;
pub use firewall::{chain_name, iptables, removal_commands, CHAIN_PREFIX};
pub use leftovers::heal_leftovers;
pub use partition::{Drops, Partition, Shape};
pub use runner::Nemesis;
pub use schedule::{Action, FaultSet, Schedule, ScheduleOptions, Step, KNOWN_FAULTS};
