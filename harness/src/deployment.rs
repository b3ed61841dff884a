//! A [`Deployment`]: the cluster under test as the harness made it: its hosts (loopback ports, or one network
//! namespace per node on a bridge of ours), its node processes, the spec's probes, and the tear-down. (The
//! nemesis sees it through its `nemesis::Cluster` trait.)
//!
//! Every resource is written to the run's state file as it is created; [`Deployment::teardown`] undoes them
//! all (it is also what a [`TeardownGuard`] does when dropped during a panic).

use crate::heal::HealReport;
use crate::spec::{signal_from_name, LoadedSpec, ProbeKind, Vars};
use crate::state::{Resource, StateFile};
use crate::{sys, HarnessError};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Child processes on 127.0.0.1 with free ports; no root needed.
    Local,
    /// One network namespace per node, each with its own address on a bridge the harness creates. Root.
    Netns,
    /// The spec's `[external]` nodes, already running on loopback: nothing is started or faulted.
    External,
    /// One node per host of a hosts file, reached over SSH (`crate::ssh`).
    Ssh,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Netns => "netns",
            Backend::External => "external",
            Backend::Ssh => "ssh",
        }
    }
}

/// A membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Add,
    Remove,
}

/// One node of the cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeInfo {
    /// `n1`, `n2`, ...
    pub id: String,
    /// 1-based.
    pub index: usize,
    pub host: IpAddr,
    pub client_port: u16,
    pub peer_port: u16,
    /// The namespace it runs in (netns backend).
    pub netns: Option<String>,
    /// Where clients connect, `host:port`.
    pub client_address: String,
    pub data_dir: PathBuf,
    /// stdout and stderr of the node.
    pub log_path: PathBuf,
    /// The start command, placeholders filled, the program resolved.
    pub argv: Vec<String>,
    /// The spec's `join_args`, placeholders filled: appended when the node joins a running cluster.
    #[serde(skip)]
    pub join_argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Local backend: the node's own cgroup (relative to the cgroup2 root), so the nemesis can cut it.
    pub cgroup: Option<String>,
    #[serde(skip)]
    cgroup_procs: Option<std::ffi::CString>,
    /// The libfaketime control file the node was started with (clock faults).
    pub faketime_file: Option<PathBuf>,
    /// A spare: created with the cluster but not a member at first, started only when a membership change
    /// adds it.
    pub spare: bool,
    /// Ssh backend: the host it runs on (index in the hosts file) and its log there (`log_path` is the local
    /// copy, downloaded at teardown).
    #[serde(skip)]
    pub ssh: Option<(usize, PathBuf)>,
}

impl NodeInfo {
    /// A node faultline did not start, serving at `addr` (written `address`): an `[external]` cluster's.
    fn external(id: &str, index: usize, addr: SocketAddr, address: &str) -> NodeInfo {
        NodeInfo {
            id: id.to_string(),
            index,
            host: addr.ip(),
            client_port: addr.port(),
            peer_port: addr.port(),
            netns: None,
            client_address: address.to_string(),
            data_dir: PathBuf::new(),
            log_path: PathBuf::new(),
            argv: Vec::new(),
            join_argv: Vec::new(),
            env: Vec::new(),
            cgroup: None,
            cgroup_procs: None,
            faketime_file: None,
            spare: false,
            ssh: None,
        }
    }

    /// A node on loopback at `address`, for unit tests of the probes.
    #[cfg(test)]
    pub(crate) fn for_tests(id: &str, address: &str) -> NodeInfo {
        let addr: SocketAddr = address.parse().expect("a test address");
        let index = id.trim_start_matches('n').parse().unwrap_or(1);
        NodeInfo::external(id, index, addr, address)
    }
}

/// One membership request, its placeholders filled in.
enum MemberRequest {
    /// Method, path, body.
    Http(String, String, Option<String>),
    /// A RESP command or a program, with the placeholders of the node it is about.
    Query(ProbeKind, Vars, Vec<String>),
}

struct NodeProc {
    /// `None` on the ssh backend (the process runs on another host).
    child: Option<Child>,
    pid: i32,
    start_time: u64,
}

/// What a cluster is made of, decided before anything is created.
#[derive(Debug, Clone)]
pub struct DeploymentOptions {
    pub backend: Backend,
    pub nodes: usize,
    /// Appended to every node's command (`--node-arg`).
    pub node_args: Vec<String>,
    /// The run folder: node logs go to `nodes/<id>.log`, data to `nodes/<id>/`.
    pub run_dir: PathBuf,
    /// Short unique id of the run: names namespaces, links and chains.
    pub run_id: String,
    /// Local backend: put each node in a cgroup of its own (network faults need it).
    pub cgroups: bool,
    /// Start each node under libfaketime (clock faults need it).
    pub faketime: bool,
    /// Spare hosts created after the `nodes` members, for membership faults (`n{nodes+1}`, ...).
    pub spares: usize,
    /// Serve each node's data directory from lazyfs (the `lose-unsynced` fault needs it): the durable data lives
    /// in `nodes/<id>.disk/`, the mount at `nodes/<id>/`.
    pub lazyfs: Option<lazyfs::Names>,
    /// Ssh backend: the hosts and whether a host key not yet known may be added.
    pub ssh: Option<crate::ssh::SshOptions>,
}

impl DeploymentOptions {
    /// `nodes` nodes on `backend` with a fresh run id, their files in `run_dir`, and nothing else: no node
    /// arguments, cgroups, libfaketime, spares, lazyfs or hosts.
    pub fn plain(backend: Backend, nodes: usize, run_dir: PathBuf) -> DeploymentOptions {
        DeploymentOptions {
            backend,
            nodes,
            node_args: Vec::new(),
            run_dir,
            run_id: new_run_id(),
            cgroups: false,
            faketime: false,
            spares: 0,
            lazyfs: None,
            ssh: None,
        }
    }
}

/// The nodes of one run, started from a spec on one [`Backend`].
pub struct Deployment {
    run_id: String,
    backend: Backend,
    spec: Arc<LoadedSpec>,
    nodes: Vec<NodeInfo>,
    procs: Mutex<BTreeMap<String, NodeProc>>,
    state: StateFile,
    bridge: Option<(String, Ipv4Addr)>,
    http: reqwest::Client,
    stop_signal: Signal,
    stop_grace: Duration,
    torn_down: AtomicBool,
    /// Held while a node is being started and while the tear-down begins: a start still in flight when the
    /// run ends (a restart that took long on a remote host) is recorded before the tear-down reads the state,
    /// or refused.
    lifecycle: Mutex<()>,
    /// Membership changes: the members, the arguments each node was last started with (a restart reuses
    /// them), and the client addresses of the running members for the workload.
    members: Mutex<Vec<String>>,
    last_argv: Mutex<BTreeMap<String, Vec<String>>>,
    member_view: tokio::sync::watch::Sender<Vec<String>>,
    node_args: Vec<String>,
    /// lazyfs mounts over the data directories, by node.
    mounts: Mutex<BTreeMap<String, lazyfs::Mount>>,
    /// Ssh backend: the connections to the hosts.
    ssh: Option<crate::ssh::Remotes>,
}

/// Picks a unique run id (8 hex digits): names of namespaces, links and chains derive from it.
pub fn new_run_id() -> String {
    use rand::Rng;
    let mut r = rand::thread_rng();
    format!("{:08x}", r.gen::<u32>() ^ std::process::id().rotate_left(16))
}

/// One host of the cluster before its node is planned: its address, ports and namespace.
struct Host {
    host: IpAddr,
    client_port: u16,
    peer_port: u16,
    netns: Option<String>,
}

impl Host {
    fn new(host: IpAddr, client_port: u16, peer_port: u16, netns: Option<String>) -> Host {
        Host {
            host,
            client_port,
            peer_port,
            netns,
        }
    }

    /// The placeholders of the `i`-th (0-based) node on this host that every peer entry also uses.
    fn vars(&self, i: usize) -> Vars {
        let mut v = Vars::new();
        v.set("id", format!("n{}", i + 1))
            .set("index", i + 1)
            .set("host", self.host)
            .set("port", self.client_port)
            .set("client_port", self.client_port)
            .set("peer_port", self.peer_port);
        v
    }
}

/// What every node of a cluster is planned from.
struct NodePlan<'a> {
    opts: &'a DeploymentOptions,
    /// The spec's program, resolved.
    program: &'a Path,
    /// Ssh backend: per host, where `[install]` put the program (the nodes run that copy).
    remote_programs: &'a [Option<PathBuf>],
    /// The run's `nodes/` folder.
    nodes_dir: &'a Path,
    /// Every member's `[peers] format` entry.
    all: &'a [String],
}

/// The nodes of an `[external]` cluster: already running at the spec's loopback addresses.
fn external_nodes(ext: &crate::spec::External) -> Result<Vec<NodeInfo>, HarnessError> {
    let mut nodes = Vec::new();
    for (i, n) in ext.nodes.iter().enumerate() {
        let addr: SocketAddr = n
            .address
            .parse()
            .map_err(|_| HarnessError::BadInput(n.address.clone()))?;
        nodes.push(NodeInfo::external(&n.id, i + 1, addr, &n.address));
    }
    Ok(nodes)
}

const CLAIM_DIR: &str = "/run/faultline/subnets";

impl Deployment {
    /// Plans the cluster and creates its hosts (netns backend: subnet claim, bridge, FORWARD chain, one
    /// namespace and veth per node), recording each in `state` before creating it. Does not start nodes. On
    /// error, the partly built cluster is dropped, and its `Drop` removes what was created.
    pub fn create(
        spec: Arc<LoadedSpec>,
        opts: &DeploymentOptions,
        state: StateFile,
    ) -> Result<Deployment, HarnessError> {
        let mut cluster = Deployment::empty(spec.clone(), opts, state)?;
        if let Some(ext) = &spec.spec.external {
            cluster.nodes = external_nodes(ext)?;
            cluster.set_members(cluster.nodes.iter().map(|n| n.id.clone()).collect());
            return Ok(cluster);
        }
        let hosts_n = opts.nodes + opts.spares;
        if opts.nodes == 0 || hosts_n > 60 {
            return Err(HarnessError::BadInput(format!(
                "--nodes {}: must be 1..=50",
                opts.nodes
            )));
        }
        let program = crate::spec::resolve_program(&spec)?;
        let hosts = cluster.create_hosts(opts, hosts_n)?;
        // Ssh backend: the spec's `[install]` on every host, and where it put the node program on each.
        let remote_programs = match &cluster.ssh {
            Some(r) => crate::ssh::install::install(r, &spec, &program)?,
            None => Vec::new(),
        };
        let nodes_dir = opts.run_dir.join("nodes");
        std::fs::create_dir_all(&nodes_dir)
            .map_err(HarnessError::io(format!("creating {}", nodes_dir.display())))?;
        if opts.cgroups && cluster.backend == Backend::Local {
            // heal_leftovers of the nemesis removes the run's cgroups: record before creating them.
            cluster
                .state
                .record(&Resource::NemesisRun {
                    run_id: opts.run_id.clone(),
                    namespaces: Vec::new(),
                })
                .map_err(HarnessError::io("writing the state file"))?;
        }
        let peers = &spec.spec.peers;
        let all: Vec<String> = hosts[..opts.nodes]
            .iter()
            .enumerate()
            .map(|(i, h)| h.vars(i).fill(&peers.format))
            .collect();
        let plan = NodePlan {
            opts,
            program: &program,
            remote_programs: &remote_programs,
            nodes_dir: &nodes_dir,
            all: &all,
        };
        for (i, h) in hosts.iter().enumerate() {
            let node = cluster.plan_node(&plan, i, h)?;
            cluster.nodes.push(node);
        }
        let members = cluster
            .nodes
            .iter()
            .filter(|n| !n.spare)
            .map(|n| n.id.clone())
            .collect();
        cluster.set_members(members);
        if let Some(names) = opts.lazyfs {
            cluster.mount_data_dirs(names)?;
        }
        Ok(cluster)
    }

    /// A deployment with no nodes yet: its backend (`external` when the spec names its nodes), HTTP client and
    /// stop settings, its run recorded in `state`.
    fn empty(
        spec: Arc<LoadedSpec>,
        opts: &DeploymentOptions,
        state: StateFile,
    ) -> Result<Deployment, HarnessError> {
        let s = &spec.spec;
        let backend = if s.external.is_some() {
            Backend::External
        } else {
            opts.backend
        };
        let stop_signal = signal_from_name(&s.stop.signal).unwrap_or(Signal::SIGTERM);
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(HarnessError::Http)?;
        state
            .record(&Resource::Run {
                run_id: opts.run_id.clone(),
                backend: backend.name().into(),
                harness_pid: std::process::id(),
                harness_start_time: crate::state::proc_start_time(std::process::id() as i32)
                    .map(|(t, _)| t)
                    .unwrap_or(0),
            })
            .map_err(HarnessError::io("writing the state file"))?;
        Ok(Deployment {
            run_id: opts.run_id.clone(),
            backend,
            stop_grace: Duration::from_secs_f64(s.stop.timeout_s),
            spec: spec.clone(),
            nodes: Vec::new(),
            procs: Mutex::new(BTreeMap::new()),
            state,
            bridge: None,
            http,
            stop_signal,
            torn_down: AtomicBool::new(false),
            lifecycle: Mutex::new(()),
            members: Mutex::new(Vec::new()),
            last_argv: Mutex::new(BTreeMap::new()),
            member_view: tokio::sync::watch::channel(Vec::new()).0,
            node_args: opts.node_args.clone(),
            mounts: Mutex::new(BTreeMap::new()),
            ssh: None,
        })
    }

    /// Makes `hosts_n` hosts on the backend: free loopback ports (local), a namespace each on a bridge of
    /// ours (netns), or connections to the hosts file's hosts (ssh).
    fn create_hosts(&mut self, opts: &DeploymentOptions, hosts_n: usize) -> Result<Vec<Host>, HarnessError> {
        let ports = &self.spec.spec.ports;
        let mut hosts = Vec::new();
        match self.backend {
            Backend::Local => {
                let mut listeners = Vec::new();
                for _ in 0..hosts_n {
                    let c = free_port(&mut listeners)?;
                    let p = if ports.client == ports.peer {
                        c
                    } else {
                        free_port(&mut listeners)?
                    };
                    hosts.push(Host::new(IpAddr::V4(Ipv4Addr::LOCALHOST), c, p, None));
                }
            }
            Backend::Netns => {
                let (prefix, bridge_ip) = self.create_network(hosts_n)?;
                self.bridge = Some((format!("flb-{}", opts.run_id), bridge_ip));
                for i in 1..=hosts_n {
                    let ip = Ipv4Addr::from(prefix | (10 + i as u32));
                    let netns = Some(netns_name(&opts.run_id, i));
                    hosts.push(Host::new(IpAddr::V4(ip), ports.client, ports.peer, netns));
                }
            }
            Backend::Ssh => {
                let o = opts
                    .ssh
                    .as_ref()
                    .ok_or_else(|| HarnessError::BadInput("--backend ssh: needs --hosts FILE".into()))?;
                let remotes = crate::ssh::connect_hosts(&self.state, o, hosts_n, &opts.run_id)?;
                for h in remotes.hosts() {
                    hosts.push(Host::new(h.address, ports.client, ports.peer, None));
                }
                self.ssh = Some(remotes);
            }
            Backend::External => unreachable!("an external cluster has no hosts to create"),
        }
        Ok(hosts)
    }

    /// The `i`-th node (0-based) on host `h`: its placeholders, command, environment, cgroup and faketime file.
    fn plan_node(&self, plan: &NodePlan, i: usize, h: &Host) -> Result<NodeInfo, HarnessError> {
        let (s, opts) = (&self.spec.spec, plan.opts);
        let id = format!("n{}", i + 1);
        let remote_dir = self
            .ssh
            .as_ref()
            .map(|r| crate::ssh::run_dir(&r.hosts()[i], &opts.run_id));
        let data_dir = match &remote_dir {
            Some(d) => d.join(&id),
            None => plan.nodes_dir.join(&id),
        };
        let peers: Vec<&str> = plan
            .all
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, e)| e.as_str())
            .collect();
        let (host, cport, pport) = (h.host, h.client_port, h.peer_port);
        let mut v = h.vars(i);
        v.set("data_dir", data_dir.display())
            .set("peers", peers.join(&s.peers.separator))
            .set("initial_cluster", plan.all.join(&s.peers.separator))
            .set("client_urls", format!("http://{host}:{cport}"))
            .set("peer_urls", format!("http://{host}:{pport}"))
            .set("cluster_token", format!("faultline-{}", opts.run_id))
            .set("run_dir", opts.run_dir.display());
        let mut argv: Vec<String> = s.command.iter().map(|a| v.fill(a)).collect();
        argv[0] = match plan.remote_programs.get(i) {
            Some(Some(p)) => p.display().to_string(),
            _ => plan.program.display().to_string(),
        };
        argv.extend(opts.node_args.iter().cloned());
        let join_argv: Vec<String> = s.join_args.iter().map(|a| v.fill(a)).collect();
        let mut env: Vec<(String, String)> = s.env.iter().map(|(k, val)| (k.clone(), v.fill(val))).collect();
        let (cgroup, cgroup_procs) = self.node_cgroup(opts, &id);
        let mut faketime_file = None;
        if opts.faketime {
            let (file, fenv) = self.faketime(plan, i, &id, remote_dir.as_deref())?;
            env.extend(fenv);
            faketime_file = Some(file);
        }
        Ok(NodeInfo {
            id: id.clone(),
            index: i + 1,
            host,
            client_port: cport,
            peer_port: pport,
            netns: h.netns.clone(),
            client_address: v.fill(&s.client_address),
            data_dir,
            log_path: plan.nodes_dir.join(format!("{id}.log")),
            argv,
            join_argv,
            env,
            cgroup,
            cgroup_procs,
            faketime_file,
            spare: i >= opts.nodes,
            ssh: remote_dir.map(|d| (i, d.join(format!("{id}.log")))),
        })
    }

    /// The libfaketime control file of node `id` (on host `i`) and the environment that makes the node read
    /// it: in `nodes/` here, or in the run's folder `remote_dir` on its ssh host (recorded in the state file
    /// first; libfaketime is looked up on that host).
    fn faketime(
        &self,
        plan: &NodePlan,
        i: usize,
        id: &str,
        remote_dir: Option<&Path>,
    ) -> Result<(PathBuf, Vec<(String, String)>), HarnessError> {
        if let (Some(r), Some(dir)) = (&self.ssh, remote_dir) {
            let file = dir.join(format!("{id}.faketime"));
            self.state
                .record(&Resource::SshFile {
                    host: i,
                    path: file.display().to_string(),
                })
                .map_err(HarnessError::io("writing the state file"))?;
            let env = crate::ssh::faketime_env(r, i, &file)?;
            return Ok((file, env));
        }
        let file = plan.nodes_dir.join(format!("{id}.faketime"));
        let env = nemesis::clock::faketime_env(&file)
            .map_err(|e| HarnessError::BadInput(format!("--nemesis clock: {e}")))?;
        Ok((file, env))
    }

    /// Local backend with cgroups: the node's own cgroup and its `cgroup.procs` file. Without one (none
    /// asked, another backend, or the cgroup could not be made, which is logged) network faults are refused.
    fn node_cgroup(&self, opts: &DeploymentOptions, id: &str) -> (Option<String>, Option<std::ffi::CString>) {
        if !opts.cgroups || self.backend != Backend::Local {
            return (None, None);
        }
        match nemesis::NodeCgroup::create(&opts.run_id, id) {
            Ok(cg) => (
                Some(cg.path().to_string()),
                std::ffi::CString::new(cg.procs_file().display().to_string()).ok(),
            ),
            Err(e) => {
                tracing::warn!("no cgroup for {id}, network faults will be refused: {e}");
                (None, None)
            }
        }
    }

    /// Mounts lazyfs over every node's data directory, each recorded in the state file first.
    fn mount_data_dirs(&self, names: lazyfs::Names) -> Result<(), HarnessError> {
        for n in self.nodes.iter().filter(|n| !n.spare) {
            let backing = n.data_dir.with_file_name(format!("{}.disk", n.id));
            let work = n.data_dir.with_file_name(format!("{}.disk-work", n.id));
            for d in [&backing, &n.data_dir] {
                std::fs::create_dir_all(d).map_err(HarnessError::io(format!("creating {}", d.display())))?;
            }
            self.state
                .record(&Resource::Mount {
                    node: n.id.clone(),
                    path: n.data_dir.display().to_string(),
                })
                .map_err(HarnessError::io("writing the state file"))?;
            let m = lazyfs::Mount::new(&backing, &work, &n.data_dir, names).map_err(|e| match e {
                lazyfs::LazyError::Unavailable(why) => {
                    HarnessError::BadInput(format!("--nemesis lose-unsynced: {why}"))
                }
                source => HarnessError::Lazyfs {
                    node: n.id.clone(),
                    source,
                },
            })?;
            self.mounts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(n.id.clone(), m);
        }
        Ok(())
    }

    /// Whether the data directories are lazyfs mounts.
    pub fn has_lazyfs(&self) -> bool {
        !self.mounts.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// Drops what a stopped node's data directory did not sync (a lazyfs crash).
    pub fn lose_unsynced(&self, id: &str) -> Result<lazyfs::Lost, HarnessError> {
        let node_err = |reason: &str| HarnessError::Node {
            node: id.to_string(),
            reason: reason.to_string(),
        };
        if self.process_of(id).is_some() {
            return Err(node_err("is running: kill it before it loses its data"));
        }
        let mounts = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        let m = mounts
            .get(id)
            .ok_or_else(|| node_err("its data directory is not a lazyfs mount"))?;
        m.crash().map_err(|source| HarnessError::Lazyfs {
            node: id.to_string(),
            source,
        })
    }

    /// Netns backend: claims a /24, creates the bridge, the FORWARD chain, and one namespace + veth per node.
    /// Returns the subnet prefix and the bridge's address.
    fn create_network(&self, n: usize) -> Result<(u32, Ipv4Addr), HarnessError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(HarnessError::BadInput(
                "--backend netns needs root (namespaces, bridge, iptables); use --backend local".into(),
            ));
        }
        let id = &self.run_id;
        let rec = |r: Resource| {
            self.state
                .record(&r)
                .map_err(HarnessError::io("writing the state file"))
        };
        let (prefix, claim, subnet) = claim_subnet(id)?;
        rec(Resource::SubnetClaim {
            path: claim.display().to_string(),
            subnet: subnet.clone(),
        })?;
        let bridge = format!("flb-{id}");
        let bridge_ip = Ipv4Addr::from(prefix | 1);
        rec(Resource::Bridge { name: bridge.clone() })?;
        sys::run(&["ip", "link", "add", &bridge, "type", "bridge"])?;
        sys::run(&["ip", "addr", "add", &format!("{bridge_ip}/24"), "dev", &bridge])?;
        sys::run(&["ip", "link", "set", &bridge, "up"])?;
        // Bridged traffic between namespaces crosses the host's FORWARD chain: accept ours explicitly, in a
        // chain of our own, so a host whose FORWARD policy is DROP still works.
        let chain = format!("FL-FWD-{id}");
        rec(Resource::Chain {
            table: "filter".into(),
            chain: chain.clone(),
            from: "FORWARD".into(),
        })?;
        sys::run(&["iptables", "-w", "-N", &chain])?;
        sys::run(&["iptables", "-w", "-A", &chain, "-i", &bridge, "-j", "ACCEPT"])?;
        sys::run(&["iptables", "-w", "-A", &chain, "-o", &bridge, "-j", "ACCEPT"])?;
        sys::run(&["iptables", "-w", "-I", "FORWARD", "1", "-j", &chain])?;
        // Answers from the nodes reach the clients through the bridge: accept them too, for hosts whose INPUT
        // policy is DROP.
        let input = format!("FL-IN-{id}");
        rec(Resource::Chain {
            table: "filter".into(),
            chain: input.clone(),
            from: "INPUT".into(),
        })?;
        sys::run(&["iptables", "-w", "-N", &input])?;
        sys::run(&["iptables", "-w", "-A", &input, "-i", &bridge, "-j", "ACCEPT"])?;
        sys::run(&["iptables", "-w", "-I", "INPUT", "1", "-j", &input])?;
        for i in 1..=n {
            let ns = netns_name(id, i);
            let host_end = format!("fl{id}-{i}");
            let tmp_end = format!("fl{id}p{i}");
            rec(Resource::Netns { name: ns.clone() })?;
            sys::run(&["ip", "netns", "add", &ns])?;
            rec(Resource::Veth {
                name: host_end.clone(),
            })?;
            sys::run(&[
                "ip", "link", "add", &host_end, "type", "veth", "peer", "name", &tmp_end, "netns", &ns,
            ])?;
            sys::run(&["ip", "link", "set", &host_end, "master", &bridge])?;
            sys::run(&["ip", "link", "set", &host_end, "up"])?;
            let addr = Ipv4Addr::from(prefix | (10 + i as u32));
            sys::run(&["ip", "-n", &ns, "link", "set", &tmp_end, "name", "eth0"])?;
            sys::run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            sys::run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            sys::run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok((prefix, bridge_ip))
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }
    pub fn backend(&self) -> Backend {
        self.backend
    }
    /// Every host: the initial members, then the spares ([`NodeInfo::spare`]).
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }
    /// The initial members (every host but the spares).
    pub fn members_at_start(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.iter().filter(|n| !n.spare)
    }
    pub fn spec(&self) -> &LoadedSpec {
        &self.spec
    }
    pub fn state(&self) -> &StateFile {
        &self.state
    }
    /// The bridge and its address (netns backend).
    pub fn bridge(&self) -> Option<&(String, Ipv4Addr)> {
        self.bridge.as_ref()
    }
    /// Client addresses (`host:port`), in node order.
    pub fn client_addresses(&self) -> Vec<String> {
        self.members_at_start()
            .map(|n| n.client_address.clone())
            .collect()
    }

    fn node(&self, id: &str) -> Result<&NodeInfo, HarnessError> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| node_error(id, "no such node in the cluster"))
    }

    /// Starts every node (not waiting for readiness).
    pub fn start_all(&self) -> Result<(), HarnessError> {
        if self.backend == Backend::External {
            return Ok(());
        }
        if self.spec.spec.bootstrap == crate::spec::Bootstrap::First {
            // The first node forms the cluster alone; the others join it once it serves.
            let members: Vec<&NodeInfo> = self.members_at_start().collect();
            let Some((first, rest)) = members.split_first() else {
                return Ok(());
            };
            self.start_node(&first.id, false)?;
            self.wait_node_ready(first)?;
            for n in rest {
                self.start_node(&n.id, true)?;
            }
            return Ok(());
        }
        let ids: Vec<String> = self.members_at_start().map(|n| n.id.clone()).collect();
        for id in ids {
            self.start_node(&id, false)?;
        }
        Ok(())
    }

    /// Blocks until `n` passes the readiness probe (within the spec's ready timeout), failing when it exits.
    /// Called from a blocking thread (`start_all`).
    fn wait_node_ready(&self, n: &NodeInfo) -> Result<(), HarnessError> {
        // On the run's runtime when called from its blocking pool (the HTTP client's connections live there).
        let own;
        let rt = match tokio::runtime::Handle::try_current() {
            Ok(h) => h,
            Err(_) => {
                own = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(HarnessError::io("a runtime for the readiness probe"))?;
                own.handle().clone()
            }
        };
        let deadline = Instant::now() + Duration::from_secs_f64(self.spec.spec.ready.timeout_s);
        loop {
            if let Some(status) = self.exited(&n.id) {
                return Err(HarnessError::Setup(format!(
                    "node {} exited while forming the cluster ({status}); its log {} ends with: {}",
                    n.id,
                    n.log_path.display(),
                    log_tail(&n.log_path)
                )));
            }
            if rt.block_on(self.probe_ready(n)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Setup(format!(
                    "{} (the first node, which forms the cluster) was not ready after {} s; {} ends with: {}",
                    n.id,
                    self.spec.spec.ready.timeout_s,
                    n.log_path.display(),
                    log_tail(&n.log_path)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts one node; `join` appends the spec's `join_args`. Without `join`, a node that was started before
    /// gets the arguments of its last start (a restart).
    pub fn start_node(&self, id: &str, join: bool) -> Result<(), HarnessError> {
        let n = self.node(id)?;
        let last = self
            .last_argv
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        let argv = match last {
            Some(argv) if !join => argv,
            _ if join => {
                let mut argv = n.argv.clone();
                argv.extend(n.join_argv.iter().cloned());
                argv
            }
            _ => n.argv.clone(),
        };
        self.spawn_node(id, argv)
    }

    /// Starts a node joining the membership `members` (wiped, or as a retired node left it): its command
    /// with `{peers}` and `{initial_cluster}` listing `members`, then the spec's `join_args`.
    pub fn start_joining(&self, id: &str, members: &[String]) -> Result<(), HarnessError> {
        let n = self.node(id)?;
        let s = &self.spec.spec;
        let listed: Vec<&NodeInfo> = self.nodes.iter().filter(|m| members.contains(&m.id)).collect();
        let entry = |m: &NodeInfo| {
            let mut v = Vars::new();
            v.set("id", &m.id)
                .set("index", m.index)
                .set("host", m.host)
                .set("port", m.client_port)
                .set("client_port", m.client_port)
                .set("peer_port", m.peer_port);
            v.fill(&s.peers.format)
        };
        let all: Vec<String> = listed.iter().map(|m| entry(m)).collect();
        let peers: Vec<String> = listed.iter().filter(|m| m.id != id).map(|m| entry(m)).collect();
        let mut v = Vars::new();
        v.set("id", &n.id)
            .set("index", n.index)
            .set("host", n.host)
            .set("port", n.client_port)
            .set("client_port", n.client_port)
            .set("peer_port", n.peer_port)
            .set("data_dir", n.data_dir.display())
            .set("peers", peers.join(&s.peers.separator))
            .set("initial_cluster", all.join(&s.peers.separator))
            .set("client_urls", format!("http://{}:{}", n.host, n.client_port))
            .set("peer_urls", format!("http://{}:{}", n.host, n.peer_port))
            .set("cluster_token", format!("faultline-{}", self.run_id))
            .set(
                "run_dir",
                n.log_path
                    .parent()
                    .and_then(Path::parent)
                    .unwrap_or(Path::new(""))
                    .display(),
            );
        let mut argv: Vec<String> = s.command.iter().map(|a| v.fill(a)).collect();
        argv[0] = n.argv[0].clone();
        argv.extend(self.node_args.iter().cloned());
        argv.extend(s.join_args.iter().map(|a| v.fill(a)));
        self.spawn_node(id, argv)
    }

    fn spawn_node(&self, id: &str, argv: Vec<String>) -> Result<(), HarnessError> {
        if self.backend == Backend::External {
            return Err(node_error(id, "external nodes are not started by faultline"));
        }
        let _starting = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        if self.torn_down.load(Ordering::SeqCst) {
            return Err(node_error(id, "the cluster is torn down"));
        }
        let n = self.node(id)?;
        if self.exited(id).is_none() && self.process_of(id).is_some() {
            let pid = self.process_of(id).map(|p| p.0).unwrap_or(0);
            return Err(node_error(id, format!("already running (pid {pid})")));
        }
        if let (Some(r), Some((host, log))) = (&self.ssh, &n.ssh) {
            return self.spawn_remote(r, *host, log, id, argv);
        }
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::create_dir_all(&n.data_dir)
            .map_err(HarnessError::io(format!("creating {}", n.data_dir.display())))?;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log_path)
            .map_err(HarnessError::io(format!("opening {}", n.log_path.display())))?;
        let _ = writeln!(log, "=== faultline: starting {id}: {}", shell_words(&argv));
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(n.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(HarnessError::io("log file"))?)
            .stderr(log)
            .current_dir(&n.data_dir)
            .process_group(0);
        let ns_file = match &n.netns {
            Some(ns) => Some(
                std::fs::File::open(Path::new("/run/netns").join(ns))
                    .map_err(HarnessError::io(format!("opening namespace {ns}")))?,
            ),
            None => None,
        };
        if let Some(f) = &ns_file {
            use std::os::fd::AsRawFd;
            let fd = f.as_raw_fd();
            // SAFETY: only async-signal-safe calls (setns) between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if let Some(procs) = n.cgroup_procs.clone() {
            // SAFETY: NodeCgroup::enter only makes async-signal-safe calls (open, write, close).
            unsafe {
                cmd.pre_exec(move || nemesis::NodeCgroup::enter(&procs));
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| HarnessError::Setup(format!("starting {id} ({}): {e}", argv[0])))?;
        let pid = child.id() as i32;
        let start_time = crate::state::proc_start_time(pid).map(|(t, _)| t).unwrap_or(0);
        self.state
            .record(&Resource::Process {
                node: id.into(),
                pid,
                start_time,
            })
            .map_err(HarnessError::io("writing the state file"))?;
        procs.insert(
            id.into(),
            NodeProc {
                child: Some(child),
                pid,
                start_time,
            },
        );
        drop(procs);
        self.last_argv
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.into(), argv);
        Ok(())
    }

    /// Ssh backend: starts a node on its host and records its PID and start time there.
    fn spawn_remote(
        &self,
        r: &crate::ssh::Remotes,
        host: usize,
        log: &Path,
        id: &str,
        argv: Vec<String>,
    ) -> Result<(), HarnessError> {
        let n = self.node(id)?;
        let (pid, start_time) = crate::ssh::start(r, host, &n.data_dir, log, &n.env, &argv)?;
        self.state
            .record(&Resource::SshProcess {
                host,
                node: id.into(),
                pid,
                start_time,
            })
            .map_err(HarnessError::io("writing the state file"))?;
        self.procs.lock().unwrap_or_else(|e| e.into_inner()).insert(
            id.into(),
            NodeProc {
                child: None,
                pid,
                start_time,
            },
        );
        self.last_argv
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.into(), argv);
        Ok(())
    }

    /// Ssh backend: the first host whose SSH connection was lost since setup (the run fails with it).
    pub fn ssh_lost(&self) -> Option<HarnessError> {
        self.ssh.as_ref()?.lost()
    }

    /// Ssh backend: the host of node `id` and the connections, when it runs remotely.
    fn remote(&self, id: &str) -> Option<(&crate::ssh::Remotes, usize)> {
        let r = self.ssh.as_ref()?;
        let n = self.nodes.iter().find(|n| n.id == id)?;
        n.ssh.as_ref().map(|(h, _)| (r, *h))
    }

    /// The process of a node when it runs: `(pid, start_time)`.
    pub fn process_of(&self, id: &str) -> Option<(i32, u64)> {
        let procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        procs.get(id).map(|p| (p.pid, p.start_time))
    }

    /// Whether a node's process has exited; if so, how (its exit status, when it ran here).
    pub fn exited(&self, id: &str) -> Option<String> {
        if let Some((r, host)) = self.remote(id) {
            let (pid, st) = self.process_of(id)?;
            return match crate::ssh::signal(r, host, pid, st, "none") {
                Ok(true) => None,
                Ok(false) => Some(format!("pid {pid} on {} is gone", r.hosts()[host].label())),
                Err(e) => Some(e.to_string()),
            };
        }
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        procs
            .get_mut(id)
            .and_then(|p| p.child.as_mut()?.try_wait().ok().flatten())
            .map(|s| s.to_string())
    }

    /// SIGKILLs a node's process group and reaps it.
    pub fn kill_node(&self, id: &str) -> Result<(), HarnessError> {
        let p = self.procs.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        let Some(mut p) = p else {
            return Err(node_error(id, "not running"));
        };
        if let Some((r, host)) = self.remote(id) {
            return crate::ssh::kill(r, host, p.pid, p.start_time);
        }
        sys::stop_group(p.pid, p.start_time, Signal::SIGKILL, Duration::ZERO);
        if let Some(c) = p.child.as_mut() {
            let _ = c.wait();
        }
        Ok(())
    }

    /// Sends a signal to a node's process group (SIGSTOP, SIGCONT...), if it is ours and alive.
    pub fn signal_node(&self, id: &str, sig: Signal) -> Result<(), HarnessError> {
        let (pid, st) = self.process_of(id).ok_or_else(|| node_error(id, "not running"))?;
        if let Some((r, host)) = self.remote(id) {
            let name = sig.as_str().trim_start_matches("SIG");
            return match crate::ssh::signal(r, host, pid, st, name)? {
                true => Ok(()),
                false => Err(node_error(id, format!("pid {pid} has exited"))),
            };
        }
        if !sys::is_ours_and_alive(pid, st) {
            return Err(node_error(id, format!("pid {pid} has exited")));
        }
        killpg(Pid::from_raw(pid), sig).map_err(|source| HarnessError::Signal {
            node: id.to_string(),
            signal: sig,
            source,
        })
    }

    /// One readiness probe of one node.
    pub async fn probe_ready(&self, n: &NodeInfo) -> bool {
        crate::probe::probe_ready(&self.http, &self.spec.spec.ready, n).await
    }

    /// Waits until every node is ready (and, if the spec says so, a leader is known), failing early when a node
    /// exits. `cancel` aborts the wait.
    pub async fn wait_ready(
        &self,
        cancel: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), HarnessError> {
        let r = &self.spec.spec.ready;
        let deadline = Instant::now() + Duration::from_secs_f64(r.timeout_s);
        let mut pending: Vec<&NodeInfo> = self.members_at_start().collect();
        loop {
            if *cancel.borrow() {
                return Err(HarnessError::Interrupted("a signal".into()));
            }
            for n in &self.nodes {
                if let Some(status) = self.exited(&n.id) {
                    return Err(HarnessError::Setup(format!(
                        "node {} exited during start-up ({status}); its log {} ends with: {}",
                        n.id,
                        n.log_path.display(),
                        log_tail(&n.log_path)
                    )));
                }
            }
            let mut still = Vec::new();
            for n in pending {
                if !self.probe_ready(n).await {
                    still.push(n);
                }
            }
            pending = still;
            if pending.is_empty() {
                if !r.wait_for_leader || self.spec.spec.leader.is_none() {
                    return Ok(());
                }
                if let Ok(Some(_)) = self.leader().await {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                let what = if pending.is_empty() {
                    "no leader was elected".to_string()
                } else {
                    format!(
                        "{} not ready",
                        pending
                            .iter()
                            .map(|n| n.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let n = pending.first().copied().unwrap_or(&self.nodes[0]);
                return Err(HarnessError::Setup(format!(
                    "the cluster was not ready after {} s ({what}); {} ends with: {}",
                    r.timeout_s,
                    n.log_path.display(),
                    log_tail(&n.log_path)
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = cancel.changed() => {}
            }
        }
    }

    /// The current leader's id through the spec's leader probe (`None` when no node names one), each node
    /// given the probe's `timeout_ms` to answer.
    pub async fn leader(&self) -> Result<Option<String>, HarnessError> {
        let Some(l) = &self.spec.spec.leader else {
            return Err(HarnessError::BadInput(format!(
                "{}: the spec has no [leader] probe",
                self.spec.origin
            )));
        };
        Ok(crate::probe::find_leader(&self.http, l, &self.nodes, Duration::from_millis(l.timeout_ms)).await)
    }

    /// Sends the spec's membership `add` or `remove` action about node `id` to another node (the leader when
    /// one is known), retrying for up to `within`. `{member_id}` is the node's id as its leader probe's
    /// `self_pointer` reports it (asked before the change), else its `{id}`.
    pub async fn member_action(
        &self,
        change: MemberChange,
        id: &str,
        within: Duration,
    ) -> Result<String, HarnessError> {
        let Some(m) = &self.spec.spec.membership else {
            return Err(HarnessError::BadInput(format!(
                "{}: the spec has no [membership] actions",
                self.spec.origin
            )));
        };
        let action = match change {
            MemberChange::Add => &m.add,
            MemberChange::Remove => m.remove.as_ref().ok_or_else(|| {
                HarnessError::BadInput(format!(
                    "{}: the spec has no [membership.remove] action",
                    self.spec.origin
                ))
            })?,
        };
        let v = self.member_vars(id, false).await?;
        let query = crate::probe::Query {
            kind: action.kind,
            method: &action.method,
            path: action.path.as_deref(),
            body: action.body.as_deref(),
            command: action.command.as_deref(),
        };
        let deadline = Instant::now() + within;
        let mut last = String::from("no other node answered");
        loop {
            let leader = self.leader().await.ok().flatten().filter(|l| l != id);
            let mut order: Vec<&NodeInfo> = self.nodes.iter().filter(|o| o.id != id).collect();
            order.sort_by_key(|o| Some(&o.id) != leader.as_ref());
            if action.kind == ProbeKind::Command {
                // A program reaches the cluster by itself ({peers}): run it once per attempt.
                order.truncate(1);
            }
            for o in order {
                match crate::probe::ask(&self.http, query, o, &v, Duration::from_secs(10)).await {
                    Ok(a) if a.success => return Ok(a.text),
                    Ok(a) => last = format!("{} answered: {}", o.id, a.text.trim()),
                    Err(e) => last = format!("{}: {e}", o.id),
                }
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Membership {
                    change,
                    node: id.to_string(),
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The node's member id through the leader probe's `self_pointer`, when the spec has one.
    async fn member_id(&self, n: &NodeInfo) -> Option<String> {
        let l = self.spec.spec.leader.as_ref()?;
        if l.self_pointer.is_none() && l.self_regex.is_none() {
            return None;
        }
        let q = crate::probe::leader_query(l);
        let a = crate::probe::ask(
            &self.http,
            q,
            n,
            &crate::probe::node_vars(n),
            Duration::from_secs(2),
        )
        .await
        .ok()?;
        if !a.success {
            return None;
        }
        crate::probe::leader_view(l, &a.text).me
    }

    /// The members as the harness last changed them (the initial nodes at first).
    pub fn members(&self) -> Vec<String> {
        self.members.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The client addresses of the members, updated by every membership change: what the workload's clients
    /// follow.
    pub fn member_addresses(&self) -> tokio::sync::watch::Receiver<Vec<String>> {
        self.member_view.subscribe()
    }

    fn set_members(&self, members: Vec<String>) {
        let addrs: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| members.contains(&n.id))
            .map(|n| n.client_address.clone())
            .collect();
        *self.members.lock().unwrap_or_else(|e| e.into_inner()) = members;
        self.member_view.send_replace(addrs);
    }

    /// Changes the membership through the spec's actions (see `nemesis::Cluster::change_members`): `remove`
    /// leave and `add` join, in one `[membership.change]` request when the spec has one and several nodes
    /// change, else one `remove` request each and then one `add` each. Added nodes that do not run are started
    /// joining `members` before or after the requests, as the spec's `start_joining` says.
    pub async fn change_members(
        &self,
        add: &[String],
        remove: &[String],
        members: &[String],
        via: Option<&str>,
    ) -> Result<(), HarnessError> {
        let Some(m) = &self.spec.spec.membership else {
            return Err(HarnessError::BadInput(format!(
                "{}: the spec has no [membership] actions",
                self.spec.origin
            )));
        };
        let before = self.members();
        let start = |ids: &[String]| -> Result<(), HarnessError> {
            for id in ids.iter().filter(|id| self.process_of(id).is_none()) {
                self.start_joining(id, members)?;
            }
            Ok(())
        };
        if m.start_joining == crate::spec::JoinOrder::Before {
            start(add)?;
            // A node started before its request must be listening when the new configuration needs it.
            self.await_ready(add, Duration::from_secs(10)).await;
        }
        let requests = self.member_requests(m, add, remove).await?;
        let targets: Vec<&NodeInfo> = self
            .nodes
            .iter()
            .filter(|n| before.contains(&n.id) && !add.contains(&n.id))
            .filter(|n| via.is_none_or(|v| v == n.id))
            .collect();
        let result = self.send_member_requests(&targets, &requests).await;
        match &result {
            Ok(()) => {
                self.set_members(members.to_vec());
                if m.start_joining == crate::spec::JoinOrder::After {
                    start(add)?;
                }
            }
            Err(_) => {
                let mut maybe = before.clone();
                maybe.extend(add.iter().filter(|a| !before.contains(a)).cloned());
                self.set_members(maybe);
            }
        }
        result
    }

    /// The requests of one membership change, placeholders filled: one `[membership.change]` request when
    /// the spec has one and several nodes change, else one `remove` request each and then one `add` each.
    async fn member_requests(
        &self,
        m: &crate::spec::Membership,
        add: &[String],
        remove: &[String],
    ) -> Result<Vec<MemberRequest>, HarnessError> {
        if let Some(c) = m.change.as_ref().filter(|_| add.len() + remove.len() > 1) {
            let mut adds = Vec::new();
            for id in add {
                adds.push(self.member_vars(id, true).await?.fill(&c.add_item));
            }
            let mut removes = Vec::new();
            for id in remove {
                removes.push(self.member_vars(id, true).await?.fill(&c.remove_item));
            }
            let mut v = Vars::new();
            v.set("add", adds.join(&c.separator))
                .set("remove", removes.join(&c.separator));
            let body = c.body.as_ref().map(|b| v.fill(b));
            return Ok(vec![MemberRequest::Http(c.method.clone(), v.fill(&c.path), body)]);
        }
        let mut requests = Vec::new();
        for (ids, change) in [(remove, MemberChange::Remove), (add, MemberChange::Add)] {
            let action = match change {
                MemberChange::Add => &m.add,
                MemberChange::Remove => m.remove.as_ref().ok_or_else(|| {
                    HarnessError::BadInput(format!(
                        "{}: the spec has no [membership.remove] action",
                        self.spec.origin
                    ))
                })?,
            };
            for id in ids {
                let v = self.member_vars(id, true).await?;
                requests.push(match (action.kind, &action.path) {
                    (ProbeKind::Http, Some(path)) => MemberRequest::Http(
                        action.method.clone(),
                        v.fill(path),
                        action.body.as_ref().map(|b| v.fill(b)),
                    ),
                    (kind, _) => MemberRequest::Query(kind, v, action.command.clone().unwrap_or_default()),
                });
            }
        }
        Ok(requests)
    }

    /// Sends `requests` in order to `targets` (the first that takes each); stops at the first that fails.
    async fn send_member_requests(
        &self,
        targets: &[&NodeInfo],
        requests: &[MemberRequest],
    ) -> Result<(), HarnessError> {
        for r in requests {
            match r {
                MemberRequest::Http(method, path, body) => {
                    self.send_member_request(targets, method, path, body.as_deref())
                        .await?
                }
                MemberRequest::Query(kind, vars, command) => {
                    self.send_member_query(targets, *kind, vars, command).await?
                }
            }
        }
        Ok(())
    }

    /// Waits until every node of `ids` passes the readiness probe, for at most `within`.
    async fn await_ready(&self, ids: &[String], within: Duration) {
        let deadline = Instant::now() + within;
        for n in self.nodes.iter().filter(|n| ids.contains(&n.id)) {
            while !self.probe_ready(n).await && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// The placeholders of a membership action about node `id`: `{member_id}` is its id as its leader probe's
    /// `self_pointer` reports it (asked now), else its `{id}`; `{peers}` lists every other node, or with
    /// `only_members` every other current member.
    async fn member_vars(&self, id: &str, only_members: bool) -> Result<Vars, HarnessError> {
        let n = self.node(id)?;
        let member_id = self.member_id(n).await.unwrap_or_else(|| n.id.clone());
        let mut v = Vars::new();
        v.set("id", &n.id)
            .set("host", n.host)
            .set("port", n.client_port)
            .set("client_port", n.client_port)
            .set("peer_port", n.peer_port)
            .set("client_urls", format!("http://{}:{}", n.host, n.client_port))
            .set("peer_urls", format!("http://{}:{}", n.host, n.peer_port))
            .set("member_id", member_id);
        let peers: Vec<String> = self
            .nodes
            .iter()
            .filter(|o| o.id != id && (!only_members || self.members().contains(&o.id)))
            .map(|o| {
                let mut pv = Vars::new();
                pv.set("id", &o.id)
                    .set("index", o.index)
                    .set("host", o.host)
                    .set("port", o.client_port)
                    .set("client_port", o.client_port)
                    .set("peer_port", o.peer_port);
                pv.fill(&self.spec.spec.peers.format)
            })
            .collect();
        v.set("peers", peers.join(&self.spec.spec.peers.separator));
        Ok(v)
    }

    /// Sends a membership action of kind `resp` (to the leader among `targets` first, then the others) or
    /// `command` (a program run on this host, which reaches the cluster through `{peers}`), retrying for up to
    /// 10 s while it does not succeed.
    async fn send_member_query(
        &self,
        targets: &[&NodeInfo],
        kind: ProbeKind,
        vars: &Vars,
        command: &[String],
    ) -> Result<(), HarnessError> {
        let q = crate::probe::Query {
            kind,
            method: "POST",
            path: None,
            body: None,
            command: Some(command),
        };
        let what = command.iter().map(|a| vars.fill(a)).collect::<Vec<_>>().join(" ");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = String::from("no member to ask");
        loop {
            let leader = self.leader().await.ok().flatten();
            let mut order = targets.to_vec();
            order.sort_by_key(|o| Some(&o.id) != leader.as_ref());
            if kind == ProbeKind::Command {
                order.truncate(1);
            }
            for o in order {
                match crate::probe::ask(&self.http, q, o, vars, Duration::from_secs(8)).await {
                    Ok(a) if a.success => return Ok(()),
                    Ok(a) => last = format!("{} answered: {}", o.id, a.text.trim()),
                    Err(e) => last = format!("{}: {e}", o.id),
                }
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::MemberRequest {
                    request: what,
                    reason: last,
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Sends one membership request to the leader among `targets` first, then to the others. Goes on to the
    /// next node (and round, for up to 10 s) only while the request surely did nothing: no connection, or a
    /// 503 or 409 answer (no leader, a change in progress); a timeout or any other answer ends it.
    async fn send_member_request(
        &self,
        targets: &[&NodeInfo],
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(), HarnessError> {
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| HarnessError::BadInput(format!("method {method}: {e}")))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = String::from("no member to ask");
        loop {
            let leader = tokio::time::timeout(Duration::from_secs(2), self.leader())
                .await
                .ok()
                .and_then(|l| l.ok().flatten());
            let mut order = targets.to_vec();
            order.sort_by_key(|o| Some(&o.id) != leader.as_ref());
            for o in order {
                let mut rq = self
                    .http
                    .request(m.clone(), format!("http://{}{}", o.client_address, path))
                    .timeout(Duration::from_secs(8));
                if let Some(b) = body {
                    rq = rq.header("content-type", "application/json").body(b.to_string());
                }
                match rq.send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let text = resp.text().await.unwrap_or_default();
                        if (200..300).contains(&status) {
                            return Ok(());
                        }
                        last = format!("{} answered {status}: {}", o.id, text.trim());
                        if !matches!(status, 503 | 409) {
                            return Err(member_request(method, path, last));
                        }
                    }
                    Err(e) if e.is_connect() => last = format!("{} refused the connection", o.id),
                    Err(e) => {
                        return Err(member_request(
                            method,
                            path,
                            format!("{} did not answer: {e}", o.id),
                        ))
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(member_request(method, path, last));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Stops a node that is no longer a member (SIGKILL when it runs) and wipes its data; a later start is a
    /// fresh join.
    pub fn retire(&self, id: &str) -> Result<(), HarnessError> {
        if self.process_of(id).is_some() {
            self.kill_node(id)?;
        }
        self.wipe_data(id)?;
        self.last_argv
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        let mut members = self.members();
        if members.contains(&id.to_string()) {
            members.retain(|m| m != id);
            self.set_members(members);
        }
        Ok(())
    }

    /// Removes a node's data directory (for a node that will join again as a new member). It must be stopped.
    /// A lazyfs mount stays mounted and is emptied instead (the directory is the mount point: removing it
    /// fails with EBUSY, and `lose-unsynced` needs the mount for the node's next life).
    pub fn wipe_data(&self, id: &str) -> Result<(), HarnessError> {
        if self.process_of(id).is_some() {
            return Err(node_error(id, "is running: stop it before wiping its data"));
        }
        let n = self.node(id)?;
        if let Some((r, host)) = self.remote(id) {
            crate::ssh::remove_dir(r, host, &n.data_dir)?;
            return Ok(());
        }
        if !n.data_dir.exists() {
            return Ok(());
        }
        let mounted = self
            .mounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id);
        let wiped = match mounted {
            false => std::fs::remove_dir_all(&n.data_dir),
            true => empty_dir(&n.data_dir),
        };
        wiped.map_err(HarnessError::io(format!("removing {}", n.data_dir.display())))?;
        Ok(())
    }

    /// Sets node `id`'s clock to true time plus `offset_ms` through its libfaketime control file: written
    /// here, or on its ssh host (one command over the host's connection).
    pub async fn set_clock(&self, id: &str, offset_ms: i64) -> Result<(), HarnessError> {
        let n = self.node(id)?;
        let file = n
            .faketime_file
            .as_ref()
            .ok_or_else(|| node_error(id, "not started under libfaketime"))?;
        if let Some((r, host)) = self.remote(id) {
            return crate::ssh::set_clock(r, host, file, offset_ms).await;
        }
        nemesis::clock::write_offset(file, offset_ms).map_err(|e| node_error(id, e.to_string()))
    }

    /// Runs `argv` where a node's network stack lives.
    pub async fn exec(&self, id: &str, argv: &[String]) -> Result<std::process::Output, HarnessError> {
        let n = self.node(id)?;
        if argv.is_empty() {
            return Err(node_error(id, "exec: empty command"));
        }
        if let Some((r, host)) = self.remote(id) {
            use std::os::unix::process::ExitStatusExt;
            let full = crate::ssh::privileged(&r.hosts()[host], argv);
            let out = r.run_async(host, &full, crate::ssh::COMMAND_TIMEOUT).await?;
            return Ok(std::process::Output {
                // A wait status: the exit code in the second byte (a signal is reported as exit 128+).
                status: std::process::ExitStatus::from_raw(out.status.unwrap_or(255) << 8),
                stdout: out.stdout,
                stderr: out.stderr,
            });
        }
        let mut full: Vec<String> = Vec::new();
        if let Some(ns) = &n.netns {
            full.extend(["ip", "netns", "exec", ns.as_str()].map(String::from));
        }
        full.extend(argv.iter().cloned());
        tokio::process::Command::new(&full[0])
            .args(&full[1..])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|source| HarnessError::Exec {
                command: full.join(" "),
                source,
            })
    }

    /// Stops every node gracefully (the spec's stop signal, SIGKILL after its timeout), removes everything the
    /// run created, and reaps the children. Idempotent; safe to call from a `Drop` during a panic.
    pub fn teardown(&self) -> HealReport {
        {
            let _no_start = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
            self.torn_down.store(true, Ordering::SeqCst);
        }
        let resources = self.state.recorded();
        let nodes_dir = self.nodes.first().and_then(|n| n.log_path.parent());
        if let Some(r) = &self.ssh {
            self.collect_remote_logs(r);
        }
        let report = crate::heal::heal_resources_with(
            &resources,
            self.stop_signal,
            self.stop_grace,
            self.ssh.as_ref(),
            nodes_dir.filter(|_| self.ssh.is_some()),
        );
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        for (_, p) in std::mem::take(&mut *procs) {
            if let Some(mut c) = p.child {
                let _ = c.wait();
            }
        }
        // Already detached by the heal above; this stops their serving threads.
        drop(std::mem::take(
            &mut *self.mounts.lock().unwrap_or_else(|e| e.into_inner()),
        ));
        report
    }

    /// Ssh backend: downloads the spec's extra log files of each node into `nodes/` (before the tear-down
    /// removes the run's folder on the hosts).
    fn collect_remote_logs(&self, r: &crate::ssh::Remotes) {
        for n in &self.nodes {
            let Some((host, _)) = &n.ssh else { continue };
            for f in &self.spec.spec.log.files {
                let mut v = Vars::new();
                v.set("id", &n.id).set("data_dir", n.data_dir.display());
                let src = PathBuf::from(v.fill(f));
                if let Some(name) = src.file_name() {
                    let dst = n
                        .log_path
                        .with_file_name(format!("{}-{}", n.id, name.to_string_lossy()));
                    let _ = crate::ssh::download(r, *host, &src, &dst);
                }
            }
        }
    }

    /// Copies the spec's extra log files of each node into `nodes/`.
    pub fn collect_logs(&self) {
        if self.ssh.is_some() {
            // Downloaded by the tear-down, while the hosts still have them.
            return;
        }
        for n in &self.nodes {
            for f in &self.spec.spec.log.files {
                let mut v = Vars::new();
                v.set("id", &n.id).set("data_dir", n.data_dir.display());
                let src = PathBuf::from(v.fill(f));
                if let Some(name) = src.file_name() {
                    let dst = n
                        .log_path
                        .with_file_name(format!("{}-{}", n.id, name.to_string_lossy()));
                    let _ = std::fs::copy(&src, dst);
                }
            }
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if !self.torn_down.load(Ordering::SeqCst) {
            self.teardown();
        }
    }
}

/// Removes the nemesis's iptables chains of a run (host namespace and the given namespaces).
pub(crate) fn heal_nemesis(run_id: &str, namespaces: &[String]) -> Result<Vec<String>, HarnessError> {
    Ok(nemesis::heal_leftovers(Some(run_id), namespaces)?)
}

fn member_request(method: &str, path: &str, reason: String) -> HarnessError {
    HarnessError::MemberRequest {
        request: format!("{method} {path}"),
        reason,
    }
}

fn node_error(node: &str, reason: impl Into<String>) -> HarnessError {
    HarnessError::Node {
        node: node.to_string(),
        reason: reason.into(),
    }
}

fn netns_name(run_id: &str, i: usize) -> String {
    format!("fl-{run_id}-n{i}")
}

fn free_port(keep: &mut Vec<std::net::TcpListener>) -> Result<u16, HarnessError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(HarnessError::io("picking a free port"))?;
    let p = l
        .local_addr()
        .map_err(HarnessError::io("picking a free port"))?
        .port();
    keep.push(l);
    Ok(p)
}

/// Claims a free 10.x.y.0/24 not routed on the host, by creating a claim file with O_EXCL.
fn claim_subnet(run_id: &str) -> Result<(u32, PathBuf, String), HarnessError> {
    use rand::Rng;
    std::fs::create_dir_all(CLAIM_DIR).map_err(HarnessError::io(format!("creating {CLAIM_DIR}")))?;
    let routes = sys::host_routes();
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let a: u32 = rng.gen_range(160..=223);
        let b: u32 = rng.gen_range(0..=255);
        let prefix = (10 << 24) | (a << 16) | (b << 8);
        if routes.iter().any(|r| sys::overlaps(*r, (prefix, 24))) {
            continue;
        }
        let subnet = format!("10.{a}.{b}.0/24");
        let path = Path::new(CLAIM_DIR).join(format!("10.{a}.{b}"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let _ = writeln!(f, "{run_id} {}", std::process::id());
                return Ok((prefix, path, subnet));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(HarnessError::io(format!("claiming {}", path.display()))(e)),
        }
    }
    Err(HarnessError::Setup(
        "no free 10.x.y.0/24 subnet found for the namespaces".into(),
    ))
}

/// The last few lines of a log file, on one line.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() {
        "(empty)".into()
    } else {
        tail.join(" | ")
    }
}

fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '"', '\'']) {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Removes everything inside `dir`, leaving `dir` itself (a mount point).
fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        match path.is_dir() && !path.is_symlink() {
            true => std::fs::remove_dir_all(&path)?,
            false => std::fs::remove_file(&path)?,
        }
    }
    Ok(())
}
