//! The ssh backend: nodes on real hosts reached over SSH, one node per host (`--backend ssh --hosts FILE`).
//!
//! - `hosts.rs`: the hosts file, checked field by field.
//! - `install.rs`: the spec's `[install]` (files uploaded unless the host has the same SHA-256, commands).
//! - `remote.rs`: multiplexed connections (`openssh`), commands as argument arrays with timeouts.
//! - here: what the deployment does on a host (start a node and learn its PID and start time, signal its
//!   process group only while that PID still has that start time, remove the run's folder, download logs) and
//!   the heal of every `Ssh*` record of a state file, used by the tear-down and by `faultline heal`.
//!
//! Every script run remotely is a constant of this file; what varies (paths, numbers, the node's command)
//! goes in as separate, quoted arguments (`sh -c SCRIPT NAME ARG...`), never pasted into the script.

pub mod hosts;
pub mod install;
pub mod remote;

pub use hosts::{HostsFile, SshHost};
pub use remote::{Output, Remotes, COMMAND_TIMEOUT};

use crate::heal::HealReport;
use crate::state::Resource;
use crate::HarnessError;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Starts `$@` in a new session (so it leads its own process group) in the data folder `$1`, output appended
/// to `$2`; prints its PID and its `/proc/PID/stat`.
const START: &str = r#"mkdir -p "$1" && cd "$1" || exit 97
log=$2; shift 2
echo "=== faultline: starting $*" >>"$log"
setsid "$@" </dev/null >>"$log" 2>&1 &
pid=$!
echo "$pid"
cat "/proc/$pid/stat""#;

/// Sends signal `$3` to process group `$1` if process `$1` is alive with start time `$2` (exit 3 if not); `$3 =
/// none` only checks.
const SIGNAL: &str = r#"s=$(cat "/proc/$1/stat" 2>/dev/null) || exit 3
s=${s##*) }
pid=$1; want=$2; sig=$3
set -- $s
[ "${20}" = "$want" ] || exit 3
case $1 in Z|X) exit 3;; esac
[ "$sig" = none ] && exit 0
kill -s "$sig" -- "-$pid""#;

/// Looks for libfaketime at `$3...` (the first that exists), then creates the control file `$1` holding `$2`
/// (a zero offset); prints the library's path. Exit 4: none of them exists.
const FAKETIME_SETUP: &str = r#"f=$1; spec=$2; shift 2
for lib; do
  if [ -e "$lib" ]; then printf '%s\n' "$spec" >"$f" && echo "$lib"; exit; fi
done
exit 4"#;

/// Replaces the libfaketime control file `$1` by one holding `$2` (written aside, then renamed: the node never
/// reads half a file).
const SET_CLOCK: &str = r#"printf '%s\n' "$2" >"$1.tmp" && mv -f -- "$1.tmp" "$1""#;

/// Exit status of [`FAKETIME_SETUP`] when the host has no libfaketime.
const NO_FAKETIME: i32 = 4;

/// Exit status of [`SIGNAL`] when the process is gone (or is not ours).
const GONE: i32 = 3;

fn sh(script: &str, name: &str, args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v = vec![
        "sh".to_string(),
        "-c".to_string(),
        script.to_string(),
        name.to_string(),
    ];
    v.extend(args);
    v
}

/// What `--backend ssh` was given.
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub hosts: HostsFile,
    /// `--accept-new-host-keys`: a host not yet in known_hosts is added (a changed key is still refused).
    pub accept_new: bool,
}

/// Connects to the first `n` hosts, each recorded in `state` first, and creates the run's folder on each
/// (recorded too, with the chains the nemesis may add there).
pub fn connect_hosts(
    state: &crate::state::StateFile,
    o: &SshOptions,
    n: usize,
    run_id: &str,
) -> Result<Remotes, HarnessError> {
    if o.hosts.hosts.len() < n {
        return Err(HarnessError::BadInput(format!(
            "--hosts {}: lists {} hosts, the run needs {n} (one node per host, spares included)",
            o.hosts.origin,
            o.hosts.hosts.len()
        )));
    }
    let hosts = &o.hosts.hosts[..n];
    let rec = |r: Resource| {
        state
            .record(&r)
            .map_err(HarnessError::io("writing the state file"))
    };
    for (index, h) in hosts.iter().enumerate() {
        rec(Resource::SshHost {
            index,
            host: h.clone(),
            known_hosts: o.hosts.known_hosts.display().to_string(),
        })?;
    }
    let remotes = Remotes::connect(hosts, &o.hosts.known_hosts, o.accept_new)?;
    for (i, h) in hosts.iter().enumerate() {
        let dir = run_dir(h, run_id);
        rec(Resource::SshDir {
            host: i,
            path: dir.display().to_string(),
        })?;
        rec(Resource::SshChains {
            host: i,
            run_id: run_id.to_string(),
        })?;
        remotes.run_ok(
            i,
            &[
                "mkdir".into(),
                "-p".into(),
                "--".into(),
                dir.display().to_string(),
            ],
            COMMAND_TIMEOUT,
        )?;
    }
    Ok(remotes)
}

/// `argv` with `sudo -n` in front when the host wants it.
pub fn privileged(h: &SshHost, argv: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    if h.sudo {
        v.extend(["sudo".to_string(), "-n".to_string(), "--".to_string()]);
    }
    v.extend(argv.iter().cloned());
    v
}

/// The run's folder on a host.
pub fn run_dir(h: &SshHost, run_id: &str) -> std::path::PathBuf {
    h.dir.join(run_id)
}

/// Starts a node on host `i`: `argv` with `env` in data folder `data_dir`, output to `log`. Returns its PID
/// and start time.
pub fn start(
    r: &Remotes,
    i: usize,
    data_dir: &Path,
    log: &Path,
    env: &[(String, String)],
    argv: &[String],
) -> Result<(i32, u64), HarnessError> {
    let mut args = vec![data_dir.display().to_string(), log.display().to_string()];
    if !env.is_empty() {
        args.push("env".into());
        args.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    }
    args.extend(argv.iter().cloned());
    // Longer than other commands: a start on a loaded host must not time out here while it goes on there.
    let out = r.run_ok(i, &sh(START, "faultline-start", args), Duration::from_secs(30))?;
    let text = out.stdout_text();
    let mut lines = text.lines();
    let pid: Option<i32> = lines.next().and_then(|l| l.trim().parse().ok());
    let start = lines.next().and_then(crate::state::parse_proc_stat);
    match (pid, start) {
        (Some(pid), Some((st, _))) => Ok((pid, st)),
        (Some(pid), None) => Err(HarnessError::Setup(format!(
            "{}: the node (pid {pid}) exited at once; see its log {}",
            r.hosts()[i].label(),
            log.display()
        ))),
        _ => Err(HarnessError::Ssh {
            host: r.hosts()[i].label(),
            reason: format!(
                "starting {}: unexpected answer {:?}",
                argv[0],
                remote::one_line(&text)
            ),
        }),
    }
}

/// Prepares a node on host `i` for clock faults: finds libfaketime there (`LD_PRELOAD` is resolved on the
/// host, so it is looked up there, among [`nemesis::clock::CANDIDATES`]) and creates the control file `file`
/// (in the run's folder) with a zero offset, in one command. Returns the environment the node must be started
/// with. A host without libfaketime fails the run, naming the host.
pub fn faketime_env(r: &Remotes, i: usize, file: &Path) -> Result<Vec<(String, String)>, HarnessError> {
    let mut args = vec![file.display().to_string(), nemesis::clock::offset_spec(0)];
    args.extend(nemesis::clock::CANDIDATES.iter().map(|c| c.to_string()));
    let out = r.run(
        i,
        &sh(FAKETIME_SETUP, "faultline-faketime", args),
        COMMAND_TIMEOUT,
    )?;
    let host = r.hosts()[i].label();
    match out.status {
        Some(0) => {
            let lib = out.stdout_text().trim().to_string();
            Ok(nemesis::clock::faketime_vars(Path::new(&lib), file))
        }
        Some(NO_FAKETIME) => Err(HarnessError::Ssh {
            host,
            reason: format!(
                "--nemesis clock needs libfaketime on the host, found at none of {} (Debian: apt-get install \
                 libfaketime)",
                nemesis::clock::CANDIDATES.join(", ")
            ),
        }),
        _ => Err(HarnessError::Ssh {
            host,
            reason: format!("creating {}: {}", file.display(), out.stderr_line()),
        }),
    }
}

/// Sets the clock offset of the node on host `i` whose libfaketime control file is `file`: one command over
/// the host's multiplexed connection (the node re-reads the file within a second).
pub async fn set_clock(r: &Remotes, i: usize, file: &Path, offset_ms: i64) -> Result<(), HarnessError> {
    let argv = sh(
        SET_CLOCK,
        "faultline-clock",
        [file.display().to_string(), nemesis::clock::offset_spec(offset_ms)],
    );
    let out = r.run_async(i, &argv, COMMAND_TIMEOUT).await?;
    if out.success() {
        return Ok(());
    }
    Err(HarnessError::Ssh {
        host: r.hosts()[i].label(),
        reason: format!("writing {}: {}", file.display(), out.stderr_line()),
    })
}

/// Signals process group `pid` on host `i` if `pid` still has `start_time`. `Ok(false)`: it is gone.
pub fn signal(r: &Remotes, i: usize, pid: i32, start_time: u64, sig: &str) -> Result<bool, HarnessError> {
    let out = r.run(i, &signal_argv(pid, start_time, sig), COMMAND_TIMEOUT)?;
    signal_result(r, i, &out)
}

/// [`signal`] from an async task.
pub async fn signal_async(
    r: &Remotes,
    i: usize,
    pid: i32,
    start_time: u64,
    sig: &str,
) -> Result<bool, HarnessError> {
    let out = r
        .run_async(i, &signal_argv(pid, start_time, sig), COMMAND_TIMEOUT)
        .await?;
    signal_result(r, i, &out)
}

fn signal_argv(pid: i32, start_time: u64, sig: &str) -> Vec<String> {
    sh(
        SIGNAL,
        "faultline-signal",
        [pid.to_string(), start_time.to_string(), sig.to_string()],
    )
}

fn signal_result(r: &Remotes, i: usize, out: &Output) -> Result<bool, HarnessError> {
    match out.status {
        Some(0) => Ok(true),
        Some(GONE) => Ok(false),
        _ => Err(HarnessError::Ssh {
            host: r.hosts()[i].label(),
            reason: format!("signalling a node: {}", out.stderr_line()),
        }),
    }
}

/// SIGKILLs a node's group and waits (up to 5 s) until it is gone.
pub fn kill(r: &Remotes, i: usize, pid: i32, start_time: u64) -> Result<(), HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while signal(r, i, pid, start_time, "KILL")? {
        if Instant::now() >= deadline {
            return Err(HarnessError::Ssh {
                host: r.hosts()[i].label(),
                reason: format!("pid {pid} still runs after SIGKILL"),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Refuses a path on host `i` that is not strictly below the host's `dir` (all that faultline removes there).
fn below_dir(r: &Remotes, i: usize, path: &Path) -> Result<(), HarnessError> {
    let h = &r.hosts()[i];
    if !path.starts_with(&h.dir) || path == h.dir {
        return Err(HarnessError::Ssh {
            host: h.label(),
            reason: format!(
                "refusing to remove {}: not below {}",
                path.display(),
                h.dir.display()
            ),
        });
    }
    Ok(())
}

/// Removes a folder of ours on host `i` (only below the host's `dir`).
pub fn remove_dir(r: &Remotes, i: usize, path: &Path) -> Result<bool, HarnessError> {
    below_dir(r, i, path)?;
    let p = path.display().to_string();
    let existed = r
        .run(i, &["test".into(), "-e".into(), p.clone()], COMMAND_TIMEOUT)?
        .success();
    if existed {
        r.run_ok(
            i,
            &["rm".into(), "-rf".into(), "--".into(), p],
            Duration::from_secs(60),
        )?;
    }
    Ok(existed)
}

/// Removes a file of ours on host `i` (only below the host's `dir`); `Ok(false)`: it was not there.
pub fn remove_file(r: &Remotes, i: usize, path: &Path) -> Result<bool, HarnessError> {
    below_dir(r, i, path)?;
    let out = r.run(
        i,
        &["rm".into(), "--".into(), path.display().to_string()],
        COMMAND_TIMEOUT,
    )?;
    Ok(out.success())
}

/// Whether a run folder recorded in `mine` holds `path`.
fn has_dir(mine: &[&Resource], path: &str) -> bool {
    mine.iter()
        .any(|r| matches!(r, Resource::SshDir { path: d, .. } if Path::new(path).starts_with(d)))
}

/// Copies a remote file's contents (when it exists) to `dst`.
pub fn download(r: &Remotes, i: usize, src: &Path, dst: &Path) -> Result<bool, HarnessError> {
    let out = r.run(
        i,
        &["cat".into(), "--".into(), src.display().to_string()],
        Duration::from_secs(60),
    )?;
    if !out.success() {
        return Ok(false);
    }
    std::fs::write(dst, &out.stdout).map_err(HarnessError::io(format!("writing {}", dst.display())))?;
    Ok(true)
}

/// Uploads `local` to `remote` on host `i` unless a file with the same SHA-256 is already there (`Ok(false)`:
/// nothing sent). The copy goes to a temporary name, then is renamed, and is made executable.
pub fn upload(r: &Remotes, i: usize, local: &Path, remote: &Path) -> Result<bool, HarnessError> {
    install::send_if_changed(
        r,
        i,
        &install::LocalFile::read(local)?,
        remote,
        Duration::from_secs(120),
    )
}

/// Removes the nemesis's chains of `run_id` on host `i` (jumps first, then the chain; nothing else).
pub fn remove_chains(r: &Remotes, i: usize, run_id: &str) -> Result<Vec<String>, HarnessError> {
    let h = &r.hosts()[i];
    let chain = nemesis::chain_name(run_id);
    let listing = r.run_ok(i, &privileged(h, &nemesis::iptables(&["-S"])), COMMAND_TIMEOUT)?;
    let mut removed = Vec::new();
    for argv in nemesis::removal_commands(&listing.stdout_text(), |c| c == chain) {
        r.run_ok(i, &privileged(h, &argv), COMMAND_TIMEOUT)?;
        if argv[2] == "-X" {
            removed.push(format!("{}: iptables chain {}", h.label(), argv[3]));
        }
    }
    Ok(removed)
}

/// Heals every `Ssh*` record: on each host, stops the node processes that are still ours (`signal`, then
/// SIGKILL after `grace`), downloads the nodes' logs and data listings into `collect` (a run's `nodes/`
/// folder) when given, removes the nemesis's chains and the run's folder. Uses `live` connections when the
/// run still has them, else connects to each host again (host keys checked strictly); a host that cannot be
/// reached is reported and the others are still healed.
pub fn heal(
    resources: &[Resource],
    live: Option<&Remotes>,
    signal: &str,
    grace: Duration,
    collect: Option<&Path>,
    report: &mut HealReport,
) {
    let mut hosts: BTreeMap<usize, (SshHost, String)> = BTreeMap::new();
    for r in resources {
        if let Resource::SshHost {
            index,
            host,
            known_hosts,
        } = r
        {
            hosts.insert(*index, (host.clone(), known_hosts.clone()));
        }
    }
    for (index, (host, known)) in hosts {
        let own;
        // Records name hosts by their index in the hosts file, which is their index in `live` too.
        let (remotes, i) = match live {
            // A lost connection is tried again from scratch (the host may be back; if not, this fails fast).
            Some(r) if index < r.hosts().len() && r.lost_reason(index).is_none() => (r, index),
            _ => match Remotes::connect(std::slice::from_ref(&host), Path::new(&known), false) {
                Ok(r) => {
                    own = r;
                    (&own, 0)
                }
                Err(e) => {
                    report
                        .errors
                        .push(format!("{e}: its nodes, chains and files are left"));
                    continue;
                }
            },
        };
        let mine: Vec<&Resource> = resources.iter().filter(|r| host_of(r) == Some(index)).collect();
        heal_host(&mine, remotes, i, signal, grace, collect, report);
    }
}

fn host_of(r: &Resource) -> Option<usize> {
    match r {
        Resource::SshDir { host, .. }
        | Resource::SshFile { host, .. }
        | Resource::SshProcess { host, .. }
        | Resource::SshChains { host, .. } => Some(*host),
        _ => None,
    }
}

/// Heals one host: its processes, then (logs fetched) its chains and its run folder.
fn heal_host(
    mine: &[&Resource],
    remotes: &Remotes,
    i: usize,
    signal: &str,
    grace: Duration,
    collect: Option<&Path>,
    report: &mut HealReport,
) {
    stop_processes(mine, remotes, i, signal, grace, report);
    if let Some(dir) = collect {
        collect_files(mine, remotes, i, dir);
    }
    for r in mine {
        match r {
            Resource::SshChains { run_id, .. } => match remove_chains(remotes, i, run_id) {
                Ok(removed) => report.removed.extend(removed),
                Err(e) => report.errors.push(e.to_string()),
            },
            // A file inside a run folder is removed with it: alone only when no folder is recorded.
            Resource::SshFile { path, .. } if !has_dir(mine, path) => {
                match remove_file(remotes, i, Path::new(path)) {
                    Ok(true) => report
                        .removed
                        .push(format!("{}: {path}", remotes.hosts()[i].label())),
                    Ok(false) => {}
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
            Resource::SshDir { path, .. } => match remove_dir(remotes, i, Path::new(path)) {
                Ok(true) => report
                    .removed
                    .push(format!("{}: {path}", remotes.hosts()[i].label())),
                Ok(false) => {}
                Err(e) => report.errors.push(e.to_string()),
            },
            _ => {}
        }
    }
}

fn stop_processes(
    mine: &[&Resource],
    remotes: &Remotes,
    i: usize,
    sig: &str,
    grace: Duration,
    report: &mut HealReport,
) {
    let mut live = Vec::new();
    for r in mine {
        if let Resource::SshProcess {
            node,
            pid,
            start_time,
            ..
        } = r
        {
            // A paused node does not act on SIGTERM until resumed.
            match signal(remotes, i, *pid, *start_time, "CONT").and_then(|alive| {
                if alive {
                    signal(remotes, i, *pid, *start_time, sig)
                } else {
                    Ok(false)
                }
            }) {
                Ok(true) => {
                    report
                        .processes_stopped
                        .push(format!("{node} (pid {pid} on {})", remotes.hosts()[i].label()));
                    live.push((node, *pid, *start_time));
                }
                Ok(false) => {}
                Err(e) => report.errors.push(format!("{node}: {e}")),
            }
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline
        && live
            .iter()
            .any(|(_, pid, st)| signal(remotes, i, *pid, *st, "none").unwrap_or(false))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (node, pid, st) in live {
        if let Err(e) = kill(remotes, i, pid, st) {
            report.errors.push(format!("{node}: {e}"));
        }
    }
}

/// Downloads each started node's log and a listing of its data folder into `dir` (`<id>.log`,
/// `<id>.data.txt`).
fn collect_files(mine: &[&Resource], remotes: &Remotes, i: usize, dir: &Path) {
    let Some(base) = mine.iter().find_map(|r| match r {
        Resource::SshDir { path, .. } => Some(path.clone()),
        _ => None,
    }) else {
        return;
    };
    let mut done = std::collections::BTreeSet::new();
    for r in mine {
        let Resource::SshProcess { node, .. } = r else {
            continue;
        };
        if !done.insert(node.clone()) {
            continue;
        }
        let base = Path::new(&base);
        let _ = std::fs::create_dir_all(dir);
        let _ = download(
            remotes,
            i,
            &base.join(format!("{node}.log")),
            &dir.join(format!("{node}.log")),
        );
        let listing = [
            "ls".to_string(),
            "-lR".into(),
            "--".into(),
            base.join(node).display().to_string(),
        ];
        if let Ok(out) = remotes.run(i, &listing, COMMAND_TIMEOUT) {
            let _ = std::fs::write(dir.join(format!("{node}.data.txt")), out.stdout);
        }
    }
}
