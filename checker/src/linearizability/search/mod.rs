//! The search for one partition: Wing & Gong's algorithm as improved by Lowe, with a cache of configurations
//! (linearized set, model state) and backtracking, plus:
//!
//! - **forced steps**: a pure operation (one that never changes the state: a read, a failed cas) that can
//!   be linearized now is linearized at once, with no alternative tried. If the rest has a linearization,
//!   moving this operation to the front of it changes no state (it is pure, and it can happen in the
//!   current state) and breaks no real-time order (every operation not yet linearized returns after this
//!   one was invoked, or it would not be a candidate), so the rest still has one;
//! - **pruning** through [`Model::unreachable`] (kv: reads that can no longer see their string; register:
//!   reads stranded when their value is left for good) and [`Model::impossible`] (a read of a value nothing
//!   writes);
//! - **frozen states** ([`Model::frozen`]): after a step the model may know the state cannot change until some
//!   later-invoked operation is linearized; every required operation completing before that invoke must then
//!   fit the state, which the search checks by walking the event list up to it;
//! - **symmetry** ([`Model::class`]): interchangeable indeterminate operations are linearized in invoke order
//!   only, and [`Model::cache_key`] files states no operation can tell apart under one key;
//! - **compact cache entries** ([`cache`]): the linearized set is stored as its concurrency window;
//! - **parallel search inside one key** ([`parallel`]): when a search is still running after a while (half
//!   a second by default) and the model can be copied ([`Model::fork`]), more workers join it over one
//!   shared cache, taking over the candidates left at nodes of each other's stacks (work stealing over
//!   subtrees);
//! - a **budget**: a deadline, a shared memory bound and a cancel flag, checked every few thousand steps.

mod cache;
mod classes;
mod events;
mod parallel;

use crate::model::{Model, Role};
use cache::Visited;
use classes::Classes;
use events::{Events, Linearized, NIL};
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use parallel::Pool;
pub(crate) use parallel::{search, Parallel};

/// Flags the `lo` of a cache entry for a node restricted to consumers.
const RESTRICTED: u32 = 1 << 31;
/// How many operations of a prefix a counterexample keeps (the last ones).
pub(crate) const PREFIX_KEEP: usize = 200;
/// How many longest prefixes a counterexample keeps.
const PREFIXES_KEPT: usize = 3;
/// Steps between two looks at the budget.
const CHECK_EVERY: u32 = 4096;

/// One operation as the search sees it: its position in the history and its role.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchOp {
    /// Position of the invoke in the history (orders calls and returns).
    pub call: u64,
    /// Position of the completion; None for optional (indeterminate) operations.
    pub ret: Option<u64>,
    pub role: Role,
}

/// What stops a search early.
pub(crate) struct Budget<'a> {
    pub deadline: Option<Instant>,
    /// Bytes used by all searches together, and the bound.
    pub memory: &'a AtomicUsize,
    pub memory_limit: usize,
    pub cancel: &'a AtomicBool,
}

/// Why a search gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GaveUp {
    TimeLimit,
    MemoryLimit,
    Cancelled,
}

/// A linearizable prefix found, op numbers (of the partition) in order, state after each.
pub(crate) struct FoundPrefix<S> {
    /// Operations linearized before the kept ones.
    pub omitted: usize,
    pub ops: Vec<u32>,
    pub states: Vec<S>,
    /// The operation whose completion came with it still not linearizable.
    pub blocked: u32,
}

pub(crate) enum Outcome<S> {
    Linearizable,
    /// A linearization of every required operation (only when one was asked for).
    Witness(FoundPrefix<S>),
    NotLinearizable {
        prefixes: Vec<FoundPrefix<S>>,
    },
    GaveUp(GaveUp),
}

/// A linearization of the required operations of `ops` (its last [`PREFIX_KEEP`] operations and their
/// states; `blocked` unset), found by the same search with [`Model::impossible`] not consulted, on one
/// thread. When the budget ran out first, or the search found none (the model's pruning hooks may cut more
/// when operations are skipped), the longest linearizable prefix the search built (a linearization of some
/// of them, in real-time order); None when it built none at all.
pub(crate) fn linearization<M: Model>(
    model: &mut M,
    ops: &[SearchOp],
    budget: &Budget<'_>,
) -> Option<FoundPrefix<M::State>> {
    let mut w = Searcher::new(model, ops, cache::Cache::new(), 0);
    w.want_witness();
    match w.run(budget, None, Pause::Never) {
        Run::Done(Outcome::Witness(p)) => Some(p),
        Run::Done(Outcome::GaveUp(_)) => w.prefixes.into_iter().next(),
        Run::Done(Outcome::NotLinearizable { prefixes }) => prefixes.into_iter().next(),
        _ => None,
    }
}

/// The last [`PREFIX_KEEP`] operations of the linearization on `stack` with the state after each (`state`
/// is the one after the top frame's operation).
fn kept_prefix<S: Clone>(stack: &[Frame<S>], state: &S, blocked: u32) -> FoundPrefix<S> {
    let depth = stack.len();
    let from = depth - depth.min(PREFIX_KEEP);
    let ops: Vec<u32> = stack[from..].iter().map(|f| f.op).collect();
    let mut states: Vec<S> = Vec::with_capacity(ops.len());
    if !ops.is_empty() {
        states.extend(stack[from + 1..].iter().map(|f| f.state.clone()));
        states.push(state.clone());
    }
    FoundPrefix {
        omitted: from,
        ops,
        states,
        blocked,
    }
}

/// Statistics of one search, for benchmarks and for what an undecided key reports.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SearchStats {
    pub steps: u64,
    pub cache_entries: usize,
    /// The longest linearizable prefix the search built (operations linearized at once).
    pub max_depth: usize,
}

/// Where the candidate scan of the current node stands.
#[derive(Clone, Copy)]
struct Node {
    /// The next entry to try.
    entry: u32,
    /// The candidate pass (0: required operations, 1: optional ones, which can be linearized at any later
    /// point and so are better left for last).
    pass: u8,
    /// The first candidate tried in this pass (a worker's rotation, see [`Searcher::begin_pass`]), whether
    /// the scan still has to wrap round to the list's front, and where it stops once it has.
    start: u32,
    wrap: bool,
    stop: u32,
    /// The first return entry of the main list, which ends the candidates (NIL: none left), and its
    /// position (the last an optional candidate may be invoked at).
    end: u32,
    limit: u64,
    /// Whether a blind candidate ([`Model::blind`]) was tried at this node.
    blind_tried: bool,
    /// Whether this node is restricted to consumers (see [`Model::lazy_optional`]).
    restricted: bool,
    /// Whether the candidates left at this node were handed to another worker ([`parallel`]): this one
    /// tries none of them.
    donated: bool,
    /// The worker's step count when a candidate tried at this node last led to a dead end (0: none has).
    failed_at: u64,
}

impl Node {
    fn fresh(restricted: bool) -> Node {
        Node {
            entry: NIL,
            pass: 0,
            start: NIL,
            wrap: false,
            stop: NIL,
            end: NIL,
            limit: u64::MAX,
            blind_tried: false,
            restricted,
            donated: false,
            failed_at: 0,
        }
    }
}

struct Frame<S> {
    op: u32,
    /// The state before `op`.
    state: S,
    forced: bool,
    /// The node `op` was chosen at.
    node: Node,
}

/// The candidates left at one node, handed from one worker to another ([`parallel`]): the path to the node
/// (each operation with the state before it), the state at the node, the node's scan as it stood, and the
/// candidate the giver tried last there (the scan goes on after it).
struct Task<S> {
    path: Vec<(u32, S)>,
    state: S,
    node: Node,
    after: u32,
}

/// What a run of the search loop ended with.
enum Run<S> {
    Done(Outcome<S>),
    /// It reached its [`Pause`] (to call helpers in, see [`parallel`]).
    Escalate,
}

/// Where a run of the search loop stops undecided, to be taken up again ([`Run::Escalate`]); looked at
/// with the budget, every few thousand steps.
#[derive(Clone, Copy)]
enum Pause {
    Never,
    /// Once the worker has taken this many steps in all (tests interleave workers with it).
    #[cfg_attr(not(test), allow(dead_code))]
    AfterSteps(u64),
    /// Once this time has come.
    At(Instant),
}

impl Pause {
    fn due(self, steps: u64) -> bool {
        match self {
            Pause::Never => false,
            Pause::AfterSteps(n) => steps >= n,
            Pause::At(t) => Instant::now() >= t,
        }
    }
}

/// Memory reported to the budget, and when to look at it next.
#[derive(Default)]
struct Meter {
    reported: usize,
    /// Heap bytes of the states in the cache.
    state_heap: usize,
    since_check: u32,
    /// Steps between two looks at the budget (and at the run's [`Pause`]).
    check_every: u32,
    /// Whether this worker counts the cache (a shared one is counted by worker 0 only).
    owns_cache: bool,
}

/// One worker's depth-first search.
struct Searcher<'s, M: Model, C> {
    model: &'s mut M,
    ops: &'s [SearchOp],
    ev: Events,
    lin: Linearized,
    cache: C,
    classes: Classes,
    stack: Vec<Frame<M::State>>,
    state: M::State,
    required_left: usize,
    node: Node,
    /// Whether the forced-step scan still has to run at the current node.
    scan: bool,
    /// At the current node: an operation a pruned candidate would have made impossible.
    pruned_by: Option<u32>,
    /// Lazy indeterminate operations: right after one, only an operation that consumes its result may
    /// follow (pure ones are forced steps anyway); such nodes are cached apart, under a flagged `lo`.
    lazy: bool,
    /// Which candidate this worker tries first at each node (0: the first in the list).
    rotate: usize,
    /// The depth of the node this worker's task starts at ([`Task`]): it never backtracks above it.
    floor: usize,
    /// The step count when the search last went deeper than ever before, and when it last handed a task over.
    deepest_at: u64,
    given_at: u64,
    /// Steps the search must have gone without going deeper before it hands a task over.
    split_after: u64,
    /// Whether to hand over the shallowest node with candidates left whenever asked (tests: so that small
    /// histories are split too, and big subtrees change hands).
    split_any: bool,
    /// Frames below this one have nothing to give ([`Searcher::donate`]) as long as they stay: where the scan
    /// for one to give ends.
    donate_from: usize,
    /// Whether to end with the linearization found ([`Outcome::Witness`]) rather than only say there is one.
    witness: bool,
    prefixes: Vec<FoundPrefix<M::State>>,
    best_depth: usize,
    meter: Meter,
    stats: SearchStats,
}

fn key_hash<S: Hash>(lo: u32, window: &[u64], state: &S) -> u64 {
    let mut h = FxHasher::default();
    lo.hash(&mut h);
    window.hash(&mut h);
    state.hash(&mut h);
    h.finish()
}

impl<'s, M: Model, C: Visited<M::State>> Searcher<'s, M, C> {
    /// A worker at the root; `rotate` picks its candidate order.
    fn new(model: &'s mut M, ops: &'s [SearchOp], cache: C, rotate: usize) -> Self {
        let (ev, required_left) = Events::build(ops);
        let classes = Classes::new(model, ops);
        let state = model.init();
        let lazy = model.lazy_optional();
        Searcher {
            lin: Linearized::new(ops.len()),
            ev,
            cache,
            classes,
            stack: Vec::new(),
            state,
            required_left,
            node: Node::fresh(false),
            scan: true,
            pruned_by: None,
            lazy,
            rotate,
            floor: 0,
            deepest_at: 0,
            given_at: 0,
            split_after: 0,
            split_any: false,
            donate_from: 0,
            witness: false,
            prefixes: Vec::new(),
            best_depth: 0,
            meter: Meter {
                owns_cache: true,
                check_every: CHECK_EVERY,
                ..Meter::default()
            },
            stats: SearchStats::default(),
            model,
            ops,
        }
    }

    /// The same worker, where it stands, over another cache; and the old cache.
    fn swap_cache<C2: Visited<M::State>>(self, cache: C2) -> (Searcher<'s, M, C2>, C) {
        let s = Searcher {
            model: self.model,
            ops: self.ops,
            ev: self.ev,
            lin: self.lin,
            cache,
            classes: self.classes,
            stack: self.stack,
            state: self.state,
            required_left: self.required_left,
            node: self.node,
            scan: self.scan,
            pruned_by: self.pruned_by,
            lazy: self.lazy,
            rotate: self.rotate,
            floor: self.floor,
            deepest_at: self.deepest_at,
            given_at: self.given_at,
            split_after: self.split_after,
            split_any: self.split_any,
            donate_from: self.donate_from,
            witness: self.witness,
            prefixes: self.prefixes,
            best_depth: self.best_depth,
            meter: self.meter,
            stats: self.stats,
        };
        (s, self.cache)
    }

    /// Asks for the linearization found. The model's hooks know only the roles it gave; operations left out
    /// since are shown to them as done, so that none waits for them (an observer left out is no stranded
    /// read).
    fn want_witness(&mut self) {
        self.witness = true;
        for (i, _) in self.ops.iter().enumerate().filter(|(_, o)| o.role == Role::Skip) {
            self.lin.set(i);
        }
    }

    /// The model, for copies of it.
    fn model(&self) -> &M {
        self.model
    }

    /// Leaves the counting of the cache's bytes to another worker.
    fn share_cache_bytes(&mut self) {
        self.meter.owns_cache = false;
    }

    /// Searches until decided, given up (the budget, or the pool stopped), its task done, or `pause` is due.
    /// In a pool, it looks at every step whether another worker waits, and if so hands over candidates it has
    /// left ([`Searcher::donate`]).
    fn run(&mut self, budget: &Budget<'_>, pool: Option<&Pool<M::State>>, pause: Pause) -> Run<M::State> {
        loop {
            if self.required_left == 0 {
                let found = if self.witness {
                    Outcome::Witness(kept_prefix(&self.stack, &self.state, NIL))
                } else {
                    Outcome::Linearizable
                };
                return self.finish(budget, found);
            }
            self.meter.since_check += 1;
            if let Some(p) = pool.filter(|p| p.wanted()) {
                if let Some(t) = self.donate() {
                    p.give(t);
                }
            }
            if self.meter.since_check >= self.meter.check_every {
                self.meter.since_check = 0;
                if let Some(why) = self.over_budget(budget, pool) {
                    return self.finish(budget, Outcome::GaveUp(why));
                }
                if pause.due(self.stats.steps) {
                    return Run::Escalate;
                }
            }
            self.stats.steps += 1;
            if self.scan {
                self.scan = false;
                if self.forced_steps() || self.backtrack() {
                    continue;
                }
            } else if self.advance() {
                continue;
            } else {
                // A dead end: the completion of an operation came and it is not linearized, or no
                // candidate is left.
                self.record_prefix();
                self.pruned_by = None;
                if self.backtrack() {
                    continue;
                }
            }
            let prefixes = std::mem::take(&mut self.prefixes);
            return self.finish(budget, Outcome::NotLinearizable { prefixes });
        }
    }

    fn finish(&mut self, budget: &Budget<'_>, outcome: Outcome<M::State>) -> Run<M::State> {
        if self.meter.owns_cache {
            self.stats.cache_entries = self.cache.entries();
        }
        budget.memory.fetch_sub(self.meter.reported, Ordering::Relaxed);
        self.meter.reported = 0;
        Run::Done(outcome)
    }

    /// Reports this worker's memory and says why it must stop, if it must.
    fn over_budget(&mut self, budget: &Budget<'_>, pool: Option<&Pool<M::State>>) -> Option<GaveUp> {
        let cache = if self.meter.owns_cache {
            self.cache.bytes()
        } else {
            0
        };
        let now = cache + self.meter.state_heap + self.model.heap_bytes() + self.stack.capacity() * 32;
        let before = self.meter.reported;
        if now > before {
            budget.memory.fetch_add(now - before, Ordering::Relaxed);
        } else {
            budget.memory.fetch_sub(before - now, Ordering::Relaxed);
        }
        self.meter.reported = now;
        if budget.cancel.load(Ordering::Relaxed) || pool.is_some_and(Pool::stopped) {
            Some(GaveUp::Cancelled)
        } else if budget.memory.load(Ordering::Relaxed) > budget.memory_limit {
            Some(GaveUp::MemoryLimit)
        } else if budget.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(GaveUp::TimeLimit)
        } else {
            None
        }
    }

    /// Files the configuration reached (the operation just linearized is in `lin`, the state is `s2`); false
    /// when it was there already.
    #[inline]
    fn visit(&mut self, s2: &M::State, restricted: bool) -> bool {
        let (lo, w) = self.lin.window();
        let lo = if restricted { lo | RESTRICTED } else { lo };
        let key = self.model.cache_key(s2, &self.lin.words);
        let h = key_hash(lo, w, &key);
        if self.cache.insert(h, lo, w, &key) {
            self.meter.state_heap += self.model.state_heap_bytes(s2);
            return true;
        }
        false
    }

    /// The forced steps at a new node: pure candidates that can happen now, linearized at once. Then the
    /// candidate scan begins. False when the node is dead (a forced step leads where the search has been).
    fn forced_steps(&mut self) -> bool {
        let mut e = self.ev.first();
        while self.ev.is_call(e) {
            let op = self.ev.entry_op[e as usize] as usize;
            if !self.model.pure(op) {
                e = self.ev.next[e as usize];
                continue;
            }
            if let Some(s2) = self.model.step(&self.state, op) {
                self.lin.set(op);
                if !self.visit(&s2, false) {
                    self.lin.clear(op);
                    return false;
                }
                self.push(op, s2, true);
                if self.required_left == 0 {
                    return true;
                }
                e = self.ev.first();
                continue;
            }
            e = self.ev.next[e as usize];
        }
        self.begin_pass();
        true
    }

    /// Starts a candidate pass at the current node: required candidates (the main list's calls up to its
    /// first return), then optional ones (the optional list's calls invoked before that return). Worker `k`
    /// (its `rotate`) begins with the `k`-th candidate (wrapping round), runs to the end, then wraps to the
    /// front: every candidate is tried once, in an order that differs from the other workers'.
    fn begin_pass(&mut self) {
        let first = if self.node.pass == 0 {
            self.node.end = self.ev.first_return();
            self.node.limit = match self.node.end {
                NIL => u64::MAX,
                e => self.ev.entry_pos[e as usize],
            };
            self.ev.first()
        } else {
            self.ev.first_optional()
        };
        let mut start = first;
        if !self.past_end(first) {
            for _ in 0..self.rotate {
                let n = self.ev.next[start as usize];
                start = if self.past_end(n) { first } else { n };
            }
        }
        self.node.entry = start;
        self.node.start = start;
        self.node.wrap = start != first;
        self.node.stop = NIL;
    }

    /// Whether `e` is past the current pass's candidates.
    #[inline]
    fn past_end(&self, e: u32) -> bool {
        if self.node.pass == 0 {
            !self.ev.is_call(e)
        } else {
            e == NIL || self.ev.entry_pos[e as usize] > self.node.limit
        }
    }

    /// Moves the candidate scan of the current node on by one: tries an entry, wraps round, or goes to the
    /// next pass. False when the node has no candidate left.
    fn advance(&mut self) -> bool {
        if self.node.donated {
            return false;
        }
        let e = self.node.entry;
        let end_of_pass = if e == self.node.stop && e != NIL {
            true
        } else if self.past_end(e) {
            if self.node.wrap {
                self.node.wrap = false;
                self.node.stop = self.node.start;
                self.node.entry = if self.node.pass == 0 {
                    self.ev.first()
                } else {
                    self.ev.first_optional()
                };
                return true;
            }
            true
        } else {
            false
        };
        if end_of_pass {
            if self.node.pass == 0 {
                self.node.pass = 1;
                self.begin_pass();
                return true;
            }
            return false;
        }
        self.node.entry = self.ev.next[e as usize];
        self.try_candidate(self.ev.entry_op[e as usize] as usize);
        true
    }

    /// Linearizes `op` here if the rules let it, it can happen, no pruning rejects it and the search has
    /// not been where it leads.
    fn try_candidate(&mut self, op: usize) {
        // Pass 0 walks required operations only, pass 1 optional ones only.
        let optional = self.node.pass == 1;
        if !self.classes.next_of_class(op) {
            return;
        }
        if self.node.restricted && !self.model.consumes(op) {
            return;
        }
        // Lazy indeterminate operations: only where an operation that depends on the result can follow.
        if optional
            && self.lazy
            && !self
                .model
                .awaited(op, &self.state, &self.lin.words, self.node.limit)
        {
            return;
        }
        if self.node.pass == 1 && self.model.blind(op, &self.lin.words) {
            if self.node.blind_tried {
                return;
            }
            self.node.blind_tried = true;
        }
        let Some(s2) = self.model.step(&self.state, op) else {
            return;
        };
        self.lin.set(op);
        if let Some(r) = self.pruned(op, &s2) {
            self.pruned_by = Some(r as u32);
        } else if self.visit(&s2, self.lazy && optional) {
            self.push(op, s2, false);
            self.scan = true;
            self.pruned_by = None;
            return;
        }
        self.lin.clear(op);
    }

    /// An operation that can no longer be linearized once `op` took the state to `s2`, if any.
    fn pruned(&mut self, op: usize, s2: &M::State) -> Option<usize> {
        if let Some(r) = self
            .model
            .unreachable(&self.state, s2, op, &self.lin.words, self.node.limit)
        {
            return Some(r);
        }
        let last = self.model.frozen(&self.state, s2, op, &self.lin.words)?;
        self.must_fit(s2, op, self.ops[last].call)
    }

    /// With the state frozen at `state` until position `until` (see [`Model::frozen`]): a required operation
    /// other than `op` whose completion comes before `until` and that cannot happen in `state` keeping it.
    fn must_fit(&mut self, state: &M::State, op: usize, until: u64) -> Option<usize> {
        let mut e = self.ev.first();
        while e != NIL && self.ev.entry_pos[e as usize] < until {
            let x = self.ev.entry_op[e as usize] as usize;
            if self.ev.is_ret[e as usize] && x != op && self.model.step(state, x).as_ref() != Some(state) {
                return Some(x);
            }
            e = self.ev.next[e as usize];
        }
        None
    }

    fn push(&mut self, op: usize, s2: M::State, forced: bool) {
        let old = std::mem::replace(&mut self.state, s2);
        let restricted = self.lazy && !forced && self.ops[op].role == Role::Optional;
        let node = std::mem::replace(&mut self.node, Node::fresh(restricted));
        self.stack.push(Frame {
            op: op as u32,
            state: old,
            forced,
            node,
        });
        self.classes.take(op);
        if self.stack.len() > self.stats.max_depth {
            self.stats.max_depth = self.stack.len();
            self.deepest_at = self.stats.steps;
        }
        self.ev.lift(self.ev.call_entry[op]);
        if self.ops[op].role == Role::Required {
            self.ev.lift(self.ev.ret_entry[op]);
            self.required_left -= 1;
        }
    }

    /// Undoes the last choice (and every forced step above it); the scan goes on after the undone one.
    /// False when nothing is left to undo (above the worker's floor).
    fn backtrack(&mut self) -> bool {
        while self.stack.len() > self.floor {
            let (op, forced, node) = self.pop();
            if !forced {
                self.node = node;
                self.node.failed_at = self.stats.steps;
                self.node.entry = self.ev.next[self.ev.call_entry[op] as usize];
                return true;
            }
        }
        false
    }

    /// Takes the top frame off the stack, its operation out of the linearization; the state is the one
    /// before it again. The frame's operation, whether it was forced, and its node.
    fn pop(&mut self) -> (usize, bool, Node) {
        let frame = self.stack.pop().expect("pop is called on a non-empty stack");
        let op = frame.op as usize;
        self.classes.give_back(op);
        self.state = frame.state;
        self.lin.clear(op);
        if self.ops[op].role == Role::Required {
            self.ev.relink(self.ev.ret_entry[op]);
            self.required_left += 1;
        }
        self.ev.relink(self.ev.call_entry[op]);
        self.donate_from = self.donate_from.min(self.stack.len());
        (op, frame.forced, frame.node)
    }

    /// Once the search has gone [`Searcher::split_after`] steps without going deeper than ever: hands over the
    /// candidates left at the shallowest node where a candidate led to a dead end since it last did (a choice
    /// that was no forced step, below the floor, not given away already); this worker will try none of them.
    /// None when there is no such node, or when fewer steps than the stack is deep were taken since the last
    /// task given (a task costs a copy of the path, and the scan for the node as much).
    ///
    /// Why those: the search's time goes into dead regions, subtrees below a wrong choice that it goes
    /// through one by one before it backtracks above them (in a 40,000-operation hot key, 45M of 57M steps
    /// between depths 16,110 and 16,376, none deeper than it had been). Every node that failed since the
    /// search last went deeper is in the region it is stuck in; the shallowest of them holds the most work.
    /// Nodes failing before that may hold alternatives to a subtree that leads on (given away, such a task
    /// kept the other worker busy on a copy of a dead region further down), and the deepest of the region's
    /// hold little: in a hot key of 5,000 operations the helper took 4,565 tasks of 11 to a few thousand
    /// steps, and the two workers together were no faster than one (1.0-1.1), against 1.6-1.8 with the
    /// shallowest (ARCHITECTURE.md has the table).
    fn donate(&mut self) -> Option<Task<M::State>> {
        let steps = self.stats.steps;
        let recent = if self.split_any {
            0
        } else if steps < self.given_at + self.stack.len() as u64
            || steps < self.deepest_at + self.split_after
        {
            return None;
        } else {
            self.deepest_at.max(1)
        };
        let lo = self.donate_from.max(self.floor);
        let open = |f: &usize| {
            let n = &self.stack[*f].node;
            !self.stack[*f].forced && !n.donated && n.failed_at >= recent
        };
        let Some(f) = (lo..self.stack.len()).find(open) else {
            // None of these frames will have anything to give as long as they stay (`recent` only grows).
            self.donate_from = self.stack.len();
            return None;
        };
        // Nor will the frames below `f`, nor `f` once given away.
        self.donate_from = f + 1;
        self.given_at = steps;
        self.give(f)
    }

    /// Hands over the candidates left at the node of frame `f` (no forced step, at or below the floor, not
    /// given away already: else None).
    fn give(&mut self, f: usize) -> Option<Task<M::State>> {
        let frame = self
            .stack
            .get_mut(f)
            .filter(|fr| !fr.forced && !fr.node.donated)?;
        if f < self.floor {
            return None;
        }
        let (node, after) = (frame.node, frame.op);
        frame.node.donated = true;
        Some(Task {
            path: self.stack[..f]
                .iter()
                .map(|fr| (fr.op, fr.state.clone()))
                .collect(),
            state: self.stack[f].state.clone(),
            node,
            after,
        })
    }

    /// Starts on `task`: goes back to the longest common prefix of the stack and the task's path, replays the
    /// rest of the path, and takes up the node's scan after the candidate the giver tried last. The node's
    /// configuration is filed already; so are the ones on the path.
    fn take(&mut self, task: Task<M::State>) {
        let common = self
            .stack
            .iter()
            .zip(&task.path)
            .take_while(|(fr, (op, _))| fr.op == *op)
            .count();
        while self.stack.len() > common {
            self.pop();
        }
        let Task {
            path,
            state,
            mut node,
            after,
        } = task;
        let mut states = path.iter().skip(common + 1).map(|p| p.1.clone());
        for &(op, _) in &path[common..] {
            let next = states.next().unwrap_or_else(|| state.clone());
            self.lin.set(op as usize);
            self.push(op as usize, next, true);
        }
        self.state = state;
        self.floor = path.len();
        self.donate_from = self.floor;
        node.donated = false;
        node.entry = self.ev.next[self.ev.call_entry[after as usize] as usize];
        self.node = node;
        self.scan = false;
        self.pruned_by = None;
    }

    /// At a dead end where a completion came: keeps the prefix if it is among the longest.
    fn record_prefix(&mut self) {
        let depth = self.stack.len();
        let end = self.node.end;
        if depth < self.best_depth || end == NIL {
            return;
        }
        if depth > self.best_depth {
            self.prefixes.clear();
            self.best_depth = depth;
        }
        if self.prefixes.len() >= PREFIXES_KEPT {
            return;
        }
        // The operation to blame: one that pruning showed can no longer be linearized, else the one whose
        // completion came.
        let blocked = self.pruned_by.unwrap_or(self.ev.entry_op[end as usize]);
        let found = kept_prefix(&self.stack, &self.state, blocked);
        if !self
            .prefixes
            .iter()
            .any(|p| p.ops == found.ops && p.blocked == blocked)
        {
            self.prefixes.push(found);
        }
    }
}

#[cfg(test)]
mod tests;
