//! The search's rules and its workers, against a brute-force search, on small random register and
//! cas-register histories: every worker order alone, and pairs of workers over one shared cache with their
//! steps interleaved at random (one thread, so every interleaving is replayable from its seed).

use super::cache::{Cache, Shared};
use super::parallel::pooled;
use super::{Budget, Outcome, Pause, Run, SearchOp, Searcher, Task};
use crate::history::{Operation, Outcome as Done};
use crate::model::{Model, ModelKind, RegisterModel, Role};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `n` operations of 1–3 processes on one register: reads of 0–2 or null, writes, cas; some indeterminate
/// (completed `info` or never), some failed (with a comparison error or without).
fn history(seed: u64, n: usize, cas: bool) -> Vec<Operation> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let procs = 1 + rng.below(3) as usize;
    let mut busy: Vec<Option<usize>> = vec![None; procs];
    let mut ops: Vec<Operation> = Vec::new();
    let mut clock = 0u64;
    let value = |rng: &mut Rng| match rng.below(4) {
        3 => Value::Null,
        v => json!(v),
    };
    while ops.len() < n || busy.iter().any(Option::is_some) {
        let p = rng.below(procs as u64) as usize;
        clock += 1;
        match busy[p] {
            None if ops.len() < n => {
                let (f, input) = match rng.below(if cas { 3 } else { 2 }) {
                    0 => ("read", Value::Null),
                    1 => ("write", json!(rng.below(3))),
                    _ => ("cas", json!([rng.below(3), rng.below(3)])),
                };
                ops.push(Operation {
                    process: p as u64,
                    f: f.to_string(),
                    key: None,
                    input,
                    output: Value::Null,
                    outcome: Done::Info,
                    error: None,
                    invoke_index: clock,
                    complete_index: None,
                    call: clock,
                    ret: None,
                });
                busy[p] = Some(ops.len() - 1);
            }
            None => {}
            Some(i) => {
                busy[p] = None;
                let op = &mut ops[i];
                match rng.below(10) {
                    // Never completes: the process is gone.
                    0 => continue,
                    1 => op.outcome = Done::Info,
                    2 => {
                        op.outcome = Done::Fail;
                        op.error = (rng.below(2) == 0).then(|| "cas-mismatch".to_string());
                    }
                    _ => op.outcome = Done::Ok,
                }
                if op.f == "read" {
                    op.output = value(&mut rng);
                }
                op.complete_index = Some(clock);
                op.ret = Some(clock);
            }
        }
    }
    ops
}

fn compile(ops: &[Operation], cas: bool) -> (RegisterModel, Vec<SearchOp>) {
    let refs: Vec<&Operation> = ops.iter().collect();
    let kind = if cas {
        ModelKind::CasRegister
    } else {
        ModelKind::Register
    };
    let c = RegisterModel::compile(kind, &refs, &vec![0; ops.len()], 1, &Value::Null)
        .expect("generated operations fit the model");
    let search_ops = ops
        .iter()
        .zip(&c.roles)
        .map(|(o, &role)| SearchOp {
            call: o.invoke_index,
            ret: o.complete_index,
            role,
        })
        .collect();
    (c.model, search_ops)
}

/// Every order of the operations that respects real time, with only `step` (no cache, no rule).
fn brute<M: Model>(m: &mut M, ops: &[SearchOp], done: &mut [bool], state: &M::State) -> bool {
    let first_ret = (0..ops.len())
        .filter(|&i| ops[i].role == Role::Required && !done[i])
        .map(|i| ops[i].ret.unwrap_or(u64::MAX))
        .min();
    let Some(first_ret) = first_ret else { return true };
    for i in 0..ops.len() {
        if done[i] || ops[i].role == Role::Skip || ops[i].call > first_ret {
            continue;
        }
        if let Some(s2) = m.step(state, i) {
            done[i] = true;
            let found = brute(m, ops, done, &s2);
            done[i] = false;
            if found {
                return true;
            }
        }
    }
    false
}

fn budget<'a>(memory: &'a AtomicUsize, cancel: &'a AtomicBool) -> Budget<'a> {
    Budget {
        deadline: None,
        memory,
        memory_limit: usize::MAX,
        cancel,
    }
}

fn linearizable<S>(o: Outcome<S>) -> bool {
    match o {
        Outcome::Linearizable | Outcome::Witness(_) => true,
        Outcome::NotLinearizable { .. } => false,
        Outcome::GaveUp(why) => panic!("a search with no limit gave up: {why:?}"),
    }
}

/// Worker `rotate` alone, to the end.
fn alone(model: &RegisterModel, ops: &[SearchOp], rotate: usize) -> bool {
    let (memory, cancel) = (AtomicUsize::new(0), AtomicBool::new(false));
    let mut m = model.fork().expect("a register model forks");
    let mut w = Searcher::new(&mut m, ops, Cache::new(), rotate);
    match w.run(&budget(&memory, &cancel), None, Pause::Never) {
        Run::Done(o) => linearizable(o),
        Run::Escalate => unreachable!(),
    }
}

/// Two workers over one shared cache, taking turns of 1–8 steps in an order drawn from `seed`: valid as
/// soon as one finds a linearization, invalid when both have finished.
fn pair(model: &RegisterModel, ops: &[SearchOp], rotations: [usize; 2], seed: u64) -> bool {
    let (memory, cancel) = (AtomicUsize::new(0), AtomicBool::new(false));
    let budget = budget(&memory, &cancel);
    let mut rng = Rng(seed | 1);
    let shared = Shared::new();
    let (mut ma, mut mb) = (model.fork().unwrap(), model.fork().unwrap());
    let mut ws = [
        Searcher::new(&mut ma, ops, &shared, rotations[0]),
        Searcher::new(&mut mb, ops, &shared, rotations[1]),
    ];
    let mut finished = [false; 2];
    for w in ws.iter_mut() {
        w.meter.check_every = 1;
    }
    while finished != [true, true] {
        let k = rng.below(2) as usize;
        if finished[k] {
            continue;
        }
        let until = ws[k].stats.steps + 1 + rng.below(8);
        if let Run::Done(o) = ws[k].run(&budget, None, Pause::AfterSteps(until)) {
            if linearizable(o) {
                return true;
            }
            finished[k] = true;
        }
    }
    false
}

/// Work stealing between `n` workers over one shared cache, on one thread: the first starts at the root, the
/// others wait for tasks; turns of 1–8 steps in an order drawn from `seed`, and before each turn the worker
/// hands over the candidates left at a node of its stack drawn at random, or at the one its policy picks (one
/// in three turns, or whenever a worker waits). Valid as soon
/// as one finds a linearization, invalid when every worker is done and no task is left. Also the number of
/// tasks taken.
fn stealing(model: &RegisterModel, ops: &[SearchOp], n: usize, seed: u64) -> (bool, usize) {
    let (memory, cancel) = (AtomicUsize::new(0), AtomicBool::new(false));
    let budget = budget(&memory, &cancel);
    let mut rng = Rng(seed | 1);
    let shared = Shared::new();
    let mut models: Vec<RegisterModel> = (0..n).map(|_| model.fork().unwrap()).collect();
    let mut ws: Vec<_> = models
        .iter_mut()
        .map(|m| {
            let mut w = Searcher::new(m, ops, &shared, 0);
            w.meter.check_every = 1;
            w
        })
        .collect();
    let mut busy = vec![false; n];
    busy[0] = true;
    let mut tasks: VecDeque<Task<_>> = VecDeque::new();
    let mut taken = 0;
    loop {
        for (w, b) in ws.iter_mut().zip(busy.iter_mut()) {
            if !*b {
                if let Some(t) = tasks.pop_front() {
                    w.take(t);
                    *b = true;
                    taken += 1;
                }
            }
        }
        let Some(k) = (0..n)
            .cycle()
            .skip(rng.below(n as u64) as usize)
            .take(n)
            .find(|&k| busy[k])
        else {
            return (false, taken);
        };
        if busy.contains(&false) || rng.below(3) == 0 {
            // Any node of the stack (the policy decides only how the work is shared), or the policy's.
            let w = &mut ws[k];
            let open: Vec<usize> = (w.floor..w.stack.len())
                .filter(|&f| !w.stack[f].forced && !w.stack[f].node.donated)
                .collect();
            let given = match rng.below(4) {
                0 => w.donate(),
                _ if open.is_empty() => None,
                _ => w.give(open[rng.below(open.len() as u64) as usize]),
            };
            tasks.extend(given);
        }
        let until = ws[k].stats.steps + 1 + rng.below(8);
        if let Run::Done(o) = ws[k].run(&budget, None, Pause::AfterSteps(until)) {
            if linearizable(o) {
                return (true, taken);
            }
            busy[k] = false;
        }
    }
}

/// Small random histories (`2 + seed % sizes` operations; cas-registers on two seeds in three) for seeds
/// `0..count`, each with brute force's answer handed to `check`; how many were valid and how many not.
fn against_brute_force(
    count: u64,
    sizes: u64,
    mut check: impl FnMut(u64, &RegisterModel, &[SearchOp], bool),
) -> (usize, usize) {
    let (mut valid, mut invalid) = (0, 0);
    for seed in 0..count {
        let n = 2 + (seed % sizes) as usize;
        let cas = seed % 3 != 0;
        let ops = history(seed, n, cas);
        let (mut model, search_ops) = compile(&ops, cas);
        let mut done = vec![false; n];
        let init = model.init();
        let want = brute(&mut model, &search_ops, &mut done, &init);
        if want {
            valid += 1;
        } else {
            invalid += 1;
        }
        check(seed, &model, &search_ops, want);
    }
    (valid, invalid)
}

#[test]
fn work_stealing_agrees_with_brute_force() {
    let mut taken = 0;
    let (valid, invalid) = against_brute_force(6000, 11, |seed, model, ops, want| {
        for workers in [2, 3] {
            let (got, t) = stealing(model, ops, workers, seed * 5 + workers as u64);
            assert_eq!(got, want, "seed {seed}, {workers} workers stealing work");
            taken += t;
        }
    });
    assert!(valid > 600 && invalid > 600, "{valid} valid, {invalid} invalid");
    // Tasks were handed over, many times, or the comparison says little about them.
    assert!(taken > 2000, "{taken} tasks taken");
}

/// The same with the real pool: 2 or 3 workers on threads of their own, the helpers waiting for tasks from
/// the first step on.
#[test]
fn a_pool_of_threads_agrees_with_brute_force() {
    let mut taken = 0;
    let (valid, invalid) = against_brute_force(6000, 11, |seed, model, ops, want| {
        let helpers = 1 + (seed % 2) as usize;
        let (o, t) = pooled(model, ops, helpers);
        let workers = helpers + 1;
        assert_eq!(linearizable(o), want, "seed {seed}, {workers} workers in a pool");
        taken += t;
    });
    assert!(valid > 300 && invalid > 300, "{valid} valid, {invalid} invalid");
    // Tasks were handed over (how many depends on the threads' timing: about 1,600 on a loaded machine).
    assert!(taken > 300, "{taken} tasks taken");
}

#[test]
fn every_worker_order_and_shared_pairs_agree_with_brute_force() {
    let (valid, invalid) = against_brute_force(3000, 7, |seed, model, ops, want| {
        for rotate in 0..3 {
            let got = alone(model, ops, rotate);
            assert_eq!(got, want, "seed {seed}, worker {rotate} alone");
        }
        for (i, rotations) in [[0, 1], [1, 2], [0, 0]].into_iter().enumerate() {
            let got = pair(model, ops, rotations, seed * 7 + i as u64);
            assert_eq!(got, want, "seed {seed}, workers {rotations:?} sharing a cache");
        }
    });
    // Both verdicts are well represented, or the comparison says little.
    assert!(valid > 600 && invalid > 600, "{valid} valid, {invalid} invalid");
}
