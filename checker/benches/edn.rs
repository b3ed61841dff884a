//! EDN reading: the Knossos corpus (`shared/corpus/knossos`, 122 files) and a generated ~100 MB Jepsen
//! history, read by faultline's reader into events (`read_bytes`, format EDN). Prints a table. The comparison
//! with clojure-reader that decided to keep this reader is recorded in ARCHITECTURE.md.
//! `cargo bench -p checker --bench edn` (set `EDN_BENCH_MB` to change the generated size).

use checker::history::{read_bytes, Format};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/knossos/data");
    let root = if root.is_dir() {
        root
    } else {
        PathBuf::from("/work/shared/corpus/knossos/data")
    };
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "edn") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A Jepsen-style cas-register history over independent keys, `mb` megabytes of EDN, one map a line.
fn generated(mb: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let mut text = String::from("[");
    let (mut i, mut t) = (0u64, 0u64);
    while text.len() < mb << 20 {
        let p = rng.next_u64() % 50;
        let k = rng.next_u64() % 100;
        let (f, v) = match rng.next_u64() % 3 {
            0 => ("read", "nil".to_string()),
            1 => ("write", (rng.next_u64() % 5).to_string()),
            _ => ("cas", format!("[{} {}]", rng.next_u64() % 5, rng.next_u64() % 5)),
        };
        t += 1 + rng.next_u64() % 1000;
        let _ = writeln!(
            text,
            "{{:type :invoke, :f :{f}, :value [{k} {v}], :process {p}, :time {t}, :index {i}}}"
        );
        let ty = ["ok", "fail", "info"][(rng.next_u64() % 3) as usize];
        let _ = writeln!(
            text,
            "{{:type :{ty}, :f :{f}, :value [{k} {v}], :process {p}, :time {}, :index {}}}",
            t + 500,
            i + 1
        );
        i += 2;
    }
    text.push(']');
    text
}

fn best_of(n: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut count = 0;
    for _ in 0..n {
        let t = Instant::now();
        count = f();
        best = best.min(t.elapsed());
    }
    (best, count)
}

fn main() {
    let files: Vec<(PathBuf, String)> = corpus_files()
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    let corpus_bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let mb: usize = std::env::var("EDN_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let big = generated(mb);
    println!("| input | size | reader | events | best time | MB/s |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let row = |input: &str, size: usize, reader: &str, (d, n): (Duration, usize)| {
        println!(
            "| {input} | {:.1} MB | {reader} | {n} | {:.3} s | {:.0} |",
            size as f64 / 1e6,
            d.as_secs_f64(),
            size as f64 / 1e6 / d.as_secs_f64()
        );
    };
    let ours = |text: &str, path: &Path| {
        read_bytes(text.as_bytes(), path, Format::Edn, false).map_or(0, |h| h.events.len())
    };
    let corpus_label = format!("Knossos corpus ({} files)", files.len());
    row(
        &corpus_label,
        corpus_bytes,
        "faultline (events)",
        best_of(5, || files.iter().map(|(p, t)| ours(t, p)).sum()),
    );
    let path = Path::new("generated.edn");
    row(
        "generated Jepsen history",
        big.len(),
        "faultline (events)",
        best_of(3, || ours(&big, path)),
    );
}
