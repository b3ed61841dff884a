//! Every fault kind against a real Raft system: a 3-node etcd 3.4 cluster (/usr/bin/etcd), one member per
//! network namespace. For each fault, clients observe that it took effect (an isolated leader's writes time
//! out while the others elect a new leader, a killed member refuses connections, a paused member hangs, writes
//! go on under loss), then the fault is healed and clients observe recovery. The same on the local backend
//! (members on 127.0.0.1 in cgroups of their own). Needs root.

mod common;

use common::{eventually, Events, Lab};
use nemesis::{Action, Cluster, FaultSet, Nemesis};
use std::sync::Arc;
use std::time::Duration;

/// Not a test: the agent process the labs start (this binary, re-executed). Returns at once otherwise.
#[test]
fn agent() {
    common::agent_main_if_requested();
}

const SHORT: Duration = Duration::from_secs(2);
const LONG: Duration = Duration::from_secs(60);

fn all_write(lab: &Lab) -> bool {
    lab.ids()
        .iter()
        .all(|id| lab.etcd_put(id, Duration::from_secs(10)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_takes_effect_on_etcd_and_the_cluster_recovers_after_heal() {
    let mut lab = Lab::netns("etcd_faults", 3);
    lab.use_etcd();
    let lab = Arc::new(lab);
    lab.start_all();
    assert!(
        eventually(LONG, || all_write(&lab)),
        "etcd never became writable through every member"
    );
    let events = Events::default();
    let cluster: Arc<dyn Cluster> = lab.clone();
    let nem = Nemesis::new(&lab.run_id, cluster, Arc::new(events.clone()));
    nem.check(&FaultSet::parse("partition,kill,pause,loss").unwrap())
        .await
        .unwrap();
    let e = nem
        .check(&FaultSet::parse("clock").unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("libfaketime") && e.contains("etcd"), "{e}");
    let old = isolate_the_leader(&lab, &nem, &events).await;
    kill_a_member(&lab, &nem, &old).await;
    pause_a_member(&lab, &nem, &old).await;
    kill_the_leader(&lab, &nem, &events).await;
    loss_then_heal(&lab, &nem).await;
    eprintln!("events: {:?}", events.names());
}

/// Isolate the leader: its writes time out, the two others elect a new leader and take writes; after the
/// partition stops it takes writes again. Returns the old leader.
async fn isolate_the_leader(lab: &Lab, nem: &Nemesis, events: &Events) -> String {
    let old = lab.etcd_leader().expect("a leader");
    nem.apply(&Action::IsolateLeader).await.unwrap();
    assert_eq!(events.last("start-partition").unwrap()["leader"], old.as_str());
    let others: Vec<String> = lab.ids().into_iter().filter(|n| *n != old).collect();
    assert!(
        eventually(LONG, || lab.etcd_put(&others[0], SHORT)),
        "the majority never took writes"
    );
    assert!(
        !lab.etcd_put(&old, SHORT),
        "the isolated old leader acknowledged a write"
    );
    let new = lab.etcd_leader();
    assert!(new.as_ref().is_some_and(|n| *n != old), "no new leader: {new:?}");
    nem.apply(&Action::StopPartition).await.unwrap();
    assert!(
        eventually(LONG, || lab.etcd_put(&old, SHORT)),
        "the old leader never recovered"
    );
    old
}

/// Kill a member other than `old`: it refuses connections; the others still take writes; restart: it
/// serves again.
async fn kill_a_member(lab: &Lab, nem: &Nemesis, old: &str) {
    let victim = lab.ids().into_iter().filter(|n| n != old).nth(1).unwrap();
    nem.apply(&Action::Kill { node: victim.clone() }).await.unwrap();
    assert!(std::net::TcpStream::connect_timeout(&lab.agent_addr(&victim), SHORT).is_err());
    assert!(eventually(LONG, || lab.etcd_put(old, SHORT)));
    nem.apply(&Action::Restart { node: victim.clone() })
        .await
        .unwrap();
    assert!(
        eventually(LONG, || lab.etcd_put(&victim, SHORT)),
        "the killed member never came back"
    );
}

/// Pause a member (the leader, else `old`): connections are accepted but nothing answers; the rest take
/// writes; resume: it serves again.
async fn pause_a_member(lab: &Lab, nem: &Nemesis, old: &str) {
    let paused = lab.etcd_leader().unwrap_or_else(|| old.to_string());
    nem.apply(&Action::Pause { node: paused.clone() }).await.unwrap();
    assert!(std::net::TcpStream::connect_timeout(&lab.agent_addr(&paused), SHORT).is_ok());
    assert!(!lab.etcd_put(&paused, SHORT), "a paused member answered");
    let rest: Vec<String> = lab.ids().into_iter().filter(|n| *n != paused).collect();
    assert!(
        eventually(LONG, || lab.etcd_put(&rest[0], SHORT)),
        "the rest never took writes"
    );
    nem.apply(&Action::Resume { node: paused.clone() }).await.unwrap();
    assert!(eventually(LONG, || lab.etcd_put(&paused, SHORT)));
}

/// Kill the leader (the schedule names a stand-in): the others elect a new one and take writes; restart:
/// the killed leader serves again.
async fn kill_the_leader(lab: &Lab, nem: &Nemesis, events: &Events) {
    let leader = lab.etcd_leader().expect("a leader");
    let stand_in = lab.ids().into_iter().find(|n| *n != leader).unwrap();
    nem.apply(&Action::KillLeader {
        node: stand_in.clone(),
    })
    .await
    .unwrap();
    let v = events.last("kill").unwrap();
    assert_eq!(
        (v["node"].as_str(), v["leader"].as_bool()),
        (Some(leader.as_str()), Some(true)),
        "{v}"
    );
    assert!(
        eventually(LONG, || lab.etcd_put(&stand_in, SHORT)),
        "no new leader after the leader died"
    );
    nem.apply(&Action::Restart {
        node: stand_in.clone(),
    })
    .await
    .unwrap();
    assert!(
        eventually(LONG, || lab.etcd_put(&leader, SHORT)),
        "the killed leader never came back"
    );
}

/// 30% loss between all members: writes still get through (TCP retransmits). Then a partition on top, and
/// heal: every member takes writes; no rule is left.
async fn loss_then_heal(lab: &Lab, nem: &Nemesis) {
    nem.apply(&Action::StartLoss {
        nodes: lab.ids(),
        probability: 0.3,
    })
    .await
    .unwrap();
    for _ in 0..5 {
        assert!(eventually(LONG, || lab.etcd_put(&lab.ids()[0], Duration::from_secs(5))));
    }
    nem.apply(&Action::StartPartition {
        partition: nemesis::Partition::random(nemesis::Shape::Halves, &lab.ids(), 4),
    })
    .await
    .unwrap();
    nem.heal().await.unwrap();
    assert!(
        eventually(LONG, || all_write(lab)),
        "the cluster did not recover after heal"
    );
    for id in lab.ids() {
        assert!(!lab.iptables_listing(&id).contains("FL-"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_backend_isolates_an_etcd_leader_on_loopback_and_heals() {
    let mut lab = Lab::local("etcd_local", 3);
    lab.use_etcd();
    let lab = Arc::new(lab);
    lab.start_all();
    assert!(
        eventually(LONG, || all_write(&lab)),
        "etcd never became writable through every member"
    );
    let events = Events::default();
    let cluster: Arc<dyn Cluster> = lab.clone();
    let nem = Nemesis::new(&lab.run_id, cluster, Arc::new(events.clone()));
    nem.check(&FaultSet::parse("partition,kill,pause,loss").unwrap())
        .await
        .unwrap();
    let old = lab.etcd_leader().expect("a leader");
    nem.apply(&Action::IsolateLeader).await.unwrap();
    let others: Vec<String> = lab.ids().into_iter().filter(|n| *n != old).collect();
    assert!(
        eventually(LONG, || lab.etcd_put(&others[0], SHORT)),
        "the majority never took writes"
    );
    assert!(
        !lab.etcd_put(&old, SHORT),
        "the isolated old leader acknowledged a write"
    );
    assert!(lab.etcd_leader().is_some_and(|n| n != old));
    nem.apply(&Action::Pause {
        node: others[1].clone(),
    })
    .await
    .unwrap();
    assert!(!lab.etcd_put(&others[1], SHORT), "a paused member answered");
    nem.heal().await.unwrap();
    assert!(
        eventually(LONG, || all_write(&lab)),
        "the cluster did not recover after heal"
    );
    let out = std::process::Command::new("iptables")
        .args(["-w", "-S"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(nem.chain()));
    eprintln!("events: {:?}", events.names());
}
