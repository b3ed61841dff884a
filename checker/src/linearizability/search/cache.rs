//! The configurations a search has already explored: a worker's own table ([`Cache`]), or one table shared
//! by every worker of a key ([`Shared`], split in shards behind mutexes). Both are [`Visited`].
//!
//! An entry is a configuration: the linearized set, stored as the words from the first unlinearized
//! operation to the last linearized one (the concurrency window), in one arena with no allocation per
//! entry, and the model state as the model's cache key files it.

use std::sync::{Mutex, PoisonError};

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
    /// Per entry: first word, offset into `words`, number of words.
    lo: Vec<u32>,
    off: Vec<u32>,
    len: Vec<u16>,
    states: Vec<S>,
    words: Vec<u64>,
}

impl<S: Eq + Clone> Cache<S> {
    pub(super) fn new() -> Self {
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
        for e in 0..self.states.len() {
            let off = self.off[e] as usize;
            let window = &self.words[off..off + self.len[e] as usize];
            to.insert(self.hashes[e], self.lo[e], window, &self.states[e]);
        }
    }
}

impl<S: Eq + Clone> Visited<S> for Cache<S> {
    fn insert(&mut self, hash: u64, lo: u32, window: &[u64], state: &S) -> bool {
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
