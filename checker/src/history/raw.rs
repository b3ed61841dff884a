//! What every history reader produces and shares: the raw event before indices and times are filled in,
//! and the small helpers the readers and the pairing use to name event types and quote values in errors.
//! The readers (`jsonl`, `edn`, `jepsen_log`) and `format` import this module; it imports none of them.

use serde_json::Value;

use super::{Event, EventType};

/// One event as a parser saw it: `event.index` and `event.time` are filled in later from these.
pub(crate) struct RawEvent {
    pub line: usize,
    pub index: Option<u64>,
    pub time: Option<u64>,
    pub event: Event,
}

/// An event type from its name (`invoke`, `ok`, `fail`, `info`).
pub(crate) fn event_type(s: &str) -> Option<EventType> {
    match s {
        "invoke" => Some(EventType::Invoke),
        "ok" => Some(EventType::Ok),
        "fail" => Some(EventType::Fail),
        "info" => Some(EventType::Info),
        _ => None,
    }
}

/// The name of an event type.
pub(crate) fn kind_name(k: EventType) -> &'static str {
    match k {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

/// A value shortened for an error message.
pub(crate) fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}
