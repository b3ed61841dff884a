//! DB specs: how to start, probe, stop and talk to the nodes of one system under test (TOML).
//!
//! The format is documented for users in `docs/db-spec.md`. A spec is loaded and fully validated before
//! anything starts; every error names the file, the line when known, the field and the reason.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use workloads::templated::placeholders;

mod install;
pub use install::{resolve_install, Install, InstallFile, INSTALL_PLACEHOLDERS};

/// The spec of the bundled reference node `raftkv`, embedded so `faultline run` needs no `--db`.
pub const RAFTKV_SPEC: &str = include_str!("../../dbs/raftkv.toml");

/// Name shown for the embedded raftkv spec in errors and in `test.json`.
pub const RAFTKV_SPEC_NAME: &str = "dbs/raftkv.toml (embedded)";

/// A spec could not be read or is wrong. Displayed as one line: `file:line: field: reason`.
#[derive(Debug, thiserror::Error)]
#[error("{file}{line}: {field}{reason}", line = line.map(|l| format!(":{l}")).unwrap_or_default(),
        field = if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct SpecError {
    /// The spec file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field, as a dotted path (`ready.path`, `command[0]`); empty when the whole file is at fault.
    pub field: String,
    pub reason: String,
}

impl SpecError {
    /// The whole file could not be read.
    pub(crate) fn unreadable(file: &str, e: &std::io::Error) -> SpecError {
        SpecError {
            file: file.to_string(),
            line: None,
            field: String::new(),
            reason: format!("cannot read: {e}"),
        }
    }
}

/// A DB spec, as written in TOML (`deny_unknown_fields` everywhere: a typo is an error, not a silent default).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSpec {
    /// Short name of the system (`raftkv`, `etcd`): the default test name.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// What provides the node binary (a package, a build command): shown when the binary is missing.
    #[serde(default)]
    pub provided_by: Option<String>,
    /// The node start command, an argument array with placeholders (never a shell string). Required unless
    /// the spec lists `[external]` nodes.
    #[serde(default)]
    pub command: Vec<String>,
    /// Arguments appended when a node joins an existing cluster (membership changes).
    #[serde(default)]
    pub join_args: Vec<String>,
    /// Environment added to the node's (placeholders allowed in values).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Ports of a node on the netns backend (each node has its own address there); the local backend picks
    /// free ports instead.
    #[serde(default)]
    pub ports: Ports,
    /// How `{peers}` and `{initial_cluster}` are spelled.
    #[serde(default)]
    pub peers: PeersFormat,
    /// The address clients connect to, `host:port` (placeholders allowed).
    #[serde(default = "default_client_address")]
    pub client_address: String,
    /// When a node is ready.
    pub ready: ReadyProbe,
    /// How to find the leader.
    #[serde(default)]
    pub leader: Option<LeaderProbe>,
    /// The client protocol and its settings: handed as is to the workloads crate (`protocol = "http-kv"`...).
    pub client: toml::Table,
    /// How to add and remove members.
    #[serde(default)]
    pub membership: Option<Membership>,
    /// How to stop a node gracefully.
    #[serde(default)]
    pub stop: StopSpec,
    /// Where the node logs (besides stdout and stderr, which always go to `nodes/<id>.log`).
    #[serde(default)]
    pub log: LogSpec,
    /// A command printing the system's version (recorded in `test.json`).
    #[serde(default)]
    pub version: Option<Vec<String>>,
    /// A command that exits 0 when the node accepts the extra node arguments appended to it, and non-zero with
    /// the reason on stderr when it does not (`faultline suite` runs it for each row's node arguments before
    /// anything starts, so an unknown `--bug` name is a bad suite file, not a failed run).
    #[serde(default)]
    pub check_args: Option<Vec<String>>,
    /// Whether the nodes read the clock through libc, so libfaketime can move it (clock faults). Go programs
    /// such as etcd do not: set `faketime = false` and clock faults are refused.
    #[serde(default = "default_true")]
    pub faketime: bool,
    /// Nodes that already run somewhere (on loopback): nothing is started, stopped or faulted.
    #[serde(default)]
    pub external: Option<External>,
    /// Opt-in to the `lose-unsynced` fault: with it, each node's data directory is a lazyfs mount when that
    /// fault is chosen (mounted before the node starts).
    #[serde(default)]
    pub durability: Option<Durability>,
    /// What the ssh backend puts on every host before the nodes start (files uploaded unless the host has the
    /// same SHA-256, commands run once per host and run); the local backends ignore it. See [`Install`].
    #[serde(default)]
    pub install: Option<Install>,
    /// How a new cluster forms: `"all"` (default: every node is started with `command` and they find each
    /// other through `{peers}`) or `"first"` (the first node starts a cluster alone; once it is ready, the
    /// others start with `join_args` appended and join it, as dqlite, rqlite or hraftd nodes do).
    #[serde(default)]
    pub bootstrap: Bootstrap,
    /// The workload `faultline run` uses when `--workload` is not given (default `cas-register`); a system
    /// without compare-and-set names `register` here.
    #[serde(default)]
    pub workload: Option<String>,
}

/// The `[durability]` section: how the nodes' data directories behave under lazyfs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Durability {
    /// When creates, removes and renames in the data directory become durable: `"dir-fsync"` (only when the
    /// directory is fsynced, the default) or `"immediate"` (as on a journaling filesystem that committed).
    #[serde(default)]
    pub names: DurableNames,
}

/// See [`Durability::names`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DurableNames {
    #[default]
    DirFsync,
    Immediate,
}

/// How a new cluster forms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bootstrap {
    /// Every node starts with `command`.
    #[default]
    All,
    /// The first node starts alone; the others join it with `join_args`.
    First,
}

fn default_client_address() -> String {
    "{host}:{client_port}".into()
}

/// Ports used on the netns backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    #[serde(default = "default_client_port")]
    pub client: u16,
    #[serde(default = "default_peer_port")]
    pub peer: u16,
}

fn default_client_port() -> u16 {
    7000
}
fn default_peer_port() -> u16 {
    7100
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            client: default_client_port(),
            peer: default_peer_port(),
        }
    }
}

/// How the peer lists are spelled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersFormat {
    /// One entry of `{peers}` (the other nodes) and of `{initial_cluster}` (all nodes).
    #[serde(default = "default_peer_entry")]
    pub format: String,
    #[serde(default = "default_separator")]
    pub separator: String,
}

fn default_peer_entry() -> String {
    "{id}={host}:{peer_port}".into()
}
fn default_separator() -> String {
    ",".into()
}

impl Default for PeersFormat {
    fn default() -> Self {
        PeersFormat {
            format: default_peer_entry(),
            separator: default_separator(),
        }
    }
}

/// Probe kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// An HTTP request answered with a 2xx status.
    Http,
    /// A TCP connection to the client address.
    Tcp,
    /// A RESP (Redis protocol) command sent to the client address, answered with a reply that is not an error.
    Resp,
    /// A program run on the harness's host (argument array, placeholders), exiting 0; its output is the answer.
    Command,
}

fn default_http() -> ProbeKind {
    ProbeKind::Http
}

/// When a node is ready to serve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyProbe {
    pub kind: ProbeKind,
    #[serde(default = "default_get")]
    pub method: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// `resp`: the command (default `["PING"]`); `command`: the program and its arguments.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The answer (body, reply, output) must also match this regex.
    #[serde(default)]
    pub expect_regex: Option<String>,
    /// How long the whole cluster may take to become ready, seconds.
    #[serde(default = "default_ready_timeout")]
    pub timeout_s: f64,
    /// Also wait until the leader probe finds a leader (when there is one).
    #[serde(default = "default_true")]
    pub wait_for_leader: bool,
}

fn default_get() -> String {
    "GET".into()
}
fn default_ready_timeout() -> f64 {
    30.0
}
fn default_true() -> bool {
    true
}

/// How to find the leader: a probe of each node (HTTP, RESP or a program; see [`crate::probe`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderProbe {
    /// `http` (default), `resp` or `command`.
    #[serde(default = "default_http")]
    pub kind: ProbeKind,
    #[serde(default = "default_get")]
    pub method: String,
    /// `http`: the path (required).
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// `resp`: the command sent to the node; `command`: the program and its arguments.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// JSON pointer (RFC 6901) to the leader in the answer.
    #[serde(default)]
    pub leader_pointer: Option<String>,
    /// Or a regex: the leader is its capture group 1 (else the whole match). With neither, the whole
    /// answer, trimmed, is the leader.
    #[serde(default)]
    pub leader_regex: Option<String>,
    /// When set, the node is the leader iff the leader field equals the value here (the node's own member
    /// id, as etcd answers); when unset, the leader field names the leader (see `leader_is`).
    #[serde(default)]
    pub self_pointer: Option<String>,
    /// Like `self_pointer`, by regex.
    #[serde(default)]
    pub self_regex: Option<String>,
    /// How the leader field names a node, as a template of that node (default `"{id}"`; e.g.
    /// `"{host}:{peer_port}"`).
    #[serde(default)]
    pub leader_is: Option<String>,
    /// How long each node's answer may take, milliseconds (default 750, at most [`MAX_LEADER_TIMEOUT_MS`]).
    /// A paused node never answers, and the nemesis looks for the leader while such a node is paused
    /// (isolate-leader, zombie-leader): waiting longer than needed delays the fault and compresses the
    /// schedule's next gap. A status answer takes milliseconds; a probe that runs a program (dqlite's shell)
    /// may need more.
    #[serde(default = "default_leader_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_leader_timeout_ms() -> u64 {
    750
}

/// The largest `[leader] timeout_ms`: the nemesis gives the whole probe 3 s when it aims a fault at the leader
/// (isolate-leader), after which the fault fails; a probe must be able to answer within that.
pub const MAX_LEADER_TIMEOUT_MS: u64 = 2500;

/// Membership actions: HTTP requests or RESP commands sent to a current member, or programs run on the
/// harness's host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    pub add: MemberAction,
    #[serde(default)]
    pub remove: Option<MemberAction>,
    /// One request for several changes at once, for systems that take them (raftkv's `/members`).
    #[serde(default)]
    pub change: Option<BatchAction>,
    /// When a joining node is started: `"before"` its add request (it waits to be added, as raftkv's
    /// `--join`) or `"after"` it was acknowledged (it must be a member first, as etcd's).
    #[serde(default)]
    pub start_joining: JoinOrder,
}

/// When a joining node is started, relative to the request that adds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinOrder {
    Before,
    #[default]
    After,
}

/// One request adding and removing several members: `body` (and `path`) may use `{add}` and `{remove}`,
/// each the list of its nodes' `add_item` / `remove_item` (member placeholders) joined by `separator`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchAction {
    #[serde(default = "default_post")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub body: Option<String>,
    pub add_item: String,
    pub remove_item: String,
    #[serde(default = "default_item_separator")]
    pub separator: String,
}

fn default_item_separator() -> String {
    ",".into()
}

/// One membership action (placeholders allowed in `path`, `body` and `command`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberAction {
    /// `http` (default), `resp` or `command`.
    #[serde(default = "default_http")]
    pub kind: ProbeKind,
    #[serde(default = "default_post")]
    pub method: String,
    /// `http`: the path (required).
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// `resp`: the command sent to a member; `command`: the program and its arguments.
    #[serde(default)]
    pub command: Option<Vec<String>>,
}

fn default_post() -> String {
    "POST".into()
}

/// Graceful stop: a signal to the node's process group, then SIGKILL after a timeout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopSpec {
    #[serde(default = "default_stop_signal")]
    pub signal: String,
    #[serde(default = "default_stop_timeout")]
    pub timeout_s: f64,
}

fn default_stop_signal() -> String {
    "SIGTERM".into()
}
fn default_stop_timeout() -> f64 {
    5.0
}

impl Default for StopSpec {
    fn default() -> Self {
        StopSpec {
            signal: default_stop_signal(),
            timeout_s: default_stop_timeout(),
        }
    }
}

/// Extra log files of a node, copied into the run folder at tear-down.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    #[serde(default)]
    pub files: Vec<String>,
}

/// Nodes that already run on loopback.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct External {
    pub nodes: Vec<ExternalNode>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalNode {
    pub id: String,
    /// `127.x.y.z:port`: only loopback addresses are allowed.
    pub address: String,
}

/// The placeholders a node template may use.
pub const NODE_PLACEHOLDERS: &[&str] = &[
    "id",
    "index",
    "host",
    "port",
    "client_port",
    "peer_port",
    "data_dir",
    "peers",
    "initial_cluster",
    "client_urls",
    "peer_urls",
    "cluster_token",
    "run_dir",
];

/// Placeholders of one peer entry.
pub const PEER_PLACEHOLDERS: &[&str] = &["id", "index", "host", "port", "client_port", "peer_port"];

/// Placeholders of membership actions.
pub const MEMBER_PLACEHOLDERS: &[&str] = &[
    "id",
    "host",
    "port",
    "client_port",
    "peer_port",
    "client_urls",
    "peer_urls",
    "member_id",
    "peers",
];

/// Placeholders of a [`BatchAction`]'s path and body.
pub const BATCH_PLACEHOLDERS: &[&str] = &["add", "remove"];

/// A spec, loaded and validated, with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    pub spec: DbSpec,
    /// File name shown in errors.
    pub origin: String,
    /// The TOML text (recorded in `test.json`).
    pub text: String,
    /// The directory relative program paths are resolved against (the spec's folder).
    pub base_dir: Option<PathBuf>,
}

impl LoadedSpec {
    /// Reads and validates a spec file.
    pub fn from_path(path: &Path) -> Result<LoadedSpec, SpecError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::unreadable(&origin, &e))?;
        // Absolute: the nodes start in their own data folders, where a spec-relative `./start.sh` would
        // otherwise not be found.
        let base_dir = path.parent().map(|p| {
            let p = if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            };
            std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
        });
        Self::from_text(&text, &origin, base_dir)
    }

    /// The embedded raftkv spec.
    pub fn raftkv() -> LoadedSpec {
        Self::from_text(RAFTKV_SPEC, RAFTKV_SPEC_NAME, None).expect("the embedded raftkv spec is valid")
    }

    /// Parses and validates spec text.
    pub fn from_text(text: &str, origin: &str, base_dir: Option<PathBuf>) -> Result<LoadedSpec, SpecError> {
        let spec: DbSpec = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(text, s.start));
            SpecError {
                file: origin.into(),
                line,
                field: String::new(),
                reason: e.message().trim().replace('\n', " "),
            }
        })?;
        let loaded = LoadedSpec {
            spec,
            origin: origin.into(),
            text: text.into(),
            base_dir,
        };
        loaded.validate()?;
        Ok(loaded)
    }

    fn err(
        &self,
        section: Option<&str>,
        key: &str,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> SpecError {
        SpecError {
            file: self.origin.clone(),
            line: line_of_key(&self.text, section, key),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Checks every field and rule of the spec, each error with its line.
    fn validate(&self) -> Result<(), SpecError> {
        self.validate_node()?;
        self.validate_probes()?;
        self.validate_client()?;
        self.validate_membership_change()?;
        self.validate_stop_and_programs()?;
        self.validate_install()?;
        self.validate_external()
    }

    /// The name, the node's command and environment, ports, peers and client address.
    fn validate_node(&self) -> Result<(), SpecError> {
        let s = &self.spec;
        if s.name.trim().is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(self.err(
                None,
                "name",
                "name",
                "must be non-empty, letters, digits, '-', '_', '.'",
            ));
        }
        if s.external.is_none() && (s.command.is_empty() || s.command[0].trim().is_empty()) {
            return Err(self.err(
                None,
                "command",
                "command",
                "must name a program: [\"prog\", \"arg\", ...]",
            ));
        }
        for (i, a) in s.command.iter().enumerate() {
            check_template(a, NODE_PLACEHOLDERS)
                .map_err(|r| self.err(None, "command", format!("command[{i}]"), r))?;
        }
        for (i, a) in s.join_args.iter().enumerate() {
            check_template(a, NODE_PLACEHOLDERS)
                .map_err(|r| self.err(None, "join_args", format!("join_args[{i}]"), r))?;
        }
        for (k, v) in &s.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(self.err(Some("env"), k, format!("env.{k}"), "not a valid variable name"));
            }
            check_template(v, NODE_PLACEHOLDERS)
                .map_err(|r| self.err(Some("env"), k, format!("env.{k}"), r))?;
        }
        if s.ports.client == 0 || s.ports.peer == 0 {
            return Err(self.err(Some("ports"), "client", "ports", "ports must be 1..=65535"));
        }
        check_template(&s.peers.format, PEER_PLACEHOLDERS)
            .map_err(|r| self.err(Some("peers"), "format", "peers.format", r))?;
        check_template(&s.client_address, NODE_PLACEHOLDERS)
            .map_err(|r| self.err(None, "client_address", "client_address", r))?;
        Ok(())
    }

    /// The templates of `[membership.change]` (one request for a batch of changes).
    fn validate_membership_change(&self) -> Result<(), SpecError> {
        let s = &self.spec;
        if let Some(m) = &s.membership {
            if let Some(c) = &m.change {
                let sec = "membership.change";
                check_method(&c.method)
                    .map_err(|e| self.err(Some(sec), "method", format!("{sec}.method"), e))?;
                let fields = [
                    ("path", Some(&c.path), BATCH_PLACEHOLDERS),
                    ("body", c.body.as_ref(), BATCH_PLACEHOLDERS),
                ];
                let items = [
                    ("add_item", Some(&c.add_item), MEMBER_PLACEHOLDERS),
                    ("remove_item", Some(&c.remove_item), MEMBER_PLACEHOLDERS),
                ];
                for (field, t, known) in fields.into_iter().chain(items) {
                    if let Some(t) = t {
                        check_template(t, known)
                            .map_err(|e| self.err(Some(sec), field, format!("{sec}.{field}"), e))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// `[stop]`, `[log]`, `check_args` and `version`.
    fn validate_stop_and_programs(&self) -> Result<(), SpecError> {
        let s = &self.spec;
        signal_from_name(&s.stop.signal).ok_or_else(|| {
            self.err(
                Some("stop"),
                "signal",
                "stop.signal",
                format!("unknown signal {:?} (e.g. \"SIGTERM\")", s.stop.signal),
            )
        })?;
        if !(s.stop.timeout_s >= 0.0 && s.stop.timeout_s <= 600.0) {
            return Err(self.err(
                Some("stop"),
                "timeout_s",
                "stop.timeout_s",
                "must be in [0, 600] seconds",
            ));
        }
        for (i, f) in s.log.files.iter().enumerate() {
            check_template(f, NODE_PLACEHOLDERS)
                .map_err(|r| self.err(Some("log"), "files", format!("log.files[{i}]"), r))?;
        }
        if s.check_args.as_ref().is_some_and(|c| c.is_empty()) {
            return Err(self.err(
                None,
                "check_args",
                "check_args",
                "must name a program: [\"prog\", \"--check\"]",
            ));
        }
        if let Some(v) = &s.version {
            if v.is_empty() {
                return Err(self.err(
                    None,
                    "version",
                    "version",
                    "must name a program: [\"prog\", \"--version\"]",
                ));
            }
        }
        Ok(())
    }

    /// `[external]`: its nodes' ids and loopback addresses.
    fn validate_external(&self) -> Result<(), SpecError> {
        let s = &self.spec;
        if let Some(ext) = &s.external {
            if ext.nodes.is_empty() {
                return Err(self.err(Some("external"), "nodes", "external.nodes", "lists no node"));
            }
            let mut seen = std::collections::BTreeSet::new();
            for (i, n) in ext.nodes.iter().enumerate() {
                let field = format!("external.nodes[{i}]");
                if !seen.insert(n.id.clone()) || n.id.is_empty() {
                    return Err(self.err(
                        Some("external"),
                        "nodes",
                        field,
                        format!("id {:?} is empty or repeated", n.id),
                    ));
                }
                let addr: SocketAddr = n.address.parse().map_err(|_| {
                    self.err(
                        Some("external"),
                        "nodes",
                        format!("{field}.address"),
                        "expected IP:PORT",
                    )
                })?;
                if !is_loopback(addr.ip()) {
                    return Err(self.err(
                        Some("external"),
                        "nodes",
                        format!("{field}.address"),
                        "faultline only talks to loopback (127.0.0.0/8) or to namespaces it creates",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_probes(&self) -> Result<(), SpecError> {
        let s = &self.spec;
        let r = &s.ready;
        if r.kind == ProbeKind::Tcp && (r.path.is_some() || r.body.is_some() || r.command.is_some()) {
            return Err(self.err(
                Some("ready"),
                "kind",
                "ready.kind",
                "a tcp probe takes no path, body or command",
            ));
        }
        if r.kind != ProbeKind::Tcp {
            let command = if r.kind == ProbeKind::Resp && r.command.is_none() {
                None
            } else {
                r.command.as_ref()
            };
            let optional = r.kind == ProbeKind::Resp;
            self.check_query(
                "ready",
                r.kind,
                &r.method,
                r.path.as_ref(),
                r.body.as_ref(),
                command,
                optional,
                crate::probe::PROBE_PLACEHOLDERS,
            )?;
        }
        if let Some(re) = &r.expect_regex {
            check_regex(re, 0)
                .map_err(|e| self.err(Some("ready"), "expect_regex", "ready.expect_regex", e))?;
        }
        if !(r.timeout_s > 0.0 && r.timeout_s <= 3600.0) {
            return Err(self.err(
                Some("ready"),
                "timeout_s",
                "ready.timeout_s",
                "must be in (0, 3600] seconds",
            ));
        }
        if let Some(l) = &s.leader {
            self.validate_leader(l)?;
        }
        if let Some(m) = &s.membership {
            for (name, a) in [("add", Some(&m.add)), ("remove", m.remove.as_ref())] {
                let Some(a) = a else { continue };
                let sec = format!("membership.{name}");
                if a.kind == ProbeKind::Tcp {
                    return Err(self.err(
                        Some(&sec),
                        "kind",
                        format!("{sec}.kind"),
                        "an action is http, resp or command",
                    ));
                }
                self.check_query(
                    &sec,
                    a.kind,
                    &a.method,
                    a.path.as_ref(),
                    a.body.as_ref(),
                    a.command.as_ref(),
                    false,
                    MEMBER_PLACEHOLDERS,
                )?;
            }
        }
        Ok(())
    }

    fn validate_leader(&self, l: &LeaderProbe) -> Result<(), SpecError> {
        let sec = Some("leader");
        if l.kind == ProbeKind::Tcp {
            return Err(self.err(
                sec,
                "kind",
                "leader.kind",
                "a tcp connection cannot say who leads: http, resp or command",
            ));
        }
        self.check_query(
            "leader",
            l.kind,
            &l.method,
            l.path.as_ref(),
            l.body.as_ref(),
            l.command.as_ref(),
            false,
            crate::probe::PROBE_PLACEHOLDERS,
        )?;
        for (k, p, re) in [
            ("leader", &l.leader_pointer, &l.leader_regex),
            ("self", &l.self_pointer, &l.self_regex),
        ] {
            if p.is_some() && re.is_some() {
                return Err(self.err(
                    sec,
                    &format!("{k}_regex"),
                    format!("leader.{k}_regex"),
                    format!("give {k}_pointer or {k}_regex, not both"),
                ));
            }
            if let Some(p) = p {
                check_pointer(p)
                    .map_err(|e| self.err(sec, &format!("{k}_pointer"), format!("leader.{k}_pointer"), e))?;
            }
            if let Some(re) = re {
                check_regex(re, 1)
                    .map_err(|e| self.err(sec, &format!("{k}_regex"), format!("leader.{k}_regex"), e))?;
            }
        }
        if !(1..=MAX_LEADER_TIMEOUT_MS).contains(&l.timeout_ms) {
            return Err(self.err(
                sec,
                "timeout_ms",
                "leader.timeout_ms",
                format!("must be in 1..={MAX_LEADER_TIMEOUT_MS} milliseconds"),
            ));
        }
        if let Some(t) = &l.leader_is {
            if l.self_pointer.is_some() || l.self_regex.is_some() {
                return Err(self.err(
                    sec,
                    "leader_is",
                    "leader.leader_is",
                    "with self_pointer or self_regex a node recognises itself: leader_is is not used",
                ));
            }
            check_template(t, crate::probe::PROBE_PLACEHOLDERS)
                .map_err(|e| self.err(sec, "leader_is", "leader.leader_is", e))?;
        }
        Ok(())
    }

    /// Checks one query: an `http` one has a method and a path, `resp` and `command` ones an argument array
    /// (`optional`: a default exists), and every template only known placeholders.
    #[allow(clippy::too_many_arguments)]
    fn check_query(
        &self,
        sec: &str,
        kind: ProbeKind,
        method: &str,
        path: Option<&String>,
        body: Option<&String>,
        command: Option<&Vec<String>>,
        optional: bool,
        known: &[&str],
    ) -> Result<(), SpecError> {
        let s = Some(sec);
        if kind == ProbeKind::Http {
            let Some(p) = path else {
                return Err(self.err(s, "kind", format!("{sec}.path"), "an http query needs a path"));
            };
            if !p.starts_with('/') {
                return Err(self.err(s, "path", format!("{sec}.path"), "must start with '/'"));
            }
            check_method(method).map_err(|m| self.err(s, "method", format!("{sec}.method"), m))?;
            check_template(p, known).map_err(|e| self.err(s, "path", format!("{sec}.path"), e))?;
            if let Some(b) = body {
                check_template(b, known).map_err(|e| self.err(s, "body", format!("{sec}.body"), e))?;
            }
            if command.is_some() {
                return Err(self.err(
                    s,
                    "command",
                    format!("{sec}.command"),
                    "an http query takes a path, not a command",
                ));
            }
            return Ok(());
        }
        if path.is_some() || body.is_some() {
            return Err(self.err(
                s,
                "path",
                format!("{sec}.path"),
                format!("a {kind:?} query takes a command, not a path or body").to_lowercase(),
            ));
        }
        match command {
            None if optional => Ok(()),
            None => Err(self.err(
                s,
                "kind",
                format!("{sec}.command"),
                "missing: the argument array to send or run, e.g. [\"INFO\"]",
            )),
            Some(c) if c.is_empty() || c[0].trim().is_empty() => {
                Err(self.err(s, "command", format!("{sec}.command"), "must not be empty"))
            }
            Some(c) => {
                for (i, a) in c.iter().enumerate() {
                    check_template(a, known)
                        .map_err(|e| self.err(s, "command", format!("{sec}.command[{i}]"), e))?;
                }
                Ok(())
            }
        }
    }

    /// Reads `[client]` as the workloads crate will, and checks every setting (for the templated `http`
    /// protocol: every template, rule, regex and pointer), so a wrong rule fails here with its line.
    fn validate_client(&self) -> Result<(), SpecError> {
        match self.spec.client.get("protocol") {
            Some(toml::Value::String(p)) if !p.is_empty() => {}
            _ => {
                return Err(self.err(
                    Some("client"),
                    "protocol",
                    "client.protocol",
                    "missing: name the client protocol (\"http-kv\", \"etcd\", \"resp\", \"http\")",
                ))
            }
        }
        #[derive(Deserialize)]
        struct ClientOnly {
            client: workloads::Protocol,
        }
        #[derive(Deserialize)]
        struct HttpOnly {
            #[allow(dead_code)]
            client: workloads::templated::HttpSettings,
        }
        let parsed = match self.spec.client.get("protocol") {
            // Read the table on its own first: its errors keep their lines.
            Some(toml::Value::String(p)) if p == "http" => {
                toml::from_str::<HttpOnly>(&self.text).and_then(|_| toml::from_str::<ClientOnly>(&self.text))
            }
            _ => toml::from_str::<ClientOnly>(&self.text),
        };
        let protocol = match parsed {
            Ok(c) => c.client,
            Err(e) => {
                return Err(SpecError {
                    file: self.origin.clone(),
                    line: e
                        .span()
                        .map(|sp| line_of_offset(&self.text, sp.start))
                        .or_else(|| line_of_key(&self.text, Some("client"), "protocol")),
                    field: "client".into(),
                    reason: e.message().trim().replace('\n', " "),
                })
            }
        };
        protocol.validate().map_err(|e| match e {
            workloads::ProtocolError::Field(f) => SpecError {
                file: self.origin.clone(),
                line: line_of_element(&self.text, &f.section, &f.key, f.index),
                field: f.field,
                reason: f.reason,
            },
            workloads::ProtocolError::Setting { field, reason } => {
                self.err(Some("client"), field, format!("client.{field}"), reason)
            }
        })?;
        if let Some(w) = &self.spec.workload {
            let workload: workloads::Workload = w.parse().map_err(|e: workloads::UnknownWorkload| {
                self.err(None, "workload", "workload", e.to_string())
            })?;
            let missing = protocol.missing_for(workload);
            if !missing.is_empty() {
                return Err(self.err(
                    None,
                    "workload",
                    "workload",
                    format!(
                        "{w} needs [client.{}], which the spec does not describe",
                        missing.join("], [client.")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The client protocol, checked (`validate` already read it once).
    pub fn protocol(&self) -> Result<workloads::Protocol, SpecError> {
        use serde::Deserialize as _;
        workloads::Protocol::deserialize(toml::Value::Table(self.spec.client.clone())).map_err(|e| {
            SpecError {
                file: self.origin.clone(),
                line: line_of_key(&self.text, Some("client"), "protocol"),
                field: "client".into(),
                reason: e.to_string().trim().replace('\n', " "),
            }
        })
    }

    /// The workload to run: `--workload` when given, else the spec's `workload`, else `cas-register`; an
    /// error when the spec's client protocol cannot send one of its operations.
    pub fn pick_workload(&self, flag: Option<&str>) -> Result<workloads::Workload, crate::HarnessError> {
        let name = flag.or(self.spec.workload.as_deref()).unwrap_or("cas-register");
        let workload: workloads::Workload = name
            .parse()
            .map_err(|e| crate::HarnessError::BadInput(format!("--workload: {e}")))?;
        let missing = self.protocol()?.missing_for(workload);
        if !missing.is_empty() {
            return Err(crate::HarnessError::BadInput(format!(
                "--workload {name}: {} describes no [client.{}], which {name} needs{}",
                self.origin,
                missing.join("], [client."),
                match &self.spec.workload {
                    Some(w) => format!(" (the spec's own workload is {w})"),
                    None => String::new(),
                }
            )));
        }
        Ok(workload)
    }
}

fn check_pointer(p: &str) -> Result<(), String> {
    if !(p.is_empty() || p.starts_with('/')) {
        return Err("a JSON pointer is empty or starts with '/' (e.g. \"/leader\")".into());
    }
    Ok(())
}

/// Compiles a regex; `groups`: how many capture groups it may need at least (0 or 1 is never an error:
/// without a group the whole match is used).
fn check_regex(re: &str, _groups: usize) -> Result<(), String> {
    regex::Regex::new(re)
        .map(|_| ())
        .map_err(|e| e.to_string().split_whitespace().collect::<Vec<_>>().join(" "))
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

fn check_method(m: &str) -> Result<(), String> {
    match m {
        "GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "PATCH" => Ok(()),
        _ => Err(format!(
            "unknown HTTP method {m:?} (GET, POST, PUT, DELETE, HEAD, PATCH)"
        )),
    }
}

/// Maps `SIGTERM`/`TERM`/`15` to a signal.
pub fn signal_from_name(name: &str) -> Option<nix::sys::signal::Signal> {
    use std::str::FromStr;
    let n = name.trim();
    if let Ok(num) = n.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(num).ok();
    }
    let full = if n.starts_with("SIG") {
        n.to_string()
    } else {
        format!("SIG{n}")
    };
    nix::sys::signal::Signal::from_str(&full).ok()
}

/// Checks that a template's placeholders are all known.
pub fn check_template(t: &str, known: &[&str]) -> Result<(), String> {
    for (_, _, name) in placeholders(t) {
        if !known.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}} (known here: {})",
                known
                    .iter()
                    .map(|k| format!("{{{k}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

/// Values of placeholders.
#[derive(Debug, Clone, Default)]
pub struct Vars(BTreeMap<&'static str, String>);

impl Vars {
    pub fn new() -> Vars {
        Vars::default()
    }
    pub fn set(&mut self, k: &'static str, v: impl fmt::Display) -> &mut Self {
        self.0.insert(k, v.to_string());
        self
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    /// Fills a template checked by [`check_template`]; an unset placeholder becomes empty.
    pub fn fill(&self, t: &str) -> String {
        let mut out = String::with_capacity(t.len() + 16);
        let mut last = 0;
        for (start, end, name) in placeholders(t) {
            out.push_str(&t[last..start]);
            out.push_str(self.get(name).unwrap_or(""));
            last = end;
        }
        out.push_str(&t[last..]);
        out
    }
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Best effort: the line where `key` is set inside `[section]` (or at top level).
fn line_of_key(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    let mut section_line = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let name = line
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            if Some(name.as_str()) == section {
                section_line = Some(i + 1);
            }
            current = Some(name);
            continue;
        }
        let in_section = current.as_deref() == section;
        if in_section {
            let k = line.split('=').next().unwrap_or("").trim().trim_matches('"');
            if line.contains('=') && k == key {
                return Some(i + 1);
            }
        }
    }
    section_line
}

/// The line of element `index` of the array `key` in `[section]` (inline `key = [ {...}, {...} ]`, one
/// element starting per line, or `[[section.key]]` tables); the key's line when the element is not found;
/// the section's line without a key.
fn line_of_element(text: &str, section: &str, key: &str, index: Option<usize>) -> Option<usize> {
    if key.is_empty() {
        return line_of_key(text, Some(section), "protocol");
    }
    let tables_header = format!("[[{section}.{key}]]");
    let headers: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim().replace(' ', "") == tables_header)
        .map(|(i, _)| i + 1)
        .collect();
    if !headers.is_empty() {
        return index
            .and_then(|i| headers.get(i).copied())
            .or(headers.first().copied());
    }
    let key_line = line_of_key(text, Some(section), key)?;
    let Some(index) = index else { return Some(key_line) };
    // Walk the array after `key =`, counting its elements at depth 1 (strings skipped).
    let start: usize = text.lines().take(key_line - 1).map(|l| l.len() + 1).sum();
    let rest = &text[start.min(text.len())..];
    let Some(eq) = rest.find('=') else {
        return Some(key_line);
    };
    let (mut depth, mut seen, mut in_str, mut line) = (0usize, 0usize, None::<char>, key_line);
    let (mut expecting, mut escaped) = (false, false);
    for c in rest[eq + 1..].chars() {
        if c == '\n' {
            line += 1;
        }
        if let Some(q) = in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                in_str = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => in_str = Some(c),
            '[' | '{' => {
                if depth == 1 && expecting {
                    if seen == index {
                        return Some(line);
                    }
                    seen += 1;
                    expecting = false;
                }
                depth += 1;
                if depth == 1 {
                    expecting = true;
                }
            }
            ']' | '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    Some(key_line)
}

/// Finds the node program: a path with a '/' is taken as is (relative to the spec's folder when relative);
/// a bare name is looked up on PATH, then next to the running `faultline` executable.
pub fn resolve_program(spec: &LoadedSpec) -> Result<PathBuf, SpecError> {
    let prog = &spec.spec.command[0];
    find_program(prog, spec.base_dir.as_deref()).ok_or_else(|| {
        let provided = match &spec.spec.provided_by {
            Some(p) => format!("; it is provided by: {p}"),
            None => String::new(),
        };
        SpecError {
            file: spec.origin.clone(),
            line: line_of_key(&spec.text, None, "command"),
            field: "command[0]".into(),
            reason: format!("program {prog:?} not found (looked on PATH and next to faultline){provided}"),
        }
    })
}

/// Finds a program of the spec (`version`, `check_args`) as the node program is found.
pub fn find_spec_program(spec: &LoadedSpec, prog: &str) -> Option<PathBuf> {
    find_program(prog, spec.base_dir.as_deref())
}

fn find_program(prog: &str, base: Option<&Path>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exe = |p: &Path| {
        p.is_file()
            && p.metadata()
                .map(|m| m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
    };
    if prog.contains('/') {
        let p = Path::new(prog);
        let p = match (p.is_relative(), base) {
            (true, Some(b)) => b.join(p),
            _ => p.to_path_buf(),
        };
        return is_exe(&p).then_some(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join(prog);
            if is_exe(&c) {
                return Some(c);
            }
        }
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let c = d.join(prog);
        if is_exe(&c) {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
name = "x"
command = ["/bin/sleep", "{port}"]
[ready]
kind = "tcp"
[client]
protocol = "http-kv"
"#;

    #[test]
    fn embedded_raftkv_spec_is_valid() {
        let s = LoadedSpec::raftkv();
        assert_eq!(s.spec.name, "raftkv");
    }

    #[test]
    fn shipped_specs_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbs");
        for f in [
            "raftkv.toml",
            "etcd.toml",
            "etcd-serializable.toml",
            "dqlite.toml",
        ] {
            LoadedSpec::from_path(&dir.join(f)).unwrap();
        }
    }

    #[test]
    fn minimal_spec_loads() {
        LoadedSpec::from_text(MIN, "t.toml", None).unwrap();
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let t = MIN.replace("kind = \"tcp\"", "kind = \"tcp\"\ntimeout = 3");
        let e = LoadedSpec::from_text(&t, "t.toml", None).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:6:"), "{e}");
        assert!(e.contains("unknown field `timeout`"), "{e}");
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let t = MIN.replace("{port}", "{prot}");
        let e = LoadedSpec::from_text(&t, "t.toml", None).unwrap_err().to_string();
        assert!(
            e.starts_with("t.toml:3: command[1]: unknown placeholder {prot}"),
            "{e}"
        );
    }

    #[test]
    fn missing_protocol_and_non_loopback_external() {
        let t = MIN.replace("protocol = \"http-kv\"", "timeout_ms = 5");
        let e = LoadedSpec::from_text(&t, "t.toml", None).unwrap_err().to_string();
        assert!(e.contains("client.protocol: missing"), "{e}");
        let t = format!("{MIN}\n[external]\nnodes = [{{ id = \"n1\", address = \"8.8.8.8:80\" }}]\n");
        let e = LoadedSpec::from_text(&t, "t.toml", None).unwrap_err().to_string();
        assert!(
            e.contains("external.nodes[0].address: faultline only talks to loopback"),
            "{e}"
        );
    }

    #[test]
    fn fill_and_escape() {
        let mut v = Vars::new();
        v.set("id", "n1").set("port", 7);
        assert_eq!(v.fill("{id}:{port}{X}"), "n1:7{X}");
        assert_eq!(v.fill(r#"{"add": {"{id}": 1}}"#), r#"{"add": {"n1": 1}}"#);
        assert!(check_template(r#"{"a": {b}}"#, &["b"]).is_ok());
        assert!(check_template("{a}", &["b"]).is_err());
    }

    #[test]
    fn missing_program_says_what_provides_it() {
        let t = MIN.replace("/bin/sleep", "no-such-prog-faultline").replace(
            "name = \"x\"",
            "name = \"x\"\nprovided_by = \"apt-get install y\"",
        );
        let s = LoadedSpec::from_text(&t, "t.toml", None).unwrap();
        let e = resolve_program(&s).unwrap_err().to_string();
        assert!(
            e.contains("command[0]: program \"no-such-prog-faultline\" not found"),
            "{e}"
        );
        assert!(e.contains("apt-get install y"), "{e}");
    }

    #[test]
    fn signals_parse() {
        assert_eq!(
            signal_from_name("SIGTERM"),
            Some(nix::sys::signal::Signal::SIGTERM)
        );
        assert_eq!(signal_from_name("INT"), Some(nix::sys::signal::Signal::SIGINT));
        assert_eq!(signal_from_name("SIGFOO"), None);
    }
}
