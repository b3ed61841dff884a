//! `mutex`: a lock that is free or held.

use super::{Compiled, Model, ModelError, ModelKind, Role};
use crate::history::{Operation, Outcome};
use serde_json::Value;

/// The state is whether the lock is held.
pub(crate) struct MutexModel {
    initial: bool,
    /// Per op: true for acquire, false for release.
    acquire: Vec<bool>,
}

impl MutexModel {
    pub(crate) fn compile(ops: &[&Operation], initial: &Value) -> Result<Compiled<MutexModel>, ModelError> {
        let initial = match initial {
            Value::Null | Value::Bool(false) => false,
            Value::Bool(true) => true,
            Value::String(s) if s == "free" => false,
            Value::String(s) if s == "held" => true,
            _ => {
                return Err(ModelError {
                    invoke_index: 0,
                    field: "initial",
                    message: format!("a mutex starts free (false) or held (true), not {initial}"),
                })
            }
        };
        let mut acquire = Vec::with_capacity(ops.len());
        let mut roles = Vec::with_capacity(ops.len());
        for op in ops {
            let a = match op.f.as_str() {
                "acquire" | "lock" => true,
                "release" | "unlock" => false,
                _ => return Err(ModelError::unknown_f(op, ModelKind::Mutex)),
            };
            acquire.push(a);
            roles.push(match op.outcome {
                Outcome::Ok => Role::Required,
                Outcome::Info => Role::Optional,
                Outcome::Fail => Role::Skip,
            });
        }
        Ok(Compiled {
            model: MutexModel { initial, acquire },
            roles,
        })
    }
}

impl Model for MutexModel {
    type State = bool;

    fn init(&mut self) -> bool {
        self.initial
    }

    fn step(&mut self, &held: &bool, op: usize) -> Option<bool> {
        // acquire needs it free and holds it; release needs it held and frees it.
        (self.acquire[op] != held).then_some(!held)
    }

    fn describe(&self, &held: &bool) -> Value {
        Value::String(if held { "held" } else { "free" }.into())
    }
}
