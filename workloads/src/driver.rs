//! The driver: concurrent client tasks that draw operations, send them and record them; and the final reads.
//!
//! Task `i` of `concurrency` is Jepsen process `i` at first. It is pinned to node `i mod n` and moves to the
//! next node only after a definite refusal: a `fail` other than `cas-mismatch` and `client-timeout` (the
//! node is down, knows no leader, or said no). At its own node a timeout or another `info` does not move it:
//! a node that is cut off or paused is exactly where stale answers show (an isolated leader that still serves
//! reads, a paused one answering the requests that waited for it), so its clients keep asking it, as
//! Jepsen's clients stay bound to their node. Away from its own node any error moves it on: otherwise the
//! tasks that leave a dead leader's node while no node knows a new leader walk on to a paused node and wait
//! there, one timeout after another, while a live majority serves nobody (a false availability alarm, seen
//! on correct raftkv). A task that moved goes back to its own node when it starts its next key,
//! so that every node keeps its share of clients through a long run (a leader cut off or resumed late is only
//! seen through the clients that ask it). After an `info` the process may still have an operation in flight,
//! so the task continues as process `p + concurrency`. After any error (an `info`, a `fail` but a
//! `cas-mismatch`) a task also pauses before its next operation: [`ERROR_BACKOFF_MIN`], doubling up to
//! [`ERROR_BACKOFF_MAX`] while errors go on, reset by any other outcome.
//!
//! A task whose key group has moved on to a later key (its mates were faster: its own writes were timing out)
//! jumps to that key before its next operation, so a slowed client asks about the key its mates write.
//!
//! The clients follow the membership ([`drive_following`]): when the list of members' addresses changes, task
//! `i`'s own node becomes `i mod n` of the new list; a task whose node left moves to its own node at once,
//! the others at their next key, so a removed node's clients move and a new node gets its share.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checker::EventType;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::completion::Completion;
use crate::protocol::{Connector, NodeClient, Protocol, ProtocolError};
use crate::recorder::Recorder;
use crate::workload::{Call, Generator, KeyPlan, Op, Workload};

/// The first pause of a client task after an error (see [`drive`]).
pub const ERROR_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest pause of a client task after consecutive errors.
pub const ERROR_BACKOFF_MAX: Duration = Duration::from_millis(200);

/// What the clients do and how fast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriveConfig {
    pub workload: Workload,
    /// Client tasks (Jepsen processes at a time).
    pub concurrency: usize,
    /// Overall operations per second across all tasks; None for as fast as the system answers.
    pub rate: Option<f64>,
    /// Seeds the operation streams.
    pub seed: u64,
    /// How operations are spread over keys.
    pub keys: KeyPlan,
}

impl DriveConfig {
    /// `concurrency` tasks of `workload`, unlimited rate, the default key plan.
    pub fn new(workload: Workload, concurrency: usize, seed: u64) -> DriveConfig {
        DriveConfig {
            workload,
            concurrency,
            rate: None,
            seed,
            keys: KeyPlan::default(),
        }
    }
}

/// Live outcome counts, shared with whoever shows progress.
#[derive(Debug, Default)]
pub struct Counters {
    ok: AtomicU64,
    fail: AtomicU64,
    info: AtomicU64,
}

/// A reading of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl Counts {
    /// Completed operations.
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }
}

impl Counters {
    /// The counts now.
    pub fn snapshot(&self) -> Counts {
        Counts {
            ok: self.ok.load(Ordering::Relaxed),
            fail: self.fail.load(Ordering::Relaxed),
            info: self.info.load(Ordering::Relaxed),
        }
    }

    fn add(&self, kind: EventType) {
        let counter = match kind {
            EventType::Ok => &self.ok,
            EventType::Fail => &self.fail,
            _ => &self.info,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the clients did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriveSummary {
    pub counts: Counts,
    /// Every key an operation was invoked on, in key order: what [`final_reads`] should read.
    pub keys: Vec<String>,
    /// A process number above every one used: where [`final_reads`] may start numbering.
    pub next_process: u64,
}

/// Why the clients could not run.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("no nodes to send operations to")]
    NoNodes,
    #[error("concurrency must be at least 1")]
    NoConcurrency,
    #[error("rate must be a positive number of operations per second, not {0}")]
    BadRate(f64),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("a client task failed: {0}")]
    Task(String),
}

/// Runs `config.concurrency` client tasks against `nodes` (client addresses `host:port`) until `stop` turns
/// true (or its sender is dropped), recording every invoke and completion. Operations in flight when `stop`
/// turns are completed (each within the protocol's timeout) before this returns.
pub async fn drive(
    config: &DriveConfig,
    protocol: &Protocol,
    nodes: &[String],
    recorder: &Recorder,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
) -> Result<DriveSummary, DriveError> {
    let (_keep, members) = watch::channel(nodes.to_vec());
    drive_following(config, protocol, members, recorder, counters, stop).await
}

/// Like [`drive`], with the nodes' client addresses read from `members` and followed as they change (see
/// the module docs). An empty list leaves the clients where they are.
pub async fn drive_following(
    config: &DriveConfig,
    protocol: &Protocol,
    mut members: watch::Receiver<Vec<String>>,
    recorder: &Recorder,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
) -> Result<DriveSummary, DriveError> {
    let nodes = members.borrow_and_update().clone();
    if nodes.is_empty() {
        return Err(DriveError::NoNodes);
    }
    if config.concurrency == 0 {
        return Err(DriveError::NoConcurrency);
    }
    if let Some(rate) = config.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(DriveError::BadRate(rate));
        }
    }
    let connector = protocol.connector()?;
    let mut tasks = tokio::task::JoinSet::new();
    let rounds = GroupRounds::new(config.concurrency);
    for task in 0..config.concurrency {
        let worker = Worker {
            task,
            rounds: rounds.clone(),
            config: config.clone(),
            connector: connector.clone(),
            nodes: nodes.clone(),
            members: members.clone(),
            recorder: recorder.clone(),
            counters: counters.clone(),
            stop: stop.clone(),
        };
        tasks.spawn(worker.run());
    }
    let mut keys = BTreeSet::new();
    let mut next_process = 0;
    while let Some(joined) = tasks.join_next().await {
        let (worker_keys, last_process) = joined.map_err(|e| DriveError::Task(e.to_string()))?;
        keys.extend(worker_keys);
        next_process = next_process.max(last_process + 1);
    }
    Ok(DriveSummary {
        counts: counters.snapshot(),
        keys: keys.into_iter().map(Generator::key_name).collect(),
        next_process,
    })
}

/// The furthest key round each key group has reached (see the workload module's docs).
#[derive(Clone)]
struct GroupRounds(Arc<Vec<AtomicU64>>);

impl GroupRounds {
    fn new(groups: usize) -> GroupRounds {
        GroupRounds(Arc::new((0..groups).map(|_| AtomicU64::new(0)).collect()))
    }

    /// Brings `generator` up to its group's furthest round, and records its own round for its mates.
    fn keep_up(&self, generator: &mut Generator) {
        let group = &self.0[generator.group()];
        generator.catch_up(group.load(Ordering::Relaxed));
        group.fetch_max(generator.round(), Ordering::Relaxed);
    }
}

struct Worker {
    task: usize,
    rounds: GroupRounds,
    config: DriveConfig,
    connector: Connector,
    nodes: Vec<String>,
    members: watch::Receiver<Vec<String>>,
    recorder: Recorder,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
}

impl Worker {
    /// Returns the key numbers it touched and its last process number.
    async fn run(mut self) -> (BTreeSet<u64>, u64) {
        let c = &self.config;
        let mut generator = Generator::new(c.workload, c.seed, self.task, c.concurrency, c.keys);
        let mut process = self.task as u64;
        let mut home = self.task % self.nodes.len();
        let mut node = home;
        let mut client = self.connector.client(&self.nodes[node]);
        let mut last_key = generator.current_key();
        let mut keys = BTreeSet::new();
        let mut backoff = Duration::ZERO;
        let mut ticker = c.rate.map(|rate| {
            // Each task gets an equal share of the overall rate; tasks start spread over one period.
            let period = Duration::from_secs_f64(c.concurrency as f64 / rate);
            let offset = period.mul_f64(self.task as f64 / c.concurrency as f64);
            let mut t = tokio::time::interval_at(Instant::now() + offset, period);
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        });
        loop {
            // Stop when told to, or when whoever could tell us is gone.
            if *self.stop.borrow() || self.stop.has_changed().is_err() {
                break;
            }
            if let Some(t) = ticker.as_mut() {
                tokio::select! {
                    _ = t.tick() => {}
                    _ = self.stop.changed() => continue,
                }
            }
            if self.members.has_changed().unwrap_or(false) {
                let now = self.members.borrow_and_update().clone();
                if !now.is_empty() {
                    let mine = self.nodes[node].clone();
                    self.nodes = now;
                    home = self.task % self.nodes.len();
                    node = self.nodes.iter().position(|n| *n == mine).unwrap_or(home);
                    if self.nodes[node] != mine {
                        client = self.connector.client(&self.nodes[node]);
                    }
                }
            }
            self.rounds.keep_up(&mut generator);
            let key = generator.current_key();
            if key != last_key && node != home {
                node = home;
                client = self.connector.client(&self.nodes[node]);
            }
            last_key = key;
            keys.insert(key);
            let op = generator.next_op();
            let completion = run_op(&self.recorder, process, &mut client, &op).await;
            self.counters.add(completion.kind);
            let error = match completion.kind {
                EventType::Info => {
                    process += c.concurrency as u64;
                    true
                }
                EventType::Fail => completion.error.as_deref() != Some("cas-mismatch"),
                _ => false,
            };
            let refused = completion.kind == EventType::Fail
                && !matches!(
                    completion.error.as_deref(),
                    Some("cas-mismatch" | "client-timeout")
                );
            let repin = refused || (error && node != home);
            if repin && self.nodes.len() > 1 {
                node = (node + 1) % self.nodes.len();
                tracing::debug!(
                    task = self.task,
                    process,
                    error = completion.error.as_deref().unwrap_or(""),
                    node = %self.nodes[node],
                    "client moves to the next node"
                );
                client = self.connector.client(&self.nodes[node]);
            }
            // After an error, wait a little before the next operation (doubling while errors go on), so that
            // a cluster without a leader is not hammered by a hot loop of instant refusals that would also
            // burn through keys; any success resets it.
            if error {
                backoff = (backoff * 2).clamp(ERROR_BACKOFF_MIN, ERROR_BACKOFF_MAX);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.stop.changed() => {}
                }
            } else {
                backoff = Duration::ZERO;
            }
        }
        (keys, process)
    }
}

/// Invokes, sends and completes one operation in the history.
async fn run_op(recorder: &Recorder, process: u64, client: &mut NodeClient, op: &Op) -> Completion {
    let f = op.call.f();
    recorder.invoke(process, f, Some(&op.key), op.call.invoke_value());
    let completion = client.call(op).await;
    recorder.complete(
        process,
        completion.kind,
        f,
        Some(&op.key),
        completion.value.clone(),
        completion.error.clone(),
    );
    completion
}

/// What the final reads achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalReadSummary {
    /// Keys read successfully.
    pub read: usize,
    /// Keys that could not be read before the deadline.
    pub unread: Vec<String>,
}

/// How the final reads run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FinalReadConfig {
    pub workload: Workload,
    /// The first process number to use (e.g. [`DriveSummary::next_process`]).
    pub first_process: u64,
    /// Keys read at the same time (each on its own process).
    pub parallelism: usize,
    /// Give up on the keys not read after this long.
    pub within: Duration,
}

/// After the faults are healed: reads every key in `keys` until a read succeeds or `config.within` has
/// passed, recording every attempt like any operation. Reads run on up to `parallelism` processes numbered
/// from `first_process` (a failed read does not retire its process: it changed nothing); the attempts on a
/// key rotate over the nodes, 100 ms apart.
pub async fn final_reads(
    config: &FinalReadConfig,
    protocol: &Protocol,
    nodes: &[String],
    recorder: &Recorder,
    keys: &[String],
) -> Result<FinalReadSummary, DriveError> {
    let FinalReadConfig {
        workload,
        first_process,
        parallelism,
        within,
    } = *config;
    if nodes.is_empty() {
        return Err(DriveError::NoNodes);
    }
    let connector = protocol.connector()?;
    let deadline = Instant::now() + within;
    let queue = Arc::new(Mutex::new(keys.iter().cloned().collect::<VecDeque<_>>()));
    let nodes: Arc<[String]> = nodes.into();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..parallelism.clamp(1, keys.len().max(1)) {
        let (queue, nodes, connector, recorder) =
            (queue.clone(), nodes.clone(), connector.clone(), recorder.clone());
        let process = first_process + t as u64;
        tasks.spawn(async move {
            let mut read = 0;
            let mut unread = Vec::new();
            let mut node = t % nodes.len();
            loop {
                let Some(key) = queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pop_front()
                else {
                    break;
                };
                let op = Op {
                    key,
                    call: workload.final_read(),
                };
                let at = Attempts {
                    process,
                    nodes: &nodes,
                    connector: &connector,
                    recorder: &recorder,
                    deadline,
                };
                let done = at.read_until_ok(&op, &mut node).await;
                if done {
                    read += 1;
                } else {
                    unread.push(op.key);
                }
            }
            (read, unread)
        });
    }
    let mut summary = FinalReadSummary {
        read: 0,
        unread: Vec::new(),
    };
    while let Some(joined) = tasks.join_next().await {
        let (read, unread) = joined.map_err(|e| DriveError::Task(e.to_string()))?;
        summary.read += read;
        summary.unread.extend(unread);
    }
    summary.unread.sort();
    Ok(summary)
}

/// Where and until when a final-read task tries its keys.
struct Attempts<'a> {
    process: u64,
    nodes: &'a [String],
    connector: &'a Connector,
    recorder: &'a Recorder,
    deadline: Instant,
}

impl Attempts<'_> {
    /// Reads `op`'s key until a read succeeds or the deadline passes, from node `*node` on and rotating
    /// over the nodes 100 ms apart; every attempt is recorded. Returns whether a read succeeded.
    async fn read_until_ok(&self, op: &Op, node: &mut usize) -> bool {
        let (process, recorder, deadline) = (self.process, self.recorder, self.deadline);
        while Instant::now() < deadline {
            let mut client = self.connector.client(&self.nodes[*node]);
            let completion = match tokio::time::timeout_at(deadline, async {
                let f = op.call.f();
                recorder.invoke(process, f, Some(&op.key), Call::Read.invoke_value());
                let c = client.call(op).await;
                recorder.complete(
                    process,
                    c.kind,
                    f,
                    Some(&op.key),
                    c.value.clone(),
                    c.error.clone(),
                );
                c
            })
            .await
            {
                Ok(c) => c,
                Err(_) => {
                    // Cut short by the deadline: a read changed nothing.
                    let c = Completion::fail(&op.call, "final-read-deadline");
                    recorder.complete(
                        process,
                        c.kind,
                        "read",
                        Some(&op.key),
                        c.value.clone(),
                        c.error.clone(),
                    );
                    c
                }
            };
            if completion.kind == EventType::Ok {
                return true;
            }
            *node = (*node + 1) % self.nodes.len();
            tokio::time::sleep_until((Instant::now() + Duration::from_millis(100)).min(deadline)).await;
        }
        false
    }
}
