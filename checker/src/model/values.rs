//! Interning of JSON values to small integers, so that states are integers and compare in one instruction.

use rustc_hash::FxHashMap;
use serde_json::Value;

/// Id of an interned value. [`ABSENT`] is `null`: no value.
pub(crate) type ValueId = u32;

/// The id of `null` (absent).
pub(crate) const ABSENT: ValueId = 0;

/// Bytes one table entry costs besides its text (the entry, the map's slot).
const ENTRY_BYTES: usize = 48;

/// A table of distinct values. Strings are kept apart so that `append` can concatenate them.
#[derive(Debug, Clone)]
pub(crate) struct Values {
    strings: FxHashMap<Box<str>, ValueId>,
    others: FxHashMap<String, ValueId>,
    table: Vec<Entry>,
    /// The empty string is the same as absent (the kv model's rule).
    empty_is_absent: bool,
    /// Bytes the table holds, kept up to date (the search asks every few thousand steps).
    bytes: usize,
}

#[derive(Debug, Clone)]
enum Entry {
    Absent,
    Str(Box<str>),
    Json(Value),
}

impl Values {
    pub(crate) fn new(empty_is_absent: bool) -> Values {
        Values {
            strings: FxHashMap::default(),
            others: FxHashMap::default(),
            table: vec![Entry::Absent],
            empty_is_absent,
            bytes: ENTRY_BYTES,
        }
    }

    pub(crate) fn intern(&mut self, v: &Value) -> ValueId {
        match v {
            Value::Null => ABSENT,
            Value::String(s) => self.intern_str(s),
            other => {
                let key = other.to_string();
                if let Some(&id) = self.others.get(&key) {
                    return id;
                }
                let id = self.table.len() as ValueId;
                self.bytes += ENTRY_BYTES + key.len();
                self.table.push(Entry::Json(other.clone()));
                self.others.insert(key, id);
                id
            }
        }
    }

    pub(crate) fn intern_str(&mut self, s: &str) -> ValueId {
        if s.is_empty() && self.empty_is_absent {
            return ABSENT;
        }
        if let Some(&id) = self.strings.get(s) {
            return id;
        }
        let id = self.table.len() as ValueId;
        self.bytes += ENTRY_BYTES + 2 * s.len();
        self.table.push(Entry::Str(s.into()));
        self.strings.insert(s.into(), id);
        id
    }

    /// The string a value holds (absent counts as `""` when the empty string is absent), or None.
    pub(crate) fn as_str(&self, id: ValueId) -> Option<&str> {
        match &self.table[id as usize] {
            Entry::Absent if self.empty_is_absent => Some(""),
            Entry::Absent => None,
            Entry::Str(s) => Some(s),
            Entry::Json(_) => None,
        }
    }

    /// `a` followed by the string `b`: None when `a` is not a string.
    pub(crate) fn concat(&mut self, a: ValueId, b: ValueId) -> Option<ValueId> {
        let left = match &self.table[a as usize] {
            Entry::Absent => "",
            Entry::Str(s) => s,
            Entry::Json(_) => return None,
        };
        let right = match &self.table[b as usize] {
            Entry::Absent => "",
            Entry::Str(s) => s,
            Entry::Json(_) => return None,
        };
        if right.is_empty() {
            return Some(a);
        }
        let mut joined = String::with_capacity(left.len() + right.len());
        joined.push_str(left);
        joined.push_str(right);
        Some(self.intern_str(&joined))
    }

    /// How many distinct values (absent included).
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn to_json(&self, id: ValueId) -> Value {
        match &self.table[id as usize] {
            Entry::Absent => Value::Null,
            Entry::Str(s) => Value::String(s.to_string()),
            Entry::Json(v) => v.clone(),
        }
    }

    /// Bytes the table holds (for the memory bound).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes
    }
}
