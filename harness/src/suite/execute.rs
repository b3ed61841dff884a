//! The suite loop: one cell at a time through [`crate::run`], the record saved and the summary rewritten as
//! each cell ends, `--resume` after a kill (healing the cell that was running), SIGINT/SIGTERM/SIGHUP
//! (the running cell tears itself down; no further cell starts; the summary is written), `--time-budget`,
//! and the progress lines.

use super::plan::{cell_test_name, Plan};
use crate::run::RunError;
use crate::HarnessError;
use results::store::utc_timestamp;
use results::suite::{
    cell_facts, judge, suite_dir, write_summary, CellOutcome, Expectation, RunningCell, SuiteCell,
    SuiteRecord, SuiteStatus, SUITES_DIR,
};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How to run a planned suite.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    pub store: PathBuf,
    /// Start no cell that would likely end after this much time.
    pub time_budget: Option<Duration>,
    /// Continue the newest unfinished run of this suite (and shard) in the store.
    pub resume: bool,
}

/// How a suite run ended.
#[derive(Debug, Clone)]
pub struct SuiteOutcome {
    /// `<store>/suites/<name>/<timestamp>/`.
    pub dir: PathBuf,
    pub record: SuiteRecord,
    /// 0, 1, 2 or 3 as [`results::suite::SuiteJudgement::exit_code`].
    pub exit_code: u8,
}

/// A suite that could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SuiteRunError {
    /// The user's input (exit 254): a store that cannot be used, a `--resume` that does not fit.
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Record(#[from] results::suite::SuiteError),
    /// What a killed suite left could not be healed.
    #[error("{0}")]
    Heal(String),
}

/// Runs the plan's cells (those not finished yet, on `--resume`).
pub fn run_suite(plan: &Plan, o: &SuiteOptions) -> Result<SuiteOutcome, SuiteRunError> {
    let store = results::Store::open(&o.store)
        .map_err(|e| SuiteRunError::BadInput(format!("--store {}: {e}", o.store.display())))?;
    let root = std::fs::canonicalize(store.root()).unwrap_or_else(|_| store.root().to_path_buf());
    let stop = signal_flag();
    let resumed = if o.resume { resume(plan, &root)? } else { None };
    let (dir, mut record) = match resumed {
        Some(found) => found,
        None => fresh(plan, &root)?,
    };
    record.status = SuiteStatus::Running;
    record.ended_at = None;
    save(&record, &dir, &root)?;
    let todo = record.unfinished();
    let mut progress = Progress::new(record.planned.len(), record.planned.len() - todo.len());
    let started = Instant::now();
    for (row_id, seed) in todo {
        if stop.load(Ordering::SeqCst) {
            record.status = SuiteStatus::Interrupted;
            break;
        }
        let Some(row) = plan.rows.iter().position(|r| r.row.id == row_id) else {
            continue;
        };
        if let Some(budget) = o.time_budget {
            let next = progress.estimate(&plan.rows[row].config.time_limit);
            if started.elapsed() + next > budget {
                eprintln!(
                    "faultline suite: time budget: {} of {} s spent, the next cell would take about {} s: stopping",
                    started.elapsed().as_secs(),
                    budget.as_secs(),
                    next.as_secs()
                );
                record.status = SuiteStatus::OutOfTime;
                break;
            }
        }
        let test_name = cell_test_name(&plan.name, &row_id, seed);
        record.running = Some(RunningCell {
            row: row_id.clone(),
            seed,
            test_name,
            started_at: utc_timestamp(SystemTime::now()),
        });
        record.save(&dir)?;
        progress.starting(&row_id, seed);
        let t0 = Instant::now();
        let result = crate::run(&plan.config(row, seed));
        let wall = t0.elapsed();
        record.running = None;
        let cell = match result {
            Err(RunError {
                error: HarnessError::Interrupted(_),
                ..
            }) => {
                record.status = SuiteStatus::Interrupted;
                break;
            }
            Ok(outcome) => finished_cell(&plan.rows[row].row.expect, &row_id, seed, &outcome, wall, &root),
            Err(e) => failed_cell(&row_id, seed, &e, wall, &root),
        };
        progress.finished(&cell, wall);
        record.cells.push(cell);
        save(&record, &dir, &root)?;
    }
    progress.done();
    record.running = None;
    if record.status == SuiteStatus::Running {
        record.status = if record.unfinished().is_empty() {
            SuiteStatus::Complete
        } else {
            SuiteStatus::Interrupted
        };
    }
    record.ended_at = Some(utc_timestamp(SystemTime::now()));
    save(&record, &dir, &root)?;
    if let Err(e) = store.write_index() {
        eprintln!("faultline suite: warning: the store index could not be written: {e}");
    }
    let exit_code = judge(&record).exit_code();
    Ok(SuiteOutcome {
        dir,
        record,
        exit_code,
    })
}

/// Saves the record and rewrites the summary (a summary that fails to render is a warning: the record is
/// what must not be lost).
fn save(record: &SuiteRecord, dir: &Path, root: &Path) -> Result<(), SuiteRunError> {
    record.save(dir)?;
    if let Err(e) = write_summary(record, dir, Some(root), "../../../") {
        eprintln!("faultline suite: warning: summary.html: {e}");
    }
    Ok(())
}

/// A new suite run folder and its empty record.
fn fresh(plan: &Plan, root: &Path) -> Result<(PathBuf, SuiteRecord), SuiteRunError> {
    let now = utc_timestamp(SystemTime::now());
    let dir = (0..1000)
        .map(|n| {
            let ts = if n == 0 { now.clone() } else { format!("{now}-{n}") };
            suite_dir(root, &plan.name, &ts)
        })
        .find(|d| !d.exists())
        .ok_or_else(|| SuiteRunError::BadInput("no free suite folder name".into()))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| SuiteRunError::BadInput(format!("--store: {}: {e}", dir.display())))?;
    let record = SuiteRecord {
        format: 1,
        name: plan.name.clone(),
        description: plan.description.clone(),
        file: plan.file.clone(),
        started_at: now,
        ended_at: None,
        status: SuiteStatus::Running,
        shard: plan.shard,
        seeds: plan.seeds.clone(),
        rows: plan.rows.iter().map(|r| r.row.clone()).collect(),
        planned: plan.cell_keys(),
        cells: Vec::new(),
        running: None,
        merged_from: Vec::new(),
    };
    Ok((dir, record))
}

/// The newest unfinished run of this suite and shard, healed; None when there is none.
fn resume(plan: &Plan, root: &Path) -> Result<Option<(PathBuf, SuiteRecord)>, SuiteRunError> {
    let base = root.join(SUITES_DIR).join(&plan.name);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&base)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs.into_iter().rev() {
        let Ok(record) = SuiteRecord::load(&dir) else {
            continue;
        };
        if record.status == SuiteStatus::Complete || record.shard != plan.shard {
            continue;
        }
        if record.planned != plan.cell_keys() {
            return Err(SuiteRunError::BadInput(format!(
                "--resume: {} planned other cells (the suite file, --seeds, --only or --shard changed); \
                 run without --resume to start afresh",
                dir.display()
            )));
        }
        if let Some(running) = &record.running {
            heal_cell(root, running)?;
        }
        eprintln!(
            "faultline suite: resuming {}: {} of {} cells finished",
            dir.display(),
            record.cells.len(),
            record.planned.len()
        );
        return Ok(Some((dir, record)));
    }
    eprintln!(
        "faultline suite: --resume: no unfinished run of suite {} in the store: starting afresh",
        plan.name
    );
    Ok(None)
}

/// Heals every run folder of the cell that was running when the suite was killed.
fn heal_cell(root: &Path, running: &RunningCell) -> Result<(), SuiteRunError> {
    let runs = root.join(&running.test_name);
    for entry in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
        let ts = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        if ts.as_str() < running.started_at.as_str() || !dir.join(crate::state::STATE_FILE).is_file() {
            continue;
        }
        let report = crate::heal_run(&dir, false).map_err(|e| SuiteRunError::Heal(e.to_string()))?;
        for p in &report.processes_stopped {
            eprintln!("faultline suite: healed {}: stopped {p}", dir.display());
        }
        for r in &report.removed {
            eprintln!("faultline suite: healed {}: removed {r}", dir.display());
        }
        if !report.errors.is_empty() {
            return Err(SuiteRunError::Heal(format!(
                "{}: could not remove: {}",
                dir.display(),
                report.errors.join("; ")
            )));
        }
    }
    Ok(())
}

fn relative_run(run_dir: &Path, root: &Path) -> String {
    let canon = std::fs::canonicalize(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
    canon
        .strip_prefix(root)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| canon.display().to_string())
}

fn finished_cell(
    expect: &Expectation,
    row: &str,
    seed: u64,
    o: &crate::RunOutcome,
    wall: Duration,
    root: &Path,
) -> SuiteCell {
    let facts = cell_facts(&o.report);
    let outcome = CellOutcome::from_verdict(o.verdict);
    let mut line = o.summary.lines().next().unwrap_or("").to_string();
    if !facts.caught_by.is_empty() {
        line.push_str(&format!(" (caught by {})", facts.caught_by.join(" and ")));
    }
    SuiteCell {
        row: row.to_string(),
        seed,
        outcome,
        as_expected: matches!(
            (expect, outcome),
            (Expectation::Valid, CellOutcome::Valid) | (Expectation::Invalid { .. }, CellOutcome::Invalid)
        ),
        caught_by: facts.caught_by,
        first_anomaly_s: facts.first_anomaly_s,
        counts: facts.counts,
        ops_per_s: facts.ops_per_s,
        wall_s: wall.as_secs_f64(),
        run: Some(relative_run(&o.run_dir, root)),
        verdict_line: line,
        finished_at: utc_timestamp(SystemTime::now()),
    }
}

fn failed_cell(row: &str, seed: u64, e: &RunError, wall: Duration, root: &Path) -> SuiteCell {
    SuiteCell {
        row: row.to_string(),
        seed,
        outcome: CellOutcome::RunFailed,
        as_expected: false,
        caught_by: Vec::new(),
        first_anomaly_s: None,
        counts: None,
        ops_per_s: None,
        wall_s: wall.as_secs_f64(),
        run: e.run_dir.as_deref().map(|d| relative_run(d, root)),
        verdict_line: format!("run failed: {}", e.error.to_string().replace('\n', " ")),
        finished_at: utc_timestamp(SystemTime::now()),
    }
}

/// A flag set by SIGINT, SIGTERM or SIGHUP, watched by a thread of its own (installed once, before the first
/// cell: a signal between two cells must stop the suite too, and must not kill it before the summary).
fn signal_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let f = flag.clone();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                let _ = ready_tx.send(());
                return;
            };
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                ) else {
                    let _ = ready_tx.send(());
                    return;
                };
                let _ = ready_tx.send(());
                loop {
                    let name = tokio::select! {
                        _ = int.recv() => "SIGINT",
                        _ = term.recv() => "SIGTERM",
                        _ = hup.recv() => "SIGHUP",
                    };
                    f.store(true, Ordering::SeqCst);
                    eprintln!("faultline suite: {name}: no further cell starts; the summary is written");
                }
            });
        });
        let _ = ready_rx.recv_timeout(Duration::from_secs(5));
        flag
    })
    .clone()
}

/// One line per finished cell (stdout) and, on a terminal, a bar of cells done with the time left.
struct Progress {
    total: usize,
    done: usize,
    walls: Vec<Duration>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(total: usize, done: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("[{bar:30}] {pos}/{len} cells  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_position(done as u64);
            bar
        });
        Progress {
            total,
            done,
            walls: Vec::new(),
            bar,
        }
    }

    /// The expected wall time of the next cell: the mean of the cells so far, else its time limit + 15 s.
    fn estimate(&self, time_limit: &Duration) -> Duration {
        if self.walls.is_empty() {
            *time_limit + Duration::from_secs(15)
        } else {
            self.walls.iter().sum::<Duration>() / self.walls.len() as u32
        }
    }

    fn left(&self) -> String {
        if self.walls.is_empty() {
            return "time left unknown".into();
        }
        let mean = self.walls.iter().sum::<Duration>() / self.walls.len() as u32;
        let left = mean * (self.total - self.done) as u32;
        format!("about {} min left", left.as_secs().div_ceil(60))
    }

    fn starting(&self, row: &str, seed: u64) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("running {row} seed {seed}, {}", self.left()));
        }
    }

    fn finished(&mut self, c: &SuiteCell, wall: Duration) {
        self.done += 1;
        self.walls.push(wall);
        let verdict = match (c.outcome, c.as_expected) {
            (CellOutcome::Invalid, true) => "found",
            (CellOutcome::Invalid, false) => "FALSE ALARM",
            (CellOutcome::Valid, true) => "valid",
            (CellOutcome::Valid, false) => "missed",
            (CellOutcome::Unknown, _) => "unknown",
            (CellOutcome::RunFailed, _) => "RUN FAILED",
        };
        let mut line = format!(
            "[{}/{}] {} seed {}: {verdict}",
            self.done, self.total, c.row, c.seed
        );
        if !c.caught_by.is_empty() {
            line.push_str(&format!(" by {}", c.caught_by.join(" and ")));
        }
        if let Some(f) = c.first_anomaly_s {
            line.push_str(&format!(", first anomaly at {f:.1} s"));
        }
        line.push_str(&format!(" ({:.0} s; {})", wall.as_secs_f64(), self.left()));
        if c.outcome == CellOutcome::RunFailed {
            line.push_str(&format!("\n    {}", c.verdict_line));
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.done as u64);
                bar.println(line);
            }
            None => println!("{line}"),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
