//! `--nemesis lose-unsynced` for real: 3 raftkv nodes on lazyfs data directories, power cuts every ~2 s.
//! raftkv with `--bug skip-fsync` (log appends never fsynced) loses acknowledged writes and is found invalid;
//! correct raftkv stays valid; nothing is left behind after a run, after SIGINT, after kill -9 and `heal`.
//! Needs root and /dev/fuse (as CI has).

#[path = "run_support.rs"]
mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

/// A 20 s run: with a mean interval of 2 s (gaps at most 6 s) the 15 s before the quiet period always hold
/// at least two power cuts, whatever the seed.
fn args<'a>(store: &'a str, seed: &'a str, bug: bool) -> Vec<&'a str> {
    let mut a = vec![
        "--nodes",
        "3",
        "--nemesis",
        "lose-unsynced",
        "--nemesis-interval",
        "2",
        "--time-limit",
        "20",
        "--concurrency",
        "6",
        "--seed",
        seed,
        "--store",
        store,
    ];
    if bug {
        a.push("--node-arg=--bug=skip-fsync");
    }
    a
}

fn seed() -> String {
    // Not tuned to any seed: a fresh one each time (printed for replay).
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 100_000;
    eprintln!("seed {s}");
    s.to_string()
}

fn power_cuts(run_dir: &std::path::Path) -> usize {
    history(run_dir)
        .iter()
        .filter(|e| e["f"] == "lose-unsynced")
        .count()
        / 3
}

fn run_once(bug: bool) -> (Option<i32>, String, std::path::PathBuf, tempfile::TempDir) {
    assert!(is_root(), "lazyfs mounts need root (CI runs as root)");
    ensure_raftkv();
    let store = store();
    let seed = seed();
    let out = Command::new(faultline())
        .arg("run")
        .args(args(store.path().to_str().unwrap(), &seed, bug))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = latest(store.path());
    assert_eq!(leftovers(&run_dir), Vec::<String>::new(), "{text}");
    assert!(created(&run_dir)
        .iter()
        .any(|r| matches!(r, harness::state::Resource::Mount { .. })));
    assert!(power_cuts(&run_dir) >= 2, "{text}");
    (out.status.code(), text, run_dir, store)
}

#[test]
fn skip_fsync_loses_acknowledged_writes_in_a_power_cut() {
    let (code, text, run_dir, _store) = run_once(true);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("INVALID"), "{text}");
    // The cuts dropped un-synced log data.
    let lost: u64 = history(&run_dir)
        .iter()
        .filter(|e| e["f"] == "lose-unsynced")
        .map(|e| e["value"]["lost"]["bytes"].as_u64().unwrap())
        .sum();
    assert!(lost > 0, "{text}");
}

/// The same bug under plain kills: the kernel keeps the page cache, so nothing acknowledged is lost.
#[test]
fn skip_fsync_is_invisible_to_kill_9() {
    ensure_raftkv();
    let store = store();
    let seed = seed();
    let mut a = args(store.path().to_str().unwrap(), &seed, true);
    a[3] = "kill";
    let out = Command::new(faultline()).arg("run").args(&a).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        history(&latest(store.path())).iter().any(|e| e["f"] == "kill"),
        "{text}"
    );
}

#[test]
fn correct_raftkv_survives_power_cuts() {
    let (code, text, run_dir, _store) = run_once(false);
    assert_eq!(code, Some(0), "{text}");
    // Durable data stays in nodes/<id>.disk after the mounts are gone: raftkv's log, or its snapshot (a
    // snapshot rewrites the log without the entries it covers, which can leave the log empty).
    let disk = run_dir.join("nodes/n1.disk");
    let log = disk.join("log.jsonl").metadata().map_or(0, |m| m.len());
    let snapshot = disk.join("snapshot.json").metadata().map_or(0, |m| m.len());
    assert!(log > 0 || snapshot > 0, "nothing durable in {}", disk.display());
}

/// Starts a long run and waits for its first power cut.
fn running_with_mounts(store: &str) -> (Running, std::path::PathBuf) {
    assert!(is_root());
    ensure_raftkv();
    let seed = seed();
    let mut a = args(store, &seed, false);
    a[7] = "60";
    let mut run = Running::start(&a);
    assert!(
        run.wait_for("faultline: phase run", Duration::from_secs(60)),
        "{}",
        run.stderr.join("\n")
    );
    let run_dir = latest(std::path::Path::new(store));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while power_cuts(&run_dir) == 0 {
        assert!(std::time::Instant::now() < deadline, "no power cut");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lazyfs::is_mounted(&run_dir.join("nodes/n1")));
    (run, run_dir)
}

#[test]
fn sigint_unmounts_everything() {
    let store = store();
    let (run, run_dir) = running_with_mounts(store.path().to_str().unwrap());
    run.signal("INT");
    let (status, _, err) = run.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(3), "{err}");
    assert_eq!(leftovers(&run_dir), Vec::<String>::new(), "{err}");
}

#[test]
fn kill_9_then_heal_unmounts_everything() {
    let store = store();
    let (run, run_dir) = running_with_mounts(store.path().to_str().unwrap());
    let _guard = HealGuard(run_dir.clone());
    run.signal("KILL");
    let (status, _, _) = run.finish(Duration::from_secs(10));
    assert_eq!(status.code(), None);
    let left = leftovers(&run_dir);
    assert!(left.iter().any(|l| l.starts_with("mount ")), "{left:?}");
    let out = Command::new(faultline())
        .arg("heal")
        .arg(&run_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("lazyfs mount"), "{stdout}");
    assert_eq!(leftovers(&run_dir), Vec::<String>::new());
    // The durable data is readable after the heal.
    assert!(run_dir.join("nodes/n1.disk/meta.json").exists());
}
