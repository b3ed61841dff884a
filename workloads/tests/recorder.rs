//! The recorder writing real files: flushes while running, whole lines after a SIGKILL, order under
//! concurrent writers.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use checker::history::{read_path, Format};
use checker::{EventType, Process};
use serde_json::json;
use workloads::Recorder;

const CHILD_ENV: &str = "WORKLOADS_RECORDER_CHILD_PATH";

fn lines(path: &Path) -> (Vec<String>, bool) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let whole = bytes.is_empty() || bytes.ends_with(b"\n");
    let text = String::from_utf8_lossy(&bytes);
    (text.lines().map(str::to_string).collect(), whole)
}

/// Waits (up to a generous bound, not a timing assertion) until `path` holds at least `n` lines.
fn wait_for_lines(path: &Path, n: usize) -> Vec<String> {
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        // Count whole lines only: a read racing with a write may see part of it.
        let (mut l, whole) = lines(path);
        if !whole {
            l.pop();
        }
        if l.len() >= n {
            return l;
        }
        assert!(
            Instant::now() < give_up,
            "only {} of {n} lines reached the file",
            l.len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn events_reach_the_file_while_running_without_any_explicit_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let recorder = Recorder::create(&path).unwrap();
    for round in 0..5u64 {
        recorder.invoke(round, "write", Some("k1"), json!(round));
        recorder.complete(round, EventType::Ok, "write", Some("k1"), json!(round), None);
        // The background flusher writes them: nothing here calls flush() or finish().
        let l = wait_for_lines(&path, 2 * (round as usize + 1));
        assert_eq!(l.len(), 2 * (round as usize + 1));
    }
    recorder.nemesis(
        EventType::Info,
        "start-partition",
        json!({"kind": "isolate", "node": "n1"}),
    );
    recorder.finish().unwrap();
    let history = read_path(&path, Format::Jsonl, false).unwrap();
    assert_eq!(history.events.len(), 11);
    assert_eq!(history.events[10].process, Process::Nemesis);
    assert_eq!(history.events[10].value["node"], "n1");
    assert_eq!(history.operations().unwrap().len(), 5);
}

#[test]
fn the_file_keeps_growing_in_steps_while_a_writer_runs() {
    // A writer records steadily for a while; a reader looks at the file meanwhile. The file must be seen
    // at several sizes before the writer finishes, each time ending with a whole line.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let recorder = Recorder::create(&path).unwrap();
    let writer = {
        let recorder = recorder.clone();
        std::thread::spawn(move || {
            for i in 0..400u64 {
                recorder.invoke(i, "read", Some("k"), json!(null));
                recorder.complete(i, EventType::Ok, "read", Some("k"), json!(1), None);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut sizes = std::collections::BTreeSet::new();
    while !writer.is_finished() {
        let (mut l, whole) = lines(&path);
        if !whole {
            l.pop(); // a write in progress
        }
        for line in &l {
            serde_json::from_str::<checker::Event>(line).unwrap();
        }
        sizes.insert(l.len());
        std::thread::sleep(Duration::from_millis(10));
    }
    writer.join().unwrap();
    recorder.finish().unwrap();
    assert!(
        sizes.len() >= 3,
        "the file was seen at only {} sizes while running: {sizes:?}",
        sizes.len()
    );
    assert_eq!(lines(&path).0.len(), 800);
}

#[test]
fn concurrent_writers_get_unique_ordered_indices_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let recorder = Recorder::create(&path).unwrap();
    let threads: Vec<_> = (0..8u64)
        .map(|p| {
            let r = recorder.clone();
            std::thread::spawn(move || {
                for i in 0..2000 {
                    r.invoke(p, "write", Some("k"), json!(i));
                    r.complete(p, EventType::Ok, "write", Some("k"), json!(i), None);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(recorder.len(), 32_000);
    recorder.finish().unwrap();
    let history = read_path(&path, Format::Jsonl, false).unwrap();
    assert_eq!(history.events.len(), 32_000);
    for (i, e) in history.events.iter().enumerate() {
        assert_eq!(e.index, i as u64);
        if i > 0 {
            assert!(e.time >= history.events[i - 1].time, "time goes backwards at {i}");
        }
    }
    assert_eq!(history.operations().unwrap().len(), 16_000);
}

#[test]
fn a_bad_path_is_an_error_naming_it() {
    let e = Recorder::create("/nonexistent-dir-faultline/history.jsonl")
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("/nonexistent-dir-faultline/history.jsonl"),
        "{e}"
    );
}

/// Not a test of its own: the body of the child process that `a_killed_writer_leaves_a_readable_file`
/// starts (it does nothing unless the environment variable is set).
#[test]
fn recorder_child_process() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let recorder = Recorder::create(&path).unwrap();
    let mut i = 0u64;
    loop {
        let p = i % 10;
        recorder.invoke(
            p,
            "cas",
            Some(&format!("k{}", i % 7)),
            json!([i % 5, (i + 1) % 5]),
        );
        recorder.complete(
            p,
            EventType::Fail,
            "cas",
            Some(&format!("k{}", i % 7)),
            json!([1, 2]),
            Some("cas-mismatch".into()),
        );
        i += 1;
        if i.is_multiple_of(64) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_killed_writer_leaves_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "recorder_child_process", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Killed by PID on the way out, even if an assertion below fails.
    let mut child = KillOnDrop(child);
    // Wait until a good number of events reached the file, then SIGKILL it (by PID) while it writes flat out.
    wait_for_lines(&path, 2000);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success());

    let (raw, whole) = lines(&path);
    assert!(raw.len() >= 2000);
    let history = read_path(&path, Format::Jsonl, false).unwrap();
    if whole {
        assert!(history.warnings().is_empty(), "{:?}", history.warnings());
        assert_eq!(history.events.len(), raw.len());
    } else {
        // The kernel may cut a write short when a fatal signal arrives mid-write (between pages): the
        // partial last line is then skipped by the reader, with a warning, and everything before it reads.
        assert_eq!(history.warnings().len(), 1, "{:?}", history.warnings());
        assert_eq!(history.events.len(), raw.len() - 1);
    }
    for (i, e) in history.events.iter().enumerate() {
        assert_eq!(e.index, i as u64);
    }
    // Pairs up (a trailing invoke without its completion is an open operation, which is fine).
    history.operations().unwrap();
}
