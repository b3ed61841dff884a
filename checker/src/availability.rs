//! Availability: how long the system served nothing, and how fast it recovered after each heal.
//!
//! From the history alone (no clocks other than the events' `time`):
//! - the longest window with no `ok` completion, from the first event to the last;
//! - for each **heal**, the time from the heal to the first `ok` completion of an operation *invoked at or
//!   after* the heal (an operation invoked before it may have been served by the old, faulty state).
//!
//! A heal is a nemesis event (process `nemesis`, any type but `invoke`: Jepsen records a nemesis action as
//! an invoke and then an info, faultline as one info) whose `f` starts with `stop-` (faultline's
//! `stop-partition`, `stop-loss`, ...) or is one of `stop`, `heal`, `resume`, `restart`, `recover`
//! (Jepsen's partitioner stops with `:stop`, and kill/pause nemeses end with `:start`... `:resume`,
//! `:restart` or `:recover`).
//!
//! The verdict is invalid when the recovery after the *final* heal exceeds the limit, or no operation
//! succeeds after it before the history ends: that is how a system that livelocks after faults (e.g.
//! elections that never settle) is caught. A history with no heal is valid. This checker does not judge
//! whether results are correct: that is the linearizability checker's job.
//!
//! With the cluster's size ([`check_cluster`]) it also looks for **stalls**: a gap between two `ok`
//! completions in which, adding up the stretches between nemesis events where a live and connected majority
//! existed, that majority existed for longer than the limit. A majority is live and connected when that many
//! nodes are neither killed nor paused and no partition in force (its `drops`) cuts any two of them from
//! each other in either direction; any other network fault in force (`start-loss`, `start-delay`, a
//! partition whose cut the event does not give, ... until its `stop-`) counts as leaving no such majority.
//! The majority is of the **current membership**: `nodes` nodes until the first membership event, then the
//! `members` of the last `member-ok`; from a `member-request` until its `member-ok`, and after a
//! `member-fail` (the change may or may not take effect), a majority of both its `members` and its `target`.
//! A correct system serves within a few election timeouts whenever such a majority exists, so any stall
//! makes the run invalid. This catches a livelock in the middle of a run, where the next fault usually
//! changes the cluster before the final heal (e.g. identical election timeouts that split the vote after
//! each leader loss until some fault happens to break the symmetry).

use std::time::Duration;

use std::collections::BTreeSet;

use crate::history::{EventType, History, Outcome, Process};
use crate::result::{AvailabilityResult, Recovery, Stall, Verdict};

/// Whether a nemesis `f` ends a fault (see the module docs).
pub fn is_heal(f: &str) -> bool {
    f.starts_with("stop-") || matches!(f, "stop" | "heal" | "resume" | "restart" | "recover")
}

/// Checks availability; `recovery_limit` bounds the recovery after the final heal. Stalls are not judged
/// (the cluster's size is unknown): see [`check_cluster`].
pub fn check(history: &History, recovery_limit: Duration) -> AvailabilityResult {
    check_inner(history, recovery_limit, None)
}

/// Like [`check`], and also fails the run on a stall (see the module docs) of a cluster of `nodes` nodes.
pub fn check_cluster(history: &History, recovery_limit: Duration, nodes: usize) -> AvailabilityResult {
    check_inner(history, recovery_limit, Some(nodes))
}

fn check_inner(history: &History, recovery_limit: Duration, nodes: Option<usize>) -> AvailabilityResult {
    let limit_ns = u64::try_from(recovery_limit.as_nanos()).unwrap_or(u64::MAX);
    let ops = history.operations_lenient();

    // Longest window without an ok completion, between the first and last event.
    let start = history.events.iter().map(|e| e.time).min().unwrap_or(0);
    let end = history.events.iter().map(|e| e.time).max().unwrap_or(0);
    let mut oks: Vec<u64> = ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok)
        .filter_map(|o| o.ret)
        .collect();
    oks.sort_unstable();
    let (mut longest_gap_ns, mut longest_gap_start) = (0u64, start);
    let mut prev = start;
    for &t in oks.iter().chain(std::iter::once(&end)) {
        let t = t.clamp(start, end);
        if t.saturating_sub(prev) > longest_gap_ns {
            longest_gap_ns = t - prev;
            longest_gap_start = prev;
        }
        prev = prev.max(t);
    }

    // For each heal: the first ok return among operations invoked at or after it. Sort ok ops by call time
    // and keep, from each position on, the earliest return (a suffix minimum), then binary-search.
    let mut by_call: Vec<(u64, u64)> = ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok)
        .filter_map(|o| o.ret.map(|r| (o.call, r)))
        .collect();
    by_call.sort_unstable();
    let mut first_ret_from = vec![u64::MAX; by_call.len() + 1];
    for i in (0..by_call.len()).rev() {
        first_ret_from[i] = first_ret_from[i + 1].min(by_call[i].1);
    }
    let recoveries: Vec<Recovery> = history
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.kind != EventType::Invoke && is_heal(&e.f))
        .map(|e| {
            let from = by_call.partition_point(|&(call, _)| call < e.time);
            let first = first_ret_from[from];
            Recovery {
                heal_time: e.time,
                f: e.f.clone(),
                recovery_ns: (first != u64::MAX).then(|| first.saturating_sub(e.time)),
            }
        })
        .collect();

    let stalls = match nodes {
        Some(n) => stalls(history, n, start, end, &oks, limit_ns),
        None => Vec::new(),
    };

    let verdict = match recoveries.iter().max_by_key(|r| r.heal_time) {
        _ if !stalls.is_empty() => Verdict::Invalid,
        None => Verdict::Valid,
        Some(Recovery {
            recovery_ns: Some(ns),
            ..
        }) if *ns <= limit_ns => Verdict::Valid,
        Some(_) => Verdict::Invalid,
    };
    AvailabilityResult {
        verdict,
        longest_gap_ns,
        longest_gap_start,
        recoveries,
        recovery_limit_ns: limit_ns,
        stalls,
    }
}

/// The gaps between `ok` completions in which a live, connected majority of `nodes` existed for longer than
/// `limit_ns` in total.
fn stalls(history: &History, nodes: usize, start: u64, end: u64, oks: &[u64], limit_ns: u64) -> Vec<Stall> {
    // Stretches with a live, connected majority, from the nemesis events.
    let mut healthy: Vec<(u64, u64)> = Vec::new();
    let mut network: BTreeSet<&str> = BTreeSet::new();
    let mut cut: Option<Vec<(String, String)>> = None;
    let mut down: BTreeSet<&str> = BTreeSet::new();
    // The configurations a majority of each of which must be live (none: `nodes` unnamed nodes).
    let mut configs: Vec<BTreeSet<String>> = Vec::new();
    let majority = |down: &BTreeSet<&str>, cut: Option<&[(String, String)]>, configs: &[BTreeSet<String>]| {
        if configs.is_empty() {
            live_majority(nodes, down, cut)
        } else {
            live_joint_majority(configs, down, cut)
        }
    };
    let mut from = start;
    for e in history
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.kind != EventType::Invoke)
    {
        if network.is_empty() && majority(&down, cut.as_deref(), &configs) {
            healthy.push((from, e.time));
        }
        let node = e.value.get("node").and_then(|v| v.as_str());
        let list = |k: &str| -> Option<BTreeSet<String>> {
            let v = e.value.get(k)?.as_array()?;
            v.iter().map(|x| x.as_str().map(str::to_string)).collect()
        };
        match e.f.as_str() {
            "member-request" => configs = list("members").into_iter().chain(list("target")).collect(),
            "member-ok" => configs = list("members").into_iter().collect(),
            _ => {}
        }
        if e.f == "start-partition" {
            // A partition whose cut we can read leaves a majority connected or not; one we cannot counts as
            // breaking every link.
            match drops(&e.value) {
                Some(d) => cut = Some(d),
                None => {
                    network.insert("partition");
                }
            }
        } else if e.f == "stop-partition" {
            cut = None;
            network.remove("partition");
        } else if let Some(kind) = e.f.strip_prefix("start-") {
            network.insert(kind);
        } else if let Some(kind) = e.f.strip_prefix("stop-") {
            network.remove(kind);
        } else if matches!(e.f.as_str(), "kill" | "pause") {
            down.extend(node);
        } else if let (true, Some(n)) = (matches!(e.f.as_str(), "restart" | "resume"), node) {
            down.remove(n);
        }
        from = from.max(e.time);
    }
    if network.is_empty() && majority(&down, cut.as_deref(), &configs) {
        healthy.push((from, end));
    }
    let mut out = Vec::new();
    let mut prev = start;
    for &t in oks.iter().chain(std::iter::once(&end)) {
        let t = t.clamp(start, end);
        let live: u64 = healthy
            .iter()
            .map(|&(a, b)| b.min(t).saturating_sub(a.max(prev)))
            .sum();
        if live > limit_ns {
            out.push(Stall {
                start: prev,
                end: t,
                majority_ns: live,
            });
        }
        prev = prev.max(t);
    }
    out
}

/// A partition event's cut as (receiver, sender) pairs: `value.drops` maps each node to the nodes whose
/// packets it drops (docs/nemesis.md). `None` when the value does not say.
fn drops(value: &serde_json::Value) -> Option<Vec<(String, String)>> {
    let map = value.get("drops")?.as_object()?;
    let mut out = Vec::new();
    for (dst, srcs) in map {
        for src in srcs.as_array()? {
            out.push((dst.clone(), src.as_str()?.to_string()));
        }
    }
    Some(out)
}

/// Whether one set of nodes, up (neither killed nor paused) and connected both ways every two of them under
/// `cut`, holds a majority of every configuration in `configs` (one leader must reach all of them).
fn live_joint_majority(
    configs: &[BTreeSet<String>],
    down: &BTreeSet<&str>,
    cut: Option<&[(String, String)]>,
) -> bool {
    let all: BTreeSet<&str> = configs.iter().flatten().map(String::as_str).collect();
    let live: Vec<&str> = all.into_iter().filter(|n| !down.contains(n)).collect();
    if live.len() > 16 {
        return false; // more nodes than we search through: assume the worst
    }
    let cut = cut.unwrap_or(&[]);
    let linked = |a: &str, b: &str| !cut.iter().any(|(x, y)| (x == a && y == b) || (x == b && y == a));
    let found = cliques(&live, linked).any(|set| {
        configs
            .iter()
            .all(|c| set.iter().filter(|n| c.contains(**n)).count() > c.len() / 2)
    });
    found
}

/// Every set of `nodes` every two of which are `linked`, by brute force (clusters are small).
fn cliques<'a>(
    nodes: &'a [&'a str],
    linked: impl Fn(&str, &str) -> bool + 'a,
) -> impl Iterator<Item = Vec<&'a str>> + 'a {
    (0u32..1 << nodes.len())
        .map(move |mask| {
            (0..nodes.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| nodes[i])
                .collect::<Vec<&str>>()
        })
        .filter(move |members| {
            members
                .iter()
                .enumerate()
                .all(|(i, a)| members[i + 1..].iter().all(|b| linked(a, b)))
        })
}

/// The size of the largest set of `nodes` every two of which are `linked`.
fn largest_clique(nodes: &[&str], linked: impl Fn(&str, &str) -> bool) -> usize {
    let largest = cliques(nodes, linked).map(|c| c.len()).max().unwrap_or(0);
    largest
}

/// Whether a majority of the `nodes` nodes is up (neither killed nor paused) and connected both ways, every
/// two of them, under `cut`. Nodes the events never name are up and cut from nobody.
fn live_majority(nodes: usize, down: &BTreeSet<&str>, cut: Option<&[(String, String)]>) -> bool {
    let majority = nodes / 2 + 1;
    let Some(cut) = cut.filter(|c| !c.is_empty()) else {
        return nodes.saturating_sub(down.len()) >= majority;
    };
    let named: BTreeSet<&str> = cut
        .iter()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .chain(down.iter().copied())
        .collect();
    let unnamed = nodes.saturating_sub(named.len());
    let live: Vec<&str> = named.iter().copied().filter(|n| !down.contains(n)).collect();
    if live.len() > 16 {
        return false; // more named nodes than we search through: assume the worst
    }
    let linked = |a: &str, b: &str| !cut.iter().any(|(x, y)| (x == a && y == b) || (x == b && y == a));
    // The largest set of live named nodes connected every two.
    largest_clique(&live, linked) + unnamed >= majority
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType};
    use serde_json::Value;

    fn ev(time: u64, process: Process, kind: EventType, f: &str) -> Event {
        Event {
            index: 0,
            time,
            process,
            kind,
            f: f.into(),
            key: None,
            value: Value::Null,
            error: None,
        }
    }

    fn history(mut events: Vec<Event>) -> History {
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        History::new(events)
    }

    use EventType::{Fail, Info, Invoke, Ok};
    use Process::{Client as C, Nemesis as N};

    #[test]
    fn longest_gap_and_recovery_after_heal() {
        let h = history(vec![
            ev(0, C(0), Invoke, "read"),
            ev(10, C(0), Ok, "read"),
            ev(20, N, Info, "start-partition"),
            ev(25, C(1), Invoke, "write"),
            ev(60, C(1), Info, "write"),
            ev(100, N, Info, "stop-partition"),
            ev(105, C(0), Invoke, "read"),
            ev(130, C(0), Ok, "read"),
            ev(140, C(2), Invoke, "read"),
            ev(150, C(2), Fail, "read"),
        ]);
        let r = check(&h, Duration::from_nanos(50));
        assert_eq!((r.longest_gap_ns, r.longest_gap_start), (120, 10));
        assert_eq!(r.recoveries.len(), 1);
        assert_eq!(r.recoveries[0].recovery_ns, Some(30));
        assert_eq!(r.recoveries[0].f, "stop-partition");
        assert_eq!(r.verdict, Verdict::Valid);
        assert_eq!(r.recovery_limit_ns, 50);
        assert_eq!(check(&h, Duration::from_nanos(29)).verdict, Verdict::Invalid);
    }

    #[test]
    fn op_invoked_before_the_heal_does_not_count() {
        let h = history(vec![
            ev(0, C(0), Invoke, "read"),
            ev(10, N, Info, "resume"),
            ev(12, C(0), Ok, "read"),
            ev(20, C(1), Invoke, "read"),
            ev(40, C(1), Ok, "read"),
        ]);
        let r = check(&h, Duration::from_secs(1));
        assert_eq!(r.recoveries[0].recovery_ns, Some(30));
    }

    #[test]
    fn no_ok_after_final_heal_is_invalid() {
        let h = history(vec![
            ev(0, C(0), Invoke, "read"),
            ev(10, C(0), Ok, "read"),
            ev(20, N, Info, "stop-partition"),
            ev(30, C(0), Invoke, "read"),
            ev(40, C(0), Info, "read"),
            ev(50, N, Invoke, "heal"),
        ]);
        let r = check(&h, Duration::from_secs(10));
        // The nemesis invoke is not a heal: only its completion would be.
        assert_eq!(r.recoveries.len(), 1);
        assert_eq!(r.recoveries[0].recovery_ns, None);
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!((r.longest_gap_ns, r.longest_gap_start), (40, 10));
    }

    #[test]
    fn earlier_slow_recovery_does_not_fail_the_run() {
        let h = history(vec![
            ev(0, N, Info, "stop-loss"),
            ev(1, C(0), Invoke, "read"),
            ev(1000, C(0), Ok, "read"),
            ev(1001, N, Info, "restart"),
            ev(1002, C(0), Invoke, "read"),
            ev(1005, C(0), Ok, "read"),
        ]);
        let r = check(&h, Duration::from_nanos(10));
        assert_eq!(
            r.recoveries.iter().map(|r| r.recovery_ns).collect::<Vec<_>>(),
            [Some(1000), Some(4)]
        );
        assert_eq!(r.verdict, Verdict::Valid);
    }

    #[test]
    fn empty_and_heal_free_histories_are_valid() {
        let r = check(&History::default(), Duration::from_secs(1));
        assert_eq!(
            (r.verdict, r.longest_gap_ns, r.recoveries.len()),
            (Verdict::Valid, 0, 0)
        );
        let h = history(vec![
            ev(5, C(0), Invoke, "read"),
            ev(9, N, Info, "start-partition"),
        ]);
        let r = check(&h, Duration::from_secs(1));
        assert_eq!(
            (r.verdict, r.longest_gap_ns, r.longest_gap_start),
            (Verdict::Valid, 4, 5)
        );
    }

    fn nem(time: u64, f: &str, node: &str) -> Event {
        let mut e = ev(time, N, Info, f);
        e.value = serde_json::json!({ "node": node });
        e
    }

    #[test]
    fn a_stall_with_a_live_majority_fails_the_run_only_when_the_cluster_size_is_known() {
        // The leader is killed at 100; nothing succeeds until 390; it restarts at 400 and the final heal
        // recovers at once. With 5 nodes, four are up and connected from 100 to 390: a stall.
        let h = history(vec![
            ev(0, C(0), Invoke, "read"),
            ev(10, C(0), Ok, "read"),
            nem(100, "kill", "n1"),
            ev(110, C(0), Invoke, "read"),
            ev(120, C(0), Fail, "read"),
            ev(130, C(0), Invoke, "write"),
            ev(390, C(0), Ok, "write"),
            nem(400, "restart", "n1"),
            ev(401, C(0), Invoke, "read"),
            ev(402, C(0), Ok, "read"),
        ]);
        let limit = Duration::from_nanos(250);
        assert_eq!(check(&h, limit).verdict, Verdict::Valid);
        let r = check_cluster(&h, limit, 5);
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(
            r.stalls,
            [Stall {
                start: 10,
                end: 390,
                majority_ns: 380
            }]
        );
        // With 2 nodes, one killed leaves no majority: from 100 on, serving nothing is allowed.
        assert_eq!(check_cluster(&h, limit, 2).verdict, Verdict::Valid);
        // A partition in force from 90 to 300 leaves 10..90 and 300..390 with a majority: 170 in all.
        let mut events = h.events.clone();
        events.insert(2, ev(90, N, Info, "start-partition"));
        events.insert(7, ev(300, N, Info, "stop-partition"));
        let r = check_cluster(&history(events), limit, 5);
        assert_eq!((r.verdict, r.stalls.len()), (Verdict::Valid, 0));
        assert_eq!(
            check_cluster(&h, Duration::from_nanos(380), 5).verdict,
            Verdict::Valid
        );
        // A partition that gives its cut: isolating n1, which is dead anyway, leaves n2..n5 connected (still
        // a stall); a majority ring of 5 (each node cut from two) leaves no 3 connected every two (none).
        let with_cut = |drops: serde_json::Value| {
            let mut events = h.events.clone();
            let mut start = ev(90, N, Info, "start-partition");
            start.value = serde_json::json!({ "drops": drops });
            events.insert(2, start);
            events.insert(7, ev(395, N, Info, "stop-partition"));
            check_cluster(&history(events), limit, 5)
        };
        let isolate = serde_json::json!({"n1": ["n2", "n3", "n4", "n5"], "n2": ["n1"], "n3": ["n1"],
                                         "n4": ["n1"], "n5": ["n1"]});
        assert_eq!(with_cut(isolate).verdict, Verdict::Invalid);
        let ring = serde_json::json!({"n1": ["n3", "n4"], "n2": ["n4", "n5"], "n3": ["n5", "n1"],
                                      "n4": ["n1", "n2"], "n5": ["n2", "n3"]});
        assert_eq!(with_cut(ring).verdict, Verdict::Valid);
    }

    fn member(time: u64, f: &str, members: &[&str], target: &[&str]) -> Event {
        let mut e = ev(time, N, Info, f);
        e.value = serde_json::json!({ "members": members, "target": target });
        e
    }

    #[test]
    fn the_majority_is_of_the_current_membership() {
        // 3 nodes; n4 and n5 join at 50 (acknowledged at 60), then n1 and n2 are killed at 100. Nothing is
        // served from 10 to 390. Of the 3 initial nodes one would be up (no majority), but of the 5 members
        // three are: a majority all the way from 10 to 390.
        let base = |membership: Vec<Event>| {
            let mut events = vec![
                ev(0, C(0), Invoke, "read"),
                ev(10, C(0), Ok, "read"),
                nem(100, "kill", "n1"),
                nem(101, "kill", "n2"),
                ev(130, C(0), Invoke, "write"),
                ev(390, C(0), Ok, "write"),
            ];
            events.extend(membership);
            events.sort_by_key(|e| e.time);
            history(events)
        };
        let limit = Duration::from_nanos(250);
        assert_eq!(check_cluster(&base(vec![]), limit, 3).verdict, Verdict::Valid);
        let all = ["n1", "n2", "n3", "n4", "n5"];
        let grown = base(vec![
            member(50, "member-request", &["n1", "n2", "n3"], &all),
            member(60, "member-ok", &all, &[]),
        ]);
        let r = check_cluster(&grown, limit, 3);
        assert_eq!(r.verdict, Verdict::Invalid, "{r:?}");
        assert_eq!(r.stalls[0].majority_ns, 380, "{r:?}");
        // Until it is acknowledged (or when it failed), a majority of both configurations is needed: of
        // n1..n3 only n3 is up after 100, so nothing after 100 counts.
        let pending = base(vec![
            member(50, "member-request", &["n1", "n2", "n3"], &all),
            member(60, "member-fail", &["n1", "n2", "n3"], &all),
        ]);
        assert_eq!(check_cluster(&pending, limit, 3).verdict, Verdict::Valid);
        // A cut that leaves each configuration a majority on a different side is no majority at all: while
        // n1, n4, n5 (the target's majority) are cut from n2, n3 (with n1 the old one's), no one connected
        // set holds a majority of both, so only 10..55 counts.
        let target = ["n1", "n4", "n5"];
        let mut cut = ev(55, N, Info, "start-partition");
        cut.value = serde_json::json!({ "drops": {
            "n1": ["n2", "n3"], "n4": ["n2", "n3"], "n5": ["n2", "n3"],
            "n2": ["n1", "n4", "n5"], "n3": ["n1", "n4", "n5"] } });
        let h = base(vec![
            member(50, "member-request", &["n1", "n2", "n3"], &target),
            cut,
            member(60, "member-fail", &["n1", "n2", "n3"], &target),
        ]);
        let r = check_cluster(&h, Duration::from_nanos(40), 3);
        assert_eq!(r.stalls.first().map(|s| s.majority_ns), Some(45), "{r:?}");
        // A shrink to n1, n2: both killed, no majority.
        let shrunk = base(vec![
            member(50, "member-request", &["n1", "n2", "n3"], &["n1", "n2"]),
            member(60, "member-ok", &["n1", "n2"], &[]),
        ]);
        assert_eq!(check_cluster(&shrunk, limit, 3).verdict, Verdict::Valid);
    }

    #[test]
    fn heal_names() {
        for f in [
            "stop-partition",
            "stop-loss",
            "stop",
            "heal",
            "resume",
            "restart",
            "recover",
        ] {
            assert!(is_heal(f), "{f}");
        }
        for f in ["start-partition", "kill", "pause", "start", "stopper"] {
            assert!(!is_heal(f), "{f}");
        }
    }
}
