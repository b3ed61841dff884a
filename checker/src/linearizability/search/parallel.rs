//! Parallel search inside one key: more cores help a single hot key, not only many keys.
//!
//! A key's search starts with one worker and its own cache. When it is still undecided after
//! [`Parallel::after`] (half a second by default: joining costs the first worker about a tenth of a
//! second, see `DEFAULT_PARALLEL_AFTER`), and the model can be copied ([`Model::fork`]), its cache becomes one
//! [`Shared`] by every worker, and helpers (one per spare thread of rayon's pool, as rayon tasks that an idle
//! thread picks up) join it through a [`Pool`]: work stealing over subtrees. A worker that waits for work
//! says so; a busy one that has been stuck in a dead region for a while (see `Searcher::donate`) hands over
//! the candidates left at a node of its stack (a [`Task`]: the path to that node, its state and its scan as
//! it stood) and marks that node so that it tries none of them itself. The taker replays the path (from the
//! longest prefix it shares with the path it stands on), takes up the node's scan after the candidate the
//! giver tried last, and never backtracks above that node. Every worker skips every configuration any worker
//! has filed: explored, or being explored. Which node is given away, and when, decides only how the work is
//! shared, never the verdict.
//!
//! Why the verdict stays exact. Every configuration is filed before it is explored, and every candidate of a
//! filed configuration's node is tried by exactly one worker: the one that filed it, or, for those it handed
//! over, the taker of that task (and so on, tasks being handed on). A task is only dropped when the pool is
//! stopped (a linearization found, or the budget gone), so if no worker stopped early, every child of every
//! filed configuration was tried (found filed, pruned, or filed and so on). If the history has a
//! linearization, take the deepest configuration on its path that some worker filed (the root's is): the
//! next one on the path was tried, and either filed or found filed, a deeper one after all; so the search
//! ends complete only when there is none. Hence: `valid` as soon as one worker completes a linearization (a
//! real one: its stack); `invalid` only when every worker is idle, no task is left and none stopped early;
//! `unknown` if one gave up (time, memory, cancel) and none succeeded.

use super::cache::{Cache, Shared, Visited};
use super::{
    Budget, FoundPrefix, GaveUp, Outcome, Pause, Run, SearchOp, SearchStats, Searcher, Task, PREFIXES_KEPT,
};
use crate::model::{Model, Role};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Steps a worker goes without getting deeper than ever before it hands candidates over (see
/// `Searcher::donate`): a stretch of about a hundredth of a second, so that tasks are few and large.
const SPLIT_AFTER: u64 = 1 << 18;

/// How a key's search may use more than one thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parallel {
    /// Workers at most, bounded by the threads of rayon's pool (1: the search stays sequential).
    pub threads: usize,
    /// How long the first worker searches alone before helpers join (zero: they join at once).
    pub after: Duration,
}

/// What one worker ended with: its number, outcome and statistics.
type Finished<S> = (usize, Outcome<S>, SearchStats);

/// Checks whether `ops` (with `model` compiled over the same numbering) can be linearized.
pub(crate) fn search<M: Model>(
    model: &mut M,
    ops: &[SearchOp],
    budget: &Budget<'_>,
    stats: &mut SearchStats,
    par: Parallel,
) -> Outcome<M::State> {
    if !ops.iter().any(|o| o.role == Role::Required) {
        return Outcome::Linearizable;
    }
    if let Some(r) = model.impossible() {
        return Outcome::NotLinearizable {
            prefixes: vec![crate::linearizability::witness::before_impossible(
                model, ops, r, budget,
            )],
        };
    }
    let threads = par.threads.min(rayon::current_num_threads()).max(1);
    let mut first = Searcher::new(model, ops, Cache::new(), 0);
    if threads == 1 || !par.after.is_zero() {
        let pause = if threads > 1 {
            Pause::At(Instant::now() + par.after)
        } else {
            Pause::Never
        };
        if let Run::Done(o) = first.run(budget, None, pause) {
            *stats = first.stats;
            return o;
        }
    }
    let forks: Vec<M> = (1..threads).map_while(|_| first.model().fork()).collect();
    if forks.is_empty() {
        let o = done(first.run(budget, None, Pause::Never));
        *stats = first.stats;
        return o;
    }
    let shared = Shared::new();
    let (mut first, plain) = first.swap_cache(&shared);
    plain.drain_into(&shared);
    first.split_after = SPLIT_AFTER;
    let finished = together(first, forks, ops, budget, &shared, SPLIT_AFTER);
    combine(finished, stats, (&shared).entries())
}

/// The tasks handed over and who waits for one.
struct Queue<S> {
    tasks: VecDeque<Task<S>>,
    /// Workers that have joined, and how many of them wait for a task.
    joined: usize,
    idle: usize,
    /// Tasks taken so far.
    taken: usize,
    /// No task is left and every worker waits (the search is complete), or the pool was stopped.
    over: bool,
}

/// The workers of one key's search: the tasks handed over, and the flags every worker looks at.
pub(super) struct Pool<S> {
    queue: Mutex<Queue<S>>,
    wake: Condvar,
    /// A worker waits and no task is queued for it.
    want: AtomicBool,
    /// A linearization was found or a worker gave up: every worker stops.
    stop: AtomicBool,
}

impl<S> Pool<S> {
    fn new() -> Self {
        Pool {
            queue: Mutex::new(Queue {
                tasks: VecDeque::new(),
                joined: 0,
                idle: 0,
                taken: 0,
                over: false,
            }),
            wake: Condvar::new(),
            want: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<S>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a worker in; false when the search is over already (a helper whose thread came late).
    fn join(&self) -> bool {
        let mut q = self.lock();
        if q.over {
            return false;
        }
        q.joined += 1;
        true
    }

    /// Whether every worker must stop.
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Whether a worker waits for a task.
    pub(super) fn wanted(&self) -> bool {
        self.want.load(Ordering::Relaxed)
    }

    /// Queues a task for a waiting worker.
    pub(super) fn give(&self, task: Task<S>) {
        let mut q = self.lock();
        q.tasks.push_back(task);
        if q.tasks.len() >= q.idle {
            self.want.store(false, Ordering::Relaxed);
        }
        self.wake.notify_one();
    }

    /// The next task for a worker whose own is done; None when the search is over (complete, or stopped).
    fn next(&self) -> Option<Task<S>> {
        let mut q = self.lock();
        q.idle += 1;
        loop {
            if q.over {
                return None;
            }
            if let Some(t) = q.tasks.pop_front() {
                q.idle -= 1;
                q.taken += 1;
                return Some(t);
            }
            if q.idle == q.joined {
                q.over = true;
                self.wake.notify_all();
                return None;
            }
            self.want.store(true, Ordering::Relaxed);
            q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Stops every worker (a linearization found, or a worker gave up).
    fn halt(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.lock().over = true;
        self.wake.notify_all();
    }
}

/// Runs `first` where it stands and one helper per fork, over `shared`, until the search is over.
fn together<'s, 'x, M: Model>(
    mut first: Searcher<'s, M, &'x Shared<M::State>>,
    forks: Vec<M>,
    ops: &'s [SearchOp],
    budget: &Budget<'_>,
    shared: &'x Shared<M::State>,
    split_after: u64,
) -> Vec<Finished<M::State>> {
    let pool: Pool<M::State> = Pool::new();
    pool.join();
    let finished: Mutex<Vec<Finished<M::State>>> = Mutex::new(Vec::new());
    let report = |k: usize, o: Outcome<M::State>, s: SearchStats| {
        finished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((k, o, s));
    };
    rayon::scope(|scope| {
        for (k, mut fork) in forks.into_iter().enumerate() {
            let (pool, report) = (&pool, &report);
            scope.spawn(move |_| {
                // Over already: nothing to help with.
                if !pool.join() {
                    return;
                }
                let mut w = Searcher::new(&mut fork, ops, shared, 0);
                w.share_cache_bytes();
                w.split_after = split_after;
                let o = work(&mut w, budget, pool, false);
                report(k + 1, o, w.stats);
            });
        }
        let o = work(&mut first, budget, &pool, true);
        report(0, o, first.stats);
    });
    let mut finished = finished.into_inner().unwrap_or_else(PoisonError::into_inner);
    finished.sort_by_key(|f| f.0);
    finished
}

/// One worker's share: its search where it stands (`busy`), then task after task, until the pool is over.
/// Not linearizable here means: every task it took is done.
fn work<M: Model, C: Visited<M::State>>(
    w: &mut Searcher<'_, M, C>,
    budget: &Budget<'_>,
    pool: &Pool<M::State>,
    busy: bool,
) -> Outcome<M::State> {
    let mut prefixes: Vec<FoundPrefix<M::State>> = Vec::new();
    if !busy {
        match pool.next() {
            Some(t) => w.take(t),
            None => return stopped_or(pool, prefixes),
        }
    }
    loop {
        match done(w.run(budget, Some(pool), Pause::Never)) {
            Outcome::NotLinearizable { prefixes: p } => {
                merge(&mut prefixes, p);
                match pool.next() {
                    Some(t) => w.take(t),
                    None => return stopped_or(pool, prefixes),
                }
            }
            o => {
                pool.halt();
                return o;
            }
        }
    }
}

/// What a worker whose pool is over ended with: cancelled when it was stopped, else done.
fn stopped_or<S>(pool: &Pool<S>, prefixes: Vec<FoundPrefix<S>>) -> Outcome<S> {
    if pool.stopped() {
        Outcome::GaveUp(GaveUp::Cancelled)
    } else {
        Outcome::NotLinearizable { prefixes }
    }
}

/// For tests: a search of `ops` by `1 + helpers` workers on threads of their own, every helper joined and
/// waiting before the first one takes its first step at the root (so that tasks are handed over even in
/// small histories, and the verdict rests on them), each handing over whenever asked. The outcome and how many tasks were taken.
#[cfg(test)]
pub(super) fn pooled<M: Model>(model: &M, ops: &[SearchOp], helpers: usize) -> (Outcome<M::State>, usize) {
    let (memory, cancel) = (std::sync::atomic::AtomicUsize::new(0), AtomicBool::new(false));
    let budget = Budget {
        deadline: None,
        memory: &memory,
        memory_limit: usize::MAX,
        cancel: &cancel,
    };
    let (shared, pool) = (Shared::new(), Pool::new());
    pool.join();
    let finished: Mutex<Vec<Finished<M::State>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for k in 1..=helpers {
            let mut fork = model.fork().expect("the model forks");
            let (pool, shared, finished, budget) = (&pool, &shared, &finished, &budget);
            pool.join();
            scope.spawn(move || {
                let mut w = Searcher::new(&mut fork, ops, shared, 0);
                w.split_any = true;
                let o = work(&mut w, budget, pool, false);
                finished.lock().unwrap().push((k, o, w.stats));
            });
        }
        while pool.lock().idle < helpers {
            std::thread::yield_now();
        }
        let mut m = model.fork().expect("the model forks");
        let mut w = Searcher::new(&mut m, ops, &shared, 0);
        w.split_any = true;
        let o = work(&mut w, &budget, &pool, true);
        finished.lock().unwrap().push((0, o, w.stats));
    });
    let mut stats = SearchStats::default();
    let o = combine(finished.into_inner().unwrap(), &mut stats, 0);
    let taken = pool.lock().taken;
    (o, taken)
}

/// The outcome of a run with no escalation step (it cannot ask for one).
fn done<S>(r: Run<S>) -> Outcome<S> {
    match r {
        Run::Done(o) => o,
        Run::Escalate => Outcome::GaveUp(GaveUp::Cancelled),
    }
}

/// One outcome from every worker's: valid if one found a linearization, unknown if one gave up, else
/// invalid with the longest prefixes any of them built.
fn combine<S>(finished: Vec<Finished<S>>, stats: &mut SearchStats, entries: usize) -> Outcome<S> {
    *stats = SearchStats {
        steps: finished.iter().map(|f| f.2.steps).sum(),
        cache_entries: entries,
        max_depth: finished.iter().map(|f| f.2.max_depth).max().unwrap_or(0),
    };
    let mut gave_up: Option<GaveUp> = None;
    let mut prefixes: Vec<FoundPrefix<S>> = Vec::new();
    for (_, o, _) in finished {
        match o {
            Outcome::Linearizable | Outcome::Witness(_) => return Outcome::Linearizable,
            // A worker stopped by another's giving up says cancelled: the other's reason is the one.
            Outcome::GaveUp(why) => {
                if !matches!(gave_up, Some(g) if g != GaveUp::Cancelled) {
                    gave_up = Some(why);
                }
            }
            Outcome::NotLinearizable { prefixes: p } => merge(&mut prefixes, p),
        }
    }
    match gave_up {
        Some(why) => Outcome::GaveUp(why),
        None => Outcome::NotLinearizable { prefixes },
    }
}

fn depth<S>(p: &FoundPrefix<S>) -> usize {
    p.omitted + p.ops.len()
}

/// Keeps the longest of `into` and `from` (at most [`PREFIXES_KEPT`], no two alike).
fn merge<S>(into: &mut Vec<FoundPrefix<S>>, from: Vec<FoundPrefix<S>>) {
    for p in from {
        let best = into.first().map_or(0, depth);
        let d = depth(&p);
        if d > best {
            into.clear();
        } else if d < best {
            continue;
        }
        if into.len() < PREFIXES_KEPT && !into.iter().any(|q| q.ops == p.ops && q.blocked == p.blocked) {
            into.push(p);
        }
    }
}
