//! Partition shapes and the "drops" they produce: for each node, the set of nodes whose packets it drops.
//! Pure: no cluster, no iptables; `firewall` turns drops into rules.

use crate::rng::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Which node drops packets from which: `drops[dst]` is the set of nodes whose packets `dst` discards.
pub type Drops = BTreeMap<String, BTreeSet<String>>;

/// The shapes of network partition the nemesis knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// One node cut off from all others, both ways.
    Isolate,
    /// The current leader (found through the spec's status probe when the fault starts) cut off, both ways.
    IsolateLeader,
    /// Two random halves (the smaller first) cut off from each other, both ways.
    Halves,
    /// Every node sees a majority (itself and its ring neighbours) and no two nodes see the same majority.
    MajorityRing,
    /// Two halves that cannot talk, joined by one node that sees both.
    Bridge,
    /// Packets from one random group of nodes to the others are dropped; the other direction still flows.
    OneWay,
    /// A "zombie leader": the leader L1 is paused (SIGSTOP) and cut off from the node L2 that the others
    /// elect meanwhile, both ways, then resumed: L1 still reaches the other nodes but never hears of L2's
    /// term. Not one of [`Shape::ALL`]: the schedule draws it when `pause` and a partition kind are chosen,
    /// or when `zombie-leader` is named. See `docs/nemesis.md`.
    ZombieLeader,
}

impl Shape {
    /// Every shape, in a fixed order.
    pub const ALL: [Shape; 6] = [
        Shape::Isolate,
        Shape::IsolateLeader,
        Shape::Halves,
        Shape::MajorityRing,
        Shape::Bridge,
        Shape::OneWay,
    ];

    /// The shape's name in `--nemesis` and in history events.
    pub const fn name(self) -> &'static str {
        match self {
            Shape::Isolate => "isolate",
            Shape::IsolateLeader => "isolate-leader",
            Shape::Halves => "halves",
            Shape::MajorityRing => "majority-ring",
            Shape::Bridge => "bridge",
            Shape::OneWay => "one-way",
            Shape::ZombieLeader => "zombie-leader",
        }
    }

    /// The least number of nodes for which the shape cuts anything meaningful.
    pub fn min_nodes(self) -> usize {
        match self {
            Shape::MajorityRing | Shape::Bridge | Shape::ZombieLeader => 3,
            _ => 2,
        }
    }
}

/// A concrete partition: its shape, the groups it describes, and exactly which packets are dropped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Partition {
    pub kind: Shape,
    /// The groups of the shape: the sides of a cut, each node's view of a majority ring, the two halves
    /// sharing the bridge node, or `[from, to]` of a one-way partition.
    pub groups: Vec<Vec<String>>,
    /// The leader that was isolated (isolate-leader), or the old leader L1 (zombie-leader).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Zombie-leader only: the node L2 that took the lead while L1 was paused (absent in the hold stage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_leader: Option<String>,
    /// Zombie-leader only: `hold` (L1 hears no node while the others elect L2) or `cut` (L1 and L2 cut
    /// from each other, both ways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'static str>,
    /// `drops[dst]`: the nodes whose packets `dst` discards.
    pub drops: Drops,
}

impl Partition {
    /// A partition of `shape` over `nodes`, drawn with `seed` (for isolate-leader, a random node stands in for
    /// the leader).
    pub fn random(shape: Shape, nodes: &[String], seed: u64) -> Partition {
        plan(shape, nodes, &mut Rng::new(seed))
    }

    /// The history value: `{"kind":..., "groups":..., "drops":...}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Every node of `nodes` drops (a share of, for loss) the packets of every other.
pub(crate) fn every_link(nodes: &[String]) -> Drops {
    let mut drops = Drops::new();
    for a in nodes {
        drops.insert(a.clone(), nodes.iter().filter(|b| *b != a).cloned().collect());
    }
    drops
}

/// Every node in a different group drops every other group's packets.
pub(crate) fn cut(groups: &[Vec<String>]) -> Drops {
    let mut drops = Drops::new();
    for (i, g) in groups.iter().enumerate() {
        for dst in g {
            let entry = drops.entry(dst.clone()).or_default();
            for (j, other) in groups.iter().enumerate() {
                if i != j {
                    entry.extend(other.iter().filter(|n| !g.contains(n)).cloned());
                }
            }
        }
    }
    drops.retain(|_, s| !s.is_empty());
    drops
}

/// Cuts `node` off from every other node.
pub fn isolate(kind: Shape, node: &str, nodes: &[String]) -> Partition {
    let rest: Vec<String> = nodes.iter().filter(|n| *n != node).cloned().collect();
    let groups = vec![vec![node.to_string()], rest];
    Partition {
        kind,
        drops: cut(&groups),
        groups,
        leader: (kind == Shape::IsolateLeader).then(|| node.to_string()),
        new_leader: None,
        stage: None,
    }
}

/// Zombie-leader, first stage: `leader` drops the packets of every other node (one way: what it sent still
/// arrives), so that nothing of a newer term reaches it, not even into its sockets' buffers, while it is
/// paused and the others elect a new leader.
pub(crate) fn zombie_hold(leader: &str, nodes: &[String]) -> Partition {
    let rest: Vec<String> = nodes.iter().filter(|n| *n != leader).cloned().collect();
    let mut drops = Drops::new();
    if !rest.is_empty() {
        drops.insert(leader.to_string(), rest.iter().cloned().collect());
    }
    Partition {
        kind: Shape::ZombieLeader,
        groups: vec![vec![leader.to_string()], rest],
        leader: Some(leader.to_string()),
        new_leader: None,
        stage: Some("hold"),
        drops,
    }
}

/// Zombie-leader, second stage: the old leader `leader` and the new one `new_leader` cut from each other,
/// both ways; every other pair still talks.
pub(crate) fn zombie_cut(leader: &str, new_leader: &str) -> Partition {
    let groups = vec![vec![leader.to_string()], vec![new_leader.to_string()]];
    Partition {
        kind: Shape::ZombieLeader,
        drops: cut(&groups),
        groups,
        leader: Some(leader.to_string()),
        new_leader: Some(new_leader.to_string()),
        stage: Some("cut"),
    }
}

/// Plans a partition of `shape` over `nodes` (not isolate-leader, which needs the leader at run time).
pub(crate) fn plan(shape: Shape, nodes: &[String], rng: &mut Rng) -> Partition {
    let mut order = nodes.to_vec();
    rng.shuffle(&mut order);
    let n = order.len();
    match shape {
        Shape::Isolate | Shape::IsolateLeader => isolate(shape, &order[0], nodes),
        // Random stand-ins for the two leaders (the runner finds the real ones at run time).
        Shape::ZombieLeader if n >= 2 => zombie_cut(&order[0], &order[1]),
        Shape::ZombieLeader => isolate(Shape::Isolate, &order[0], nodes),
        Shape::Halves => {
            let (a, b) = order.split_at(n / 2);
            let groups = vec![sorted(a), sorted(b)];
            Partition {
                kind: shape,
                drops: cut(&groups),
                groups,
                leader: None,
                new_leader: None,
                stage: None,
            }
        }
        Shape::MajorityRing => majority_ring(&order),
        Shape::Bridge => {
            let mid = n / 2;
            let left = sorted(&order[..=mid]);
            let right = sorted(&order[mid..]);
            let mut drops = Drops::new();
            for a in &order[..mid] {
                for b in &order[mid + 1..] {
                    drops.entry(a.clone()).or_default().insert(b.clone());
                    drops.entry(b.clone()).or_default().insert(a.clone());
                }
            }
            Partition {
                kind: shape,
                groups: vec![left, right],
                drops,
                leader: None,
                new_leader: None,
                stage: None,
            }
        }
        Shape::OneWay => {
            let k = 1 + rng.below(n.saturating_sub(1).max(1));
            let (from, to) = order.split_at(k.min(n));
            let mut drops = Drops::new();
            for dst in to {
                drops.insert(dst.clone(), from.iter().cloned().collect());
            }
            Partition {
                kind: shape,
                groups: vec![sorted(from), sorted(to)],
                drops,
                leader: None,
                new_leader: None,
                stage: None,
            }
        }
    }
}

/// Node `i` of the ring sees the `n/2 + 1` nodes starting `(m-1)/2` before it; it drops all others.
fn majority_ring(ring: &[String]) -> Partition {
    let n = ring.len();
    let m = n / 2 + 1;
    let back = (m - 1) / 2;
    let mut groups = Vec::with_capacity(n);
    let mut drops = Drops::new();
    for i in 0..n {
        let view: BTreeSet<String> = (0..m).map(|k| ring[(i + n - back + k) % n].clone()).collect();
        let dropped: BTreeSet<String> = ring.iter().filter(|x| !view.contains(*x)).cloned().collect();
        if !dropped.is_empty() {
            drops.insert(ring[i].clone(), dropped);
        }
        groups.push(view.into_iter().collect());
    }
    Partition {
        kind: Shape::MajorityRing,
        groups,
        drops,
        leader: None,
        new_leader: None,
        stage: None,
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn sees(p: &Partition, dst: &str, src: &str) -> bool {
        !p.drops.get(dst).is_some_and(|s| s.contains(src))
    }

    #[test]
    fn isolate_cuts_one_node_both_ways_and_nothing_else() {
        let p = isolate(Shape::Isolate, "n2", &nodes(5));
        for other in ["n1", "n3", "n4", "n5"] {
            assert!(!sees(&p, "n2", other) && !sees(&p, other, "n2"));
            for o2 in ["n1", "n3", "n4", "n5"] {
                assert!(sees(&p, other, o2));
            }
        }
    }

    #[test]
    fn majority_ring_every_node_sees_a_distinct_majority() {
        for n in 3..=7 {
            let mut rng = Rng::new(n as u64);
            let p = plan(Shape::MajorityRing, &nodes(n), &mut rng);
            let views: BTreeSet<Vec<String>> = p.groups.iter().cloned().collect();
            assert_eq!(views.len(), n, "views not distinct for {n}: {:?}", p.groups);
            for dst in nodes(n) {
                let seen = nodes(n).iter().filter(|src| sees(&p, &dst, src)).count();
                assert!(seen > n / 2, "{dst} sees only {seen} of {n}");
                assert!(seen < n, "{dst} sees everyone");
            }
        }
    }

    #[test]
    fn bridge_joins_two_halves_through_one_node() {
        let mut rng = Rng::new(3);
        let p = plan(Shape::Bridge, &nodes(5), &mut rng);
        let [left, right] = [&p.groups[0], &p.groups[1]];
        let bridge: Vec<&String> = left.iter().filter(|n| right.contains(n)).collect();
        assert_eq!(bridge.len(), 1);
        assert!(!p.drops.contains_key(bridge[0]));
        for a in left.iter().filter(|n| *n != bridge[0]) {
            for b in right.iter().filter(|n| *n != bridge[0]) {
                assert!(!sees(&p, a, b) && !sees(&p, b, a));
            }
            assert!(sees(&p, a, bridge[0]) && sees(&p, bridge[0], a));
        }
    }

    #[test]
    fn one_way_drops_only_one_direction() {
        let mut rng = Rng::new(9);
        let p = plan(Shape::OneWay, &nodes(4), &mut rng);
        let (from, to) = (&p.groups[0], &p.groups[1]);
        assert!(!from.is_empty() && !to.is_empty());
        for a in from {
            for b in to {
                assert!(!sees(&p, b, a) && sees(&p, a, b));
            }
        }
    }

    #[test]
    fn halves_are_two_sides_cut_both_ways() {
        let mut rng = Rng::new(5);
        let p = plan(Shape::Halves, &nodes(5), &mut rng);
        assert_eq!((p.groups[0].len(), p.groups[1].len()), (2, 3));
        for a in &p.groups[0] {
            for b in &p.groups[1] {
                assert!(!sees(&p, a, b) && !sees(&p, b, a));
            }
        }
    }
}
