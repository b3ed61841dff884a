//! Which operations observe a register's value and which can write it: the facts behind the register and
//! cas-register pruning (each exact, never a guess).
//!
//! An operation *observes* a value when it can only happen while the register holds it: an `ok` read of the
//! value, a cas expecting it. A value is *seen* when some operation tells it apart from other values (it is
//! read, a cas expects it, or a failed cas compares with it). From these:
//!
//! - **stranded observers**: when a step moves the register away from `v` while a required observer of `v`
//!   is not yet linearized and every writer of `v` already is, that observer can never happen: the branch
//!   is dead ([`Observed::stranded`]). With unique values (each read names its write) this forces most of
//!   the order, and an indeterminate write can only land where nobody still waits for the value it hides;
//! - **frozen states**: when a step sets `v` while required observers of `v` wait and nothing left can
//!   write `v` again, the register must hold `v` until the last of them is invoked; every operation that
//!   must be linearized before that (its completion comes first) must fit `v` and keep it, or the branch is
//!   dead ([`Observed::frozen`]; the search walks those completions). An indeterminate write whose value is
//!   read much later can so only land close before its readers;
//! - **impossible observers**: a required observer of a value that nothing writes and that is not the initial
//!   value can never happen, nor one whose value was overwritten for good before it began: every writer
//!   completed, then another value was written and completed, then the observer was invoked
//!   ([`Observed::impossible`], [`Observed::find_stale_reads`]);
//! - **unseen values are one value**: every operation behaves the same on two unseen values, so the search's
//!   cache files states under [`Observed::canonical`]; once every operation that tells a value apart is
//!   linearized, the value is unseen from then on, and indeterminate writes of such values are all alike
//!   ([`Observed::blind_write`]: the search tries one of them at a time);
//! - **useless indeterminate writes**: when no failed cas compares values on a key, an indeterminate write
//!   (or cas) of an unseen value is never needed: in a linearization that uses it, only a write can follow it
//!   (reads and cas need a seen value), and that write overwrites it, so dropping it keeps the linearization
//!   ([`Observed::useless`]).

use super::values::ValueId;
use rustc_hash::{FxHashMap, FxHashSet};

/// The canonical id of every unseen value (see the module docs).
pub(crate) const UNSEEN: ValueId = ValueId::MAX;

/// Longer lists are not scanned at each step (a value written or read very often): no pruning there.
const SCAN_LIMIT: usize = 64;

/// What one operation does to the value, as far as observation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Only happens while the register holds this value (a read, the comparison of a successful cas).
    Needs(ValueId),
    /// Only happens while the register does not hold this value (a failed cas).
    NeedsNot(ValueId),
    /// Sets the value (a write; a cas sets `new` after needing `expected`).
    Sets(ValueId),
    /// Both: a cas.
    NeedsSets(ValueId, ValueId),
    /// Nothing to track.
    None,
}

/// Observers and writers per (key slot, value).
#[derive(Clone)]
pub(crate) struct Observed {
    group_of: Vec<u32>,
    /// Required operations that need the value.
    observers: FxHashMap<(u32, ValueId), Vec<u32>>,
    /// Operations (required or optional) that set it.
    writers: FxHashMap<(u32, ValueId), Vec<u32>>,
    /// Every operation (any role) that tells the value apart from others: reads of it, cas expecting it,
    /// failed cas comparing with it. A value without one is unseen.
    seen_by: FxHashMap<(u32, ValueId), Vec<u32>>,
    /// Slots with a failed cas (a `NeedsNot`).
    compares: FxHashSet<u32>,
    initial: ValueId,
    /// Canonical states only when there is one slot (a state is then one value).
    single_slot: bool,
    /// A required observer overwritten for good before it began (see [`Observed::find_stale_reads`]).
    stale: Option<usize>,
    /// Bytes held, counted once built (the tables never change after).
    bytes: usize,
}

impl Observed {
    /// Builds the tables from each operation's effect, whether it is required, and its slot.
    pub(crate) fn build(effects: &[Effect], required: &[bool], group: &[u32], initial: ValueId) -> Observed {
        let mut o = Observed {
            group_of: group.to_vec(),
            observers: FxHashMap::default(),
            writers: FxHashMap::default(),
            seen_by: FxHashMap::default(),
            compares: FxHashSet::default(),
            initial,
            single_slot: group.iter().all(|&g| g == 0),
            stale: None,
            bytes: 0,
        };
        for (i, e) in effects.iter().enumerate() {
            let g = group[i];
            let (needs, sets) = match *e {
                Effect::Needs(v) => (Some(v), None),
                Effect::Sets(v) => (None, Some(v)),
                Effect::NeedsSets(a, b) => (Some(a), Some(b)),
                Effect::NeedsNot(v) => {
                    o.seen_by.entry((g, v)).or_default().push(i as u32);
                    o.compares.insert(g);
                    (None, None)
                }
                Effect::None => (None, None),
            };
            if let Some(v) = needs {
                o.seen_by.entry((g, v)).or_default().push(i as u32);
                if required[i] {
                    o.observers.entry((g, v)).or_default().push(i as u32);
                }
            }
            if let Some(v) = sets {
                o.writers.entry((g, v)).or_default().push(i as u32);
            }
        }
        o.bytes = o.count_bytes();
        o
    }

    /// The value as the cache files it once the operations in `done` are linearized: a value that no
    /// operation left can tell apart is [`UNSEEN`].
    pub(crate) fn canonical(&self, v: ValueId, done: &[u64]) -> ValueId {
        if self.single_slot && self.blind(0, v, done) {
            UNSEEN
        } else {
            v
        }
    }

    /// Whether no operation left (not in `done`) tells `v` apart on slot `g`.
    fn blind(&self, g: u32, v: ValueId, done: &[u64]) -> bool {
        match self.seen_by.get(&(g, v)) {
            None => true,
            Some(by) => by.len() <= SCAN_LIMIT && by.iter().all(|&r| is_done(done, r as usize)),
        }
    }

    /// Whether the indeterminate write `op` of `v` is, once `done` is linearized, like every other such
    /// write: no operation left tells its value apart (see the search's symmetry rule).
    pub(crate) fn blind_write(&self, op: usize, v: ValueId, done: &[u64]) -> bool {
        self.single_slot && self.blind(self.group_of[op], v, done)
    }

    /// Whether every operation is on one slot (the history was split by key).
    pub(crate) fn single_slot(&self) -> bool {
        self.single_slot
    }

    /// Whether the indeterminate operation `op`, which sets `v`, can be left out of the search.
    pub(crate) fn useless(&self, op: usize, v: ValueId) -> bool {
        let g = self.group_of[op];
        !self.compares.contains(&g) && !self.seen_by.contains_key(&(g, v))
    }

    /// Two indeterminate operations with the same class do the same thing (see the search's symmetry rule):
    /// a class for one that sets `v` (after needing `expected`), when there is one slot.
    pub(crate) fn class(&self, expected: Option<ValueId>, v: ValueId) -> Option<u64> {
        if !self.single_slot {
            return None;
        }
        let v = if self.seen_by.contains_key(&(0, v)) {
            v
        } else {
            UNSEEN
        } as u64;
        Some(match expected {
            None => v,
            Some(a) => (1 << 63) | ((a as u64) << 32) | v,
        })
    }

    /// A required observer that no linearization can reach: it needs a value that nothing writes and that
    /// is not the initial one, or one overwritten for good before it began.
    pub(crate) fn impossible(&self) -> Option<usize> {
        self.observers
            .iter()
            .filter(|((g, v), _)| *v != self.initial && !self.writers.contains_key(&(*g, *v)))
            .filter_map(|(_, obs)| obs.first().copied())
            .min()
            .map(|r| r as usize)
            .or(self.stale)
    }

    /// Real-time staleness (one slot only): a required observer `r` of `v` whose every writer is required
    /// and completed by `T`, while a required operation that sets another value was invoked after `T` and
    /// completed before `r` was invoked. In any linearization that operation comes after every writer of
    /// `v` and before `r`, and nothing can write `v` again: `r` cannot happen. `spans` are each operation's
    /// (invoke, completion) positions; operations are numbered in invoke order.
    pub(crate) fn find_stale_reads(
        &mut self,
        effects: &[Effect],
        required: &[bool],
        spans: &[(u64, Option<u64>)],
    ) {
        if !self.single_slot {
            return;
        }
        // Per operation i: the earliest completion of a required state-changing operation numbered i or more.
        let mut min_ret = vec![u64::MAX; effects.len() + 1];
        for i in (0..effects.len()).rev() {
            let sets = matches!(effects[i], Effect::Sets(_) | Effect::NeedsSets(..));
            let ret = match (sets && required[i], spans[i].1) {
                (true, Some(r)) => r,
                _ => u64::MAX,
            };
            min_ret[i] = min_ret[i + 1].min(ret);
        }
        let mut found: Option<usize> = None;
        for ((g, v), obs) in &self.observers {
            let writers = self.writers.get(&(*g, *v)).map(Vec::as_slice).unwrap_or(&[]);
            if writers.is_empty() && *v != self.initial {
                continue;
            }
            // The last completion of a writer; every writer must have one.
            let mut last = 0u64;
            let mut bounded = true;
            for &w in writers {
                match (required[w as usize], spans[w as usize].1) {
                    (true, Some(r)) => last = last.max(r),
                    _ => bounded = false,
                }
            }
            if !bounded {
                continue;
            }
            let after = spans.partition_point(|s| s.0 <= last);
            let overwritten_by = min_ret[after];
            if let Some(&r) = obs.iter().find(|&&r| overwritten_by < spans[r as usize].0) {
                found = Some(found.map_or(r as usize, |f| f.min(r as usize)));
            }
        }
        self.stale = found;
    }

    /// After `op` moved its slot from `before` to `after`: a required observer of `before` that can no longer
    /// happen (not linearized, and every writer of `before` is), if any.
    pub(crate) fn stranded(&self, before: ValueId, after: ValueId, op: usize, done: &[u64]) -> Option<usize> {
        if before == after {
            return None;
        }
        let g = self.group_of[op];
        let obs = self.observers.get(&(g, before))?;
        if obs.len() > SCAN_LIMIT {
            return None;
        }
        let waiting = obs.iter().find(|&&r| !is_done(done, r as usize))?;
        let none_left = match self.writers.get(&(g, before)) {
            None => true,
            Some(ws) => ws.len() <= SCAN_LIMIT && ws.iter().all(|&w| is_done(done, w as usize)),
        };
        none_left.then_some(*waiting as usize)
    }

    /// After `op` moved its slot from `before` to `after`, when required observers of `after` wait and
    /// nothing left can write `after` again: the state cannot change until every one of them is linearized,
    /// so until the last of them is invoked. Returns that last observer (ops are numbered in invoke order).
    pub(crate) fn frozen(&self, before: ValueId, after: ValueId, op: usize, done: &[u64]) -> Option<usize> {
        if before == after {
            return None;
        }
        let g = self.group_of[op];
        let obs = self.observers.get(&(g, after))?;
        let writers = self.writers.get(&(g, after))?;
        if obs.len() > SCAN_LIMIT || writers.len() > SCAN_LIMIT {
            return None;
        }
        if !writers.iter().all(|&w| is_done(done, w as usize)) {
            return None;
        }
        obs.iter()
            .rev()
            .find(|&&r| !is_done(done, r as usize))
            .map(|&r| r as usize)
    }

    /// Bytes held (for the memory bound).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes
    }

    fn count_bytes(&self) -> usize {
        let lists: usize = self
            .observers
            .values()
            .chain(self.writers.values())
            .map(|l| l.capacity() * 4 + 48)
            .sum();
        let seen: usize = self.seen_by.values().map(|l| l.capacity() * 4 + 48).sum();
        lists + seen + self.group_of.capacity() * 4
    }
}

fn is_done(done: &[u64], i: usize) -> bool {
    done[i / 64] >> (i % 64) & 1 == 1
}
