//! The search's view of time: the doubly linked lists of call and return entries not yet linearized, and
//! the set of linearized operations.

use super::SearchOp;
use crate::model::Role;

pub(super) const NIL: u32 = u32::MAX;
/// The main list's head sentinel.
pub(super) const HEAD: u32 = 0;
/// The optional list's head sentinel.
pub(super) const OPT_HEAD: u32 = 1;

/// Two lists, each in history order. The main one (head [`HEAD`]): one call entry per required operation
/// and one return entry per required operation (calls before returns at the same position: an operation
/// returning at the instant another is invoked overlaps it). The optional one (head [`OPT_HEAD`]): one call
/// entry per optional (indeterminate) operation. They are apart so that the scans of required candidates
/// and of completions never walk over the indeterminate operations still pending, which pile up in long
/// histories (one that never completed stays pending to the end).
#[derive(Clone)]
pub(super) struct Events {
    pub next: Vec<u32>,
    prev: Vec<u32>,
    pub entry_op: Vec<u32>,
    pub is_ret: Vec<bool>,
    pub entry_pos: Vec<u64>,
    pub call_entry: Vec<u32>,
    pub ret_entry: Vec<u32>,
}

impl Events {
    /// The lists of `ops`, and how many of them are required.
    pub(super) fn build(ops: &[SearchOp]) -> (Events, usize) {
        let n = ops.len();
        let mut main: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n); // (position, is return, op)
        let mut optional: Vec<(u64, bool, u32)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match op.role {
                Role::Skip => {}
                Role::Required => {
                    main.push((op.call, false, i as u32));
                    main.push((op.ret.unwrap_or(u64::MAX), true, i as u32));
                }
                Role::Optional => optional.push((op.call, false, i as u32)),
            }
        }
        let required = main.len() / 2;
        main.sort_unstable();
        optional.sort_unstable();
        let m = main.len() + optional.len() + 2;
        let mut ev = Events {
            next: vec![NIL; m],
            prev: vec![NIL; m],
            entry_op: vec![0u32; m],
            is_ret: vec![false; m],
            entry_pos: vec![0u64; m],
            call_entry: vec![NIL; n],
            ret_entry: vec![NIL; n],
        };
        ev.link(HEAD, 2, &main);
        ev.link(OPT_HEAD, 2 + main.len() as u32, &optional);
        (ev, required)
    }

    /// Fills entries `from..` with `events` and chains them after `head`.
    fn link(&mut self, head: u32, from: u32, events: &[(u64, bool, u32)]) {
        let mut last = head;
        for (k, &(pos, r, op)) in events.iter().enumerate() {
            let e = from + k as u32;
            self.entry_op[e as usize] = op;
            self.is_ret[e as usize] = r;
            self.entry_pos[e as usize] = pos;
            if r {
                self.ret_entry[op as usize] = e;
            } else {
                self.call_entry[op as usize] = e;
            }
            self.prev[e as usize] = last;
            self.next[last as usize] = e;
            last = e;
        }
    }

    /// The first entry of the main list not yet linearized.
    #[inline]
    pub(super) fn first(&self) -> u32 {
        self.next[HEAD as usize]
    }

    /// The first optional operation not yet linearized.
    #[inline]
    pub(super) fn first_optional(&self) -> u32 {
        self.next[OPT_HEAD as usize]
    }

    /// The first return entry of the main list (NIL: none left).
    pub(super) fn first_return(&self) -> u32 {
        let mut e = self.first();
        while self.is_call(e) {
            e = self.next[e as usize];
        }
        e
    }

    /// Whether `e` is a call entry (not the end of the list, not a return).
    #[inline]
    pub(super) fn is_call(&self, e: u32) -> bool {
        e != NIL && !self.is_ret[e as usize]
    }

    /// Takes `e` out of the list (its own links stay, for [`Events::relink`]).
    #[inline]
    pub(super) fn lift(&mut self, e: u32) {
        let (p, nx) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = nx;
        if nx != NIL {
            self.prev[nx as usize] = p;
        }
    }

    /// Puts back the last entry lifted.
    #[inline]
    pub(super) fn relink(&mut self, e: u32) {
        let (p, nx) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if nx != NIL {
            self.prev[nx as usize] = e;
        }
    }
}

/// The set of linearized operations, with hints for the window of the cache key.
pub(super) struct Linearized {
    pub words: Vec<u64>,
    /// Every word below `lo` is full.
    lo: usize,
    /// Every word from `hi` on is empty.
    hi: usize,
}

impl Linearized {
    pub(super) fn new(n: usize) -> Self {
        Linearized {
            words: vec![0; n.div_ceil(64).max(1)],
            lo: 0,
            hi: 0,
        }
    }

    #[inline]
    pub(super) fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
        self.hi = self.hi.max(i / 64 + 1);
        while self.lo < self.words.len() && self.words[self.lo] == u64::MAX {
            self.lo += 1;
        }
    }

    #[inline]
    pub(super) fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
        self.lo = self.lo.min(i / 64);
        while self.hi > 0 && self.words[self.hi - 1] == 0 {
            self.hi -= 1;
        }
    }

    /// (first word, the words up to the last non-empty one).
    #[inline]
    pub(super) fn window(&self) -> (u32, &[u64]) {
        let hi = self.hi.max(self.lo);
        (self.lo as u32, &self.words[self.lo..hi])
    }
}
