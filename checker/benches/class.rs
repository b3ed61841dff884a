//! `cargo bench -p checker --bench class`: the hard class of issue 12, decided or not, as a table.
//!
//! Histories come from the seeded generator in `tests/support/class.rs` (the same one the property tests
//! use): register and cas-register, 20–50 processes, 2–5 keys, 500–5,000 operations per key, 10–30 %
//! indeterminate writes; seeds alternate valid and invalid (one injected anomaly). Each history is checked
//! as `faultline check` would, with a 60 s limit and the default 1 GiB memory bound. Then the large shape:
//! 200,000 operations over 1,000 Zipf-distributed keys.
//!
//! Environment: `CLASS_N` histories (default 100), `CLASS_LIMIT` seconds (default 60), `CLASS_LARGE`
//! large histories (default 4), `CLASS_FIRST` first seed (default 0), `CLASS_HOT=0` no hot key (see
//! [`hot_keys`] for its own). `cargo test --benches` runs 4 small ones only.

#[path = "../tests/support/class.rs"]
mod class;

mod support;
use checker::linearizability::{check, Options};
use checker::{ModelKind, Operation, Verdict};
use class::{generate, Shape};
use std::time::{Duration, Instant};
use support::{cpu_secs, peak_mib, reset_peak};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Row {
    name: String,
    ops: usize,
    info: usize,
    expected: Verdict,
    got: Verdict,
    secs: f64,
    /// CPU seconds of every thread during the check (the machine is shared: wall time depends on its load).
    cpu: f64,
    /// Search steps of every key, and the peak resident memory during the check (MiB; the process's peak so
    /// far where the kernel cannot start it over).
    steps: u64,
    peak: f64,
    note: String,
}

fn run(name: String, shape: &Shape, seed: u64, limit: Duration) -> Row {
    run_with(name, shape, seed, limit, 0)
}

/// [`run`] with at most `key_threads` threads on one key (0: all of them).
fn run_with(name: String, shape: &Shape, seed: u64, limit: Duration, key_threads: usize) -> Row {
    let ops: Vec<Operation> = generate(shape, seed);
    let writes = ops.iter().filter(|o| o.f != "read");
    let info = writes
        .clone()
        .filter(|o| o.outcome == checker::Outcome::Info)
        .count()
        * 100
        / writes.count().max(1);
    let opts = Options {
        model: if shape.cas {
            ModelKind::CasRegister
        } else {
            ModelKind::Register
        },
        time_limit: Some(limit),
        key_threads,
        ..Options::default()
    };
    reset_peak();
    let steps = checker::linearizability::search_steps_so_far();
    let (t, c) = (Instant::now(), cpu_secs());
    let r = check(&ops, &opts).expect("generated operations fit the model");
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - c;
    let steps = checker::linearizability::search_steps_so_far() - steps;
    let peak = peak_mib();
    let note = r
        .keys
        .iter()
        .find(|k| k.verdict == Verdict::Unknown && r.verdict == Verdict::Unknown)
        .and_then(|k| k.reason.clone())
        .unwrap_or_default();
    Row {
        name,
        ops: ops.len(),
        info,
        expected: if shape.anomaly.is_some() {
            Verdict::Invalid
        } else {
            Verdict::Valid
        },
        got: r.verdict,
        secs,
        cpu,
        steps,
        peak,
        note,
    }
}

fn word(v: Verdict) -> &'static str {
    match v {
        Verdict::Valid => "valid",
        Verdict::Invalid => "invalid",
        Verdict::Unknown => "unknown",
    }
}

fn print(r: &Row, shape: &Shape) {
    let mark = match (r.got, r.got == r.expected) {
        (Verdict::Unknown, _) => "  UNDECIDED",
        (_, false) => "  WRONG",
        _ => "",
    };
    println!(
        "{:<14} {:<12} {:>3} {:>5} {:>7} {:>6} {:>8} {:>8} {:>9.3} {:>7.2} {:>11} {:>6.0}{mark} {}",
        r.name,
        if shape.cas { "cas-register" } else { "register" },
        shape.processes,
        shape.keys,
        r.ops,
        r.info,
        word(r.expected),
        word(r.got),
        r.secs,
        r.cpu,
        r.steps,
        r.peak,
        r.note
    );
}

fn summary(label: &str, rows: &[Row]) {
    let mut secs: Vec<f64> = rows.iter().map(|r| r.secs).collect();
    secs.sort_by(f64::total_cmp);
    let median = secs.get(secs.len() / 2).copied().unwrap_or(0.0);
    let slowest = secs.last().copied().unwrap_or(0.0);
    let unknown = rows.iter().filter(|r| r.got == Verdict::Unknown).count();
    let wrong = rows
        .iter()
        .filter(|r| r.got != Verdict::Unknown && r.got != r.expected)
        .count();
    let valid = rows.iter().filter(|r| r.expected == Verdict::Valid).count();
    let cpu: f64 = rows.iter().map(|r| r.cpu).sum();
    println!(
        "{label}: {} histories ({valid} valid, {} invalid): {unknown} unknown, {wrong} wrong; \
         median {median:.3} s, slowest {slowest:.3} s, {cpu:.2} CPU s in all; peak memory so far {:.0} MiB",
        rows.len(),
        rows.len() - valid,
        peak_mib()
    );
}

/// A list of numbers from the environment (comma-separated), or `default`.
fn env_list(name: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// One hot key, growing: 2,500 to 40,000 operations of 50 processes on a single key (the shape of the
/// large histories' busiest key), valid and invalid, each with one thread and with every thread on the key
/// (`CLASS_HOT_SIZES`, `CLASS_HOT_SEEDS`, comma-separated, pick others; `CLASS_HOT_ALL=0` leaves out the
/// runs with every thread), side by side with the ratio of their wall times. Prints how the CPU time grows
/// per doubling.
fn hot_keys(on: bool, limit: Duration) -> Vec<Row> {
    let mut rows = Vec::new();
    if !on {
        return rows;
    }
    let all_threads = env("CLASS_HOT_ALL", 1) != 0;
    for seed in env_list("CLASS_HOT_SEEDS", &[0, 1]) {
        let mut cpu = Vec::new();
        for size in env_list("CLASS_HOT_SIZES", &[2_500, 5_000, 10_000, 20_000, 40_000]) {
            let mut shape = Shape::class(seed, seed % 2 == 1);
            shape.keys = 1;
            shape.processes = 50;
            shape.ops = size as usize;
            let one = run_with(format!("hot-{seed}-{size}/1"), &shape, seed, limit, 1);
            print(&one, &shape);
            cpu.push(one.cpu);
            if all_threads {
                let n = rayon::current_num_threads();
                let all = run_with(format!("hot-{seed}-{size}/{n}"), &shape, seed, limit, 0);
                print(&all, &shape);
                println!(
                    "  wall time with one thread / with {n} threads on the key: {:.2}",
                    one.secs / all.secs
                );
                rows.push(all);
            }
            rows.push(one);
        }
        let growth: Vec<String> = cpu
            .windows(2)
            .map(|w| format!("{:.1}", w[1] / w[0].max(0.01)))
            .collect();
        println!(
            "hot key (seed {seed}): CPU time with one thread, each doubling over the last: {}",
            growth.join(" ")
        );
    }
    rows
}

/// Histories whose check takes at least this long (s) are also checked with one thread per key.
const SLOW: f64 = 0.25;

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = env("CLASS_N", if quick { 4 } else { 100 });
    let first = env("CLASS_FIRST", 0);
    let large = env("CLASS_LARGE", if quick { 0 } else { 4 });
    let limit = Duration::from_secs(env("CLASS_LIMIT", 60));
    println!(
        "{:<14} {:<12} {:>3} {:>5} {:>7} {:>6} {:>8} {:>8} {:>9} {:>7} {:>11} {:>6}",
        "history", "model", "prc", "keys", "ops", "info%", "expected", "got", "s", "cpu s", "steps", "MiB"
    );
    let mut rows = Vec::new();
    let mut slow = Vec::new();
    for seed in first..first + n {
        let shape = Shape::class(seed, seed % 2 == 1);
        let r = run(format!("class-{seed}"), &shape, seed, limit);
        print(&r, &shape);
        // Side by side, for the histories that take long enough to tell: each key's search on one thread.
        if r.secs >= SLOW {
            let r1 = run_with(format!("class-{seed}/1"), &shape, seed, limit, 1);
            print(&r1, &shape);
            slow.push((r1.secs, r.secs));
        }
        rows.push(r);
    }
    let mut big = Vec::new();
    let mut one = Vec::new();
    for seed in first..first + large {
        let shape = Shape::large(seed, seed % 2 == 1);
        let r = run(format!("large-{seed}"), &shape, seed, limit);
        print(&r, &shape);
        // Side by side: the same history with each key's search on one thread (the hot key's search cannot
        // use the second core), in the same process, right after.
        let r1 = run_with(format!("large-{seed}/1"), &shape, seed, limit, 1);
        print(&r1, &shape);
        big.push(r);
        one.push(r1);
    }
    let hot = hot_keys(env("CLASS_HOT", if quick { 0 } else { 1 }) != 0, limit);
    println!();
    summary("class", &rows);
    if !slow.is_empty() {
        let ratios: Vec<String> = slow
            .iter()
            .map(|(one, all)| format!("{:.2}", one / all))
            .collect();
        let (one, all) = slow.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        println!(
            "class histories over {SLOW} s: time with one thread per key / with {} threads inside a key: {} \
             (in all {:.2} s / {:.2} s = {:.2})",
            rayon::current_num_threads(),
            ratios.join(" "),
            one,
            all,
            one / all
        );
    }
    // Side by side: the checker before issue 12's work (main of 2026-12-04 16:30), same generator and limit,
    // on a 2-core machine shared with other builds (load average near 18).
    println!(
        "before (the WGL/Lowe search with cache, forced steps and kv pruning only): the first 20 histories \
         of this class all unknown at 60 s"
    );
    if !big.is_empty() {
        summary("large (200,000 ops, 1,000 Zipf keys)", &big);
        summary("large, one thread per key", &one);
        let ratios: Vec<String> = one
            .iter()
            .zip(&big)
            .map(|(a, b)| format!("{:.2}", a.secs / b.secs))
            .collect();
        println!(
            "large: time with one thread per key / time with {} threads on a hot key: {}",
            rayon::current_num_threads(),
            ratios.join(" ")
        );
    }
    let wrong = rows
        .iter()
        .chain(&hot)
        .chain(&big)
        .chain(&one)
        .filter(|r| r.got != Verdict::Unknown && r.got != r.expected)
        .count();
    assert_eq!(wrong, 0, "a decided history got the wrong verdict");
}
