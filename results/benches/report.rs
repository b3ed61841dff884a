//! Report generation time and size for synthetic histories up to 1,000,000 operations (with one invalid
//! key, so the counterexample view is exercised). `cargo bench -p results` prints a table.
//! `FAULTLINE_BENCH_OPS=10000,100000` picks other sizes.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

fn main() {
    let sizes: Vec<usize> = std::env::var("FAULTLINE_BENCH_OPS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    let dir = tempfile::tempdir().unwrap();
    let store = results::Store::open(dir.path()).unwrap();
    println!(
        "| ops | events | history.jsonl | read + pair | plots (3 PNG + 3 SVG) | render_run (all) | report.html size | plot files |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let syn = support::generate(n, 10, 10, true, false, 42);
        let run = store.create_run(&format!("bench-{n}")).unwrap();
        support::write_jsonl(&syn.events, &run.history_path());
        std::fs::write(run.results_path(), serde_json::to_vec(&syn.report).unwrap()).unwrap();
        std::fs::write(
            run.test_path(),
            serde_json::json!({"name": format!("bench-{n}"), "db": "synthetic", "workload": "cas-register",
                "nemesis": ["partition", "kill", "pause", "loss"], "concurrency": 10})
            .to_string(),
        )
        .unwrap();
        let history_bytes = std::fs::metadata(run.history_path()).unwrap().len();
        drop(syn);

        // The phases separately (same code paths as render_run)...
        let t = Instant::now();
        let events = results::data::read_history(&run.history_path()).unwrap();
        let ops = results::data::pair_operations(&events);
        let faults = results::data::fault_intervals(&events);
        let read = t.elapsed();
        let t = Instant::now();
        let plot = results::plots::PlotData::new(&ops, &faults, events.last().map(|e| e.time).unwrap_or(0));
        plot.write_all(run.path()).unwrap();
        let plots = t.elapsed();
        drop((events, ops, plot));

        // ...and the whole thing, end to end.
        let t = Instant::now();
        let out = results::render_run(&run).unwrap();
        let total = t.elapsed();
        let plot_bytes: u64 = out
            .plots
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        let html_text = std::fs::read_to_string(&out.report).unwrap();
        assert!(html_text.contains("class=\"cx\""), "counterexample view present");
        println!(
            "| {n} | {} | {} | {:.2} s | {:.2} s | {:.2} s | {} | {} |",
            2 * n,
            mib(history_bytes),
            read.as_secs_f64(),
            plots.as_secs_f64(),
            total.as_secs_f64(),
            mib(out.bytes as u64),
            mib(plot_bytes),
        );
    }
}

fn mib(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.0} KiB", b as f64 / 1024.0)
    }
}
