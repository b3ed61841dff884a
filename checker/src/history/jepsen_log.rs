//! Jepsen's text logs: the `jepsen.util` lines that record each event.
//!
//! `INFO  jepsen.util - 3\t:invoke\t:write\t4` (tabs or runs of spaces between fields; anything before
//! `jepsen.util`, such as a timestamp, is ignored; `jepsen.util:` is accepted as well as `jepsen.util -`).
//! A line is an event when, after `jepsen.util -`, it has a process (an integer or `:nemesis`) and a type
//! (`:invoke`, `:ok`, `:fail`, `:info`); every other line of the log is skipped. The value is the rest of
//! the line, read as EDN. A `:timed-out` value on a `fail` or `info` line becomes `error: "timed-out"` with
//! a null value.

use std::path::Path;

use serde_json::Value;

use super::edn::{to_json, Edn, Reader};
use super::raw::{event_type, RawEvent};
use super::{Event, EventType, HistoryError, Process};

pub(crate) fn parse(text: &str, path: &Path) -> Result<Vec<RawEvent>, HistoryError> {
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(ev) = event(line, path, n)? {
            events.push(ev);
        }
    }
    Ok(events)
}

/// The next whitespace-separated field and the rest.
fn split_field(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn event(line: &str, path: &Path, n: usize) -> Result<Option<RawEvent>, HistoryError> {
    let Some(at) = line.find("jepsen.util") else {
        return Ok(None);
    };
    let rest = line[at + "jepsen.util".len()..].trim_start();
    let Some(rest) = rest.strip_prefix('-').or_else(|| rest.strip_prefix(':')) else {
        return Ok(None);
    };
    let (process, rest) = split_field(rest);
    let process = match process {
        ":nemesis" | "nemesis" => Process::Nemesis,
        p => match p.parse::<u64>() {
            Ok(p) => Process::Client(p),
            Err(_) => return Ok(None),
        },
    };
    let (kind, rest) = split_field(rest);
    let Some(kind) = kind.strip_prefix(':').and_then(event_type) else {
        return Ok(None);
    };
    let err = |field: &str, msg: String| HistoryError::line(path, n, field, msg);
    let (f, rest) = split_field(rest);
    let f = match f.strip_prefix(':').unwrap_or(f) {
        "" => return Err(err("f", "missing after the type".into())),
        f => f.to_string(),
    };
    let raw = rest.trim();
    let mut value = if raw.is_empty() {
        Value::Null
    } else {
        let mut reader = Reader::new(raw, n);
        match reader.next_form() {
            Ok(Some(node)) if reader.rest().is_empty() => value_of(&node),
            // Nemesis values are often free text ("Cut off [...]"): keep them as a string.
            _ if process == Process::Nemesis => Value::String(raw.to_string()),
            Ok(_) => return Err(err("value", format!("expected one EDN value, found {raw:?}"))),
            Err(e) => return Err(err("value", e.message)),
        }
    };
    let mut error = None;
    if matches!(kind, EventType::Fail | EventType::Info) && value == Value::String("timed-out".into()) {
        value = Value::Null;
        error = Some("timed-out".to_string());
    }
    Ok(Some(RawEvent {
        line: n,
        index: None,
        time: None,
        event: Event {
            index: 0,
            time: 0,
            process,
            kind,
            f,
            key: None,
            value,
            error,
        },
    }))
}

fn value_of(node: &super::edn::Node) -> Value {
    match &node.edn {
        Edn::Nil => Value::Null,
        _ => to_json(node),
    }
}
