//! `set`: add elements, read them all.

use super::values::{ValueId, Values};
use super::{Compiled, Model, ModelError, ModelKind, Role};
use crate::history::{Operation, Outcome};
use serde_json::Value;

enum Step {
    Add(ValueId),
    /// A read that saw exactly these elements (a bitset over element ids).
    Read(Box<[u64]>),
}

/// The state is a bitset over the interned elements.
pub(crate) struct SetModel {
    values: Values,
    words: usize,
    initial: Vec<ValueId>,
    steps: Vec<Step>,
}

impl SetModel {
    pub(crate) fn compile(ops: &[&Operation], initial: &Value) -> Result<Compiled<SetModel>, ModelError> {
        let mut values = Values::new(false);
        let initial = match initial {
            Value::Null => Vec::new(),
            Value::Array(a) => a.iter().map(|v| values.intern(v)).collect(),
            other => {
                return Err(ModelError {
                    invoke_index: 0,
                    field: "initial",
                    message: format!("a set starts as an array of elements, not {other}"),
                })
            }
        };
        let mut raw: Vec<Result<ValueId, Vec<ValueId>>> = Vec::with_capacity(ops.len());
        let mut roles = Vec::with_capacity(ops.len());
        for op in ops {
            match op.f.as_str() {
                "add" | "insert" => {
                    let v = if op.input.is_null() { &op.output } else { &op.input };
                    raw.push(Ok(values.intern(v)));
                    roles.push(match op.outcome {
                        Outcome::Ok => Role::Required,
                        Outcome::Info => Role::Optional,
                        Outcome::Fail => Role::Skip,
                    });
                }
                "read" | "get" | "r" => {
                    if op.outcome != Outcome::Ok {
                        raw.push(Err(Vec::new()));
                        roles.push(Role::Skip);
                        continue;
                    }
                    let Value::Array(items) = &op.output else {
                        return Err(ModelError::new(
                            op,
                            "value",
                            format!("a set read returns an array of elements, not {}", op.output),
                        ));
                    };
                    raw.push(Err(items.iter().map(|v| values.intern(v)).collect()));
                    roles.push(Role::Required);
                }
                _ => return Err(ModelError::unknown_f(op, ModelKind::Set)),
            }
        }
        // An indeterminate add of an element no read saw can only make reads fail: leave it out.
        let mut seen = vec![false; values.len()];
        for r in &raw {
            if let Err(items) = r {
                for &i in items {
                    seen[i as usize] = true;
                }
            }
        }
        for (r, role) in raw.iter().zip(roles.iter_mut()) {
            if let (Ok(v), Role::Optional) = (r, *role) {
                if !seen[*v as usize] {
                    *role = Role::Skip;
                }
            }
        }
        let words = values.len().div_ceil(64);
        let steps = raw
            .into_iter()
            .map(|r| match r {
                Ok(v) => Step::Add(v),
                Err(items) => Step::Read(bits(words, &items)),
            })
            .collect();
        Ok(Compiled {
            model: SetModel {
                values,
                words,
                initial,
                steps,
            },
            roles,
        })
    }
}

fn bits(words: usize, items: &[ValueId]) -> Box<[u64]> {
    let mut b = vec![0u64; words.max(1)];
    for &i in items {
        b[i as usize / 64] |= 1 << (i % 64);
    }
    b.into_boxed_slice()
}

impl Model for SetModel {
    type State = Box<[u64]>;

    fn init(&mut self) -> Box<[u64]> {
        bits(self.words, &self.initial)
    }

    fn step(&mut self, state: &Box<[u64]>, op: usize) -> Option<Box<[u64]>> {
        match &self.steps[op] {
            Step::Add(v) => {
                let (w, b) = (*v as usize / 64, 1u64 << (v % 64));
                if state[w] & b != 0 {
                    return Some(state.clone());
                }
                let mut s = state.clone();
                s[w] |= b;
                Some(s)
            }
            Step::Read(seen) => (seen == state).then(|| state.clone()),
        }
    }

    fn pure(&self, op: usize) -> bool {
        matches!(self.steps[op], Step::Read(_))
    }

    fn state_heap_bytes(&self, state: &Box<[u64]>) -> usize {
        state.len() * 8
    }

    fn describe(&self, state: &Box<[u64]>) -> Value {
        let mut out = Vec::new();
        for (w, word) in state.iter().enumerate() {
            for b in 0..64 {
                if word >> b & 1 == 1 {
                    out.push(self.values.to_json((w * 64 + b) as ValueId));
                }
            }
        }
        Value::Array(out)
    }
}
