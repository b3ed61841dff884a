//! Workloads and their seeded operation generators.
//!
//! A [`Workload`] says which operations the clients perform and which checker model judges them. A
//! [`Generator`] produces one client task's operations: the same seed, task number and key plan always give
//! the same stream: operation `n` of a task is a pure function of the seed, the task and `n`, whatever the
//! timing or the system's answers. Which of those operations a run uses depends on timing in one way: a task
//! that falls behind its key group skips ahead (below).
//!
//! Keys are independent, as with Jepsen's independent generator: the tasks are split into groups of
//! [`KeyPlan::tasks_per_key`]; group `g` works on keys `k{g}`, `k{g + groups}`, `k{g + 2*groups}`, ...; each
//! task performs [`KeyPlan::ops_per_task_per_key`] operations on a key and then moves on to its group's next
//! key, so a key is retired after at most `tasks_per_key * ops_per_task_per_key` operations (plus final reads)
//! and each key's history stays small enough to check. A group moves on together, as Jepsen's does: a task
//! slowed by faults (a client whose writes time out at a cut-off node makes one operation a second while its
//! mates make hundreds) catches up with the furthest key any task of its group has reached
//! ([`Generator::catch_up`]), skipping the rest of its operations on the keys in between. Otherwise the slowed
//! client stays on a key its mates have left, where nobody writes, and a stale read it gets there cannot be
//! told from a fresh one.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Reads and blind writes of unique integers per key.
    Register,
    /// Reads, writes and compare-and-set of unique integers per key (see [`Generator`]).
    CasRegister,
    /// Reads and string appends of unique tokens per key (checked with the `kv` model).
    Append,
    /// Adds of unique integers per key; each key's set is read at the end (checked with the `set` model).
    Set,
}

impl Workload {
    /// Every workload, in the order `--help` lists them.
    pub const ALL: [Workload; 4] = [
        Workload::Register,
        Workload::CasRegister,
        Workload::Append,
        Workload::Set,
    ];

    /// The name used on the command line and in `test.json`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::CasRegister => "cas-register",
            Workload::Append => "append",
            Workload::Set => "set",
        }
    }

    /// The checker model that judges this workload's histories (`checker`'s model names).
    pub fn model_name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::CasRegister => "cas-register",
            Workload::Append => "kv",
            Workload::Set => "set",
        }
    }

    /// How the end-of-run read of a key is performed for this workload.
    pub fn final_read(self) -> Call {
        match self {
            Workload::Set => Call::ReadSet,
            _ => Call::Read,
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown workload name.
#[derive(Debug, thiserror::Error)]
#[error("unknown workload {0:?} (expected one of: register, cas-register, append, set)")]
pub struct UnknownWorkload(pub String);

impl std::str::FromStr for Workload {
    type Err = UnknownWorkload;
    fn from_str(s: &str) -> Result<Workload, UnknownWorkload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| UnknownWorkload(s.to_string()))
    }
}

/// One operation a client sends, before it is recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// Read a register (or a kv string); ok value: what was read, null for absent.
    Read,
    /// Read a whole set; ok value: the elements as a JSON array of integers, sorted.
    ReadSet,
    /// Write a value.
    Write(Value),
    /// Compare-and-set: from, to.
    Cas(Value, Value),
    /// Append a string to the key's string value.
    Append(String),
    /// Add an element to the key's set.
    Add(i64),
}

impl Call {
    /// The history's `f`.
    pub fn f(&self) -> &'static str {
        match self {
            Call::Read | Call::ReadSet => "read",
            Call::Write(_) => "write",
            Call::Cas(..) => "cas",
            Call::Append(_) => "append",
            Call::Add(_) => "add",
        }
    }

    /// The invoke's `value`.
    pub fn invoke_value(&self) -> Value {
        match self {
            Call::Read | Call::ReadSet => Value::Null,
            Call::Write(v) => v.clone(),
            Call::Cas(from, to) => json!([from, to]),
            Call::Append(s) => Value::String(s.clone()),
            Call::Add(e) => json!(e),
        }
    }

    /// Whether the operation only observes (a read that fails or times out changed nothing).
    pub fn is_read(&self) -> bool {
        matches!(self, Call::Read | Call::ReadSet)
    }
}

/// An operation on a key.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub key: String,
    pub call: Call,
}

/// How operations are spread over independent keys (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPlan {
    /// How many client tasks share a key at a time.
    pub tasks_per_key: usize,
    /// How many operations each of those tasks performs on a key before it moves on.
    pub ops_per_task_per_key: u64,
}

impl Default for KeyPlan {
    fn default() -> KeyPlan {
        KeyPlan {
            tasks_per_key: 5,
            ops_per_task_per_key: 40,
        }
    }
}

/// How far back (in a group mate's operation count) a compare-and-set looks for the value it expects.
const CAS_LOOKBACK: u64 = 6;

/// The operation stream of one client task.
///
/// Every written value is unique in the run (task `t` of `T` writes `n * T + t` at its `n`th operation), so
/// a read names the one write it observed: a stale read or a lost write cannot hide behind a later write of
/// the same value, and an indeterminate write can only explain reads of its own value. A compare-and-set
/// expects a value one of its group mates (the tasks sharing its key) wrote or set at about the same point
/// of their own streams, so that it often succeeds. Each operation is drawn from its own seeded generator
/// (seed, task, count), which lets a task compute its mates' operations without running their streams.
#[derive(Debug, Clone)]
pub struct Generator {
    workload: Workload,
    seed: u64,
    task: usize,
    tasks: usize,
    group: usize,
    groups: usize,
    plan: KeyPlan,
    /// Operations generated so far.
    count: u64,
}

impl Generator {
    /// The stream of task `task` of `tasks`, for `seed`.
    pub fn new(workload: Workload, seed: u64, task: usize, tasks: usize, plan: KeyPlan) -> Generator {
        let tasks = tasks.max(1);
        let per_key = plan.tasks_per_key.clamp(1, tasks);
        let groups = tasks.div_ceil(per_key);
        Generator {
            workload,
            seed,
            task,
            tasks,
            group: task / per_key,
            groups,
            plan: KeyPlan {
                tasks_per_key: per_key,
                ops_per_task_per_key: plan.ops_per_task_per_key.max(1),
            },
            count: 0,
        }
    }

    /// The name of the `n`th key (keys are numbered from 0).
    pub fn key_name(n: u64) -> String {
        format!("k{n}")
    }

    /// This task's key group (`0..groups`).
    pub fn group(&self) -> usize {
        self.group
    }

    /// How many of its group's keys this task has moved through (the key round it is in).
    pub fn round(&self) -> u64 {
        self.count / self.plan.ops_per_task_per_key
    }

    /// Moves on to key round `round` of the group if this task is behind it: its next operation is the first
    /// of that round (operation `round * ops_per_task_per_key` of its stream). Never moves back.
    pub fn catch_up(&mut self, round: u64) {
        if round > self.round() {
            self.count = round * self.plan.ops_per_task_per_key;
        }
    }

    /// The key the next operation will use.
    pub fn current_key(&self) -> u64 {
        let round = self.count / self.plan.ops_per_task_per_key;
        self.group as u64 + round * self.groups as u64
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        let key = Generator::key_name(self.current_key());
        let n = self.count;
        self.count += 1;
        let call = match self.workload {
            Workload::Register | Workload::CasRegister => self.register_call(self.task, n, true),
            Workload::Append => {
                if self.rng(self.task, n).below(2) == 0 {
                    Call::Read
                } else {
                    // Unique per task and count; never parses as a number, and ';' separates tokens.
                    Call::Append(format!("t{}.{};", self.task, n))
                }
            }
            Workload::Set => Call::Add(self.unique(self.task, n)),
        };
        Op { key, call }
    }

    /// The generator of task `task`'s `n`th operation: a pure function of the seed, the task and `n`.
    fn rng(&self, task: usize, n: u64) -> OpRng {
        OpRng::new(self.seed, task as u64, n)
    }

    /// Task `task`'s `n`th register operation. A compare-and-set (`cas` true) that finds no value to expect
    /// becomes a write; with `cas` false only the kind of operation is decided (what a mate looks up).
    fn register_call(&self, task: usize, n: u64, cas: bool) -> Call {
        let mut rng = self.rng(task, n);
        let kind = match self.workload {
            Workload::CasRegister => rng.below(3),
            _ => rng.below(2),
        };
        let value = json!(self.unique(task, n));
        match kind {
            0 => Call::Read,
            1 => Call::Write(value),
            _ if !cas => Call::Cas(Value::Null, value),
            _ => match self.expected_value(&mut rng, n) {
                Some(from) => Call::Cas(from, value),
                None => Call::Write(value),
            },
        }
    }

    /// A value a random group mate (or this task) wrote or set on the current key shortly before its own
    /// `n`th operation; `None` when it did neither since the key began.
    fn expected_value(&self, rng: &mut OpRng, n: u64) -> Option<Value> {
        let per_key = self.plan.tasks_per_key;
        let first = self.group * per_key;
        let last = (first + per_key).min(self.tasks);
        let mate = first + rng.below((last - first) as u64) as usize;
        let key_start = n - n % self.plan.ops_per_task_per_key;
        let newest = n.saturating_sub(rng.below(CAS_LOOKBACK)).max(key_start);
        (key_start..=newest)
            .rev()
            .filter(|&m| !(mate == self.task && m == n))
            .find_map(|m| match self.register_call(mate, m, false) {
                Call::Write(v) | Call::Cas(_, v) => Some(v),
                _ => None,
            })
    }

    /// A number no other task and no other operation of this task uses.
    fn unique(&self, task: usize, n: u64) -> i64 {
        (n as i64)
            .saturating_mul(self.tasks as i64)
            .saturating_add(task as i64)
    }
}

/// The stream of one operation: ChaCha8 (`rand_chacha`, version pinned in the workspace) keyed by the seed,
/// the task and the operation's number laid out little-endian in its 256-bit key, so the stream is fixed by
/// the algorithm on every platform and release. Numbers are mapped from its words here, not by `rand`'s
/// distributions, whose values may change between releases.
struct OpRng(ChaCha8Rng);

impl OpRng {
    fn new(seed: u64, task: u64, n: u64) -> OpRng {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&task.to_le_bytes());
        key[16..24].copy_from_slice(&n.to_le_bytes());
        OpRng(ChaCha8Rng::from_seed(key))
    }

    /// Uniform in 0..n (n positive): the high word of one 64-bit word times n.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(seed: u64, task: usize) -> Vec<Op> {
        let mut g = Generator::new(Workload::CasRegister, seed, task, 10, KeyPlan::default());
        (0..500).map(|_| g.next_op()).collect()
    }

    #[test]
    fn same_seed_same_stream_per_task() {
        for task in 0..10 {
            assert_eq!(stream(7, task), stream(7, task));
        }
        assert_ne!(stream(7, 0), stream(8, 0));
        assert_ne!(stream(7, 0), stream(7, 1));
    }

    #[test]
    fn cas_register_mixes_reads_unique_writes_and_cas_of_a_mates_value() {
        let ops: Vec<Vec<Op>> = (0..10).map(|t| stream(1, t)).collect();
        let count = |f: &str| ops[0].iter().filter(|o| o.call.f() == f).count();
        assert!(count("read") > 100 && count("write") > 100 && count("cas") > 100);
        // Every written value is unique.
        let mut written = std::collections::HashMap::new();
        for (task, stream) in ops.iter().enumerate() {
            for (n, op) in stream.iter().enumerate() {
                if let Call::Write(v) | Call::Cas(_, v) = &op.call {
                    assert!(
                        written.insert(v.clone(), (task, n, op.key.clone())).is_none(),
                        "{v} twice"
                    );
                }
            }
        }
        // A cas expects a value written on the same key by a task of its group (tasks 0-4 share keys),
        // a few operations earlier in that task's stream.
        for (task, stream) in ops.iter().enumerate() {
            for (n, op) in stream.iter().enumerate() {
                if let Call::Cas(from, _) = &op.call {
                    let (mate, m, key) = &written[from];
                    assert_eq!(*key, op.key);
                    assert_eq!(mate / 5, task / 5);
                    assert!(*m <= n && n - m < 40, "{m} {n}");
                }
            }
        }
    }

    #[test]
    fn keys_are_retired_after_a_bounded_number_of_ops() {
        let plan = KeyPlan {
            tasks_per_key: 3,
            ops_per_task_per_key: 7,
        };
        let mut per_key = std::collections::HashMap::<String, u64>::new();
        for task in 0..10 {
            let mut g = Generator::new(Workload::Register, 3, task, 10, plan);
            for _ in 0..100 {
                *per_key.entry(g.next_op().key).or_default() += 1;
            }
        }
        assert!(per_key.len() > 10, "many keys: {}", per_key.len());
        assert!(per_key.values().all(|&n| n <= 3 * 7), "{per_key:?}");
        // Groups of 3 tasks share keys: 4 groups (3,3,3,1).
        assert_eq!(per_key["k0"], 21);
        assert_eq!(per_key["k3"], 7);
    }

    #[test]
    fn set_elements_and_append_tokens_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for w in [Workload::Set, Workload::Append] {
            for task in 0..4 {
                let mut g = Generator::new(w, 0, task, 4, KeyPlan::default());
                for _ in 0..300 {
                    match g.next_op().call {
                        Call::Add(e) => assert!(seen.insert(e.to_string())),
                        Call::Append(s) => assert!(seen.insert(s)),
                        _ => {}
                    }
                }
            }
        }
    }

    #[test]
    fn names_parse_and_map_to_models() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>().unwrap(), w);
        }
        assert_eq!(Workload::Append.model_name(), "kv");
        assert!("queue".parse::<Workload>().is_err());
    }
}
