//! Which operations observe a register's value and which can write it: the facts behind the register and
//! cas-register pruning (each exact, never a guess).
//!
//! An operation *observes* a value when it can only happen while the register holds it: an `ok` read of the
//! value, a cas expecting it. A value is *seen* when some operation tells it apart from other values (it is
//! read, a cas expects it, or a failed cas compares with it). From these:
//!
//! - **stranded observers**: when a step moves the register away from `v` while a required observer of `v`
//!   is not yet linearized and no writer of `v` left can come before its completion (every writer invoked
//!   before it completes is linearized; a cas from a value that is gone for good never comes), that observer
//!   can never happen: the branch is dead ([`Observed::stranded`]). With unique values (each read names its
//!   write) this forces most of the order, and an indeterminate write can only land where nobody still
//!   waits for the value it hides; with repeated values, a long-running write of one cannot be counted on
//!   by a read that completes before it begins, and when a required write of another value must come
//!   between (it completes before the observer is invoked), a required writer completing before that write
//!   begins cannot serve the observer either ([`separators`]): a repeated value's writers are a supply
//!   that a wrong early choice can use up, and this finds it at the next step that leaves the value;
//! - **short supply**: a write is linearized at one point, so required observers of `v` whose intervals for
//!   the write they see are disjoint (each from the invoke of the latest required write of another value that
//!   must precede it to its completion) need distinct writes of `v`, and so do two cas that leave `v` (the
//!   register holds `v` again only after another write of it) whatever their intervals; so does an observer
//!   of a value that only cas from `v` write (the cas needs a write of `v` in the same interval). After each
//!   step that enters or leaves a value, the writers of it left (an indeterminate one anywhere after its
//!   invoke, a required one before its completion, a cas from another value no earlier than the next write of
//!   that value, itself bounded the same way a few cas deep, the write that set the register now) are matched
//!   with such needs; when some need is left without a writer the branch is dead
//!   ([`Observed::short_supply`]). A repeated value's indeterminate writes are a supply that a wrong early
//!   choice (an order of required writes that needs one, or one taken for an early read) uses up: this finds
//!   it at that choice, not thousands of steps later where the last one is missing;
//! - **frozen states**: when a step sets `v` while required observers of `v` wait that no writer left can
//!   serve (the same test), the register must hold `v` until the last of them is invoked; every operation
//!   that must be linearized before that (its completion comes first) must fit `v` and keep it, or the
//!   branch is dead ([`Observed::frozen`]; the search walks those completions). An indeterminate write whose
//!   value is read much later can so only land close before its readers;
//! - **awaited indeterminate writes**: under the lazy rule an indeterminate write or cas is linearized only
//!   right before an operation that depends on its result; when no such operation can follow yet (none is
//!   invoked before the first completion still to come), it is not tried there ([`Observed::awaited`]);
//! - **idle indeterminate cas**: a value *matters* when a required operation needs it or compares with it,
//!   or an indeterminate cas needs it to set one that matters; an indeterminate cas from a value that does
//!   not matter is left out (see [`matters`]), and the tables are built again without it, so the values
//!   only such a cas read become unseen;
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

/// How many cas deep [`Observed::next_write`] follows a cas from another value to the writers of that value.
const CHAIN: u32 = 2;

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
    /// Values that matter (see [`Observed::idle`]).
    matters: FxHashSet<(u32, ValueId)>,
    initial: ValueId,
    /// Canonical states only when there is one slot (a state is then one value).
    single_slot: bool,
    /// A required observer overwritten for good before it began (see [`Observed::find_stale_reads`]).
    stale: Option<usize>,
    /// Per operation: its effect, and its invoke position (set by [`Observed::find_stale_reads`]).
    effects: Vec<Effect>,
    calls: Vec<u64>,
    /// Per operation: its completion position (u64::MAX: none).
    rets: Vec<u64>,
    /// Per operation: whether it is required.
    required: Vec<bool>,
    /// Per required observer of `v`: the latest invoke of a required operation that sets another value and
    /// completes before the observer is invoked (0: none). See [`Observed::stranded`].
    sep: Vec<u64>,
    /// Per value (one slot): the intervals in which a write of it must be linearized for a required
    /// observer, sorted by their end (see [`Observed::short_supply`]).
    needs: FxHashMap<ValueId, Vec<Need>>,
    /// Per value (one slot): its writers by role (see [`Supply`]).
    supply: FxHashMap<ValueId, Supply>,
    /// Bytes held, counted once built (the tables never change after).
    bytes: usize,
}

/// Whether [`Observed::stranded`] runs the supply check ([`Observed::short_supply`]), which costs a scan of a
/// value's needs and writers at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SupplyCheck {
    Off,
    /// Only for values some indeterminate operation writes.
    Indeterminate,
    Every,
}

/// The writers of one value, in invoke order: optional ones, required ones, and per required one the latest
/// completion of it and the ones before it (so that those that complete too early to serve a need are skipped
/// by a binary search).
#[derive(Debug, Clone, Default)]
struct Supply {
    optional: Vec<u32>,
    required: Vec<u32>,
    reach: Vec<u64>,
}

/// A required observer `r` waiting for a write of a value `v` to be linearized after position `lo` and before
/// position `hi` (its completion): `lo` is the invoke of the latest required write of another value that must
/// precede `r` (see [`separators`]). Either `r` needs `v` itself (`via` = `v`), or `r` needs `via`, every
/// writer of which is a cas from `v`: the cas that serves `r` comes after that write of another value too,
/// and the write of `v` it needs comes no earlier than that write (which may be the write of `v` itself).
#[derive(Debug, Clone, Copy)]
struct Need {
    r: u32,
    via: ValueId,
    lo: u64,
    hi: u64,
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
            matters: FxHashSet::default(),
            initial,
            single_slot: group.iter().all(|&g| g == 0),
            stale: None,
            effects: effects.to_vec(),
            calls: Vec::new(),
            rets: Vec::new(),
            required: required.to_vec(),
            sep: Vec::new(),
            needs: FxHashMap::default(),
            supply: FxHashMap::default(),
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
        o.matters = matters(effects, required, group);
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

    /// Whether the indeterminate cas `op`, which needs `a`, can be left out of the search: `a` does not
    /// matter (see [`matters`]).
    pub(crate) fn idle(&self, op: usize, a: ValueId) -> bool {
        !self.matters.contains(&(self.group_of[op], a))
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
        self.calls = spans.iter().map(|s| s.0).collect();
        self.rets = spans.iter().map(|s| s.1.unwrap_or(u64::MAX)).collect();
        self.bytes += self.calls.capacity() * 8 + self.rets.capacity() * 8;
        if !self.single_slot {
            return;
        }
        self.sep = separators(effects, required, spans);
        self.bytes += self.sep.capacity() * 8 + self.required.capacity();
        self.build_needs();
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

    /// After `op` moved its slot from `before` to `after`: a required observer that can no longer happen, if
    /// any. One of `before`: it is not linearized, and every writer of `before` invoked before it completes is
    /// (the write it would see must come after this step, before its completion, and none is left that
    /// could), or it is separated from every writer left (see [`Observed::separated`]). Or one that the
    /// writers left of `before` or of `after` cannot serve together with the others ([`Observed::short_supply`];
    /// `limit` is the first completion still to come when `op` was linearized; as `supply` says).
    pub(crate) fn stranded(
        &self,
        before: ValueId,
        after: ValueId,
        op: usize,
        done: &[u64],
        limit: u64,
        supply: SupplyCheck,
    ) -> Option<usize> {
        if before == after {
            return None;
        }
        let g = self.group_of[op];
        if let Some(obs) = self.observers.get(&(g, before)) {
            let m = self.next_write(g, before, after, done);
            let r = self.unserved(obs, m, done, false);
            if r.is_some() {
                return r;
            }
            let r = self.separated(obs, before, after, done);
            if r.is_some() {
                return r;
            }
        }
        let check = |v: ValueId| match supply {
            SupplyCheck::Off => None,
            // Only a value some indeterminate operation writes: with required writers alone each one's
            // interval bounds where it lands, and the rules above see most missing ones.
            SupplyCheck::Indeterminate if self.supply.get(&v).is_none_or(|s| s.optional.is_empty()) => None,
            _ => self.short_supply(v, after, done, limit),
        };
        check(before).or_else(|| check(after))
    }

    /// The register holding `now`, the operations in `done` linearized and every required operation still to
    /// complete completing at or after `limit`: a required observer whose need for a write of `v` (see
    /// [`Need`]) the writers of `v` left cannot meet along with the others, if any. Needs whose intervals are
    /// disjoint need distinct writes (a write is linearized at one point), and so do cas that leave `v` (each
    /// needs the register to hold `v` again): the check takes such needs greedily by their end, their starts
    /// in order too (so that the needs a writer can serve are a run), and matches them with the writers left.
    /// A writer can land only after its invoke (for a cas from another value than `now`, no earlier than the
    /// next write of that value, [`Observed::next_write`]) and before its completion (none for an
    /// indeterminate one); a cas from `a` serving a need of `v` itself also needs a write of `a` (or the
    /// register holding `a`) inside the need's interval: the write of another value that must come first
    /// comes before the cas, so no later than the write of `a` the cas reads. When the register holds `v`,
    /// the write that set it counts too, landed before `limit`. A need of `via` ≠ `v` counts only while the
    /// register does not hold `via`. Each writer serves the needs of one run (the hull of those it can
    /// serve); taking writers by the end of their run, each for the first need of it still unserved, serves
    /// as many needs as can be. Exact: every need taken must be met in any linearization of the rest, by
    /// distinct writers, and each writer is allowed at least the needs it could serve. At most [`SCAN_LIMIT`]
    /// needs and four times as many writers of each kind are looked at; past that, no pruning.
    fn short_supply(&self, v: ValueId, now: ValueId, done: &[u64], limit: u64) -> Option<usize> {
        let mut buf = [(0u64, 0u64, 0u32); SCAN_LIMIT];
        let (k, direct) = self.take_needs(v, now, done, limit, &mut buf);
        if k == 0 {
            return None;
        }
        let taken = &buf[..k];
        // Per writer: (last, first) need it can serve.
        let mut runs = [(0u8, 0u8); 8 * SCAN_LIMIT + 1];
        let mut m = 0;
        let mut push = |mask: u64| {
            if mask != 0 {
                runs[m] = (63 - mask.leading_zeros() as u8, mask.trailing_zeros() as u8);
                m += 1;
            }
        };
        if now == v {
            push(span(taken, 0, limit));
        }
        // Per value a cas among the writers reads: the first invoke of a writer of it left, and the needs a write
        // of it can land in (a few values at most are remembered; the others are looked up each time).
        let mut memo = [(0 as ValueId, 0u64, 0u64); 8];
        let mut memoized = 0;
        let mut about = |a: ValueId| {
            if let Some(&(_, first, mask)) = memo[..memoized].iter().find(|m| m.0 == a) {
                return (first, mask);
            }
            let found = (
                self.next_write(0, a, now, done),
                self.sources(a, now, done, limit, taken),
            );
            if memoized < memo.len() {
                memo[memoized] = (a, found.0, found.1);
                memoized += 1;
            }
            found
        };
        let looked = self.each_writer(v, taken, done, |w| {
            let mask = match self.effects[w] {
                Effect::NeedsSets(a, _) if a != now && a != v => {
                    let (first, sources) = about(a);
                    let mask = span(taken, self.calls[w].max(first), self.deadline(w));
                    if mask & direct != 0 {
                        mask & (sources | !direct)
                    } else {
                        mask
                    }
                }
                Effect::NeedsSets(a, _) if a == now && a != v => {
                    let mask = span(taken, self.calls[w], self.deadline(w));
                    if mask & direct != 0 {
                        mask & (about(a).1 | !direct)
                    } else {
                        mask
                    }
                }
                _ => span(taken, self.landing(w, now, done), self.deadline(w)),
            };
            push(mask);
        });
        if !looked {
            return None;
        }
        let runs = &mut runs[..m];
        runs.sort_unstable();
        let mut unserved: u64 = if k == 64 { u64::MAX } else { (1 << k) - 1 };
        for &(last, first) in runs.iter() {
            let free = unserved >> first;
            if free != 0 {
                let i = first as u32 + free.trailing_zeros();
                if i <= last as u32 {
                    unserved &= !(1u64 << i);
                }
            }
        }
        (unserved != 0).then(|| taken[unserved.trailing_zeros() as usize].2 as usize)
    }

    /// The needs of [`Observed::short_supply`] it takes for `v` (pairwise disjoint or both cas leaving `v`, by
    /// their end and start) into `buf`:
    /// how many, and which of them are needs of `v` itself (a bit each).
    fn take_needs(
        &self,
        v: ValueId,
        now: ValueId,
        done: &[u64],
        limit: u64,
        buf: &mut [(u64, u64, u32); SCAN_LIMIT],
    ) -> (usize, u64) {
        let Some(needs) = self.needs.get(&v) else {
            return (0, 0);
        };
        let start = needs.partition_point(|n| n.hi < limit);
        let (mut k, mut direct) = (0, 0u64);
        // The last end of a need taken, of one that is not a cas leaving `v`, and the last start.
        let (mut end, mut end_reader, mut last_lo) = (0u64, 0u64, 0u64);
        for n in needs[start..].iter().take(4 * SCAN_LIMIT) {
            if k == SCAN_LIMIT {
                break;
            }
            if is_done(done, n.r as usize) || (n.via != v && n.via == now) {
                continue;
            }
            let leaves = self.leaves(n.r as usize, v);
            if n.lo < end && !(leaves && n.lo >= end_reader && n.lo >= last_lo) {
                continue;
            }
            buf[k] = (n.lo, n.hi, n.r);
            if n.via == v {
                direct |= 1 << k;
            }
            k += 1;
            end = n.hi;
            last_lo = n.lo;
            if !leaves {
                end_reader = n.hi;
            }
        }
        (k, direct)
    }

    /// Whether `r` is a cas from `v` to another value: it leaves `v`, so another observer that does too needs
    /// another write of `v`, even when their intervals overlap.
    fn leaves(&self, r: usize, v: ValueId) -> bool {
        matches!(self.effects[r], Effect::NeedsSets(a, b) if a == v && b != v)
    }

    /// Calls `f` with every writer of `v` not in `done` invoked before the last need taken ends and, if
    /// required, completing after the first one begins. False when there were too many to look at.
    fn each_writer(
        &self,
        v: ValueId,
        taken: &[(u64, u64, u32)],
        done: &[u64],
        mut f: impl FnMut(usize),
    ) -> bool {
        let Some(supply) = self.supply.get(&v) else {
            return true;
        };
        let (first_lo, last_end) = (taken[0].0, taken[taken.len() - 1].1);
        let early = |w: &&u32| self.calls[**w as usize] < last_end;
        let from = supply.reach.partition_point(|&r| r <= first_lo);
        let mut scanned = 0;
        for list in [&supply.optional[..], &supply.required[from..]] {
            for &w in list.iter().take_while(early) {
                let w = w as usize;
                scanned += 1;
                if scanned > 8 * SCAN_LIMIT {
                    return false;
                }
                if !is_done(done, w) && self.deadline(w) > first_lo {
                    f(w);
                }
            }
        }
        true
    }

    /// The needs taken (a bit each) that a write of `a` left, or the register holding `a` now, could land
    /// inside; all of them when there are too many writers to look at.
    fn sources(&self, a: ValueId, now: ValueId, done: &[u64], limit: u64, taken: &[(u64, u64, u32)]) -> u64 {
        let mut mask = if a == now { span(taken, 0, limit) } else { 0 };
        let looked = self.each_writer(a, taken, done, |w| {
            mask |= span(taken, self.calls[w], self.deadline(w));
        });
        if looked {
            mask
        } else {
            u64::MAX
        }
    }

    /// The position before which `w` must be linearized, if at all: its completion if it is required, none
    /// (u64::MAX) if it is indeterminate.
    fn deadline(&self, w: usize) -> u64 {
        if self.required[w] {
            self.rets[w]
        } else {
            u64::MAX
        }
    }

    /// The earliest position the writer `w` can be linearized at, the register holding `now` and the
    /// operations in `done` linearized (u64::MAX: never): its invoke, or for a cas from another value, no
    /// earlier than the next write of that value ([`Observed::next_write`]).
    fn landing(&self, w: usize, now: ValueId, done: &[u64]) -> u64 {
        match self.effects[w] {
            Effect::NeedsSets(a, _) if a != now => self.calls[w].max(self.next_write(0, a, now, done)),
            _ => self.calls[w],
        }
    }

    /// A required observer `r` of `v` (not in `done`, the register no longer holding `v`) that a required
    /// operation `x` setting another value must precede (`x` completes before `r` is invoked), and that no
    /// writer of `v` left can serve: the write `r` sees comes after `x`, so after `x` is invoked, and before
    /// `r` completes; a required writer completing before `x` is invoked cannot (at most [`SCAN_LIMIT`]
    /// observers and writers looked at).
    fn separated(&self, obs: &[u32], v: ValueId, now: ValueId, done: &[u64]) -> Option<usize> {
        let ws = self.writers.get(&(0, v)).map(Vec::as_slice).unwrap_or(&[]);
        if self.sep.is_empty() || ws.len() > SCAN_LIMIT {
            return None;
        }
        let usable = |w: usize, r: usize| {
            self.landing(w, now, done) < self.rets[r] && (!self.required[w] || self.rets[w] > self.sep[r])
        };
        obs.iter()
            .map(|&r| r as usize)
            .filter(|&r| !is_done(done, r) && self.sep[r] > 0)
            .take(SCAN_LIMIT)
            .find(|&r| {
                !ws.iter()
                    .map(|&w| w as usize)
                    .any(|w| !is_done(done, w) && usable(w, r))
            })
    }

    /// After `op` moved its slot from `before` to `after`, when required observers of `after` wait that no
    /// writer of `after` left can serve (each is invoked after the observer completes, see
    /// [`Observed::stranded`]): the state cannot change until every one of them is linearized, so until the
    /// last of them is invoked. Returns that observer (ops are numbered in invoke order).
    pub(crate) fn frozen(&self, before: ValueId, after: ValueId, op: usize, done: &[u64]) -> Option<usize> {
        if before == after {
            return None;
        }
        let g = self.group_of[op];
        let obs = self.observers.get(&(g, after))?;
        let m = self.next_write(g, after, after, done);
        self.unserved(obs, m, done, true)
    }

    /// A lower bound on where the next write of `v` on slot `g` can be linearized, the register holding `now`
    /// and the operations in `done` linearized (u64::MAX: nowhere). A writer not in `done` cannot come before
    /// its invoke; a cas from another value than `now` not before the next write of that value (bounded the
    /// same way, [`CHAIN`] cas deep; past that, not before a writer of it left is invoked; never, when none is
    /// left). Writers are numbered in invoke order; past [`SCAN_LIMIT`] ones looked at, the next one's invoke
    /// bounds the rest.
    fn next_write(&self, g: u32, v: ValueId, now: ValueId, done: &[u64]) -> u64 {
        self.next_write_within(g, v, now, done, CHAIN)
    }

    fn next_write_within(&self, g: u32, v: ValueId, now: ValueId, done: &[u64], depth: u32) -> u64 {
        let Some(ws) = self.writers.get(&(g, v)) else {
            return u64::MAX;
        };
        let mut best = u64::MAX;
        for (scanned, &w) in ws.iter().enumerate() {
            let call = self.calls[w as usize];
            if call >= best || scanned >= SCAN_LIMIT {
                return best.min(call);
            }
            if is_done(done, w as usize) {
                continue;
            }
            let at = match self.effects[w as usize] {
                Effect::NeedsSets(a, _) if a != now && depth > 0 => {
                    call.max(self.next_write_within(g, a, now, done, depth - 1))
                }
                Effect::NeedsSets(a, _) if a != now => call.max(self.first_writer(g, a, done)),
                _ => call,
            };
            best = best.min(at);
        }
        best
    }

    /// The invoke position of the first writer of `v` on slot `g` not in `done` (u64::MAX: none; past
    /// [`SCAN_LIMIT`] done ones, the next one's).
    fn first_writer(&self, g: u32, v: ValueId, done: &[u64]) -> u64 {
        let Some(ws) = self.writers.get(&(g, v)) else {
            return u64::MAX;
        };
        ws.iter()
            .enumerate()
            .find(|&(k, &w)| k >= SCAN_LIMIT || !is_done(done, w as usize))
            .map_or(u64::MAX, |(_, &w)| self.calls[w as usize])
    }

    /// Observers in `obs` not in `done` that complete at or before position `m`: the first invoked first, or
    /// the last invoked first when `last` (at most [`SCAN_LIMIT`] not linearized ones looked at, and four
    /// times as many in all).
    fn unserved(&self, obs: &[u32], m: u64, done: &[u64], last: bool) -> Option<usize> {
        let end = obs.partition_point(|&r| self.calls[r as usize] < m);
        let pick = |it: &mut dyn Iterator<Item = &u32>| {
            it.take(4 * SCAN_LIMIT)
                .map(|&r| r as usize)
                .filter(|&r| !is_done(done, r))
                .take(SCAN_LIMIT)
                .find(|&r| self.rets[r] <= m)
        };
        if last {
            pick(&mut obs[..end].iter().rev())
        } else {
            pick(&mut obs[..end].iter())
        }
    }

    /// Whether the indeterminate `op`, which sets `v` in state `now`, could be followed at once by an operation
    /// that depends on its result ([`super::Model::awaited`]): one not in `done`, invoked at or before
    /// `limit`, that needs `v` (a read of it, a cas expecting it), or a failed cas comparing with `now` (it
    /// cannot happen in `now`, it can after `op`). True when that is not known (a list too long to scan).
    pub(crate) fn awaited(&self, op: usize, v: ValueId, now: ValueId, done: &[u64], limit: u64) -> bool {
        if !self.single_slot || self.calls.is_empty() {
            return true;
        }
        let needs_v =
            |r: usize| matches!(self.effects[r], Effect::Needs(x) | Effect::NeedsSets(x, _) if x == v);
        let refutes_now = |r: usize| v != now && self.effects[r] == Effect::NeedsNot(now);
        self.any_pending(v, op, done, limit, needs_v) || self.any_pending(now, op, done, limit, refutes_now)
    }

    /// Whether an operation of `seen_by[v]` other than `op`, not in `done`, invoked at or before `limit`,
    /// passes `test`; true when more than [`SCAN_LIMIT`] of them would have to be looked at.
    fn any_pending(
        &self,
        v: ValueId,
        op: usize,
        done: &[u64],
        limit: u64,
        test: impl Fn(usize) -> bool,
    ) -> bool {
        let Some(by) = self.seen_by.get(&(0, v)) else {
            return false;
        };
        // Numbered in invoke order: the ones invoked by `limit` come first; the latest are likeliest pending.
        let end = by.partition_point(|&r| self.calls[r as usize] <= limit);
        let mut scanned = 0;
        for &r in by[..end].iter().rev() {
            let r = r as usize;
            if r == op || is_done(done, r) {
                continue;
            }
            if test(r) {
                return true;
            }
            scanned += 1;
            if scanned > SCAN_LIMIT {
                return true;
            }
        }
        false
    }

    /// The tables of [`Observed::short_supply`] (one slot): each required observer's need of the value it
    /// needs, and the same need of `v` when every writer of that value is a cas from `v`.
    fn build_needs(&mut self) {
        for (&(_, v), ws) in &self.writers {
            let (required, optional): (Vec<u32>, Vec<u32>) =
                ws.iter().partition(|&&w| self.required[w as usize]);
            let reach: Vec<u64> = required
                .iter()
                .scan(0u64, |m, &w| {
                    *m = (*m).max(self.rets[w as usize]);
                    Some(*m)
                })
                .collect();
            self.bytes += (required.capacity() + optional.capacity()) * 4 + reach.capacity() * 8 + 96;
            self.supply.insert(
                v,
                Supply {
                    optional,
                    required,
                    reach,
                },
            );
        }
        for (&(_, u), obs) in &self.observers {
            let ws = self.writers.get(&(0, u)).map(Vec::as_slice).unwrap_or(&[]);
            let from = match ws.first().map(|&w| self.effects[w as usize]) {
                Some(Effect::NeedsSets(a, _))
                    if a != u
                        && ws.iter().all(
                            |&w| matches!(self.effects[w as usize], Effect::NeedsSets(b, _) if b == a),
                        ) =>
                {
                    Some(a)
                }
                _ => None,
            };
            for &r in obs {
                let need = Need {
                    r,
                    via: u,
                    lo: self.sep[r as usize],
                    hi: self.rets[r as usize],
                };
                self.needs.entry(u).or_default().push(need);
                if let Some(a) = from {
                    self.needs.entry(a).or_default().push(need);
                }
            }
        }
        for list in self.needs.values_mut() {
            list.sort_unstable_by_key(|n| (n.hi, n.r));
            self.bytes += list.capacity() * std::mem::size_of::<Need>() + 48;
        }
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

/// Per required observer of a value `v` (one slot): the latest invoke of a required operation that sets a
/// value other than `v` and completes before the observer is invoked (0: none). Setters are taken in order
/// of completion, keeping the latest-invoked one and the latest-invoked one of another value.
fn separators(effects: &[Effect], required: &[bool], spans: &[(u64, Option<u64>)]) -> Vec<u64> {
    let mut setters: Vec<(u64, u64, ValueId)> = Vec::new(); // (completion, invoke, value)
    for (i, e) in effects.iter().enumerate() {
        if let (Effect::Sets(u) | Effect::NeedsSets(_, u), true, Some(r)) = (*e, required[i], spans[i].1) {
            setters.push((r, spans[i].0, u));
        }
    }
    setters.sort_unstable();
    let mut order: Vec<usize> = (0..effects.len()).collect();
    order.sort_by_key(|&i| spans[i].0);
    let mut sep = vec![0u64; effects.len()];
    // The latest-invoked setter so far, and the latest-invoked one of another value.
    let mut best: Option<(u64, ValueId)> = None;
    let mut other: Option<(u64, ValueId)> = None;
    let mut next = 0;
    for i in order {
        let (Effect::Needs(v) | Effect::NeedsSets(v, _)) = effects[i] else {
            continue;
        };
        while next < setters.len() && setters[next].0 < spans[i].0 {
            let (_, call, u) = setters[next];
            next += 1;
            match best {
                Some((c, b)) if c >= call => {
                    if b != u && other.is_none_or(|(c2, _)| c2 < call) {
                        other = Some((call, u));
                    }
                }
                Some((c, b)) => {
                    if b != u {
                        other = Some((c, b));
                    }
                    best = Some((call, u));
                }
                None => best = Some((call, u)),
            }
        }
        if required[i] {
            sep[i] = match (best, other) {
                (Some((c, b)), _) if b != v => c,
                (_, Some((c, _))) => c,
                _ => 0,
            };
        }
    }
    sep
}

/// The values that matter on each slot: those a required operation needs or compares with, and those an
/// indeterminate cas needs in order to set one that matters. Every required operation behaves the same on two
/// values that do not matter (it needs neither, and a failed cas passes on both), so an indeterminate cas
/// that needs one is never needed: in a linearization using it the register holds values that do not matter
/// from before it until a write ends the stretch (a required cas needs a value that matters, and an
/// indeterminate one that needs a value that does not matter sets one too); leaving out every indeterminate
/// cas of the stretch changes no other operation's outcome, only which of those values the register holds
/// ([`Observed::idle`]).
fn matters(effects: &[Effect], required: &[bool], group: &[u32]) -> FxHashSet<(u32, ValueId)> {
    let mut set: FxHashSet<(u32, ValueId)> = FxHashSet::default();
    // Per (slot, new value): the values indeterminate cas need to set it.
    let mut sources: FxHashMap<(u32, ValueId), Vec<ValueId>> = FxHashMap::default();
    let mut queue: Vec<(u32, ValueId)> = Vec::new();
    for (i, e) in effects.iter().enumerate() {
        let g = group[i];
        match (*e, required[i]) {
            (Effect::Needs(v) | Effect::NeedsNot(v) | Effect::NeedsSets(v, _), true) => queue.push((g, v)),
            (Effect::NeedsSets(a, b), false) => sources.entry((g, b)).or_default().push(a),
            _ => {}
        }
    }
    while let Some((g, v)) = queue.pop() {
        if set.insert((g, v)) {
            if let Some(from) = sources.get(&(g, v)) {
                queue.extend(from.iter().map(|&a| (g, a)));
            }
        }
    }
    set
}

/// The needs taken (pairwise disjoint, by their end; a bit each) whose interval meets the open interval from
/// `from` to `to`.
fn span(taken: &[(u64, u64, u32)], from: u64, to: u64) -> u64 {
    let first = taken.partition_point(|t| t.1 <= from);
    let past = taken.partition_point(|t| t.0 < to);
    if first >= past {
        return 0;
    }
    let below = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    below(past) & !below(first)
}

fn is_done(done: &[u64], i: usize) -> bool {
    done[i / 64] >> (i % 64) & 1 == 1
}
