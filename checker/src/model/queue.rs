//! `unordered-queue` (a multiset) and `fifo-queue`.

use super::values::{ValueId, Values, ABSENT};
use super::{Compiled, Model, ModelError, ModelKind, Role};
use crate::history::{Operation, Outcome};
use serde_json::Value;

#[derive(Clone, Copy)]
enum Step {
    Enqueue(ValueId),
    /// Dequeued this element; [`ABSENT`] means the queue was empty.
    Dequeue(ValueId),
    /// An indeterminate dequeue of an unknown element (FIFO only: it removes the head, if any).
    DequeueUnknown,
}

/// What both queues compile to: the values, the initial queue, a step and a role per op, and the element
/// that stands for every element no dequeue returns (when there is one).
type QueueParts = (Values, Vec<ValueId>, Vec<Step>, Vec<Role>, Option<ValueId>);

fn compile_steps(kind: ModelKind, ops: &[&Operation], initial: &Value) -> Result<QueueParts, ModelError> {
    let mut values = Values::new(false);
    let initial = match initial {
        Value::Null => Vec::new(),
        Value::Array(a) => a.iter().map(|v| values.intern(v)).collect(),
        other => {
            return Err(ModelError {
                invoke_index: 0,
                field: "initial",
                message: format!("a queue starts as an array of elements, not {other}"),
            })
        }
    };
    let mut steps = Vec::with_capacity(ops.len());
    let mut roles = Vec::with_capacity(ops.len());
    for op in ops {
        let (step, role) = match (op.f.as_str(), op.outcome) {
            ("enqueue" | "enq" | "offer" | "push", o) => {
                let v = if op.input.is_null() { &op.output } else { &op.input };
                let role = match o {
                    Outcome::Ok => Role::Required,
                    Outcome::Info => Role::Optional,
                    Outcome::Fail => Role::Skip,
                };
                (Step::Enqueue(values.intern(v)), role)
            }
            ("dequeue" | "deq" | "poll" | "pop", Outcome::Ok) => {
                (Step::Dequeue(values.intern(&op.output)), Role::Required)
            }
            ("dequeue" | "deq" | "poll" | "pop", Outcome::Info) if kind == ModelKind::FifoQueue => {
                (Step::DequeueUnknown, Role::Optional)
            }
            ("dequeue" | "deq" | "poll" | "pop", _) => (Step::DequeueUnknown, Role::Skip),
            _ => return Err(ModelError::unknown_f(op, kind)),
        };
        steps.push(step);
        roles.push(role);
    }
    // An indeterminate enqueue of an element no dequeue returned can only make dequeues fail: leave it out.
    let mut seen = vec![false; values.len()];
    for s in &steps {
        if let Step::Dequeue(v) = s {
            seen[*v as usize] = true;
        }
    }
    for (s, role) in steps.iter().zip(roles.iter_mut()) {
        if let (Step::Enqueue(v), Role::Optional) = (s, *role) {
            if !seen[*v as usize] {
                *role = Role::Skip;
            }
        }
    }
    // A completed enqueue of an element no dequeue returns only keeps the queue from being empty (and, in a
    // FIFO queue, everything behind it from ever reaching the head): which such element it is never
    // matters, so they all become one BLOCKED element and concurrent ones stop multiplying the states. Not
    // when an indeterminate dequeue may have taken such an element off a FIFO queue's head.
    let unknown_takes = steps
        .iter()
        .zip(&roles)
        .any(|(s, r)| matches!(s, Step::DequeueUnknown) && *r != Role::Skip);
    let before = values.len();
    let blocked = values.intern_str(BLOCKED);
    // (Unless the history itself enqueues that text.)
    let blocked = (!unknown_takes && values.len() > before).then_some(blocked);
    if let Some(b) = blocked {
        for s in steps.iter_mut() {
            if let Step::Enqueue(v) = s {
                if !seen[*v as usize] {
                    *v = b;
                }
            }
        }
    }
    Ok((values, initial, steps, roles, blocked))
}

/// How a state shows the one element that stands for every enqueued element no dequeue returns.
const BLOCKED: &str = "(an element no dequeue returns)";

/// The state is the sorted multiset of elements.
pub(crate) struct UnorderedQueueModel {
    values: Values,
    initial: Vec<ValueId>,
    steps: Vec<Step>,
    blocked: Option<ValueId>,
}

impl UnorderedQueueModel {
    pub(crate) fn compile(
        ops: &[&Operation],
        initial: &Value,
    ) -> Result<Compiled<UnorderedQueueModel>, ModelError> {
        let (values, mut initial, steps, roles, blocked) =
            compile_steps(ModelKind::UnorderedQueue, ops, initial)?;
        initial.sort_unstable();
        Ok(Compiled {
            model: UnorderedQueueModel {
                values,
                initial,
                steps,
                blocked,
            },
            roles,
        })
    }
}

impl Model for UnorderedQueueModel {
    type State = Box<[ValueId]>;

    fn init(&mut self) -> Self::State {
        self.initial.clone().into_boxed_slice()
    }

    fn step(&mut self, state: &Self::State, op: usize) -> Option<Self::State> {
        match self.steps[op] {
            // One element no dequeue returns keeps the multiset non-empty as well as several.
            Step::Enqueue(v) if self.blocked == Some(v) && state.contains(&v) => Some(state.clone()),
            Step::Enqueue(v) => {
                let at = state.partition_point(|&x| x <= v);
                let mut s = Vec::with_capacity(state.len() + 1);
                s.extend_from_slice(&state[..at]);
                s.push(v);
                s.extend_from_slice(&state[at..]);
                Some(s.into_boxed_slice())
            }
            Step::Dequeue(ABSENT) => state.is_empty().then(|| state.clone()),
            Step::Dequeue(v) => {
                let at = state.binary_search(&v).ok()?;
                let mut s = state.to_vec();
                s.remove(at);
                Some(s.into_boxed_slice())
            }
            Step::DequeueUnknown => Some(state.clone()),
        }
    }

    fn pure(&self, op: usize) -> bool {
        matches!(self.steps[op], Step::Dequeue(ABSENT))
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.len() * 4
    }

    fn describe(&self, state: &Self::State) -> Value {
        Value::Array(state.iter().map(|&v| self.values.to_json(v)).collect())
    }
}

/// The state is the queue, head first.
pub(crate) struct FifoQueueModel {
    values: Values,
    initial: Vec<ValueId>,
    steps: Vec<Step>,
    blocked: Option<ValueId>,
}

impl FifoQueueModel {
    pub(crate) fn compile(
        ops: &[&Operation],
        initial: &Value,
    ) -> Result<Compiled<FifoQueueModel>, ModelError> {
        let (values, initial, steps, roles, blocked) = compile_steps(ModelKind::FifoQueue, ops, initial)?;
        Ok(Compiled {
            model: FifoQueueModel {
                values,
                initial,
                steps,
                blocked,
            },
            roles,
        })
    }
}

impl Model for FifoQueueModel {
    type State = Box<[ValueId]>;

    fn init(&mut self) -> Self::State {
        self.initial.clone().into_boxed_slice()
    }

    fn step(&mut self, state: &Self::State, op: usize) -> Option<Self::State> {
        match self.steps[op] {
            // Nothing behind an element no dequeue returns ever reaches the head.
            Step::Enqueue(_) if self.blocked.is_some_and(|b| state.contains(&b)) => Some(state.clone()),
            Step::Enqueue(v) => {
                let mut s = Vec::with_capacity(state.len() + 1);
                s.extend_from_slice(state);
                s.push(v);
                Some(s.into_boxed_slice())
            }
            Step::Dequeue(ABSENT) => state.is_empty().then(|| state.clone()),
            Step::Dequeue(v) => (state.first() == Some(&v)).then(|| state[1..].into()),
            Step::DequeueUnknown => Some(if state.is_empty() {
                state.clone()
            } else {
                state[1..].into()
            }),
        }
    }

    fn pure(&self, op: usize) -> bool {
        matches!(self.steps[op], Step::Dequeue(ABSENT))
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.len() * 4
    }

    fn describe(&self, state: &Self::State) -> Value {
        Value::Array(state.iter().map(|&v| self.values.to_json(v)).collect())
    }
}
