//! `faultline check`: checks recorded histories for linearizability (and availability, stats).

use super::{bad_input, EXIT_BAD_INPUT};
use anyhow::Context;
use checker::history::{read_path, Format};
use checker::result::{CheckReport, KeyResult};
use checker::{CheckOptions, History, ModelKind, Operation, Verdict};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `faultline check`.
#[derive(clap::Args)]
#[command(
    after_help = "Exit code: 0 valid, 1 invalid, 2 unknown, 254 bad usage or input, 255 internal \
error; with several files, the worst of them. The --json output is described in docs/check-json.md."
)]
pub struct Args {
    /// History files (faultline JSON Lines, Jepsen EDN or Jepsen log lines); a directory means every
    /// history file in it (*.jsonl, *.json, *.edn, *.log, *.txt, recursively).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The model: cas-register (the default), register, kv, mutex, multi-register, set, unordered-queue,
    /// fifo-queue. `kv-nopartition` is kv with --no-partition.
    #[arg(long, default_value = "cas-register", value_name = "MODEL")]
    pub model: String,
    /// The history format: auto (detected from the content), jsonl, edn or jepsen-log.
    #[arg(long, default_value = "auto", value_name = "FORMAT")]
    pub format: String,
    /// Jepsen independent keys: values that are [key value] tuples give the operation's key.
    #[arg(long)]
    pub independent: bool,
    /// Check the whole history as one (the state is the map of every key) instead of key by key.
    #[arg(long)]
    pub no_partition: bool,
    /// Decide every key instead of stopping at the first invalid one.
    #[arg(long)]
    pub all_keys: bool,
    /// The initial value as JSON (default: absent, i.e. null); for keyed histories, every key's.
    #[arg(long, value_name = "JSON")]
    pub initial: Option<String>,
    /// Give up (verdict unknown, exit 2) after this many seconds per file.
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<f64>,
    /// Give up (verdict unknown, exit 2) when the search holds more than this many MiB.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub memory_limit: usize,
    /// Print the whole result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report of the check (counterexample view included) to this file;
    /// takes exactly one history.
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
}

/// Exit codes from best to worst.
fn severity(code: u8) -> u8 {
    match code {
        0 => 0,
        2 => 1,
        1 => 2,
        254 => 3,
        _ => 4,
    }
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let options = options(&args)?;
    let format: Format = args
        .format
        .parse()
        .map_err(|e: String| bad_input(format!("--format: {e}")))?;
    let files = expand(&args.files)?;
    let several = files.len() > 1;
    if args.html.is_some() && files.len() != 1 {
        return Err(bad_input(format!(
            "--html: takes exactly one history, got {}",
            files.len()
        )));
    }
    let mut worst = 0u8;
    let mut json_files = Vec::new();
    for path in &files {
        let outcome = check_file(path, format, args.independent, &options);
        if let (Some(out), Ok((history, report))) = (&args.html, &outcome) {
            let title = path.display().to_string();
            results::render_checked_history(&history.events, report, &title, None, out)
                .with_context(|| format!("--html: writing {}", out.display()))?;
        }
        let code = match &outcome {
            Ok((_, report)) => report.verdict.exit_code() as u8,
            Err(_) => EXIT_BAD_INPUT,
        };
        if severity(code) > severity(worst) {
            worst = code;
        }
        if args.json {
            json_files.push(match &outcome {
                Ok((history, report)) => json!({
                    "path": path,
                    "verdict": report.verdict,
                    "exit_code": code,
                    "warnings": history.warnings(),
                    "report": report,
                }),
                Err(e) => json!({ "path": path, "verdict": Value::Null, "exit_code": code, "error": e }),
            });
            continue;
        }
        match &outcome {
            Err(e) => eprintln!("error: {e}"),
            Ok((history, report)) => {
                for w in history.warnings() {
                    eprintln!("warning: {w}");
                }
                if several {
                    println!("{}", one_line(path, report));
                } else {
                    print!("{}", human(path, history, report));
                }
            }
        }
    }
    if args.json {
        let verdict = match worst {
            0 => json!("valid"),
            1 => json!("invalid"),
            2 => json!("unknown"),
            _ => Value::Null,
        };
        let out = json!({ "verdict": verdict, "exit_code": worst, "files": json_files });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).context("writing the JSON result")?
        );
    }
    Ok(worst)
}

fn options(args: &Args) -> anyhow::Result<CheckOptions> {
    let model = ModelKind::parse(&args.model).ok_or_else(|| {
        let names: Vec<&str> = ModelKind::ALL.iter().map(|m| m.name()).collect();
        bad_input(format!(
            "--model: unknown model {:?}: expected one of {}",
            args.model,
            names.join(", ")
        ))
    })?;
    let initial = match &args.initial {
        None => Value::Null,
        Some(s) => {
            serde_json::from_str(s).map_err(|e| bad_input(format!("--initial: not JSON ({e}): {s:?}")))?
        }
    };
    let time_limit = match args.time_limit {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => {
            return Err(bad_input(format!(
                "--time-limit: must be a positive number of seconds, not {t}"
            )))
        }
    };
    if args.memory_limit == 0 {
        return Err(bad_input("--memory-limit: must be at least 1 MiB"));
    }
    let mut options = CheckOptions::default();
    let lin = &mut options.linearizability;
    lin.model = model;
    lin.initial = initial;
    lin.partition = !args.no_partition && args.model.trim() != "kv-nopartition";
    lin.all_keys = args.all_keys;
    lin.time_limit = time_limit;
    lin.memory_limit = args.memory_limit.saturating_mul(1 << 20);
    Ok(options)
}

/// Files as given, directories replaced by the history files in them (sorted).
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found).map_err(|e| bad_input(format!("{}: cannot list: {e}", p.display())))?;
            found.sort();
            if found.is_empty() {
                return Err(bad_input(format!(
                    "{}: no history files in this directory",
                    p.display()
                )));
            }
            out.extend(found);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(bad_input(format!("{}: no such file", p.display())));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("jsonl" | "json" | "edn" | "log" | "txt")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

fn check_file(
    path: &Path,
    format: Format,
    independent: bool,
    options: &CheckOptions,
) -> Result<(History, CheckReport), String> {
    let history = read_path(path, format, independent).map_err(|e| e.to_string())?;
    let report = checker::check(&history, options).map_err(|e| e.to_string())?;
    Ok((history, report))
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Valid => "VALID",
        Verdict::Invalid => "INVALID",
        Verdict::Unknown => "UNKNOWN",
    }
}

fn key_name(k: &KeyResult) -> String {
    match &k.key {
        Some(k) => format!("key {k:?}"),
        None => "the history".to_string(),
    }
}

/// One line for a file among several.
fn one_line(path: &Path, report: &CheckReport) -> String {
    let Some(lin) = &report.linearizability else {
        return format!("{:<8}{}", verdict_word(report.verdict), path.display());
    };
    let ops: usize = lin.keys.iter().map(|k| k.ops).sum();
    let mut line = format!(
        "{:<8}{}  ({}, {} ops, {} key{}, {:.1} ms)",
        verdict_word(report.verdict),
        path.display(),
        lin.model,
        ops,
        lin.keys.len(),
        if lin.keys.len() == 1 { "" } else { "s" },
        lin.elapsed_ms
    );
    if let Some(k) = lin.keys.iter().find(|k| k.verdict == Verdict::Invalid) {
        if let Some(c) = &k.counterexample {
            line.push_str(&format!(
                ": {}: cannot linearize {}",
                key_name(k),
                describe_op(&c.op)
            ));
        }
    } else if let Some(k) = lin.keys.iter().find(|k| k.verdict == Verdict::Unknown) {
        line.push_str(&format!(
            ": {}: {}",
            key_name(k),
            k.reason.as_deref().unwrap_or("undecided")
        ));
    }
    line
}

/// Whether every unknown key was decided-or-timed-out rather than cancelled by another key's failure.
fn report_all_keys(lin: &checker::result::LinearizabilityResult) -> bool {
    !lin.keys.iter().any(|k| {
        k.reason
            .as_deref()
            .is_some_and(|r| r.contains("another key is invalid"))
    })
}

/// `process 3 cas [1,2]` / `process 0 read -> 3`.
fn describe_op(op: &Operation) -> String {
    let outcome = match op.outcome {
        checker::Outcome::Ok => "",
        checker::Outcome::Fail => " (failed)",
        checker::Outcome::Info => " (indeterminate)",
    };
    let body = if op.input.is_null() || (op.outcome == checker::Outcome::Ok && op.output != op.input) {
        if op.input.is_null() {
            format!("{} -> {}", op.f, op.output)
        } else {
            format!("{} {} -> {}", op.f, op.input, op.output)
        }
    } else {
        format!("{} {}", op.f, op.input)
    };
    format!("process {} {}{}", op.process, body, outcome)
}

fn seconds(ns: u64) -> String {
    format!("{:.3}s", ns as f64 / 1e9)
}

fn times(op: &Operation) -> String {
    // Formats without times number events by position: then only the positions mean something.
    let timed = op.call != op.invoke_index;
    let at = |ns: u64| {
        if timed {
            format!(" at {}", seconds(ns))
        } else {
            String::new()
        }
    };
    match (op.complete_index, op.ret) {
        (Some(ci), Some(ret)) => {
            format!(
                "invoked #{}{}, completed #{}{}",
                op.invoke_index,
                at(op.call),
                ci,
                at(ret)
            )
        }
        _ => format!("invoked #{}{}, never completed", op.invoke_index, at(op.call)),
    }
}

/// The report of one file for a person: a verdict line, and for an invalid key the violation (at most 19
/// lines in all).
fn human(path: &Path, history: &History, report: &CheckReport) -> String {
    let mut out = format!("{}\n", one_line(path, report));
    let Some(lin) = &report.linearizability else {
        return out;
    };
    let invalid: Vec<&KeyResult> = lin
        .keys
        .iter()
        .filter(|k| k.verdict == Verdict::Invalid)
        .collect();
    let unknown = lin.keys.iter().filter(|k| k.verdict == Verdict::Unknown).count();
    if lin.keys.len() > 1 {
        let not_decided = if unknown > 0 && !invalid.is_empty() && !report_all_keys(lin) {
            " (not decided: --all-keys decides every key)"
        } else {
            ""
        };
        out.push_str(&format!(
            "  keys: {} valid, {} invalid, {} unknown{not_decided}\n",
            lin.keys.len() - invalid.len() - unknown,
            invalid.len(),
            unknown
        ));
    }
    let Some(k) = invalid.first() else { return out };
    let Some(c) = &k.counterexample else { return out };
    let ops = history.operations().unwrap_or_default();
    let by_index: HashMap<u64, &Operation> = ops.iter().map(|o| (o.invoke_index, o)).collect();
    out.push_str(&format!("  {}: no linearization can place\n", key_name(k)));
    out.push_str(&format!("    {}\n", describe_op(&c.op)));
    out.push_str(&format!("    ({})\n", times(&c.op)));
    if let Some(p) = c.prefixes.first() {
        let total = p.omitted + p.ops.len();
        out.push_str(&format!(
            "  after the longest linearizable prefix ({total} ops; {} found), which ends:\n",
            c.prefixes.len()
        ));
        let last = p.ops.len().saturating_sub(5);
        for (i, s) in p.ops[last..].iter().zip(&p.states[last..]) {
            let op = by_index
                .get(i)
                .map(|o| describe_op(o))
                .unwrap_or_else(|| format!("op #{i}"));
            out.push_str(&format!("    {op:<44} state {s}\n"));
        }
    } else {
        out.push_str("  no operation can be linearized first\n");
    }
    // Operations still open when the failing one completed: the alternatives the search tried.
    let end = c.op.ret.unwrap_or(u64::MAX);
    let linearized: std::collections::HashSet<u64> = c
        .prefixes
        .first()
        .map(|p| p.ops.iter().copied().collect())
        .unwrap_or_default();
    let open: Vec<&Operation> = c
        .window
        .iter()
        .filter(|o| o.invoke_index != c.op.invoke_index && !linearized.contains(&o.invoke_index))
        .filter(|o| o.call <= end)
        .collect();
    if !open.is_empty() {
        out.push_str(&format!("  concurrent and not linearized ({}):\n", open.len()));
        for o in open.iter().take(4) {
            out.push_str(&format!("    {}  ({})\n", describe_op(o), times(o)));
        }
        if open.len() > 4 {
            out.push_str(&format!(
                "    ... and {} more (--json shows them)\n",
                open.len() - 4
            ));
        }
    }
    if invalid.len() > 1 {
        let names: Vec<String> = invalid[1..].iter().take(5).map(|k| key_name(k)).collect();
        out.push_str(&format!("  also invalid: {}\n", names.join(", ")));
    }
    out
}
