//! Parallel search inside one key: more cores help a single hot key, not only many keys.
//!
//! A key's search starts with one worker and its own cache. When it is still undecided after
//! [`Parallel::after`] steps, and the model can be copied ([`Model::fork`]), its cache becomes one
//! [`Shared`] by every worker, and helpers (one per spare thread of rayon's pool, as rayon tasks that an idle
//! thread picks up) start from the root. Worker `k` tries the candidates of each node starting from the
//! `k`-th (see `Searcher::begin_pass`), so the workers go different ways, and each skips every
//! configuration another one has filed: explored, or being explored.
//!
//! Why the verdict stays exact: a worker files a configuration before exploring it and, unless it stops
//! early (a verdict found, the budget), explores every child of it, skipping only children filed already.
//! If the history has a linearization, take the deepest configuration on its path that some worker filed
//! (the root's children are tried by every worker): that worker tries the next one on the path, which is
//! either filed by it or found filed, so a deeper one was filed after all. Hence, when every worker has
//! finished without stopping early, no linearization exists; and any worker that completes one has found
//! a real linearization. The first success stops the others. So the key is `invalid` only when every worker
//! has finished, `valid` as soon as one succeeds, and `unknown` if one gave up and none succeeded.

use super::cache::{Cache, Shared, Visited};
use super::{Budget, FoundPrefix, GaveUp, Outcome, Run, SearchOp, SearchStats, Searcher, PREFIXES_KEPT};
use crate::model::{Model, Role};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// How a key's search may use more than one thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parallel {
    /// Workers at most, bounded by the threads of rayon's pool (1: the search stays sequential).
    pub threads: usize,
    /// Steps the first worker takes alone before helpers join.
    pub after: u64,
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
    let escalate_at = if threads > 1 { par.after } else { u64::MAX };
    let mut first = Searcher::new(model, ops, Cache::new(), 0);
    if escalate_at > 0 {
        if let Run::Done(o) = first.run(budget, None, escalate_at) {
            *stats = first.stats;
            return o;
        }
    }
    let forks: Vec<M> = (1..threads).map_while(|_| first.model().fork()).collect();
    if forks.is_empty() {
        let o = done(first.run(budget, None, u64::MAX));
        *stats = first.stats;
        return o;
    }
    let shared = Shared::new();
    let (first, plain) = first.swap_cache(&shared);
    plain.drain_into(&shared);
    let finished = together(first, forks, ops, budget, &shared);
    combine(finished, stats, (&shared).entries())
}

/// Runs `first` where it stands and one helper per fork from the root, over `shared`, until all are done.
fn together<'s, 'x, M: Model>(
    mut first: Searcher<'s, M, &'x Shared<M::State>>,
    forks: Vec<M>,
    ops: &'s [SearchOp],
    budget: &Budget<'_>,
    shared: &'x Shared<M::State>,
) -> Vec<Finished<M::State>> {
    let stop = AtomicBool::new(false);
    let finished: Mutex<Vec<Finished<M::State>>> = Mutex::new(Vec::new());
    let report = |k: usize, o: Outcome<M::State>, s: SearchStats| {
        if matches!(o, Outcome::Linearizable | Outcome::Witness(_)) {
            stop.store(true, Ordering::Relaxed);
        }
        finished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((k, o, s));
    };
    rayon::scope(|scope| {
        for (k, mut fork) in forks.into_iter().enumerate() {
            let (stop, report) = (&stop, &report);
            scope.spawn(move |_| {
                // Decided already: nothing to help with.
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let mut w = Searcher::new(&mut fork, ops, shared, k + 1);
                w.share_cache_bytes();
                let o = done(w.run(budget, Some(stop), u64::MAX));
                report(k + 1, o, w.stats);
            });
        }
        let o = done(first.run(budget, Some(&stop), u64::MAX));
        report(0, o, first.stats);
    });
    let mut finished = finished.into_inner().unwrap_or_else(PoisonError::into_inner);
    finished.sort_by_key(|f| f.0);
    finished
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
            Outcome::GaveUp(why) => {
                gave_up.get_or_insert(why);
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
