//! The nemesis on the local backend: nodes are processes on 127.0.0.1, each in a cgroup of its own; faults
//! are rules in the host's OUTPUT chain (inside faultline's own chain) matching the sender's cgroup, the
//! receiver's ports, and for packets on connections the receiver opened, the conntrack mark that names the
//! opener. Checked with real processes and real TCP/UDP. Needs root and a cgroup2 mount.

mod common;

use common::{Events, Lab};
use nemesis::{Action, Cluster, FaultSet, Nemesis, Partition, Shape};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Not a test: the agent process the labs start (this binary, re-executed). Returns at once otherwise.
#[test]
fn agent() {
    common::agent_main_if_requested();
}

fn nemesis_for(lab: &Arc<Lab>) -> (Nemesis, Events) {
    let events = Events::default();
    let cluster: Arc<dyn Cluster> = lab.clone();
    (
        Nemesis::new(&lab.run_id, cluster, Arc::new(events.clone())),
        events,
    )
}

fn host_has_chain(chain: &str) -> bool {
    let out = std::process::Command::new("iptables")
        .args(["-w", "-S"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().any(|w| w == chain))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_partitions_cut_node_to_node_connections_and_leave_clients_alone() {
    let lab = Arc::new(Lab::local("local_partitions", 3));
    lab.start_all();
    assert!(lab.matrix().values().all(|r| *r), "{:?}", lab.matrix());
    *lab.leader.lock().unwrap() = Some("n2".into());
    let (nem, events) = nemesis_for(&lab);
    nem.check(&FaultSet::parse("partition,loss").unwrap())
        .await
        .unwrap();
    for (i, shape) in Shape::ALL.iter().enumerate() {
        let action = match shape {
            Shape::IsolateLeader => Action::IsolateLeader,
            s => Action::StartPartition {
                partition: Partition::random(*s, &lab.ids(), i as u64 + 3),
            },
        };
        nem.apply(&action).await.unwrap();
        let value = events.last("start-partition").unwrap();
        let drops: nemesis::Drops = serde_json::from_value(value["drops"].clone()).unwrap();
        assert!(!drops.is_empty());
        let dropped = |dst: &str, src: &str| drops.get(dst).is_some_and(|s| s.contains(src));
        // Packets: a datagram from a to b arrives unless b drops a.
        for a in lab.ids() {
            for b in lab.ids().into_iter().filter(|b| *b != a) {
                let arrived = lab.udp_delivered(&a, &b, 5) > 0;
                assert_eq!(
                    arrived,
                    !dropped(&b, &a),
                    "{}: udp {a}->{b} with drops {drops:?}",
                    shape.name()
                );
            }
        }
        // Connections: a TCP request from a to b needs both directions.
        let mut expected = BTreeMap::new();
        for a in lab.ids() {
            for b in lab.ids().into_iter().filter(|b| *b != a) {
                expected.insert((a.clone(), b.clone()), !dropped(&b, &a) && !dropped(&a, &b));
            }
        }
        assert_eq!(lab.matrix(), expected, "{} with drops {drops:?}", shape.name());
        for id in lab.ids() {
            assert_eq!(
                lab.ask(&id, "hello").as_deref(),
                Some("hello"),
                "client cut from {id}"
            );
        }
        nem.apply(&Action::StopPartition).await.unwrap();
        assert!(lab.matrix().values().all(|r| *r), "{} not undone", shape.name());
    }
    assert!(host_has_chain(nem.chain()));
    nem.heal().await.unwrap();
    assert!(
        !host_has_chain(nem.chain()),
        "chain {} left on the host",
        nem.chain()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_loss_drops_a_fraction_of_one_nodes_packets_to_another() {
    let lab = Arc::new(Lab::local("local_loss", 3));
    lab.start_all();
    let (nem, _) = nemesis_for(&lab);
    nem.apply(&Action::StartLoss {
        nodes: vec!["n1".into(), "n2".into()],
        probability: 0.5,
    })
    .await
    .unwrap();
    let (a, other) = (
        lab.udp_delivered("n1", "n2", 400),
        lab.udp_delivered("n1", "n3", 400),
    );
    eprintln!("local loss 0.5: n1->n2 {a}/400, n1->n3 (no loss) {other}/400");
    assert!((100..=300).contains(&a), "{a}");
    assert!(other >= 380, "{other}");
    nem.heal().await.unwrap();
    assert!(lab.udp_delivered("n1", "n2", 400) >= 380);
    assert!(!host_has_chain(nem.chain()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_network_faults_are_refused_without_node_cgroups() {
    let mut lab = Lab::local("local_refused", 3);
    lab.nodes[0].cgroup = None;
    let lab = Arc::new(lab);
    let (nem, _) = nemesis_for(&lab);
    let e = nem
        .check(&FaultSet::parse("isolate").unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cgroup") && e.contains("n1"), "{e}");
    nem.check(&FaultSet::parse("kill,pause").unwrap()).await.unwrap();
    let e = nem
        .check(&FaultSet::parse("delay").unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("local backend"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_heal_leftovers_removes_the_runs_host_chain() {
    let lab = Arc::new(Lab::local("local_leftovers", 3));
    lab.start_all();
    let chain = {
        let (nem, _) = nemesis_for(&lab);
        nem.apply(&Action::StartPartition {
            partition: Partition::random(Shape::Isolate, &lab.ids(), 2),
        })
        .await
        .unwrap();
        assert!(!lab.matrix().values().all(|r| *r));
        nem.chain().to_string()
        // The harness dies here: no heal.
    };
    assert!(host_has_chain(&chain));
    let removed = nemesis::heal_leftovers(Some(&lab.run_id), &[]).unwrap();
    assert!(removed.contains(&format!("host: {chain}")), "{removed:?}");
    assert!(!host_has_chain(&chain));
    assert!(lab.matrix().values().all(|r| *r));
    let again = nemesis::heal_leftovers(Some(&lab.run_id), &[]).unwrap();
    assert!(again.iter().all(|r| !r.starts_with("host")), "{again:?}");
}

/// A clock fault moves a program's wall clock only: under the environment `faketime_env` gives, with the
/// control file set an hour back, `time.time()` is an hour behind and `time.monotonic()` (which timers
/// follow) is where it is without libfaketime.
#[test]
fn a_clock_offset_moves_the_wall_clock_and_leaves_the_monotonic_clock() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("n1.faketime");
    let env = nemesis::clock::faketime_env(&file).expect("libfaketime must be installed");
    nemesis::clock::write_offset(&file, -3_600_000).unwrap();
    let clocks = |env: &[(String, String)]| -> (f64, f64) {
        let out = std::process::Command::new("python3")
            .args(["-c", "import time; print(time.time(), time.monotonic())"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let v: Vec<f64> = text.split_whitespace().map(|x| x.parse().unwrap()).collect();
        (v[0], v[1])
    };
    let (wall, mono) = clocks(&env);
    let (true_wall, true_mono) = clocks(&[]);
    assert!(
        (true_wall - wall - 3600.0).abs() < 5.0,
        "wall {wall} vs {true_wall}"
    );
    assert!((true_mono - mono).abs() < 5.0, "monotonic {mono} vs {true_mono}");
}
