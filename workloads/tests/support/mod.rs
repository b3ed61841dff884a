//! Servers the tests run in-process.

pub mod http_kv_server;
pub mod resp_server;
