//! Is a history linearizable for a model?
//!
//! The operations are split by key (P-compositionality: a history is linearizable if and only if each
//! key's sub-history is) unless [`Options::partition`] is false, and the keys are searched in parallel on
//! all cores, largest first. Each key is decided by the search in [`search`] (Wing & Gong / Lowe with a
//! cache, forced steps and model pruning); a register key still searching after half a second takes the
//! threads other keys leave idle (work stealing over its subtrees, `search/parallel.rs`). A time limit, a
//! memory bound and, unless every key is wanted, the first invalid key stop the other searches: their keys
//! come back `unknown` with the reason.

mod search;
mod witness;

use crate::history::Operation;
use crate::model::{
    Compiled, FifoQueueModel, Keyed, Model, ModelError, ModelKind, MultiRegisterModel, MutexModel,
    RegisterModel, Role, SetModel, UnorderedQueueModel,
};
use crate::result::{Counterexample, KeyResult, LinearizabilityResult, Prefix, Progress, Verdict};
use rayon::prelude::*;
use search::{Budget, GaveUp, Parallel, SearchOp, SearchStats};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How to check.
#[derive(Debug, Clone)]
pub struct Options {
    pub model: ModelKind,
    /// The value before any operation (`null`: absent). For keyed histories, every key's initial value.
    pub initial: Value,
    /// Split by key (P-compositionality). False checks the whole history as one, the state being the map of
    /// every key's value.
    pub partition: bool,
    /// Decide every key instead of stopping at the first invalid one.
    pub all_keys: bool,
    /// Give up (verdict unknown) after this long.
    pub time_limit: Option<Duration>,
    /// Give up (verdict unknown) when the searches together hold more than this many bytes.
    pub memory_limit: usize,
    /// How many threads may search one key together (0: every thread of rayon's pool; 1: each key's search
    /// stays on one thread). Only register and cas-register searches split.
    pub key_threads: usize,
    /// How long one key's search runs alone before other threads join it (zero: they join at once).
    pub key_parallel_after: Duration,
    /// Search steps a register or cas-register key's search takes before the supply rule joins it (see
    /// `model/observed.rs`; the rule is exact, but costs a scan per step). None: from the start on keys of
    /// 4,096 operations or more, after 65,536 steps on smaller ones.
    pub supply_after: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            model: ModelKind::CasRegister,
            initial: Value::Null,
            partition: true,
            all_keys: false,
            time_limit: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            key_threads: 0,
            key_parallel_after: DEFAULT_PARALLEL_AFTER,
            supply_after: None,
        }
    }
}

/// Search steps taken by every key's search in this process so far (for benchmarks).
static SEARCH_STEPS: AtomicU64 = AtomicU64::new(0);

/// Search steps taken by every key's search of every check in this process so far: a benchmark reads it
/// before and after a check.
#[doc(hidden)]
pub fn search_steps_so_far() -> u64 {
    SEARCH_STEPS.load(Ordering::Relaxed)
}

/// The default memory bound of a check: 1 GiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

/// The default [`Options::key_parallel_after`]. Helpers cost the first worker about a tenth of a second
/// (its cache moves into the shared one, whose entries take a lock), so only searches that have run this
/// long get them.
pub const DEFAULT_PARALLEL_AFTER: Duration = Duration::from_millis(500);

/// How many operations of the key around the failing one a counterexample keeps.
const WINDOW_BEFORE: usize = 25;
const WINDOW_AFTER: usize = 10;

/// Checks `ops` (paired operations, in invoke order) for linearizability under `options`.
///
/// Errors only when an operation does not fit the model (an unknown `f`, a value of the wrong shape).
pub fn check(ops: &[Operation], options: &Options) -> Result<LinearizabilityResult, ModelError> {
    let started = Instant::now();
    let keyed = ops.iter().any(|o| o.key.is_some());
    let mut parts: Vec<(Option<String>, Vec<&Operation>)> = if keyed && options.partition {
        let mut by_key: BTreeMap<Option<&str>, Vec<&Operation>> = BTreeMap::new();
        for op in ops {
            by_key.entry(op.key.as_deref()).or_default().push(op);
        }
        by_key
            .into_iter()
            .map(|(k, v)| (k.map(str::to_string), v))
            .collect()
    } else {
        vec![(None, ops.iter().collect())]
    };
    for (_, p) in parts.iter_mut() {
        p.sort_by_key(|o| o.invoke_index);
    }
    let whole_map = keyed && !options.partition;

    // Compile everything first, so that a bad operation is an error whatever the search would find.
    let compiled: Vec<Prepared> = parts
        .iter()
        .map(|(_, p)| prepare(options, p, whole_map))
        .collect::<Result<_, _>>()?;

    let memory = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let budget = Budget {
        deadline: options.time_limit.map(|t| started + t),
        memory: &memory,
        memory_limit: options.memory_limit,
        cancel: &cancel,
    };
    let par = Parallel {
        threads: match options.key_threads {
            0 => usize::MAX,
            n => n,
        },
        after: options.key_parallel_after,
    };
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(parts[i].1.len()));
    let mut work: Vec<(usize, Prepared)> = compiled.into_iter().enumerate().collect();
    work.sort_by_key(|(i, _)| order.iter().position(|j| j == i));
    let mut results: Vec<(usize, KeyResult)> = work
        .into_par_iter()
        .map(|(i, prepared)| {
            let (key, p) = &parts[i];
            let r = run_prepared(prepared, p, &budget, par);
            if r.verdict == Verdict::Invalid && !options.all_keys {
                cancel.store(true, Ordering::Relaxed);
            }
            (
                i,
                KeyResult {
                    key: key.clone(),
                    ..r
                },
            )
        })
        .collect();
    results.sort_by_key(|(i, _)| *i);
    let keys: Vec<KeyResult> = results.into_iter().map(|(_, r)| r).collect();
    let verdict = keys
        .iter()
        .map(|k| k.verdict)
        .fold(Verdict::Valid, Verdict::worst);
    Ok(LinearizabilityResult {
        verdict,
        model: options.model.name().to_string(),
        keys,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// A compiled partition, ready to search.
enum Prepared {
    Register(Compiled<RegisterModel>),
    KeyedRegister(Compiled<Keyed<RegisterModel>>),
    Mutex(Compiled<MutexModel>),
    KeyedMutex(Compiled<Keyed<MutexModel>>),
    MultiRegister(Compiled<MultiRegisterModel>),
    Set(Compiled<SetModel>),
    KeyedSet(Compiled<Keyed<SetModel>>),
    UnorderedQueue(Compiled<UnorderedQueueModel>),
    KeyedUnorderedQueue(Compiled<Keyed<UnorderedQueueModel>>),
    FifoQueue(Compiled<FifoQueueModel>),
    KeyedFifoQueue(Compiled<Keyed<FifoQueueModel>>),
}

/// Key slots of `ops` for a whole-map model.
fn slots(ops: &[&Operation]) -> (Vec<u32>, Vec<String>) {
    let mut names: BTreeMap<&str, u32> = BTreeMap::new();
    for op in ops {
        let k = op.key.as_deref().unwrap_or("");
        let n = names.len() as u32;
        names.entry(k).or_insert(n);
    }
    let slot = ops
        .iter()
        .map(|o| names[o.key.as_deref().unwrap_or("")])
        .collect();
    let mut keys = vec![String::new(); names.len()];
    for (k, i) in names {
        keys[i as usize] = k.to_string();
    }
    (slot, keys)
}

fn keyed<M: Model>(c: Compiled<M>, slot: Vec<u32>, keys: Vec<String>) -> Compiled<Keyed<M>> {
    let slots = keys.len();
    Compiled {
        model: Keyed {
            inner: c.model,
            slot,
            slots,
            keys,
        },
        roles: c.roles,
    }
}

fn prepare(options: &Options, ops: &[&Operation], whole_map: bool) -> Result<Prepared, ModelError> {
    let (kind, initial) = (options.model, &options.initial);
    let (slot, keys) = if whole_map {
        slots(ops)
    } else {
        (vec![0; ops.len()], vec![String::new()])
    };
    Ok(match kind {
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => {
            let mut c = RegisterModel::compile(kind, ops, &slot, keys.len(), initial)?;
            if let Some(steps) = options.supply_after {
                c.model.supply_after(steps);
            }
            if whole_map {
                Prepared::KeyedRegister(keyed(c, slot, keys))
            } else {
                Prepared::Register(c)
            }
        }
        ModelKind::Mutex => {
            let c = MutexModel::compile(ops, initial)?;
            if whole_map {
                Prepared::KeyedMutex(keyed(c, slot, keys))
            } else {
                Prepared::Mutex(c)
            }
        }
        ModelKind::MultiRegister => Prepared::MultiRegister(MultiRegisterModel::compile(ops, initial)?),
        ModelKind::Set => {
            let c = SetModel::compile(ops, initial)?;
            if whole_map {
                Prepared::KeyedSet(keyed(c, slot, keys))
            } else {
                Prepared::Set(c)
            }
        }
        ModelKind::UnorderedQueue => {
            let c = UnorderedQueueModel::compile(ops, initial)?;
            if whole_map {
                Prepared::KeyedUnorderedQueue(keyed(c, slot, keys))
            } else {
                Prepared::UnorderedQueue(c)
            }
        }
        ModelKind::FifoQueue => {
            let c = FifoQueueModel::compile(ops, initial)?;
            if whole_map {
                Prepared::KeyedFifoQueue(keyed(c, slot, keys))
            } else {
                Prepared::FifoQueue(c)
            }
        }
    })
}

fn run_prepared(p: Prepared, ops: &[&Operation], budget: &Budget<'_>, par: Parallel) -> KeyResult {
    match p {
        Prepared::Register(c) => run(c, ops, budget, par),
        Prepared::KeyedRegister(c) => run(c, ops, budget, par),
        Prepared::Mutex(c) => run(c, ops, budget, par),
        Prepared::KeyedMutex(c) => run(c, ops, budget, par),
        Prepared::MultiRegister(c) => run(c, ops, budget, par),
        Prepared::Set(c) => run(c, ops, budget, par),
        Prepared::KeyedSet(c) => run(c, ops, budget, par),
        Prepared::UnorderedQueue(c) => run(c, ops, budget, par),
        Prepared::KeyedUnorderedQueue(c) => run(c, ops, budget, par),
        Prepared::FifoQueue(c) => run(c, ops, budget, par),
        Prepared::KeyedFifoQueue(c) => run(c, ops, budget, par),
    }
}

/// Searches one partition and turns the outcome into a [`KeyResult`] (key left empty).
fn run<M: Model>(c: Compiled<M>, ops: &[&Operation], budget: &Budget<'_>, par: Parallel) -> KeyResult {
    let started = Instant::now();
    let Compiled { mut model, roles } = c;
    let search_ops: Vec<SearchOp> = ops
        .iter()
        .zip(&roles)
        .map(|(o, &role)| SearchOp {
            call: o.invoke_index,
            ret: o.complete_index,
            role,
        })
        .collect();
    let considered = roles.iter().filter(|r| **r != Role::Skip).count();
    let mut result = KeyResult {
        key: None,
        verdict: Verdict::Unknown,
        ops: considered,
        elapsed_ms: 0.0,
        reason: None,
        progress: None,
        counterexample: None,
    };
    if budget.cancel.load(Ordering::Relaxed) {
        result.reason = Some(cancelled_reason());
        return result;
    }
    let mut stats = SearchStats::default();
    let outcome = search::search(&mut model, &search_ops, budget, &mut stats, par);
    SEARCH_STEPS.fetch_add(stats.steps, Ordering::Relaxed);
    match outcome {
        search::Outcome::Linearizable | search::Outcome::Witness(_) => result.verdict = Verdict::Valid,
        search::Outcome::GaveUp(why) => {
            let required = roles.iter().filter(|r| **r == Role::Required).count();
            let progress = Progress {
                longest_prefix: stats.max_depth,
                required,
                steps: stats.steps,
            };
            let got = format!(
                "after {} search steps; the longest linearizable prefix found holds {} operations ({} must be \
                 linearized)",
                stats.steps, stats.max_depth, required
            );
            result.reason = Some(match why {
                GaveUp::TimeLimit => format!("time limit reached {got}"),
                GaveUp::MemoryLimit => {
                    format!("memory bound of {} MB reached {got}", budget.memory_limit >> 20)
                }
                GaveUp::Cancelled => cancelled_reason(),
            });
            result.progress = Some(progress);
        }
        search::Outcome::NotLinearizable { prefixes } => {
            result.verdict = Verdict::Invalid;
            result.counterexample = Some(counterexample(&model, ops, &roles, prefixes));
        }
    }
    result.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    result
}

fn cancelled_reason() -> String {
    "not decided: another key is invalid (--all-keys decides every key)".to_string()
}

fn counterexample<M: Model>(
    model: &M,
    ops: &[&Operation],
    roles: &[Role],
    prefixes: Vec<search::FoundPrefix<M::State>>,
) -> Counterexample {
    // The failing op: the one blocking the longest prefix; with no prefix at all (nothing can go first),
    // the first operation that had to be linearized.
    let blocked = prefixes
        .first()
        .map(|p| p.blocked as usize)
        .or_else(|| {
            (0..ops.len())
                .filter(|&i| roles[i] == Role::Required)
                .min_by_key(|&i| ops[i].complete_index.unwrap_or(u64::MAX))
        })
        .unwrap_or(0);
    let considered: Vec<usize> = (0..ops.len()).filter(|&i| roles[i] != Role::Skip).collect();
    let at = considered.iter().position(|&i| i == blocked).unwrap_or(0);
    let from = at.saturating_sub(WINDOW_BEFORE);
    let to = (at + WINDOW_AFTER + 1).min(considered.len());
    Counterexample {
        op: ops[blocked].clone(),
        window: considered[from..to].iter().map(|&i| ops[i].clone()).collect(),
        prefixes: prefixes
            .iter()
            .map(|p| Prefix {
                ops: p.ops.iter().map(|&i| ops[i as usize].invoke_index).collect(),
                states: p.states.iter().map(|s| model.describe(s)).collect(),
                omitted: p.omitted,
                blocked: Some(ops[p.blocked as usize].invoke_index),
            })
            .collect(),
    }
}
