//! The phases after prepare, one method each: setup (folder, hosts, nodes), run, heal, final reads,
//! teardown, check and report. `execute` calls them in order; the tear-down runs whatever happened before.

use super::cancel::Cancel;
use super::check::{check_history, verdict_line};
use super::prepare::Prepared;
use super::progress::Progress;
use super::{phase, Driven, RunConfig, RunError, RunOutcome};
use crate::deployment::{new_run_id, Deployment, DeploymentOptions};
use crate::fault_target::FaultTarget;
use crate::state::{Resource, StateFile};
use crate::{Backend, HarnessError};
use checker::{CheckReport, EventType};
use nemesis::Nemesis;
use results::{RunDir, RunRecord};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use workloads::{Counters, DriveConfig, DriveSummary, FinalReadConfig, Recorder};

/// Runs every phase after prepare.
pub(crate) async fn execute(c: &RunConfig, p: Prepared) -> Result<RunOutcome, RunError> {
    let cancel = Cancel::install();
    phase("setup");
    let mut run = Run::create(c, p, cancel)?;
    let deployment = run.deploy().await?;
    let driven = run.drive(&deployment).await;
    phase("teardown");
    run.teardown(&deployment).await;
    let driven = run.settle(driven)?;
    phase("check");
    let report = run.check(&driven).await?;
    phase("report");
    Ok(run.report(report, &driven).await)
}

/// One run between prepare and the verdict: its folder, state file and record.
struct Run<'a> {
    config: &'a RunConfig,
    p: Prepared,
    cancel: Cancel,
    store: results::Store,
    dir: RunDir,
    state: StateFile,
    record: RunRecord,
}

/// The clients and the nemesis while they run.
struct Running {
    clients: JoinHandle<Result<DriveSummary, workloads::DriveError>>,
    stop_clients: tokio::sync::watch::Sender<bool>,
    stop_nemesis: tokio::sync::oneshot::Sender<()>,
    nemesis_task: Option<JoinHandle<Result<(), nemesis::NemesisError>>>,
    counters: Arc<Counters>,
}

impl<'a> Run<'a> {
    /// Setup, first part: the run folder in the store, its state file and the first record.
    fn create(config: &'a RunConfig, p: Prepared, cancel: Cancel) -> Result<Run<'a>, RunError> {
        let store_error = |source| RunError {
            error: HarnessError::Store {
                dir: config.store.clone(),
                source,
            },
            run_dir: None,
        };
        let store = results::Store::open(&config.store).map_err(store_error)?;
        let dir = store.create_run(&p.name).map_err(store_error)?;
        let fail = |error| RunError {
            error,
            run_dir: Some(dir.path().to_path_buf()),
        };
        let state = StateFile::create(dir.path())
            .map_err(|e| fail(HarnessError::io("creating the state file")(e)))?;
        let run_id = new_run_id();
        let record = crate::record::start(&crate::record::RecordStart {
            name: &p.name,
            spec: &p.spec,
            workload: &p.workload,
            protocol: &p.protocol,
            backend: p.backend,
            config,
            schedule_opts: &p.schedule_opts,
            leader_targeted: Some(p.schedule_opts.leader_probe),
            seed: p.seed,
            run_id: &run_id,
        });
        dir.write_record(&record).map_err(|e| fail(e.into()))?;
        Ok(Run {
            config,
            p,
            cancel,
            store,
            dir,
            state,
            record,
        })
    }

    fn fail(&self, error: HarnessError) -> RunError {
        RunError {
            error,
            run_dir: Some(self.dir.path().to_path_buf()),
        }
    }

    /// Rewrites `test.json`; a record that cannot be written is not worth failing a run that is going.
    fn save(&self) {
        if let Err(e) = self.dir.write_record(&self.record) {
            eprintln!("faultline: warning: {e}");
        }
    }

    /// Setup, second part: the hosts (namespaces, bridge, ports), off the async workers since it runs `ip`
    /// and `iptables`. A partly created deployment removes what it made when dropped.
    async fn deploy(&self) -> Result<Arc<Deployment>, RunError> {
        let p = &self.p;
        let opts = DeploymentOptions {
            backend: p.backend,
            nodes: self.config.nodes,
            node_args: self.config.node_args.clone(),
            run_dir: self.dir.path().to_path_buf(),
            run_id: self.record.run_id.clone(),
            cgroups: p.backend == Backend::Local && p.faults.touches_network(),
            faketime: p.faults.clock,
            lazyfs: p
                .faults
                .lose_unsynced
                .then(|| match p.spec.spec.durability.as_ref().map(|d| d.names) {
                    Some(crate::spec::DurableNames::Immediate) => lazyfs::Names::Immediate,
                    _ => lazyfs::Names::OnDirSync,
                }),
            spares: if p.faults.member || p.faults.member_split {
                nemesis::membership::spare_count(self.config.nodes)
            } else {
                0
            },
            ssh: self.config.ssh.clone(),
        };
        let (spec, state) = (p.spec.clone(), self.state.clone());
        match tokio::task::spawn_blocking(move || Deployment::create(spec, &opts, state)).await {
            Ok(Ok(d)) => Ok(Arc::new(d)),
            Ok(Err(e)) => Err(self.fail(e)),
            Err(source) => {
                // The creating thread panicked: undo what the state file says it made.
                let recorded = self.state.recorded();
                crate::heal::heal_resources(&recorded, nix::sys::signal::Signal::SIGKILL, Duration::ZERO);
                Err(self.fail(HarnessError::Panicked {
                    task: "setting up the hosts",
                    source,
                }))
            }
        }
    }

    /// Setup (nodes), run, heal and final reads. Returns when the clients and the nemesis are done; the
    /// caller tears down whatever happened.
    async fn drive(&mut self, d: &Arc<Deployment>) -> Result<Driven, HarnessError> {
        self.start_nodes(d).await?;
        let recorder = Recorder::create(self.dir.history_path())?;
        let nemesis = self.arm_nemesis(d, &recorder).await?;
        if self.cancel.is_set() {
            return Err(self.cancel.error());
        }
        phase("run");
        let running = self.run_clients(d, &recorder, nemesis.clone()).await;
        phase("heal");
        let counters = running.counters.clone();
        let summary = self.heal(running, nemesis.as_deref()).await;
        if let Some(lost) = d.ssh_lost() {
            // A host lost its SSH connection mid-run: nothing can be asserted about its node.
            let _ = recorder.finish();
            return Err(lost);
        }
        let summary = match summary {
            Ok(s) if !self.cancel.is_set() => s,
            other => {
                let _ = recorder.finish();
                other?;
                return Err(self.cancel.error());
            }
        };
        phase("final-reads");
        let unread = self.final_reads(d, &recorder, &summary).await?;
        Ok(Driven {
            counts: counters.snapshot(),
            keys: summary.keys,
            unread,
        })
    }

    /// Starts every node and waits until the spec's readiness probe passes; records the nodes and the
    /// system's version.
    async fn start_nodes(&mut self, d: &Arc<Deployment>) -> Result<(), HarnessError> {
        let starting = d.clone();
        tokio::task::spawn_blocking(move || starting.start_all())
            .await
            .map_err(|source| HarnessError::Panicked {
                task: "starting nodes",
                source,
            })??;
        d.wait_ready(&mut self.cancel.receiver()).await?;
        self.record.nodes = crate::record::nodes(d.nodes());
        let version = super::version::system_version(&self.p.spec).await;
        self.record.versions.system = Some(version.clone());
        self.record.system_version = Some(version);
        self.save();
        Ok(())
    }

    /// The nemesis, checked against this cluster and this machine before the first fault; `None` without
    /// faults. Its events go to the history.
    async fn arm_nemesis(
        &mut self,
        d: &Arc<Deployment>,
        recorder: &Recorder,
    ) -> Result<Option<Arc<Nemesis>>, HarnessError> {
        if self.p.faults.is_empty() {
            return Ok(None);
        }
        let target: Arc<dyn nemesis::Cluster> = Arc::new(FaultTarget(d.clone()));
        let sink: Arc<dyn nemesis::EventSink> = {
            let recorder = recorder.clone();
            Arc::new(move |f: &str, value: serde_json::Value| {
                recorder.nemesis(EventType::Info, f, value);
            })
        };
        let nem = Nemesis::new(d.run_id(), target, sink);
        if self.p.faults.touches_network() {
            // The nemesis's chains (and, on the local backend, cgroups) are removed by its heal_leftovers,
            // also after a killed harness: record the run before the first rule.
            self.state
                .record(&Resource::NemesisRun {
                    run_id: d.run_id().to_string(),
                    namespaces: d.nodes().iter().filter_map(|n| n.netns.clone()).collect(),
                })
                .map_err(HarnessError::io("writing the state file"))?;
        }
        nem.check(&self.p.faults)
            .await
            .map_err(|e| HarnessError::BadInput(format!("--nemesis: {e}")))?;
        self.record.nemesis.schedule = Some(crate::record::schedule(&self.p.schedule));
        self.save();
        Ok(Some(Arc::new(nem)))
    }

    /// Phase run: the clients and the nemesis until the time limit (or a signal, or the clients ending).
    async fn run_clients(
        &self,
        d: &Arc<Deployment>,
        recorder: &Recorder,
        nem: Option<Arc<Nemesis>>,
    ) -> Running {
        let c = self.config;
        let counters = Arc::new(Counters::default());
        let (stop_clients, stop_rx) = tokio::sync::watch::channel(false);
        let mut dcfg = DriveConfig::new(self.p.workload, c.concurrency, self.p.seed);
        dcfg.rate = c.rate;
        let clients = {
            let (protocol, recorder, counters) =
                (self.p.protocol.clone(), recorder.clone(), counters.clone());
            // The clients follow the membership as membership faults change it.
            let members = d.member_addresses();
            tokio::spawn(async move {
                workloads::drive_following(&dcfg, &protocol, members, &recorder, counters, stop_rx).await
            })
        };
        let (stop_nemesis, nem_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let nemesis_task = nem.map(|nem| {
            let schedule = self.p.schedule.clone();
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
                _ = self.cancel.wait() => {}
            }
            progress.update(started.elapsed(), counters.snapshot());
            if self.cancel.is_set()
                || started.elapsed() >= c.time_limit
                || clients.is_finished()
                || d.ssh_lost().is_some()
            {
                break;
            }
        }
        progress.finish();
        Running {
            clients,
            stop_clients,
            stop_nemesis,
            nemesis_task,
            counters,
        }
    }

    /// Phase heal: stop the clients, stop the nemesis, undo every fault (even when the nemesis failed).
    async fn heal(&self, running: Running, nem: Option<&Nemesis>) -> Result<DriveSummary, HarnessError> {
        let _ = running.stop_clients.send(true);
        let drove = running.clients.await;
        let _ = running.stop_nemesis.send(());
        if let Some(task) = running.nemesis_task {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn(&format!("nemesis: {e}")),
                Err(e) => warn(&format!("the nemesis task panicked: {e}")),
            }
        }
        if let Some(nem) = nem {
            if let Err(e) = nem.heal().await {
                warn(&format!("nemesis heal: {e}"));
            }
        }
        match drove {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(source)) => Err(HarnessError::Clients {
                phase: "clients",
                source,
            }),
            Err(source) => Err(HarnessError::Panicked {
                task: "a client task",
                source,
            }),
        }
    }

    /// Phase final-reads: each key read until a read succeeds; returns the keys that never were.
    async fn final_reads(
        &self,
        d: &Arc<Deployment>,
        recorder: &Recorder,
        summary: &DriveSummary,
    ) -> Result<Vec<String>, HarnessError> {
        let c = self.config;
        let reads = FinalReadConfig {
            workload: self.p.workload,
            first_process: summary.next_process,
            parallelism: c.concurrency.clamp(1, 32),
            within: c.recovery_limit.max(Duration::from_secs(5)) + Duration::from_secs(5),
        };
        // The members as the heal left them (it restores the initial ones when it can).
        let nodes = d.member_addresses().borrow().clone();
        let read = tokio::select! {
            r = workloads::final_reads(&reads, &self.p.protocol, &nodes, recorder, &summary.keys) => Some(r),
            _ = self.cancel.wait() => None,
        };
        recorder.finish()?;
        let Some(read) = read else {
            return Err(self.cancel.error());
        };
        let read = read.map_err(|source| HarnessError::Clients {
            phase: "final reads",
            source,
        })?;
        Ok(read.unread)
    }

    /// Phase teardown: stop the nodes, copy their extra logs, remove everything the run created.
    async fn teardown(&mut self, d: &Arc<Deployment>) {
        let d = d.clone();
        let report = tokio::task::spawn_blocking(move || {
            d.collect_logs();
            d.teardown()
        })
        .await
        .unwrap_or_default();
        if !report.errors.is_empty() {
            warn(&format!(
                "tear-down could not remove everything: {}",
                report.errors.join("; ")
            ));
            eprintln!(
                "faultline: run `faultline heal {}` to retry",
                self.dir.path().display()
            );
        }
        self.record.teardown = Some(crate::record::teardown(&report));
    }

    /// After the tear-down: a run that failed or was interrupted ends here, its record saying why.
    fn settle(&mut self, driven: Result<Driven, HarnessError>) -> Result<Driven, RunError> {
        let error = match driven {
            Ok(d) if !self.cancel.is_set() => return Ok(d),
            Ok(_) | Err(HarnessError::Interrupted(_)) => self.cancel.error(),
            Err(_) if self.cancel.is_set() => self.cancel.error(),
            Err(e) => e,
        };
        self.record.ended_at = Some(crate::record::now());
        self.record.error = Some(error.to_string());
        self.save();
        if let Err(e) = self.store.write_index() {
            warn(&format!("the store index could not be written: {e}"));
        }
        Err(self.fail(error))
    }

    /// Phase check: the checkers on the history read back; `results.json` and the final record.
    async fn check(&mut self, driven: &Driven) -> Result<CheckReport, RunError> {
        let (path, workload) = (self.dir.history_path(), self.p.workload);
        let (recovery, nodes) = (self.config.recovery_limit, self.config.nodes);
        let report = tokio::task::spawn_blocking(move || check_history(&path, workload, recovery, nodes))
            .await
            .map_err(|source| {
                self.fail(HarnessError::Panicked {
                    task: "the checker",
                    source,
                })
            })?
            .map_err(|e| self.fail(e))?;
        let text = serde_json::to_vec_pretty(&report).unwrap_or_default();
        let path = self.dir.results_path();
        std::fs::write(&path, text)
            .map_err(|e| self.fail(HarnessError::io(format!("writing {}", path.display()))(e)))?;
        self.record.ended_at = Some(crate::record::now());
        let c = driven.counts;
        self.record.counts = Some(results::record::Counts {
            ok: c.ok,
            fail: c.fail,
            info: c.info,
        });
        self.record.keys = driven.keys.clone();
        self.record.unread_keys = driven.unread.clone();
        self.record.unclassified = crate::unclassified::in_history(&self.dir.history_path());
        self.save();
        Ok(report)
    }

    /// Phase report: `report.html` and plots, the store index, the verdict line.
    async fn report(self, report: CheckReport, driven: &Driven) -> RunOutcome {
        let (dir, check) = (self.dir.clone(), report.clone());
        let rendered =
            tokio::task::spawn_blocking(move || results::render_run_with(&dir, Some(&check)).map(|_| ()))
                .await;
        match rendered {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn(&format!("the report could not be rendered: {e}")),
            Err(e) => warn(&format!("rendering the report panicked: {e}")),
        }
        if let Err(e) = self.store.write_index() {
            warn(&format!("the store index could not be written: {e}"));
        }
        let run_dir = self.dir.path().to_path_buf();
        RunOutcome {
            summary: verdict_line(&report, driven, &self.record.unclassified, &run_dir),
            verdict: report.verdict,
            report,
            run_dir,
            record: self.record,
            wall_time: Duration::ZERO,
        }
    }
}

/// A warning on stderr (plain text: it goes to CI logs as often as to a terminal).
fn warn(msg: &str) {
    eprintln!("faultline: warning: {msg}");
}
