//! The I/O shell around the Raft core: one thread owns the core, the storage and the key-value store and
//! turns batches of events into one fsync (group commit); tokio runs the HTTP server (client API and Raft
//! messages on the same address), one sender task per peer, and the ticker.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use raftkv::core::{Body, Bugs, Config, EntryData, Membership, Message, Node, NodeId, ProposeError, Role};
use raftkv::kv::{key_of, Command, Outcome, Store};
use raftkv::storage::Storage;

/// Everything the command line configures.
#[derive(Clone, Debug)]
pub struct Options {
    pub id: NodeId,
    pub listen: String,
    pub peers: BTreeMap<NodeId, String>,
    pub data_dir: PathBuf,
    pub join: bool,
    pub bugs: Bugs,
    pub snapshot_every: u64,
    pub tick_ms: u64,
    pub heartbeat_ms: u64,
    pub election_ms: u64,
    pub request_timeout_ms: u64,
}

/// An answer to a client request, before it becomes HTTP.
#[derive(Debug)]
enum Reply {
    Value(Value),
    Ok,
    Members(Vec<NodeId>),
    CasMismatch(Value),
    NotLeader(Option<NodeId>),
    LeadershipLost,
    BadRequest(String),
    ChangeInProgress,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let (code, body) = match self {
            Reply::Value(v) => (StatusCode::OK, json!({ "value": v })),
            Reply::Ok => (StatusCode::OK, json!({ "ok": true })),
            Reply::Members(m) => (StatusCode::OK, json!({ "ok": true, "members": m })),
            Reply::CasMismatch(v) => (
                StatusCode::CONFLICT,
                json!({ "error": "cas-mismatch", "value": v }),
            ),
            Reply::NotLeader(l) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "not-leader", "leader": l }),
            ),
            Reply::LeadershipLost => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": "leadership-lost" }),
            ),
            Reply::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                json!({ "error": "bad-request", "message": m }),
            ),
            Reply::ChangeInProgress => (StatusCode::CONFLICT, json!({ "error": "change-in-progress" })),
        };
        (code, axum::Json(body)).into_response()
    }
}

fn timeout_response() -> Response {
    (
        StatusCode::GATEWAY_TIMEOUT,
        axum::Json(json!({ "error": "timeout" })),
    )
        .into_response()
}

enum Event {
    Tick,
    Messages(Vec<Message>),
    Unreachable(NodeId),
    Propose {
        cmd: Command,
        reply: oneshot::Sender<Reply>,
    },
    Read {
        key: String,
        reply: oneshot::Sender<Reply>,
    },
    Members {
        add: BTreeMap<NodeId, String>,
        remove: BTreeSet<NodeId>,
        reply: oneshot::Sender<Reply>,
    },
}

#[derive(Clone, Debug, Default)]
struct StatusView {
    role: &'static str,
    term: u64,
    leader: Option<NodeId>,
    commit_index: u64,
    applied_index: u64,
    members: Vec<NodeId>,
    addrs: BTreeMap<NodeId, String>,
}

struct Shared {
    id: NodeId,
    /// This node's own address, sent with its Raft messages ([`FROM`]).
    listen: String,
    status: Mutex<StatusView>,
    /// Peers' addresses learned from the messages they sent ([`FROM`]): a node that joined before another
    /// knows it only from the configuration, which it may not have yet when that one leads, and must still
    /// be able to answer it.
    learned: Mutex<BTreeMap<NodeId, String>>,
    events: mpsc::UnboundedSender<Event>,
    forward: reqwest::Client,
    request_timeout: Duration,
}

impl Shared {
    fn addr_of(&self, id: &str) -> Option<String> {
        let known = self.status.lock().expect("status lock").addrs.get(id).cloned();
        known.or_else(|| self.learned.lock().expect("learned lock").get(id).cloned())
    }

    /// Remembers the address a peer's messages came with ([`FROM`]: `id=host:port`).
    fn learn(&self, headers: &HeaderMap) {
        let Some(from) = headers.get(FROM).and_then(|v| v.to_str().ok()) else {
            return;
        };
        let Some((id, addr)) = from.split_once('=') else {
            return;
        };
        if id != self.id && addr.parse::<std::net::SocketAddr>().is_ok() {
            let mut learned = self.learned.lock().expect("learned lock");
            learned.insert(id.to_string(), addr.to_string());
        }
    }
}

/// Opens the data directory and builds the Raft core (its state as persisted) and the key-value store
/// (from the snapshot, if any).
fn open_node(opts: &Options) -> anyhow::Result<(Node, Storage, Store)> {
    let mut base = Membership::default();
    if !opts.join {
        base.voters.insert(opts.id.clone());
        base.addrs.insert(opts.id.clone(), opts.listen.clone());
        for (id, addr) in &opts.peers {
            base.voters.insert(id.clone());
            base.addrs.insert(id.clone(), addr.clone());
        }
    }
    let (mut storage, persisted, base) = Storage::open(&opts.data_dir, &opts.id, base)
        .with_context(|| format!("cannot open data directory {}", opts.data_dir.display()))?;
    storage.skip_fsync(opts.bugs.skip_fsync);
    let store = match &persisted.snapshot {
        Some(s) => Store::from_snapshot(&s.data)
            .with_context(|| format!("{}: field data", opts.data_dir.join("snapshot.json").display()))?,
        None => Store::default(),
    };
    let tick = opts.tick_ms.max(1);
    let cfg = Config {
        id: opts.id.clone(),
        base,
        heartbeat_ticks: (opts.heartbeat_ms / tick).max(1) as u32,
        election_ticks: (opts.election_ms / tick).max(2) as u32,
        max_batch: 256,
        max_inflight: 64,
        seed: rand::random(),
        bugs: opts.bugs,
    };
    let node = Node::new(cfg, persisted);
    tracing::info!(
        id = %opts.id, term = node.term(), last_index = node.last_index(), snapshot = node.snapshot().index,
        bugs = ?opts.bugs.names(), "starting"
    );
    Ok((node, storage, store))
}

/// The HTTP API: the key-value routes, status, membership and the peers' Raft messages.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/kv/{key}", get(kv_get).put(kv_put))
        .route("/kv/{key}/cas", post(kv_cas))
        .route("/kv/{key}/append", post(kv_append))
        .route("/status", get(status))
        .route("/members", post(members))
        .route("/raft/messages", post(raft_messages))
        .with_state(shared)
}

/// Runs a node until the process is killed.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let (node, storage, store) = open_node(&opts)?;
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;

    let (tx, rx) = mpsc::unbounded_channel();
    let request_timeout = Duration::from_millis(opts.request_timeout_ms);
    let shared = Arc::new(Shared {
        id: opts.id.clone(),
        listen: opts.listen.clone(),
        status: Mutex::new(StatusView::default()),
        learned: Mutex::new(BTreeMap::new()),
        events: tx.clone(),
        forward: reqwest::Client::builder()
            .timeout(request_timeout + Duration::from_millis(500))
            .connect_timeout(Duration::from_millis(500))
            .build()?,
        request_timeout,
    });
    let peer_client = reqwest::Client::builder()
        .timeout(Duration::from_millis(1000))
        .connect_timeout(Duration::from_millis(300))
        .pool_max_idle_per_host(4)
        .tcp_nodelay(true)
        .build()?;
    let mut raft = RaftLoop {
        node,
        storage,
        store,
        applied: 0,
        snapshot_every: opts.snapshot_every.max(1),
        proposals: BTreeMap::new(),
        member_waits: Vec::new(),
        reads: HashMap::new(),
        ready_reads: Vec::new(),
        next_ctx: 1,
        spec: BTreeMap::new(),
        spec_upto: 0,
        last_role: (Role::Follower, 0),
        senders: HashMap::new(),
        cli_peers: opts.peers.clone(),
        shared: shared.clone(),
        rt: tokio::runtime::Handle::current(),
        peer_client,
        bugs: opts.bugs,
    };
    raft.applied = raft.node.snapshot().index;
    raft.publish();
    std::thread::Builder::new()
        .name("raft".into())
        .spawn(move || {
            if let Err(e) = raft.run(rx) {
                tracing::error!("raft loop failed: {e:#}");
                eprintln!("raftkv: {e:#}");
                std::process::exit(1);
            }
        })
        .context("cannot start the raft thread")?;

    tokio::spawn(ticker(tx, Duration::from_millis(opts.tick_ms.max(1))));

    let app = router(shared);
    tracing::info!(listen = %opts.listen, "serving");
    axum::serve(listener, app).await.context("HTTP server failed")?;
    Ok(())
}

/// Ticks aligned to the wall clock, so that nodes with identical timers fire together.
async fn ticker(tx: mpsc::UnboundedSender<Event>, period: Duration) {
    let now = wall_clock();
    let phase = Duration::from_nanos((now.as_nanos() % period.as_nanos()) as u64);
    let start = tokio::time::Instant::now() + (period - phase);
    let mut iv = tokio::time::interval_at(start, period);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        iv.tick().await;
        if tx.send(Event::Tick).is_err() {
            return;
        }
    }
}

async fn peer_sender(
    to: NodeId,
    shared: Arc<Shared>,
    client: reqwest::Client,
    mut rx: mpsc::UnboundedReceiver<Message>,
) {
    let mut batch = Vec::new();
    let mut reachable = true;
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let Some(addr) = shared.addr_of(&to) else { continue };
        let res = client
            .post(format!("http://{addr}/raft/messages"))
            .header(FROM, format!("{}={}", shared.id, shared.listen))
            .json(&batch)
            .send()
            .await;
        let ok = matches!(&res, Ok(r) if r.status().is_success());
        if ok != reachable {
            // Only the changes are logged: a dead peer would otherwise fill the log.
            match &res {
                Ok(r) if ok => tracing::info!(to, status = %r.status(), "peer reachable again"),
                Ok(r) => tracing::info!(to, status = %r.status(), "peer refused messages"),
                Err(e) => tracing::info!(to, error = %e, "cannot reach peer"),
            }
            reachable = ok;
        }
        if !ok {
            tracing::debug!(to, "cannot deliver {} messages", batch.len());
            let _ = shared.events.send(Event::Unreachable(to.clone()));
            // Whatever queued up while the peer was unreachable is stale; Raft resends what matters.
            while rx.try_recv().is_ok() {}
        }
    }
}

struct Pending {
    term: u64,
    reply: Option<oneshot::Sender<Reply>>,
    early: Option<Outcome>,
}

struct RaftLoop {
    node: Node,
    storage: Storage,
    store: Store,
    applied: u64,
    snapshot_every: u64,
    proposals: BTreeMap<u64, Pending>,
    member_waits: Vec<(BTreeSet<NodeId>, oneshot::Sender<Reply>)>,
    reads: HashMap<u64, (String, oneshot::Sender<Reply>)>,
    ready_reads: Vec<(u64, String, oneshot::Sender<Reply>)>,
    next_ctx: u64,
    /// early-ack only: the values keys will have once the proposed-but-unapplied commands apply.
    spec: BTreeMap<String, Value>,
    spec_upto: u64,
    last_role: (Role, u64),
    senders: HashMap<NodeId, mpsc::UnboundedSender<Message>>,
    cli_peers: BTreeMap<NodeId, String>,
    shared: Arc<Shared>,
    rt: tokio::runtime::Handle,
    peer_client: reqwest::Client,
    bugs: Bugs,
}

fn outcome_reply(o: Outcome) -> Reply {
    match o {
        Outcome::Ok => Reply::Ok,
        Outcome::CasMismatch(v) => Reply::CasMismatch(v),
        Outcome::Appended(v) => Reply::Value(v),
        Outcome::Invalid(m) => Reply::BadRequest(m),
    }
}

impl RaftLoop {
    fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Event>) -> anyhow::Result<()> {
        while let Some(ev) = rx.blocking_recv() {
            let started = std::time::Instant::now();
            self.handle(ev);
            let mut n = 1;
            while n < 4096 {
                match rx.try_recv() {
                    Ok(ev) => self.handle(ev),
                    Err(_) => break,
                }
                n += 1;
            }
            self.process_ready()?;
            let took = started.elapsed();
            if took > Duration::from_millis(300) {
                tracing::warn!(
                    ms = took.as_millis() as u64,
                    events = n,
                    "one raft loop step was slow (time stopped by SIGSTOP counts too)"
                );
            }
        }
        Ok(())
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Tick => self.node.tick(),
            Event::Messages(ms) => {
                for m in ms {
                    self.node.step(m);
                }
            }
            Event::Unreachable(p) => self.node.report_unreachable(&p),
            Event::Propose { cmd, reply } => {
                let early = if self.node.role() == Role::Leader && self.bugs.early_ack {
                    Some(self.speculate(&cmd))
                } else {
                    None
                };
                let data = serde_json::to_string(&cmd).expect("commands serialise");
                match self.node.propose(data) {
                    Ok((index, term)) => {
                        if early.is_some() {
                            self.spec_upto = index;
                        }
                        self.proposals.insert(
                            index,
                            Pending {
                                term,
                                reply: Some(reply),
                                early,
                            },
                        );
                    }
                    Err(e) => {
                        let _ = reply.send(propose_error(e));
                    }
                }
            }
            Event::Read { key, reply } => {
                let ctx = self.next_ctx;
                self.next_ctx += 1;
                match self.node.read_index(ctx) {
                    Ok(()) => {
                        self.reads.insert(ctx, (key, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(propose_error(e));
                    }
                }
            }
            Event::Members { add, remove, reply } => {
                let mut target = self.node.membership().voters.clone();
                target.extend(add.keys().cloned());
                for r in &remove {
                    target.remove(r);
                }
                match self.node.change_membership(add, remove) {
                    Ok(_) => self.member_waits.push((target, reply)),
                    Err(e) => {
                        let _ = reply.send(propose_error(e));
                    }
                }
            }
        }
    }

    /// early-ack: the outcome `cmd` will have, given everything proposed before it.
    fn speculate(&mut self, cmd: &Command) -> Outcome {
        let key = key_of(cmd).to_string();
        let mut view = Store::default();
        view.set(
            &key,
            self.spec
                .get(&key)
                .cloned()
                .unwrap_or_else(|| self.store.get(&key)),
        );
        let (outcome, new) = view.evaluate(cmd);
        if let Some(v) = new {
            self.spec.insert(key, v);
        }
        outcome
    }

    fn process_ready(&mut self) -> anyhow::Result<()> {
        let mut rd = self.node.ready();
        self.persist_and_send(&mut rd)?;
        if let Some(snap) = &rd.snapshot {
            self.store = Store::from_snapshot(&snap.data).context("snapshot from the leader: field data")?;
            self.applied = snap.index;
            self.spec.clear();
            for (_, p) in std::mem::take(&mut self.proposals) {
                if let Some(r) = p.reply {
                    let _ = r.send(Reply::LeadershipLost);
                }
            }
        }
        for (index, term) in &rd.early_acks {
            if let Some(p) = self.proposals.get_mut(index) {
                if p.term == *term {
                    if let (Some(r), Some(o)) = (p.reply.take(), p.early.take()) {
                        let _ = r.send(outcome_reply(o));
                    }
                }
            }
        }
        for e in std::mem::take(&mut rd.committed) {
            self.apply_committed(e);
        }
        if self.applied >= self.spec_upto {
            self.spec.clear();
        }
        self.answer_reads(std::mem::take(&mut rd.reads));
        self.on_role_change();
        if self.applied >= self.node.snapshot().index + self.snapshot_every {
            let index = self.applied;
            self.node.compact(index, self.store.to_snapshot());
            self.storage.save_snapshot(self.node.snapshot())?;
            self.storage.rewrite_log(self.node.entries())?;
            tracing::debug!(index, "took a snapshot");
        }
        self.publish();
        Ok(())
    }

    /// Makes a ready batch durable and sends its messages. A leader may replicate entries before its own
    /// write finishes (Raft paper, section 10.2.1): nothing counts its own copy before this batch is
    /// durable, because no answer is handled until then. Every other message (votes, acknowledgements)
    /// waits for the fsync.
    fn persist_and_send(&mut self, rd: &mut raftkv::core::Ready) -> anyhow::Result<()> {
        let (early, late): (Vec<Message>, Vec<Message>) =
            std::mem::take(&mut rd.messages).into_iter().partition(|m| {
                matches!(m.body, Body::Append { .. } | Body::Heartbeat { .. })
                    && self.node.role() == Role::Leader
                    && m.term == self.node.term()
            });
        for m in early {
            self.send(m);
        }
        if let Some(hs) = &rd.hard_state {
            self.storage.save_hard_state(hs)?;
        }
        if let Some(snap) = &rd.snapshot {
            self.storage.save_snapshot(snap)?;
            self.storage.rewrite_log(self.node.entries())?;
        } else {
            self.storage.append(&rd.log_ops)?;
        }
        for m in late {
            self.send(m);
        }
        Ok(())
    }

    /// Applies one committed entry and settles the proposals at or below its index.
    fn apply_committed(&mut self, e: raftkv::core::Entry) {
        let outcome = match &e.data {
            EntryData::Command(s) => match serde_json::from_str::<Command>(s) {
                Ok(cmd) => Some(self.store.apply(&cmd)),
                Err(err) => {
                    tracing::error!(index = e.index, "undecodable command in the log: {err}");
                    Some(Outcome::Invalid(err.to_string()))
                }
            },
            EntryData::Config(m) => {
                if !m.is_joint() {
                    let voters = m.voters.clone();
                    let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.member_waits)
                        .into_iter()
                        .partition(|(t, _)| *t == voters);
                    self.member_waits = rest;
                    for (_, r) in done {
                        let _ = r.send(Reply::Members(voters.iter().cloned().collect()));
                    }
                }
                None
            }
            EntryData::Noop => None,
        };
        // Proposals at or below this index are settled now.
        while let Some(entry) = self.proposals.first_entry() {
            if *entry.key() > e.index {
                break;
            }
            let (i, p) = entry.remove_entry();
            if let Some(r) = p.reply {
                let reply = match (&outcome, i == e.index && p.term == e.term) {
                    (Some(o), true) => outcome_reply(o.clone()),
                    _ => Reply::LeadershipLost,
                };
                let _ = r.send(reply);
            }
        }
        self.applied = e.index;
    }

    /// Queues the reads the core confirmed and answers those whose index is applied.
    fn answer_reads(&mut self, reads: Vec<raftkv::core::ReadState>) {
        for r in reads {
            if let Some((key, reply)) = self.reads.remove(&r.ctx) {
                self.ready_reads.push((r.index, key, reply));
            }
        }
        if !self.ready_reads.is_empty() {
            let applied = self.applied;
            let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ready_reads)
                .into_iter()
                .partition(|(i, _, _)| *i <= applied);
            self.ready_reads = later;
            for (_, key, reply) in now {
                let _ = reply.send(Reply::Value(self.store.get(&key)));
            }
        }
    }

    /// On a change of role or term: a former leader fails what it was waiting for; a non-leader sends
    /// pending reads to the leader it knows.
    fn on_role_change(&mut self) {
        let role = (self.node.role(), self.node.term());
        if role == self.last_role {
            return;
        }
        if self.last_role.0 == Role::Leader {
            for (_, p) in std::mem::take(&mut self.proposals) {
                if let Some(r) = p.reply {
                    let _ = r.send(Reply::LeadershipLost);
                }
            }
            for (_, r) in std::mem::take(&mut self.member_waits) {
                let _ = r.send(Reply::LeadershipLost);
            }
            self.spec.clear();
        }
        if role.0 != Role::Leader {
            let leader = self.node.leader().cloned();
            for (_, (_, r)) in self.reads.drain() {
                let _ = r.send(Reply::NotLeader(leader.clone()));
            }
        }
        self.last_role = role;
    }

    fn send(&mut self, m: Message) {
        if !self.senders.contains_key(&m.to) {
            let (tx, rx) = mpsc::unbounded_channel();
            self.rt.spawn(peer_sender(
                m.to.clone(),
                self.shared.clone(),
                self.peer_client.clone(),
                rx,
            ));
            self.senders.insert(m.to.clone(), tx);
        }
        let _ = self.senders[&m.to].send(m);
    }

    fn publish(&self) {
        let n = &self.node;
        let role = if !n.is_voter() && n.role() != Role::Leader {
            "learner"
        } else {
            match n.role() {
                Role::Leader => "leader",
                Role::Follower => "follower",
                Role::PreCandidate | Role::Candidate => "candidate",
            }
        };
        let mut addrs = self.cli_peers.clone();
        addrs.extend(n.membership().addrs.clone());
        let view = StatusView {
            role,
            term: n.term(),
            leader: n.leader().cloned(),
            commit_index: n.commit_index(),
            applied_index: self.applied,
            members: n.membership().members().into_iter().collect(),
            addrs,
        };
        *self.shared.status.lock().expect("status lock") = view;
    }
}

fn propose_error(e: ProposeError) -> Reply {
    match e {
        ProposeError::NotLeader(l) => Reply::NotLeader(l),
        ProposeError::ChangeInProgress => Reply::ChangeInProgress,
        ProposeError::NoVoters => Reply::BadRequest("the new configuration would have no voters".into()),
    }
}

// ----- HTTP -----

const FORWARDED: &str = "x-raftkv-forwarded";
/// Names the sender of Raft messages and its address: `id=host:port`.
const FROM: &str = "x-raftkv-from";

/// Runs a request locally; if this node is not the leader, forwards it to the leader (once).
async fn dispatch(
    s: &Arc<Shared>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    make: impl FnOnce(oneshot::Sender<Reply>) -> Event,
) -> Response {
    let (tx, rx) = oneshot::channel();
    if s.events.send(make(tx)).is_err() {
        return Reply::NotLeader(None).into_response();
    }
    let reply = match tokio::time::timeout(s.request_timeout, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Reply::LeadershipLost,
        Err(_) => return timeout_response(),
    };
    let leader = match reply {
        Reply::NotLeader(Some(l)) if l != s.id && !headers.contains_key(FORWARDED) => l,
        other => return other.into_response(),
    };
    let Some(addr) = s.addr_of(&leader) else {
        return Reply::NotLeader(Some(leader)).into_response();
    };
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let req = s
        .forward
        .request(method, format!("http://{addr}{path}"))
        .header(FORWARDED, "1")
        .header("content-type", "application/json")
        .body(body.to_vec());
    match req.send().await {
        Ok(resp) => {
            let code = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            match resp.bytes().await {
                Ok(b) => (code, [("content-type", "application/json")], b.to_vec()).into_response(),
                Err(_) => timeout_response(),
            }
        }
        // Nothing reached the leader: a definite failure.
        Err(e) if e.is_connect() => Reply::NotLeader(Some(leader)).into_response(),
        Err(_) => timeout_response(),
    }
}

fn parse_body(body: &Bytes) -> Result<serde_json::Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Reply::BadRequest("the body must be a JSON object".into())),
        Err(e) => Err(Reply::BadRequest(format!("the body is not JSON: {e}"))),
    }
}

fn field(m: &serde_json::Map<String, Value>, name: &str) -> Result<Value, Reply> {
    m.get(name)
        .cloned()
        .ok_or_else(|| Reply::BadRequest(format!("missing field {name:?}")))
}

async fn kv_get(
    State(s): State<Arc<Shared>>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    dispatch(&s, method, &uri, &headers, Bytes::new(), |reply| Event::Read {
        key,
        reply,
    })
    .await
}

/// Proposes a write command through the log (forwarded to the leader by [`dispatch`] when needed).
async fn propose(
    s: &Arc<Shared>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    cmd: Command,
) -> Response {
    dispatch(s, method, uri, headers, body, |reply| Event::Propose {
        cmd,
        reply,
    })
    .await
}

async fn kv_put(
    State(s): State<Arc<Shared>>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value = match parse_body(&body).and_then(|m| field(&m, "value")) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let cmd = Command::Put { key, value };
    propose(&s, method, &uri, &headers, body, cmd).await
}

async fn kv_cas(
    State(s): State<Arc<Shared>>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (from, to) = match parse_body(&body).and_then(|m| Ok((field(&m, "from")?, field(&m, "to")?))) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let cmd = Command::Cas { key, from, to };
    propose(&s, method, &uri, &headers, body, cmd).await
}

async fn kv_append(
    State(s): State<Arc<Shared>>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value = match parse_body(&body).and_then(|m| field(&m, "value")) {
        Ok(Value::String(v)) => v,
        Ok(_) => return Reply::BadRequest("field \"value\" must be a string".into()).into_response(),
        Err(r) => return r.into_response(),
    };
    let cmd = Command::Append { key, value };
    propose(&s, method, &uri, &headers, body, cmd).await
}

async fn status(State(s): State<Arc<Shared>>) -> Response {
    let v = s.status.lock().expect("status lock").clone();
    axum::Json(json!({
        "id": s.id,
        "role": v.role,
        "term": v.term,
        "leader": v.leader,
        "commit_index": v.commit_index,
        "applied_index": v.applied_index,
        "members": v.members,
        "clock_ms": wall_clock().as_millis() as u64,
    }))
    .into_response()
}

/// This node's wall clock since the Unix epoch (what a clock fault moves).
fn wall_clock() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

async fn members(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let m = match parse_body(&body) {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    let mut add = BTreeMap::new();
    if let Some(a) = m.get("add") {
        let Value::Object(a) = a else {
            return Reply::BadRequest("field \"add\" must be an object of id to host:port".into())
                .into_response();
        };
        for (id, addr) in a {
            match addr {
                Value::String(addr) if addr.parse::<std::net::SocketAddr>().is_ok() => {
                    add.insert(id.clone(), addr.clone());
                }
                _ => {
                    return Reply::BadRequest(format!("field \"add.{id}\" must be \"host:port\""))
                        .into_response()
                }
            }
        }
    }
    let mut remove = BTreeSet::new();
    if let Some(r) = m.get("remove") {
        let Some(list) = r.as_array() else {
            return Reply::BadRequest("field \"remove\" must be an array of ids".into()).into_response();
        };
        for id in list {
            match id.as_str() {
                Some(id) => {
                    remove.insert(id.to_string());
                }
                None => {
                    return Reply::BadRequest("field \"remove\" must hold strings".into()).into_response()
                }
            }
        }
    }
    if add.is_empty() && remove.is_empty() {
        return Reply::BadRequest("nothing to add or remove".into()).into_response();
    }
    dispatch(&s, method, &uri, &headers, body, |reply| Event::Members {
        add,
        remove,
        reply,
    })
    .await
}

async fn raft_messages(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match serde_json::from_slice::<Vec<Message>>(&body) {
        Ok(ms) => {
            s.learn(&headers);
            let _ = s.events.send(Event::Messages(ms));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => Reply::BadRequest(format!("bad raft messages: {e}")).into_response(),
    }
}
