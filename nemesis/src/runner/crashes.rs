//! The runner's side of the crash faults and of the minority-leader composite (what they are and why:
//! [`crate::crash`] and docs/nemesis.md). Each step undoes what it did before it returns, also on an error
//! (and [`Nemesis::heal`] restarts whatever is still recorded as killed).

use super::{Nemesis, NetFault, State, ISOLATE_LEADER_LOOKUP, TARGET_LEADER_LOOKUP};
use crate::error::NemesisError;
use crate::firewall;
use crate::partition;
use crate::schedule::Action;
use serde_json::json;
use std::time::Duration;

/// kill-election: how long to wait, after killing the leader, for another node to claim the lead.
const NEW_LEADER_WAIT: Duration = Duration::from_secs(5);

/// The pause between two leader probes while waiting for a (new) leader.
const POLL: Duration = Duration::from_millis(20);

/// The name of the crash-electorate fault in events and errors.
const ELECTORATE: &str = "crash-electorate";

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl Nemesis {
    /// Runs one crash or minority-leader step (any other action is a bug of the caller).
    pub(super) async fn crash_step(&self, st: &mut State, action: &Action) -> Result<(), NemesisError> {
        match action {
            Action::KillSeveral { nodes, down_ms } => self.kill_several(st, nodes, ms(*down_ms)).await,
            Action::KillElection { down_ms } => self.kill_election(st, ms(*down_ms)).await,
            Action::RestartMajority {
                nodes,
                down_ms,
                gap_ms,
            } => self.restart_majority(st, nodes, ms(*down_ms), ms(*gap_ms)).await,
            Action::MinorityLeader {
                hold_ms,
                settle_ms,
                down_ms,
                pick,
            } => {
                let times = (ms(*hold_ms), ms(*settle_ms), ms(*down_ms));
                self.minority_leader(st, times, *pick).await
            }
            Action::CrashElectorate {
                probability,
                down_ms,
                hold_ms,
            } => {
                self.crash_electorate(st, *probability, (ms(*down_ms), ms(*hold_ms)))
                    .await
            }
            Action::LaggingFailover {
                lag_ms,
                settle_ms,
                hold_ms,
                pick,
            } => {
                let times = (ms(*lag_ms), ms(*settle_ms), ms(*hold_ms));
                self.lagging_failover(st, times, *pick).await
            }
            other => Err(NemesisError::Unsupported(format!("not a crash fault: {other:?}"))),
        }
    }

    fn healthy(st: &State, node: &str) -> bool {
        !st.killed.contains(node) && !st.paused.contains(node)
    }

    /// The leader through the probe, if it is a healthy node of the cluster: the probe asked again every
    /// [`POLL`] until one is named or `wait` is over (a loaded machine's probe may time out, or find the
    /// cluster between two leaders, once or twice; a fault must not be dropped for that).
    async fn healthy_leader(&self, st: &State, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Ok(Ok(Some(l))) = tokio::time::timeout(left, self.cluster.leader()).await {
                if self.nodes.iter().any(|n| n.id == l) && Self::healthy(st, &l) {
                    return Some(l);
                }
            }
            if tokio::time::Instant::now() + POLL >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The healthy leader for the fault `what` (asking the probe for up to `wait`); none: a `NoLeader` error.
    async fn leader_for(&self, st: &State, wait: Duration, what: &str) -> Result<String, NemesisError> {
        self.healthy_leader(st, wait)
            .await
            .ok_or_else(|| NemesisError::NoLeader {
                fault: what.into(),
                reason: "no healthy node claims to lead".into(),
            })
    }

    /// Up to `count` healthy nodes other than `leader`, chosen by the schedule's `pick`.
    fn pick_followers(&self, st: &State, leader: &str, count: usize, pick: u64) -> Vec<String> {
        let candidates: Vec<String> = (self.node_ids().into_iter())
            .filter(|n| n != leader && Self::healthy(st, n))
            .collect();
        (0..count.min(candidates.len()))
            .map(|i| candidates[(pick as usize + i) % candidates.len()].clone())
            .collect()
    }

    /// SIGKILLs `node` and records `kill` with the fault it belongs to.
    async fn crash_kill(
        &self,
        st: &mut State,
        node: &str,
        leader: bool,
        fault: &str,
    ) -> Result<(), NemesisError> {
        self.kill_for(st, node, leader, Some(fault)).await
    }

    /// Restarts every node of `nodes` that is recorded as killed; the first error, after trying them all.
    async fn restart_all(&self, st: &mut State, nodes: &[String]) -> Result<(), NemesisError> {
        let mut first = None;
        for n in nodes {
            if let Err(e) = self.restart(st, n).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// kill-several: the healthy nodes among `nodes` killed at once, restarted together after `down`.
    async fn kill_several(
        &self,
        st: &mut State,
        nodes: &[String],
        down: Duration,
    ) -> Result<(), NemesisError> {
        let targets: Vec<String> = nodes
            .iter()
            .map(|n| Self::role(st, n))
            .filter(|n| Self::healthy(st, n))
            .collect();
        let mut killed = Vec::new();
        for t in &targets {
            if let Err(e) = self.crash_kill(st, t, false, "kill-several").await {
                let _ = self.restart_all(st, &killed).await;
                return Err(e);
            }
            killed.push(t.clone());
        }
        tokio::time::sleep(down).await;
        self.restart_all(st, &killed).await
    }

    /// kill-election: kills the leader L1, polls the probe until another healthy node claims the lead and
    /// kills it at once (while it takes office), restarts both after `down`. Without a leader to start from:
    /// an error, nothing done. When no new leader shows up within [`NEW_LEADER_WAIT`], only L1 was killed.
    async fn kill_election(&self, st: &mut State, down: Duration) -> Result<(), NemesisError> {
        let old = self
            .healthy_leader(st, TARGET_LEADER_LOOKUP)
            .await
            .ok_or_else(|| NemesisError::NoLeader {
                fault: "kill-election".into(),
                reason: "no healthy node claims to lead".into(),
            })?;
        self.crash_kill(st, &old, true, "kill-election").await?;
        let mut killed = vec![old.clone()];
        let deadline = tokio::time::Instant::now() + NEW_LEADER_WAIT;
        while tokio::time::Instant::now() < deadline {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Some(new) = self.healthy_leader(st, left).await.filter(|l| *l != old) {
                if let Err(e) = self.crash_kill(st, &new, true, "kill-election").await {
                    let _ = self.restart_all(st, &killed).await;
                    return Err(e);
                }
                killed.push(new);
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        tokio::time::sleep(down).await;
        self.restart_all(st, &killed).await
    }

    /// restart-majority: the nodes of `nodes` (the leader first: it takes the last one's place when it is not
    /// among them), each killed, restarted after `down`, the next one `gap` later.
    async fn restart_majority(
        &self,
        st: &mut State,
        nodes: &[String],
        down: Duration,
        gap: Duration,
    ) -> Result<(), NemesisError> {
        let mut order: Vec<String> = nodes.iter().map(|n| Self::role(st, n)).collect();
        let leader = self.healthy_leader(st, TARGET_LEADER_LOOKUP).await;
        if let Some(l) = &leader {
            match order.iter().position(|n| n == l) {
                Some(i) => {
                    let l = order.remove(i);
                    order.insert(0, l);
                }
                None => {
                    order.pop();
                    order.insert(0, l.clone());
                }
            }
        }
        for (i, node) in order.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            if !Self::healthy(st, node) {
                continue;
            }
            let is_leader = leader.as_deref() == Some(node.as_str());
            self.crash_kill(st, node, is_leader, "restart-majority").await?;
            tokio::time::sleep(down).await;
            self.restart(st, node).await?;
        }
        Ok(())
    }

    /// minority-leader: the leader and `(n-1)/2 - 1` healthy followers (chosen by `pick`) cut from the other
    /// nodes, both ways, until another node claims the lead (at most [`crate::crash::MINORITY_ELECTION_WAIT_MS`])
    /// and `hold` more; the cut is stopped; after `settle` the node that leads then is killed and restarted
    /// after `down`. No leader at the start: an error, nothing done.
    async fn minority_leader(
        &self,
        st: &mut State,
        (hold, settle, down): (Duration, Duration, Duration),
        pick: u64,
    ) -> Result<(), NemesisError> {
        const WHAT: &str = "minority-leader";
        self.stop_partition(st).await?;
        let leader = self.leader_for(st, ISOLATE_LEADER_LOOKUP, WHAT).await?;
        let ids = self.node_ids();
        let count = (ids.len().saturating_sub(1) / 2).saturating_sub(1);
        let mut minority = vec![leader.clone()];
        minority.extend(self.pick_followers(st, &leader, count, pick));
        let rest: Vec<String> = ids.iter().filter(|n| !minority.contains(n)).cloned().collect();
        let groups = [minority, rest];
        let drops = partition::cut(&groups);
        let value = json!({ "kind": WHAT, "leader": leader, "groups": groups, "drops": drops });
        self.start_net(st, true, &drops, None, value).await?;
        // The hold starts once the majority has a leader of its own (or the wait is over): two leaders for
        // all of it, however long the election takes.
        let _ = self
            .await_new_leader(st, &leader, ms(crate::crash::MINORITY_ELECTION_WAIT_MS))
            .await;
        tokio::time::sleep(hold).await;
        self.stop_partition(st).await?;
        tokio::time::sleep(settle).await;
        let Some(now) = self.healthy_leader(st, TARGET_LEADER_LOOKUP).await else {
            return Ok(());
        };
        self.crash_kill(st, &now, true, WHAT).await?;
        tokio::time::sleep(down).await;
        self.restart(st, &now).await
    }

    /// lagging-failover: `(n-1)/2` healthy followers (chosen by `pick`) paused for `lag`; resumed, and the
    /// leader L killed at once; the probe polled until another node N claims the lead (at most
    /// [`crate::crash::LAG_ELECTION_WAIT_MS`]); after `settle`, N with the followers that were not paused cut
    /// from the paused ones and L, both ways, L restarted inside the cut, and the cut stopped `hold` later. No
    /// leader at the start: an error, nothing done; no N, or N one of the paused: L restarted, no cut.
    async fn lagging_failover(
        &self,
        st: &mut State,
        (lag, settle, hold): (Duration, Duration, Duration),
        pick: u64,
    ) -> Result<(), NemesisError> {
        const WHAT: &str = "lagging-failover";
        let leader = self.leader_for(st, TARGET_LEADER_LOOKUP, WHAT).await?;
        let count = self.nodes.len().saturating_sub(1) / 2;
        let lagging = self.pick_followers(st, &leader, count, pick);
        let paused = self.pause_all(st, &lagging).await;
        if paused.is_ok() {
            tokio::time::sleep(lag).await;
        }
        let resumed = self.resume_all(st, &lagging).await;
        paused?;
        resumed?;
        self.crash_kill(st, &leader, true, WHAT).await?;
        let new = self
            .await_new_leader(st, &leader, ms(crate::crash::LAG_ELECTION_WAIT_MS))
            .await;
        tokio::time::sleep(settle).await;
        let cut = match new.filter(|n| !lagging.contains(n)) {
            Some(new) => Some(self.lagging_cut(st, &new, &leader, &lagging).await),
            None => None,
        };
        // Restarted only now, inside the cut: before it, the old leader would catch up from the new one.
        let restarted = self.restart(st, &leader).await;
        let held = match cut {
            None => Ok(()),
            Some(Err(e)) => Err(e),
            Some(Ok(())) => {
                if restarted.is_ok() {
                    tokio::time::sleep(hold).await;
                }
                self.stop_partition(st).await
            }
        };
        restarted?;
        held
    }

    /// lagging-failover's cut: the new leader `new` and the followers that were not `lagging` on one side,
    /// the `lagging` ones and the old leader `old` on the other, both ways.
    async fn lagging_cut(
        &self,
        st: &mut State,
        new: &str,
        old: &str,
        lagging: &[String],
    ) -> Result<(), NemesisError> {
        let ids = self.node_ids();
        let kept_up: Vec<String> = ids
            .iter()
            .filter(|n| *n != old && !lagging.contains(n))
            .cloned()
            .collect();
        let rest: Vec<String> = ids.iter().filter(|n| !kept_up.contains(n)).cloned().collect();
        let groups = [kept_up, rest];
        let drops = partition::cut(&groups);
        let value = json!({ "kind": "lagging-failover", "leader": new, "groups": groups, "drops": drops });
        self.start_net(st, true, &drops, None, value).await
    }

    /// Pauses every node of `nodes`; on an error, resumes those it paused and returns the error.
    async fn pause_all(&self, st: &mut State, nodes: &[String]) -> Result<(), NemesisError> {
        for (i, n) in nodes.iter().enumerate() {
            if let Err(e) = self.pause(st, n, false).await {
                let _ = self.resume_all(st, &nodes[..i]).await;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Resumes every node of `nodes` that is recorded as paused; the first error, after trying them all.
    async fn resume_all(&self, st: &mut State, nodes: &[String]) -> Result<(), NemesisError> {
        let mut first = None;
        for n in nodes {
            if let Err(e) = self.resume(st, n).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// crash-electorate: loss of `probability` between every two nodes; the leader L1 killed; the probe
    /// polled until another healthy node L2 claims the lead; every other healthy node killed at once, L2
    /// paused and held (it drops every packet it receives); the loss stopped; the killed nodes restarted after
    /// `down`; once a node L3 other than L2 claims the lead, L2 and L3 are cut from each other both ways (the
    /// hold removed), L2 resumed, and the cut stopped `hold` later. No leader at the start: an error, nothing
    /// done; no L2 within twice [`NEW_LEADER_WAIT`]: L1 restarted, nothing else; no L3: L2 resumed after
    /// `hold`.
    async fn crash_electorate(
        &self,
        st: &mut State,
        probability: f64,
        (down, hold): (Duration, Duration),
    ) -> Result<(), NemesisError> {
        let old = self.leader_for(st, TARGET_LEADER_LOOKUP, ELECTORATE).await?;
        self.stop_partition(st).await?;
        self.stop_loss(st).await?;
        let ids = self.node_ids();
        let drops = partition::every_link(&ids);
        let value = json!({ "nodes": ids, "probability": probability, "fault": ELECTORATE });
        self.start_net(st, false, &drops, Some(probability), value)
            .await?;
        let crashed = self.electorate_crash(st, &old).await;
        let unlossed = self.stop_loss(st).await;
        tokio::time::sleep(down).await;
        let restarted = self.restart_all(st, &ids).await;
        let cut = match (&crashed, &unlossed, &restarted) {
            (Ok(Some(l2)), Ok(()), Ok(())) => self.electorate_cut(st, l2).await,
            _ => Ok(()),
        };
        for n in &ids {
            if let Err(e) = self.resume(st, n).await {
                tracing::warn!("{ELECTORATE}: {e}");
            }
        }
        if st.partition.is_some() {
            tokio::time::sleep(hold).await;
        }
        let healed = self.stop_partition(st).await;
        crashed?;
        unlossed?;
        restarted?;
        cut?;
        healed
    }

    /// crash-electorate's crashes: kills `old`, waits for the next leader L2, kills every other healthy
    /// node, pauses L2 and holds it (it drops everything it receives, so nothing of a later election waits in
    /// its sockets). Returns L2, if one showed up.
    async fn electorate_crash(&self, st: &mut State, old: &str) -> Result<Option<String>, NemesisError> {
        self.crash_kill(st, old, true, ELECTORATE).await?;
        // Elections under loss take seconds.
        let deadline = tokio::time::Instant::now() + 2 * NEW_LEADER_WAIT;
        let mut new = None;
        while tokio::time::Instant::now() < deadline {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Some(l) = self.healthy_leader(st, left).await.filter(|l| l != old) {
                new = Some(l);
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let Some(new) = new else { return Ok(None) };
        let rest: Vec<String> = self
            .node_ids()
            .into_iter()
            .filter(|n| *n != new && Self::healthy(st, n))
            .collect();
        for n in &rest {
            self.crash_kill(st, n, false, ELECTORATE).await?;
        }
        self.pause(st, &new, true).await?;
        let mut hold = partition::zombie_hold(&new, &self.node_ids()).to_json();
        hold["kind"] = json!(ELECTORATE);
        let drops = partition::zombie_hold(&new, &self.node_ids()).drops;
        self.start_net(st, true, &drops, None, hold).await?;
        Ok(Some(new))
    }

    /// crash-electorate's cut: once a healthy node L3 other than the paused `l2` claims the lead (within
    /// [`NEW_LEADER_WAIT`]), `l2` and L3 cut from each other both ways in place of `l2`'s hold.
    async fn electorate_cut(&self, st: &mut State, l2: &str) -> Result<(), NemesisError> {
        let deadline = tokio::time::Instant::now() + NEW_LEADER_WAIT;
        let mut l3 = None;
        while tokio::time::Instant::now() < deadline {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Some(l) = self
                .healthy_leader(st, left.max(ISOLATE_LEADER_LOOKUP))
                .await
                .filter(|l| l != l2)
            {
                l3 = Some(l);
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let Some(l3) = l3 else {
            return self.stop_partition(st).await;
        };
        let cut = partition::zombie_cut(l2, &l3);
        let rules = firewall::drop_rules(self.backend, &self.nodes, &cut.drops, None)?;
        self.install(st, &rules).await?;
        self.stop_partition(st).await?;
        let mut value = cut.to_json();
        value["kind"] = json!(ELECTORATE);
        self.sink.record("start-partition", value.clone());
        st.partition = Some(NetFault { value, rules });
        Ok(())
    }
}
