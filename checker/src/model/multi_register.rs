//! `multi-register`: transactions of reads and writes over several named registers.

use super::values::{ValueId, Values};
use super::{Compiled, Model, ModelError, ModelKind, Role};
use crate::history::{Operation, Outcome};
use rustc_hash::FxHashMap;
use serde_json::Value;

#[derive(Clone, Copy)]
enum Micro {
    /// Register slot, value that must be there.
    Read(u32, ValueId),
    Write(u32, ValueId),
}

/// The state is one interned value per register.
pub(crate) struct MultiRegisterModel {
    values: Values,
    keys: Vec<String>,
    initial: Vec<ValueId>,
    txns: Vec<Vec<Micro>>,
}

/// Register names to slots, in order of first appearance.
#[derive(Default)]
struct Slots {
    slots: FxHashMap<String, u32>,
    keys: Vec<String>,
}

impl Slots {
    fn slot_of(&mut self, k: &Value) -> u32 {
        let name = match k {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let keys = &mut self.keys;
        *self.slots.entry(name.clone()).or_insert_with(|| {
            keys.push(name);
            keys.len() as u32 - 1
        })
    }
}

impl MultiRegisterModel {
    pub(crate) fn compile(
        ops: &[&Operation],
        initial: &Value,
    ) -> Result<Compiled<MultiRegisterModel>, ModelError> {
        let mut values = Values::new(false);
        let mut slots = Slots::default();
        let mut init_pairs = Vec::new();
        match initial {
            Value::Null => {}
            Value::Object(m) => {
                for (k, v) in m {
                    let s = slots.slot_of(&Value::String(k.clone()));
                    init_pairs.push((s, values.intern(v)));
                }
            }
            other => {
                return Err(ModelError {
                    invoke_index: 0,
                    field: "initial",
                    message: format!("a multi-register starts as an object of registers, not {other}"),
                })
            }
        }
        let mut txns = Vec::with_capacity(ops.len());
        let mut roles = Vec::with_capacity(ops.len());
        for op in ops {
            if op.f != "txn" {
                return Err(ModelError::unknown_f(op, ModelKind::MultiRegister));
            }
            let role = match op.outcome {
                Outcome::Ok => Role::Required,
                Outcome::Info => Role::Optional,
                Outcome::Fail => Role::Skip,
            };
            txns.push(compile_txn(op, role, &mut slots, &mut values)?);
            roles.push(role);
        }
        let mut init = vec![super::values::ABSENT; slots.keys.len()];
        for (s, v) in init_pairs {
            init[s as usize] = v;
        }
        Ok(Compiled {
            model: MultiRegisterModel {
                values,
                keys: slots.keys,
                initial: init,
                txns,
            },
            roles,
        })
    }
}

/// One transaction's steps: what an ok txn returned (its reads' values), else what it was invoked with.
fn compile_txn(
    op: &Operation,
    role: Role,
    slots: &mut Slots,
    values: &mut Values,
) -> Result<Vec<Micro>, ModelError> {
    let body = if op.outcome == Outcome::Ok && op.output.is_array() {
        &op.output
    } else {
        &op.input
    };
    let Value::Array(micros) = body else {
        return Err(ModelError::new(
            op,
            "value",
            format!("a txn is a list of [f k v], not {body}"),
        ));
    };
    let mut txn = Vec::with_capacity(micros.len());
    for m in micros {
        let (f, k, v) = match m {
            Value::Array(a) if a.len() == 3 => (&a[0], &a[1], &a[2]),
            other => {
                return Err(ModelError::new(
                    op,
                    "value",
                    format!("a txn step is [f k v], not {other}"),
                ))
            }
        };
        let slot = slots.slot_of(k);
        match f.as_str() {
            Some("read" | "r") => {
                // A nil read constrains nothing (see the module docs).
                if !v.is_null() && role != Role::Optional {
                    txn.push(Micro::Read(slot, values.intern(v)));
                }
            }
            Some("write" | "w") => txn.push(Micro::Write(slot, values.intern(v))),
            _ => {
                return Err(ModelError::new(
                    op,
                    "value",
                    format!("a txn step is read or write, not {f}"),
                ))
            }
        }
    }
    Ok(txn)
}

impl Model for MultiRegisterModel {
    type State = Box<[ValueId]>;

    fn init(&mut self) -> Self::State {
        self.initial.clone().into_boxed_slice()
    }

    fn step(&mut self, state: &Self::State, op: usize) -> Option<Self::State> {
        let mut next: Option<Box<[ValueId]>> = None;
        for m in &self.txns[op] {
            let cur = next.as_deref().unwrap_or(state);
            match *m {
                Micro::Read(k, v) => {
                    if cur[k as usize] != v {
                        return None;
                    }
                }
                Micro::Write(k, v) => {
                    if cur[k as usize] != v {
                        next.get_or_insert_with(|| state.clone())[k as usize] = v;
                    }
                }
            }
        }
        Some(next.unwrap_or_else(|| state.clone()))
    }

    fn pure(&self, op: usize) -> bool {
        self.txns[op].iter().all(|m| matches!(m, Micro::Read(..)))
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.len() * 4
    }

    fn describe(&self, state: &Self::State) -> Value {
        let mut map = serde_json::Map::new();
        for (k, &v) in self.keys.iter().zip(state.iter()) {
            map.insert(k.clone(), self.values.to_json(v));
        }
        Value::Object(map)
    }
}
