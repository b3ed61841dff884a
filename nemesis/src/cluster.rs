//! What the nemesis needs from a cluster: the [`Cluster`] trait the harness implements for each backend, and
//! the [`EventSink`] through which every fault is recorded in the history.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;

/// A boxed, sendable future: what the [`Cluster`] methods return, so that `dyn Cluster` works.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How the nodes of a cluster are laid out on the network; decides how network faults are expressed. (The
/// harness's `Backend` says where nodes run; each of its backends that can be faulted has one layout.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetLayout {
    /// Every node is a process on the host, listening on its own ports of a loopback address. Network faults
    /// are rules in the host's `OUTPUT` chain that match the sending node's cgroup and the receiving node's
    /// ports (see `docs/nemesis.md`).
    Local,
    /// Every node lives in its own network namespace with its own address. Network faults are rules in the
    /// `INPUT` chain inside the receiving node's namespace that match the sending node's address.
    Netns,
}

/// One node of the cluster, as the nemesis sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's name as the spec and the history know it (`n1`, `n2`, ...).
    pub id: String,
    /// The address its peers reach it at (the namespace's address, or a loopback address).
    pub addr: IpAddr,
    /// Every port it listens on (client and peer ports).
    pub ports: Vec<u16>,
    /// The network namespace it runs in (netns backend).
    pub netns: Option<String>,
    /// Local backend: the node's own cgroup v2, as a path relative to the cgroup2 root (what
    /// `iptables -m cgroup --path` takes). Every process of the node, and only those, must run in it; see
    /// [`crate::NodeCgroup`]. Without it, network faults are refused on the local backend.
    pub cgroup: Option<String>,
    /// The libfaketime control file the node was started with (see [`crate::clock::faketime_env`]). Without
    /// it, clock faults are refused for this node.
    pub faketime_file: Option<PathBuf>,
}

/// What a command run through [`Cluster::exec`] produced.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// The exit code (`None` when ended by a signal).
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// An error of the cluster (the harness's side), carried as a message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClusterError(pub String);

/// What the nemesis needs from a cluster. The harness implements it for each backend.
///
/// Every method is async through [`BoxFuture`], so a runner can hold an `Arc<dyn Cluster>`.
pub trait Cluster: Send + Sync {
    /// How the nodes are laid out.
    fn layout(&self) -> NetLayout;

    /// The nodes, in a stable order (the schedule depends on it).
    fn nodes(&self) -> Vec<Node>;

    /// Runs `argv` (a program and its arguments, never a shell string) where `node`'s network stack lives:
    /// inside its namespace (`ip netns exec NS ...`) on the netns backend, on the host on the local backend.
    /// A non-zero exit is not an error here: it is returned in [`ExecOutput::status`].
    fn exec<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<ExecOutput, ClusterError>>;

    /// SIGKILLs the node's process group and waits until it is gone.
    fn kill<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>>;

    /// Starts a killed node again with the same arguments and the same data directory. Need not wait for it
    /// to be ready.
    fn restart<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>>;

    /// SIGSTOPs the node's process group.
    fn pause<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>>;

    /// SIGCONTs the node's process group.
    fn resume<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>>;

    /// The current leader's id through the spec's status probe, or `None` when no node claims to lead.
    fn leader(&self) -> BoxFuture<'_, Result<Option<String>, ClusterError>>;

    /// Spare nodes for membership faults: hosts (address, ports, namespace) created with the cluster but never
    /// started, which a membership change may add as fresh members. Not among [`Cluster::nodes`].
    fn spares(&self) -> Vec<Node> {
        Vec::new()
    }

    /// Changes the membership through the system's own membership actions (the DB spec's): `remove` leave and
    /// `add` join, in one request when the system takes several at once, else one request each. Each node of
    /// `add` is stopped with its data wiped (a spare, or a node [`Cluster::retire`]d earlier) and is started
    /// as a joining member (before or after its request, as the system needs); `members` is the membership
    /// the change leads to (what a joining node may have to be told). Returns once the system acknowledged
    /// the change, or why not. Nodes removed keep running: [`Cluster::retire`] stops them. `via`: ask only
    /// this node (member-split must ask the leader it cut off); `None`: the leader first, then the others.
    fn change_members<'a>(
        &'a self,
        add: &'a [String],
        remove: &'a [String],
        members: &'a [String],
        via: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        let _ = (add, remove, members, via);
        Box::pin(async { Err(ClusterError("this cluster cannot change its membership".into())) })
    }

    /// Stops a node that is no longer a member and wipes its data, so that it can only join again as a new
    /// member.
    fn retire<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>> {
        let _ = node;
        Box::pin(async { Err(ClusterError("this cluster cannot retire nodes".into())) })
    }
    /// Whether clock faults can work here; the reason when they cannot (`clock` is then refused before the
    /// run). By default: when libfaketime is installed on this machine (the nodes run here). A cluster whose
    /// nodes run elsewhere looks it up where they run, before starting them (a node started under libfaketime
    /// has a [`Node::faketime_file`]).
    fn clock_faults(&self) -> Result<(), String> {
        crate::clock::available_here()
    }

    /// Sets `node`'s clock to true time plus `offset_ms` (negative: behind) through the libfaketime control
    /// file it was started with ([`Node::faketime_file`]; the node re-reads it every second). By default the
    /// file is on this machine and written here; a cluster whose nodes run elsewhere writes it where the node
    /// runs. Each call is one write, so a strobe's flips each cost one.
    fn set_clock<'a>(&'a self, node: &'a str, offset_ms: i64) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let file = self
                .nodes()
                .into_iter()
                .chain(self.spares())
                .find(|n| n.id == node)
                .and_then(|n| n.faketime_file)
                .ok_or_else(|| ClusterError(format!("{node}: not started under libfaketime")))?;
            crate::clock::write_offset(&file, offset_ms).map_err(|e| ClusterError(e.to_string()))
        })
    }

    /// Whether [`Cluster::lose_unsynced`] works here; the reason when it does not (`lose-unsynced` is then
    /// refused before the run). By default it does not.
    fn durability(&self) -> Result<(), String> {
        Err("its nodes' data directories are not lazyfs mounts".into())
    }

    /// Drops every write to a *killed* node's data directory that the node did not sync (a lazyfs crash), so
    /// that its restart sees what a disk would hold after a power cut. By default refused.
    fn lose_unsynced<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<DataLoss, ClusterError>> {
        Box::pin(async move {
            Err(ClusterError(format!(
                "{node}: its data directory is not a lazyfs mount"
            )))
        })
    }
}

/// What a node lost in a [`Cluster::lose_unsynced`], as recorded in the history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DataLoss {
    /// Files whose data or size changed since their last sync.
    pub files: usize,
    /// Un-synced cached bytes dropped (whole pages).
    pub bytes: u64,
    /// Directories whose entries changed since their last sync.
    pub dirs: usize,
}

/// Where the nemesis records each fault's start and stop: the harness forwards these to the history as
/// `{"process":"nemesis","type":"info","f":F,"value":VALUE}`.
///
/// Any `Fn(&str, serde_json::Value) + Send + Sync` closure is a sink.
pub trait EventSink: Send + Sync {
    /// Records one nemesis event: `f` (`start-partition`, `kill`, ...) and what exactly was done.
    fn record(&self, f: &str, value: serde_json::Value);
}

impl<F> EventSink for F
where
    F: Fn(&str, serde_json::Value) + Send + Sync,
{
    fn record(&self, f: &str, value: serde_json::Value) {
        self(f, value)
    }
}
