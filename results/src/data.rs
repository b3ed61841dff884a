//! Reading a run's history for rendering: events from `history.jsonl`, operations (invokes paired with
//! completions) and the nemesis's fault intervals.

use checker::history::{Event, EventType, Operation, Outcome, Process};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Why a run's files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line that is not a history event: names the file, the line and the serde message (which names the
    /// field).
    #[error("{}:{line}: {message}", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A history the checker's parser refused (the message names the file, line and field).
    #[error("{0}")]
    History(String),
    /// `results.json` that is not a check report.
    #[error("{}: not a check report: {message}", path.display())]
    BadResults { path: PathBuf, message: String },
}

/// Reads a faultline JSON Lines history (with the checker's parser, so errors read the same everywhere).
pub fn read_history(path: &Path) -> Result<Vec<Event>, ReadError> {
    checker::history::read_path(path, checker::history::Format::Jsonl, false)
        .map(|h| h.events)
        .map_err(|e| ReadError::History(e.to_string()))
}

/// Reads `results.json` (a `CheckReport`, or one under `checks`).
pub fn read_results(path: &Path) -> Result<checker::CheckReport, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.into(),
        source,
    })?;
    crate::summary::parse_results(&text).map_err(|e| ReadError::BadResults {
        path: path.into(),
        message: e.to_string(),
    })
}

/// Pairs each client invoke with the next completion of the same process. An invoke that never completes
/// is `Info` with no return time; a completion without an invoke is ignored.
pub fn pair_operations(events: &[Event]) -> Vec<Operation> {
    let mut ops: Vec<Operation> = Vec::with_capacity(events.len() / 2 + 1);
    let mut open: HashMap<u64, usize> = HashMap::new();
    for ev in events {
        let Process::Client(p) = ev.process else { continue };
        match ev.kind {
            EventType::Invoke => {
                open.insert(p, ops.len());
                ops.push(Operation {
                    process: p,
                    f: ev.f.clone(),
                    key: ev.key.clone(),
                    input: ev.value.clone(),
                    output: serde_json::Value::Null,
                    outcome: Outcome::Info,
                    error: None,
                    invoke_index: ev.index,
                    complete_index: None,
                    call: ev.time,
                    ret: None,
                });
            }
            kind => {
                if let Some(i) = open.remove(&p) {
                    let op = &mut ops[i];
                    op.outcome = match kind {
                        EventType::Ok => Outcome::Ok,
                        EventType::Fail => Outcome::Fail,
                        _ => Outcome::Info,
                    };
                    op.output = ev.value.clone();
                    op.error = ev.error.clone();
                    op.complete_index = Some(ev.index);
                    op.ret = Some(ev.time);
                }
            }
        }
    }
    ops
}

/// One stretch of fault activity: from a nemesis start event to the event that ends it (or the end of
/// the history).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultInterval {
    /// The fault kind: `partition`, `kill`, `pause`, `loss`, `clock`, or the `f` of an unknown action.
    pub kind: String,
    pub start: u64,
    /// None when nothing ended it before the history ended.
    pub end: Option<u64>,
    /// What the start event said (its `f` and `value` as compact JSON).
    pub start_f: String,
    pub detail: String,
    pub end_f: Option<String>,
}

/// The kind a nemesis `f` belongs to, and whether it starts (true) or ends (false) it. None for an `f` that
/// is neither (drawn as an instant).
pub fn fault_kind(f: &str) -> Option<(String, bool)> {
    if let Some(k) = f.strip_prefix("start-") {
        return Some((k.to_string(), true));
    }
    if let Some(k) = f.strip_prefix("stop-") {
        return Some((k.to_string(), false));
    }
    match f {
        "kill" => Some(("kill".into(), true)),
        "restart" => Some(("kill".into(), false)),
        // Jepsen's partitioners record bare :start and :stop.
        "start" => Some(("fault".into(), true)),
        "stop" => Some(("fault".into(), false)),
        "pause" => Some(("pause".into(), true)),
        "resume" => Some(("pause".into(), false)),
        "clock-bump" | "bump-clock" | "clock-strobe" => Some(("clock".into(), true)),
        "clock-reset" | "reset-clock" => Some(("clock".into(), false)),
        // A membership change, from its request to its acknowledgement or failure.
        "member-request" => Some(("member".into(), true)),
        "member-ok" | "member-fail" => Some(("member".into(), false)),
        _ => None,
    }
}

/// The fault intervals of a history, in start order. Repeated starts of one kind nest (kill n1, kill n2,
/// restart n1, restart n2 is one interval); events that neither start nor stop a fault (heal, member
/// changes) become zero-length intervals of their own kind.
pub fn fault_intervals(events: &[Event]) -> Vec<FaultInterval> {
    let mut out: Vec<FaultInterval> = Vec::new();
    let mut open: HashMap<String, (usize, u32)> = HashMap::new();
    for ev in events.iter().filter(|e| e.process == Process::Nemesis) {
        let detail = if ev.value.is_null() {
            String::new()
        } else {
            crate::html::short_json(&ev.value, 300)
        };
        match fault_kind(&ev.f) {
            Some((kind, true)) => match open.get_mut(&kind) {
                Some((_, depth)) => *depth += 1,
                None => {
                    open.insert(kind.clone(), (out.len(), 1));
                    out.push(FaultInterval {
                        kind,
                        start: ev.time,
                        end: None,
                        start_f: ev.f.clone(),
                        detail,
                        end_f: None,
                    });
                }
            },
            Some((kind, false)) => {
                if let Some((i, depth)) = open.get_mut(&kind) {
                    *depth -= 1;
                    if *depth == 0 {
                        let i = *i;
                        out[i].end = Some(ev.time);
                        out[i].end_f = Some(ev.f.clone());
                        open.remove(&kind);
                    }
                }
            }
            None => out.push(FaultInterval {
                kind: ev.f.clone(),
                start: ev.time,
                end: Some(ev.time),
                start_f: ev.f.clone(),
                detail,
                end_f: None,
            }),
        }
    }
    out
}

/// Every nemesis event, for the timeline table.
pub fn nemesis_events(events: &[Event]) -> impl Iterator<Item = &Event> {
    events.iter().filter(|e| e.process == Process::Nemesis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(index: u64, time: u64, process: Process, kind: EventType, f: &str) -> Event {
        Event {
            index,
            time,
            process,
            kind,
            f: f.into(),
            key: None,
            value: json!(null),
            error: None,
        }
    }

    #[test]
    fn pairs_and_leaves_open_ops_info() {
        use EventType::*;
        let c = Process::Client;
        let events = vec![
            ev(0, 10, c(0), Invoke, "write"),
            ev(1, 11, c(1), Invoke, "read"),
            ev(2, 20, c(0), Ok, "write"),
            ev(3, 21, c(2), Invoke, "cas"),
            ev(4, 30, c(2), Fail, "cas"),
        ];
        let ops = pair_operations(&events);
        assert_eq!(ops.len(), 3);
        assert_eq!((ops[0].outcome, ops[0].ret), (Outcome::Ok, Some(20)));
        assert_eq!((ops[1].outcome, ops[1].ret), (Outcome::Info, None));
        assert_eq!(ops[2].outcome, Outcome::Fail);
    }

    #[test]
    fn fault_intervals_nest_and_stay_open() {
        use EventType::Info;
        let n = Process::Nemesis;
        let events = vec![
            ev(0, 10, n, Info, "kill"),
            ev(1, 12, n, Info, "kill"),
            ev(2, 15, n, Info, "start-partition"),
            ev(3, 20, n, Info, "restart"),
            ev(4, 25, n, Info, "restart"),
            ev(5, 30, n, Info, "pause"),
        ];
        let iv = fault_intervals(&events);
        assert_eq!(iv.len(), 3);
        assert_eq!(
            (iv[0].kind.as_str(), iv[0].start, iv[0].end),
            ("kill", 10, Some(25))
        );
        assert_eq!((iv[1].kind.as_str(), iv[1].end), ("partition", None));
        assert_eq!((iv[2].kind.as_str(), iv[2].end), ("pause", None));
    }

    #[test]
    fn a_membership_change_is_a_band_from_request_to_answer() {
        use EventType::Info;
        let n = Process::Nemesis;
        let events = vec![
            ev(0, 10, n, Info, "member-request"),
            ev(1, 14, n, Info, "member-ok"),
            ev(2, 20, n, Info, "member-request"),
            ev(3, 29, n, Info, "member-fail"),
            ev(4, 30, n, Info, "member-retire"),
        ];
        let iv = fault_intervals(&events);
        let bands: Vec<(&str, u64, Option<u64>)> =
            iv.iter().map(|i| (i.kind.as_str(), i.start, i.end)).collect();
        assert_eq!(
            bands,
            [
                ("member", 10, Some(14)),
                ("member", 20, Some(29)),
                ("member-retire", 30, Some(30))
            ]
        );
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.jsonl");
        std::fs::write(
            &p,
            "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n\n{\"index\":1,\"time\":\"x\"}\n",
        )
        .unwrap();
        let e = read_history(&p).unwrap_err().to_string();
        assert!(e.contains("history.jsonl:3:"), "{e}");
        assert!(e.contains("time") || e.contains("invalid type"), "{e}");
    }
}
