//! `faultline suite`: run a suite file (a matrix of runs with expectations), `suite merge` shards' records
//! into one, `suite report` a record as Markdown. The work is done by `harness::suite` and
//! `results::suite`; this module parses flags and maps errors to exit codes.
//!
//! Exit codes: 0 every row as expected, 1 some row not, 2 some row undecided (unknown or missing cells) and
//! none failed, 3 a run failed, 254 a bad suite file or flag (before anything starts).

use super::bad_input;
use anyhow::Context;
use harness::suite::{self, LoadedSuite, PlanOptions, SuiteOptions, SuiteRunError};
use results::suite::{judge, SuiteRecord};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Arguments of `faultline suite`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The suite file (TOML; see docs/suites.md).
    #[arg(required = true)]
    pub file: Option<PathBuf>,
    /// The results store (runs land there as with `faultline run`; the suite in <store>/suites/).
    #[arg(long, default_value = "store", value_name = "DIR")]
    pub store: PathBuf,
    /// Only the rows whose id matches one of these comma-separated globs (`early-*,correct`).
    #[arg(long, value_name = "GLOB")]
    pub only: Option<String>,
    /// Replaces the file's seeds: `1,2,3` or `1-5` (a nightly job passes the date's seeds; shares scale).
    #[arg(long, value_name = "LIST")]
    pub seeds: Option<String>,
    /// Start no cell that would likely end after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub time_budget: Option<f64>,
    /// Continue the newest unfinished run of this suite (after a kill or a restart), healing first.
    #[arg(long)]
    pub resume: bool,
    /// Run only shard K of N (a deterministic slice of the cells); join shards with `suite merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Also write JUnit XML (one test case per cell) to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Join shards' suite runs (their folders, or suite.json files) into one record and summary.
    Merge {
        /// The shards' suite run folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write the merged suite.json and summary.html.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The store the shards' runs are in (for the summary's links and trend).
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
        /// Also write JUnit XML of the merged suite.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Write a suite run's results as Markdown (e.g. docs/detection.md from the detection suite).
    Report {
        /// A suite run folder or its suite.json.
        suite: PathBuf,
        /// The Markdown file (default: stdout).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    match args.command {
        Some(Command::Merge {
            dirs,
            out,
            store,
            junit,
        }) => merge(&dirs, &out, store.as_deref(), junit.as_deref()),
        Some(Command::Report { suite, out }) => report(&suite, out.as_deref()),
        None => run(args),
    }
}

fn run(args: Args) -> anyhow::Result<u8> {
    let file = args
        .file
        .clone()
        .ok_or_else(|| bad_input("a suite file is needed"))?;
    let bad = |e: suite::SuiteFileError| bad_input(e.to_string());
    let loaded = LoadedSuite::from_path(&file).map_err(bad)?;
    let opts = PlanOptions {
        only: args.only.clone(),
        seeds: args
            .seeds
            .as_deref()
            .map(suite::parse_seeds)
            .transpose()
            .map_err(bad)?,
        shard: args
            .shard
            .as_deref()
            .map(suite::parse_shard)
            .transpose()
            .map_err(bad)?,
        store: args.store.clone(),
    };
    let budget = match args.time_budget {
        Some(v) if v.is_finite() && v > 0.0 => Some(Duration::from_secs_f64(v)),
        Some(v) => {
            return Err(bad_input(format!(
                "--time-budget {v}: must be a positive number of seconds"
            )))
        }
        None => None,
    };
    let plan = suite::plan(&loaded, &opts).map_err(bad)?;
    println!(
        "suite {}: {} cells ({} rows x {} seeds{}), store {}",
        plan.name,
        plan.cells.len(),
        plan.rows.len(),
        plan.seeds.len(),
        plan.shard
            .map(|(k, n)| format!(", shard {k}/{n}"))
            .unwrap_or_default(),
        args.store.display()
    );
    let outcome = suite::run_suite(
        &plan,
        &SuiteOptions {
            store: args.store.clone(),
            time_budget: budget,
            resume: args.resume,
        },
    )
    .map_err(|e| match e {
        SuiteRunError::BadInput(m) => bad_input(m),
        other => anyhow::anyhow!("{other}"),
    })?;
    print_rows(&outcome.record);
    println!(
        "summary: {}",
        outcome.dir.join(results::suite::SUMMARY_FILE).display()
    );
    if let Some(path) = &args.junit {
        write_junit(&outcome.record, &args.store, path)?;
    }
    Ok(outcome.exit_code)
}

fn print_rows(record: &SuiteRecord) {
    for r in judge(record).rows {
        println!("  {}: {} ({})", r.row, r.status.name(), r.text);
    }
}

fn write_junit(record: &SuiteRecord, store: &Path, path: &Path) -> anyhow::Result<()> {
    results::suite::junit(record, &store.display().to_string())
        .write(path)
        .with_context(|| format!("--junit {}", path.display()))
}

fn merge(dirs: &[PathBuf], out: &Path, store: Option<&Path>, junit: Option<&Path>) -> anyhow::Result<u8> {
    let mut records = Vec::new();
    for d in dirs {
        records.push(SuiteRecord::load(d).map_err(|e| bad_input(e.to_string()))?);
    }
    let merged = results::suite::merge(&records).map_err(|e| bad_input(e.to_string()))?;
    std::fs::create_dir_all(out).with_context(|| format!("--out {}", out.display()))?;
    merged.save(out).map_err(|e| anyhow::anyhow!("{e}"))?;
    let to_store = match store {
        Some(s) => relative_link(out, s),
        None => "../../../".to_string(),
    };
    results::suite::write_summary(&merged, out, store, &to_store).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "merged {} shard(s) of suite {}: {} of {} cells",
        records.len(),
        merged.name,
        merged.cells.len(),
        merged.planned.len()
    );
    print_rows(&merged);
    println!("summary: {}", out.join(results::suite::SUMMARY_FILE).display());
    if let Some(path) = junit {
        write_junit(&merged, store.unwrap_or(Path::new("store")), path)?;
    }
    Ok(judge(&merged).exit_code())
}

/// The link prefix from folder `from` to folder `to` (`../../store/`), through their canonical paths.
fn relative_link(from: &Path, to: &Path) -> String {
    let (Ok(from), Ok(to)) = (std::fs::canonicalize(from), std::fs::canonicalize(to)) else {
        return format!("{}/", to.display());
    };
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut s = "../".repeat(f.len() - common);
    for c in &t[common..] {
        s.push_str(&c.as_os_str().to_string_lossy());
        s.push('/');
    }
    s
}

fn report(suite: &Path, out: Option<&Path>) -> anyhow::Result<u8> {
    let record = SuiteRecord::load(suite).map_err(|e| bad_input(e.to_string()))?;
    let md = results::suite::render_markdown(&record);
    match out {
        Some(p) => std::fs::write(p, md).with_context(|| format!("--out {}", p.display()))?,
        None => print!("{md}"),
    }
    Ok(0)
}
