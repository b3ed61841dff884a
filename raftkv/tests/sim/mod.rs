//! A deterministic simulator for the Raft core: seeded message loss, delay, reordering, partitions, crashes
//! with restart from what was persisted, client writes, reads and membership changes, with the Raft safety
//! properties checked after every step.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::hash::{Hash, Hasher};

use raftkv::core::{
    Bugs, Config, Entry, EntryData, HardState, LogOp, Membership, Message, Node, NodeId, Persisted, Ready,
    Role, Snapshot,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How hostile a schedule is.
#[derive(Clone, Debug)]
pub struct Faults {
    pub nodes: usize,
    pub steps: u64,
    pub loss: f64,
    pub max_delay: u64,
    pub crash: f64,
    pub restart: f64,
    pub partition: f64,
    pub heal: f64,
    pub propose: f64,
    pub read: f64,
    pub membership: f64,
    pub skip_tick: f64,
    pub max_batch: usize,
    pub compact_every: u64,
}

impl Faults {
    /// A random mix of faults drawn from `seed`.
    pub fn random(seed: u64) -> Faults {
        let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0xF00D);
        Faults {
            nodes: if r.gen_bool(0.5) { 3 } else { 5 },
            steps: 1500,
            loss: [0.0, 0.02, 0.1, 0.3][r.gen_range(0..4)],
            max_delay: [1, 2, 5, 15][r.gen_range(0..4)],
            crash: [0.0, 0.002, 0.01][r.gen_range(0..3)],
            restart: 0.05,
            partition: [0.0, 0.003, 0.01][r.gen_range(0..3)],
            heal: 0.01,
            propose: [0.1, 0.4][r.gen_range(0..2)],
            read: 0.1,
            membership: [0.0, 0.003][r.gen_range(0..2)],
            skip_tick: [0.0, 0.1][r.gen_range(0..2)],
            max_batch: [1, 4, 64][r.gen_range(0..3)],
            compact_every: [10, 40][r.gen_range(0..2)],
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Disk {
    hs: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: std::cmp::Reverse<u64>,
    tie: std::cmp::Reverse<u64>,
    seq: u64,
}

/// The state machine each node applies: the index and a digest of everything applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sm {
    index: u64,
    digest: u64,
}

fn digest<T: Hash>(t: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

fn data_digest(d: &EntryData) -> u64 {
    digest(&format!("{d:?}"))
}

pub struct Sim {
    pub seed: u64,
    pub faults: Faults,
    pub bugs: Bugs,
    rng: ChaCha8Rng,
    ids: Vec<NodeId>,
    nodes: Vec<Option<Node>>,
    disks: Vec<Disk>,
    sms: Vec<Sm>,
    restarts: Vec<u64>,
    heap: BinaryHeap<InFlight>,
    msgs: HashMap<u64, Message>,
    seq: u64,
    pub now: u64,
    group: Vec<u8>,
    next_cmd: u64,
    next_ctx: u64,
    // --- what the checker knows ---
    leaders: HashMap<u64, NodeId>,
    was_leader: Vec<(Role, u64)>,
    /// index -> (term, data digest, state digest after it): entries some node applied.
    committed: BTreeMap<u64, (u64, u64, u64)>,
    /// (index, term) -> (data digest, term of the previous entry, if known).
    seen: HashMap<(u64, u64), (u64, Option<u64>)>,
    /// early-ack: writes a client was told are done, index -> term.
    acked: BTreeMap<u64, u64>,
    /// Reads in flight: ctx -> highest commit index known anywhere when the read started.
    reads: HashMap<u64, u64>,
    high_water: u64,
    pub violation: Option<String>,
    pub leaders_elected: u64,
    pub commits: u64,
    pub snapshots_installed: u64,
    pub config_changes: u64,
    pub reads_served: u64,
    pub restarts_done: u64,
}

impl Sim {
    pub fn new(seed: u64, faults: Faults, bugs: Bugs) -> Sim {
        let ids: Vec<NodeId> = (1..=faults.nodes).map(|i| format!("n{i}")).collect();
        let n = ids.len();
        let mut sim = Sim {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            ids,
            nodes: (0..n).map(|_| None).collect(),
            disks: vec![Disk::default(); n],
            sms: vec![Sm::default(); n],
            restarts: vec![0; n],
            heap: BinaryHeap::new(),
            msgs: HashMap::new(),
            seq: 0,
            now: 0,
            group: vec![0; n],
            next_cmd: 0,
            next_ctx: 0,
            leaders: HashMap::new(),
            was_leader: vec![(Role::Follower, 0); n],
            committed: BTreeMap::new(),
            seen: HashMap::new(),
            acked: BTreeMap::new(),
            reads: HashMap::new(),
            high_water: 0,
            violation: None,
            leaders_elected: 0,
            commits: 0,
            snapshots_installed: 0,
            config_changes: 0,
            reads_served: 0,
            restarts_done: 0,
            faults,
            bugs,
        };
        for i in 0..n {
            sim.start(i);
        }
        sim
    }

    fn base(&self) -> Membership {
        Membership {
            voters: self.ids.iter().cloned().collect(),
            outgoing: None,
            addrs: self
                .ids
                .iter()
                .map(|id| (id.clone(), format!("{id}:0")))
                .collect(),
        }
    }

    fn start(&mut self, i: usize) {
        let d = self.disks[i].clone();
        let cfg = Config {
            id: self.ids[i].clone(),
            base: self.base(),
            heartbeat_ticks: 3,
            election_ticks: 15,
            max_batch: self.faults.max_batch,
            max_inflight: 8,
            seed: self
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(i as u64 * 7919 + self.restarts[i]),
            bugs: self.bugs,
        };
        let node = Node::new(
            cfg,
            Persisted {
                hard_state: d.hs,
                snapshot: d.snapshot.clone(),
                entries: d.entries,
            },
        );
        self.sms[i] = match &d.snapshot {
            Some(s) => parse_sm(&s.data),
            None => Sm::default(),
        };
        self.was_leader[i] = (Role::Follower, node.term());
        self.nodes[i] = Some(node);
    }

    fn fail(&mut self, what: String) {
        if self.violation.is_none() {
            self.violation = Some(format!("seed {} step {}: {what}", self.seed, self.now));
        }
    }

    /// Runs the whole schedule; returns the first property violated, if any.
    pub fn run(&mut self) -> Option<String> {
        for _ in 0..self.faults.steps {
            self.step();
            if self.violation.is_some() {
                break;
            }
        }
        self.violation.clone()
    }

    pub fn step(&mut self) {
        self.now += 1;
        let n = self.ids.len();
        // Faults.
        for i in 0..n {
            if self.nodes[i].is_some() {
                if self.rng.gen_bool(self.faults.crash) {
                    self.nodes[i] = None;
                    self.restarts[i] += 1;
                }
            } else if self.rng.gen_bool(self.faults.restart) {
                self.start(i);
                self.restarts_done += 1;
            }
        }
        if self.rng.gen_bool(self.faults.partition) {
            for g in self.group.iter_mut() {
                *g = self.rng.gen_range(0..2);
            }
        }
        if self.rng.gen_bool(self.faults.heal) {
            self.group.iter_mut().for_each(|g| *g = 0);
        }
        // Time.
        for i in 0..n {
            if self.nodes[i].is_some() && !self.rng.gen_bool(self.faults.skip_tick) {
                self.nodes[i].as_mut().unwrap().tick();
                self.after(i);
            }
        }
        // The network.
        let mut due = Vec::new();
        while let Some(top) = self.heap.peek() {
            if top.at.0 > self.now {
                break;
            }
            let f = self.heap.pop().unwrap();
            due.push(self.msgs.remove(&f.seq).unwrap());
        }
        for m in due {
            let Some(i) = self.ids.iter().position(|id| *id == m.to) else {
                continue;
            };
            if self.nodes[i].is_some() {
                self.nodes[i].as_mut().unwrap().step(m);
                self.after(i);
            }
        }
        // Clients.
        for i in 0..n {
            let is_leader = self.nodes[i].as_ref().is_some_and(|x| x.role() == Role::Leader);
            if !is_leader {
                continue;
            }
            if self.rng.gen_bool(self.faults.propose) {
                self.next_cmd += 1;
                let cmd = format!("c{}", self.next_cmd);
                let _ = self.nodes[i].as_mut().unwrap().propose(cmd);
                self.after(i);
            }
            if self.rng.gen_bool(self.faults.read) {
                self.next_ctx += 1;
                let ctx = self.next_ctx;
                if self.nodes[i].as_mut().unwrap().read_index(ctx).is_ok() {
                    self.reads.insert(ctx, self.high_water);
                }
                self.after(i);
            }
            if self.rng.gen_bool(self.faults.membership) {
                let k = self.rng.gen_range(1..=n);
                let mut target: BTreeSet<NodeId> = BTreeSet::new();
                while target.len() < k {
                    target.insert(self.ids[self.rng.gen_range(0..n)].clone());
                }
                let node = self.nodes[i].as_mut().unwrap();
                let cur = node.membership().voters.clone();
                let add: BTreeMap<NodeId, String> = target
                    .difference(&cur)
                    .map(|id| (id.clone(), format!("{id}:0")))
                    .collect();
                let remove: BTreeSet<NodeId> = cur.difference(&target).cloned().collect();
                let _ = node.change_membership(add, remove);
                self.after(i);
            }
        }
        self.check_leaders();
    }

    /// Handles a node's Ready, like the real shell: persist, send, apply, compact.
    fn after(&mut self, i: usize) {
        let rd = self.nodes[i].as_mut().unwrap().ready();
        self.persist(i, &rd);
        let mut fails = self.check_log_matching(i, &rd);
        if let Some(snap) = &rd.snapshot {
            if let Some(&(t, _, sd)) = self.committed.get(&snap.index) {
                let sm = parse_sm(&snap.data);
                if t != snap.term || sd != sm.digest {
                    fails.push(format!(
                        "state machine safety: snapshot at {} differs from what was applied",
                        snap.index
                    ));
                }
            }
            self.sms[i] = parse_sm(&snap.data);
            self.snapshots_installed += 1;
        }
        self.apply_committed(i, &rd.committed, &mut fails);
        for &(index, term) in &rd.early_acks {
            self.acked.insert(index, term);
        }
        for r in &rd.reads {
            if let Some(hw) = self.reads.remove(&r.ctx) {
                self.reads_served += 1;
                if r.index < hw {
                    fails.push(format!(
                        "stale read: {} served a read at index {} but index {} was committed before it began",
                        self.ids[i], r.index, hw
                    ));
                }
            }
        }
        // Compaction, as the shell does it.
        let sm = self.sms[i];
        let node = self.nodes[i].as_mut().unwrap();
        if sm.index >= node.snapshot().index + self.faults.compact_every {
            node.compact(sm.index, format!("{}:{}", sm.index, sm.digest));
            self.disks[i].snapshot = Some(node.snapshot().clone());
            self.disks[i].entries = node.entries().to_vec();
        }
        self.high_water = self.high_water.max(node.commit_index());
        for m in rd.messages {
            self.send(m);
        }
        for f in fails {
            self.fail(f);
        }
    }

    /// Writes a Ready's hard state, snapshot and log operations to node `i`'s simulated disk.
    fn persist(&mut self, i: usize, rd: &Ready) {
        let node = self.nodes[i].as_ref().unwrap();
        let disk = &mut self.disks[i];
        if let Some(hs) = &rd.hard_state {
            disk.hs = hs.clone();
        }
        if rd.snapshot.is_some() {
            disk.snapshot = Some(node.snapshot().clone());
            disk.entries = node.entries().to_vec();
        } else {
            for op in &rd.log_ops {
                match op {
                    LogOp::Truncate(from) => disk.entries.retain(|e| e.index < *from),
                    LogOp::Append(e) => disk.entries.push(e.clone()),
                }
            }
        }
    }

    /// Log matching, inductively: one (index, term) names one entry with one predecessor term.
    fn check_log_matching(&mut self, i: usize, rd: &Ready) -> Vec<String> {
        let node = self.nodes[i].as_ref().unwrap();
        let mut fails = Vec::new();
        for op in &rd.log_ops {
            if let LogOp::Append(e) = op {
                if node.term_at(e.index) != Some(e.term) {
                    continue;
                }
                let prev = if e.index > 1 {
                    node.term_at(e.index - 1)
                } else {
                    Some(0)
                };
                let d = data_digest(&e.data);
                match self.seen.get(&(e.index, e.term)) {
                    Some(&(sd, sp)) => {
                        if sd != d || (sp.is_some() && prev.is_some() && sp != prev) {
                            fails.push(format!(
                                "log matching: {} holds a different entry or predecessor at index {} term {}",
                                self.ids[i], e.index, e.term
                            ));
                        }
                    }
                    None => {
                        self.seen.insert((e.index, e.term), (d, prev));
                    }
                }
            }
        }
        fails
    }

    /// Applies committed entries to node `i`'s state machine digest, checking state machine safety (every
    /// node applies the same entry at an index) and that no acknowledged write is lost.
    fn apply_committed(&mut self, i: usize, committed: &[Entry], fails: &mut Vec<String>) {
        for e in committed {
            let sm = &mut self.sms[i];
            if e.index != sm.index + 1 {
                fails.push(format!(
                    "{} applied index {} after {}",
                    self.ids[i], e.index, sm.index
                ));
                break;
            }
            let d = data_digest(&e.data);
            if matches!(e.data, EntryData::Config(_)) {
                self.config_changes += 1;
            }
            sm.index = e.index;
            sm.digest = digest(&(sm.digest, d));
            self.commits += 1;
            match self.committed.get(&e.index) {
                Some(&(t, cd, sd)) => {
                    if t != e.term || cd != d || sd != sm.digest {
                        fails.push(format!(
                            "state machine safety: {} applied term {} at index {}, another node term {}",
                            self.ids[i], e.term, e.index, t
                        ));
                    }
                }
                None => {
                    self.committed.insert(e.index, (e.term, d, sm.digest));
                }
            }
            if let Some(&t) = self.acked.get(&e.index) {
                if t != e.term {
                    fails.push(format!(
                        "acknowledged write lost: index {} term {} was acknowledged, term {} committed",
                        e.index, t, e.term
                    ));
                }
            }
        }
    }

    fn send(&mut self, m: Message) {
        let (Some(a), Some(b)) = (
            self.ids.iter().position(|x| *x == m.from),
            self.ids.iter().position(|x| *x == m.to),
        ) else {
            return;
        };
        if self.group[a] != self.group[b] || self.rng.gen_bool(self.faults.loss) {
            return;
        }
        let delay = self.rng.gen_range(1..=self.faults.max_delay);
        self.seq += 1;
        let tie = self.rng.gen();
        self.heap.push(InFlight {
            at: std::cmp::Reverse(self.now + delay),
            tie: std::cmp::Reverse(tie),
            seq: self.seq,
        });
        self.msgs.insert(self.seq, m);
    }

    fn check_leaders(&mut self) {
        let mut fails = Vec::new();
        for i in 0..self.ids.len() {
            let Some(node) = &self.nodes[i] else { continue };
            let now = (node.role(), node.term());
            if now.0 == Role::Leader && self.was_leader[i] != now {
                self.leaders_elected += 1;
                let term = node.term();
                // Election safety.
                match self.leaders.get(&term) {
                    Some(other) if *other != self.ids[i] => fails.push(format!(
                        "election safety: {} and {} both lead term {term}",
                        other, self.ids[i]
                    )),
                    _ => {
                        self.leaders.insert(term, self.ids[i].clone());
                    }
                }
                // Leader completeness: every applied (committed) entry is in the new leader's log.
                let from = node.snapshot().index + 1;
                for (&index, &(t, _, _)) in self.committed.range(from..) {
                    if node.term_at(index) != Some(t) {
                        fails.push(format!(
                            "leader completeness: {} leads term {term} without committed entry {index} (term {t})",
                            self.ids[i]
                        ));
                        break;
                    }
                }
                for (&index, &t) in self.acked.range(from..) {
                    if t < term && node.term_at(index) != Some(t) {
                        fails.push(format!(
                            "acknowledged write lost: {} leads term {term} without acknowledged entry {index} (term {t})",
                            self.ids[i]
                        ));
                        break;
                    }
                }
            }
            self.was_leader[i] = now;
        }
        for f in fails {
            self.fail(f);
        }
    }

    /// Ticks node `i` alone (to stagger start-up in scripted schedules).
    pub fn tick_only(&mut self, i: usize) {
        if self.nodes[i].is_some() {
            self.nodes[i].as_mut().unwrap().tick();
            self.after(i);
        }
    }

    /// Kills node `i` (for scripted schedules).
    pub fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
        self.restarts[i] += 1;
    }

    /// Ends the faults: no more crashes, partitions, loss or membership changes; the nodes in `down` stay
    /// (or are now) down, every other node runs. Delays, reordering and skipped ticks go on.
    pub fn calm(&mut self, down: &[usize]) {
        self.faults.crash = 0.0;
        self.faults.restart = 0.0;
        self.faults.partition = 0.0;
        self.faults.heal = 0.0;
        self.faults.loss = 0.0;
        self.faults.membership = 0.0;
        self.group.iter_mut().for_each(|g| *g = 0);
        for i in 0..self.ids.len() {
            if down.contains(&i) {
                if self.nodes[i].is_some() {
                    self.crash(i);
                }
            } else if self.nodes[i].is_none() {
                self.start(i);
            }
        }
    }

    /// The highest index any node has applied.
    pub fn applied_high(&self) -> u64 {
        self.committed.keys().next_back().copied().unwrap_or(0)
    }

    pub fn leader(&self) -> Option<usize> {
        (0..self.ids.len()).find(|&i| self.nodes[i].as_ref().is_some_and(|n| n.role() == Role::Leader))
    }
}

fn parse_sm(data: &str) -> Sm {
    let (i, d) = data.split_once(':').unwrap_or(("0", "0"));
    Sm {
        index: i.parse().unwrap_or(0),
        digest: d.parse().unwrap_or(0),
    }
}
