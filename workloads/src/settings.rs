//! The settings of each client protocol (the DB spec's `[client]` table, see [`crate::Protocol`]) and their
//! defaults. The protocol modules import this module; it imports none of them.

use serde::{Deserialize, Serialize};

fn default_timeout_ms() -> u64 {
    5000
}

fn default_true() -> bool {
    true
}

/// Settings of the `http-kv` protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpKvSettings {
    /// Per-request timeout in milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// Settings of the `etcd` protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdSettings {
    /// Per-request timeout in milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Send `Grpc-Metadata-hasleader: true`, so a node without a leader refuses at once (a definite failure)
    /// instead of waiting (default true).
    #[serde(default = "default_true")]
    pub has_leader_header: bool,
    /// Send reads as `serializable` ranges (default false): the member answers from its own state without a
    /// quorum round, which etcd documents as possibly stale. Writes, cas and the read inside an append are
    /// unaffected.
    #[serde(default)]
    pub serializable: bool,
}

/// Settings of the `resp` protocol. Commands are argument arrays with the placeholders `{key}`,
/// `{value}`, `{from}` and `{to}`; values are sent as their JSON text (strings without quotes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespSettings {
    /// Per-request timeout in milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The compare-and-set command. It must answer `:1` or `+OK` when it swapped and `:0` or nil when the
    /// current value differed. Default: an `EVAL` of a small Lua script doing GET, compare, SET.
    #[serde(default = "default_cas_command")]
    pub cas_command: Vec<String>,
    /// Read command (default `GET {key}`): answers a bulk string or nil.
    #[serde(default = "default_read_command")]
    pub read_command: Vec<String>,
    /// Write command (default `SET {key} {value}`).
    #[serde(default = "default_write_command")]
    pub write_command: Vec<String>,
    /// Append command (default `APPEND {key} {value}`).
    #[serde(default = "default_append_command")]
    pub append_command: Vec<String>,
    /// Set-add command (default `SADD {key} {value}`).
    #[serde(default = "default_add_command")]
    pub add_command: Vec<String>,
    /// Whole-set read command (default `SMEMBERS {key}`).
    #[serde(default = "default_read_set_command")]
    pub read_set_command: Vec<String>,
    /// Error replies whose first word is one of these mean the command was not applied (a definite
    /// failure); any other error reply to a write is indeterminate.
    #[serde(default = "default_definite_errors")]
    pub definite_errors: Vec<String>,
}

impl Default for HttpKvSettings {
    fn default() -> Self {
        HttpKvSettings {
            timeout_ms: default_timeout_ms(),
        }
    }
}

impl Default for EtcdSettings {
    fn default() -> Self {
        EtcdSettings {
            timeout_ms: default_timeout_ms(),
            has_leader_header: true,
            serializable: false,
        }
    }
}

impl Default for RespSettings {
    fn default() -> Self {
        RespSettings {
            timeout_ms: default_timeout_ms(),
            cas_command: default_cas_command(),
            read_command: default_read_command(),
            write_command: default_write_command(),
            append_command: default_append_command(),
            add_command: default_add_command(),
            read_set_command: default_read_set_command(),
            definite_errors: default_definite_errors(),
        }
    }
}

/// A Lua compare-and-set: swaps and answers 1 when the current value equals ARGV[1], else answers 0.
const CAS_SCRIPT: &str = "local v = redis.call('GET', KEYS[1]) \
if v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0";

fn default_cas_command() -> Vec<String> {
    ["EVAL", CAS_SCRIPT, "1", "{key}", "{from}", "{to}"]
        .map(String::from)
        .to_vec()
}
fn default_read_command() -> Vec<String> {
    ["GET", "{key}"].map(String::from).to_vec()
}
fn default_write_command() -> Vec<String> {
    ["SET", "{key}", "{value}"].map(String::from).to_vec()
}
fn default_append_command() -> Vec<String> {
    ["APPEND", "{key}", "{value}"].map(String::from).to_vec()
}
fn default_add_command() -> Vec<String> {
    ["SADD", "{key}", "{value}"].map(String::from).to_vec()
}
fn default_read_set_command() -> Vec<String> {
    ["SMEMBERS", "{key}"].map(String::from).to_vec()
}
fn default_definite_errors() -> Vec<String> {
    [
        "NOLEADER",
        "MOVED",
        "ASK",
        "CLUSTERDOWN",
        "LOADING",
        "READONLY",
        "WRONGTYPE",
        "NOSCRIPT",
    ]
    .map(String::from)
    .to_vec()
}
