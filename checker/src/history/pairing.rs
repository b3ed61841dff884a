//! Pairing invokes with completions (Jepsen's semantics).

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::raw::kind_name;
use super::{Event, EventType, History, HistoryError, Operation, Outcome, Process};

/// Pairs invokes with completions. `strict`: inconsistencies are errors; otherwise they are tolerated as
/// well as can be (for checkers that only count, like stats and availability).
pub(crate) fn pair(history: &History, strict: bool) -> Result<Vec<Operation>, HistoryError> {
    let invokes = history
        .events
        .iter()
        .filter(|e| e.kind == EventType::Invoke)
        .count();
    let mut pairing = Pairing {
        history,
        strict,
        ops: Vec::with_capacity(invokes),
        open: FxHashMap::default(),
        last_time: FxHashMap::default(),
    };
    for (pos, e) in history.events.iter().enumerate() {
        let Process::Client(p) = e.process else { continue };
        pairing.check_time(pos, p, e)?;
        match e.kind {
            EventType::Invoke => pairing.invoke(pos, p, e)?,
            _ => pairing.complete(pos, p, e)?,
        }
    }
    Ok(pairing.ops)
}

/// The state of [`pair`] as it walks the events.
struct Pairing<'h> {
    history: &'h History,
    strict: bool,
    ops: Vec<Operation>,
    /// For each process with an open invoke: the position of its operation in `ops` and of the invoke event.
    open: FxHashMap<u64, (usize, usize)>,
    /// Per process, the time and position of its last event. Times may go backwards across processes
    /// (Jepsen records a worker's clock reading, then appends under a lock), but never within one process.
    last_time: FxHashMap<u64, (u64, usize)>,
}

impl Pairing<'_> {
    fn at(&self, pos: usize, field: &str, msg: String) -> HistoryError {
        HistoryError::at(self.history, pos, field, msg)
    }

    /// Where event `pos` is, for messages: its line when the history has lines.
    fn where_(&self, pos: usize) -> String {
        match self.history.line_of(pos) {
            Some(l) => format!("line {l}"),
            None => format!("event {pos}"),
        }
    }

    /// Strict: a process's clock never goes backwards. Records the event's time either way.
    fn check_time(&mut self, pos: usize, p: u64, e: &Event) -> Result<(), HistoryError> {
        if self.strict {
            if let Some(&(t, tp)) = self.last_time.get(&p) {
                if e.time < t {
                    let msg = format!(
                        "time goes backwards on process {p}: {} is before {t} at {}",
                        e.time,
                        self.where_(tp)
                    );
                    return Err(self.at(pos, "time", msg));
                }
            }
        }
        self.last_time.insert(p, (e.time, pos));
        Ok(())
    }

    /// Opens an operation for process `p`.
    fn invoke(&mut self, pos: usize, p: u64, e: &Event) -> Result<(), HistoryError> {
        if let Some(&(op_pos, inv_pos)) = self.open.get(&p) {
            if self.strict {
                let msg = format!(
                    "process {p} invokes {} while its {} invoked at {} has not completed",
                    e.f,
                    self.ops[op_pos].f,
                    self.where_(inv_pos)
                );
                return Err(self.at(pos, "process", msg));
            }
            // Tolerated: the earlier op stays open-ended (it is already Info with no ret).
        }
        self.open.insert(p, (self.ops.len(), pos));
        self.ops.push(Operation {
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
        Ok(())
    }

    /// Completes process `p`'s open operation with event `e` (ok, fail or info).
    fn complete(&mut self, pos: usize, p: u64, e: &Event) -> Result<(), HistoryError> {
        let kind = e.kind;
        let Some((op_pos, inv_pos)) = self.open.remove(&p) else {
            if kind == EventType::Info || !self.strict {
                return Ok(());
            }
            let msg = format!(
                "{} completion of {} on process {p}, which has no open invoke",
                kind_name(kind),
                e.f
            );
            return Err(self.at(pos, "type", msg));
        };
        let (op_f, op_key) = (&self.ops[op_pos].f, &self.ops[op_pos].key);
        if self.strict && *op_f != e.f {
            let msg = format!(
                "completion is {} but the invoke at {} is {op_f}",
                e.f,
                self.where_(inv_pos)
            );
            return Err(self.at(pos, "f", msg));
        }
        if let (Some(a), Some(b)) = (op_key, &e.key) {
            if a != b && self.strict {
                let msg = format!(
                    "completion has key {b:?} but the invoke at {} has {a:?}",
                    self.where_(inv_pos)
                );
                return Err(self.at(pos, "key", msg));
            }
        }
        let op = &mut self.ops[op_pos];
        if op.key.is_none() {
            op.key.clone_from(&e.key);
        }
        op.output = e.value.clone();
        op.complete_index = Some(e.index);
        if e.error.is_some() {
            op.error = e.error.clone();
        }
        (op.outcome, op.ret) = match kind {
            EventType::Ok => (Outcome::Ok, Some(e.time)),
            EventType::Fail => (Outcome::Fail, Some(e.time)),
            _ => (Outcome::Info, None),
        };
        Ok(())
    }
}

impl History {
    /// Like [`History::operations`], but tolerant: inconsistencies are skipped instead of failing. For
    /// checkers that count (stats, availability) and must say something about any history.
    pub fn operations_lenient(&self) -> Vec<Operation> {
        pair(self, false).unwrap_or_default()
    }
}
