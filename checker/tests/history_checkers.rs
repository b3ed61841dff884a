//! The availability and stats checkers on real histories: a Jepsen etcd run from the Knossos corpus (with a
//! partition nemesis) and a Porcupine Jepsen log.

#[path = "support/corpus.rs"]
mod corpus_dir;
use corpus_dir::corpus;
use std::time::Duration;

use checker::history::{read_path, Format};
use checker::result::Verdict;
use checker::{availability, stats};

#[test]
fn jepsen_etcd_mutex_run() {
    let h = read_path(
        &corpus().join("knossos/data/mutex/bad/etcd.edn"),
        Format::Auto,
        false,
    )
    .unwrap();
    let s = stats::compute(&h);
    // MANIFEST: 563 invokes, 261 ok, 299 fail; the 12 info events are the nemesis's.
    assert_eq!((s.ok, s.fail, s.info), (261, 299, 3));
    assert_eq!(s.by_f.values().map(|c| c.ok + c.fail + c.info).sum::<u64>(), 563);
    assert!(s.latency_ns.p50 > 0 && s.latency_ns.p50 <= s.latency_ns.p95);
    assert!(s.latency_ns.p95 <= s.latency_ns.p99 && s.latency_ns.p99 <= s.latency_ns.max);
    assert!(s.duration_ns > 1_000_000_000 && s.ok_per_sec > 0.0);

    let a = availability::check(&h, Duration::from_secs(10));
    // Jepsen logs each nemesis action twice (as it starts and as it ends): 3 stops, 6 heal events.
    assert_eq!(a.recoveries.len(), 6);
    assert!(a.recoveries.iter().all(|r| r.f == "stop"));
    // The first two partitions healed within about 0.3 s.
    for r in &a.recoveries[..4] {
        let ns = r.recovery_ns.unwrap();
        assert!(ns > 200_000_000 && ns < 400_000_000, "{r:?}");
    }
    // This run ended right after its final heal, with no operation after it: by this checker's rule
    // (recovery must be seen before the end) that is invalid. faultline's own runs end with final reads.
    assert_eq!(a.recoveries[5].recovery_ns, None);
    assert_eq!(a.verdict, Verdict::Invalid);
    assert!(a.longest_gap_ns > 0);
    assert!(a.longest_gap_start >= h.events[0].time);
}

#[test]
fn porcupine_log_without_times() {
    let h = read_path(
        &corpus().join("porcupine/test_data/jepsen/etcd_000.log"),
        Format::Auto,
        false,
    )
    .unwrap();
    let s = stats::compute(&h);
    assert_eq!(s.ok + s.fail + s.info, 85);
    assert_eq!(s.info, 16);
    let a = availability::check(&h, Duration::from_secs(10));
    assert!(a.recoveries.is_empty());
    assert_eq!(a.verdict, Verdict::Valid);
}
