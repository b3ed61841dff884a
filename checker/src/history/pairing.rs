//! Pairing invokes with completions (Jepsen's semantics).

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::raw::kind_name;
use super::{EventType, History, HistoryError, Operation, Outcome, Process};

/// Pairs invokes with completions. `strict`: inconsistencies are errors; otherwise they are tolerated as
/// well as can be (for checkers that only count, like stats and availability).
pub(crate) fn pair(history: &History, strict: bool) -> Result<Vec<Operation>, HistoryError> {
    let invokes = history
        .events
        .iter()
        .filter(|e| e.kind == EventType::Invoke)
        .count();
    let mut ops: Vec<Operation> = Vec::with_capacity(invokes);
    // For each process with an open invoke: the position of its operation in `ops` and of the invoke event.
    let mut open: FxHashMap<u64, (usize, usize)> = FxHashMap::default();
    // Per process, the time and position of its last event. Times may go backwards across processes (Jepsen
    // records a worker's clock reading, then appends under a lock), but never within one process.
    let mut last_time: FxHashMap<u64, (u64, usize)> = FxHashMap::default();
    let at = |pos: usize, field: &str, msg: String| HistoryError::at(history, pos, field, msg);
    let where_ = |pos: usize| match history.line_of(pos) {
        Some(l) => format!("line {l}"),
        None => format!("event {pos}"),
    };
    for (pos, e) in history.events.iter().enumerate() {
        let Process::Client(p) = e.process else { continue };
        if strict {
            if let Some(&(t, tp)) = last_time.get(&p) {
                if e.time < t {
                    return Err(at(
                        pos,
                        "time",
                        format!(
                            "time goes backwards on process {p}: {} is before {t} at {}",
                            e.time,
                            where_(tp)
                        ),
                    ));
                }
            }
        }
        last_time.insert(p, (e.time, pos));
        match e.kind {
            EventType::Invoke => {
                if let Some(&(op_pos, inv_pos)) = open.get(&p) {
                    if strict {
                        return Err(at(
                            pos,
                            "process",
                            format!(
                                "process {p} invokes {} while its {} invoked at {} has not completed",
                                e.f,
                                ops[op_pos].f,
                                where_(inv_pos)
                            ),
                        ));
                    }
                    // Tolerated: the earlier op stays open-ended (it is already Info with no ret).
                    let _ = op_pos;
                }
                open.insert(p, (ops.len(), pos));
                ops.push(Operation {
                    process: p,
                    f: e.f.clone(),
                    key: e.key.clone(),
                    input: e.value.clone(),
                    output: Value::Null,
                    outcome: Outcome::Info,
                    error: e.error.clone(),
                    invoke_index: e.index,
                    complete_index: None,
                    call: e.time,
                    ret: None,
                });
            }
            kind => {
                let Some((op_pos, inv_pos)) = open.remove(&p) else {
                    if kind == EventType::Info || !strict {
                        continue;
                    }
                    return Err(at(
                        pos,
                        "type",
                        format!(
                            "{} completion of {} on process {p}, which has no open invoke",
                            kind_name(kind),
                            e.f
                        ),
                    ));
                };
                let op = &mut ops[op_pos];
                if strict && op.f != e.f {
                    return Err(at(
                        pos,
                        "f",
                        format!(
                            "completion is {} but the invoke at {} is {}",
                            e.f,
                            where_(inv_pos),
                            op.f
                        ),
                    ));
                }
                match (&op.key, &e.key) {
                    (Some(a), Some(b)) if a != b && strict => {
                        return Err(at(
                            pos,
                            "key",
                            format!(
                                "completion has key {b:?} but the invoke at {} has {a:?}",
                                where_(inv_pos)
                            ),
                        ))
                    }
                    (None, Some(b)) => op.key = Some(b.clone()),
                    _ => {}
                }
                op.output = e.value.clone();
                op.complete_index = Some(e.index);
                if e.error.is_some() {
                    op.error = e.error.clone();
                }
                match kind {
                    EventType::Ok => {
                        op.outcome = Outcome::Ok;
                        op.ret = Some(e.time);
                    }
                    EventType::Fail => {
                        op.outcome = Outcome::Fail;
                        op.ret = Some(e.time);
                    }
                    _ => {
                        op.outcome = Outcome::Info;
                        op.ret = None;
                    }
                }
            }
        }
    }
    Ok(ops)
}

impl History {
    /// Like [`History::operations`], but tolerant: inconsistencies are skipped instead of failing. For
    /// checkers that count (stats, availability) and must say something about any history.
    pub fn operations_lenient(&self) -> Vec<Operation> {
        pair(self, false).unwrap_or_default()
    }
}
