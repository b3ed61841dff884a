//! Formats: detection, reading a file in any of them, writing JSON Lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::str::FromStr;

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::raw::{kind_name, short, RawEvent};
use super::{edn, jepsen_log, jsonl, Event, EventType, History, HistoryError, Process, Source};

/// The format of a history file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Tell from the content: a first line `{"...` is JSON Lines; `{:`, `[`, `(`, `#`, `;` start EDN; a
    /// line holding `jepsen.util` makes a Jepsen text log.
    #[default]
    Auto,
    /// faultline's JSON Lines (one event object a line).
    Jsonl,
    /// Jepsen's EDN: a vector, list or bare sequence of maps.
    Edn,
    /// Jepsen's text log lines (`INFO  jepsen.util - 3\t:invoke\t:write\t4`).
    JepsenLog,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Format::Auto),
            "jsonl" | "json" => Ok(Format::Jsonl),
            "edn" => Ok(Format::Edn),
            "jepsen-log" | "log" => Ok(Format::JepsenLog),
            other => Err(format!(
                "unknown history format {other:?}: expected auto, jsonl, edn or jepsen-log"
            )),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::JepsenLog => "jepsen-log",
        })
    }
}

/// Reads a history file.
///
/// `independent`: client events whose value is a `[key value]` tuple (Jepsen's independent keys) get `key`
/// and `value` split out; invokes and `ok` completions must then carry such a tuple.
pub fn read_path(path: &Path, format: Format, independent: bool) -> Result<History, HistoryError> {
    let cannot = |e: std::io::Error| HistoryError::file(path, format!("cannot read: {e}"));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let head = input.fill_buf().map_err(cannot)?;
    let detected = match format {
        Format::Auto => {
            let text = match std::str::from_utf8(head) {
                Ok(t) => t,
                Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
            };
            // The first MiB decides, unless it is all blank (then read the whole file to be sure).
            detect(text).filter(|_| !text.trim().is_empty())
        }
        f => Some(f),
    };
    if detected == Some(Format::Jsonl) {
        // Streamed: a long run's history is never held whole in memory.
        let parsed = jsonl::parse_reader(input, path)?;
        let mut warnings = parsed.warnings;
        return finish(parsed.events, path, Format::Jsonl, independent, &mut warnings);
    }
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(cannot)?;
    read_bytes(&bytes, path, format, independent)
}

/// Parses a history from bytes; `path` only names the origin in errors and in [`History::source`].
pub fn read_bytes(
    bytes: &[u8],
    path: &Path,
    format: Format,
    independent: bool,
) -> Result<History, HistoryError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        // A run killed in the middle of a multi-byte character: keep what is whole.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
            return Err(HistoryError::line(
                path,
                line,
                "",
                format!("not valid UTF-8 (byte {})", e.valid_up_to()),
            ));
        }
    };
    let format = match format {
        Format::Auto => detect(text).ok_or_else(|| {
            HistoryError::file(
                path,
                "cannot tell the history format: use --format jsonl, edn or jepsen-log",
            )
        })?,
        f => f,
    };
    let (raw, mut warnings) = match format {
        Format::Jsonl | Format::Auto => {
            let parsed = jsonl::parse(text, path)?;
            (parsed.events, parsed.warnings)
        }
        Format::Edn => (edn::parse(text, path)?, Vec::new()),
        Format::JepsenLog => (jepsen_log::parse(text, path)?, Vec::new()),
    };
    let history = finish(raw, path, format, independent, &mut warnings)?;
    Ok(history)
}

/// Tells the format of a history from its first meaningful line.
pub(crate) fn detect(text: &str) -> Option<Format> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().map(str::trim_start).find(|l| !l.trim().is_empty());
    let Some(first) = first else {
        // An empty file is an empty history in any format.
        return Some(Format::Jsonl);
    };
    if let Some(rest) = first.strip_prefix('{') {
        let next = rest.trim_start().chars().next();
        return Some(if matches!(next, Some('"') | Some('}') | None) {
            Format::Jsonl
        } else {
            Format::Edn
        });
    }
    if first.starts_with(['[', '(', '#', ';']) {
        return Some(Format::Edn);
    }
    if text.lines().take(1000).any(|l| l.contains("jepsen.util")) {
        return Some(Format::JepsenLog);
    }
    None
}

/// Fills in absent indices and times, applies `independent`, checks that indices are unique.
fn finish(
    mut raw: Vec<RawEvent>,
    path: &Path,
    format: Format,
    independent: bool,
    warnings: &mut Vec<String>,
) -> Result<History, HistoryError> {
    let any_time = raw.iter().any(|r| r.time.is_some());
    let all_time = raw.iter().all(|r| r.time.is_some());
    if any_time && !all_time {
        warnings.push(format!(
            "{}: some events have no time; each takes the time of the event before it",
            path.display()
        ));
    }
    let any_index = raw.iter().any(|r| r.index.is_some());
    // Indices that only grow are unique; the map is needed only once they do not.
    let mut increasing = true;
    let mut seen: FxHashMap<u64, usize> = FxHashMap::default();
    let mut last_time = 0u64;
    for pos in 0..raw.len() {
        let r = &raw[pos];
        let index = r.index.unwrap_or(pos as u64);
        if any_index && increasing && pos > 0 && index <= raw[pos - 1].event.index {
            // From here on, check with the map: fill it with what came before.
            increasing = false;
            seen.extend(raw[..pos].iter().map(|r| (r.event.index, r.line)));
        }
        if any_index && !increasing {
            if let Some(prev) = seen.insert(index, r.line) {
                return Err(HistoryError::line(
                    path,
                    r.line,
                    "index",
                    format!("index {index} already used by the event at line {prev}"),
                ));
            }
        }
        let time = match r.time {
            Some(t) => t,
            None if any_time => last_time,
            None => pos as u64,
        };
        last_time = time;
        let r = &mut raw[pos];
        r.event.index = index;
        r.event.time = time;
        let e = &mut r.event;
        if independent && e.key.is_none() && e.process != Process::Nemesis {
            match split_tuple(&mut e.value) {
                Some(k) => e.key = Some(k),
                None if matches!(e.kind, EventType::Fail | EventType::Info) => {}
                None => {
                    return Err(HistoryError::line(
                        path,
                        r.line,
                        "value",
                        format!(
                            "with independent keys, a client {} must carry a [key value] tuple, not {}",
                            kind_name(e.kind),
                            short(&e.value)
                        ),
                    ))
                }
            }
        }
    }
    let lines = raw.iter().map(|r| r.line).collect();
    // Collected in place: no second allocation for a large history.
    let mut events: Vec<Event> = raw.into_iter().map(|r| r.event).collect();
    events.shrink_to_fit();
    Ok(History {
        events,
        source: Some(Source {
            path: path.to_path_buf(),
            lines,
            format,
            warnings: std::mem::take(warnings),
        }),
    })
}

/// Splits a `[key value]` tuple in place: the value becomes `value`, the key is returned.
fn split_tuple(v: &mut Value) -> Option<String> {
    match v {
        Value::Array(a) if a.len() == 2 => {
            let value = a.pop().unwrap_or(Value::Null);
            let key = a.pop().unwrap_or(Value::Null);
            *v = value;
            Some(key_string(&key))
        }
        _ => None,
    }
}

/// A key as text: strings as they are, anything else as its JSON.
fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes a history as JSON Lines (design.md's format), one event a line.
pub fn write_jsonl(history: &History, mut out: impl Write) -> std::io::Result<()> {
    for e in &history.events {
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
