//! A synthetic but self-consistent register history for tests and the benchmark: `concurrency` clients
//! run read/write/cas on `keys` registers with random latencies; every op takes effect at a point inside
//! its call..return span, so the history is linearizable, except (when asked) one read of `k0` that returns
//! a value nobody wrote, with a matching counterexample. A nemesis partitions, kills and pauses.
#![allow(dead_code)]

pub mod chromium;

use checker::history::{Event, EventType, Operation, Outcome, Process};
use checker::result::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The tests' seeded stream: the project's one generator (ChaCha8, see ARCHITECTURE.md).
pub struct Rng(ChaCha8Rng);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }
    pub fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub struct Synthetic {
    pub events: Vec<Event>,
    pub report: CheckReport,
    /// invoke_index of the op that cannot be linearized, when invalid.
    pub failing: Option<u64>,
}

struct Gen {
    process: u64,
    f: &'static str,
    key: String,
    input: Value,
    output: Value,
    outcome: Outcome,
    error: Option<&'static str>,
    call: u64,
    ret: Option<u64>,
    lin: u64,
}

/// `n_ops` operations; `keys` keys (`k0`..); `evil` puts hostile strings in keys, values, errors and f.
pub fn generate(
    n_ops: usize,
    keys: usize,
    concurrency: u64,
    invalid: bool,
    evil: bool,
    seed: u64,
) -> Synthetic {
    let mut rng = Rng::new(seed);
    // Fault schedule: 10 s of run time per 10,000 ops, faults every few seconds.
    let total_ns: u64 = (n_ops as u64).max(200) * 1_000_000 * concurrency / 10;
    let nemesis = fault_schedule(total_ns, evil);
    let shape = Shape {
        keys,
        concurrency,
        evil,
    };
    let mut gens = draw_ops(&mut rng, n_ops, &shape, &nemesis);
    let (order, applied) = apply_in_order(&mut gens);
    // The failing read: a read of k0 about 60% through, returning a value nobody wrote.
    let k0 = key_name(0, evil);
    let failing_gen = if invalid {
        let reads: Vec<usize> = (0..gens.len())
            .filter(|&i| gens[i].key == k0 && gens[i].f == "read" && gens[i].outcome == Outcome::Ok)
            .collect();
        reads.get(reads.len() * 6 / 10).copied()
    } else {
        None
    };
    if let Some(i) = failing_gen {
        gens[i].output = if evil {
            json!("<script>alert('state')</script>")
        } else {
            json!(42)
        };
    }
    let (events, indices) = to_events(&gens, &nemesis);
    let mut key_results: Vec<KeyResult> = (0..keys)
        .map(|k| {
            let name = key_name(k, evil);
            let n = gens.iter().filter(|g| g.key == name).count();
            KeyResult {
                key: Some(name),
                verdict: Verdict::Valid,
                ops: n,
                elapsed_ms: 1.0,
                reason: None,
                progress: None,
                counterexample: None,
            }
        })
        .collect();
    if let Some(fi) = failing_gen {
        key_results[0].verdict = Verdict::Invalid;
        key_results[0].counterexample = Some(counterexample(&gens, &indices, &order, &applied, fi, &k0));
    }
    if keys > 3 {
        key_results[3].verdict = Verdict::Unknown;
        key_results[3].reason = Some(if evil {
            "<script>alert('reason')</script>".into()
        } else {
            "time limit of 10 s reached".into()
        });
    }
    let stats = stats_of(&gens, &events);
    let report = check_report(key_results, &nemesis, stats, total_ns);
    let failing = failing_gen.map(|i| indices.invoke[i]);
    Synthetic {
        events,
        report,
        failing,
    }
}

/// What [`draw_ops`] draws over.
struct Shape {
    keys: usize,
    concurrency: u64,
    evil: bool,
}

/// Key `i`'s name: `k{i}`, or a hostile string for keys 1 and 2 when `evil`.
fn key_name(i: usize, evil: bool) -> String {
    if evil && i == 1 {
        "<script>alert(1)</script>".to_string()
    } else if evil && i == 2 {
        "\"><img src=x onerror=alert(1)>".to_string()
    } else {
        format!("k{i}")
    }
}

/// Faults every few seconds over `total_ns`: (time, f, value), each start followed by its stop.
fn fault_schedule(total_ns: u64, evil: bool) -> Vec<(u64, &'static str, Value)> {
    let mut nemesis = Vec::new();
    let mut t = total_ns / 10;
    let kinds = [
        ("start-partition", "stop-partition"),
        ("kill", "restart"),
        ("pause", "resume"),
        ("start-loss", "stop-loss"),
    ];
    let mut i = 0;
    while t + total_ns / 12 < total_ns {
        let (a, b) = kinds[i % kinds.len()];
        let len = total_ns / 14;
        let v = if evil {
            json!({"node": "<script>alert(1)</script>"})
        } else {
            json!({"nodes": ["n1"], "kind": "isolate"})
        };
        nemesis.push((t, a, v.clone()));
        nemesis.push((t + len, b, v));
        t += len + total_ns / 10;
        i += 1;
    }
    nemesis
}

/// The clients: each process runs ops back to back with a small think time; slower and sometimes timing
/// out during a fault. Each op takes effect at a drawn point inside its span.
fn draw_ops(rng: &mut Rng, n_ops: usize, shape: &Shape, nemesis: &[(u64, &'static str, Value)]) -> Vec<Gen> {
    let Shape {
        keys,
        concurrency,
        evil,
    } = *shape;
    let faulty = |t: u64| nemesis.chunks(2).any(|w| t >= w[0].0 && t < w[1].0);
    let mut procs: Vec<(u64, u64)> = (0..concurrency).map(|p| (p, rng.below(1_000_000))).collect(); // (process id, free at)
    let mut gens: Vec<Gen> = Vec::with_capacity(n_ops);
    let mut next_value = 1u64;
    for _ in 0..n_ops {
        let slot = rng.below(concurrency) as usize;
        let (p, free) = procs[slot];
        let call = free + rng.below(200_000);
        let fault = faulty(call);
        let base: f64 = if fault { 20.0 } else { 1.0 };
        let lat = (base * 1e6 * (0.3 + (-rng.unit().max(1e-9).ln()) * 1.5)) as u64;
        let key = key_name(rng.below(keys as u64) as usize, evil);
        let r = rng.below(10);
        let (f, input) = match r {
            0..=4 => ("read", Value::Null),
            5..=7 => {
                next_value += 1;
                ("write", json!(next_value % 7))
            }
            _ => ("cas", json!([rng.below(7), rng.below(7)])),
        };
        let f = if evil && r == 9 { "<b>cas</b>" } else { f };
        let timeout = fault && rng.below(4) == 0;
        let ret = if timeout && rng.below(3) == 0 {
            None
        } else {
            Some(call + lat)
        };
        let lin = call + (lat as f64 * rng.unit()) as u64;
        let outcome = if ret.is_none() || (timeout && f != "read") {
            Outcome::Info
        } else if timeout {
            Outcome::Fail
        } else {
            Outcome::Ok
        };
        let error = match (timeout, evil) {
            (false, _) => None,
            (true, true) => Some("<script>alert('err')</script>"),
            (true, false) => Some("timeout"),
        };
        gens.push(Gen {
            process: p,
            f,
            key,
            input,
            output: Value::Null,
            outcome,
            error,
            call,
            ret,
            lin,
        });
        procs[slot] = match outcome {
            Outcome::Info => (p + concurrency, call + lat + 1),
            _ => (p, call + lat + 1),
        };
    }
    gens
}

/// Applies the ops in linearization order to learn reads' results and cas outcomes. Returns that order
/// and, for each applied op, its key's state after it.
fn apply_in_order(gens: &mut [Gen]) -> (Vec<usize>, HashMap<usize, Value>) {
    let mut order: Vec<usize> = (0..gens.len()).collect();
    order.sort_by_key(|&i| gens[i].lin);
    let mut state: HashMap<String, Value> = Default::default();
    let mut applied: HashMap<usize, Value> = Default::default(); // gen -> state after
    for &i in &order {
        let g = &mut gens[i];
        if g.outcome == Outcome::Fail {
            continue;
        }
        let cur = state.get(&g.key).cloned().unwrap_or(Value::Null);
        match g.f {
            "read" => g.output = cur.clone(),
            "write" => {
                state.insert(g.key.clone(), g.input.clone());
                g.output = g.input.clone();
            }
            _ => {
                if cur == g.input[0] {
                    state.insert(g.key.clone(), g.input[1].clone());
                    g.output = g.input.clone();
                } else if g.outcome == Outcome::Ok {
                    g.outcome = Outcome::Fail;
                    g.error = Some("cas-mismatch");
                    g.output = g.input.clone();
                }
            }
        }
        applied.insert(i, state.get(&g.key).cloned().unwrap_or(Value::Null));
    }
    (order, applied)
}

/// Each op's invoke and completion positions in the history.
struct Indices {
    invoke: Vec<u64>,
    complete: Vec<Option<u64>>,
}

/// The history: invokes, completions and nemesis events in time order.
fn to_events(gens: &[Gen], nemesis: &[(u64, &'static str, Value)]) -> (Vec<Event>, Indices) {
    let mut evs: Vec<(u64, u8, usize)> = Vec::with_capacity(gens.len() * 2 + nemesis.len());
    for (i, g) in gens.iter().enumerate() {
        evs.push((g.call, 0, i));
        if let Some(r) = g.ret {
            evs.push((r, 1, i));
        }
    }
    for (i, n) in nemesis.iter().enumerate() {
        evs.push((n.0, 2, i));
    }
    evs.sort();
    let mut events = Vec::with_capacity(evs.len());
    let mut indices = Indices {
        invoke: vec![0u64; gens.len()],
        complete: vec![None; gens.len()],
    };
    for (time, what, i) in evs {
        let index = events.len() as u64;
        let event =
            |process, kind, f: &str, key: Option<&String>, value: &Value, error: Option<&str>| Event {
                index,
                time,
                process,
                kind,
                f: f.into(),
                key: key.cloned(),
                value: value.clone(),
                error: error.map(String::from),
            };
        events.push(match what {
            0 => {
                let g = &gens[i];
                indices.invoke[i] = index;
                event(
                    Process::Client(g.process),
                    EventType::Invoke,
                    g.f,
                    Some(&g.key),
                    &g.input,
                    None,
                )
            }
            1 => {
                let g = &gens[i];
                indices.complete[i] = Some(index);
                let kind = match g.outcome {
                    Outcome::Ok => EventType::Ok,
                    Outcome::Fail => EventType::Fail,
                    Outcome::Info => EventType::Info,
                };
                event(
                    Process::Client(g.process),
                    kind,
                    g.f,
                    Some(&g.key),
                    &g.output,
                    g.error,
                )
            }
            _ => {
                let (_, f, v) = &nemesis[i];
                event(Process::Nemesis, EventType::Info, f, None, v, None)
            }
        });
    }
    (events, indices)
}

fn op_of(gens: &[Gen], indices: &Indices, i: usize) -> Operation {
    let g = &gens[i];
    Operation {
        process: g.process,
        f: g.f.into(),
        key: Some(g.key.clone()),
        input: g.input.clone(),
        output: g.output.clone(),
        outcome: g.outcome,
        error: g.error.map(String::from),
        invoke_index: indices.invoke[i],
        complete_index: indices.complete[i],
        call: g.call,
        ret: g.ret,
    }
}

/// The counterexample of the failing read `fi` of key `k0`.
fn counterexample(
    gens: &[Gen],
    indices: &Indices,
    order: &[usize],
    applied: &HashMap<usize, Value>,
    fi: usize,
    k0: &str,
) -> Counterexample {
    // Ops of k0 in invoke order; the window is 60 before and 20 after the failing one.
    let mut k_ops: Vec<usize> = (0..gens.len()).filter(|&i| gens[i].key == k0).collect();
    k_ops.sort_by_key(|&i| indices.invoke[i]);
    let at = k_ops.iter().position(|&i| i == fi).unwrap();
    let window: Vec<Operation> = k_ops[at.saturating_sub(60)..(at + 20).min(k_ops.len())]
        .iter()
        .map(|&i| op_of(gens, indices, i))
        .collect();
    // The longest prefix: every applied k0 op linearized before the failing read.
    let prefix: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| gens[i].key == k0 && gens[i].lin < gens[fi].lin && applied.contains_key(&i) && i != fi)
        .collect();
    // Like the checker, keep only the end of a long prefix and say how much was left out.
    let keep = prefix.len().min(300);
    let omitted = prefix.len() - keep;
    let tail = &prefix[omitted..];
    let p = Prefix {
        ops: tail.iter().map(|&i| indices.invoke[i]).collect(),
        states: tail.iter().map(|i| applied[i].clone()).collect(),
        omitted,
        blocked: Some(indices.invoke[fi]),
    };
    let mut shorter = p.clone();
    shorter.ops.pop();
    shorter.states.pop();
    Counterexample {
        op: op_of(gens, indices, fi),
        window,
        prefixes: vec![p, shorter],
    }
}

/// Counts and latency quantiles of the ops, as the stats checker reports them.
fn stats_of(gens: &[Gen], events: &[Event]) -> Stats {
    let mut stats = Stats::default();
    let mut lats = Vec::new();
    for g in gens {
        let c = stats.by_f.entry(g.f.to_string()).or_default();
        match g.outcome {
            Outcome::Ok => {
                stats.ok += 1;
                c.ok += 1
            }
            Outcome::Fail => {
                stats.fail += 1;
                c.fail += 1
            }
            Outcome::Info => {
                stats.info += 1;
                c.info += 1
            }
        }
        if let Some(r) = g.ret {
            lats.push(r - g.call)
        }
    }
    lats.sort_unstable();
    let q = |p: f64| {
        lats.get(((lats.len() as f64 * p) as usize).min(lats.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    stats.latency_ns = Quantiles {
        p50: q(0.5),
        p95: q(0.95),
        p99: q(0.99),
        max: q(1.0),
    };
    stats.duration_ns = events.last().map(|e| e.time).unwrap_or(0);
    stats.ok_per_sec = stats.ok as f64 / (stats.duration_ns.max(1) as f64 / 1e9);
    stats
}

/// The whole check report: linearizability from the key results, availability from the faults.
fn check_report(
    key_results: Vec<KeyResult>,
    nemesis: &[(u64, &'static str, Value)],
    stats: Stats,
    total_ns: u64,
) -> CheckReport {
    let lin_verdict = key_results
        .iter()
        .map(|k| k.verdict)
        .max()
        .unwrap_or(Verdict::Valid);
    let recoveries = nemesis
        .chunks(2)
        .map(|w| Recovery {
            heal_time: w[1].0,
            f: w[1].1.to_string(),
            recovery_ns: Some(150_000_000),
        })
        .collect();
    CheckReport {
        verdict: lin_verdict,
        linearizability: Some(LinearizabilityResult {
            verdict: lin_verdict,
            model: "cas-register".into(),
            keys: key_results,
            elapsed_ms: 12.5,
        }),
        availability: Some(AvailabilityResult {
            verdict: Verdict::Valid,
            longest_gap_ns: 2_100_000_000,
            longest_gap_start: total_ns / 3,
            recoveries,
            recovery_limit_ns: 10_000_000_000,
            stalls: Vec::new(),
        }),
        stats: Some(stats),
    }
}

/// Writes events as JSON Lines.
pub fn write_jsonl(events: &[Event], path: &std::path::Path) {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for e in events {
        serde_json::to_writer(&mut w, e).unwrap();
        w.write_all(b"\n").unwrap();
    }
    w.flush().unwrap();
}
