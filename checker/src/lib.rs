//! # checker
//!
//! What a history means and whether it is linearizable.
//!
//! This crate holds the history types and parsers ([`history`]: faultline's JSON Lines, Jepsen's EDN and
//! Jepsen's text logs), the sequential specifications of the systems under test ([`model`]), the
//! linearizability search ([`linearizability`]), and the checkers that read a history for other properties
//! ([`availability`], [`stats`]). [`result`] holds what they conclude.
//!
//! It is **not** a test runner: it has no async runtime and does no network I/O; its only I/O is reading
//! history files. A user can run it alone as `faultline check history.jsonl`.

pub mod availability;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod result;
pub mod stats;

pub use history::{Event, EventType, History, Operation, Outcome, Process};
pub use result::{CheckReport, Verdict};
