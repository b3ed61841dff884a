//! # workloads
//!
//! The client side of a faultline run: what the clients do, how they talk to the system under test, and
//! how every operation lands in `history.jsonl`.
//!
//! - [`Recorder`] ([`recorder`]): the only writer of `history.jsonl`. It assigns each event's `index` and
//!   `time` (ns since the run's start), buffers lines and writes them out at least every 100 ms from a
//!   background thread; [`Recorder::finish`] fsyncs. Events: [`Recorder::invoke`], [`Recorder::complete`],
//!   [`Recorder::nemesis`].
//! - [`Protocol`] ([`protocol`]): the DB spec's `[client]` table (`protocol = "http-kv" | "etcd" | "resp"
//!   | "http"` plus settings such as `timeout_ms`; `"http"` is any HTTP API described by request templates
//!   and classification rules, [`templated`]). [`Protocol::connector`] gives a [`Connector`], which makes a
//!   [`NodeClient`] per node; [`NodeClient::call`] sends an [`Op`] and classifies the outcome as ok, fail
//!   or info ([`Completion`]): anything that may have been applied is info, never fail.
//!   [`NodeClient::call_traced`] also returns what went over the wire ([`Exchange`]), for `faultline probe`.
//! - [`Workload`] ([`workload`]): `register`, `cas-register`, `append`, `set`; [`Workload::model_name`] is
//!   the checker model for it. [`Generator`] is one client task's seeded operation stream over many
//!   independent keys, each retired after a bounded number of operations ([`KeyPlan`]).
//! - [`drive`] ([`driver`]): runs `concurrency` client tasks (Jepsen processes) until told to stop, with
//!   live [`Counters`]; [`final_reads`] reads every touched key after the heal.
//!
//! A run wires them up like this (the harness does it):
//! ```no_run
//! # async fn run(nodes: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use workloads::*;
//! let protocol: Protocol = toml::from_str("protocol = \"http-kv\"")?;
//! let recorder = Recorder::create("history.jsonl")?;
//! let counters = Arc::new(Counters::default());
//! let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
//! let config = DriveConfig::new(Workload::CasRegister, 10, 42);
//! let clients = tokio::spawn({
//!     let (protocol, nodes, recorder, counters) = (protocol.clone(), nodes.clone(), recorder.clone(), counters.clone());
//!     async move { drive(&config, &protocol, &nodes, &recorder, counters, stop_rx).await }
//! });
//! // ... the nemesis runs; counters.snapshot() feeds the progress line ...
//! stop_tx.send(true)?;
//! let summary = clients.await??;
//! // ... heal ...
//! let reads = FinalReadConfig {
//!     workload: Workload::CasRegister,
//!     first_process: summary.next_process,
//!     parallelism: 10,
//!     within: std::time::Duration::from_secs(10),
//! };
//! final_reads(&reads, &protocol, &nodes, &recorder, &summary.keys).await?;
//! recorder.finish()?;
//! # Ok(()) }
//! ```
//!
//! It is **not** the harness: it starts no nodes, injects no faults and checks nothing; it only needs the
//! nodes' client addresses. It depends on `checker` only for the history's event types.

pub mod completion;
pub mod driver;
pub mod etcd;
pub mod exchange;
mod http;
pub mod http_kv;
pub mod protocol;
pub mod recorder;
pub mod resp;
pub mod settings;
pub mod templated;
pub mod workload;

pub use completion::Completion;
pub use driver::{
    drive, drive_following, final_reads, Counters, Counts, DriveConfig, DriveError, DriveSummary,
    FinalReadConfig, FinalReadSummary,
};
pub use exchange::{Answer, Exchange};
pub use protocol::{Connector, NodeClient, Protocol, ProtocolError};
pub use recorder::{Recorder, RecorderError, Stamp};
pub use settings::{EtcdSettings, HttpKvSettings, RespSettings};
pub use workload::{Call, Generator, KeyPlan, Op, UnknownWorkload, Workload};
