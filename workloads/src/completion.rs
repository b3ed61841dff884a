//! How an operation ended ([`Completion`]) and the value encoding the byte-string stores share. Every client
//! protocol module and the driver import this module; it imports none of them.

use checker::EventType;
use serde_json::Value;

use crate::workload::Call;

/// How an operation ended, ready to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// `Ok`, `Fail` or `Info` (never `Invoke`).
    pub kind: EventType,
    /// The completion's value: for an ok read what was read; otherwise the invoke's value.
    pub value: Value,
    /// Why it failed or is indeterminate.
    pub error: Option<String>,
}

impl Completion {
    /// Took effect (or read `value`).
    pub fn ok(value: Value) -> Completion {
        Completion {
            kind: EventType::Ok,
            value,
            error: None,
        }
    }

    /// Definitely did not take effect.
    pub fn fail(call: &Call, error: impl Into<String>) -> Completion {
        Completion {
            kind: EventType::Fail,
            value: call.invoke_value(),
            error: Some(error.into()),
        }
    }

    /// May have taken effect. For a read (which changes nothing) this is a `fail` instead.
    pub fn unknown(call: &Call, error: impl Into<String>) -> Completion {
        let kind = if call.is_read() {
            EventType::Fail
        } else {
            EventType::Info
        };
        Completion {
            kind,
            value: call.invoke_value(),
            error: Some(error.into()),
        }
    }

    /// The ok completion of a non-read `call` (its value is the invoke's).
    pub fn done(call: &Call) -> Completion {
        Completion::ok(call.invoke_value())
    }
}

/// Encodes a register or kv value as the text stored in a byte-string store (etcd, RESP): strings as they
/// are, anything else as its JSON text.
pub(crate) fn value_to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Decodes text written by [`value_to_text`]: a JSON number becomes a number, anything else a string.
pub(crate) fn text_to_value(bytes: &[u8]) -> Value {
    let text = String::from_utf8_lossy(bytes);
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Number(_)) => v,
        _ => Value::String(text.into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_round_trip() {
        for v in [
            serde_json::json!(3),
            serde_json::json!(-12),
            serde_json::json!("t1.2;t3.4;"),
        ] {
            assert_eq!(text_to_value(value_to_text(&v).as_bytes()), v);
        }
    }
}
