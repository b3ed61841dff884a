//! The ssh backend's costs on real sshd hosts (network namespaces of tests/support/sshd.rs; root):
//! - setup of 5 hosts as a run does it: connect to each (one multiplexed master connection), the spec's
//!   `[install]` uploading a 10 MB binary (in parallel; SHA-256 checked, so a second setup sends nothing),
//!   start a node on each;
//! - one nemesis step over SSH: signalling a node's process group (pause or resume; the same round trip as
//!   a kill), median of 200, and one iptables command on a host, median of 50.
//!
//! `cargo bench --bench ssh` prints a table. Targets (issue 13): setup < 5 s, a step < 100 ms median.

#[path = "../tests/support/sshd.rs"]
mod sshd;

use harness::spec::LoadedSpec;
use harness::ssh::{HostsFile, Remotes};
use std::path::Path;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// How long each part of a setup took.
struct Setup {
    connect: Duration,
    install: Duration,
    start: Duration,
}

impl Setup {
    fn total(&self) -> Duration {
        self.connect + self.install + self.start
    }
}

/// A setup as a run does it: connect to the 5 hosts, the spec's `[install]` (the 10 MB binary, in parallel
/// over the hosts, sent only where its SHA-256 differs), start a node on each.
fn setup(lab: &sshd::SshLab, spec: &LoadedSpec, run_id: &str) -> (Remotes, Vec<(i32, u64)>, Setup) {
    let t = Instant::now();
    let file = HostsFile::load(&lab.hosts_file(5)).expect("the lab's hosts file");
    let r = Remotes::connect(&file.hosts, &file.known_hosts, false).expect("connect");
    let connect = t.elapsed();
    let t = Instant::now();
    harness::ssh::install::install(&r, spec, Path::new("/bin/sleep")).expect("install");
    let install = t.elapsed();
    let t = Instant::now();
    let mut procs = Vec::new();
    for (i, h) in file.hosts.iter().enumerate() {
        let dir = harness::ssh::run_dir(h, run_id);
        let argv = ["sleep".to_string(), "600".to_string()];
        let log = dir.join(format!("n{}.log", i + 1));
        procs.push(
            harness::ssh::start(&r, i, &dir.join(format!("n{}", i + 1)), &log, &[], &argv).expect("start"),
        );
    }
    let start = t.elapsed();
    (
        r,
        procs,
        Setup {
            connect,
            install,
            start,
        },
    )
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

    let spec = LoadedSpec::from_text(
        &format!(
            "name = \"bench\"\ncommand = [\"sleep\", \"600\"]\n[ready]\nkind = \"tcp\"\n[client]\n\
             protocol = \"http-kv\"\n[install]\nfiles = [{{ source = {:?}, dest = \"bin/node-binary\" }}]\n",
            binary.display().to_string()
        ),
        "bench.toml",
        None,
    )
    .expect("the bench's spec");
    let inodes = || -> Vec<u64> {
        use std::os::unix::fs::MetadataExt;
        (1..=5)
            .map(|i| {
                let dest = lab.remote_dir().join(format!("h{i}/bin/node-binary"));
                std::fs::metadata(dest).expect("installed on every host").ino()
            })
            .collect()
    };
    let (r, procs, first) = setup(&lab, &spec, "bench1");
    let sent = inodes();
    let (r2, procs2, second) = setup(&lab, &spec, "bench2");
    assert_eq!(inodes(), sent, "the second setup sent the binary again");

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

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("ssh backend, 5 sshd hosts in network namespaces; {cores} cores, load average {load}");
    println!("| step | measured | target |");
    println!("| --- | --- | --- |");
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    println!(
        "| setup of 5 hosts: connect {}, install 10 MB (sent to 5) {}, start 5 nodes {} | {:.2} s | < 5 s |",
        ms(first.connect),
        ms(first.install),
        ms(first.start),
        first.total().as_secs_f64()
    );
    println!(
        "| setup again, binary already there (sent to 0): connect {}, install {}, start {} | {:.2} s | |",
        ms(second.connect),
        ms(second.install),
        ms(second.start),
        second.total().as_secs_f64()
    );
    let (steps_p90, rules_p90) = (p90(steps.clone()), p90(rules.clone()));
    println!(
        "| nemesis step: signal a node's group (pause/resume), median of 200 (p90 {:.1} ms) | {:.1} ms | < 100 ms |",
        steps_p90.as_secs_f64() * 1e3,
        median(steps).as_secs_f64() * 1e3
    );
    println!(
        "| nemesis step: iptables -S on a host, median of 50 (p90 {:.1} ms) | {:.1} ms | < 100 ms |",
        rules_p90.as_secs_f64() * 1e3,
        median(rules).as_secs_f64() * 1e3
    );
}

fn p90(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() * 9 / 10]
}
