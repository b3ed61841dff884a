//! `faultline run --backend ssh` against real OpenSSH servers: each "host" is a network namespace running
//! Debian's sshd with its own host key (tests/support/sshd.rs); faultline reaches the hosts only over SSH
//! (nodes started, signalled and killed there, iptables rules put there). Correct raftkv stays valid under
//! partition,kill,pause; raftkv with a bug is found invalid; a kill -9 of faultline then `heal` leaves nothing
//! on any host; a bad hosts file is refused (254); an unreachable host fails the run quickly (3). Clock faults
//! move the nodes' clocks on their hosts (libfaketime's control file written over SSH); membership faults
//! add the spare hosts as members.

#[path = "support/sshd.rs"]
mod sshd;
#[path = "run_support.rs"]
mod support;

use harness::state::{read_state, Resource};
use sshd::SshLab;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// What a run left on the lab's hosts: node processes (the hosts share this machine's PID space), the
/// nemesis's chains in each host's iptables, the run's folders.
fn ssh_leftovers(lab: &SshLab, run_dir: &Path) -> Vec<String> {
    ssh_leftovers_by_host(lab, run_dir)
        .into_iter()
        .map(|(_, l)| l)
        .collect()
}

/// The tear-down as the run record tells it, and the state file (for failure messages).
fn teardown(run: &Path) -> String {
    let record = std::fs::read_to_string(run.join("test.json")).unwrap_or_default();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap_or_default();
    let state = std::fs::read_to_string(run.join("state.jsonl")).unwrap_or_default();
    format!("teardown: {}\nstate:\n{state}", record["teardown"])
}

fn ssh_args<'a>(lab_hosts: &'a str, store: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["--backend", "ssh", "--hosts", lab_hosts, "--store", store];
    a.extend_from_slice(extra);
    a
}

/// A lab of `n` hosts, its hosts file naming all of them and a fresh store (raftkv built first).
fn lab_and_store(n: usize) -> (SshLab, std::path::PathBuf, tempfile::TempDir) {
    ensure_raftkv();
    let lab = SshLab::new(n);
    let hosts = lab.hosts_file(n);
    (lab, hosts, store())
}

/// Runs faultline with `extra` on the lab's hosts to its end (within `limit`) and asserts that it is valid
/// and that nothing of it is left on any host; returns its run folder.
fn valid_ssh_run(lab: &SshLab, hosts: &Path, store: &Path, extra: &[&str], limit: Duration) -> PathBuf {
    let args = ssh_args(hosts.to_str().unwrap(), store.to_str().unwrap(), extra);
    let (status, out, err) = Running::start(&args).finish(limit);
    let run = latest(store);
    assert_eq!(
        ssh_leftovers(lab, &run),
        Vec::<String>::new(),
        "{}",
        teardown(&run)
    );
    assert_eq!(status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    run
}

#[test]
fn raftkv_on_three_ssh_hosts_under_partition_kill_pause_is_valid() {
    assert!(is_root(), "the ssh lab needs root (CI runs as root)");
    let (lab, hosts, store) = lab_and_store(3);
    let extra = [
        "--nemesis",
        "partition,kill,pause",
        "--nemesis-interval",
        "2",
        "--time-limit",
        "15",
        "--concurrency",
        "5",
    ];
    let run = valid_ssh_run(&lab, &hosts, store.path(), &extra, Duration::from_secs(180));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("test.json")).unwrap()).unwrap();
    assert_eq!(record["backend"], "ssh", "{record}");
    // The faults really happened, on the hosts.
    let nemesis: Vec<serde_json::Value> = history(&run)
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .collect();
    // (Which of them a schedule draws in 15 s is the seed's business: at least one must have run.)
    assert!(
        nemesis
            .iter()
            .any(|e| ["start-partition", "kill", "pause"].contains(&e["f"].as_str().unwrap_or(""))),
        "no fault ran: {nemesis:?}"
    );
    // Each node's log and data listing came back from its host.
    for n in ["n1", "n2", "n3"] {
        let log = std::fs::read_to_string(run.join("nodes").join(format!("{n}.log"))).unwrap_or_else(|e| {
            let listing: Vec<_> = std::fs::read_dir(run.join("nodes"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            panic!("{n}.log: {e}; nodes/ holds {listing:?}; {}", teardown(&run))
        });
        assert!(log.contains("=== faultline: starting"), "{n}.log: {log}");
        assert!(run.join("nodes").join(format!("{n}.data.txt")).is_file());
    }
    let report = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(report.contains("nodes/n1.log"), "the report links the node logs");
}

#[test]
fn raftkv_with_stale_leader_reads_on_ssh_hosts_is_invalid() {
    assert!(is_root(), "the ssh lab needs root (CI runs as root)");
    let (lab, hosts, store) = lab_and_store(5);
    let (h, s) = (hosts.to_str().unwrap(), store.path().to_str().unwrap());
    let args = ssh_args(
        h,
        s,
        &[
            &["--nodes", "5", "--node-arg=--bug=stale-leader-read"][..],
            &MINORITY_LEADER_RUN,
        ]
        .concat(),
    );
    let (status, out, err) = Running::start(&args).finish(Duration::from_secs(180));
    let run = latest(store.path());
    assert_eq!(ssh_leftovers(&lab, &run), Vec::<String>::new());
    // The cut happened (else a miss would say nothing about detection): the nemesis events, in the message.
    let nemesis: Vec<serde_json::Value> = history(&run)
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .collect();
    assert!(
        nemesis.iter().any(|e| e["value"]["kind"] == "minority-leader"),
        "no minority-leader cut: {nemesis:?}\nstderr:\n{err}"
    );
    assert_eq!(
        status.code(),
        Some(1),
        "stale reads not caught:\nnemesis: {nemesis:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
}

#[test]
fn kill_9_during_a_partition_then_heal_cleans_every_host() {
    assert!(is_root(), "the ssh lab needs root (CI runs as root)");
    let (lab, hosts, store) = lab_and_store(3);
    let (h, s) = (hosts.to_str().unwrap(), store.path().to_str().unwrap());
    let args = ssh_args(
        h,
        s,
        &[
            "--nemesis",
            "partition,pause",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "60",
        ],
    );
    let (run, run_dir, _guard) = start_until_run_phase(&args, store.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(run_dir.join("history.jsonl")).unwrap_or_default();
        if text.contains("\"start-partition\"") {
            break;
        }
        assert!(Instant::now() < deadline, "no partition started");
        std::thread::sleep(Duration::from_millis(100));
    }
    run.signal("KILL");
    let (status, _, _) = run.finish(Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal");
    let left = ssh_leftovers(&lab, &run_dir);
    assert!(left.iter().any(|l| l.starts_with("process")), "{left:?}");
    assert!(left.iter().any(|l| l.starts_with("folder")), "{left:?}");
    assert!(
        left.iter().any(|l| l.starts_with("chain")),
        "a partition was in force: {left:?}"
    );
    let out = Command::new(faultline())
        .arg("heal")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ssh_leftovers(&lab, &run_dir), Vec::<String>::new());
    for i in 0..3 {
        assert!(!lab.rules(i).contains("FL-"), "host {i}: {}", lab.rules(i));
    }
    // The logs were fetched before the folders went.
    assert!(run_dir.join("nodes/n1.log").is_file());
    // Nothing is left for a second heal.
    let out = Command::new(faultline())
        .arg("heal")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("stopped") || text.contains("nothing"), "{text}");
}

#[test]
fn a_bad_hosts_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts.toml");
    std::fs::write(
        &hosts,
        "user = \"root\"\n\n[[host]]\nhost = \"10.1.2.3\"\nport = 0\n",
    )
    .unwrap();
    let out = Command::new(faultline())
        .args(["run", "--backend", "ssh", "--hosts"])
        .arg(&hosts)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hosts.toml:5: host[0].port: 0 is not a port"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Too few hosts for the nodes.
    std::fs::write(&hosts, "[[host]]\nhost = \"10.1.2.3\"\n").unwrap();
    let out = Command::new(faultline())
        .args(["run", "--nodes", "3", "--hosts"])
        .arg(&hosts)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lists 1 hosts, the run needs 3"));
    // --backend ssh without a hosts file.
    let out = Command::new(faultline())
        .args(["run", "--backend", "ssh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
}

#[test]
fn an_unreachable_host_fails_the_run_quickly_naming_it() {
    assert!(is_root(), "the ssh lab needs root (CI runs as root)");
    ensure_raftkv();
    let mut lab = SshLab::new(3);
    lab.stop_sshd(1);
    let hosts = lab.hosts_file(3);
    let store = store();
    let (h, s) = (hosts.to_str().unwrap(), store.path().to_str().unwrap());
    let started = Instant::now();
    let (status, out, err) =
        Running::start(&ssh_args(h, s, &["--time-limit", "5"])).finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(3), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let addr = lab.hosts[1].addr.to_string();
    let line = err.lines().find(|l| l.contains("ssh:")).unwrap_or_default();
    assert!(line.contains(&addr) && line.contains("cannot connect"), "{err}");
    // A host key that does not match known_hosts is refused too (no --accept-new-host-keys can change that).
    let lab2 = SshLab::new(1);
    let other_key = std::fs::read_to_string(lab.known_hosts()).unwrap();
    let other_key = other_key
        .lines()
        .next()
        .unwrap()
        .split_once(' ')
        .unwrap()
        .1
        .to_string();
    std::fs::write(
        lab2.known_hosts(),
        format!("{} {other_key}\n", lab2.hosts[0].addr),
    )
    .unwrap();
    let hosts2 = lab2.hosts_file(1);
    let (status, _, err) = Running::start(&ssh_args(
        hosts2.to_str().unwrap(),
        s,
        &["--nodes", "1", "--time-limit", "2", "--accept-new-host-keys"],
    ))
    .finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("cannot connect") && err.contains("key"), "{err}");
    // With an empty known_hosts, --accept-new-host-keys adds the key on first contact.
    std::fs::write(lab2.known_hosts(), "").unwrap();
    let (status, _, err) = Running::start(&ssh_args(
        hosts2.to_str().unwrap(),
        s,
        &["--nodes", "1", "--time-limit", "2", "--accept-new-host-keys"],
    ))
    .finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{err}");
    let known = std::fs::read_to_string(lab2.known_hosts()).unwrap();
    assert!(known.contains("ssh-ed25519"), "{known}");
}

#[test]
fn a_file_is_uploaded_once_and_nodes_are_signalled_only_while_theirs() {
    assert!(is_root(), "the ssh lab needs root (CI runs as root)");
    let lab = SshLab::new(2);
    let file = harness::ssh::HostsFile::load(&lab.hosts_file(2)).unwrap();
    let r = harness::ssh::Remotes::connect(&file.hosts, &file.known_hosts, false).unwrap();
    let local = lab.dir.path().join("payload");
    std::fs::write(&local, vec![7u8; 1 << 20]).unwrap();
    let remote = lab.remote_dir().join("bin/payload");
    assert!(
        harness::ssh::upload(&r, 0, &local, &remote).unwrap(),
        "first upload sends"
    );
    assert_eq!(std::fs::read(&remote).unwrap(), std::fs::read(&local).unwrap());
    assert!(
        !harness::ssh::upload(&r, 0, &local, &remote).unwrap(),
        "same hash: nothing sent"
    );
    std::fs::write(&local, vec![8u8; 1 << 20]).unwrap();
    assert!(
        harness::ssh::upload(&r, 0, &local, &remote).unwrap(),
        "changed: sent again"
    );
    // A node started over SSH leads its own group; a wrong start time is never signalled.
    let dir = lab.remote_dir().join("sig");
    let argv = ["sleep".to_string(), "60".to_string()];
    let (pid, st) = harness::ssh::start(&r, 1, &dir.join("n2"), &dir.join("n2.log"), &[], &argv).unwrap();
    assert!(harness::sys::is_ours_and_alive(pid, st));
    assert!(!harness::ssh::signal(&r, 1, pid, st + 1, "KILL").unwrap());
    assert!(
        harness::sys::is_ours_and_alive(pid, st),
        "a recycled PID is left alone"
    );
    harness::ssh::kill(&r, 1, pid, st).unwrap();
    assert!(!harness::sys::is_ours_and_alive(pid, st));
}

/// The shipped raftkv spec with an `[install]` section: the node binary (the same file `command[0]` names)
/// uploaded below each host's `dir`, and `command` run on each host.
fn install_spec(dir: &Path, command: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(root().join("dbs/raftkv.toml")).unwrap();
    assert!(!text.contains("[install]"));
    let spec = format!(
        "{text}\n[install]\nfiles = [{{ source = \"raftkv\", dest = \"bin/raftkv\" }}]\n\
         commands = [[\"sh\", \"-c\", {command:?}]]\ntimeout_s = 30\n"
    );
    let path = dir.join("raftkv-install.toml");
    std::fs::write(&path, spec).unwrap();
    path
}

#[test]
fn install_uploads_the_node_binary_once_and_the_nodes_run_that_copy() {
    use std::os::unix::fs::MetadataExt;
    assert!(is_root(), "the ssh lab needs root (CI runs as root)");
    ensure_raftkv();
    let lab = SshLab::new(3);
    let hosts = lab.hosts_file(3);
    let spec = install_spec(lab.dir.path(), "echo \"$PPID {host}\" >>{dir}/installed.txt");
    let store = store();
    let (h, s, d) = (
        hosts.to_str().unwrap(),
        store.path().to_str().unwrap(),
        spec.to_str().unwrap(),
    );
    let args = ssh_args(h, s, &["--db", d, "--time-limit", "3"]);
    let host_dir = |i: usize| lab.remote_dir().join(format!("h{}", i + 1));
    let bin = |i: usize| host_dir(i).join("bin/raftkv");
    // First run: every host gets the binary and runs the command once; the nodes run the uploaded copy.
    let (status, _, err) = Running::start(&args).finish(Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "{err}");
    let local = std::fs::read(faultline().with_file_name("raftkv")).unwrap();
    let mut stamps = Vec::new();
    for (i, host) in lab.hosts.iter().enumerate() {
        let line = format!(
            "faultline: install on root@{}:22: sent {}; unchanged nothing",
            host.addr,
            bin(i).display()
        );
        assert!(err.contains(&line), "{line}\n{err}");
        assert!(
            std::fs::read(bin(i)).unwrap() == local,
            "host {i}: not the local binary"
        );
        let m = std::fs::metadata(bin(i)).unwrap();
        stamps.push((m.ino(), m.mtime(), m.mtime_nsec()));
        let ran = std::fs::read_to_string(host_dir(i).join("installed.txt")).unwrap();
        assert_eq!(ran.lines().count(), 1, "{ran}");
        assert!(ran.trim().ends_with(&host.addr.to_string()), "{ran}");
    }
    let run = latest(store.path());
    let log = std::fs::read_to_string(run.join("nodes/n2.log")).unwrap();
    let started = log
        .lines()
        .find(|l| l.starts_with("=== faultline: starting"))
        .unwrap_or_default();
    let uploaded = format!(" {} --id n2 ", bin(1).display());
    assert!(started.contains(&uploaded), "{uploaded}\n{log}");
    assert_eq!(ssh_leftovers(&lab, &run), Vec::<String>::new());
    // Second run: the same hash on every host, so nothing is sent (same inode and mtime); the command runs
    // again (once per host and run).
    let (status, _, err) = Running::start(&args).finish(Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "{err}");
    for (i, host) in lab.hosts.iter().enumerate() {
        let line = format!(
            "faultline: install on root@{}:22: sent nothing; unchanged {}",
            host.addr,
            bin(i).display()
        );
        assert!(err.contains(&line), "{line}\n{err}");
        let m = std::fs::metadata(bin(i)).unwrap();
        assert_eq!(
            (m.ino(), m.mtime(), m.mtime_nsec()),
            stamps[i],
            "host {i}: the binary was re-sent"
        );
        let ran = std::fs::read_to_string(host_dir(i).join("installed.txt")).unwrap();
        assert_eq!(ran.lines().count(), 2, "{ran}");
    }
    // A command that fails fails the run (3): the host and one line, and nothing is left on any host.
    let spec = install_spec(lab.dir.path(), "echo no space left >&2; exit 7");
    let args = ssh_args(h, s, &["--db", spec.to_str().unwrap(), "--time-limit", "3"]);
    let (status, _, err) = Running::start(&args).finish(Duration::from_secs(120));
    assert_eq!(status.code(), Some(3), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("install.commands[0]"))
        .unwrap_or_default();
    assert!(
        line.contains(
            ": ssh: install.commands[0] (sh -c echo no space left >&2; exit 7): exit 7: no space left"
        ),
        "{err}"
    );
    assert!(
        lab.hosts
            .iter()
            .any(|h| line.contains(&format!("root@{}:22", h.addr))),
        "{line}"
    );
    assert_eq!(ssh_leftovers(&lab, &latest(store.path())), Vec::<String>::new());
}

#[test]
fn a_host_that_loses_its_ssh_connection_mid_run_fails_the_run_and_the_others_are_healed() {
    assert!(is_root(), "the ssh lab needs root (CI runs as root)");
    let (mut lab, hosts, store) = lab_and_store(3);
    let (run, run_dir, _guard) = long_ssh_run(&hosts, store.path(), "partition");
    std::thread::sleep(Duration::from_secs(3));
    // Host 2's sshd and its sessions die; its node lives on, out of faultline's reach.
    lab.kill_ssh_sessions(1);
    let cut = Instant::now();
    let (status, out, err) = run.finish(Duration::from_secs(90));
    assert_eq!(status.code(), Some(3), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        cut.elapsed() < Duration::from_secs(45),
        "took {:?}",
        cut.elapsed()
    );
    let addr = format!("root@{}:22: ssh: ", lab.hosts[1].addr);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(
        line.contains(&addr) && line.contains("lost the connection"),
        "{err}"
    );
    // The other hosts were healed: no node, folder or chain of the run is left there.
    let left = ssh_leftovers_by_host(&lab, &run_dir);
    assert!(left.iter().all(|(host, _)| *host == 1), "{left:?}");
    assert!(
        left.iter().any(|(_, l)| l.starts_with("process")),
        "host 2's node is out of reach: {left:?}"
    );
    // Host 2 comes back: `faultline heal` cleans it too.
    lab.start_sshd(1);
    heal_cleans_every_host(&lab, &run_dir);
}

#[test]
fn a_host_whose_port_22_is_dropped_mid_run_fails_the_run_naming_it() {
    assert!(is_root(), "the ssh lab needs root (CI runs as root)");
    let (lab, hosts, store) = lab_and_store(3);
    let (run, run_dir, _guard) = long_ssh_run(&hosts, store.path(), "pause");
    std::thread::sleep(Duration::from_secs(2));
    // Host 3's sshd and its sessions stay up; no packet reaches port 22 any more (a firewall, a cut link).
    lab.drop_ssh(2);
    let cut = Instant::now();
    let (status, out, err) = run.finish(Duration::from_secs(120));
    let took = cut.elapsed();
    lab.undrop_ssh(2);
    assert_eq!(status.code(), Some(3), "stdout:\n{out}\nstderr:\n{err}");
    // The master gives up after 3 keepalives 2 s apart; the tear-down tries the host once more (5 s).
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let error: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error.len(), 1, "{err}");
    assert!(
        error[0].contains(&format!("root@{}:22: ssh: ", lab.hosts[2].addr))
            && error[0].contains("lost the connection"),
        "{err}"
    );
    // The other hosts were healed; with port 22 open again, `faultline heal` cleans host 3 too.
    let left = ssh_leftovers_by_host(&lab, &run_dir);
    assert!(left.iter().all(|(host, _)| *host == 2), "{left:?}");
    heal_cleans_every_host(&lab, &run_dir);
}

/// A 120 s run on the lab's hosts with `nemesis` every second on average, started and in its run phase.
fn long_ssh_run(hosts: &Path, store: &Path, nemesis: &str) -> (Running, PathBuf, HealGuard) {
    let (h, s) = (hosts.to_str().unwrap(), store.to_str().unwrap());
    let extra = [
        "--nemesis",
        nemesis,
        "--nemesis-interval",
        "1",
        "--time-limit",
        "120",
    ];
    start_until_run_phase(&ssh_args(h, s, &extra), store)
}

/// `faultline heal` of a run folder succeeds and leaves nothing of the run on any host.
fn heal_cleans_every_host(lab: &SshLab, run_dir: &Path) {
    let out = Command::new(faultline())
        .arg("heal")
        .arg(run_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ssh_leftovers(lab, run_dir), Vec::<String>::new());
}

/// [`ssh_leftovers`] with the host each one is on.
fn ssh_leftovers_by_host(lab: &SshLab, run_dir: &Path) -> Vec<(usize, String)> {
    let resources = read_state(&run_dir.join("state.jsonl")).expect("state.jsonl");
    let mut left = Vec::new();
    for r in &resources {
        match r {
            Resource::SshProcess {
                host,
                node,
                pid,
                start_time,
            } if harness::sys::is_ours_and_alive(*pid, *start_time) => {
                left.push((*host, format!("process {node} {pid}")))
            }
            Resource::SshDir { host, path } if Path::new(path).exists() => {
                left.push((*host, format!("folder {path}")))
            }
            Resource::SshFile { host, path } if Path::new(path).exists() => {
                left.push((*host, format!("file {path}")))
            }
            Resource::SshChains { host, run_id }
                if lab.rules(*host).contains(&nemesis::chain_name(run_id)) =>
            {
                left.push((
                    *host,
                    format!("chain {} on host {host}", nemesis::chain_name(run_id)),
                ))
            }
            _ => {}
        }
    }
    left
}

/// Node `i`'s wall clock minus ours, in whole seconds, from the `clock_ms` of its `/status` (None when it
/// does not answer).
fn node_clock_offset_s(lab: &SshLab, i: usize) -> Option<i64> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from((lab.hosts[i].addr, 7000));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(b"GET /status HTTP/1.0\r\nHost: n\r\n\r\n").ok()?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let ours = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1)?).ok()?;
    let theirs = body["clock_ms"].as_i64()?;
    Some(((theirs - ours) as f64 / 1000.0).round() as i64)
}

/// The nemesis's events of a run, one a line with their time in seconds (for failure messages).
fn nemesis_events(run_dir: &Path) -> String {
    history(run_dir)
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .map(|e| {
            let t = e["time"].as_u64().unwrap_or(0) as f64 / 1e9;
            format!("{t:.1} {} {}", e["f"].as_str().unwrap_or(""), e["value"])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn clock_faults_on_ssh_hosts_move_the_nodes_clocks_there() {
    assert!(is_root(), "the ssh lab needs root (CI runs as root)");
    let (lab, hosts, store) = lab_and_store(3);
    let (h, s) = (hosts.to_str().unwrap(), store.path().to_str().unwrap());
    let args = ssh_args(
        h,
        s,
        &[
            "--nemesis",
            "clock",
            "--nemesis-interval",
            "3",
            "--time-limit",
            "30",
        ],
    );
    let (mut run, run_dir, _guard) = start_until_run_phase(&args, store.path());
    // What each node's own clock says while the run goes on.
    let mut seen: Vec<(String, i64)> = Vec::new();
    // (For a failure's message: each node's readings as they changed, seconds since the run phase began.)
    let (began, mut timeline) = (Instant::now(), Vec::new());
    while run.child.try_wait().unwrap().is_none() {
        for i in 0..3 {
            let node = format!("n{}", i + 1);
            let off = node_clock_offset_s(&lab, i);
            if let Some(o) = off {
                seen.push((node.clone(), o));
            }
            let last = timeline
                .iter()
                .rev()
                .find(|(_, n, _)| *n == node)
                .map(|(_, _, o)| *o);
            if last != Some(off) {
                timeline.push((began.elapsed().as_secs_f32(), node, off));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, out, err) = run.finish(Duration::from_secs(120));
    assert_eq!(
        ssh_leftovers(&lab, &run_dir),
        Vec::<String>::new(),
        "{}",
        teardown(&run_dir)
    );
    assert_eq!(status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    // Each node's control file was in the run's folder on its host, and recorded.
    let files: Vec<String> = read_state(&run_dir.join("state.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Resource::SshFile { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    // The clock faults the history records: (node, offset in s) of every bump and strobe.
    let faults: Vec<(String, i64)> = history(&run_dir)
        .into_iter()
        .filter(|e| {
            e["process"] == "nemesis"
                && ["clock-bump", "clock-strobe"].contains(&e["f"].as_str().unwrap_or(""))
        })
        .map(|e| {
            (
                e["value"]["node"].as_str().unwrap().to_string(),
                e["value"]["offset_ms"].as_i64().unwrap() / 1000,
            )
        })
        .collect();
    assert!(!faults.is_empty(), "no clock fault in 30 s: {err}");
    // The nodes saw them: some node's own clock was off (offsets are 10-100 % of 60 s, so at least 6 s), and
    // every reading that was off is explained by that node's recorded faults: it lies within the hull of 0 and
    // the node's offsets (±2 s: whole seconds, and libfaketime re-reads the offset once a second, so a reading
    // may still show the offset before a change). Faults every 3 s on average over 30 s: a fault must stay in
    // force past that one-second re-read to be seen, and most do.
    let off: Vec<&(String, i64)> = seen.iter().filter(|(_, o)| o.abs() >= 4).collect();
    assert!(
        !off.is_empty(),
        "no node's clock moved; faults {faults:?}; {} readings: {timeline:?}\nnemesis: {}",
        seen.len(),
        nemesis_events(&run_dir)
    );
    for (node, o) in &off {
        let mine = faults.iter().filter(|(n, _)| n == node).map(|(_, f)| *f);
        let (lo, hi) = mine.fold((0, 0), |(lo, hi), f| (lo.min(f), hi.max(f)));
        assert!(
            (lo - 2..=hi + 2).contains(o),
            "{node} was {o} s off, which no clock fault of it explains: {faults:?}\nreadings: {timeline:?}\n\
             nemesis: {}",
            nemesis_events(&run_dir)
        );
    }
    // Every clock fault ended with a reset (the heal resets those the schedule left).
    let names: Vec<String> = history(&run_dir)
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .map(|e| e["f"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        names.iter().filter(|f| f.as_str() == "clock-reset").count(),
        names
            .iter()
            .filter(|f| ["clock-bump", "clock-strobe"].contains(&f.as_str()))
            .count(),
        "every clock fault ends with a reset: {names:?}"
    );
}

#[test]
fn membership_faults_on_ssh_hosts_add_the_spare_hosts() {
    assert!(is_root(), "the ssh lab needs root (CI runs as root)");
    // 3 members and 1 spare (nemesis::membership::spare_count(3)): one node per host.
    let (lab, hosts, store) = lab_and_store(4);
    let extra = [
        "--nemesis",
        "member",
        "--nemesis-interval",
        "2",
        "--time-limit",
        "20",
    ];
    let run = valid_ssh_run(&lab, &hosts, store.path(), &extra, Duration::from_secs(240));
    let nemesis: Vec<serde_json::Value> = history(&run)
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .collect();
    let f = |name: &str| nemesis.iter().filter(|e| e["f"] == name).count();
    assert!(f("member-request") > 0, "no membership change asked: {nemesis:?}");
    assert!(
        f("member-ok") > 0,
        "no membership change acknowledged: {nemesis:?}"
    );
    // The spare host really ran a node: its process was started there over SSH.
    let on_spare = read_state(&run.join("state.jsonl"))
        .unwrap()
        .into_iter()
        .any(|r| matches!(r, Resource::SshProcess { host: 3, .. }));
    let grew = nemesis.iter().any(|e| {
        e["f"] == "member-ok"
            && e["value"]["members"]
                .as_array()
                .is_some_and(|m| m.iter().any(|x| x == "n4"))
    });
    assert_eq!(
        on_spare, grew,
        "n4 joined iff it was started on host 4: {nemesis:?}"
    );
}
