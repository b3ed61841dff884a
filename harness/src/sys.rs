//! Small synchronous wrappers around `ip`, `iptables` and signals. Every call is an argument array, never a
//! shell string; every failure carries the command and its stderr.

use crate::HarnessError;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs a program and returns its stdout, or an error with its stderr.
pub fn run(args: &[&str]) -> Result<String, HarnessError> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| HarnessError::System {
            command: args.join(" "),
            reason: format!("cannot start: {e}"),
        })?;
    if !out.status.success() {
        return Err(HarnessError::System {
            command: args.join(" "),
            reason: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether we run as root (the netns backend and iptables need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether a named network namespace exists.
pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Whether a network interface exists in the host namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether an iptables chain exists in the host namespace.
pub fn chain_exists(table: &str, chain: &str) -> bool {
    Command::new("iptables")
        .args(["-w", "-t", table, "-S", chain])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Removes a chain and every jump to it from `from`; fine when it is already gone.
pub fn delete_chain(table: &str, chain: &str, from: &str) -> Result<(), HarnessError> {
    // A jump may have been inserted more than once (never by us, but be thorough): delete until none is left.
    for _ in 0..16 {
        if run(&["iptables", "-w", "-t", table, "-D", from, "-j", chain]).is_err() {
            break;
        }
    }
    if chain_exists(table, chain) {
        run(&["iptables", "-w", "-t", table, "-F", chain])?;
        run(&["iptables", "-w", "-t", table, "-X", chain])?;
    }
    Ok(())
}

/// Deletes a namespace if it exists.
pub fn delete_netns(name: &str) -> Result<(), HarnessError> {
    if netns_exists(name) {
        run(&["ip", "netns", "del", name])?;
    }
    Ok(())
}

/// Deletes a link if it exists (deleting one end of a veth pair removes both).
pub fn delete_link(name: &str) -> Result<(), HarnessError> {
    if link_exists(name) {
        if let Err(e) = run(&["ip", "link", "del", name]) {
            // It may have vanished in between (its namespace was deleted).
            if link_exists(name) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Whether `pid` is still the process we started (same start time) and not a zombie.
pub fn is_ours_and_alive(pid: i32, start_time: u64) -> bool {
    matches!(crate::state::proc_start_time(pid), Some((t, false)) if t == start_time)
}

/// Stops a node's process group: `signal`, then SIGKILL after `grace`. Only if `pid` still has `start_time`.
/// Returns once the leader is gone (or a zombie waiting to be reaped by its parent).
pub fn stop_group(pid: i32, start_time: u64, signal: Signal, grace: Duration) {
    match crate::state::proc_start_time(pid) {
        // Alive and ours: stop it gracefully below.
        Some((t, false)) if t == start_time => {}
        // Gone, or a zombie of ours: members of its group may remain. A pid cannot be reused while a process
        // group of that id exists, so the group is still ours.
        None => {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            return;
        }
        Some((t, true)) if t == start_time => {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            return;
        }
        // The pid now belongs to another process: not ours, leave it alone.
        Some(_) => return,
    }
    let _ = killpg(Pid::from_raw(pid), signal);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_ours_and_alive(pid, start_time) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(Pid::from_raw(pid), Signal::SIGCONT);
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && is_ours_and_alive(pid, start_time) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The IPv4 networks routed in the host namespace (`a.b.c.d/len`), to avoid picking a subnet in use.
pub fn host_routes() -> Vec<(u32, u8)> {
    let out = run(&["ip", "-4", "route", "show", "table", "all"]).unwrap_or_default();
    let mut nets = Vec::new();
    for line in out.lines() {
        let mut w = line.split_whitespace();
        let mut first = w.next().unwrap_or("");
        if matches!(
            first,
            "local" | "broadcast" | "unicast" | "multicast" | "blackhole" | "unreachable"
        ) {
            first = w.next().unwrap_or("");
        }
        if first == "default" {
            continue;
        }
        let (addr, len) = first.split_once('/').unwrap_or((first, "32"));
        if let (Ok(a), Ok(l)) = (addr.parse::<std::net::Ipv4Addr>(), len.parse::<u8>()) {
            nets.push((u32::from(a), l.min(32)));
        }
    }
    nets
}

/// Whether two IPv4 networks overlap.
pub fn overlaps(a: (u32, u8), b: (u32, u8)) -> bool {
    let len = a.1.min(b.1);
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    };
    a.0 & mask == b.0 & mask
}
