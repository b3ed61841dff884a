//! Membership faults, applied: the runner's side of [`crate::membership`]. Every change is recorded as
//! `member-request` when it is asked for, then `member-ok` when the system acknowledged it or `member-fail`
//! with the error (the change may still take effect later: its nodes are then in doubt, and
//! `member-restore` names them again).

use super::{Nemesis, State};
use crate::cluster::ClusterError;
use crate::error::NemesisError;
use crate::membership::plan_split;
use crate::partition::Drops;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

/// The longest a membership change may take before it is recorded as failed.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);

/// How many times member-restore asks before it leaves the membership as it is.
const RESTORE_ATTEMPTS: usize = 3;

/// The membership as the nemesis knows it.
#[derive(Default)]
pub(super) struct Members {
    /// As the system last acknowledged it; `None` until the first acknowledged change (the initial nodes).
    current: Option<BTreeSet<String>>,
    /// Nodes named by a change that failed: whether they are members is unknown.
    doubt: BTreeSet<String>,
}

impl Nemesis {
    fn members_now(&self, st: &State) -> BTreeSet<String> {
        st.members
            .current
            .clone()
            .unwrap_or_else(|| self.initial.iter().cloned().collect())
    }

    /// Spares neither members nor in doubt, in the cluster's order.
    fn free_spares(&self, st: &State) -> Vec<String> {
        let now = self.members_now(st);
        self.spares
            .iter()
            .filter(|s| !now.contains(*s) && !st.members.doubt.contains(*s))
            .cloned()
            .collect()
    }

    /// Applies a membership action of the schedule.
    pub(super) async fn apply_member(
        &self,
        st: &mut State,
        action: &crate::schedule::Action,
    ) -> Result<(), NemesisError> {
        use crate::schedule::Action;
        match action {
            Action::MemberRemove { nodes } => {
                let remove: Vec<String> = nodes.iter().map(|n| Self::role(st, n)).collect();
                if self.change(st, "remove", Vec::new(), remove.clone()).await {
                    self.retire(st, &remove).await?;
                }
            }
            Action::MemberGrow { count } => {
                let add = self.take_spares(st, *count, "member-grow")?;
                self.change(st, "grow", add, Vec::new()).await;
            }
            Action::MemberReplace { remove } => {
                let remove: Vec<String> = remove.iter().map(|n| Self::role(st, n)).collect();
                let add = self.take_spares(st, remove.len(), "member-replace")?;
                if self.change(st, "replace", add, remove.clone()).await {
                    self.retire(st, &remove).await?;
                }
            }
            Action::MemberSplit { seed } => {
                self.stop_partition(st).await?;
                self.member_split(st, *seed).await?;
            }
            Action::MemberRestore => self.member_restore(st).await?,
            _ => unreachable!("not a membership action"),
        }
        Ok(())
    }

    fn take_spares(&self, st: &State, count: usize, what: &str) -> Result<Vec<String>, NemesisError> {
        let free = self.free_spares(st);
        if free.len() < count {
            return Err(NemesisError::Unsupported(format!(
                "{what}: needs {count} spare nodes, {} free",
                free.len()
            )));
        }
        Ok(free.into_iter().take(count).collect())
    }

    /// Asks for one change and records it; true when the system acknowledged it.
    async fn change(&self, st: &mut State, kind: &str, add: Vec<String>, remove: Vec<String>) -> bool {
        self.change_via(st, kind, add, remove, None).await
    }

    /// [`Nemesis::change`], asking only `via` when given.
    async fn change_via(
        &self,
        st: &mut State,
        kind: &str,
        add: Vec<String>,
        remove: Vec<String>,
        via: Option<String>,
    ) -> bool {
        let before = self.members_now(st);
        let mut target = before.clone();
        target.extend(add.iter().cloned());
        for r in &remove {
            target.remove(r);
        }
        let target_list: Vec<String> = target.iter().cloned().collect();
        let request = json!({
            "kind": kind, "add": add, "remove": remove, "members": before, "target": target_list,
        });
        self.sink.record("member-request", request.clone());
        let asked = self
            .cluster
            .change_members(&add, &remove, &target_list, via.as_deref());
        let error = match tokio::time::timeout(CHANGE_TIMEOUT, asked).await {
            Ok(Ok(())) => None,
            Ok(Err(ClusterError(e))) => Some(e),
            Err(_) => Some(format!(
                "no acknowledgement within {} s",
                CHANGE_TIMEOUT.as_secs()
            )),
        };
        match error {
            None => {
                st.members
                    .doubt
                    .retain(|d| !add.contains(d) && !remove.contains(d));
                st.members.current = Some(target);
                self.sink.record(
                    "member-ok",
                    json!({ "kind": kind, "add": add, "remove": remove, "members": target_list }),
                );
                true
            }
            Some(e) => {
                tracing::warn!("nemesis: membership change ({kind}) failed: {e}");
                st.members.doubt.extend(add.iter().chain(&remove).cloned());
                let mut v = request;
                v["error"] = json!(e);
                self.sink.record("member-fail", v);
                false
            }
        }
    }

    /// Stops nodes the system no longer counts as members and wipes their data.
    async fn retire(&self, st: &mut State, nodes: &[String]) -> Result<(), NemesisError> {
        for node in nodes {
            self.cluster
                .retire(node)
                .await
                .map_err(|source| NemesisError::Cluster {
                    action: "retire",
                    node: node.clone(),
                    source,
                })?;
            st.killed.remove(node);
            st.paused.remove(node);
            self.sink.record("member-retire", json!({ "node": node }));
        }
        Ok(())
    }

    /// The composite member-split (see [`crate::membership`]): no partition is in force when it is called.
    async fn member_split(&self, st: &mut State, seed: u64) -> Result<(), NemesisError> {
        const WHAT: &str = "member-split";
        let members: Vec<String> = self.members_now(st).into_iter().collect();
        let leader = self
            .find_leader(WHAT)
            .await?
            .filter(|l| members.contains(l) && !st.killed.contains(l) && !st.paused.contains(l))
            .ok_or_else(|| NemesisError::NoLeader {
                fault: WHAT.into(),
                reason: "no healthy member claims to lead".into(),
            })?;
        let plan = plan_split(&members, &leader, &self.free_spares(st), seed).ok_or_else(|| {
            NemesisError::Unsupported(format!(
                "{WHAT}: {} members and {} free spares are too few",
                members.len(),
                self.free_spares(st).len()
            ))
        })?;
        // The cut first: the old side must never hear of the new configuration.
        let mut drops = Drops::new();
        for (a, b) in [(&plan.new_side, &plan.old_side), (&plan.old_side, &plan.new_side)] {
            for dst in a {
                drops.insert(dst.clone(), b.iter().cloned().collect());
            }
        }
        let value = json!({
            "kind": WHAT, "groups": [&plan.new_side, &plan.old_side], "leader": leader, "drops": &drops,
        });
        self.start_net(st, true, &drops, None, value).await?;
        // Asked of the leader it cut off, only: the other side elects a leader of its own meanwhile, and the
        // change asked there would be another fault. The nodes it removes keep running: they are the old
        // configuration's majority.
        self.change_via(st, "split", plan.add, plan.remove, Some(leader))
            .await;
        Ok(())
    }

    /// Back to the initial members: every initial node not known to be a member (or in doubt) joins, every
    /// spare that is or may be a member leaves and, once acknowledged, is retired.
    pub(super) async fn member_restore(&self, st: &mut State) -> Result<(), NemesisError> {
        let now = self.members_now(st);
        let doubt = st.members.doubt.clone();
        let add: Vec<String> = self
            .initial
            .iter()
            .filter(|n| !now.contains(*n) || doubt.contains(*n))
            .cloned()
            .collect();
        let remove: Vec<String> = self
            .spares
            .iter()
            .filter(|s| now.contains(*s) || doubt.contains(*s))
            .cloned()
            .collect();
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        // A node down by a kill rejoins as itself: restart it (recorded), never start it as a new member.
        let killed: Vec<String> = add.iter().filter(|n| st.killed.contains(*n)).cloned().collect();
        for node in killed {
            self.restart(st, &node).await?;
        }
        // A leader change during the request fails it: try again a little later, up to three times.
        for attempt in 0..RESTORE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if self.change(st, "restore", add.clone(), remove.clone()).await {
                return self.retire(st, &remove).await;
            }
        }
        Ok(())
    }
}
