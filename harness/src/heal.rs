//! Removing what a run created: the tear-down of every run, and `faultline heal` after a killed harness.
//!
//! Both read the same list of [`Resource`]s (the run's state file) and undo them in a safe order: the ssh
//! backend's hosts first (over SSH: node processes, logs fetched, chains, the run's folder; see
//! `crate::ssh::heal`), then local node processes (only ours: same PID *and* start time), then lazyfs mounts, the nemesis's iptables chains, our own
//! chains, namespaces, veths, the bridge, the subnet claim. Idempotent: what is already gone is skipped.

use crate::state::{read_state, Resource, STATE_FILE};
use crate::{sys, HarnessError};
use nix::sys::signal::Signal;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a heal did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealReport {
    /// Node processes that were still running and were stopped.
    pub processes_stopped: Vec<String>,
    /// Namespaces, links, chains and claims removed.
    pub removed: Vec<String>,
    /// What could not be removed (each with the reason).
    pub errors: Vec<String>,
}

impl HealReport {
    /// Nothing was left to remove.
    pub fn was_clean(&self) -> bool {
        self.processes_stopped.is_empty() && self.removed.is_empty() && self.errors.is_empty()
    }
}

/// Heals a run folder from its state file. Refuses while the run's harness is still running, unless `force`.
pub fn heal_run(run_dir: &Path, force: bool) -> Result<HealReport, HarnessError> {
    let path = run_dir.join(STATE_FILE);
    if !path.exists() {
        return Err(HarnessError::BadInput(format!(
            "{}: no state file: not a faultline run folder, or a run that created nothing",
            path.display()
        )));
    }
    let resources = read_state(&path).map_err(HarnessError::io(format!("reading {}", path.display())))?;
    for r in &resources {
        if let Resource::Run {
            harness_pid,
            harness_start_time,
            ..
        } = r
        {
            let me = std::process::id() == *harness_pid;
            if !force
                && !me
                && *harness_start_time != 0
                && sys::is_ours_and_alive(*harness_pid as i32, *harness_start_time)
            {
                return Err(HarnessError::BadInput(format!(
                    "{}: the run is still going (faultline pid {harness_pid}): stop it with SIGINT, which tears \
                     down, or heal anyway with --force",
                    run_dir.display()
                )));
            }
        }
    }
    let nodes = run_dir.join("nodes");
    Ok(heal_resources_with(
        &resources,
        Signal::SIGKILL,
        Duration::ZERO,
        None,
        Some(&nodes),
    ))
}

/// Undoes `resources`. Node processes get `signal` first, then SIGKILL after `grace`.
pub fn heal_resources(resources: &[Resource], signal: Signal, grace: Duration) -> HealReport {
    heal_resources_with(resources, signal, grace, None, None)
}

/// [`heal_resources`], with the ssh backend's `live` connections when the run still has them, and `collect`:
/// where the remote nodes' logs and data listings are downloaded before their folders go.
pub fn heal_resources_with(
    resources: &[Resource],
    signal: Signal,
    grace: Duration,
    live: Option<&crate::ssh::Remotes>,
    collect: Option<&Path>,
) -> HealReport {
    let mut report = HealReport::default();
    // 0. Remote hosts (ssh backend): their processes, chains and folders, over SSH.
    let sig = signal.as_str().trim_start_matches("SIG");
    crate::ssh::heal(resources, live, sig, grace, collect, &mut report);
    // 1. Processes, 2. lazyfs mounts over data directories (their users are gone then).
    stop_processes(resources, signal, grace, &mut report);
    unmount_lazyfs(resources, &mut report);
    // 3. The nemesis's chains (on the local backend they live in the host namespace).
    heal_nemesis_chains(resources, &mut report);
    // 4. Network: our chains, then namespaces (which takes their veth ends along), veths, bridges, claims.
    heal_network(resources, &mut report);
    report
}

/// Signals every live process of `resources` first (SIGCONT, then `signal`), waits up to `grace` for all
/// together, then SIGKILLs what is left.
fn stop_processes(resources: &[Resource], signal: Signal, grace: Duration, report: &mut HealReport) {
    let procs: Vec<(&str, i32, u64)> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::Process {
                node,
                pid,
                start_time,
            } => Some((node.as_str(), *pid, *start_time)),
            _ => None,
        })
        .collect();
    let live: Vec<_> = procs
        .iter()
        .filter(|(_, pid, st)| sys::is_ours_and_alive(*pid, *st))
        .collect();
    for (node, pid, _) in &live {
        // A paused node does not act on SIGTERM until resumed.
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(*pid), Signal::SIGCONT);
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(*pid), signal);
        report.processes_stopped.push(format!("{node} (pid {pid})"));
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && live.iter().any(|(_, pid, st)| sys::is_ours_and_alive(*pid, *st)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (_, pid, st) in &procs {
        sys::stop_group(*pid, *st, Signal::SIGKILL, Duration::ZERO);
    }
    for (node, pid, st) in &live {
        if sys::is_ours_and_alive(*pid, *st) {
            report
                .errors
                .push(format!("{node} (pid {pid}) is still running after SIGKILL"));
        }
    }
}

/// Detaches the lazyfs mounts of `resources`, newest first.
fn unmount_lazyfs(resources: &[Resource], report: &mut HealReport) {
    for r in resources.iter().rev() {
        if let Resource::Mount { path, .. } = r {
            match lazyfs::unmount_stale(Path::new(path)) {
                Ok(true) => report.removed.push(format!("lazyfs mount {path}")),
                Ok(false) => {}
                Err(e) => report.errors.push(e.to_string()),
            }
        }
    }
}

/// Removes the nemesis's chains and cgroups of each run recorded in `resources` (once per run).
fn heal_nemesis_chains(resources: &[Resource], report: &mut HealReport) {
    let mut healed_runs = std::collections::BTreeSet::new();
    for r in resources {
        if let Resource::NemesisRun { run_id, namespaces } = r {
            if !healed_runs.insert((run_id, namespaces)) {
                continue;
            }
            match crate::deployment::heal_nemesis(run_id, namespaces) {
                Ok(removed) => report.removed.extend(removed),
                Err(e) => report.errors.push(format!("nemesis chains of {run_id}: {e}")),
            }
        }
    }
}

/// Removes the harness's network resources: its chains, then namespaces (which takes their veth ends
/// along), veths, bridges (each kind newest first), and the subnet claims.
fn heal_network(resources: &[Resource], report: &mut HealReport) {
    let mut note = |what: String, res: Result<bool, HarnessError>| match res {
        Ok(true) => report.removed.push(what),
        Ok(false) => {}
        Err(e) => report.errors.push(format!("{what}: {e}")),
    };
    for r in resources.iter().rev() {
        if let Resource::Chain { table, chain, from } = r {
            let existed = sys::chain_exists(table, chain);
            note(
                format!("iptables chain {chain}"),
                sys::delete_chain(table, chain, from).map(|_| existed),
            );
        }
    }
    for r in resources.iter().rev() {
        if let Resource::Netns { name } = r {
            let existed = sys::netns_exists(name);
            note(
                format!("namespace {name}"),
                sys::delete_netns(name).map(|_| existed),
            );
        }
    }
    for r in resources.iter().rev() {
        if let Resource::Veth { name } = r {
            let existed = sys::link_exists(name);
            note(format!("veth {name}"), sys::delete_link(name).map(|_| existed));
        }
    }
    for r in resources.iter().rev() {
        if let Resource::Bridge { name } = r {
            let existed = sys::link_exists(name);
            note(format!("bridge {name}"), sys::delete_link(name).map(|_| existed));
        }
    }
    for r in resources {
        if let Resource::SubnetClaim { path, subnet } = r {
            let p = Path::new(path);
            if p.exists() {
                note(
                    format!("claim of {subnet}"),
                    std::fs::remove_file(p)
                        .map(|_| true)
                        .map_err(HarnessError::io(p.display().to_string())),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heal_of_nothing_is_clean() {
        let r = heal_resources(&[], Signal::SIGTERM, Duration::ZERO);
        assert!(r.was_clean());
    }

    #[test]
    fn stops_our_process_group_but_not_a_recycled_pid() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let (st, _) = crate::state::proc_start_time(pid).unwrap();
        // A record with a wrong start time names some other process: left alone.
        let wrong = [Resource::Process {
            node: "n1".into(),
            pid,
            start_time: st + 1,
        }];
        let r = heal_resources(&wrong, Signal::SIGTERM, Duration::from_millis(100));
        assert!(r.processes_stopped.is_empty());
        assert!(sys::is_ours_and_alive(pid, st));
        let right = [Resource::Process {
            node: "n1".into(),
            pid,
            start_time: st,
        }];
        let r = heal_resources(&right, Signal::SIGTERM, Duration::from_secs(5));
        assert_eq!(r.processes_stopped.len(), 1, "{r:?}");
        child.wait().unwrap();
        // Idempotent.
        let r = heal_resources(&right, Signal::SIGTERM, Duration::from_secs(5));
        assert!(r.was_clean(), "{r:?}");
    }
}
