//! `register`, `cas-register` and `kv` (one key's value: read, write, cas, and string append).

use super::observed::{Effect, Observed, SupplyCheck};
use super::values::{ValueId, Values};
use super::{is_comparison_failure, register_f, Compiled, Model, ModelError, ModelKind, RegisterF, Role};
use crate::history::{Operation, Outcome};
use serde_json::Value;

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Observed this value.
    Read(ValueId),
    Write(ValueId),
    /// Compare-and-set that succeeded.
    Cas(ValueId, ValueId),
    /// Compare-and-set that failed because the value differed from this one.
    CasFailed(ValueId),
    Append(ValueId),
    /// Not part of the search.
    None,
}

/// A register; with `kv`, string append too. The state is the interned value.
#[derive(Clone)]
pub(crate) struct RegisterModel {
    values: Values,
    initial: ValueId,
    steps: Vec<Step>,
    /// Append pruning (kv): per group (key), the reads to check and, per read, the ops that may reset the
    /// value to a prefix of what it read.
    prune: Option<Prune>,
    /// Register and cas-register pruning (see [`super::observed`]).
    observed: Option<Observed>,
    /// Steps the pruning hook has seen, after how many the supply check runs and how (see [`SUPPLY_AFTER`]).
    pruned_steps: u64,
    supply_after: u64,
    supply: SupplyCheck,
}

/// The supply check ([`Observed::stranded`]) costs a scan of a value's observers and writers at each step: it
/// runs from the start on keys of at least this many operations, and on smaller ones, for values some
/// indeterminate operation writes, once their search has taken [`SUPPLY_AFTER`] steps (a key of a thousand
/// operations is decided in a few thousand). Turning a rule that only cuts dead branches on midway keeps the
/// search exact.
const SUPPLY_MIN_OPS: usize = 4096;
const SUPPLY_AFTER: u64 = 1 << 16;

#[derive(Clone)]
struct Prune {
    group_of: Vec<u32>,
    /// Per group: (read op, its string, ops (write/cas) whose new value is a prefix of it).
    reads: Vec<Vec<ReadCheck>>,
}

/// A read to keep reachable: its op, the string it saw, the resets that may lead to it.
type ReadCheck = (usize, Box<str>, Vec<usize>);

impl RegisterModel {
    /// Compiles `ops` (with `group[i]` the key slot of op i, all 0 when partitioned).
    pub(crate) fn compile(
        kind: ModelKind,
        ops: &[&Operation],
        group: &[u32],
        groups: usize,
        initial: &Value,
    ) -> Result<Compiled<RegisterModel>, ModelError> {
        let kv = kind == ModelKind::Kv;
        let mut values = Values::new(kv);
        let initial = values.intern(initial);
        let mut steps = Vec::with_capacity(ops.len());
        let mut roles = Vec::with_capacity(ops.len());
        for op in ops {
            let f = register_f(&op.f).ok_or_else(|| ModelError::unknown_f(op, kind))?;
            let allowed = match f {
                RegisterF::Read | RegisterF::Write => true,
                RegisterF::Cas => kind != ModelKind::Register,
                RegisterF::Append => kv,
            };
            if !allowed {
                return Err(ModelError::unknown_f(op, kind));
            }
            let (step, role) = match (f, op.outcome) {
                (RegisterF::Read, Outcome::Ok) => (Step::Read(values.intern(&op.output)), Role::Required),
                (RegisterF::Read, _) => (Step::None, Role::Skip),
                (_, Outcome::Fail) if f != RegisterF::Cas => (Step::None, Role::Skip),
                (RegisterF::Write, o) => (Step::Write(values.intern(arg(op))), role_of(o)),
                (RegisterF::Append, o) => {
                    let v = arg(op);
                    if !v.is_string() {
                        return Err(ModelError::new(
                            op,
                            "value",
                            format!("append needs a string, not {v}"),
                        ));
                    }
                    (Step::Append(values.intern(v)), role_of(o))
                }
                (RegisterF::Cas, o) => {
                    let (a, b) = pair(op)?;
                    let (a, b) = (values.intern(a), values.intern(b));
                    match o {
                        Outcome::Fail if is_comparison_failure(op.error.as_deref()) => {
                            (Step::CasFailed(a), Role::Required)
                        }
                        Outcome::Fail => (Step::None, Role::Skip),
                        // A cas from a value to itself changes nothing: done, it is a read of that value
                        // (pure, so a forced step where it fits); indeterminate, it can be left out.
                        Outcome::Ok if a == b => (Step::Read(a), Role::Required),
                        _ if a == b => (Step::None, Role::Skip),
                        o => (Step::Cas(a, b), role_of(o)),
                    }
                }
            };
            steps.push(step);
            roles.push(role);
        }
        let (prune, observed) = if kv {
            (Prune::build(&values, &steps, &roles, group, groups), None)
        } else {
            let spans: Vec<(u64, Option<u64>)> =
                ops.iter().map(|o| (o.invoke_index, o.complete_index)).collect();
            (None, Some(observe(&steps, &mut roles, group, initial, &spans)))
        };
        Ok(Compiled {
            model: RegisterModel {
                values,
                initial,
                steps,
                prune,
                observed,
                pruned_steps: 0,
                supply_after: if ops.len() >= SUPPLY_MIN_OPS {
                    0
                } else {
                    SUPPLY_AFTER
                },
                supply: if ops.len() >= SUPPLY_MIN_OPS {
                    SupplyCheck::Every
                } else {
                    SupplyCheck::Indeterminate
                },
            },
            roles,
        })
    }
}

impl RegisterModel {
    /// Runs the supply check, for every value, once the search has taken `steps` steps, whatever the key's
    /// size.
    pub(crate) fn supply_after(&mut self, steps: u64) {
        self.supply_after = steps;
        self.supply = SupplyCheck::Every;
    }
}

/// The observation tables of a register or cas-register; indeterminate operations they show useless or idle
/// are skipped, and the tables built again without them (which may show more), until none is left.
fn observe(
    steps: &[Step],
    roles: &mut [Role],
    group: &[u32],
    initial: ValueId,
    spans: &[(u64, Option<u64>)],
) -> Observed {
    loop {
        let effects: Vec<Effect> = steps
            .iter()
            .zip(roles.iter())
            .map(|(s, r)| match (*s, r) {
                (_, Role::Skip) => Effect::None,
                (Step::Read(v), _) => Effect::Needs(v),
                (Step::Write(v), _) => Effect::Sets(v),
                (Step::Cas(a, b), _) => Effect::NeedsSets(a, b),
                (Step::CasFailed(a), _) => Effect::NeedsNot(a),
                (Step::Append(_) | Step::None, _) => Effect::None,
            })
            .collect();
        let required: Vec<bool> = roles.iter().map(|r| *r == Role::Required).collect();
        let mut observed = Observed::build(&effects, &required, group, initial);
        let mut dropped = false;
        for (i, s) in steps.iter().enumerate() {
            let drop = match *s {
                Step::Write(v) => observed.useless(i, v),
                Step::Cas(a, v) => observed.useless(i, v) || observed.idle(i, a),
                _ => false,
            };
            if roles[i] == Role::Optional && drop {
                roles[i] = Role::Skip;
                dropped = true;
            }
        }
        if !dropped {
            observed.find_stale_reads(&effects, &required, spans);
            return observed;
        }
    }
}

fn role_of(o: Outcome) -> Role {
    match o {
        Outcome::Ok => Role::Required,
        Outcome::Info => Role::Optional,
        Outcome::Fail => Role::Skip,
    }
}

/// The argument of a write-like op: the invoke's value, or the completion's when the invoke had none.
fn arg(op: &Operation) -> &Value {
    if op.input.is_null() {
        &op.output
    } else {
        &op.input
    }
}

fn pair(op: &Operation) -> Result<(&Value, &Value), ModelError> {
    match arg(op) {
        Value::Array(a) if a.len() == 2 => Ok((&a[0], &a[1])),
        other => Err(ModelError::new(
            op,
            "value",
            format!("cas needs [expected, new], not {other}"),
        )),
    }
}

impl Prune {
    fn build(values: &Values, steps: &[Step], roles: &[Role], group: &[u32], groups: usize) -> Option<Prune> {
        let mut reads: Vec<Vec<ReadCheck>> = vec![Vec::new(); groups];
        let mut resets: Vec<Vec<(usize, &str)>> = vec![Vec::new(); groups];
        for (i, s) in steps.iter().enumerate() {
            if roles[i] == Role::Skip {
                continue;
            }
            match *s {
                Step::Write(v) | Step::Cas(_, v) | Step::Append(v) => {
                    let text = values.as_str(v)?;
                    if !matches!(s, Step::Append(_)) {
                        resets[group[i] as usize].push((i, text));
                    }
                }
                Step::Read(v) => {
                    let text = values.as_str(v)?;
                    reads[group[i] as usize].push((i, text.into(), Vec::new()));
                }
                Step::CasFailed(_) | Step::None => {}
            }
        }
        for (g, rs) in reads.iter_mut().enumerate() {
            for (_, text, by) in rs.iter_mut() {
                by.extend(
                    resets[g]
                        .iter()
                        .filter(|(_, w)| text.starts_with(w))
                        .map(|(i, _)| *i),
                );
            }
        }
        Some(Prune {
            group_of: group.to_vec(),
            reads,
        })
    }
}

fn is_done(done: &[u64], i: usize) -> bool {
    done[i / 64] >> (i % 64) & 1 == 1
}

impl Model for RegisterModel {
    type State = ValueId;

    fn init(&mut self) -> ValueId {
        self.initial
    }

    fn step(&mut self, &state: &ValueId, op: usize) -> Option<ValueId> {
        match self.steps[op] {
            Step::Read(v) => (v == state).then_some(state),
            Step::Write(v) => Some(v),
            Step::Cas(a, b) => (a == state).then_some(b),
            Step::CasFailed(a) => (a != state).then_some(state),
            Step::Append(v) => self.values.concat(state, v),
            Step::None => Some(state),
        }
    }

    fn pure(&self, op: usize) -> bool {
        matches!(self.steps[op], Step::Read(_) | Step::CasFailed(_) | Step::None)
    }

    /// kv: without a reset (write or cas) still to come, a key's string only grows, so every read not yet
    /// linearized must see the current string as its prefix, or start with the value of a reset to come.
    /// register, cas-register: an observer stranded by leaving its value (see [`super::observed`]).
    fn unreachable(
        &mut self,
        &before: &ValueId,
        &state: &ValueId,
        op: usize,
        done: &[u64],
        limit: u64,
    ) -> Option<usize> {
        if let Some(o) = &self.observed {
            let supply = if self.pruned_steps >= self.supply_after {
                self.supply
            } else {
                SupplyCheck::Off
            };
            self.pruned_steps += 1;
            return o.stranded(before, state, op, done, limit, supply);
        }
        let prune = self.prune.as_ref()?;
        let now = self.values.as_str(state)?;
        let g = prune.group_of[op] as usize;
        prune.reads[g]
            .iter()
            .find(|(r, text, by)| {
                !is_done(done, *r) && !text.starts_with(now) && by.iter().all(|&w| is_done(done, w))
            })
            .map(|(r, _, _)| *r)
    }

    fn frozen(&mut self, &before: &ValueId, &after: &ValueId, op: usize, done: &[u64]) -> Option<usize> {
        self.observed.as_ref()?.frozen(before, after, op, done)
    }

    fn impossible(&mut self) -> Option<usize> {
        self.observed.as_ref()?.impossible()
    }

    fn cache_key(&self, &state: &ValueId, done: &[u64]) -> ValueId {
        match &self.observed {
            Some(o) => o.canonical(state, done),
            None => state,
        }
    }

    /// register and cas-register: an indeterminate write or cas followed by a write can be dropped; followed
    /// by a failed cas that passes in the state before it too, it can move after that one; so in some
    /// linearization each one is followed by a read of its value, a failed cas that only its value lets
    /// pass, or a cas from its value.
    fn lazy_optional(&self) -> bool {
        self.observed.as_ref().is_some_and(Observed::single_slot)
    }

    fn awaited(&self, op: usize, &state: &ValueId, done: &[u64], limit: u64) -> bool {
        match (&self.observed, self.steps[op]) {
            (Some(o), Step::Write(v) | Step::Cas(_, v)) => o.awaited(op, v, state, done, limit),
            _ => true,
        }
    }

    fn consumes(&self, op: usize) -> bool {
        matches!(self.steps[op], Step::Cas(..))
    }

    fn blind(&self, op: usize, done: &[u64]) -> bool {
        match (&self.observed, self.steps[op]) {
            (Some(o), Step::Write(v)) => o.blind_write(op, v, done),
            _ => false,
        }
    }

    fn class(&self, op: usize) -> Option<u64> {
        let o = self.observed.as_ref()?;
        match self.steps[op] {
            Step::Write(v) => o.class(None, v),
            Step::Cas(a, b) => o.class(Some(a), b),
            _ => None,
        }
    }

    /// register and cas-register: every value is interned when compiled, so a copy's ids are the same.
    /// kv interns the strings appends build during the search: no copy.
    fn fork(&self) -> Option<Self> {
        self.observed.is_some().then(|| self.clone())
    }

    fn describe(&self, &state: &ValueId) -> Value {
        self.values.to_json(state)
    }

    fn heap_bytes(&self) -> usize {
        self.values.heap_bytes() + self.observed.as_ref().map_or(0, Observed::heap_bytes)
    }
}
