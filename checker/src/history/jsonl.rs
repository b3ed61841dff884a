//! faultline's JSON Lines: one event object a line (design.md).

use std::io::{BufRead, Read};
use std::path::Path;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::raw::{event_type, short, RawEvent};
use super::{Event, HistoryError, Process};

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

/// How much of a file is read and parsed at once by [`parse_reader`].
const CHUNK: usize = 8 << 20;

/// Like [`parse`], reading a chunk of lines at a time (so a large history is never held whole in memory)
/// and parsing the lines of each chunk in parallel. Lines the fast path refuses are then taken one by one,
/// in order, by the same code as [`parse`], so errors and warnings are exactly the same.
pub(crate) fn parse_reader(mut input: impl BufRead, path: &Path) -> Result<Parsed, HistoryError> {
    use rayon::prelude::*;

    let mut parsed = Parsed::default();
    let mut chunk = Vec::with_capacity(CHUNK + 4096);
    let mut n = 0; // lines before this chunk
    let mut offset = 0usize; // bytes before this chunk
    let cannot =
        |n: usize, e: std::io::Error| HistoryError::line(path, n + 1, "", format!("cannot read: {e}"));
    loop {
        chunk.clear();
        (&mut input)
            .take(CHUNK as u64)
            .read_to_end(&mut chunk)
            .map_err(|e| cannot(n, e))?;
        if chunk.is_empty() {
            break;
        }
        if chunk.last() != Some(&b'\n') {
            input.read_until(b'\n', &mut chunk).map_err(|e| cannot(n, e))?;
        }
        // Only the end of the file can leave a line without its newline.
        let ends_with_newline = chunk.last() == Some(&b'\n');
        let body = if ends_with_newline {
            &chunk[..chunk.len() - 1]
        } else {
            &chunk[..]
        };
        let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        let fast_events: Vec<Option<RawEvent>> = lines
            .par_iter()
            .enumerate()
            .map(|(i, bytes)| {
                let line = std::str::from_utf8(bytes).ok()?;
                let line = line.strip_suffix('\r').unwrap_or(line);
                let line = if n + i == 0 {
                    line.strip_prefix('\u{feff}').unwrap_or(line)
                } else {
                    line
                };
                fast(line, n + i + 1)
            })
            .collect();
        let last = lines.len() - 1;
        let mut line_offset = offset;
        for (i, (bytes, ev)) in lines.iter().zip(fast_events).enumerate() {
            let line_n = n + i + 1;
            if let Some(ev) = ev {
                parsed.events.push(ev);
            } else {
                let partial = i == last && !ends_with_newline;
                match std::str::from_utf8(bytes) {
                    Ok(line) => parsed.line(line, line_n, partial, path)?,
                    // A writer killed in the middle of a character.
                    Err(e) if partial && e.error_len().is_none() => {
                        let whole = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("");
                        parsed.line(whole, line_n, partial, path)?;
                    }
                    Err(e) => {
                        return Err(HistoryError::line(
                            path,
                            line_n,
                            "",
                            format!("not valid UTF-8 (byte {})", line_offset + e.valid_up_to()),
                        ))
                    }
                }
            }
            line_offset += bytes.len() + 1;
        }
        n += lines.len();
        offset += chunk.len();
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

fn natural(v: &Value) -> Option<u64> {
    v.as_u64()
}

fn not_natural(v: &Value) -> String {
    format!("must be a non-negative integer, not {}", short(v))
}
