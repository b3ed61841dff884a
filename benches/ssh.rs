//! The ssh backend's costs on real sshd hosts (network namespaces of tests/support/sshd.rs; root):
//! - setup of 5 hosts: connect to each (one multiplexed master connection), upload a 10 MB binary once
//!   (sha-256 checked, so a second setup sends nothing), start a node on each;
//! - one nemesis step over SSH: signalling a node's process group (pause or resume; the same round trip as
//!   a kill or one iptables command), median of 200.
//!
//! `cargo bench --bench ssh` prints a table. Targets (issue 13): setup < 5 s, a step < 100 ms median.

#[path = "../tests/support/sshd.rs"]
mod sshd;

use harness::ssh::{HostsFile, Remotes};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn setup(lab: &sshd::SshLab, binary: &std::path::Path, run_id: &str) -> (Remotes, Vec<(i32, u64)>, usize) {
    let file = HostsFile::load(&lab.hosts_file(5)).expect("the lab's hosts file");
    let r = Remotes::connect(&file.hosts, &file.known_hosts, false).expect("connect");
    let mut sent = 0;
    let mut procs = Vec::new();
    for (i, h) in file.hosts.iter().enumerate() {
        let dir = harness::ssh::run_dir(h, run_id);
        let remote_bin = h.dir.join("bin").join("node-binary");
        if harness::ssh::upload(&r, i, binary, &remote_bin).expect("upload") {
            sent += 1;
        }
        let argv = ["sleep".to_string(), "600".to_string()];
        let log = dir.join(format!("n{}.log", i + 1));
        procs.push(
            harness::ssh::start(&r, i, &dir.join(format!("n{}", i + 1)), &log, &[], &argv).expect("start"),
        );
    }
    (r, procs, sent)
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("bench ssh: needs root (network namespaces); skipped");
        return;
    }
    let lab = sshd::SshLab::new(5);
    let binary = lab.dir.path().join("binary");
    let bytes: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&binary, bytes).unwrap();

    let t = Instant::now();
    let (r, procs, sent) = setup(&lab, &binary, "bench1");
    let first = t.elapsed();
    let t = Instant::now();
    let (r2, procs2, sent2) = setup(&lab, &binary, "bench2");
    let second = t.elapsed();

    let mut steps = Vec::new();
    for k in 0..200 {
        let (pid, st) = procs[k % 5];
        let sig = if k % 2 == 0 { "STOP" } else { "CONT" };
        let t = Instant::now();
        assert!(harness::ssh::signal(&r, k % 5, pid, st, sig).expect("signal"));
        steps.push(t.elapsed());
    }
    let mut rules = Vec::new();
    for k in 0..50 {
        let argv = nemesis::iptables(&["-S"]);
        let t = Instant::now();
        assert!(r
            .run(k % 5, &argv, harness::ssh::COMMAND_TIMEOUT)
            .expect("iptables")
            .success());
        rules.push(t.elapsed());
    }
    for (rem, ps) in [(&r, &procs), (&r2, &procs2)] {
        for (i, (pid, st)) in ps.iter().enumerate() {
            let _ = harness::ssh::signal(rem, i, *pid, *st, "CONT");
            harness::ssh::kill(rem, i, *pid, *st).expect("kill");
        }
    }
    drop((r, r2));

    println!("| ssh backend, 5 sshd hosts in namespaces | measured | target |");
    println!("| --- | --- | --- |");
    println!(
        "| setup: connect, upload 10 MB ({sent} sent), start 5 nodes | {:.2} s | < 5 s |",
        first.as_secs_f64()
    );
    println!(
        "| setup again: binary already there ({sent2} sent) | {:.2} s | |",
        second.as_secs_f64()
    );
    println!(
        "| nemesis step: signal a node's group, median of 200 | {:.1} ms | < 100 ms |",
        median(steps).as_secs_f64() * 1e3
    );
    println!(
        "| iptables -S on a host, median of 50 | {:.1} ms | |",
        median(rules).as_secs_f64() * 1e3
    );
}
