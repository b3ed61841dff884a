//! A seeded generator of the hard histories of issue 12: register and cas-register histories as a Jepsen
//! test under partitions and pauses records them.
//!
//! Shared by the property tests (`tests/props.rs`, `tests/class.rs`) and the benchmark (`benches/check.rs`,
//! through `#[path]`), so both measure the same class.
//!
//! How a history is built: every client process runs one operation after another (a think time, then a
//! latency drawn mostly short, sometimes long). Each operation that takes effect gets an *effect point*:
//! inside its interval when it completes `ok`, anywhere after its invoke (often long after its `info`
//! completion, or after the history ends: never) when it is indeterminate. The register is then executed
//! in effect-point order, which decides what each read returns and whether each cas succeeds, so the
//! history is linearizable by construction. An invalid history gets a single anomaly injected deep inside
//! one key (a stale read, a lost write, a read of a value never written), built so that no linearization
//! can explain it whatever the indeterminate operations did.

#![allow(dead_code)]

use checker::{Operation, Outcome};
use serde_json::{json, Value};

/// A small deterministic random number generator (xorshift*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03 | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The anomaly an invalid history carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anomaly {
    /// A read returns a value overwritten (by a completed write) before the read was invoked.
    StaleRead,
    /// A write completed, and a read invoked after it returns the value the write replaced.
    LostWrite,
    /// A read returns a value no operation ever wrote.
    NeverWritten,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Shape {
    /// `cas-register` (reads, writes, cas) or `register` (reads and writes).
    pub cas: bool,
    pub processes: usize,
    pub keys: usize,
    /// Total operations over all keys.
    pub ops: usize,
    /// Percent of writes and cas that are indeterminate.
    pub info_percent: u64,
    /// Percent of written values drawn from a small set (0..5) instead of a fresh one.
    pub reused_percent: u64,
    /// Zipf exponent of the key distribution (0: uniform).
    pub zipf: f64,
    /// Failed cas carry `cas-mismatch` (faultline's clients) rather than a bare `fail` (Jepsen's).
    pub mismatch_errors: bool,
    pub anomaly: Option<Anomaly>,
}

impl Shape {
    /// A member of the class, drawn from `seed`: 20–50 processes, 2–5 keys, 500–5,000 operations per key,
    /// 10–30 % indeterminate writes; valid when `invalid` is false, else with one anomaly.
    pub fn class(seed: u64, invalid: bool) -> Shape {
        let mut rng = Rng::new(seed ^ 0x5EED);
        let keys = rng.range(2, 5) as usize;
        let per_key = rng.range(500, 5000) as usize;
        let anomaly = invalid.then(|| match rng.below(3) {
            0 => Anomaly::StaleRead,
            1 => Anomaly::LostWrite,
            _ => Anomaly::NeverWritten,
        });
        Shape {
            cas: rng.chance(60),
            processes: rng.range(20, 50) as usize,
            keys,
            ops: keys * per_key,
            info_percent: rng.range(10, 30),
            reused_percent: rng.range(0, 15),
            zipf: 0.0,
            mismatch_errors: rng.chance(50),
            anomaly,
        }
    }

    /// The large shape: 200,000 operations over 1,000 keys, Zipf keys, concurrency 50.
    pub fn large(seed: u64, invalid: bool) -> Shape {
        let mut s = Shape::class(seed, invalid);
        s.processes = 50;
        s.keys = 1000;
        s.ops = 200_000;
        s.zipf = 1.0;
        s
    }
}

/// One planned operation, before indices are assigned.
#[derive(Debug, Clone)]
struct Planned {
    process: u64,
    key: usize,
    kind: Kind,
    call: u64,
    /// Completion time; None: never completed.
    ret: Option<u64>,
    /// `ok` completion (else `info`, or `fail` for a read that timed out).
    outcome: Outcome,
    /// When it takes effect; None: never.
    effect: Option<u64>,
    input: Value,
    output: Value,
    error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Cas,
}

/// Microseconds, as nanoseconds.
const US: u64 = 1_000;

/// Generates a history of `shape` from `seed`; operations in invoke order, keys named `k0`, `k1`, ...
pub fn generate(shape: &Shape, seed: u64) -> Vec<Operation> {
    let mut rng = Rng::new(seed);
    let mut planned = plan(shape, &mut rng);
    execute(shape, &mut planned, &mut rng);
    if let Some(a) = shape.anomaly {
        inject(a, &mut planned, shape.keys, &mut rng);
    }
    finish(planned)
}

/// The clients' timeline: who invokes what, when, and how it completes.
fn plan(shape: &Shape, rng: &mut Rng) -> Vec<Planned> {
    let zipf = Zipf::new(shape.keys, shape.zipf);
    let mut free_at = vec![0u64; shape.processes];
    let mut pid: Vec<u64> = (0..shape.processes as u64).collect();
    let mut next_pid = shape.processes as u64;
    let mut out = Vec::with_capacity(shape.ops);
    // The time a partition or pause lasts and when the next begins: during one, most writes time out.
    let mut fault_until = 0u64;
    let mut next_fault = rng.range(30, 200) * 1000 * US;
    for _ in 0..shape.ops {
        // The process that is free first invokes next.
        let slot = (0..shape.processes).min_by_key(|&s| free_at[s]).unwrap_or(0);
        let call = free_at[slot] + rng.range(0, 200) * US;
        if call >= next_fault {
            fault_until = call + rng.range(10, 60) * 1000 * US;
            next_fault = fault_until + rng.range(30, 200) * 1000 * US;
        }
        let faulty = call < fault_until;
        let latency = if rng.chance(5) {
            rng.range(1000, 20_000) * US
        } else {
            rng.range(100, 2000) * US
        };
        let key = zipf.draw(rng);
        let kind = match rng.below(100) {
            x if x < 50 => Kind::Read,
            x if x < 80 || !shape.cas => Kind::Write,
            _ => Kind::Cas,
        };
        // Indeterminate: more likely during a fault (about a fifth of the time), so the overall share of
        // indeterminate writes is near info_percent.
        let p_info = if faulty {
            (shape.info_percent * 5 / 2).min(90)
        } else {
            shape.info_percent * 2 / 3
        };
        let indeterminate = rng.chance(p_info);
        let mut p = Planned {
            process: pid[slot],
            key,
            kind,
            call,
            ret: Some(call + latency),
            outcome: Outcome::Ok,
            effect: Some(call + rng.range(0, latency)),
            input: Value::Null,
            output: Value::Null,
            error: None,
        };
        if indeterminate {
            let timeout = rng.range(5, 30) * 1000 * US;
            p.ret = (!rng.chance(25)).then_some(call + timeout);
            p.outcome = if kind == Kind::Read && rng.chance(50) {
                Outcome::Fail
            } else {
                Outcome::Info
            };
            p.error = Some("timeout".into());
            // Takes effect soon, long after (across many later operations), or never.
            p.effect = match rng.below(10) {
                0..=3 => Some(call + rng.range(0, timeout)),
                4..=6 => Some(call + rng.range(timeout, timeout * 20)),
                _ => None,
            };
            if kind == Kind::Read {
                p.effect = None;
            }
            // A crashed process is never reused: its client continues as a new one.
            free_at[slot] = call + timeout;
            if p.outcome == Outcome::Info {
                pid[slot] = next_pid;
                next_pid += 1;
            }
        } else {
            free_at[slot] = call + latency;
        }
        out.push(p);
    }
    out
}

/// Executes the register of each key in effect-point order, filling in values, reads and cas outcomes.
fn execute(shape: &Shape, planned: &mut [Planned], rng: &mut Rng) {
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| (planned[i].effect.unwrap_or(u64::MAX), i));
    let mut state: Vec<Value> = vec![Value::Null; shape.keys];
    let mut recent: Vec<Vec<Value>> = vec![Vec::new(); shape.keys];
    let mut counter = 0u64;
    let mut fresh = |rng: &mut Rng| -> Value {
        if rng.chance(shape.reused_percent) {
            json!(rng.below(5))
        } else {
            counter += 1;
            json!(100 + counter)
        }
    };
    for i in order {
        let p = &mut planned[i];
        let k = p.key;
        let took_effect = p.effect.is_some();
        match p.kind {
            Kind::Read => {
                if took_effect {
                    p.output = state[k].clone();
                }
            }
            Kind::Write => {
                let v = fresh(rng);
                p.input = v.clone();
                if took_effect {
                    state[k] = v.clone();
                    recent[k].push(v);
                }
            }
            Kind::Cas => {
                let new = fresh(rng);
                // Expect the current value most of the time, else one of the recent ones.
                let expected = if rng.chance(60) || recent[k].is_empty() {
                    state[k].clone()
                } else {
                    let r = &recent[k];
                    r[r.len() - 1 - rng.below(r.len().min(5) as u64) as usize].clone()
                };
                let expected = if expected.is_null() { json!(0) } else { expected };
                p.input = json!([expected, new]);
                if took_effect && state[k] == expected {
                    state[k] = new.clone();
                    recent[k].push(new);
                } else if p.outcome == Outcome::Ok {
                    // The comparison failed: the cas did not take effect.
                    p.outcome = Outcome::Fail;
                    p.effect = None;
                    if shape.mismatch_errors {
                        p.error = Some("cas-mismatch".into());
                    }
                }
            }
        }
        if p.outcome == Outcome::Ok && p.kind != Kind::Read {
            p.output = p.input.clone();
        }
    }
}

/// Injects `anomaly` deep inside the busiest key (between 50 % and 90 % of its operations).
fn inject(anomaly: Anomaly, planned: &mut [Planned], keys: usize, rng: &mut Rng) {
    let mut per_key = vec![0usize; keys];
    for p in planned.iter() {
        per_key[p.key] += 1;
    }
    let key = (0..keys).max_by_key(|&k| per_key[k]).unwrap_or(0);
    let ops: Vec<usize> = (0..planned.len()).filter(|&i| planned[i].key == key).collect();
    let from = ops.len() / 2 + rng.below((ops.len() * 2 / 5) as u64) as usize;
    let read_at =
        |planned: &[Planned], i: usize| planned[i].kind == Kind::Read && planned[i].outcome == Outcome::Ok;
    if anomaly != Anomaly::NeverWritten {
        if let Some((r, v)) = find_overwritten(anomaly, planned, &ops[from..], &ops) {
            planned[r].output = v;
            return;
        }
    }
    // A read of a value nobody wrote (also the fallback when no pair of writes fits).
    if let Some(&r) = ops[from..].iter().find(|&&i| read_at(planned, i)) {
        planned[r].output = json!(-7);
    }
}

/// For a read among `candidates`, a value it cannot return: written by an `ok` write `w0` (the only write of
/// that value) that completed before an `ok` write `w` of another value was invoked, `w` completing before
/// the read's invoke. A lost write picks `w0` as the write right before `w`; a stale read, one further back.
fn find_overwritten(
    anomaly: Anomaly,
    planned: &[Planned],
    candidates: &[usize],
    ops: &[usize],
) -> Option<(usize, Value)> {
    let mut writers: std::collections::HashMap<String, usize> = Default::default();
    for &i in ops {
        let p = &planned[i];
        let v = match p.kind {
            Kind::Write => p.input.clone(),
            Kind::Cas => p.input[1].clone(),
            Kind::Read => continue,
        };
        *writers.entry(v.to_string()).or_default() += 1;
    }
    let unique_ok_write = |i: usize| {
        let p = &planned[i];
        p.kind == Kind::Write && p.outcome == Outcome::Ok && writers[&p.input.to_string()] == 1
    };
    let writes: Vec<usize> = ops.iter().copied().filter(|&i| unique_ok_write(i)).collect();
    for &r in candidates {
        let pr = &planned[r];
        if pr.kind != Kind::Read || pr.outcome != Outcome::Ok {
            continue;
        }
        // The last unique ok write completed before the read, and one completed before that one began.
        let before: Vec<usize> = writes
            .iter()
            .copied()
            .filter(|&w| planned[w].ret.is_some_and(|t| t < pr.call))
            .collect();
        let Some(&w) = before.iter().max_by_key(|&&w| planned[w].ret) else {
            continue;
        };
        let older: Vec<usize> = before
            .iter()
            .copied()
            .filter(|&w0| planned[w0].ret.is_some_and(|t| t < planned[w].call))
            .collect();
        let w0 = match anomaly {
            Anomaly::LostWrite => older.iter().max_by_key(|&&w0| planned[w0].ret),
            _ => older.get(older.len().saturating_sub(1 + older.len().min(5) / 2)),
        };
        if let Some(&w0) = w0 {
            if planned[w0].input != pr.output {
                return Some((r, planned[w0].input.clone()));
            }
        }
    }
    None
}

/// Numbers the events by time and builds the operations, in invoke order.
fn finish(planned: Vec<Planned>) -> Vec<Operation> {
    let mut events: Vec<(u64, usize, bool)> = Vec::with_capacity(2 * planned.len());
    for (i, p) in planned.iter().enumerate() {
        events.push((p.call, i, false));
        if let Some(r) = p.ret {
            events.push((r, i, true));
        }
    }
    events.sort_unstable();
    let mut call_idx = vec![0u64; planned.len()];
    let mut ret_idx = vec![None; planned.len()];
    for (pos, &(_, i, is_ret)) in events.iter().enumerate() {
        if is_ret {
            ret_idx[i] = Some(pos as u64);
        } else {
            call_idx[i] = pos as u64;
        }
    }
    let mut ops: Vec<Operation> = planned
        .into_iter()
        .enumerate()
        .map(|(i, p)| Operation {
            process: p.process,
            f: match p.kind {
                Kind::Read => "read",
                Kind::Write => "write",
                Kind::Cas => "cas",
            }
            .to_string(),
            key: Some(format!("k{}", p.key)),
            output: if p.outcome == Outcome::Ok {
                p.output
            } else {
                Value::Null
            },
            input: p.input,
            outcome: p.outcome,
            error: p.error,
            invoke_index: call_idx[i],
            complete_index: ret_idx[i],
            call: p.call,
            ret: if p.outcome == Outcome::Info { None } else { p.ret },
        })
        .collect();
    ops.sort_by_key(|o| o.invoke_index);
    ops
}

/// Keys drawn with probability proportional to 1 / rank^s.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut acc = 0.0;
        let cumulative = (1..=n)
            .map(|r| {
                acc += 1.0 / (r as f64).powf(s);
                acc
            })
            .collect();
        Zipf { cumulative }
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let x = rng.unit() * total;
        self.cumulative
            .partition_point(|&c| c <= x)
            .min(self.cumulative.len() - 1)
    }
}
