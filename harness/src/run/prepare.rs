//! Phase **prepare**: everything the run needs is checked and built before anything exists (the spec, the
//! client protocol, the workload, the backend, the limits, the faults and the schedule). Any error here is
//! the user's input (exit 254).

use super::RunConfig;
use crate::spec::LoadedSpec;
use crate::{Backend, HarnessError};
use nemesis::{FaultSet, Schedule, ScheduleOptions};
use std::sync::Arc;
use workloads::{Protocol, Workload};

/// What `prepare` checked and built.
pub(crate) struct Prepared {
    pub spec: Arc<LoadedSpec>,
    pub backend: Backend,
    pub workload: Workload,
    pub protocol: Protocol,
    pub faults: FaultSet,
    pub schedule_opts: ScheduleOptions,
    /// The fault schedule, drawn once here: the run follows exactly this.
    pub schedule: Schedule,
    pub seed: u64,
    pub name: String,
}

fn bad(msg: impl Into<String>) -> HarnessError {
    HarnessError::BadInput(msg.into())
}

pub(crate) fn prepare(c: &RunConfig) -> Result<Prepared, HarnessError> {
    let spec = &c.spec;
    let workload: Workload = spec.pick_workload(c.workload.as_deref())?;
    let protocol = client_protocol(spec)?;
    let faults = FaultSet::parse(&c.nemesis).map_err(|e| bad(format!("--nemesis: {e}")))?;
    let backend = choose_backend(c, &faults)?;
    if backend != Backend::External {
        crate::spec::resolve_program(spec)?;
    }
    check_limits(c)?;
    check_faults(spec, &faults, backend)?;
    if backend == Backend::Ssh {
        check_ssh(c, &faults)?;
        crate::spec::resolve_install(spec)?;
    }
    let seed = c.seed.unwrap_or_else(|| {
        use rand::Rng;
        rand::thread_rng().gen_range(0..1_000_000)
    });
    let mut schedule_opts = ScheduleOptions::new(c.time_limit);
    if let Some(i) = c.nemesis_interval {
        schedule_opts.interval = i;
    }
    schedule_opts.max_dead = c.max_dead;
    schedule_opts.leader_probe = spec.spec.leader.is_some();
    let node_ids: Vec<String> = (1..=c.nodes).map(|i| format!("n{i}")).collect();
    let schedule = Schedule::generate(seed, &node_ids, &faults, &schedule_opts)
        .map_err(|e| bad(format!("--nemesis: {e}")))?;
    let name = c
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", spec.spec.name, workload.name()));
    Ok(Prepared {
        spec: Arc::new(spec.clone()),
        backend,
        workload,
        protocol,
        faults,
        schedule_opts,
        schedule,
        seed,
        name,
    })
}

/// The spec's `[client]` table as a protocol, or a spec error naming the table's line.
fn client_protocol(spec: &LoadedSpec) -> Result<Protocol, HarnessError> {
    // The spec was checked when it was read (every rule, with its line); this reads it again.
    let protocol = spec.protocol()?;
    protocol.validate().map_err(|e| {
        HarnessError::Spec(crate::SpecError {
            file: spec.origin.clone(),
            line: None,
            field: String::new(),
            reason: e.to_string(),
        })
    })?;
    Ok(protocol)
}

/// `--backend`, the spec's `[external]` nodes and root decide where the nodes run.
fn choose_backend(c: &RunConfig, faults: &FaultSet) -> Result<Backend, HarnessError> {
    let origin = &c.spec.origin;
    if c.spec.spec.external.is_some() {
        if c.backend.is_some_and(|b| b != Backend::External) {
            return Err(bad(format!(
                "--backend: {origin} lists [external] nodes, which run elsewhere; drop --backend"
            )));
        }
        if !faults.is_empty() {
            return Err(bad(format!(
                "--nemesis: {origin} lists [external] nodes, which faultline does not control: no faults"
            )));
        }
        return Ok(Backend::External);
    }
    let root = nix::unistd::geteuid().is_root();
    match c.backend {
        Some(Backend::External) => Err(bad("--backend external: the spec must list [external] nodes")),
        Some(Backend::Ssh) if c.ssh.is_none() => Err(bad("--backend ssh: needs --hosts FILE")),
        None if c.ssh.is_some() => Ok(Backend::Ssh),
        Some(Backend::Netns) if !root => Err(bad(
            "--backend netns needs root (namespaces, a bridge, iptables); use --backend local",
        )),
        Some(b) => Ok(b),
        None if root => Ok(Backend::Netns),
        None => Ok(Backend::Local),
    }
}

fn check_limits(c: &RunConfig) -> Result<(), HarnessError> {
    if c.nodes == 0 || c.nodes > 50 {
        return Err(bad(format!("--nodes {}: must be 1..=50", c.nodes)));
    }
    if c.concurrency == 0 || c.concurrency > 10_000 {
        return Err(bad(format!("--concurrency {}: must be 1..=10000", c.concurrency)));
    }
    if let Some(r) = c.rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(bad(format!(
                "--rate {r}: must be a positive number of operations per second"
            )));
        }
    }
    if c.time_limit.is_zero() {
        return Err(bad("--time-limit: must be more than 0 s"));
    }
    Ok(())
}

/// Faults this machine or this spec cannot do are refused before anything starts.
fn check_faults(spec: &LoadedSpec, faults: &FaultSet, backend: Backend) -> Result<(), HarnessError> {
    // On the ssh backend the rules go on the hosts (as root there, or through sudo).
    if faults.touches_network() && backend != Backend::Ssh && !nix::unistd::geteuid().is_root() {
        return Err(bad(
            "--nemesis: network faults (partitions, loss, delay) need root: they add iptables rules",
        ));
    }
    let aimed = faults.aimed_at_leader();
    if spec.spec.leader.is_none() && !aimed.is_empty() {
        return Err(bad(format!(
            "--nemesis {}: {} has no [leader] probe, so faults aimed at the leader cannot find it (add a \
             [leader] section, or choose other faults)",
            aimed.join(","),
            spec.origin
        )));
    }
    if faults.clock && !spec.spec.faketime {
        return Err(bad(format!(
            "--nemesis clock: {} says its nodes do not read the clock through libc (faketime = false), so \
             libfaketime cannot move their clocks",
            spec.origin
        )));
    }
    // On the ssh backend it is looked up on each host, where the nodes run.
    if faults.clock && backend != Backend::Ssh && nemesis::clock::libfaketime_path().is_none() {
        return Err(bad(
            "--nemesis clock: needs libfaketime, which is not installed (Debian: apt-get install libfaketime)",
        ));
    }
    if faults.lose_unsynced {
        check_durability(spec)?;
    }
    Ok(())
}

/// The ssh backend: enough hosts for the nodes and spares; `lose-unsynced`, which needs FUSE on this machine,
/// is refused.
fn check_ssh(c: &RunConfig, faults: &FaultSet) -> Result<(), HarnessError> {
    let Some(o) = &c.ssh else {
        return Err(bad("--backend ssh: needs --hosts FILE"));
    };
    let spares = if faults.member || faults.member_split {
        nemesis::membership::spare_count(c.nodes)
    } else {
        0
    };
    let need = c.nodes + spares;
    if o.hosts.hosts.len() < need {
        return Err(bad(format!(
            "--hosts {}: lists {} hosts, the run needs {need} ({} nodes{}; one node per host)",
            o.hosts.origin,
            o.hosts.hosts.len(),
            c.nodes,
            if spares > 0 {
                format!(" and {spares} spares")
            } else {
                String::new()
            }
        )));
    }
    if faults.lose_unsynced {
        return Err(bad(
            "--nemesis lose-unsynced: not on the ssh backend (lazyfs mounts are local)",
        ));
    }
    Ok(())
}

/// `lose-unsynced` needs the spec's opt-in (the data directories are mounted before the nodes start), root
/// and FUSE.
fn check_durability(spec: &LoadedSpec) -> Result<(), HarnessError> {
    if spec.spec.durability.is_none() {
        return Err(bad(format!(
            "--nemesis lose-unsynced: {} has no [durability] section (the data directories must be lazyfs \
             mounts before the nodes start; see docs/db-spec.md)",
            spec.origin
        )));
    }
    if spec.spec.external.is_some() {
        return Err(bad(
            "--nemesis lose-unsynced: external nodes' data directories are not faultline's to mount",
        ));
    }
    lazyfs::check_available().map_err(|e| bad(format!("--nemesis lose-unsynced: {e}")))?;
    if !nix::unistd::geteuid().is_root() {
        return Err(bad(
            "--nemesis lose-unsynced: needs root (lazyfs mounts with mount(2))",
        ));
    }
    Ok(())
}
