//! The Raft core: a pure, deterministic state machine.
//!
//! [`Node`] is driven by [`Node::tick`], [`Node::step`] (a message from a peer) and the client entry points
//! ([`Node::propose`], [`Node::change_membership`], [`Node::read_index`]); everything it wants done is
//! collected in a [`Ready`] ([`Node::ready`]): state and log records to persist (and fsync) first, then
//! messages to send, committed entries to apply, reads that may be answered. There is no I/O, no clock and no
//! global randomness inside: the election timer is counted in ticks and randomised from a seeded ChaCha8 stream,
//! so a test can replay any schedule exactly.
//!
//! It follows the extended Raft paper: pre-vote, randomised election timeouts, the prevLogIndex/prevLogTerm
//! check with fast conflict back-off, commitment of current-term entries only, joint consensus, ReadIndex
//! with a quorum round, pipelined and batched AppendEntries, snapshots with InstallSnapshot. Each of the
//! classic mistakes listed in [`Bugs`] can be switched on; every deviation is marked `BUG(name)`.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

/// A node's name, e.g. `n1`.
pub type NodeId = String;

/// The classic Raft mistakes that can be switched on, one flag each; all off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Every node uses the same election timeout and no pre-vote, so candidates can split votes forever.
    pub fixed_election_timeout: bool,
    /// Followers accept AppendEntries and grant votes for terms lower than their own.
    pub accept_stale_term: bool,
    /// Followers append entries without checking the term at prevLogIndex.
    pub skip_prev_log_check: bool,
    /// The leader acknowledges a write once it is in its own log, before a majority has it.
    pub early_ack: bool,
    /// The leader answers reads from its own state without a quorum round, and never steps down on its own.
    pub stale_leader_read: bool,
    /// Term and vote are not persisted; after a restart the term is taken from the log and the vote is lost.
    pub volatile_vote: bool,
    /// Membership changes go from the old to the new configuration in one step, without joint consensus.
    pub unsafe_membership: bool,
    /// A leader commits entries of earlier terms by counting replicas (the paper's Figure 8).
    pub commit_old_term: bool,
    /// Log appends are never fsynced: a node acknowledges (votes, AppendEntries replies, client answers) once
    /// an entry is written, leaving its durability to the OS's writeback (see `storage.rs`).
    pub skip_fsync: bool,
}

impl Bugs {
    /// The names accepted by `--bug`.
    pub const NAMES: [&'static str; 9] = [
        "fixed-election-timeout",
        "accept-stale-term",
        "skip-prev-log-check",
        "early-ack",
        "stale-leader-read",
        "volatile-vote",
        "unsafe-membership",
        "commit-old-term",
        "skip-fsync",
    ];

    /// Switches on the bug called `name`; false when there is no such bug.
    pub fn enable(&mut self, name: &str) -> bool {
        let flag = match name {
            "fixed-election-timeout" => &mut self.fixed_election_timeout,
            "accept-stale-term" => &mut self.accept_stale_term,
            "skip-prev-log-check" => &mut self.skip_prev_log_check,
            "early-ack" => &mut self.early_ack,
            "stale-leader-read" => &mut self.stale_leader_read,
            "volatile-vote" => &mut self.volatile_vote,
            "unsafe-membership" => &mut self.unsafe_membership,
            "commit-old-term" => &mut self.commit_old_term,
            "skip-fsync" => &mut self.skip_fsync,
            _ => return false,
        };
        *flag = true;
        true
    }

    /// The names of the bugs switched on.
    pub fn names(&self) -> Vec<&'static str> {
        let flags = [
            self.fixed_election_timeout,
            self.accept_stale_term,
            self.skip_prev_log_check,
            self.early_ack,
            self.stale_leader_read,
            self.volatile_vote,
            self.unsafe_membership,
            self.commit_old_term,
            self.skip_fsync,
        ];
        Bugs::NAMES
            .iter()
            .zip(flags)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Whether any bug is switched on.
    pub fn any(&self) -> bool {
        *self != Bugs::default()
    }
}

/// A cluster configuration: the voters, and while a joint-consensus change is in progress, the old voters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The voters of the (new) configuration.
    pub voters: BTreeSet<NodeId>,
    /// The voters of the old configuration while joint (C_old,new); decisions need a majority of both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing: Option<BTreeSet<NodeId>>,
    /// Where each member listens (`host:port`); opaque to the core.
    #[serde(default)]
    pub addrs: BTreeMap<NodeId, String>,
}

impl Membership {
    /// Whether this is a joint configuration.
    pub fn is_joint(&self) -> bool {
        self.outgoing.is_some()
    }

    /// Every voter of either configuration.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut all = self.voters.clone();
        if let Some(old) = &self.outgoing {
            all.extend(old.iter().cloned());
        }
        all
    }

    /// Whether `id` votes in either configuration.
    pub fn is_voter(&self, id: &str) -> bool {
        self.voters.contains(id) || self.outgoing.as_ref().is_some_and(|o| o.contains(id))
    }

    /// The largest value that a majority of every configuration has reached, given each voter's value.
    fn quorum_value(&self, value: impl Fn(&NodeId) -> u64) -> u64 {
        let majority = |set: &BTreeSet<NodeId>| -> u64 {
            if set.is_empty() {
                return u64::MAX;
            }
            let mut v: Vec<u64> = set.iter().map(&value).collect();
            v.sort_unstable_by(|a, b| b.cmp(a));
            v[set.len() / 2]
        };
        let mut q = majority(&self.voters);
        if let Some(old) = &self.outgoing {
            q = q.min(majority(old));
        }
        q
    }

    /// Whether the voters for which `yes` holds form a majority of every configuration.
    fn has_quorum(&self, yes: impl Fn(&NodeId) -> bool) -> bool {
        self.quorum_value(|id| u64::from(yes(id))) == 1
    }
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryData {
    /// Appended by every new leader so that it can commit (and serve reads) in its term.
    Noop,
    /// A client command, opaque to the core.
    Command(String),
    /// A membership configuration; it takes effect as soon as it is in the log.
    Config(Membership),
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    pub data: EntryData,
}

/// A snapshot of the applied state up to and including `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub index: u64,
    pub term: u64,
    pub membership: Membership,
    /// The application's state, opaque to the core.
    pub data: String,
}

/// Term and vote: what must be on disk before a node answers anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: u64,
    pub vote: Option<NodeId>,
}

/// What a node finds on disk when it starts.
#[derive(Clone, Debug, Default)]
pub struct Persisted {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// The log entries after the snapshot, in order.
    pub entries: Vec<Entry>,
}

/// A message between nodes. `term` is the sender's term (for pre-votes: the term it would campaign in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: u64,
    pub body: Body,
}

/// The kinds of Raft message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    PreVote {
        last_index: u64,
        last_term: u64,
    },
    PreVoteResp {
        granted: bool,
    },
    Vote {
        last_index: u64,
        last_term: u64,
    },
    VoteResp {
        granted: bool,
    },
    Append {
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    /// `index`: on success the last index known to match; on rejection the rejected prev_index.
    AppendResp {
        success: bool,
        index: u64,
        hint_index: u64,
        hint_term: Option<u64>,
    },
    Heartbeat {
        commit: u64,
        read_seq: u64,
    },
    HeartbeatResp {
        read_seq: u64,
    },
    InstallSnapshot {
        snapshot: Snapshot,
    },
    SnapshotResp {
        index: u64,
    },
}

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// A record to write to the log, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogOp {
    /// Remove every entry with an index at or above this one.
    Truncate(u64),
    Append(Entry),
}

/// A read that may be answered once the state machine has applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub ctx: u64,
    pub index: u64,
}

/// Everything the node wants done since the last call to [`Node::ready`], in this order: persist
/// `hard_state`, `snapshot` (then rewrite the log to [`Node::entries`]) or else `log_ops`, and fsync; then send
/// `messages`; then apply the snapshot and `committed`; then answer `reads` once applied.
#[derive(Debug, Default)]
pub struct Ready {
    pub hard_state: Option<HardState>,
    pub snapshot: Option<Snapshot>,
    pub log_ops: Vec<LogOp>,
    pub messages: Vec<Message>,
    pub committed: Vec<Entry>,
    pub reads: Vec<ReadState>,
    /// Entries (index, term) whose proposer may now be told "done" before commit. Only with `early-ack`.
    pub early_acks: Vec<(u64, u64)>,
}

/// Why a proposal was refused (nothing was appended).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader")]
    NotLeader(Option<NodeId>),
    #[error("a membership change is already in progress")]
    ChangeInProgress,
    #[error("the new configuration would have no voters")]
    NoVoters,
}

/// Tunables of the core, in ticks.
#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    /// The configuration before any snapshot or configuration entry (empty for a node that joins).
    pub base: Membership,
    pub heartbeat_ticks: u32,
    /// The shortest election timeout; the actual one is drawn from [election, 2 * election).
    pub election_ticks: u32,
    /// Most entries in one AppendEntries.
    pub max_batch: usize,
    /// Most AppendEntries in flight to one follower.
    pub max_inflight: usize,
    pub seed: u64,
    pub bugs: Bugs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PState {
    Probe,
    Replicate,
    Snapshot,
}

#[derive(Clone, Debug)]
struct Progress {
    matched: u64,
    next: u64,
    state: PState,
    paused: bool,
    inflight: VecDeque<u64>,
    recent_active: bool,
    read_ack: u64,
    heartbeat_match: u64,
    snapshot_ticks: u32,
}

impl Progress {
    fn new(next: u64) -> Progress {
        Progress {
            matched: 0,
            next,
            state: PState::Probe,
            paused: false,
            inflight: VecDeque::new(),
            recent_active: true,
            read_ack: 0,
            heartbeat_match: 0,
            snapshot_ticks: 0,
        }
    }

    fn probe(&mut self) {
        self.state = PState::Probe;
        self.next = self.matched + 1;
        self.paused = false;
        self.inflight.clear();
    }
}

/// One Raft node.
#[derive(Debug)]
pub struct Node {
    cfg: Config,
    term: u64,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    snapshot: Snapshot,
    entries: Vec<Entry>,
    commit: u64,
    applied: u64,
    membership: Membership,
    config_index: u64,
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    timeout: u32,
    rng: ChaCha8Rng,
    votes: BTreeMap<NodeId, bool>,
    progress: BTreeMap<NodeId, Progress>,
    read_seq: u64,
    pending_reads: Vec<(u64, ReadState)>,
    waiting_reads: Vec<u64>,
    read_broadcast: bool,
    hs_dirty: bool,
    out: Ready,
    /// The commit index at the last heartbeat, and for how many heartbeats it has not moved while entries
    /// waited: only for the "has not committed" diagnostic.
    watched_commit: u64,
    stuck_beats: u32,
    /// skip-prev-log-check only: how often entries were accepted without a matching previous entry.
    prev_skips: u64,
}

impl Node {
    /// Starts a node from what it found on disk.
    pub fn new(cfg: Config, persisted: Persisted) -> Node {
        let snapshot = persisted.snapshot.unwrap_or_else(|| Snapshot {
            membership: cfg.base.clone(),
            ..Snapshot::default()
        });
        let entries: Vec<Entry> = persisted
            .entries
            .into_iter()
            .filter(|e| e.index > snapshot.index)
            .collect();
        let last_term = entries.last().map_or(snapshot.term, |e| e.term);
        let hs = persisted.hard_state;
        // With volatile-vote nothing was persisted: the term is whatever the log implies.
        let term = hs.term.max(last_term);
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut node = Node {
            term,
            vote: hs.vote,
            role: Role::Follower,
            leader: None,
            commit: snapshot.index,
            applied: snapshot.index,
            membership: snapshot.membership.clone(),
            config_index: snapshot.index,
            snapshot,
            entries,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            timeout: 0,
            rng,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            read_seq: 0,
            pending_reads: Vec::new(),
            waiting_reads: Vec::new(),
            read_broadcast: false,
            hs_dirty: false,
            out: Ready::default(),
            watched_commit: 0,
            stuck_beats: 0,
            prev_skips: 0,
            cfg,
        };
        node.reload_membership();
        node.reset_timeout();
        if node.cfg.bugs.fixed_election_timeout {
            // Processes start at different moments; only this first wait is staggered, so a first leader
            // can be elected. Every later timer is identical on every node.
            let e = u64::from(node.cfg.election_ticks.max(1));
            node.timeout += (node.next_random() % e) as u32;
        }
        node
    }

    // ----- accessors -----

    pub fn id(&self) -> &NodeId {
        &self.cfg.id
    }
    pub fn term(&self) -> u64 {
        self.term
    }
    pub fn vote(&self) -> Option<&NodeId> {
        self.vote.as_ref()
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }
    pub fn commit_index(&self) -> u64 {
        self.commit
    }
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
    /// The log entries after the snapshot.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    pub fn last_index(&self) -> u64 {
        self.snapshot.index + self.entries.len() as u64
    }
    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(self.snapshot.term, |e| e.term)
    }
    /// The term of the entry at `index`, if the log (or the snapshot's last entry) still knows it.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        if index < self.snapshot.index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.snapshot.index - 1) as usize].term)
    }
    fn entry(&self, index: u64) -> &Entry {
        &self.entries[(index - self.snapshot.index - 1) as usize]
    }
    /// Whether this node is a voter in its current configuration.
    pub fn is_voter(&self) -> bool {
        self.membership.is_voter(&self.cfg.id)
    }

    // ----- inputs -----

    /// One unit of time has passed.
    pub fn tick(&mut self) {
        if self.role == Role::Leader {
            self.tick_leader();
            return;
        }
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        if self.election_elapsed >= self.timeout && self.is_voter() {
            self.election_elapsed = 0;
            if self.pre_vote() {
                self.become_pre_candidate();
            } else {
                self.become_candidate();
            }
        }
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_ticks {
            self.election_elapsed = 0;
            if self.check_quorum() {
                let me = self.cfg.id.clone();
                let active =
                    |id: &NodeId| *id == me || self.progress.get(id).is_some_and(|p| p.recent_active);
                if !self.membership.has_quorum(active) {
                    tracing::info!(
                        term = self.term,
                        "leader lost contact with a quorum; stepping down"
                    );
                    self.become_follower(self.term, None);
                    return;
                }
                for p in self.progress.values_mut() {
                    p.recent_active = false;
                }
            }
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            let last = self.last_index();
            let snap_timeout = self.cfg.election_ticks / self.cfg.heartbeat_ticks.max(1) + 1;
            for p in self.progress.values_mut() {
                match p.state {
                    PState::Probe => p.paused = false,
                    // Appends of a pipeline may have been lost: if nothing moved since the last
                    // heartbeat, probe again from the last known match.
                    PState::Replicate => {
                        if p.matched < last && p.matched == p.heartbeat_match {
                            p.probe();
                        }
                    }
                    PState::Snapshot => {
                        p.snapshot_ticks += 1;
                        if p.snapshot_ticks > snap_timeout {
                            p.probe();
                        }
                    }
                }
                p.heartbeat_match = p.matched;
            }
            self.watch_commit();
            self.broadcast_heartbeat();
            self.broadcast_append();
        }
    }

    /// Logs, about once per election timeout, that this leader has entries it has not committed for that
    /// long, with what it knows of each follower: a stalled cluster explains itself in its node logs.
    fn watch_commit(&mut self) {
        if self.commit != self.watched_commit || self.last_index() <= self.commit {
            self.watched_commit = self.commit;
            self.stuck_beats = 0;
            return;
        }
        self.stuck_beats += 1;
        let per_timeout = (self.cfg.election_ticks / self.cfg.heartbeat_ticks.max(1)).max(1);
        if self.stuck_beats.is_multiple_of(per_timeout) {
            let peers: Vec<String> = self
                .progress
                .iter()
                .map(|(id, p)| {
                    format!(
                        "{id}: matched={} next={} {:?}{} inflight={} active={}",
                        p.matched,
                        p.next,
                        p.state,
                        if p.paused { " paused" } else { "" },
                        p.inflight.len(),
                        p.recent_active
                    )
                })
                .collect();
            tracing::info!(
                term = self.term,
                commit = self.commit,
                last = self.last_index(),
                heartbeats = self.stuck_beats,
                peers = peers.join("; "),
                "leader has not committed"
            );
        }
    }

    /// The transport could not deliver to `peer`: stop pipelining to it.
    pub fn report_unreachable(&mut self, peer: &str) {
        if let Some(p) = self.progress.get_mut(peer) {
            if p.state == PState::Replicate {
                p.probe();
            }
        }
    }

    /// Proposes a client command; on success returns the (index, term) of its entry.
    pub fn propose(&mut self, command: String) -> Result<(u64, u64), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader(self.leader.clone()));
        }
        let (index, term) = self.append_local(EntryData::Command(command));
        if self.cfg.bugs.early_ack {
            // BUG(early-ack): the client hears "done" as soon as the entry is in the leader's own log.
            self.out.early_acks.push((index, term));
        }
        self.broadcast_append();
        self.maybe_commit();
        Ok((index, term))
    }

    /// Proposes adding and removing voters (several at once) by joint consensus; returns the (index, term)
    /// of the first configuration entry. The change is complete once a non-joint configuration with the
    /// target voters is committed.
    pub fn change_membership(
        &mut self,
        add: BTreeMap<NodeId, String>,
        remove: BTreeSet<NodeId>,
    ) -> Result<(u64, u64), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader(self.leader.clone()));
        }
        if self.membership.is_joint() || self.config_index > self.commit {
            return Err(ProposeError::ChangeInProgress);
        }
        let old = self.membership.voters.clone();
        let mut voters = old.clone();
        voters.extend(add.keys().cloned());
        for r in &remove {
            voters.remove(r);
        }
        if voters.is_empty() {
            return Err(ProposeError::NoVoters);
        }
        let mut addrs = self.membership.addrs.clone();
        addrs.extend(add);
        let next = if self.cfg.bugs.unsafe_membership {
            // BUG(unsafe-membership): switch from the old to the new voters in one step; two disjoint
            // majorities can then exist at the same time.
            addrs.retain(|id, _| voters.contains(id));
            Membership {
                voters,
                outgoing: None,
                addrs,
            }
        } else {
            Membership {
                voters,
                outgoing: Some(old),
                addrs,
            }
        };
        let at = self.append_local(EntryData::Config(next));
        self.broadcast_append();
        self.maybe_commit();
        Ok(at)
    }

    /// Asks for a linearizable read; `ctx` comes back in a [`ReadState`] once it is safe to read at its
    /// index.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader(self.leader.clone()));
        }
        if self.cfg.bugs.stale_leader_read {
            // BUG(stale-leader-read): answer from local state without checking that we still lead.
            self.out.reads.push(ReadState {
                ctx,
                index: self.commit,
            });
            return Ok(());
        }
        if self.term_at(self.commit) != Some(self.term) {
            // The commit index is only known to be current once an entry of this term is committed.
            self.waiting_reads.push(ctx);
            return Ok(());
        }
        self.start_read(ctx);
        Ok(())
    }

    fn start_read(&mut self, ctx: u64) {
        self.read_seq += 1;
        self.pending_reads.push((
            self.read_seq,
            ReadState {
                ctx,
                index: self.commit,
            },
        ));
        self.read_broadcast = true;
        self.release_reads();
    }

    /// The application has taken a snapshot of its state at `index` (at most the applied index): drop the
    /// log up to there.
    pub fn compact(&mut self, index: u64, data: String) {
        if index <= self.snapshot.index || index > self.applied {
            return;
        }
        let term = self.term_at(index).unwrap_or(0);
        let mut membership = self.snapshot.membership.clone();
        for e in &self.entries {
            if e.index > index {
                break;
            }
            if let EntryData::Config(m) = &e.data {
                membership = m.clone();
            }
        }
        let drop = (index - self.snapshot.index) as usize;
        self.entries.drain(..drop);
        self.snapshot = Snapshot {
            index,
            term,
            membership,
            data,
        };
    }

    /// Takes everything the node wants done since the last call.
    pub fn ready(&mut self) -> Ready {
        if self.read_broadcast && self.role == Role::Leader {
            self.broadcast_heartbeat();
        }
        self.read_broadcast = false;
        let mut rd = std::mem::take(&mut self.out);
        if self.hs_dirty {
            self.hs_dirty = false;
            if !self.cfg.bugs.volatile_vote {
                rd.hard_state = Some(HardState {
                    term: self.term,
                    vote: self.vote.clone(),
                });
            }
            // BUG(volatile-vote): term and vote changes are never written to disk.
        }
        if rd.snapshot.is_some() {
            rd.log_ops.clear();
        }
        if self.commit > self.applied {
            let from = self.applied.max(self.snapshot.index) + 1;
            for i in from..=self.commit {
                rd.committed.push(self.entry(i).clone());
            }
            self.applied = self.commit;
        }
        rd
    }

    /// Handles one message from a peer.
    pub fn step(&mut self, m: Message) {
        if m.to != self.cfg.id || !self.admit_term(&m) {
            return;
        }
        match m.body {
            Body::PreVote {
                last_index,
                last_term,
            } => self.handle_pre_vote(m.from, m.term, last_index, last_term),
            Body::Vote {
                last_index,
                last_term,
            } => self.handle_vote(m.from, m.term, last_index, last_term),
            Body::PreVoteResp { granted } => {
                if self.role == Role::PreCandidate && m.term == self.term + 1 {
                    self.votes.insert(m.from, granted);
                    if self.won() {
                        self.become_candidate();
                    }
                }
            }
            Body::VoteResp { granted } => {
                if self.role == Role::Candidate && m.term == self.term {
                    self.votes.insert(m.from, granted);
                    if self.won() {
                        self.become_leader();
                    }
                }
            }
            Body::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                self.follow(&m.from, m.term);
                self.handle_append(&m.from, m.term, prev_index, prev_term, entries, commit);
            }
            Body::Heartbeat { commit, read_seq } => {
                self.follow(&m.from, m.term);
                // The leader only sends a commit index this follower is known to have.
                if commit > self.commit && commit <= self.last_index() {
                    self.commit = commit;
                }
                self.send_term(&m.from, m.term, Body::HeartbeatResp { read_seq });
            }
            Body::InstallSnapshot { snapshot } => {
                self.follow(&m.from, m.term);
                self.handle_snapshot(&m.from, snapshot);
            }
            Body::AppendResp {
                success,
                index,
                hint_index,
                hint_term,
            } => {
                if self.role == Role::Leader {
                    self.handle_append_resp(&m.from, success, index, hint_index, hint_term);
                }
            }
            Body::HeartbeatResp { read_seq } => self.handle_heartbeat_resp(&m.from, read_seq),
            Body::SnapshotResp { index } => self.handle_snapshot_resp(&m.from, index),
        }
    }

    /// Compares a message's term with ours before it is handled: a newer term makes this node a follower
    /// (unless it is a vote request while a leader's lease holds); an older one is answered so that its
    /// sender learns the newer term. Returns whether the message is to be handled.
    fn admit_term(&mut self, m: &Message) -> bool {
        if m.term > self.term {
            if matches!(m.body, Body::PreVote { .. } | Body::Vote { .. }) && self.in_lease() {
                // A leader is alive as far as we know: do not let a disruptive node depose it.
                return false;
            }
            match &m.body {
                Body::PreVote { .. } | Body::PreVoteResp { granted: true } => {}
                Body::Append { .. } | Body::Heartbeat { .. } | Body::InstallSnapshot { .. } => {
                    self.become_follower(m.term, Some(m.from.clone()));
                }
                _ => self.become_follower(m.term, None),
            }
        } else if m.term < self.term {
            let stale_ok = self.cfg.bugs.accept_stale_term
                && matches!(
                    m.body,
                    Body::Append { .. } | Body::Heartbeat { .. } | Body::Vote { .. } | Body::PreVote { .. }
                );
            if !stale_ok {
                match m.body {
                    Body::Append { .. } | Body::Heartbeat { .. } | Body::InstallSnapshot { .. } => {
                        // Tell the stale leader about the newer term.
                        self.send(
                            &m.from,
                            Body::AppendResp {
                                success: false,
                                index: 0,
                                hint_index: 0,
                                hint_term: None,
                            },
                        );
                    }
                    Body::PreVote { .. } => self.send(&m.from, Body::PreVoteResp { granted: false }),
                    Body::Vote { .. } => self.send(&m.from, Body::VoteResp { granted: false }),
                    _ => {}
                }
                return false;
            }
            // BUG(accept-stale-term): carry on as if the message were from the current term.
        }
        true
    }

    fn handle_pre_vote(&mut self, from: NodeId, term: u64, last_index: u64, last_term: u64) {
        // BUG(accept-stale-term) grants pre-votes for lower terms too.
        let newer = term > self.term || self.cfg.bugs.accept_stale_term;
        let granted = newer && self.log_ok(last_index, last_term);
        let term = if granted { term } else { self.term };
        self.out.messages.push(Message {
            from: self.cfg.id.clone(),
            to: from,
            term,
            body: Body::PreVoteResp { granted },
        });
    }

    fn handle_vote(&mut self, from: NodeId, term: u64, last_index: u64, last_term: u64) {
        let stale = term < self.term;
        let free = stale || self.vote.is_none() || self.vote.as_ref() == Some(&from);
        let granted = free && self.log_ok(last_index, last_term);
        if granted && !stale {
            self.vote = Some(from.clone());
            self.hs_dirty = true;
            self.election_elapsed = 0;
        }
        self.out.messages.push(Message {
            from: self.cfg.id.clone(),
            to: from,
            term: if stale { term } else { self.term },
            body: Body::VoteResp { granted },
        });
    }

    fn handle_heartbeat_resp(&mut self, from: &NodeId, read_seq: u64) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.last_index();
        if let Some(p) = self.progress.get_mut(from) {
            p.recent_active = true;
            p.read_ack = p.read_ack.max(read_seq);
            if p.matched < last {
                self.send_append(from);
            }
        }
        self.release_reads();
    }

    fn handle_snapshot_resp(&mut self, from: &NodeId, index: u64) {
        if self.role != Role::Leader {
            return;
        }
        if let Some(p) = self.progress.get_mut(from) {
            p.recent_active = true;
            p.matched = p.matched.max(index);
            p.probe();
        }
        self.maybe_commit();
        self.send_append(from);
    }

    // ----- roles -----

    fn pre_vote(&self) -> bool {
        !self.cfg.bugs.fixed_election_timeout
    }

    fn check_quorum(&self) -> bool {
        // BUG(stale-leader-read) also keeps a leader cut off from the majority in office.
        !self.cfg.bugs.stale_leader_read
    }

    fn in_lease(&self) -> bool {
        self.check_quorum() && self.leader.is_some() && self.election_elapsed < self.cfg.election_ticks
    }

    fn next_random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn reset_timeout(&mut self) {
        self.election_elapsed = 0;
        self.timeout = if self.cfg.bugs.fixed_election_timeout {
            // BUG(fixed-election-timeout): every node waits exactly as long.
            self.cfg.election_ticks
        } else {
            let e = u64::from(self.cfg.election_ticks.max(1));
            (e + self.next_random() % e) as u32
        };
    }

    fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        let was = (self.role, self.term);
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.hs_dirty = true;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.reset_timeout();
        self.progress.clear();
        self.pending_reads.clear();
        self.waiting_reads.clear();
        if was.0 != Role::Follower || was.1 != self.term {
            tracing::info!(term = self.term, leader = ?self.leader, "became follower");
        }
    }

    /// A valid leader for `term` talked to us.
    fn follow(&mut self, leader: &NodeId, term: u64) {
        if term < self.term {
            // Only reachable with accept-stale-term.
            self.election_elapsed = 0;
            return;
        }
        if self.role != Role::Follower {
            self.become_follower(term, Some(leader.clone()));
        }
        if self.leader.as_ref() != Some(leader) {
            tracing::info!(term, leader, "following leader");
        }
        self.leader = Some(leader.clone());
        self.election_elapsed = 0;
    }

    fn become_pre_candidate(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone(), true);
        self.reset_timeout();
        tracing::debug!(term = self.term + 1, "starting pre-vote");
        if self.won() {
            self.become_candidate();
            return;
        }
        let (li, lt) = (self.last_index(), self.last_term());
        for to in self.others() {
            self.send_term(
                &to,
                self.term + 1,
                Body::PreVote {
                    last_index: li,
                    last_term: lt,
                },
            );
        }
    }

    fn become_candidate(&mut self) {
        self.term += 1;
        self.vote = Some(self.cfg.id.clone());
        self.hs_dirty = true;
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone(), true);
        self.reset_timeout();
        tracing::info!(term = self.term, "became candidate");
        if self.won() {
            self.become_leader();
            return;
        }
        let (li, lt) = (self.last_index(), self.last_term());
        for to in self.others() {
            self.send(
                &to,
                Body::Vote {
                    last_index: li,
                    last_term: lt,
                },
            );
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.read_seq = 0;
        self.progress.clear();
        let next = self.last_index() + 1;
        for id in self.others() {
            self.progress.insert(id, Progress::new(next));
        }
        tracing::info!(term = self.term, "became leader");
        self.append_local(EntryData::Noop);
        self.broadcast_append();
        self.maybe_commit();
    }

    fn won(&self) -> bool {
        self.membership.has_quorum(|id| self.votes.get(id) == Some(&true))
    }

    fn others(&self) -> Vec<NodeId> {
        self.membership
            .members()
            .into_iter()
            .filter(|id| *id != self.cfg.id)
            .collect()
    }

    fn log_ok(&self, last_index: u64, last_term: u64) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    // ----- log -----

    fn append_local(&mut self, data: EntryData) -> (u64, u64) {
        let e = Entry {
            index: self.last_index() + 1,
            term: self.term,
            data,
        };
        let at = (e.index, e.term);
        self.push_entry(e);
        at
    }

    fn push_entry(&mut self, e: Entry) {
        if let EntryData::Config(m) = &e.data {
            self.set_membership(m.clone(), e.index);
        }
        self.out.log_ops.push(LogOp::Append(e.clone()));
        self.entries.push(e);
    }

    fn truncate(&mut self, from: u64) {
        let keep = (from - self.snapshot.index - 1) as usize;
        self.entries.truncate(keep);
        self.out.log_ops.push(LogOp::Truncate(from));
        if self.config_index >= from {
            self.reload_membership();
        }
    }

    fn reload_membership(&mut self) {
        let mut m = (self.snapshot.membership.clone(), self.snapshot.index);
        for e in self.entries.iter().rev() {
            if let EntryData::Config(c) = &e.data {
                m = (c.clone(), e.index);
                break;
            }
        }
        self.set_membership(m.0, m.1);
    }

    fn set_membership(&mut self, m: Membership, index: u64) {
        if m != self.membership {
            tracing::info!(voters = ?m.voters, outgoing = ?m.outgoing, index, "configuration changed");
        }
        self.membership = m;
        self.config_index = index;
        if self.role == Role::Leader {
            let next = self.last_index() + 1;
            let members = self.membership.members();
            self.progress.retain(|id, _| members.contains(id));
            for id in members {
                if id != self.cfg.id {
                    self.progress.entry(id).or_insert_with(|| Progress::new(next));
                }
            }
        }
    }

    fn handle_append(
        &mut self,
        from: &NodeId,
        term: u64,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
    ) {
        let reply_term = term;
        let mut prev_index = prev_index;
        let mut prev_term = prev_term;
        let mut entries = entries;
        // Entries at or below our commit index are committed and therefore already match.
        if prev_index < self.commit {
            let skip = entries.iter().take_while(|e| e.index <= self.commit).count();
            entries.drain(..skip);
            prev_index = self.commit;
            prev_term = self.term_at(prev_index).unwrap_or(0);
        }
        let skip_check = self.cfg.bugs.skip_prev_log_check;
        let have = self.term_at(prev_index);
        let ok = match have {
            Some(t) => t == prev_term || skip_check,
            None => skip_check && prev_index > self.last_index(),
        };
        if skip_check && have != Some(prev_term) {
            // BUG(skip-prev-log-check) takes effect here. Logged (the 1st, 2nd, 4th, 8th... time: once a log
            // has diverged every append does it) so that a run's node logs show whether and how often the
            // mistake was in effect.
            self.prev_skips += 1;
            if self.prev_skips.is_power_of_two() {
                tracing::info!(
                    times = self.prev_skips,
                    prev_index,
                    prev_term,
                    last = self.last_index(),
                    have = ?have,
                    "accepting entries whose previous entry does not match"
                );
            }
        }
        if !ok {
            let (hint_index, hint_term) = if prev_index > self.last_index() {
                (self.last_index() + 1, None)
            } else {
                let t = have.unwrap_or(0);
                let mut first = prev_index;
                while first > self.snapshot.index + 1 && self.term_at(first - 1) == Some(t) {
                    first -= 1;
                }
                (first, Some(t))
            };
            self.send_term(
                from,
                reply_term,
                Body::AppendResp {
                    success: false,
                    index: prev_index,
                    hint_index,
                    hint_term,
                },
            );
            return;
        }
        // What the leader will believe we hold.
        let acked = prev_index + entries.len() as u64;
        if skip_check && prev_index > self.last_index() {
            // BUG(skip-prev-log-check): entries meant for beyond the end of our log go at its end, and the
            // leader is told they are where it sent them.
            let shift = prev_index - self.last_index();
            for e in entries.iter_mut() {
                e.index -= shift;
            }
            prev_index = self.last_index();
        }
        let last_new = prev_index + entries.len() as u64;
        let mut entries = entries.into_iter().peekable();
        while let Some(e) = entries.peek() {
            match self.term_at(e.index) {
                Some(t) if t == e.term => {
                    entries.next();
                }
                Some(_) => {
                    self.truncate(e.index);
                    break;
                }
                None => break,
            }
        }
        for e in entries {
            if e.index != self.last_index() + 1 {
                break;
            }
            self.push_entry(e);
        }
        let new_commit = commit.min(last_new).min(self.last_index());
        if new_commit > self.commit {
            self.commit = new_commit;
        }
        self.send_term(
            from,
            reply_term,
            Body::AppendResp {
                success: true,
                index: acked,
                hint_index: 0,
                hint_term: None,
            },
        );
    }

    fn handle_snapshot(&mut self, from: &NodeId, snap: Snapshot) {
        if snap.index <= self.commit {
            self.send(from, Body::SnapshotResp { index: self.commit });
            return;
        }
        let index = snap.index;
        tracing::info!(index, term = snap.term, "installing snapshot from leader");
        if self.term_at(index) == Some(snap.term) {
            let drop = (index - self.snapshot.index) as usize;
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.snapshot = snap.clone();
        self.commit = index;
        self.applied = index;
        self.out.snapshot = Some(snap);
        self.reload_membership();
        self.send(from, Body::SnapshotResp { index });
    }

    // ----- leader -----

    fn handle_append_resp(
        &mut self,
        from: &NodeId,
        success: bool,
        index: u64,
        hint_index: u64,
        hint_term: Option<u64>,
    ) {
        let last = self.last_index();
        let Some(p) = self.progress.get_mut(from) else {
            return;
        };
        p.recent_active = true;
        if success {
            if index > p.matched {
                p.matched = index;
            }
            p.next = p.next.max(p.matched + 1);
            while p.inflight.front().is_some_and(|&i| i <= p.matched) {
                p.inflight.pop_front();
            }
            match p.state {
                PState::Probe => {
                    p.state = PState::Replicate;
                    p.paused = false;
                }
                PState::Snapshot if p.matched >= self.snapshot.index => p.probe(),
                _ => {}
            }
            self.maybe_commit();
            if self
                .progress
                .get(from)
                .is_some_and(|p| p.next <= last || p.matched < last)
            {
                self.send_append(from);
            }
        } else {
            let stale = match p.state {
                PState::Replicate => index <= p.matched,
                PState::Probe => index + 1 != p.next,
                PState::Snapshot => true,
            };
            if stale {
                return;
            }
            let mut next = hint_index;
            if let Some(t) = hint_term {
                // Skip the follower's whole conflicting term; if we have that term, resume after our last
                // entry of it.
                let mut i = index.min(last);
                while i > self.snapshot.index && self.term_at(i).is_some_and(|x| x > t) {
                    i -= 1;
                }
                if i > self.snapshot.index && self.term_at(i) == Some(t) {
                    next = i + 1;
                }
            }
            let p = self.progress.get_mut(from).expect("progress exists");
            p.probe();
            p.next = next.max(p.matched + 1).min(last + 1).max(1);
            self.send_append(from);
        }
    }

    fn send_append(&mut self, to: &NodeId) {
        let last = self.last_index();
        let Some(p) = self.progress.get(to) else { return };
        match p.state {
            PState::Snapshot => return,
            PState::Probe if p.paused => return,
            PState::Replicate if p.inflight.len() >= self.cfg.max_inflight || p.next > last => return,
            _ => {}
        }
        let next = p.next;
        let prev = next - 1;
        if prev < self.snapshot.index {
            let snapshot = self.snapshot.clone();
            let p = self.progress.get_mut(to).expect("progress exists");
            p.state = PState::Snapshot;
            p.snapshot_ticks = 0;
            tracing::info!(to, index = snapshot.index, "sending snapshot");
            self.send(to, Body::InstallSnapshot { snapshot });
            return;
        }
        let prev_term = self.term_at(prev).unwrap_or(0);
        let end = last.min(next + self.cfg.max_batch as u64 - 1);
        let entries: Vec<Entry> = (next..=end).map(|i| self.entry(i).clone()).collect();
        let sent = entries.len() as u64;
        let commit = self.commit;
        let p = self.progress.get_mut(to).expect("progress exists");
        match p.state {
            PState::Replicate => {
                if sent > 0 {
                    p.next = end + 1;
                    p.inflight.push_back(end);
                }
            }
            _ => p.paused = true,
        }
        self.send(
            to,
            Body::Append {
                prev_index: prev,
                prev_term,
                entries,
                commit,
            },
        );
    }

    fn broadcast_append(&mut self) {
        let ids: Vec<NodeId> = self.progress.keys().cloned().collect();
        for id in ids {
            self.send_append(&id);
        }
    }

    fn broadcast_heartbeat(&mut self) {
        let seq = self.read_seq;
        let msgs: Vec<(NodeId, u64)> = self
            .progress
            .iter()
            .map(|(id, p)| (id.clone(), self.commit.min(p.matched)))
            .collect();
        for (id, commit) in msgs {
            self.send(
                &id,
                Body::Heartbeat {
                    commit,
                    read_seq: seq,
                },
            );
        }
    }

    fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let me = self.cfg.id.clone();
        let last = self.last_index();
        let q = self.membership.quorum_value(|id| {
            if *id == me {
                last
            } else {
                self.progress.get(id).map_or(0, |p| p.matched)
            }
        });
        if q == u64::MAX || q <= self.commit {
            return;
        }
        // Only an entry of the current term is committed by counting (Raft paper, section 5.4.2).
        let old_term = self.term_at(q) != Some(self.term);
        if old_term && !self.cfg.bugs.commit_old_term {
            return;
        }
        let before = self.commit;
        if old_term {
            // BUG(commit-old-term): entries of earlier terms are committed by counting too. Logged so that a
            // run's node logs show whether (and for how long) the mistake was ever in effect.
            tracing::info!(
                index = q,
                entry_term = self.term_at(q).unwrap_or(0),
                term = self.term,
                last = self.last_index(),
                "commit by counting an old-term entry"
            );
        } else if self.cfg.bugs.commit_old_term && self.term_at(before) != Some(self.term) {
            tracing::info!(
                index = q,
                term = self.term,
                "first commit of an entry of this term"
            );
        }
        self.commit = q;
        // Reads that waited for the first commit of this term can start now.
        if self.term_at(self.commit) == Some(self.term) {
            for ctx in std::mem::take(&mut self.waiting_reads) {
                self.start_read(ctx);
            }
        }
        // Joint consensus: once C_old,new is committed, move on to C_new.
        if self.membership.is_joint() && self.config_index <= self.commit {
            let mut next = self.membership.clone();
            next.outgoing = None;
            let voters = next.voters.clone();
            next.addrs.retain(|id, _| voters.contains(id));
            self.append_local(EntryData::Config(next));
            self.broadcast_append();
            self.maybe_commit();
        } else if !self.membership.is_joint() && self.config_index <= self.commit && !self.is_voter() {
            tracing::info!(term = self.term, "removed from the configuration; stepping down");
            self.become_follower(self.term, None);
        } else {
            // Let followers learn the new commit index promptly.
            self.broadcast_commit();
        }
    }

    fn broadcast_commit(&mut self) {
        let msgs: Vec<(NodeId, u64)> = self
            .progress
            .iter()
            .filter(|(_, p)| p.state == PState::Replicate && p.matched >= self.commit)
            .map(|(id, _)| (id.clone(), self.commit))
            .collect();
        let seq = self.read_seq;
        for (id, commit) in msgs {
            self.send(
                &id,
                Body::Heartbeat {
                    commit,
                    read_seq: seq,
                },
            );
        }
    }

    fn release_reads(&mut self) {
        if self.pending_reads.is_empty() {
            return;
        }
        let me = self.cfg.id.clone();
        let seq = self.read_seq;
        let q = self.membership.quorum_value(|id| {
            if *id == me {
                seq
            } else {
                self.progress.get(id).map_or(0, |p| p.read_ack)
            }
        });
        let (done, rest): (Vec<_>, Vec<_>) = self.pending_reads.drain(..).partition(|(s, _)| *s <= q);
        self.pending_reads = rest;
        self.out.reads.extend(done.into_iter().map(|(_, r)| r));
    }

    // ----- output -----

    fn send(&mut self, to: &NodeId, body: Body) {
        self.send_term(to, self.term, body);
    }

    fn send_term(&mut self, to: &NodeId, term: u64, body: Body) {
        self.out.messages.push(Message {
            from: self.cfg.id.clone(),
            to: to.clone(),
            term,
            body,
        });
    }
}
