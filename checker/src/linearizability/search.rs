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
//! - **compact cache entries**: the linearized set is stored as the words from the first unlinearized
//!   operation to the last linearized one (the concurrency window), in one arena, no allocation per entry;
//! - a **budget**: a deadline, a shared memory bound and a cancel flag, checked every few thousand steps.

use crate::model::{Model, Role};
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

const NIL: u32 = u32::MAX;
/// Flags the `lo` of a cache entry for a node restricted to consumers.
const RESTRICTED: u32 = 1 << 31;
/// The list's head sentinel.
const HEAD: u32 = 0;
/// How many operations of a prefix a counterexample keeps (the last ones).
pub(crate) const PREFIX_KEEP: usize = 200;
/// How many longest prefixes a counterexample keeps.
const PREFIXES_KEPT: usize = 3;

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

/// Statistics of one search, for benchmarks and for what an undecided key reports.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SearchStats {
    pub steps: u64,
    pub cache_entries: usize,
    /// The longest linearizable prefix the search built (operations linearized at once).
    pub max_depth: usize,
}

/// The symmetry rule of [`Model::class`]: indeterminate operations of one class are linearized only in invoke
/// order, so the ones taken are always the first of the class.
struct Classes {
    /// Per operation: its class, or NIL.
    class_of: Vec<u32>,
    /// Per class: its operations in invoke order, and how many of them are linearized.
    members: Vec<Vec<u32>>,
    taken: Vec<u32>,
}

impl Classes {
    fn new<M: Model>(model: &M, ops: &[SearchOp]) -> Classes {
        let mut ids: rustc_hash::FxHashMap<u64, u32> = Default::default();
        let mut class_of = vec![NIL; ops.len()];
        let mut members: Vec<Vec<u32>> = Vec::new();
        let mut order: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].role == Role::Optional)
            .collect();
        order.sort_by_key(|&i| (ops[i].call, i));
        for i in order {
            let Some(c) = model.class(i) else { continue };
            let n = ids.len() as u32;
            let id = *ids.entry(c).or_insert(n);
            if id as usize == members.len() {
                members.push(Vec::new());
            }
            members[id as usize].push(i as u32);
            class_of[i] = id;
        }
        let taken = vec![0; members.len()];
        Classes {
            class_of,
            members,
            taken,
        }
    }

    /// Whether `op` may be linearized now: in no class, or the first of its class not yet linearized.
    fn next_of_class(&self, op: usize) -> bool {
        let c = self.class_of[op];
        c == NIL || self.members[c as usize].get(self.taken[c as usize] as usize) == Some(&(op as u32))
    }

    fn take(&mut self, op: usize) {
        if let Some(c) = self.class_of.get(op).filter(|&&c| c != NIL) {
            self.taken[*c as usize] += 1;
        }
    }

    fn give_back(&mut self, op: usize) {
        if let Some(c) = self.class_of.get(op).filter(|&&c| c != NIL) {
            self.taken[*c as usize] -= 1;
        }
    }
}

/// The last [`PREFIX_KEEP`] operations of the linearization on `stack` with the state after each (`state`
/// is the one after the top frame's operation).
fn kept_prefix<M: Model>(stack: &[Frame<M::State>], state: &M::State, blocked: u32) -> FoundPrefix<M::State> {
    let depth = stack.len();
    let from = depth - depth.min(PREFIX_KEEP);
    let ops: Vec<u32> = stack[from..].iter().map(|f| f.op).collect();
    let mut states: Vec<M::State> = Vec::with_capacity(ops.len());
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

struct Frame<S> {
    op: u32,
    /// The state before `op`.
    state: S,
    forced: bool,
    /// The candidate pass `op` was chosen in (0: required operations, 1: optional ones).
    pass: u8,
    /// Whether a blind candidate ([`Model::blind`]) was tried at this node up to `op`.
    blind_tried: bool,
    /// Whether this node was restricted to consumers (see [`Model::lazy_optional`]).
    restricted: bool,
}

/// The set of configurations already explored.
struct Cache<S> {
    /// Open addressing, linear probing: entry number + 1, 0 = empty.
    slots: Vec<u32>,
    hashes: Vec<u64>,
    /// Per entry: first word, offset into `words`, number of words.
    lo: Vec<u32>,
    off: Vec<u32>,
    len: Vec<u16>,
    states: Vec<S>,
    words: Vec<u64>,
}

impl<S: Eq> Cache<S> {
    fn new() -> Self {
        Cache {
            slots: vec![0; 1024],
            hashes: Vec::new(),
            lo: Vec::new(),
            off: Vec::new(),
            len: Vec::new(),
            states: Vec::new(),
            words: Vec::new(),
        }
    }

    fn entries(&self) -> usize {
        self.states.len()
    }

    fn bytes(&self) -> usize {
        self.slots.capacity() * 4
            + self.hashes.capacity() * 8
            + self.lo.capacity() * 4
            + self.off.capacity() * 4
            + self.len.capacity() * 2
            + self.states.capacity() * std::mem::size_of::<S>()
            + self.words.capacity() * 8
    }

    /// Inserts (lo, window, state); false when it was already there.
    fn insert(&mut self, hash: u64, lo: u32, window: &[u64], state: &S) -> bool
    where
        S: Clone,
    {
        let mask = self.slots.len() - 1;
        let mut i = (hash as usize) & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                break;
            }
            let e = slot as usize - 1;
            if self.hashes[e] == hash
                && self.lo[e] == lo
                && self.len[e] as usize == window.len()
                && &self.words[self.off[e] as usize..self.off[e] as usize + window.len()] == window
                && self.states[e] == *state
            {
                return false;
            }
            i = (i + 1) & mask;
        }
        let e = self.states.len();
        self.slots[i] = e as u32 + 1;
        self.hashes.push(hash);
        self.lo.push(lo);
        self.off.push(self.words.len() as u32);
        self.len.push(window.len() as u16);
        self.words.extend_from_slice(window);
        self.states.push(state.clone());
        if self.states.len() * 2 > self.slots.len() {
            self.grow();
        }
        true
    }

    fn grow(&mut self) {
        let n = self.slots.len() * 2;
        let mask = n - 1;
        let mut slots = vec![0u32; n];
        for (e, &h) in self.hashes.iter().enumerate() {
            let mut i = (h as usize) & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = e as u32 + 1;
        }
        self.slots = slots;
    }
}

/// The set of linearized operations, with hints for the window of the cache key.
struct Linearized {
    words: Vec<u64>,
    /// Every word below `lo` is full.
    lo: usize,
    /// Every word from `hi` on is empty.
    hi: usize,
}

impl Linearized {
    fn new(n: usize) -> Self {
        Linearized {
            words: vec![0; n.div_ceil(64).max(1)],
            lo: 0,
            hi: 0,
        }
    }

    fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
        self.hi = self.hi.max(i / 64 + 1);
        while self.lo < self.words.len() && self.words[self.lo] == u64::MAX {
            self.lo += 1;
        }
    }

    fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
        self.lo = self.lo.min(i / 64);
        while self.hi > 0 && self.words[self.hi - 1] == 0 {
            self.hi -= 1;
        }
    }

    /// (first word, the words up to the last non-empty one).
    fn window(&self) -> (u32, &[u64]) {
        let hi = self.hi.max(self.lo);
        (self.lo as u32, &self.words[self.lo..hi])
    }
}

fn key_hash<S: Hash>(lo: u32, window: &[u64], state: &S) -> u64 {
    let mut h = FxHasher::default();
    lo.hash(&mut h);
    window.hash(&mut h);
    state.hash(&mut h);
    h.finish()
}

/// Checks whether `ops` (with `model` compiled over the same numbering) can be linearized.
pub(crate) fn search<M: Model>(
    model: &mut M,
    ops: &[SearchOp],
    budget: &Budget<'_>,
    stats: &mut SearchStats,
) -> Outcome<M::State> {
    search_in(model, ops, budget, stats, false)
}

/// A linearization of the required operations of `ops` (its last [`PREFIX_KEEP`] operations and their
/// states; `blocked` unset), found by the same search with [`Model::impossible`] not consulted. None when
/// there is none or the budget ran out.
pub(crate) fn linearization<M: Model>(
    model: &mut M,
    ops: &[SearchOp],
    budget: &Budget<'_>,
) -> Option<FoundPrefix<M::State>> {
    match search_in(model, ops, budget, &mut SearchStats::default(), true) {
        Outcome::Witness(p) => Some(p),
        _ => None,
    }
}

fn search_in<M: Model>(
    model: &mut M,
    ops: &[SearchOp],
    budget: &Budget<'_>,
    stats: &mut SearchStats,
    witness: bool,
) -> Outcome<M::State> {
    // The event list: entry 0 is the head; then one call entry per op in the search and one return entry
    // per required op, in history order.
    let n = ops.len();
    let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n); // (position, is return, op)
    let mut required_left = 0usize;
    for (i, op) in ops.iter().enumerate() {
        match op.role {
            Role::Skip => {}
            Role::Required => {
                required_left += 1;
                events.push((op.call, false, i as u32));
                events.push((op.ret.unwrap_or(u64::MAX), true, i as u32));
            }
            Role::Optional => events.push((op.call, false, i as u32)),
        }
    }
    if required_left == 0 && witness {
        return Outcome::Witness(kept_prefix::<M>(&[], &model.init(), NIL));
    }
    if required_left == 0 {
        return Outcome::Linearizable;
    }
    if let Some(r) = model.impossible().filter(|_| !witness) {
        return Outcome::NotLinearizable {
            prefixes: vec![super::witness::before_impossible(model, ops, r, budget)],
        };
    }
    let mut classes = Classes::new(model, ops);
    // Calls before returns at the same position (an op returning at the same instant another is invoked
    // overlaps it).
    events.sort_unstable_by_key(|&(pos, is_ret, op)| (pos, is_ret, op));
    let m = events.len() + 1;
    let mut next = vec![NIL; m];
    let mut prev = vec![NIL; m];
    let mut entry_op = vec![0u32; m];
    let mut is_ret = vec![false; m];
    let mut entry_pos = vec![0u64; m];
    let mut call_entry = vec![NIL; n];
    let mut ret_entry = vec![NIL; n];
    for (k, &(_, r, op)) in events.iter().enumerate() {
        let e = k + 1;
        entry_op[e] = op;
        is_ret[e] = r;
        entry_pos[e] = events[k].0;
        if r {
            ret_entry[op as usize] = e as u32;
        } else {
            call_entry[op as usize] = e as u32;
        }
        prev[e] = (e - 1) as u32;
        next[e - 1] = e as u32;
    }
    let lift = |next: &mut [u32], prev: &mut [u32], e: u32| {
        let (p, nx) = (prev[e as usize], next[e as usize]);
        next[p as usize] = nx;
        if nx != NIL {
            prev[nx as usize] = p;
        }
    };

    let mut lin = Linearized::new(n);
    if witness {
        // The model's hooks know only the roles it gave; operations left out since are shown to them as
        // done, so that none waits for them (an observer left out is no stranded read).
        for (i, _) in ops.iter().enumerate().filter(|(_, o)| o.role == Role::Skip) {
            lin.set(i);
        }
    }
    let mut cache: Cache<M::State> = Cache::new();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut state = model.init();
    let mut prefixes: Vec<FoundPrefix<M::State>> = Vec::new();
    let mut best_depth = 0usize;
    let mut memory_reported = 0usize;
    // Heap bytes of the states in the cache.
    let mut state_heap = 0usize;
    let mut steps_since_check = 0u32;
    // Whether the forced-step scan still has to run at the current node.
    let mut scan = true;
    // Candidates are tried in two passes: required operations first, then optional (indeterminate) ones,
    // which can be linearized at any later point and so are better left for last.
    let mut pass: u8 = 0;
    // At the current node: an operation a pruned candidate would have made impossible.
    let mut pruned_by: Option<u32> = None;
    // At the current node: whether a blind indeterminate candidate was tried (the others are alike).
    let mut blind_tried = false;
    // Lazy indeterminate operations: right after one, only an operation that consumes its result may follow
    // (pure ones are forced steps anyway); such nodes are cached apart, under a flagged `lo`.
    let lazy = model.lazy_optional();
    let mut restricted = false;
    let mut entry = next[HEAD as usize];

    macro_rules! push {
        ($op:expr, $new_state:expr, $forced:expr) => {{
            let op = $op as usize;
            let old = std::mem::replace(&mut state, $new_state);
            stack.push(Frame {
                op: op as u32,
                state: old,
                forced: $forced,
                pass,
                blind_tried,
                restricted,
            });
            pass = 0;
            blind_tried = false;
            restricted = lazy && !$forced && ops[op].role == Role::Optional;
            classes.take(op);
            stats.max_depth = stats.max_depth.max(stack.len());
            lift(&mut next, &mut prev, call_entry[op]);
            if ops[op].role == Role::Required {
                lift(&mut next, &mut prev, ret_entry[op]);
                required_left -= 1;
            }
        }};
    }

    loop {
        if required_left == 0 {
            stats.cache_entries = cache.entries();
            budget.memory.fetch_sub(memory_reported, Ordering::Relaxed);
            if witness {
                return Outcome::Witness(kept_prefix::<M>(&stack, &state, NIL));
            }
            return Outcome::Linearizable;
        }
        steps_since_check += 1;
        if steps_since_check >= 4096 {
            steps_since_check = 0;
            let now_bytes = cache.bytes() + state_heap + model.heap_bytes() + stack.capacity() * 32;
            if now_bytes > memory_reported {
                budget
                    .memory
                    .fetch_add(now_bytes - memory_reported, Ordering::Relaxed);
            } else {
                budget
                    .memory
                    .fetch_sub(memory_reported - now_bytes, Ordering::Relaxed);
            }
            memory_reported = now_bytes;
            let why = if budget.cancel.load(Ordering::Relaxed) {
                Some(GaveUp::Cancelled)
            } else if budget.memory.load(Ordering::Relaxed) > budget.memory_limit {
                Some(GaveUp::MemoryLimit)
            } else if budget.deadline.is_some_and(|d| Instant::now() >= d) {
                Some(GaveUp::TimeLimit)
            } else {
                None
            };
            if let Some(why) = why {
                stats.cache_entries = cache.entries();
                budget.memory.fetch_sub(memory_reported, Ordering::Relaxed);
                return Outcome::GaveUp(why);
            }
        }
        stats.steps += 1;

        if scan {
            scan = false;
            // Forced steps: a candidate that leaves the state as it is.
            let mut e = next[HEAD as usize];
            let mut dead = false;
            while e != NIL && !is_ret[e as usize] {
                let op = entry_op[e as usize] as usize;
                if !model.pure(op) {
                    e = next[e as usize];
                    continue;
                }
                if let Some(s2) = model.step(&state, op) {
                    {
                        lin.set(op);
                        let (lo, w) = lin.window();
                        let key = model.cache_key(&s2, &lin.words);
                        let h = key_hash(lo, w, &key);
                        if cache.insert(h, lo, w, &key) {
                            state_heap += model.state_heap_bytes(&s2);
                            push!(op, s2, true);
                            if required_left == 0 {
                                break;
                            }
                            e = next[HEAD as usize];
                            continue;
                        }
                        // Explored before from here, and it failed: so does this node.
                        lin.clear(op);
                        dead = true;
                        break;
                    }
                }
                e = next[e as usize];
            }
            if required_left == 0 {
                continue;
            }
            entry = if dead { NIL } else { next[HEAD as usize] };
            if dead {
                // Fall through to backtracking below with a dead end that is not a return.
                if backtrack(
                    &mut stack,
                    &mut state,
                    &mut lin,
                    &mut entry,
                    &mut pass,
                    &mut required_left,
                    ops,
                    &call_entry,
                    &ret_entry,
                    &mut next,
                    &mut prev,
                    &mut classes,
                    &mut blind_tried,
                    &mut restricted,
                ) {
                    continue;
                }
                stats.cache_entries = cache.entries();
                budget.memory.fetch_sub(memory_reported, Ordering::Relaxed);
                return Outcome::NotLinearizable { prefixes };
            }
            continue;
        }

        if entry != NIL && !is_ret[entry as usize] {
            let op = entry_op[entry as usize] as usize;
            if (ops[op].role == Role::Optional) != (pass == 1) || !classes.next_of_class(op) {
                entry = next[entry as usize];
                continue;
            }
            if restricted && !model.consumes(op) {
                entry = next[entry as usize];
                continue;
            }
            if pass == 1 && model.blind(op, &lin.words) {
                if blind_tried {
                    entry = next[entry as usize];
                    continue;
                }
                blind_tried = true;
            }
            if let Some(s2) = model.step(&state, op) {
                lin.set(op);
                let culprit = model.unreachable(&state, &s2, op, &lin.words).or_else(|| {
                    let last = model.frozen(&state, &s2, op, &lin.words)?;
                    must_fit(
                        model,
                        &s2,
                        op,
                        ops[last].call,
                        &next,
                        &is_ret,
                        &entry_op,
                        &entry_pos,
                    )
                });
                if let Some(r) = culprit {
                    pruned_by = Some(r as u32);
                } else {
                    let (lo, w) = lin.window();
                    let lo = if lazy && ops[op].role == Role::Optional {
                        lo | RESTRICTED
                    } else {
                        lo
                    };
                    let key = model.cache_key(&s2, &lin.words);
                    let h = key_hash(lo, w, &key);
                    if cache.insert(h, lo, w, &key) {
                        state_heap += model.state_heap_bytes(&s2);
                        push!(op, s2, false);
                        entry = next[HEAD as usize];
                        scan = true;
                        pruned_by = None;
                        continue;
                    }
                }
                lin.clear(op);
            }
            entry = next[entry as usize];
            continue;
        }

        if pass == 0 {
            pass = 1;
            entry = next[HEAD as usize];
            continue;
        }
        // A dead end: the completion of `entry`'s op came and it is not linearized, or no candidate is left.
        let depth = stack.len();
        if depth >= best_depth && entry != NIL {
            if depth > best_depth {
                prefixes.clear();
                best_depth = depth;
            }
            if prefixes.len() < PREFIXES_KEPT {
                // The operation to blame: one that pruning showed can no longer be linearized, else the one
                // whose completion came.
                let blocked = pruned_by.unwrap_or(entry_op[entry as usize]);
                let found = kept_prefix::<M>(&stack, &state, blocked);
                if !prefixes
                    .iter()
                    .any(|p| p.ops == found.ops && p.blocked == blocked)
                {
                    prefixes.push(found);
                }
            }
        }
        pruned_by = None;
        if !backtrack(
            &mut stack,
            &mut state,
            &mut lin,
            &mut entry,
            &mut pass,
            &mut required_left,
            ops,
            &call_entry,
            &ret_entry,
            &mut next,
            &mut prev,
            &mut classes,
            &mut blind_tried,
            &mut restricted,
        ) {
            stats.cache_entries = cache.entries();
            budget.memory.fetch_sub(memory_reported, Ordering::Relaxed);
            return Outcome::NotLinearizable { prefixes };
        }
    }
}

/// With the state frozen at `state` until position `until` (see [`Model::frozen`]): a required operation
/// other than `op` whose completion comes before `until` and that cannot happen in `state` keeping it.
#[allow(clippy::too_many_arguments)]
fn must_fit<M: Model>(
    model: &mut M,
    state: &M::State,
    op: usize,
    until: u64,
    next: &[u32],
    is_ret: &[bool],
    entry_op: &[u32],
    entry_pos: &[u64],
) -> Option<usize> {
    let mut e = next[HEAD as usize];
    while e != NIL && entry_pos[e as usize] < until {
        let x = entry_op[e as usize] as usize;
        if is_ret[e as usize] && x != op && model.step(state, x).as_ref() != Some(state) {
            return Some(x);
        }
        e = next[e as usize];
    }
    None
}

/// Undoes the last choice (and every forced step above it); `entry` becomes the call after the undone one.
/// False when nothing is left to undo.
#[allow(clippy::too_many_arguments)]
fn backtrack<S>(
    stack: &mut Vec<Frame<S>>,
    state: &mut S,
    lin: &mut Linearized,
    entry: &mut u32,
    pass: &mut u8,
    required_left: &mut usize,
    ops: &[SearchOp],
    call_entry: &[u32],
    ret_entry: &[u32],
    next: &mut [u32],
    prev: &mut [u32],
    classes: &mut Classes,
    blind_tried: &mut bool,
    restricted: &mut bool,
) -> bool {
    loop {
        let Some(frame) = stack.pop() else { return false };
        let op = frame.op as usize;
        classes.give_back(op);
        *state = frame.state;
        lin.clear(op);
        if ops[op].role == Role::Required {
            relink(next, prev, ret_entry[op]);
            *required_left += 1;
        }
        relink(next, prev, call_entry[op]);
        if !frame.forced {
            *entry = next[call_entry[op] as usize];
            *pass = frame.pass;
            *blind_tried = frame.blind_tried;
            *restricted = frame.restricted;
            return true;
        }
    }
}

fn relink(next: &mut [u32], prev: &mut [u32], e: u32) {
    let (p, nx) = (prev[e as usize], next[e as usize]);
    next[p as usize] = e;
    if nx != NIL {
        prev[nx as usize] = e;
    }
}
