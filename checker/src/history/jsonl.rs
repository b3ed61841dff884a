//! faultline's JSON Lines: one event object a line (design.md).

use std::io::BufRead;
use std::path::Path;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::format::{short, RawEvent};
use super::{Event, EventType, HistoryError, Process};

/// The fields of one line, unchecked.
#[derive(Deserialize)]
struct Line {
    index: Option<Value>,
    time: Option<Value>,
    process: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    f: Option<Value>,
    key: Option<Value>,
    value: Option<Value>,
    error: Option<Value>,
}

/// The fields of one well-formed line, borrowed where possible: the fast path. Any line it refuses goes
/// through [`Line`], which finds the precise error (or accepts a looser form, such as a numeric key).
#[derive(Deserialize)]
struct FastLine<'a> {
    index: Option<u64>,
    time: Option<u64>,
    process: Value,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(borrow)]
    key: Option<Cow<'a, str>>,
    value: Option<Value>,
    #[serde(borrow)]
    error: Option<Cow<'a, str>>,
}

fn fast(line: &str, n: usize) -> Option<RawEvent> {
    let l: FastLine = serde_json::from_str(line).ok()?;
    let process = match &l.process {
        Value::Number(n) => Process::Client(n.as_u64()?),
        Value::String(s) if s == "nemesis" => Process::Nemesis,
        _ => return None,
    };
    let kind = event_type(&l.kind)?;
    if l.f.is_empty() {
        return None;
    }
    Some(RawEvent {
        line: n,
        index: l.index,
        time: l.time,
        event: Event {
            index: 0,
            time: 0,
            process,
            kind,
            f: l.f.into_owned(),
            key: l.key.map(Cow::into_owned),
            value: l.value.unwrap_or(Value::Null),
            error: l.error.map(Cow::into_owned),
        },
    })
}

/// Events and warnings gathered line by line.
#[derive(Default)]
pub(crate) struct Parsed {
    pub events: Vec<RawEvent>,
    pub warnings: Vec<String>,
}

impl Parsed {
    /// Takes line `n`; `partial`: it is the last line and has no newline (a writer may have been killed).
    fn line(&mut self, line: &str, n: usize, partial: bool, path: &Path) -> Result<(), HistoryError> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line = if n == 1 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        if line.trim().is_empty() {
            return Ok(());
        }
        if let Some(ev) = fast(line, n) {
            self.events.push(ev);
            return Ok(());
        }
        let fields: Line = match parse_object(line) {
            Ok(l) => l,
            Err(_) if partial => {
                self.partial(n, path);
                return Ok(());
            }
            Err(msg) => return Err(HistoryError::line(path, n, "json", msg)),
        };
        self.events.push(event(fields, path, n)?);
        Ok(())
    }

    fn partial(&mut self, n: usize, path: &Path) {
        self.warnings.push(format!(
            "{}:{n}: skipped a partial last line (the run was probably stopped while writing it)",
            path.display()
        ));
    }
}

/// Parses JSON Lines; a partial last line (no newline, not valid JSON) is skipped with a warning.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Parsed, HistoryError> {
    let mut parsed = Parsed::default();
    let mut rest = text;
    let mut n = 0;
    while !rest.is_empty() {
        n += 1;
        let (line, partial) = match rest.find('\n') {
            Some(i) => {
                let line = &rest[..i];
                rest = &rest[i + 1..];
                (line, false)
            }
            None => (std::mem::take(&mut rest), true),
        };
        parsed.line(line, n, partial, path)?;
    }
    Ok(parsed)
}

/// Like [`parse`], reading line by line so that a large history is never held whole in memory.
pub(crate) fn parse_reader(mut input: impl BufRead, path: &Path) -> Result<Parsed, HistoryError> {
    let mut parsed = Parsed::default();
    let mut buf = Vec::new();
    let mut n = 0;
    let mut offset = 0usize;
    loop {
        buf.clear();
        let read = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| HistoryError::line(path, n + 1, "", format!("cannot read: {e}")))?;
        if read == 0 {
            break;
        }
        n += 1;
        let partial = buf.last() != Some(&b'\n');
        let bytes = if partial { &buf[..] } else { &buf[..buf.len() - 1] };
        match std::str::from_utf8(bytes) {
            Ok(line) => parsed.line(line, n, partial, path)?,
            // A writer killed in the middle of a character.
            Err(e) if partial && e.error_len().is_none() => {
                let whole = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("");
                parsed.line(whole, n, partial, path)?;
            }
            Err(e) => {
                return Err(HistoryError::line(
                    path,
                    n,
                    "",
                    format!("not valid UTF-8 (byte {})", offset + e.valid_up_to()),
                ))
            }
        }
        offset += read;
    }
    Ok(parsed)
}

fn parse_object(line: &str) -> Result<Line, String> {
    if !line.trim_start().starts_with('{') {
        return Err("expected a JSON object `{...}` on each line".to_string());
    }
    serde_json::from_str::<Line>(line).map_err(|e| {
        let text = e.to_string();
        // serde_json names line 1 of our one-line input: keep only the column.
        let text = match text.rfind(" at line ") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        format!("not valid JSON at column {}: {text}", e.column())
    })
}

fn event(l: Line, path: &Path, n: usize) -> Result<RawEvent, HistoryError> {
    let err = |field: &str, msg: String| HistoryError::line(path, n, field, msg);
    let index = l
        .index
        .map(|v| natural(&v).ok_or_else(|| err("index", not_natural(&v))))
        .transpose()?;
    let time = l
        .time
        .map(|v| natural(&v).ok_or_else(|| err("time", not_natural(&v))))
        .transpose()?;
    let process = match l.process {
        None => return Err(err("process", "missing".into())),
        Some(v) => match &v {
            Value::Number(num) if num.as_u64().is_some() => Process::Client(num.as_u64().unwrap_or(0)),
            Value::String(s) if s == "nemesis" => Process::Nemesis,
            other => {
                return Err(err(
                    "process",
                    format!(
                        "must be a non-negative integer or \"nemesis\", not {}",
                        short(other)
                    ),
                ))
            }
        },
    };
    let kind = match l.kind {
        None => return Err(err("type", "missing".into())),
        Some(v) => match v.as_str().and_then(event_type) {
            Some(k) => k,
            None => {
                return Err(err(
                    "type",
                    format!(
                        "must be \"invoke\", \"ok\", \"fail\" or \"info\", not {}",
                        short(&v)
                    ),
                ))
            }
        },
    };
    let f = match l.f {
        None => return Err(err("f", "missing".into())),
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(v) => return Err(err("f", format!("must be a non-empty string, not {}", short(&v)))),
    };
    let key = match l.key {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(num)) => Some(num.to_string()),
        Some(v) => {
            return Err(err(
                "key",
                format!("must be a string or a number, not {}", short(&v)),
            ))
        }
    };
    let error = l.error.map(|v| match v {
        Value::String(s) => s,
        other => other.to_string(),
    });
    Ok(RawEvent {
        line: n,
        index,
        time,
        event: Event {
            index: 0,
            time: 0,
            process,
            kind,
            f,
            key,
            value: l.value.unwrap_or(Value::Null),
            error,
        },
    })
}

pub(crate) fn event_type(s: &str) -> Option<EventType> {
    match s {
        "invoke" => Some(EventType::Invoke),
        "ok" => Some(EventType::Ok),
        "fail" => Some(EventType::Fail),
        "info" => Some(EventType::Info),
        _ => None,
    }
}

fn natural(v: &Value) -> Option<u64> {
    v.as_u64()
}

fn not_natural(v: &Value) -> String {
    format!("must be a non-negative integer, not {}", short(v))
}
