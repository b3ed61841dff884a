//! Clock faults, applied: a bump, a strobe (a task that flips the offset every period until stopped), a
//! reset. Every write goes through [`crate::Cluster::set_clock`], so it lands where the node runs (a local
//! file, or one command on an ssh host).

use super::{Nemesis, State};
use crate::clock;
use crate::cluster::Cluster;
use crate::error::NemesisError;
use crate::schedule::Action;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running strobe: the task that flips a node's clock, and how to ask it to stop between two writes.
pub(super) struct Strobe {
    stop: oneshot::Sender<()>,
    pub(super) task: JoinHandle<()>,
}

impl Strobe {
    /// Flips `node`'s clock between `offset_ms` and true time every `period` (the first flip, to true time,
    /// one period from now).
    fn spawn(cluster: Arc<dyn Cluster>, node: String, offset_ms: i64, period: Duration) -> Strobe {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut on = true;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = &mut stopped => return,
                }
                on = !on;
                // Not raced with the stop: a write that may land on a remote host is never left in flight,
                // so it cannot overwrite the reset that follows a stop.
                if let Err(e) = cluster.set_clock(&node, if on { offset_ms } else { 0 }).await {
                    tracing::warn!("clock strobe of {node}: {e}");
                }
            }
        });
        Strobe { stop, task }
    }

    /// Stops the strobe and waits until its last write, if one was under way, is done.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

impl Nemesis {
    /// Applies a clock action of the schedule and records it.
    pub(super) async fn apply_clock(&self, st: &mut State, action: &Action) -> Result<(), NemesisError> {
        match action {
            Action::ClockBump { node, offset_ms } => {
                self.require_faketime(node)?;
                Self::stop_strobe(st, node).await;
                self.set_clock(node, *offset_ms).await?;
                st.clocks.insert(node.clone(), None);
                self.sink
                    .record("clock-bump", json!({ "node": node, "offset_ms": offset_ms }));
            }
            Action::ClockStrobe {
                node,
                offset_ms,
                period_ms,
            } => {
                self.require_faketime(node)?;
                Self::stop_strobe(st, node).await;
                self.set_clock(node, *offset_ms).await?;
                let period = Duration::from_millis((*period_ms).max(1));
                let strobe = Strobe::spawn(self.cluster.clone(), node.clone(), *offset_ms, period);
                st.clocks.insert(node.clone(), Some(strobe));
                self.sink.record(
                    "clock-strobe",
                    json!({ "node": node, "offset_ms": offset_ms, "period_ms": period_ms }),
                );
            }
            Action::ClockReset { node } => self.reset_clock(st, node).await?,
            other => unreachable!("apply_clock given {other:?}"),
        }
        Ok(())
    }

    /// Puts a node whose clock is off back to true time (nothing when it is not off) and records it.
    pub(super) async fn reset_clock(&self, st: &mut State, node: &str) -> Result<(), NemesisError> {
        if !st.clocks.contains_key(node) {
            return Ok(());
        }
        Self::stop_strobe(st, node).await;
        self.set_clock(node, 0).await?;
        st.clocks.remove(node);
        self.sink.record("clock-reset", json!({ "node": node }));
        Ok(())
    }

    async fn stop_strobe(st: &mut State, node: &str) {
        if let Some(strobe) = st.clocks.get_mut(node).and_then(Option::take) {
            strobe.stop().await;
        }
    }

    async fn set_clock(&self, node: &str, offset_ms: i64) -> Result<(), NemesisError> {
        self.cluster
            .set_clock(node, offset_ms)
            .await
            .map_err(|source| NemesisError::Cluster {
                action: "set the clock of",
                node: node.to_string(),
                source,
            })
    }

    /// Refuses a node not started under libfaketime.
    fn require_faketime(&self, node: &str) -> Result<(), NemesisError> {
        match self.nodes.iter().find(|n| n.id == node) {
            Some(n) if n.faketime_file.is_some() => Ok(()),
            _ => Err(clock::refusal(node)),
        }
    }
}
