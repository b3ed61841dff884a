//! The run record: `test.json`, what a run was asked to do and what it did, as one typed, versioned struct.
//!
//! The harness is its only writer ([`RunDir::write_record`], rewritten as the run goes: after set-up, after
//! the nodes are ready, after the check, at the end or on failure); every reader (the report, the index,
//! `faultline report --recheck`, JUnit, the suite) reads it through [`RunDir::record`]. The schema is
//! documented field by field in `docs/run-record.md`.
//!
//! Compatibility: every field has a default, so folders written before a field existed still read (the
//! field is empty); folders written before the record was versioned read as [`RunRecord::schema_version`]
//! 0. A record of a newer schema than this build knows is refused with a clear error, never half-read.

use crate::run_dir::RunDir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The schema this build writes. Bump it when a field changes meaning or type (adding a field with a
/// default does not need a bump).
pub const SCHEMA_VERSION: u32 = 1;

/// `test.json`: one run's configuration, its environment, and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunRecord {
    /// [`SCHEMA_VERSION`] when written; 0 for folders written before the record was versioned.
    pub schema_version: u32,
    /// The test's name (`--name`, default `<db>-<workload>`).
    pub name: String,
    /// The DB spec's `name`.
    pub db: String,
    /// Where the spec came from and its full text.
    pub spec: SpecRecord,
    /// The workload (`cas-register`, `append`, ...).
    pub workload: String,
    /// The checker model the history is checked against.
    pub model: String,
    /// The client protocol (`http-kv`, `etcd`, `resp`, ...).
    pub protocol: String,
    /// `local`, `netns` or `external`.
    pub backend: String,
    /// Nodes in the cluster (`--nodes`).
    pub node_count: usize,
    /// Client tasks (`--concurrency`).
    pub concurrency: usize,
    /// Operations per second over all clients; `None`: as fast as the system answers.
    pub rate: Option<f64>,
    /// Seconds of client traffic (`--time-limit`).
    pub time_limit: f64,
    /// Seconds within which an operation must succeed after the final heal (`--recovery-limit`).
    pub recovery_limit: f64,
    /// The seed of the operations and the fault schedule: the same seed replays the same run.
    pub seed: Option<u64>,
    /// Arguments appended to every node's command (`--node-arg`).
    pub node_args: Vec<String>,
    /// The faults asked for and the schedule drawn.
    pub nemesis: NemesisRecord,
    /// Short unique id naming the run's namespaces, links and chains.
    pub run_id: String,
    /// UTC, `20261130T120102Z`.
    pub started_at: String,
    /// UTC, when the run ended (also when it failed); absent while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub versions: Versions,
    /// The system's version through the spec's `version` command (first lines), or why it is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_version: Option<String>,
    /// The harness's command line.
    pub argv: Vec<String>,
    /// The nodes as started (empty until they are).
    pub nodes: Vec<NodeRecord>,
    /// What the tear-down stopped and removed, and what it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teardown: Option<TeardownRecord>,
    /// Why the run did not complete (set-up failed, interrupted, ...); absent for a run that was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Completions by outcome, once the clients stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// Every key the clients used.
    pub keys: Vec<String>,
    /// Keys no final read could read back after the heal.
    pub unread_keys: Vec<String>,
    /// Answers no rule of the spec's client protocol covered, grouped, most frequent first (empty when the
    /// rules covered every answer, or for a protocol with fixed rules).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unclassified: Vec<UnclassifiedAnswer>,
}

/// One kind of answer that no rule of the spec's client protocol covered: the client recorded each such
/// answer as indeterminate (`info`; a read, which changes nothing, as `fail`), never as `ok` or a definite
/// failure, with an error that starts with `unclassified:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UnclassifiedAnswer {
    /// The operation's function (`write`, `read`, `cas`, ...).
    pub f: String,
    /// How the completion was recorded: `info` or `fail`.
    pub recorded_as: String,
    /// The completion's error: `unclassified: HTTP 418 "body" (why)`, the answer as the client saw it.
    pub answer: String,
    /// How many completions had exactly this function, outcome and answer.
    pub count: u64,
    /// The history index of the first of them.
    pub first_index: u64,
}

/// The DB spec a run used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecRecord {
    /// The file (or `<bundled raftkv>`).
    pub origin: String,
    /// The spec's full text.
    pub text: String,
}

/// The faults of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NemesisRecord {
    /// `--nemesis` as given (`partition,kill`; `none`).
    pub faults: String,
    /// Mean seconds between two fault changes.
    pub interval: f64,
    /// Whether faults aimed at the leader (isolate-leader, zombie-leader, kill or pause of the leader) could
    /// be drawn: `false` when the spec has no `[leader]` probe. `None` in records before schema 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_targeted: Option<bool>,
    /// The nemesis's schedule options as it records them (interval, quiet period, max dead, ...). Shown as
    /// they are; nothing reads a field of them back.
    pub options: BTreeMap<String, serde_json::Value>,
    /// The schedule drawn (absent without faults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleRecord>,
}

/// A fault schedule: every step, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduleRecord {
    pub seed: u64,
    pub steps: Vec<StepRecord>,
}

/// One step of a schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepRecord {
    /// Milliseconds from the start of the run.
    pub at_ms: u64,
    /// The nemesis action (`start-partition`, `kill`, `isolate-leader`, ...).
    pub action: String,
    /// The action's parameters as the nemesis names them (`node`, `partition`, `probability`, ...).
    #[serde(flatten)]
    pub detail: BTreeMap<String, serde_json::Value>,
}

/// Versions of the tool and the system under test.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Versions {
    pub faultline: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

/// One node as the harness started it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeRecord {
    /// `n1`, `n2`, ...
    pub id: String,
    /// 1-based.
    pub index: usize,
    pub host: String,
    pub client_port: u16,
    pub peer_port: u16,
    /// The network namespace it ran in (netns backend).
    pub netns: Option<String>,
    /// Where clients connected, `host:port`.
    pub client_address: String,
    pub data_dir: PathBuf,
    /// Its stdout and stderr.
    pub log_path: PathBuf,
    /// The start command, placeholders filled, the program resolved.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Local backend: its cgroup (relative to the cgroup2 root).
    pub cgroup: Option<String>,
    /// The libfaketime control file it was started with (clock faults).
    pub faketime_file: Option<PathBuf>,
}

/// What the tear-down did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TeardownRecord {
    pub processes_stopped: Vec<String>,
    pub removed: Vec<String>,
    /// What could not be removed (each with the reason); `faultline heal` retries.
    pub errors: Vec<String>,
}

/// Completions by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }
}

/// Why a run record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The folder has no `test.json` (a run that failed before writing one, or not a run).
    #[error("{}: no run record", .0.display())]
    Missing(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not JSON, or a field of the wrong type: `file:line: reason`.
    #[error("{}:{line}: {source}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    /// Written by a newer faultline.
    #[error(
        "{}: schema_version: {found} is newer than this faultline reads (up to {SCHEMA_VERSION}); upgrade faultline",
        path.display()
    )]
    NewerSchema { path: PathBuf, found: u32 },
}

impl RunRecord {
    /// Reads a record from a file (any schema up to [`SCHEMA_VERSION`]).
    pub fn read(path: &Path) -> Result<RunRecord, RecordError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RecordError::Missing(path.to_path_buf()))
            }
            Err(source) => {
                return Err(RecordError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let record: RunRecord = serde_json::from_slice(&bytes).map_err(|source| RecordError::Parse {
            path: path.to_path_buf(),
            line: source.line(),
            source,
        })?;
        if record.schema_version > SCHEMA_VERSION {
            return Err(RecordError::NewerSchema {
                path: path.to_path_buf(),
                found: record.schema_version,
            });
        }
        Ok(record)
    }

    /// Writes the record (pretty JSON) through a temporary file and a rename, so a reader never sees half
    /// of it. Always stamps the current [`SCHEMA_VERSION`].
    pub fn write(&self, path: &Path) -> Result<(), RecordError> {
        let mut record = self.clone();
        record.schema_version = SCHEMA_VERSION;
        let text = serde_json::to_vec_pretty(&record).map_err(|source| RecordError::Parse {
            path: path.to_path_buf(),
            line: 0,
            source,
        })?;
        crate::run_dir::write_atomically(path, &text).map_err(|e| match e {
            crate::StoreError::Io { path, source } => RecordError::Io { path, source },
            other => RecordError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(other.to_string()),
            },
        })
    }

    /// The record as a JSON object, every field (for pages that show all of it).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl RunDir {
    /// The run's record (`test.json`).
    pub fn record(&self) -> Result<RunRecord, RecordError> {
        RunRecord::read(&self.test_path())
    }

    /// Writes the run's record (`test.json`), replacing the previous one.
    pub fn write_record(&self, record: &RunRecord) -> Result<(), RecordError> {
        record.write(&self.test_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_a_round_trip_and_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.json");
        let mut r = RunRecord {
            name: "cas".into(),
            seed: Some(7),
            counts: Some(Counts {
                ok: 1,
                fail: 2,
                info: 3,
            }),
            ..Default::default()
        };
        r.nemesis.schedule = Some(ScheduleRecord {
            seed: 7,
            steps: vec![StepRecord {
                at_ms: 1500,
                action: "kill".into(),
                detail: [("node".to_string(), serde_json::json!("n2"))].into(),
            }],
        });
        r.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(r#""action": "kill""#) && text.contains(r#""node": "n2""#),
            "{text}"
        );
        let back = RunRecord::read(&path).unwrap();
        assert_eq!(back.schema_version, SCHEMA_VERSION);
        r.schema_version = SCHEMA_VERSION;
        assert_eq!(back, r);
    }

    #[test]
    fn an_unversioned_record_reads_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.json");
        std::fs::write(
            &path,
            r#"{"name":"old","workload":"register","node_count":5,"recovery_limit":10.0}"#,
        )
        .unwrap();
        let r = RunRecord::read(&path).unwrap();
        assert_eq!((r.schema_version, r.name.as_str(), r.node_count), (0, "old", 5));
        assert_eq!(r.recovery_limit, 10.0);
        assert!(r.counts.is_none() && r.nodes.is_empty());
    }

    #[test]
    fn bad_missing_and_newer_records_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.json");
        assert!(matches!(RunRecord::read(&path), Err(RecordError::Missing(_))));
        std::fs::write(&path, "{\n\"name\": 3}").unwrap();
        let e = RunRecord::read(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:2: invalid type", path.display())),
            "{e}"
        );
        std::fs::write(&path, r#"{"schema_version": 99}"#).unwrap();
        let e = RunRecord::read(&path).unwrap_err().to_string();
        assert!(e.contains("schema_version: 99 is newer"), "{e}");
    }
}
