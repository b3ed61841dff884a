//! Stats: how many operations ended how, and how long they took.
//!
//! Counts are of operations (an invoke and its completion): an operation that never completed counts as
//! `info`. Latencies are of operations with a known return (`ok` and `fail`); quantiles are nearest-rank.
//! `ok_per_sec` is the number of `ok` operations over the time from the first to the last event. Nemesis
//! events are not operations. This module judges nothing: it only describes.

use crate::history::{History, Outcome};
use crate::result::{OutcomeCounts, Quantiles, Stats};

/// Computes the stats of a history (tolerant of inconsistent histories: it counts what it can pair).
pub fn compute(history: &History) -> Stats {
    let ops = history.operations_lenient();
    let mut stats = Stats::default();
    let mut latencies = Vec::with_capacity(ops.len());
    for op in &ops {
        if !stats.by_f.contains_key(&op.f) {
            stats.by_f.insert(op.f.clone(), OutcomeCounts::default());
        }
        let Some(by_f) = stats.by_f.get_mut(&op.f) else {
            continue;
        };
        match op.outcome {
            Outcome::Ok => {
                stats.ok += 1;
                by_f.ok += 1;
            }
            Outcome::Fail => {
                stats.fail += 1;
                by_f.fail += 1;
            }
            Outcome::Info => {
                stats.info += 1;
                by_f.info += 1;
            }
        }
        if let Some(ret) = op.ret {
            latencies.push(ret.saturating_sub(op.call));
        }
    }
    latencies.sort_unstable();
    stats.latency_ns = Quantiles {
        p50: quantile(&latencies, 0.50),
        p95: quantile(&latencies, 0.95),
        p99: quantile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or(0),
    };
    let first = history.events.iter().map(|e| e.time).min().unwrap_or(0);
    let last = history.events.iter().map(|e| e.time).max().unwrap_or(0);
    stats.duration_ns = last - first;
    stats.ok_per_sec = if stats.duration_ns > 0 {
        stats.ok as f64 / (stats.duration_ns as f64 / 1e9)
    } else {
        0.0
    };
    stats
}

/// Nearest-rank quantile of sorted values; 0 when there are none.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, Process};
    use serde_json::Value;

    fn ev(time: u64, p: u64, kind: EventType, f: &str) -> Event {
        let process = if p == 99 {
            Process::Nemesis
        } else {
            Process::Client(p)
        };
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

    #[test]
    fn counts_latencies_and_rate() {
        use EventType::*;
        let h = History::new(vec![
            ev(0, 0, Invoke, "read"),
            ev(1_000_000_000, 0, Ok, "read"),
            ev(1_000_000_000, 1, Invoke, "write"),
            ev(1_000_000_000, 99, Info, "start-partition"),
            ev(1_500_000_000, 1, Fail, "write"),
            ev(1_500_000_000, 2, Invoke, "write"),
            ev(1_600_000_000, 2, Info, "write"),
            ev(1_700_000_000, 3, Invoke, "cas"),
            ev(2_000_000_000, 0, Invoke, "read"),
            ev(2_000_000_100, 0, Ok, "read"),
        ]);
        let s = compute(&h);
        assert_eq!((s.ok, s.fail, s.info), (2, 1, 2));
        assert_eq!(s.by_f["read"].ok, 2);
        assert_eq!((s.by_f["write"].fail, s.by_f["write"].info), (1, 1));
        assert_eq!(s.by_f["cas"].info, 1);
        assert_eq!(s.latency_ns.max, 1_000_000_000);
        assert_eq!(s.latency_ns.p50, 500_000_000);
        assert_eq!(s.latency_ns.p99, 1_000_000_000);
        assert_eq!(s.duration_ns, 2_000_000_100);
        assert!((s.ok_per_sec - 2.0 / 2.0000001).abs() < 1e-9);
    }

    #[test]
    fn empty_history() {
        let s = compute(&History::default());
        assert_eq!(s, Stats::default());
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.95), 95);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&[7], 0.5), 7);
    }
}
