//! The run: the phases of a test, in order, with tear-down guaranteed.
//!
//! 1. **prepare** (nothing created yet): the spec, the client protocol, the workload, the faults and the
//!    schedule are all checked; any error here is the user's input (exit 254).
//! 2. **setup**: the run folder, the hosts, the node processes; wait until the spec's readiness probe passes.
//! 3. **run**: the clients and the nemesis, until the time limit.
//! 4. **heal**: stop the clients, undo every fault.
//! 5. **final-reads**: each key read until a read succeeds (or the recovery window passes).
//! 6. **teardown**: stop the nodes, remove namespaces, links and chains.
//! 7. **check**: linearizability, availability, stats; `results.json`.
//! 8. **report**: `report.html`, plots, the store index; the verdict.
//!
//! SIGINT, SIGTERM or SIGHUP at any point skips to the tear-down; a panic tears down through the cluster's
//! `Drop`; a `kill -9` leaves the state file for `faultline heal`. Each phase is announced on stderr as
//! `faultline: phase NAME` (tests use it to interrupt a run in a given phase).

use crate::deployment::{new_run_id, Deployment, DeploymentOptions};
use crate::spec::LoadedSpec;
use crate::state::{Resource, StateFile};
use crate::{Backend, HarnessError};
use checker::{CheckReport, EventType, Verdict};
use nemesis::{FaultSet, Schedule, ScheduleOptions};
use serde::Deserialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workloads::{Counters, DriveConfig, FinalReadConfig, Protocol, Recorder, Workload};

/// Everything a run needs, as the command line gives it.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub spec: LoadedSpec,
    /// `None`: netns when root, local otherwise.
    pub backend: Option<Backend>,
    pub workload: String,
    pub nodes: usize,
    pub concurrency: usize,
    /// Operations per second over all clients; `None` for as fast as the system answers.
    pub rate: Option<f64>,
    pub time_limit: Duration,
    /// `None`: drawn at random (and recorded).
    pub seed: Option<u64>,
    pub node_args: Vec<String>,
    /// `--nemesis`, e.g. `partition,kill`; empty or `none` for no faults.
    pub nemesis: String,
    pub nemesis_interval: Option<Duration>,
    /// At most this many nodes killed or paused at once (`None`: a minority).
    pub max_dead: Option<usize>,
    pub recovery_limit: Duration,
    pub store: PathBuf,
    /// Test name; default `<db>-<workload>`.
    pub name: Option<String>,
    /// Show the live progress line (only sensible when stderr is a terminal).
    pub progress: bool,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub verdict: Verdict,
    pub report: CheckReport,
    /// One paragraph for the terminal.
    pub summary: String,
}

impl RunOutcome {
    /// 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(&self) -> u8 {
        self.verdict.exit_code() as u8
    }
}

/// A run that did not complete, with the run folder when one was created.
#[derive(Debug)]
pub struct RunError {
    pub error: HarnessError,
    pub run_dir: Option<PathBuf>,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.run_dir {
            Some(d) => write!(f, "{} (run folder: {})", self.error, d.display()),
            None => write!(f, "{}", self.error),
        }
    }
}

impl std::error::Error for RunError {}

/// Announces a phase on stderr. For tests of the tear-down guarantee, `FAULTLINE_TEST_PANIC_IN=<phase>` makes
/// the harness panic as that phase begins.
fn phase(name: &str) {
    eprintln!("faultline: phase {name}");
    if std::env::var("FAULTLINE_TEST_PANIC_IN").is_ok_and(|p| p == name) {
        panic!("FAULTLINE_TEST_PANIC_IN={name}: panicking on purpose");
    }
}

/// What `prepare` checked and built, before anything exists.
struct Prepared {
    spec: Arc<LoadedSpec>,
    backend: Backend,
    workload: Workload,
    protocol: Protocol,
    faults: FaultSet,
    schedule_opts: ScheduleOptions,
    seed: u64,
    name: String,
}

fn bad(msg: impl Into<String>) -> HarnessError {
    HarnessError::BadInput(msg.into())
}

fn prepare(c: &RunConfig) -> Result<Prepared, HarnessError> {
    let spec = &c.spec;
    let workload: Workload = c.workload.parse().map_err(|e| bad(format!("--workload: {e}")))?;
    let protocol = Protocol::deserialize(toml::Value::Table(spec.spec.client.clone())).map_err(|e| {
        HarnessError::Spec(crate::SpecError {
            file: spec.origin.clone(),
            line: spec
                .text
                .lines()
                .position(|l| l.trim() == "[client]")
                .map(|i| i + 1),
            field: "client".into(),
            reason: e.to_string().trim().replace('\n', " "),
        })
    })?;
    protocol.validate().map_err(|e| {
        HarnessError::Spec(crate::SpecError {
            file: spec.origin.clone(),
            line: None,
            field: String::new(),
            reason: e.to_string(),
        })
    })?;
    let faults = FaultSet::parse(&c.nemesis).map_err(|e| bad(format!("--nemesis: {e}")))?;
    let root = nix::unistd::geteuid().is_root();
    let backend = if spec.spec.external.is_some() {
        if c.backend.is_some_and(|b| b != Backend::External) {
            return Err(bad(format!(
                "--backend: {} lists [external] nodes, which run elsewhere; drop --backend",
                spec.origin
            )));
        }
        if !faults.is_empty() {
            return Err(bad(format!(
                "--nemesis: {} lists [external] nodes, which faultline does not control: no faults",
                spec.origin
            )));
        }
        Backend::External
    } else {
        match c.backend {
            Some(Backend::External) => {
                return Err(bad("--backend external: the spec must list [external] nodes"));
            }
            Some(Backend::Netns) if !root => {
                return Err(bad(
                    "--backend netns needs root (namespaces, a bridge, iptables); use --backend local",
                ))
            }
            Some(b) => b,
            None if root => Backend::Netns,
            None => Backend::Local,
        }
    };
    if backend != Backend::External {
        crate::spec::resolve_program(spec)?;
    }
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
    if faults.touches_network() && !root {
        return Err(bad(
            "--nemesis: network faults (partitions, loss, delay) need root: they add iptables rules",
        ));
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
    let node_ids: Vec<String> = (1..=c.nodes).map(|i| format!("n{i}")).collect();
    // Draw the schedule once here so that bad options fail before anything starts.
    Schedule::generate(seed, &node_ids, &faults, &schedule_opts)
        .map_err(|e| bad(format!("--nemesis: {e}")))?;
    if faults.clock && !spec.spec.faketime {
        return Err(bad(format!(
            "--nemesis clock: {} says its nodes do not read the clock through libc (faketime = false), so \
             libfaketime cannot move their clocks",
            spec.origin
        )));
    }
    if faults.clock && nemesis::clock::libfaketime_path().is_none() {
        return Err(bad(
            "--nemesis clock: needs libfaketime, which is not installed (Debian: apt-get install libfaketime)",
        ));
    }
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
        seed,
        name,
    })
}

/// Checks a configuration as a run's first phase does (spec, workload, faults, schedule, permissions),
/// without creating anything: `faultline suite` checks every cell before the first one starts.
pub fn validate(c: &RunConfig) -> Result<(), HarnessError> {
    prepare(c).map(|_| ())
}

/// Runs a whole test. Blocks; builds its own async runtime.
pub fn run(c: &RunConfig) -> Result<RunOutcome, RunError> {
    phase("prepare");
    let p = prepare(c).map_err(|error| RunError { error, run_dir: None })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RunError {
            error: HarnessError::Other(format!("tokio runtime: {e}")),
            run_dir: None,
        })?;
    rt.block_on(run_async(c, p))
}

async fn run_async(c: &RunConfig, p: Prepared) -> Result<RunOutcome, RunError> {
    // Signals: any of them cancels whatever phase is running.
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let signal_name = Arc::new(std::sync::Mutex::new(None::<&'static str>));
    {
        let signal_name = signal_name.clone();
        use tokio::signal::unix::{signal, Signal, SignalKind};
        async fn recv(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        let mut int = signal(SignalKind::interrupt()).ok();
        let mut term = signal(SignalKind::terminate()).ok();
        let mut hup = signal(SignalKind::hangup()).ok();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = recv(&mut int) => "SIGINT",
                _ = recv(&mut term) => "SIGTERM",
                _ = recv(&mut hup) => "SIGHUP",
            };
            *signal_name.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
            eprintln!("faultline: {name} received: stopping and tearing down");
            let _ = cancel_tx.send(true);
            // Keep the handlers installed: a second signal must not kill the harness mid-tear-down.
            loop {
                tokio::select! {
                    _ = recv(&mut int) => {}
                    _ = recv(&mut term) => {}
                    _ = recv(&mut hup) => {}
                }
                eprintln!("faultline: still tearing down");
            }
        });
    }
    phase("setup");
    let store = results::Store::open(&c.store).map_err(|e| RunError {
        error: HarnessError::BadInput(format!("--store {}: {e}", c.store.display())),
        run_dir: None,
    })?;
    let run = store.create_run(&p.name).map_err(|e| RunError {
        error: HarnessError::BadInput(format!("--store {}: {e}", c.store.display())),
        run_dir: None,
    })?;
    let run_dir = run.path().to_path_buf();
    let fail = |error: HarnessError| RunError {
        error,
        run_dir: Some(run_dir.clone()),
    };

    let interrupted = |rx: &tokio::sync::watch::Receiver<bool>| *rx.borrow();
    let interruption = || {
        HarnessError::Interrupted(
            signal_name
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or("a signal")
                .to_string(),
        )
    };

    let run_id = new_run_id();
    let state =
        StateFile::create(&run_dir).map_err(|e| fail(HarnessError::io("creating the state file")(e)))?;
    let mut record = crate::record::start(&crate::record::RecordStart {
        name: &p.name,
        spec: &p.spec,
        workload: &p.workload,
        protocol: &p.protocol,
        backend: p.backend,
        config: c,
        schedule_opts: &p.schedule_opts,
        leader_targeted: None,
        seed: p.seed,
        run_id: &run_id,
    });
    run.write_record(&record).map_err(|e| fail(e.into()))?;

    let opts = DeploymentOptions {
        backend: p.backend,
        nodes: c.nodes,
        node_args: c.node_args.clone(),
        run_dir: run_dir.clone(),
        run_id: run_id.clone(),
        cgroups: p.backend == Backend::Local && p.faults.touches_network(),
        faketime: p.faults.clock,
        spares: if p.faults.member || p.faults.member_split {
            nemesis::membership::spare_count(c.nodes)
        } else {
            0
        },
    };
    // Creating the hosts runs `ip`/`iptables`: keep it off the async workers.
    let created = {
        let (spec, state) = (p.spec.clone(), state.clone());
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || Deployment::create(spec, &opts, state)).await
    };
    let cluster = match created {
        Ok(Ok(cluster)) => Arc::new(cluster),
        // A partly created cluster removed what it had made when it was dropped.
        Ok(Err(e)) => return Err(fail(e)),
        Err(e) => {
            // The creating thread panicked: undo what the state file says it made.
            crate::heal::heal_resources(
                &state.recorded(),
                nix::sys::signal::Signal::SIGKILL,
                Duration::ZERO,
            );
            return Err(fail(HarnessError::Other(format!(
                "setting up the hosts panicked: {e}"
            ))));
        }
    };
    let outcome = drive_cluster(c, &p, &run, &cluster, &state, cancel_rx.clone(), &mut record).await;

    phase("teardown");
    let report = {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || {
            cluster.collect_logs();
            cluster.teardown()
        })
        .await
        .unwrap_or_default()
    };
    if !report.errors.is_empty() {
        eprintln!(
            "faultline: tear-down could not remove everything: {}",
            report.errors.join("; ")
        );
        eprintln!("faultline: run `faultline heal {}` to retry", run_dir.display());
    }
    record.teardown = Some(crate::record::teardown(&report));

    let drive = match outcome {
        Ok(d) => d,
        Err(e) => {
            record.ended_at = Some(crate::record::now());
            record.error = Some(e.to_string());
            let _ = run.write_record(&record);
            let _ = store.write_index();
            let e = if interrupted(&cancel_rx) || matches!(e, HarnessError::Interrupted(_)) {
                interruption()
            } else {
                e
            };
            return Err(fail(e));
        }
    };
    if interrupted(&cancel_rx) {
        record.ended_at = Some(crate::record::now());
        record.error = Some(interruption().to_string());
        let _ = run.write_record(&record);
        return Err(fail(interruption()));
    }

    phase("check");
    let check_report = {
        let history_path = run.history_path();
        let workload = p.workload;
        let recovery = c.recovery_limit;
        let nodes = c.nodes;
        tokio::task::spawn_blocking(move || check_history(&history_path, workload, recovery, nodes))
            .await
            .map_err(|e| fail(HarnessError::Other(format!("the checker panicked: {e}"))))?
            .map_err(fail)?
    };
    write_json(&run.results_path(), &check_report).map_err(fail)?;
    record.ended_at = Some(crate::record::now());
    record.counts = Some(results::record::Counts {
        ok: drive.counts.ok,
        fail: drive.counts.fail,
        info: drive.counts.info,
    });
    record.keys = drive.keys.clone();
    record.unread_keys = drive.unread.clone();
    let _ = run.write_record(&record);

    phase("report");
    let verdict = check_report.verdict;
    {
        let run = run.clone();
        let report = check_report.clone();
        let rendered =
            tokio::task::spawn_blocking(move || results::render_run_with(&run, Some(&report)).map(|_| ()))
                .await;
        match rendered {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("faultline: warning: the report could not be rendered: {e}"),
            Err(e) => eprintln!("faultline: warning: rendering the report panicked: {e}"),
        }
    }
    if let Err(e) = store.write_index() {
        eprintln!("faultline: warning: the store index could not be written: {e}");
    }
    let summary = summarize(&check_report, &drive, &run_dir);
    Ok(RunOutcome {
        run_dir,
        verdict,
        report: check_report,
        summary,
    })
}

/// What the clients did, for the summary.
struct Driven {
    counts: workloads::Counts,
    keys: Vec<String>,
    unread: Vec<String>,
}

/// Phases setup (nodes), run, heal and final reads. Returns when everything the clients and the nemesis do
/// is over; the caller tears down.
async fn drive_cluster(
    c: &RunConfig,
    p: &Prepared,
    run: &results::RunDir,
    cluster: &Arc<Deployment>,
    state: &StateFile,
    mut cancel: tokio::sync::watch::Receiver<bool>,
    record: &mut results::RunRecord,
) -> Result<Driven, HarnessError> {
    {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.start_all())
            .await
            .map_err(|e| HarnessError::Other(format!("starting nodes panicked: {e}")))??;
    }
    cluster.wait_ready(&mut cancel).await?;
    record.nodes = crate::record::nodes(cluster.nodes());
    let version = system_version(&p.spec).await;
    record.versions.system = Some(version.clone());
    record.system_version = Some(version);
    let _ = run.write_record(record);

    let recorder =
        Recorder::create(run.history_path()).map_err(|e| HarnessError::Other(format!("history: {e}")))?;
    let adapter: Arc<dyn nemesis::Cluster> = Arc::new(NemesisCluster(cluster.clone()));
    let sink: Arc<dyn nemesis::EventSink> = {
        let recorder = recorder.clone();
        Arc::new(move |f: &str, value: serde_json::Value| {
            recorder.nemesis(EventType::Info, f, value);
        })
    };
    let nem = nemesis::Nemesis::new(cluster.run_id(), adapter, sink);
    let nemesis_active = !p.faults.is_empty();
    let schedule = Schedule::generate(p.seed, &nem.node_ids(), &p.faults, &p.schedule_opts)
        .map_err(|e| HarnessError::BadInput(format!("--nemesis: {e}")))?;
    if p.faults.touches_network() {
        // Network faults: the nemesis's chains (and, on the local backend, cgroups) are removed by its
        // heal_leftovers, also after a killed harness.
        state
            .record(&Resource::NemesisRun {
                run_id: cluster.run_id().to_string(),
                namespaces: cluster.nodes().iter().filter_map(|n| n.netns.clone()).collect(),
            })
            .map_err(HarnessError::io("writing the state file"))?;
    }
    if nemesis_active {
        nem.check(&p.faults)
            .await
            .map_err(|e| HarnessError::BadInput(format!("--nemesis: {e}")))?;
        record.nemesis.schedule = Some(crate::record::schedule(&schedule));
        let _ = run.write_record(record);
    }
    if *cancel.borrow() {
        return Err(HarnessError::Interrupted("a signal".into()));
    }

    phase("run");
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut dcfg = DriveConfig::new(p.workload, c.concurrency, p.seed);
    dcfg.rate = c.rate;
    let clients = {
        let (protocol, recorder, counters) = (p.protocol.clone(), recorder.clone(), counters.clone());
        // The clients follow the membership as membership faults change it.
        let members = cluster.member_addresses();
        tokio::spawn(async move {
            workloads::drive_following(&dcfg, &protocol, members, &recorder, counters, stop_rx).await
        })
    };
    let (nem_stop_tx, nem_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let nem = Arc::new(nem);
    let nemesis_task = nemesis_active.then(|| {
        let nem = nem.clone();
        let schedule = schedule.clone();
        tokio::spawn(async move {
            nem.run(&schedule, async {
                let _ = nem_stop_rx.await;
            })
            .await
        })
    });
    let progress = Progress::new(c.progress, c.time_limit);
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = cancel.changed() => {}
        }
        progress.update(started.elapsed(), counters.snapshot());
        if *cancel.borrow() || started.elapsed() >= c.time_limit || clients.is_finished() {
            break;
        }
    }
    progress.finish();

    phase("heal");
    let _ = stop_tx.send(true);
    let drive_result = clients.await;
    let _ = nem_stop_tx.send(());
    let nemesis_result = match nemesis_task {
        Some(t) => Some(t.await),
        None => None,
    };
    // Heal even when the nemesis task failed or was never started (idempotent).
    if nemesis_active {
        if let Err(e) = nem.heal().await {
            eprintln!("faultline: warning: nemesis heal: {e}");
        }
    }
    let summary = match drive_result {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(HarnessError::Other(format!("clients: {e}"))),
        Err(e) => return Err(HarnessError::Other(format!("a client task panicked: {e}"))),
    };
    if let Some(r) = nemesis_result {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("faultline: warning: nemesis: {e}"),
            Err(e) => eprintln!("faultline: warning: the nemesis task panicked: {e}"),
        }
    }
    if *cancel.borrow() {
        let _ = recorder.finish();
        return Err(HarnessError::Interrupted("a signal".into()));
    }

    phase("final-reads");
    let reads = FinalReadConfig {
        workload: p.workload,
        first_process: summary.next_process,
        parallelism: c.concurrency.clamp(1, 32),
        within: c.recovery_limit.max(Duration::from_secs(5)) + Duration::from_secs(5),
    };
    // The members as the heal left them (it restores the initial ones when it can).
    let nodes = cluster.member_addresses().borrow().clone();
    let read = tokio::select! {
        r = workloads::final_reads(&reads, &p.protocol, &nodes, &recorder, &summary.keys) => Some(r),
        _ = cancel.changed() => None,
    };
    recorder
        .finish()
        .map_err(|e| HarnessError::Other(format!("history: {e}")))?;
    let Some(read) = read else {
        return Err(HarnessError::Interrupted("a signal".into()));
    };
    let read = read.map_err(|e| HarnessError::Other(format!("final reads: {e}")))?;
    Ok(Driven {
        counts: counters.snapshot(),
        keys: summary.keys,
        unread: read.unread,
    })
}

/// Reads the history back and runs the checkers: linearizability with the workload's model, availability
/// with the recovery limit (and stalls of a cluster of `nodes`), stats. The verdict is the worst of
/// linearizability and availability.
pub fn check_history(
    path: &Path,
    workload: Workload,
    recovery_limit: Duration,
    nodes: usize,
) -> Result<CheckReport, HarnessError> {
    let history = checker::history::read_path(path, checker::history::Format::Jsonl, true)
        .map_err(|e| HarnessError::Other(format!("reading the history back: {e}")))?;
    let model = checker::ModelKind::parse(workload.model_name())
        .ok_or_else(|| HarnessError::Other(format!("no checker model {}", workload.model_name())))?;
    let options = checker::CheckOptions {
        linearizability: checker::Options {
            model,
            time_limit: Some(Duration::from_secs(120)),
            ..Default::default()
        },
        recovery_limit,
        cluster_size: Some(nodes),
    };
    let mut report =
        checker::check(&history, &options).map_err(|e| HarnessError::Other(format!("checker: {e}")))?;
    if report.stats.is_none() {
        report.stats = Some(checker::stats::compute(&history));
    }
    let mut verdict = report
        .linearizability
        .as_ref()
        .map(|l| l.verdict)
        .unwrap_or(Verdict::Unknown);
    if let Some(a) = &report.availability {
        verdict = verdict.worst(a.verdict);
    }
    report.verdict = verdict;
    Ok(report)
}

fn summarize(r: &CheckReport, d: &Driven, run_dir: &Path) -> String {
    let mut out = String::new();
    let verdict = match r.verdict {
        Verdict::Valid => "VALID",
        Verdict::Invalid => "INVALID",
        Verdict::Unknown => "UNKNOWN",
    };
    out.push_str(&format!(
        "{verdict}: {} ok, {} fail, {} info over {} keys\n",
        d.counts.ok,
        d.counts.fail,
        d.counts.info,
        d.keys.len()
    ));
    if let Some(l) = &r.linearizability {
        let bad: Vec<String> = l
            .keys
            .iter()
            .filter(|k| k.verdict != Verdict::Valid)
            .map(|k| format!("{} {:?}", k.key.as_deref().unwrap_or("-"), k.verdict).to_lowercase())
            .collect();
        out.push_str(&format!("  linearizability ({}): {:?}", l.model, l.verdict).to_lowercase());
        if !bad.is_empty() {
            out.push_str(&format!(" — keys: {}", bad.join(", ")));
        }
        out.push('\n');
    }
    if let Some(a) = &r.availability {
        out.push_str(&format!(
            "  availability: {}, longest gap without an ok {:.1} s\n",
            format!("{:?}", a.verdict).to_lowercase(),
            a.longest_gap_ns as f64 / 1e9
        ));
    }
    if !d.unread.is_empty() {
        out.push_str(&format!(
            "  {} keys could not be read back after the heal\n",
            d.unread.len()
        ));
    }
    out.push_str(&format!("  results: {}", run_dir.display()));
    let report = run_dir.join(results::store::REPORT_FILE);
    if report.is_file() {
        out.push_str(&format!("\n  report: {}", report.display()));
    }
    out
}

fn write_json(path: &Path, v: &impl serde::Serialize) -> Result<(), HarnessError> {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(HarnessError::io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(HarnessError::io(format!("writing {}", path.display())))
}

/// The system's version through the spec's `version` command (first line), or why not.
async fn system_version(spec: &LoadedSpec) -> String {
    let Some(v) = &spec.spec.version else {
        return "unknown (the spec has no version command)".into();
    };
    let prog = if v[0] == spec.spec.command[0] {
        crate::spec::resolve_program(spec)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| v[0].clone())
    } else {
        v[0].clone()
    };
    let out = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::process::Command::new(&prog)
            .args(&v[1..])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    match out {
        Ok(Ok(o)) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let text = if text.trim().is_empty() {
                String::from_utf8_lossy(&o.stderr).into_owned()
            } else {
                text
            };
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(2)
                .collect::<Vec<_>>()
                .join("; ")
        }
        Ok(Ok(o)) => format!("unknown ({} exited with {})", prog, o.status),
        Ok(Err(e)) => format!("unknown ({prog}: {e})"),
        Err(_) => format!("unknown ({prog} did not answer within 5 s)"),
    }
}

/// The live progress line: elapsed/limit, ok/fail/info and ops/s. Drawn only when asked (stderr a tty).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: std::sync::Mutex<(Duration, u64)>,
}

impl Progress {
    fn new(enabled: bool, limit: Duration) -> Progress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(limit.as_millis() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            last: std::sync::Mutex::new((Duration::ZERO, 0)),
        }
    }

    fn update(&self, elapsed: Duration, c: workloads::Counts) {
        let Some(bar) = &self.bar else { return };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let dt = (elapsed - last.0).as_secs_f64();
        let rate = if dt > 0.0 {
            (c.total() - last.1) as f64 / dt
        } else {
            0.0
        };
        *last = (elapsed, c.total());
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(format!(
            "{:.0}/{:.0} s  ok {}  fail {}  info {}  {:.0} ops/s",
            elapsed.as_secs_f64(),
            Duration::from_millis(bar.length().unwrap_or(0)).as_secs_f64(),
            c.ok,
            c.fail,
            c.info,
            rate
        ));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The cluster as the nemesis sees it.
struct NemesisCluster(Arc<Deployment>);

impl NemesisCluster {
    /// Every host, members and spares, as the nemesis sees them.
    fn all_nodes(&self) -> Vec<nemesis::Node> {
        self.0
            .nodes()
            .iter()
            .map(|n| {
                let mut ports = vec![n.client_port];
                if n.peer_port != n.client_port {
                    ports.push(n.peer_port);
                }
                nemesis::Node {
                    id: n.id.clone(),
                    addr: n.host,
                    ports,
                    netns: n.netns.clone(),
                    cgroup: n.cgroup.clone(),
                    faketime_file: n.faketime_file.clone(),
                }
            })
            .collect()
    }
}

fn cerr(e: impl std::fmt::Display) -> nemesis::ClusterError {
    nemesis::ClusterError(e.to_string())
}

impl nemesis::Cluster for NemesisCluster {
    fn layout(&self) -> nemesis::NetLayout {
        match self.0.backend() {
            Backend::Netns => nemesis::NetLayout::Netns,
            _ => nemesis::NetLayout::Local,
        }
    }

    fn nodes(&self) -> Vec<nemesis::Node> {
        let spares: Vec<String> = self
            .0
            .nodes()
            .iter()
            .filter(|n| n.spare)
            .map(|n| n.id.clone())
            .collect();
        self.all_nodes()
            .into_iter()
            .filter(|n| !spares.contains(&n.id))
            .collect()
    }

    fn exec<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> nemesis::BoxFuture<'a, Result<nemesis::ExecOutput, nemesis::ClusterError>> {
        Box::pin(async move {
            let out = self.0.exec(node, argv).await.map_err(cerr)?;
            Ok(nemesis::ExecOutput {
                status: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        })
    }

    fn kill<'a>(&'a self, node: &'a str) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        let (c, id) = (self.0.clone(), node.to_string());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || c.kill_node(&id))
                .await
                .map_err(cerr)?
                .map_err(cerr)
        })
    }

    fn restart<'a>(&'a self, node: &'a str) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        let (c, id) = (self.0.clone(), node.to_string());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || c.start_node(&id, false))
                .await
                .map_err(cerr)?
                .map_err(cerr)
        })
    }

    fn pause<'a>(&'a self, node: &'a str) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        Box::pin(async move {
            self.0
                .signal_node(node, nix::sys::signal::Signal::SIGSTOP)
                .map_err(cerr)
        })
    }

    fn resume<'a>(&'a self, node: &'a str) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        Box::pin(async move {
            self.0
                .signal_node(node, nix::sys::signal::Signal::SIGCONT)
                .map_err(cerr)
        })
    }

    fn leader(&self) -> nemesis::BoxFuture<'_, Result<Option<String>, nemesis::ClusterError>> {
        Box::pin(async move { self.0.leader().await.map_err(cerr) })
    }

    fn spares(&self) -> Vec<nemesis::Node> {
        let spares: Vec<String> = self
            .0
            .nodes()
            .iter()
            .filter(|n| n.spare)
            .map(|n| n.id.clone())
            .collect();
        self.all_nodes()
            .into_iter()
            .filter(|n| spares.contains(&n.id))
            .collect()
    }

    fn change_members<'a>(
        &'a self,
        add: &'a [String],
        remove: &'a [String],
        members: &'a [String],
    ) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        Box::pin(async move { self.0.change_members(add, remove, members).await.map_err(cerr) })
    }

    fn retire<'a>(&'a self, node: &'a str) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        let (c, id) = (self.0.clone(), node.to_string());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || c.retire(&id))
                .await
                .map_err(cerr)?
                .map_err(cerr)
        })
    }
}
