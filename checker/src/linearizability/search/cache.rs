//! The configurations a search has already explored: a worker's own table ([`Cache`]), or one table shared
//! by every worker of a key ([`Shared`], split in shards behind mutexes). Both are [`Visited`].
//!
//! An entry is a configuration: the linearized set, stored as the words from the first unlinearized
//! operation to the last linearized one (the concurrency window), in one arena with no allocation per
//! entry, and the model state as the model's cache key files it. Only the last [`TAIL`] words of a window are
//! stored in its entry: the words before them are interned once in a table of prefixes, and the entry holds
//! the prefix's number. An indeterminate operation never linearized keeps the window's first word from
//! filling up, so in a long history windows grow to hundreds of words; the words between that operation and
//! the search's frontier change only when an old indeterminate operation is linearized, so a few prefixes
//! serve millions of entries. Exact: two entries are equal only when their prefixes are the same words.

use rustc_hash::FxHasher;
use std::hash::Hasher;
use std::sync::{Mutex, PoisonError};

/// Words of a window kept in its entry (the end, where the search's frontier moves).
const TAIL: usize = 8;
/// The prefix number of a window with no words before its tail.
const NO_PREFIX: u32 = u32::MAX;

/// The distinct prefixes of windows: open addressing, linear probing, words in one arena.
struct Prefixes {
    /// Prefix number + 1, 0 = empty.
    slots: Vec<u32>,
    hashes: Vec<u64>,
    off: Vec<u32>,
    len: Vec<u32>,
    words: Vec<u64>,
}

impl Prefixes {
    fn new() -> Self {
        Prefixes {
            slots: vec![0; 64],
            hashes: Vec::new(),
            off: Vec::new(),
            len: Vec::new(),
            words: Vec::new(),
        }
    }

    fn get(&self, id: u32) -> &[u64] {
        if id == NO_PREFIX {
            return &[];
        }
        let (o, n) = (self.off[id as usize] as usize, self.len[id as usize] as usize);
        &self.words[o..o + n]
    }

    /// The number of `words`, added if new.
    fn intern(&mut self, words: &[u64]) -> u32 {
        if words.is_empty() {
            return NO_PREFIX;
        }
        let mut h = FxHasher::default();
        for &w in words {
            h.write_u64(w);
        }
        let hash = h.finish();
        let mask = self.slots.len() - 1;
        let mut i = (hash as usize) & mask;
        while self.slots[i] != 0 {
            let id = self.slots[i] - 1;
            if self.hashes[id as usize] == hash && self.get(id) == words {
                return id;
            }
            i = (i + 1) & mask;
        }
        let id = self.hashes.len() as u32;
        self.slots[i] = id + 1;
        self.hashes.push(hash);
        self.off.push(self.words.len() as u32);
        self.len.push(words.len() as u32);
        self.words.extend_from_slice(words);
        if self.hashes.len() * 2 > self.slots.len() {
            let n = self.slots.len() * 2;
            let mut slots = vec![0u32; n];
            for (id, &h) in self.hashes.iter().enumerate() {
                let mut i = (h as usize) & (n - 1);
                while slots[i] != 0 {
                    i = (i + 1) & (n - 1);
                }
                slots[i] = id as u32 + 1;
            }
            self.slots = slots;
        }
        id
    }

    fn bytes(&self) -> usize {
        self.slots.capacity() * 4
            + self.hashes.capacity() * 8
            + self.off.capacity() * 4
            + self.len.capacity() * 4
            + self.words.capacity() * 8
    }
}

/// A set of configurations: inserting one that is there already says so.
pub(super) trait Visited<S> {
    /// Inserts (lo, window, state) under `hash`; false when it was already there (explored, or being
    /// explored by another worker).
    fn insert(&mut self, hash: u64, lo: u32, window: &[u64], state: &S) -> bool;
    fn entries(&self) -> usize;
    fn bytes(&self) -> usize;
}

/// One table: open addressing, linear probing.
pub(super) struct Cache<S> {
    /// Entry number + 1, 0 = empty.
    slots: Vec<u32>,
    hashes: Vec<u64>,
    /// Per entry: first word, prefix number, offset into `words` of the tail, number of words in it.
    lo: Vec<u32>,
    prefix: Vec<u32>,
    off: Vec<u32>,
    len: Vec<u8>,
    states: Vec<S>,
    words: Vec<u64>,
    prefixes: Prefixes,
}

impl<S: Eq + Clone> Cache<S> {
    pub(super) fn new() -> Self {
        Cache {
            slots: vec![0; 1024],
            hashes: Vec::new(),
            lo: Vec::new(),
            prefix: Vec::new(),
            off: Vec::new(),
            len: Vec::new(),
            states: Vec::new(),
            words: Vec::new(),
            prefixes: Prefixes::new(),
        }
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

    /// Moves every entry into `shared`.
    pub(super) fn drain_into(self, shared: &Shared<S>) {
        let mut to = shared;
        let mut window = Vec::new();
        for e in 0..self.states.len() {
            let off = self.off[e] as usize;
            window.clear();
            window.extend_from_slice(self.prefixes.get(self.prefix[e]));
            window.extend_from_slice(&self.words[off..off + self.len[e] as usize]);
            to.insert(self.hashes[e], self.lo[e], &window, &self.states[e]);
        }
    }
}

impl<S: Eq + Clone> Visited<S> for Cache<S> {
    fn insert(&mut self, hash: u64, lo: u32, window: &[u64], state: &S) -> bool {
        let (head, tail) = window.split_at(window.len() - window.len().min(TAIL));
        let prefix = self.prefixes.intern(head);
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
                && self.prefix[e] == prefix
                && self.len[e] as usize == tail.len()
                && &self.words[self.off[e] as usize..self.off[e] as usize + tail.len()] == tail
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
        self.prefix.push(prefix);
        self.off.push(self.words.len() as u32);
        self.len.push(tail.len() as u8);
        self.words.extend_from_slice(tail);
        self.states.push(state.clone());
        if self.states.len() * 2 > self.slots.len() {
            self.grow();
        }
        true
    }

    fn entries(&self) -> usize {
        self.states.len()
    }

    fn bytes(&self) -> usize {
        self.slots.capacity() * 4
            + self.hashes.capacity() * 8
            + self.lo.capacity() * 4
            + self.prefix.capacity() * 4
            + self.off.capacity() * 4
            + self.len.capacity()
            + self.states.capacity() * std::mem::size_of::<S>()
            + self.words.capacity() * 8
            + self.prefixes.bytes()
    }
}

/// How many shards a shared table has (a power of two); the top bits of a hash pick one.
const SHARDS: usize = 64;

/// A table shared by the workers of one key: an entry is a configuration some worker explored or is
/// exploring.
pub(super) struct Shared<S> {
    shards: Box<[Mutex<Cache<S>>]>,
}

impl<S: Eq + Clone> Shared<S> {
    pub(super) fn new() -> Self {
        Shared {
            shards: (0..SHARDS).map(|_| Mutex::new(Cache::new())).collect(),
        }
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Cache<S>> {
        let i = (hash >> (64 - SHARDS.trailing_zeros())) as usize;
        // A worker that panicked leaves its shard consistent (insert is all or nothing up to `grow`).
        self.shards[i].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sum(&self, f: impl Fn(&Cache<S>) -> usize) -> usize {
        self.shards
            .iter()
            .map(|s| f(&s.lock().unwrap_or_else(PoisonError::into_inner)))
            .sum()
    }
}

impl<S: Eq + Clone> Visited<S> for &Shared<S> {
    fn insert(&mut self, hash: u64, lo: u32, window: &[u64], state: &S) -> bool {
        self.shard(hash).insert(hash, lo, window, state)
    }

    fn entries(&self) -> usize {
        self.sum(Visited::entries)
    }

    fn bytes(&self) -> usize {
        self.sum(Visited::bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::{Cache, Shared, Visited, TAIL};

    /// Windows longer than the tail, differing only before it, in their tail, or in `lo` or the state: each is
    /// its own entry, and each comes back as known; through a shared table too, and after a drain into one.
    #[test]
    fn windows_that_differ_anywhere_are_distinct_entries() {
        let base: Vec<u64> = (0..3 * TAIL as u64).map(|i| i * 0x9E37_79B9 + 1).collect();
        let mut variants: Vec<(u32, Vec<u64>, u8)> = vec![(3, base.clone(), 0)];
        for at in [0, TAIL, base.len() - TAIL - 1, base.len() - TAIL, base.len() - 1] {
            let mut w = base.clone();
            w[at] ^= 1 << 17;
            variants.push((3, w, 0));
        }
        variants.push((4, base.clone(), 0));
        variants.push((3, base.clone(), 1));
        variants.push((3, base[1..].to_vec(), 0));
        variants.push((3, base[..TAIL - 2].to_vec(), 0));
        // The same hash for all: only the comparison tells them apart.
        let mut cache: Cache<u8> = Cache::new();
        for (lo, w, s) in &variants {
            assert!(cache.insert(7, *lo, w, s), "new: lo {lo} state {s} {w:?}");
        }
        for (lo, w, s) in &variants {
            assert!(!cache.insert(7, *lo, w, s), "known: lo {lo} state {s} {w:?}");
        }
        assert_eq!(cache.entries(), variants.len());
        let shared: Shared<u8> = Shared::new();
        cache.drain_into(&shared);
        let mut to = &shared;
        for (lo, w, s) in &variants {
            assert!(
                !to.insert(7, *lo, w, s),
                "known after the drain: lo {lo} state {s} {w:?}"
            );
        }
        let mut other = base.clone();
        other[1] ^= 1;
        assert!(to.insert(7, 3, &other, &0));
        assert_eq!(to.entries(), variants.len() + 1);
    }
}
