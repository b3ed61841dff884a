//! The replicated key-value state machine: the commands clients propose and their deterministic effect.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A client command, as stored (JSON) in a log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Command {
    Put { key: String, value: Value },
    Cas { key: String, from: Value, to: Value },
    Append { key: String, value: String },
}

/// The outcome of applying a command.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A put, or a cas whose comparison held.
    Ok,
    /// A cas whose comparison failed; nothing changed. Carries the current value.
    CasMismatch(Value),
    /// An append; carries the new value.
    Appended(Value),
    /// The command could not apply (e.g. append to a value that is not a string); nothing changed.
    Invalid(String),
}

/// The key-value map.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Store {
    map: BTreeMap<String, Value>,
}

impl Store {
    /// The value of `key`, `null` when absent.
    pub fn get(&self, key: &str) -> Value {
        self.map.get(key).cloned().unwrap_or(Value::Null)
    }

    /// What `cmd` would do to this store, and the value its key would then hold (None: unchanged).
    pub fn evaluate(&self, cmd: &Command) -> (Outcome, Option<Value>) {
        match cmd {
            Command::Put { value, .. } => (Outcome::Ok, Some(value.clone())),
            Command::Cas { key, from, to } => {
                let cur = self.get(key);
                if cur == *from {
                    (Outcome::Ok, Some(to.clone()))
                } else {
                    (Outcome::CasMismatch(cur), None)
                }
            }
            Command::Append { key, value } => match self.get(key) {
                Value::Null => {
                    let v = Value::String(value.clone());
                    (Outcome::Appended(v.clone()), Some(v))
                }
                Value::String(s) => {
                    let v = Value::String(s + value);
                    (Outcome::Appended(v.clone()), Some(v))
                }
                _ => (
                    Outcome::Invalid(format!("the value of key {key:?} is not a string")),
                    None,
                ),
            },
        }
    }

    /// Applies `cmd`.
    pub fn apply(&mut self, cmd: &Command) -> Outcome {
        let (outcome, new) = self.evaluate(cmd);
        if let Some(v) = new {
            self.map.insert(key_of(cmd).to_string(), v);
        }
        outcome
    }

    /// Sets `key` (used for speculative overlays).
    pub fn set(&mut self, key: &str, value: Value) {
        self.map.insert(key.to_string(), value);
    }

    /// The whole map as JSON (snapshot data).
    pub fn to_snapshot(&self) -> String {
        serde_json::to_string(&self.map).expect("a map of JSON values serialises")
    }

    /// Restores from snapshot data ("" is the empty store).
    pub fn from_snapshot(data: &str) -> Result<Store, serde_json::Error> {
        if data.is_empty() {
            return Ok(Store::default());
        }
        Ok(Store {
            map: serde_json::from_str(data)?,
        })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The key a command touches.
pub fn key_of(cmd: &Command) -> &str {
    match cmd {
        Command::Put { key, .. } | Command::Cas { key, .. } | Command::Append { key, .. } => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cas_and_append_follow_the_protocol() {
        let mut s = Store::default();
        assert_eq!(
            s.apply(&Command::Cas {
                key: "a".into(),
                from: json!(1),
                to: json!(2)
            }),
            Outcome::CasMismatch(Value::Null)
        );
        assert_eq!(
            s.apply(&Command::Put {
                key: "a".into(),
                value: json!(1)
            }),
            Outcome::Ok
        );
        assert_eq!(
            s.apply(&Command::Cas {
                key: "a".into(),
                from: json!(1),
                to: json!(2)
            }),
            Outcome::Ok
        );
        assert_eq!(s.get("a"), json!(2));
        assert_eq!(
            s.apply(&Command::Append {
                key: "b".into(),
                value: "x".into()
            }),
            Outcome::Appended(json!("x"))
        );
        assert_eq!(
            s.apply(&Command::Append {
                key: "b".into(),
                value: "y".into()
            }),
            Outcome::Appended(json!("xy"))
        );
        assert!(matches!(
            s.apply(&Command::Append {
                key: "a".into(),
                value: "y".into()
            }),
            Outcome::Invalid(_)
        ));
        let back = Store::from_snapshot(&s.to_snapshot()).unwrap();
        assert_eq!(back, s);
    }
}
