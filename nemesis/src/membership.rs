//! Membership faults, the pure part: how many spare nodes a cluster needs, which changes the schedule draws,
//! and how the composite `member-split` fault divides the nodes. No cluster, no I/O (the runner applies them).
//!
//! The faults (see `docs/nemesis.md`, "Membership"):
//! - `member-remove`: one member leaves; once the system acknowledged it, it is stopped and its data wiped.
//! - `member-grow`: one or two fresh nodes (spares) join.
//! - `member-replace`: one or two members leave and as many fresh nodes join, in one request where the
//!   system takes several changes at once.
//! - `member-split`: the composite fault for membership changes without joint consensus. The leader L and as
//!   many fresh nodes as a majority needs besides L are cut from the other members, both ways, and then a
//!   single request replaces that many other members by the fresh nodes. A system that switches to the new
//!   configuration in one step lets L's side commit with a majority of the new configuration while the other
//!   side still holds a majority of the old one: two majorities, two leaders, two histories. With joint
//!   consensus (or one change at a time) L's side never has a majority of the old configuration, so only
//!   the other side goes on.
//!
//! Each of them is ended by `member-restore`, which brings the membership back to the initial nodes.

use crate::rng::Rng;
use std::collections::BTreeSet;

/// The spare nodes a cluster of `nodes` members needs for every membership fault: `member-split` adds
/// `nodes / 2` at once, `member-grow` and `member-replace` at most two.
pub fn spare_count(nodes: usize) -> usize {
    (nodes / 2).max(1)
}

/// A membership change the schedule draws (the runner picks the spares when it applies it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Drawn {
    Remove(Vec<String>),
    Grow(usize),
    Replace(Vec<String>),
}

/// Draws one of remove, grow and replace. `healthy`: the members neither down nor removed; `members`: how
/// many members there are now; `room`: whether one more node may be taken out (the schedule counts removed
/// nodes as down); `spares`: the cluster's spare nodes.
pub(crate) fn draw(rng: &mut Rng, healthy: &[String], members: usize, room: bool, spares: usize) -> Drawn {
    let can_remove = room && members > 3 && !healthy.is_empty();
    let mut kinds = vec![0u8];
    if can_remove {
        kinds.push(1);
    }
    if can_remove && spares > 0 {
        kinds.push(2);
    }
    let most = spares.clamp(1, 2);
    match *rng.pick(&kinds) {
        1 => Drawn::Remove(vec![rng.pick(healthy).clone()]),
        2 => {
            let k = (rng.range(1, most as u64) as usize).min(healthy.len());
            let mut pool = healthy.to_vec();
            rng.shuffle(&mut pool);
            pool.truncate(k);
            pool.sort();
            Drawn::Replace(pool)
        }
        _ => Drawn::Grow(rng.range(1, most as u64) as usize),
    }
}

/// How `member-split` divides a cluster: who is cut from whom and which change is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitPlan {
    /// The leader and the fresh nodes: a majority of the new configuration, a minority of the old.
    pub new_side: Vec<String>,
    /// Every other member: a majority of the old configuration.
    pub old_side: Vec<String>,
    /// Members of the old side that the change removes.
    pub remove: Vec<String>,
    /// Fresh nodes the change adds (on the new side).
    pub add: Vec<String>,
    /// The configuration the change leads to.
    pub target: Vec<String>,
}

/// Plans `member-split` for `members` led by `leader`, with `free` spares to draw the fresh nodes from.
/// `None` when there are too few members (3 at least) or spares.
pub fn plan_split(members: &[String], leader: &str, free: &[String], seed: u64) -> Option<SplitPlan> {
    let n = members.len();
    let majority = n / 2 + 1;
    let r = majority - 1;
    if n < 3 || free.len() < r || !members.iter().any(|m| m == leader) {
        return None;
    }
    let mut rng = Rng::new(seed);
    let old_side: Vec<String> = members.iter().filter(|m| *m != leader).cloned().collect();
    let mut pool = old_side.clone();
    rng.shuffle(&mut pool);
    let mut remove: Vec<String> = pool.into_iter().take(r).collect();
    remove.sort();
    let add: Vec<String> = free.iter().take(r).cloned().collect();
    let mut new_side = vec![leader.to_string()];
    new_side.extend(add.iter().cloned());
    let mut target: BTreeSet<String> = members.iter().cloned().collect();
    for x in &remove {
        target.remove(x);
    }
    target.extend(add.iter().cloned());
    Some(SplitPlan {
        new_side,
        old_side,
        remove,
        add,
        target: target.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: std::ops::RangeInclusive<usize>) -> Vec<String> {
        r.map(|i| format!("n{i}")).collect()
    }

    /// Whether `side` holds a majority of `config`.
    fn majority_of(side: &[String], config: &[String]) -> bool {
        config.iter().filter(|c| side.contains(c)).count() > config.len() / 2
    }

    #[test]
    fn split_gives_each_side_a_majority_of_one_configuration_and_never_of_both() {
        for n in 3..=9 {
            let members = ids(1..=n);
            let spares = ids(n + 1..=n + spare_count(n));
            for seed in 0..50 {
                for leader in &members {
                    let p = plan_split(&members, leader, &spares, seed).unwrap();
                    assert!(majority_of(&p.new_side, &p.target), "{n} {p:?}");
                    assert!(!majority_of(&p.new_side, &members), "{n} {p:?}");
                    assert!(majority_of(&p.old_side, &members), "{n} {p:?}");
                    assert!(!majority_of(&p.old_side, &p.target), "{n} {p:?}");
                    assert!(p.new_side.contains(leader) && !p.remove.contains(leader));
                    assert!(p.remove.iter().all(|r| p.old_side.contains(r)));
                    assert_eq!(p.target.len(), n, "a replacement keeps the size");
                    assert_eq!(p.add.len(), p.remove.len());
                }
            }
        }
        assert!(
            plan_split(&ids(1..=5), "n1", &ids(6..=6), 1).is_none(),
            "too few spares"
        );
        assert!(plan_split(&ids(1..=2), "n1", &ids(3..=5), 1).is_none());
        assert!(plan_split(&ids(1..=5), "n9", &ids(6..=7), 1).is_none());
    }

    /// Over many seeds and sizes, from the schedule's steps alone: one membership fault at a time, each
    /// restored before the next and before the end; removed nodes are never killed or paused while out;
    /// member-split never starts over a partition or with a node down, is restored only after its cut, and
    /// is the first step of every schedule that may draw it (coverage).
    #[test]
    fn schedules_restore_every_change_and_never_fault_a_removed_node() {
        use crate::schedule::{Action, FaultSet, Schedule, ScheduleOptions};
        use std::time::Duration;
        let opts = ScheduleOptions::new(Duration::from_secs(60));
        let mut kinds = BTreeSet::new();
        let (mut first_split, mut runs) = (0, 0);
        for faults in [
            "member",
            "member,kill,pause",
            "member,partition,kill",
            "member-split",
        ] {
            let f = FaultSet::parse(faults).unwrap();
            for n in [3, 5, 7] {
                for seed in 0..100 {
                    let s = Schedule::generate(seed, &ids(1..=n), &f, &opts).unwrap();
                    let (mut member, mut split, mut partition) = (false, false, false);
                    let mut out: BTreeSet<String> = BTreeSet::new();
                    let mut down = 0usize;
                    for step in &s.steps {
                        let name = serde_json::to_value(&step.action).unwrap()["action"].clone();
                        kinds.insert(name.as_str().unwrap().to_string());
                        match &step.action {
                            Action::MemberRemove { nodes } | Action::MemberReplace { remove: nodes } => {
                                assert!(!member, "{faults} {seed}: two at once: {s:?}");
                                assert!(n - nodes.len() >= 3, "{faults} {seed}: {s:?}");
                                member = true;
                                out.extend(nodes.iter().cloned());
                            }
                            Action::MemberGrow { count } => {
                                assert!(!member && *count <= spare_count(n));
                                member = true;
                            }
                            Action::MemberSplit { .. } => {
                                assert!(!member && !partition && down == 0, "{faults} {seed}: {s:?}");
                                member = true;
                                split = true;
                                partition = true;
                            }
                            Action::MemberRestore => {
                                assert!(member && !(split && partition), "{faults} {seed}: {s:?}");
                                member = false;
                                split = false;
                                out.clear();
                            }
                            Action::Kill { node }
                            | Action::KillLeader { node }
                            | Action::Pause { node }
                            | Action::PauseLeader { node } => {
                                assert!(!out.contains(node), "{faults} {seed}: {node} is out: {s:?}");
                                down += 1;
                            }
                            Action::Restart { .. } | Action::Resume { .. } => down -= 1,
                            Action::StartPartition { .. } | Action::IsolateLeader | Action::ZombieLeader => {
                                partition = true
                            }
                            Action::StopPartition => partition = false,
                            _ => {}
                        }
                    }
                    assert!(!member && !partition, "{faults} {seed}: left in force: {s:?}");
                    if f.member_split() {
                        runs += 1;
                        first_split += matches!(
                            s.steps.first().map(|st| &st.action),
                            Some(Action::MemberSplit { .. })
                        ) as usize;
                    }
                }
            }
        }
        for want in [
            "member-remove",
            "member-grow",
            "member-replace",
            "member-split",
            "member-restore",
        ] {
            assert!(kinds.contains(want), "{want} never drawn: {kinds:?}");
        }
        // Coverage: every run that may draw a member-split starts with one (a first kill, pause or cut
        // used to keep it out of some runs altogether).
        assert_eq!(first_split, runs, "runs starting with member-split");
        assert_eq!(runs, 2 * 3 * 100);
        assert!(!FaultSet::parse("member").unwrap().member_split());
        assert!(FaultSet::parse("member,halves").unwrap().member_split());
    }

    #[test]
    fn draws_stay_within_the_spares_and_keep_three_members() {
        let mut rng = Rng::new(3);
        let mut seen = BTreeSet::new();
        for _ in 0..500 {
            match draw(&mut rng, &ids(1..=5), 5, true, 2) {
                Drawn::Remove(v) => {
                    assert_eq!(v.len(), 1);
                    seen.insert("remove");
                }
                Drawn::Grow(k) => {
                    assert!((1..=2).contains(&k));
                    seen.insert("grow");
                }
                Drawn::Replace(v) => {
                    assert!((1..=2).contains(&v.len()));
                    seen.insert("replace");
                }
            }
            assert!(matches!(draw(&mut rng, &ids(1..=3), 3, true, 1), Drawn::Grow(1)));
            assert!(matches!(draw(&mut rng, &ids(1..=5), 5, false, 2), Drawn::Grow(_)));
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
    }
}
