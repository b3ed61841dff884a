//! Sequential specifications: what each operation of a history may observe, given the state before it.
//!
//! A model turns a key's [`Operation`]s into compact steps (values interned to small integers), decides for
//! each operation what role it plays in the search ([`Role`]), and steps a state through them. The search in
//! [`crate::linearizability`] never looks at JSON.
//!
//! # Models and their operations
//!
//! | model | `f` (accepted spellings) | value |
//! | --- | --- | --- |
//! | `register` | `read`/`get`/`r`, `write`/`put`/`w` | read: the value read (ok); write: the value |
//! | `cas-register` | the above, and `cas`/`compare-and-set`/`swap` | cas: `[expected, new]` |
//! | `kv` | the above, and `append` | append: a string, concatenated to the key's string |
//! | `mutex` | `acquire`/`lock`, `release`/`unlock` | ignored |
//! | `multi-register` | `txn` | `[[f, k, v], ...]` with `f` = `read`/`r` or `write`/`w` |
//! | `set` | `add`, `read` | add: the element; read: every element (array) |
//! | `unordered-queue` | `enqueue`/`enq`/`offer`, `dequeue`/`deq`/`poll` | enqueue: the element; dequeue: it |
//! | `fifo-queue` | same as `unordered-queue` | same |
//!
//! # Semantics of outcomes (one rule for faultline's, Jepsen's and Porcupine's histories)
//!
//! - `ok`: the operation took effect once, between its invoke and its completion, and observed what its
//!   completion says.
//! - `fail`: it did not take effect and is dropped, with one exception: a failed `cas` whose error says the
//!   comparison failed (it contains `mismatch`, `compar`, `precondition`, `not-equal`, `unequal` or
//!   `differ`, e.g. faultline's `cas-mismatch`) is kept as an *observation*: at some point between its
//!   invoke and its completion the value differed from `expected`. A bare `:fail :cas` with no error (as in
//!   Knossos's histories and Jepsen's etcd logs) is dropped: Knossos's MongoDB histories fail cas for other
//!   reasons than a mismatch, and dropping keeps every expected result of both corpora (Porcupine's reading,
//!   an observation, would also hold on its own logs but calls nine of Knossos's valid histories invalid).
//! - `info`, or never completed: it may take effect at any point after its invoke, or never. Operations that
//!   cannot change the state (reads, an indeterminate dequeue of an unordered queue whose element is unknown)
//!   are dropped; the others are optional, with no upper time bound.
//! - A `null` read means *absent*: the register (or key) has no value. The initial value is absent unless
//!   `--initial` says otherwise. Knossos's cas-register histories begin with nil reads and failed cas
//!   from 0, which is this rule with an absent initial value; Porcupine's etcd logs read nil for a missing
//!   key, which is the same rule. Both corpora's expected results hold under it.
//! - `kv`: an absent key and the empty string are the same value, so an `append` to a missing key starts
//!   from `""` and a read of `""` matches a missing key (as in Porcupine's kv histories).
//! - `multi-register`: a `[read k nil]` micro-operation constrains nothing (Jepsen's transactions carry nil
//!   reads on invoke; an ok completion fills them in), as in Knossos.
//! - Queues: an ok dequeue whose value is `null` saw an empty queue.

mod multi_register;
mod mutex;
mod observed;
mod queue;
mod register;
mod set;
mod values;

pub(crate) use multi_register::MultiRegisterModel;
pub(crate) use mutex::MutexModel;
pub(crate) use queue::{FifoQueueModel, UnorderedQueueModel};
pub(crate) use register::RegisterModel;
pub(crate) use set::SetModel;

use crate::history::Operation;
use serde_json::Value;
use std::hash::Hash;

/// The models faultline knows, by their command-line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    Register,
    CasRegister,
    Kv,
    Mutex,
    MultiRegister,
    Set,
    UnorderedQueue,
    FifoQueue,
}

impl ModelKind {
    /// Every model, in the order `--help` lists them.
    pub const ALL: [ModelKind; 8] = [
        ModelKind::CasRegister,
        ModelKind::Register,
        ModelKind::Kv,
        ModelKind::Mutex,
        ModelKind::MultiRegister,
        ModelKind::Set,
        ModelKind::UnorderedQueue,
        ModelKind::FifoQueue,
    ];

    /// The command-line name, e.g. `cas-register`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::Mutex => "mutex",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::Set => "set",
            ModelKind::UnorderedQueue => "unordered-queue",
            ModelKind::FifoQueue => "fifo-queue",
        }
    }

    /// Parses a model name (also `cas`, `queue` for `unordered-queue`, `kv-nopartition` for `kv`).
    pub fn parse(name: &str) -> Option<ModelKind> {
        let n = name.trim().to_ascii_lowercase().replace('_', "-");
        Some(match n.as_str() {
            "register" => ModelKind::Register,
            "cas-register" | "cas" | "casregister" => ModelKind::CasRegister,
            "kv" | "kv-nopartition" | "key-value" => ModelKind::Kv,
            "mutex" | "lock" => ModelKind::Mutex,
            "multi-register" | "multiregister" => ModelKind::MultiRegister,
            "set" => ModelKind::Set,
            "unordered-queue" | "queue" => ModelKind::UnorderedQueue,
            "fifo-queue" | "fifo" => ModelKind::FifoQueue,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What an operation is to the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Nothing to linearize (a failed write, an indeterminate read).
    Skip,
    /// Must be linearized between its invoke and its completion.
    Required,
    /// May be linearized at any point after its invoke, or never (indeterminate).
    Optional,
}

/// An operation the model cannot read: an `f` it does not know, or a value of the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ModelError {
    /// `invoke_index` of the operation at fault.
    pub invoke_index: u64,
    /// `f` or `value`.
    pub field: &'static str,
    pub message: String,
}

impl ModelError {
    pub(crate) fn new(op: &Operation, field: &'static str, message: impl Into<String>) -> ModelError {
        ModelError {
            invoke_index: op.invoke_index,
            field,
            message: message.into(),
        }
    }

    pub(crate) fn unknown_f(op: &Operation, model: ModelKind) -> ModelError {
        ModelError::new(
            op,
            "f",
            format!("unknown operation {:?} for the {} model", op.f, model.name()),
        )
    }
}

/// A sequential specification compiled for one search: the operations are numbered `0..n` in the order
/// they were given, and `step` applies operation `op` to a state.
pub(crate) trait Model: Send {
    /// A state: small, cheap to clone and hash (values are interned to integers).
    type State: Clone + Eq + Hash + Send + Sync;

    /// The state before any operation.
    fn init(&mut self) -> Self::State;

    /// The state after `op`, or None when `op` cannot happen in `state` (its observation contradicts it).
    fn step(&mut self, state: &Self::State, op: usize) -> Option<Self::State>;

    /// Whether `op` leaves every state it can happen in unchanged (a read). The search linearizes such an
    /// operation as soon as it can.
    fn pure(&self, _op: usize) -> bool {
        false
    }

    /// A cheap necessary condition: can every operation that is not yet linearized (`done` false) still be
    /// linearized after `op` took the state from `before` to `after`? `Some(r)` prunes the branch, naming an
    /// operation `r` that no longer can. `limit` is the first completion still to come when `op` was chosen
    /// (every required operation not in `done` completes at or after it). The default never prunes.
    fn unreachable(
        &mut self,
        _before: &Self::State,
        _after: &Self::State,
        _op: usize,
        _done: &[u64],
        _limit: u64,
    ) -> Option<usize> {
        None
    }

    /// After `op` took the state from `before` to `after`: an operation (numbers are in invoke order) that
    /// must be linearized before the state can change again. The search then checks that every required
    /// operation whose completion comes before that one's invoke can happen in `after` and keep it. The
    /// default knows none.
    fn frozen(
        &mut self,
        _before: &Self::State,
        _after: &Self::State,
        _op: usize,
        _done: &[u64],
    ) -> Option<usize> {
        None
    }

    /// Whether indeterminate operations may be linearized lazily: only right before an operation that
    /// depends on their result. Sound when any linearization can be rearranged so: an indeterminate `o`
    /// followed by an operation that ignores its result can move past it (the operation happens in the
    /// state before `o` too, or it overwrites `o`'s result, and then `o` can be dropped). Pure dependants
    /// are forced steps; the others are those [`Model::consumes`] names.
    fn lazy_optional(&self) -> bool {
        false
    }

    /// Whether `op` reads the state it changes (a cas): the only non-pure operations that may follow an
    /// indeterminate one under [`Model::lazy_optional`].
    fn consumes(&self, _op: usize) -> bool {
        false
    }

    /// Under [`Model::lazy_optional`]: whether the indeterminate `op`, tried in `state` once `done` is
    /// linearized, could be followed at once by an operation that depends on its result and is invoked at or
    /// before position `limit` (the first completion still to come: nothing invoked later can follow yet).
    /// False lets the search skip `op` there: a linearization placing it there can drop it or move it later.
    /// The default does not know (true).
    fn awaited(&self, _op: usize, _state: &Self::State, _done: &[u64], _limit: u64) -> bool {
        true
    }

    /// A required operation that no linearization can include whatever the order (it observes what nothing
    /// can produce): the history is not linearizable. The default knows none.
    fn impossible(&mut self) -> Option<usize> {
        None
    }

    /// The state as the search's cache files it once the operations in `done` are linearized: states that no
    /// operation left can tell apart may share one key.
    fn cache_key(&self, state: &Self::State, _done: &[u64]) -> Self::State {
        state.clone()
    }

    /// Whether the indeterminate `op` is, once `done` is linearized, interchangeable with every other such
    /// operation (its effect can no longer be told apart from theirs): the search then tries only the
    /// first such candidate at a node. The default knows none.
    fn blind(&self, _op: usize, _done: &[u64]) -> bool {
        false
    }

    /// Indeterminate operations of the same class do exactly the same thing in every state, so the search
    /// linearizes them only in invoke order (any linearization using some of them can use the earliest ones
    /// instead). None: in no class.
    fn class(&self, _op: usize) -> Option<u64> {
        None
    }

    /// A copy for another worker of a parallel search, whose states mean the same as this one's (so that
    /// workers can share a cache): None when the model cannot promise that (it interns values as it goes).
    fn fork(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }

    /// Extra bytes a state holds on the heap (for the memory bound).
    fn state_heap_bytes(&self, _state: &Self::State) -> usize {
        0
    }

    /// Bytes the model itself holds and may grow during the search (interned values).
    fn heap_bytes(&self) -> usize {
        0
    }

    /// The state as JSON, for counterexamples.
    fn describe(&self, state: &Self::State) -> Value;
}

/// The role of each operation and the model, compiled from one key's operations.
pub(crate) struct Compiled<M> {
    pub model: M,
    /// Per input operation: its role (ops with [`Role::Skip`] are never stepped).
    pub roles: Vec<Role>,
}

/// Accepted spellings of the register family's functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegisterF {
    Read,
    Write,
    Cas,
    Append,
}

pub(crate) fn register_f(f: &str) -> Option<RegisterF> {
    Some(match f {
        "read" | "get" | "r" => RegisterF::Read,
        "write" | "put" | "w" | "set" => RegisterF::Write,
        "cas" | "compare-and-set" | "compare_and_set" | "compare-and-swap" | "swap" => RegisterF::Cas,
        "append" => RegisterF::Append,
        _ => return None,
    })
}

/// Whether a failed cas is an observation that the value differed (see the module docs).
pub(crate) fn is_comparison_failure(error: Option<&str>) -> bool {
    let Some(e) = error else { return false };
    let e = e.to_ascii_lowercase();
    let says_compare = [
        "mismatch",
        "compar",
        "precondition",
        "not-equal",
        "unequal",
        "differ",
    ]
    .iter()
    .any(|w| e.contains(w));
    let says_other = ["timeout", "timed-out", "unavailable"]
        .iter()
        .any(|w| e.contains(w));
    says_compare && !says_other
}

/// The sub-model of one key inside a whole-map model (`--no-partition`): operations are routed to their
/// key's slot of the state.
pub(crate) struct Keyed<M: Model> {
    pub inner: M,
    /// Key slot of each operation.
    pub slot: Vec<u32>,
    pub slots: usize,
    pub keys: Vec<String>,
}

impl<M: Model> Model for Keyed<M> {
    type State = Box<[M::State]>;

    fn init(&mut self) -> Self::State {
        let s = self.inner.init();
        vec![s; self.slots].into_boxed_slice()
    }

    fn step(&mut self, state: &Self::State, op: usize) -> Option<Self::State> {
        let k = self.slot[op] as usize;
        let next = self.inner.step(&state[k], op)?;
        if next == state[k] {
            return Some(state.clone());
        }
        let mut out = state.clone();
        out[k] = next;
        Some(out)
    }

    fn pure(&self, op: usize) -> bool {
        self.inner.pure(op)
    }

    fn unreachable(
        &mut self,
        before: &Self::State,
        after: &Self::State,
        op: usize,
        done: &[u64],
        limit: u64,
    ) -> Option<usize> {
        let k = self.slot[op] as usize;
        self.inner.unreachable(&before[k], &after[k], op, done, limit)
    }

    fn impossible(&mut self) -> Option<usize> {
        self.inner.impossible()
    }

    fn class(&self, op: usize) -> Option<u64> {
        // Only when the inner model has one slot (its classes are then this key's).
        (self.slots == 1).then(|| self.inner.class(op)).flatten()
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.len() * std::mem::size_of::<M::State>()
            + state
                .iter()
                .map(|s| self.inner.state_heap_bytes(s))
                .sum::<usize>()
    }

    fn heap_bytes(&self) -> usize {
        self.inner.heap_bytes()
    }

    fn describe(&self, state: &Self::State) -> Value {
        let mut map = serde_json::Map::new();
        for (k, s) in self.keys.iter().zip(state.iter()) {
            map.insert(k.clone(), self.inner.describe(s));
        }
        Value::Object(map)
    }
}
