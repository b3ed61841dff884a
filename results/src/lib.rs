//! # results
//!
//! What a person looks at after a run: the results **store** (one folder per run, `latest`, `index.html`),
//! the typed **run record** of each run ([`RunRecord`], its `test.json`),
//! latency and throughput **plots** (PNG and SVG, pure Rust, with nemesis activity shaded), the
//! self-contained **`report.html`** of a run (with an interactive counterexample view for invalid keys),
//! and **JUnit XML** for CI systems.
//!
//! It is **not** a checker and not a runner: it reads histories and the checkers' results
//! ([`checker::CheckReport`]) and renders them; it starts no processes and does no network I/O except
//! [`serve`], a small read-only static file server for a store bound to loopback by default.
//! Everything that comes from a history, a node or a configuration is HTML-escaped.

pub mod data;
mod html;
mod index;
pub mod junit;
pub mod plots;
pub mod record;
pub mod report;
mod run_dir;
pub mod serve;
pub mod store;
pub mod suite;
pub mod summary;

pub use html::{fmt_ns, script_json};
pub use junit::{JunitCase, JunitSuite};
pub use record::{RecordError, RunRecord, SCHEMA_VERSION};
pub use report::{render_checked_history, render_html, render_run, render_run_with, ReportError};
pub use run_dir::{RunDir, StoreError};
pub use store::Store;
