//! raftkv: the reference Raft key-value node that faultline tests itself against.
//!
//! It is a plain Raft server (extended Raft paper: pre-vote, joint consensus, ReadIndex, snapshots) that
//! serves the "http-kv" protocol (docs/http-kv.md), correct by default, with each classic Raft mistake
//! available behind a `--bug` switch ([`core::Bugs`]). It shares no code with faultline, which treats it as a
//! black box exactly like etcd.
//!
//! This library holds the parts that the `raftkv` binary and its tests share: the pure Raft state machine
//! ([`core`]), the key-value state machine ([`kv`]) and the on-disk format ([`storage`]). It is not a general
//! Raft library: the public surface is what the binary and the deterministic simulation tests need.

pub mod core;
pub mod kv;
pub mod storage;
