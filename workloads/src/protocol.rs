//! Client protocols: how an [`Op`] is sent to a node and how its outcome is classified.
//!
//! The classification rule everywhere: `ok` when the operation took effect and its result is known; `fail`
//! only when it definitely did not take effect (the request never left, or the server said it did nothing);
//! `info` when it may have taken effect. A read changes nothing, so a read that times out or errs is `fail`.
//!
//! The `error` strings a completion carries:
//! - `cas-mismatch`: the comparison of a cas failed (a definite failure that also says the value differed);
//! - `connection-refused`, `connect-timeout`: no connection, nothing sent (fail);
//! - `client-timeout`: no answer within the protocol's `timeout_ms` (info; fail for a read);
//! - `connection error: ...`: the connection broke after the request was handed to it (info; fail for a read);
//! - http-kv: the server's error code (`not-leader`, `timeout`, `leadership-lost`, `bad-request`, ...) or
//!   `http-NNN` when the body had none; etcd: `http-NNN: <gateway message>`; resp: `resp-error: <reply>`;
//! - `bad-response`: an answer that does not follow the protocol (info; fail for a read);
//! - `append-contention` (etcd): an append lost the race to other writers too many times (fail);
//! - `final-read-deadline`: a final read cut short by the final reads' deadline (fail).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::completion::Completion;
use crate::exchange::Exchange;
use crate::settings::{EtcdSettings, HttpKvSettings, RespSettings};
use crate::workload::Op;
use crate::{etcd, http_kv, resp, templated};

/// The client protocol of a system under test and its settings: the DB spec's `[client]` table.
///
/// ```toml
/// [client]
/// protocol = "etcd"          # or "http-kv", "resp"
/// timeout_ms = 5000          # per request; optional
/// has_leader_header = true   # etcd only; optional
/// serializable = false       # etcd only; optional: reads answered from the member's own state
/// ```
/// Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "kebab-case")]
pub enum Protocol {
    /// faultline's own JSON-over-HTTP key-value protocol (docs/http-kv.md), spoken by raftkv.
    HttpKv(HttpKvSettings),
    /// etcd's v3 JSON gateway (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`).
    Etcd(EtcdSettings),
    /// The Redis protocol over TCP (GET, SET, and a configurable compare-and-set command).
    Resp(RespSettings),
    /// Any HTTP key-value API, described by request templates and classification rules ([`templated`]).
    Http(Box<templated::HttpSettings>),
}

/// A protocol setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("client.{field}: {reason}")]
    Setting { field: &'static str, reason: String },
    /// A setting inside a table of `[client]` (boxed: errors stay small).
    #[error(transparent)]
    Field(Box<templated::FieldError>),
}

impl Protocol {
    /// The protocol's name as written in `protocol = "..."`.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::HttpKv(_) => "http-kv",
            Protocol::Etcd(_) => "etcd",
            Protocol::Resp(_) => "resp",
            Protocol::Http(_) => "http",
        }
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(match self {
            Protocol::HttpKv(s) => s.timeout_ms,
            Protocol::Etcd(s) => s.timeout_ms,
            Protocol::Resp(s) => s.timeout_ms,
            Protocol::Http(s) => s.timeout_ms,
        })
    }

    /// The operations `workload` sends that this protocol cannot (spec names such as `cas`); only the
    /// templated `http` protocol can lack some.
    pub fn missing_for(&self, workload: crate::Workload) -> Vec<&'static str> {
        match self {
            Protocol::Http(s) => s.missing_for(workload),
            _ => Vec::new(),
        }
    }

    /// Checks the settings: a zero timeout or an empty command is refused; every template, rule, regex and
    /// pointer of the `http` protocol is checked.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if let Protocol::Http(s) = self {
            return templated::compile(s).map(|_| ()).map_err(ProtocolError::Field);
        }
        if self.timeout().is_zero() {
            return Err(ProtocolError::Setting {
                field: "timeout_ms",
                reason: "must be above 0".into(),
            });
        }
        if let Protocol::Resp(s) = self {
            for (field, cmd) in [
                ("cas_command", &s.cas_command),
                ("read_command", &s.read_command),
                ("write_command", &s.write_command),
                ("append_command", &s.append_command),
                ("add_command", &s.add_command),
                ("read_set_command", &s.read_set_command),
            ] {
                if cmd.is_empty() {
                    return Err(ProtocolError::Setting {
                        field,
                        reason: "must name a command".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks the settings and gives what makes the clients of a run.
    pub fn connector(&self) -> Result<Connector, ProtocolError> {
        self.validate()?;
        let plan = match self {
            Protocol::Http(s) => Some(std::sync::Arc::new(
                templated::compile(s).map_err(ProtocolError::Field)?,
            )),
            _ => None,
        };
        Ok(Connector {
            protocol: self.clone(),
            plan,
        })
    }
}

/// Makes one [`NodeClient`] per node a client task talks to. Each client keeps its own connection (a task
/// is pinned to one node at a time, so no pool is needed); connections go only to the given address.
#[derive(Debug, Clone)]
pub struct Connector {
    protocol: Protocol,
    /// The compiled templates and rules of the `http` protocol.
    plan: Option<std::sync::Arc<templated::Plan>>,
}

impl Connector {
    /// The protocol.
    pub fn protocol(&self) -> &Protocol {
        &self.protocol
    }

    /// A client for the node whose client address is `node` (`host:port`). It connects on first use.
    pub fn client(&self, node: &str) -> NodeClient {
        let timeout = self.protocol.timeout();
        match &self.protocol {
            Protocol::HttpKv(_) => NodeClient::HttpKv(http_kv::HttpKvClient::new(node, timeout)),
            Protocol::Etcd(s) => NodeClient::Etcd(etcd::EtcdClient::new(node, timeout, s)),
            Protocol::Resp(s) => NodeClient::Resp(Box::new(resp::RespClient::new(node, timeout, s.clone()))),
            Protocol::Http(s) => {
                let plan = match &self.plan {
                    Some(p) => p.clone(),
                    // A Connector is only made by Protocol::connector, which compiled the plan.
                    None => {
                        std::sync::Arc::new(templated::compile(s).expect("checked by Protocol::connector"))
                    }
                };
                NodeClient::Http(Box::new(templated::TemplatedClient::new(node, plan)))
            }
        }
    }
}

/// A client of one node.
#[derive(Debug)]
pub enum NodeClient {
    HttpKv(http_kv::HttpKvClient),
    Etcd(etcd::EtcdClient),
    Resp(Box<resp::RespClient>),
    Http(Box<templated::TemplatedClient>),
}

impl NodeClient {
    /// Sends `op` and classifies its outcome. Never panics, never hangs past the protocol's timeout by
    /// much (an etcd append is a read plus a conditional write, each with the timeout).
    pub async fn call(&mut self, op: &Op) -> Completion {
        match self {
            NodeClient::HttpKv(c) => c.call(op).await,
            NodeClient::Etcd(c) => c.call(op).await,
            NodeClient::Resp(c) => c.call(op).await,
            NodeClient::Http(c) => c.call(op).await,
        }
    }

    /// Like [`NodeClient::call`], and also says what went over the wire: each request, its answer (or why
    /// there was none) and, for the templated `http` protocol, the spec's rule that classified it.
    pub async fn call_traced(&mut self, op: &Op) -> (Completion, Vec<Exchange>) {
        match self {
            NodeClient::HttpKv(c) => c.call_traced(op).await,
            NodeClient::Etcd(c) => c.call_traced(op).await,
            NodeClient::Resp(c) => c.call_traced(op).await,
            NodeClient::Http(c) => c.call_traced(op).await,
        }
    }

    /// The node's client address.
    pub fn node(&self) -> &str {
        match self {
            NodeClient::HttpKv(c) => c.node(),
            NodeClient::Etcd(c) => c.node(),
            NodeClient::Resp(c) => c.node(),
            NodeClient::Http(c) => c.node(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{EtcdSettings, HttpKvSettings};

    #[derive(Debug, Deserialize)]
    struct Spec {
        client: Protocol,
    }

    #[test]
    fn parses_client_tables() {
        let s: Spec = toml::from_str("[client]\nprotocol = \"http-kv\"\n").unwrap();
        assert_eq!(s.client, Protocol::HttpKv(HttpKvSettings::default()));
        let s: Spec =
            toml::from_str("[client]\nprotocol = \"etcd\"\ntimeout_ms = 700\nhas_leader_header = false\n")
                .unwrap();
        assert_eq!(
            s.client,
            Protocol::Etcd(EtcdSettings {
                timeout_ms: 700,
                has_leader_header: false,
                serializable: false,
            })
        );
        let s: Spec = toml::from_str("[client]\nprotocol = \"etcd\"\nserializable = true\n").unwrap();
        let Protocol::Etcd(e) = s.client else { panic!() };
        assert!(e.serializable && e.has_leader_header);
        let s: Spec = toml::from_str(
            "[client]\nprotocol = \"resp\"\ncas_command = [\"CAS\", \"{key}\", \"{from}\", \"{to}\"]\n",
        )
        .unwrap();
        let Protocol::Resp(r) = s.client else { panic!() };
        assert_eq!(r.cas_command, ["CAS", "{key}", "{from}", "{to}"]);
        assert_eq!(r.read_command, ["GET", "{key}"]);
    }

    #[test]
    fn rejects_unknown_fields_and_protocols_with_a_clear_message() {
        let e = toml::from_str::<Spec>("[client]\nprotocol = \"etcd\"\ntimout_ms = 5\n").unwrap_err();
        assert!(e.to_string().contains("timout_ms"), "{e}");
        let e = toml::from_str::<Spec>("[client]\nprotocol = \"grpc\"\n").unwrap_err();
        assert!(e.to_string().contains("grpc"), "{e}");
        let p = Protocol::HttpKv(HttpKvSettings { timeout_ms: 0 });
        assert!(p.validate().unwrap_err().to_string().contains("timeout_ms"));
    }
}
