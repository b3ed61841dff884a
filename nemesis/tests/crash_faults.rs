//! The crash faults and the minority-leader composite against a real 5-node raftkv cluster in network
//! namespaces (netns backend, needs root; real SIGKILL, real restarts from the data directory, real iptables).
//! Each test applies one step and checks from outside what it did: which processes died and came back (their
//! PIDs), in what order, which nodes could reach which during a cut, and that one node leads afterwards.

mod common;

use common::raft::{RaftLab, TearDownOnPanic};
use common::{eventually, Events};
use nemesis::{Action, Cluster, FaultSet, Nemesis};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Starts the nodes, waits for a single leader, and makes the nemesis (its chain checked for `faults`).
async fn setup(raft: &Arc<RaftLab>, faults: &str) -> (Nemesis, Events, String) {
    raft.start_all();
    assert!(
        block(|| eventually(Duration::from_secs(30), || raft.settled())),
        "no single leader at the start"
    );
    let leader = block(|| raft.probe_leader()).unwrap();
    let events = Events::default();
    let cluster: Arc<dyn Cluster> = raft.clone();
    let nem = Nemesis::new(&raft.lab.run_id, cluster, Arc::new(events.clone()));
    nem.check(&FaultSet::parse(faults).unwrap()).await.unwrap();
    (nem, events, leader)
}

fn pids(raft: &RaftLab) -> BTreeMap<String, u32> {
    raft.procs
        .lock()
        .unwrap()
        .iter()
        .map(|(id, c)| (id.clone(), c.id()))
        .collect()
}

/// The events as (f, node) pairs.
fn steps(events: &Events) -> Vec<(String, String)> {
    events
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(f, v)| (f.clone(), v["node"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// After the step: every node runs again, one leads, and no rule of ours is left once healed.
async fn settles_and_heals(raft: &Arc<RaftLab>, nem: &Nemesis) {
    nem.heal().await.unwrap();
    block(|| {
        assert!(
            eventually(Duration::from_secs(30), || raft.settled()),
            "no single leader after the step: {:?}",
            raft.lab
                .ids()
                .iter()
                .map(|id| raft.status(id))
                .collect::<Vec<_>>()
        );
        for id in raft.lab.ids() {
            let listing = raft.lab.iptables_listing(&id);
            assert!(!listing.contains("FL-"), "rules left in {id}: {listing}");
        }
    });
}

/// Which nodes answer `/status` right now.
fn answering(raft: &RaftLab) -> Vec<String> {
    raft.lab
        .ids()
        .into_iter()
        .filter(|id| raft.status(id).is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_several_kills_the_nodes_at_once_and_restarts_them_together() {
    let raft = Arc::new(RaftLab::new("crash_kill_several", &[]));
    let _down = TearDownOnPanic(raft.clone());
    let (nem, events, _) = setup(&raft, "kill-several").await;
    let before = pids(&raft);
    let nem = Arc::new(nem);
    let step = tokio::spawn({
        let nem = nem.clone();
        async move {
            let nodes = vec!["n2".to_string(), "n4".to_string()];
            nem.apply(&Action::KillSeveral { nodes, down_ms: 3000 }).await
        }
    });
    // While the step holds: both are down at the same time, the three others answer.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let up = block(|| answering(&raft));
    assert_eq!(up, ["n1", "n3", "n5"], "during the kill");
    step.await.unwrap().unwrap();
    assert_eq!(
        steps(&events),
        [
            ("kill".into(), "n2".into()),
            ("kill".into(), "n4".into()),
            ("restart".into(), "n2".into()),
            ("restart".into(), "n4".into())
        ]
    );
    assert_eq!(events.last("kill").unwrap()["fault"], "kill-several");
    let after = pids(&raft);
    for id in raft.lab.ids() {
        let restarted = ["n2", "n4"].contains(&id.as_str());
        assert_eq!(
            before[&id] != after[&id],
            restarted,
            "{id}: {before:?} -> {after:?}"
        );
    }
    settles_and_heals(&raft, &nem).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_election_kills_the_leader_then_the_next_leader_as_it_takes_office() {
    let raft = Arc::new(RaftLab::new("crash_kill_election", &[]));
    let _down = TearDownOnPanic(raft.clone());
    let (nem, events, leader) = setup(&raft, "kill-election").await;
    let term_before = raft.term(&leader).unwrap();
    let before = pids(&raft);
    nem.apply(&Action::KillElection { down_ms: 1000 }).await.unwrap();
    let s = steps(&events);
    assert_eq!(s.len(), 4, "{s:?}");
    let (first, second) = (s[0].1.clone(), s[1].1.clone());
    assert_eq!(
        (s[0].0.as_str(), s[1].0.as_str(), s[2].0.as_str(), s[3].0.as_str()),
        ("kill", "kill", "restart", "restart"),
        "{s:?}"
    );
    assert_eq!(first, leader, "the leader dies first");
    assert_ne!(second, first);
    assert_eq!(
        (s[2].1.as_str(), s[3].1.as_str()),
        (first.as_str(), second.as_str())
    );
    let after = pids(&raft);
    for id in raft.lab.ids() {
        assert_eq!(before[&id] != after[&id], id == first || id == second, "{id}");
    }
    settles_and_heals(&raft, &nem).await;
    // Two elections at least: the second node's, and the one after it died too.
    let now = block(|| raft.probe_leader()).unwrap();
    let term = raft.term(&now).unwrap();
    assert!(term >= term_before + 2, "term {term_before} -> {term}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_majority_kills_and_restarts_three_nodes_one_after_another_leader_first() {
    let raft = Arc::new(RaftLab::new("crash_restart_majority", &[]));
    let _down = TearDownOnPanic(raft.clone());
    let (nem, events, leader) = setup(&raft, "restart-majority").await;
    let before = pids(&raft);
    // The schedule's list need not contain the leader: it then takes the last one's place and goes first.
    let mut nodes: Vec<String> = raft.lab.ids().into_iter().filter(|n| *n != leader).collect();
    nodes.truncate(3);
    let started = Instant::now();
    nem.apply(&Action::RestartMajority {
        nodes: nodes.clone(),
        down_ms: 100,
        gap_ms: 300,
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let s = steps(&events);
    let expect: Vec<(String, String)> = [leader.clone(), nodes[0].clone(), nodes[1].clone()]
        .iter()
        .flat_map(|n| {
            [
                ("kill".to_string(), n.clone()),
                ("restart".to_string(), n.clone()),
            ]
        })
        .collect();
    assert_eq!(s, expect);
    assert_eq!(events.0.lock().unwrap()[0].1["leader"], true);
    assert!(took >= Duration::from_millis(900), "{took:?}");
    let after = pids(&raft);
    let mut restarted: Vec<String> = raft
        .lab
        .ids()
        .into_iter()
        .filter(|id| before[id] != after[id])
        .collect();
    let mut want = vec![leader.clone(), nodes[0].clone(), nodes[1].clone()];
    restarted.sort();
    want.sort();
    assert_eq!(restarted, want, "{before:?} -> {after:?}");
    settles_and_heals(&raft, &nem).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_leader_cuts_the_leader_with_a_follower_then_kills_the_next_leader() {
    let raft = Arc::new(RaftLab::new("crash_minority_leader", &[]));
    let _down = TearDownOnPanic(raft.clone());
    let (nem, events, leader) = setup(&raft, "minority-leader").await;
    let term_before = raft.term(&leader).unwrap();
    let nem = Arc::new(nem);
    let step = tokio::spawn({
        let nem = nem.clone();
        async move {
            nem.apply(&Action::MinorityLeader {
                hold_ms: 8000,
                settle_ms: 1000,
                down_ms: 1000,
                pick: 7,
            })
            .await
        }
    });
    // During the hold: the minority {leader, follower} and the majority cannot reach each other either way,
    // and the majority elects a leader of its own at a newer term.
    let start = block(|| {
        assert!(eventually(Duration::from_secs(3), || events
            .last("start-partition")
            .is_some()));
        events.last("start-partition").unwrap()
    });
    assert_eq!(start["kind"], "minority-leader");
    assert_eq!(start["leader"], leader.as_str());
    let groups: Vec<Vec<String>> = serde_json::from_value(start["groups"].clone()).unwrap();
    assert_eq!((groups[0].len(), groups[1].len()), (2, 3), "{start}");
    assert_eq!(groups[0][0], leader);
    let (minority, majority) = (&groups[0], &groups[1]);
    // The hold counts from the majority's own leader: when the test first sees one (polled from the cut on,
    // alongside the checks below) and when the cut ends.
    let elected = std::thread::spawn({
        let (raft, majority) = (raft.clone(), majority.clone());
        move || {
            let newer = |id: &String| {
                raft.status(id)
                    .is_some_and(|s| s["role"] == "leader" && s["term"].as_u64() > Some(term_before))
            };
            let deadline = Instant::now() + Duration::from_secs(6);
            while Instant::now() < deadline {
                if majority.iter().any(newer) {
                    return Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            None
        }
    });
    let healed = std::thread::spawn({
        let events = events.clone();
        move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if events.last("stop-partition").is_some() {
                    return Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            None
        }
    });
    // The recorded drops are the full cut, both ways (what the availability checker reads).
    for (side, other) in [(minority, majority), (majority, minority)] {
        for n in side {
            // As sets: the drops are listed in id order, the groups leader first.
            let d: std::collections::BTreeSet<String> =
                serde_json::from_value(start["drops"][n].clone()).unwrap();
            assert_eq!(d, other.iter().cloned().collect(), "{n} drops: {start}");
        }
    }
    block(|| {
        // Every pair at once (a refused connection takes the probe's 3 s timeout), while the hold lasts.
        let pairs: Vec<(&String, &String)> = minority
            .iter()
            .flat_map(|a| majority.iter().flat_map(move |b| [(a, b), (b, a)]))
            .collect();
        let talk: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = pairs
                .iter()
                .map(|(a, b)| s.spawn(|| raft.connects(a, b)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for ((a, b), t) in pairs.iter().zip(talk) {
            assert!(!t, "{a} reaches {b} during the cut");
        }
        assert!(raft.connects(&minority[0], &minority[1]) && raft.connects(&majority[0], &majority[2]));
        let newer = eventually(Duration::from_secs(4), || {
            majority.iter().any(|id| {
                raft.status(id)
                    .is_some_and(|s| s["role"] == "leader" && s["term"].as_u64() > Some(term_before))
            })
        });
        assert!(newer, "the majority elected no leader of its own");
    });
    step.await.unwrap().unwrap();
    let (elected, healed) = (elected.join().unwrap(), healed.join().unwrap());
    let (elected, healed) = (
        elected.expect("no majority leader"),
        healed.expect("the cut never ended"),
    );
    // 8 s of hold after the election, less the polls' lag (under 0.1 s; counted from the cut, the hold
    // would end an election's time sooner: raftkv's election timeout is 0.5 s at least).
    assert!(
        healed.duration_since(elected) >= Duration::from_millis(7800),
        "the cut ended {:?} after the majority's leader showed up",
        healed.duration_since(elected)
    );
    let names = events.names();
    assert_eq!(
        names,
        ["start-partition", "stop-partition", "kill", "restart"],
        "{:?}",
        events.0
    );
    let killed = events.last("kill").unwrap();
    assert_eq!(
        (killed["leader"].as_bool(), killed["fault"].as_str()),
        (Some(true), Some("minority-leader"))
    );
    assert_eq!(
        events.last("stop-partition").unwrap(),
        start,
        "the stop names what it stops"
    );
    settles_and_heals(&raft, &nem).await;
    block(|| {
        for (a, b) in [(&minority[0], &majority[0]), (&majority[1], &minority[1])] {
            assert!(raft.connects(a, b), "{a} still cut from {b}");
        }
    });
}
