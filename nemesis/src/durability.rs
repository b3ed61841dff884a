//! The `lose-unsynced` fault: a power cut of the whole cluster. Every node is killed, then each loses what
//! its data directory had not synced ([`Cluster::lose_unsynced`]), then every node is started again.
//!
//! Why every node at once: Raft keeps an acknowledged write on a majority, and a node that lost its un-synced
//! log is brought back up to date by the others within milliseconds of its restart. Losing one node's cache at a
//! time therefore almost never loses an acknowledged write, even in a system that never fsyncs; a power cut
//! of the machine room does. Every node is killed before any loses its cache, so none syncs anything in
//! between.

use crate::cluster::{Cluster, EventSink};
use crate::error::NemesisError;
use serde_json::json;

/// Kills every node, drops their un-synced writes, restarts them; records `kill` (with
/// `"lose_unsynced": true`), `lose-unsynced` (what was lost) and `restart` for each node. On a failure, the
/// nodes already killed are still restarted and the first error is returned.
pub(crate) async fn power_cut(
    cluster: &dyn Cluster,
    sink: &dyn EventSink,
    nodes: &[String],
) -> Result<(), NemesisError> {
    let err = |action: &'static str, node: &str| {
        let node = node.to_string();
        move |source| NemesisError::Cluster { action, node, source }
    };
    let mut killed = Vec::new();
    let mut first = None;
    for node in nodes {
        match cluster.kill(node).await {
            Ok(()) => {
                sink.record(
                    "kill",
                    json!({ "node": node, "signal": "SIGKILL", "lose_unsynced": true }),
                );
                killed.push(node);
            }
            Err(e) => {
                first = Some(err("kill", node)(e));
                break;
            }
        }
    }
    if first.is_none() {
        for node in &killed {
            match cluster.lose_unsynced(node).await {
                Ok(lost) => sink.record("lose-unsynced", json!({ "node": node, "lost": lost })),
                Err(e) => {
                    first.get_or_insert(err("lose-unsynced", node)(e));
                }
            }
        }
    }
    for node in killed {
        match cluster.restart(node).await {
            Ok(()) => sink.record("restart", json!({ "node": node })),
            Err(e) => {
                first.get_or_insert(err("restart", node)(e));
            }
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{BoxFuture, ClusterError, DataLoss, ExecOutput, NetLayout, Node};
    use std::sync::Mutex;

    /// Logs every call; `lose_unsynced` fails for `broken`.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<String>>,
        broken: Option<&'static str>,
    }

    impl Fake {
        fn log(&self, what: &str, node: &str) {
            self.calls.lock().unwrap().push(format!("{what} {node}"));
        }
    }

    impl Cluster for Fake {
        fn layout(&self) -> NetLayout {
            NetLayout::Local
        }
        fn nodes(&self) -> Vec<Node> {
            Vec::new()
        }
        fn exec<'a>(
            &'a self,
            _: &'a str,
            _: &'a [String],
        ) -> BoxFuture<'a, Result<ExecOutput, ClusterError>> {
            Box::pin(async { Ok(ExecOutput::default()) })
        }
        fn kill<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>> {
            Box::pin(async move {
                self.log("kill", node);
                Ok(())
            })
        }
        fn restart<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>> {
            Box::pin(async move {
                self.log("restart", node);
                Ok(())
            })
        }
        fn pause<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), ClusterError>> {
            Box::pin(async { Ok(()) })
        }
        fn resume<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), ClusterError>> {
            Box::pin(async { Ok(()) })
        }
        fn leader(&self) -> BoxFuture<'_, Result<Option<String>, ClusterError>> {
            Box::pin(async { Ok(None) })
        }
        fn lose_unsynced<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<DataLoss, ClusterError>> {
            Box::pin(async move {
                self.log("lose", node);
                if self.broken == Some(node) {
                    return Err(ClusterError("no mount".into()));
                }
                Ok(DataLoss {
                    files: 1,
                    bytes: 4096,
                    dirs: 0,
                })
            })
        }
    }

    fn sink() -> (std::sync::Arc<Mutex<Vec<String>>>, impl EventSink) {
        let events = std::sync::Arc::new(Mutex::new(Vec::new()));
        let e = events.clone();
        (events, move |f: &str, v: serde_json::Value| {
            e.lock()
                .unwrap()
                .push(format!("{f} {}", v["node"].as_str().unwrap_or("")))
        })
    }

    #[tokio::test]
    async fn every_node_is_killed_before_any_loses_its_cache_and_all_restart() {
        let nodes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let fake = Fake::default();
        let (events, s) = sink();
        power_cut(&fake, &s, &nodes).await.unwrap();
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            [
                "kill n1",
                "kill n2",
                "kill n3",
                "lose n1",
                "lose n2",
                "lose n3",
                "restart n1",
                "restart n2",
                "restart n3"
            ]
        );
        let ev = events.lock().unwrap().clone();
        assert_eq!(ev.iter().filter(|e| e.starts_with("kill ")).count(), 3);
        assert_eq!(ev.iter().filter(|e| e.starts_with("lose-unsynced ")).count(), 3);
        assert_eq!(ev.iter().filter(|e| e.starts_with("restart ")).count(), 3);
        // A node that cannot lose its cache fails the step, but every node still comes back.
        let fake = Fake {
            broken: Some("n2"),
            ..Fake::default()
        };
        let (events, s) = sink();
        let e = power_cut(&fake, &s, &nodes).await.unwrap_err().to_string();
        assert!(e.contains("n2"), "{e}");
        assert_eq!(
            events
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.starts_with("restart "))
                .count(),
            3
        );
    }
}
