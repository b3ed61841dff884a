//! From a suite file to the list of cells: rows expanded over their list-valued fields, each combination
//! checked as a run's first phase would check it (and its node arguments by the spec's `check_args`), the
//! seeds (`--seeds` replaces the file's), `--only` and `--shard`.

use super::file::{Entry, LoadedSuite};
use super::SuiteFileError;
use crate::{Backend, LoadedSpec, RunConfig};
use results::suite::{Expectation, Share, SuiteRow};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the command line adds to a suite file.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Comma-separated globs (`*`, `?`) over row ids; only matching rows run.
    pub only: Option<String>,
    /// Replaces the file's seeds.
    pub seeds: Option<Vec<u64>>,
    /// `(k, n)`: run the cells whose position in the whole suite is `k-1` modulo `n`.
    pub shard: Option<(u32, u32)>,
    pub store: PathBuf,
}

/// A row ready to run: its record and the run configuration of its cells (seed and name set per cell).
#[derive(Debug, Clone)]
pub struct PlannedRow {
    pub row: SuiteRow,
    pub config: RunConfig,
}

/// The whole suite, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub file: String,
    pub seeds: Vec<u64>,
    pub rows: Vec<PlannedRow>,
    /// The cells this run (or shard) runs: (row index, seed), in order.
    pub cells: Vec<(usize, u64)>,
    pub shard: Option<(u32, u32)>,
}

impl Plan {
    /// The cells as (row id, seed).
    pub fn cell_keys(&self) -> Vec<(String, u64)> {
        self.cells
            .iter()
            .map(|(i, s)| (self.rows[*i].row.id.clone(), *s))
            .collect()
    }

    /// The run configuration of a cell.
    pub fn config(&self, row: usize, seed: u64) -> RunConfig {
        let mut c = self.rows[row].config.clone();
        c.seed = Some(seed);
        c.name = Some(cell_test_name(&self.name, &self.rows[row].row.id, seed));
        c
    }
}

/// The test name of a cell's run: `<suite>.<row>.s<seed>` (its folders: `<store>/<that>/<timestamp>/`).
pub fn cell_test_name(suite: &str, row: &str, seed: u64) -> String {
    let clean: String = format!("{suite}.{row}.s{seed}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    clean
}

/// Checks a loaded suite file and lists its cells. Nothing is started (the spec's `check_args` command
/// runs, which starts no node).
pub fn plan(s: &LoadedSuite, o: &PlanOptions) -> Result<Plan, SuiteFileError> {
    let seeds = match &o.seeds {
        Some(v) => v.clone(),
        None => s.file.seeds.clone(),
    };
    let seeds_err = |r: &str| match &o.seeds {
        Some(_) => SuiteFileError::flag("--seeds", r),
        None => s.error(None, "seeds", r),
    };
    if seeds.is_empty() {
        return Err(seeds_err("lists no seed: a suite needs at least one"));
    }
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != seeds.len() {
        return Err(seeds_err("lists a seed twice"));
    }
    if s.file.defaults.name.is_some() {
        return Err(s.error(None, "name", "[defaults] cannot name a row"));
    }
    if s.file.row.is_empty() {
        return Err(s.error(None, "row", "the suite has no [[row]]"));
    }
    if let Some((k, n)) = o.shard {
        if n == 0 || k == 0 || k > n {
            return Err(SuiteFileError::flag(
                "--shard",
                format!("{k}/{n}: must be K/N with 1 <= K <= N"),
            ));
        }
    }
    let mut rows: Vec<PlannedRow> = Vec::new();
    for (i, entry) in s.file.row.iter().enumerate() {
        for r in expand_row(s, i, &entry.over(&s.file.defaults), &o.store)? {
            if rows.iter().any(|x| x.row.id == r.row.id) {
                return Err(s.error(Some(i), "name", format!("row {:?} is named twice", r.row.id)));
            }
            rows.push(r);
        }
    }
    if let Some(only) = &o.only {
        let globs: Vec<&str> = only.split(',').map(str::trim).filter(|g| !g.is_empty()).collect();
        rows.retain(|r| globs.iter().any(|g| glob_match(g, &r.row.id)));
        if rows.is_empty() {
            return Err(SuiteFileError::flag(
                "--only",
                format!("{only}: matches no row of {}", s.origin),
            ));
        }
    }
    let all: Vec<(usize, u64)> = (0..rows.len())
        .flat_map(|r| seeds.iter().map(move |s| (r, *s)))
        .collect();
    let cells = match o.shard {
        Some((k, n)) => all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i as u32 % n == k - 1)
            .map(|(_, c)| c)
            .collect(),
        None => all,
    };
    Ok(Plan {
        name: s.name.clone(),
        description: s.file.description.clone(),
        file: s.origin.clone(),
        seeds,
        rows,
        cells,
        shard: o.shard,
    })
}

/// One `[[row]]` (with the defaults applied) as the combinations of its list-valued fields.
fn expand_row(s: &LoadedSuite, i: usize, e: &Entry, store: &Path) -> Result<Vec<PlannedRow>, SuiteFileError> {
    let name = e
        .name
        .clone()
        .ok_or_else(|| s.error(Some(i), "name", "every row needs a name"))?;
    if name.trim().is_empty() {
        return Err(s.error(Some(i), "name", "must not be empty"));
    }
    let expect = expectation(s, i, e, &s.file.row[i])?;
    let dbs =
        e.db.as_ref()
            .map(|d| d.values())
            .ok_or_else(|| s.error(Some(i), "db", "no DB spec: set db in the row or in [defaults]"))?;
    let workloads = e
        .workload
        .as_ref()
        .map(|w| w.values())
        .unwrap_or_else(|| vec!["cas-register".into()]);
    let nemeses = e
        .nemesis
        .as_ref()
        .map(|n| n.values())
        .unwrap_or_else(|| vec!["none".into()]);
    let arg_sets = e
        .node_args
        .as_ref()
        .map(|a| a.variants())
        .unwrap_or_else(|| vec![vec![]]);
    for (field, n) in [
        ("db", dbs.len()),
        ("workload", workloads.len()),
        ("nemesis", nemeses.len()),
        ("node_args", arg_sets.len()),
    ] {
        if n == 0 {
            return Err(s.error(Some(i), field, "an empty list runs nothing"));
        }
    }
    let mut specs = Vec::new();
    for db in &dbs {
        let path = s.base_dir.join(db);
        let spec = LoadedSpec::from_path(&path).map_err(|e| s.error(Some(i), "db", format!("{db}: {e}")))?;
        specs.push((db.clone(), spec));
    }
    let mut out = Vec::new();
    for (db_name, spec) in &specs {
        for workload in &workloads {
            for nemesis in &nemeses {
                for args in &arg_sets {
                    let mut id = name.clone();
                    let mut varying = Vec::new();
                    if dbs.len() > 1 {
                        varying.push(spec.spec.name.clone());
                    }
                    if workloads.len() > 1 {
                        varying.push(workload.clone());
                    }
                    if nemeses.len() > 1 {
                        varying.push(nemesis.clone());
                    }
                    if arg_sets.len() > 1 {
                        varying.push(args.join(" "));
                    }
                    if !varying.is_empty() {
                        id = format!("{id}[{}]", varying.join(", "));
                    }
                    let config = run_config(s, i, e, spec, workload, nemesis, args, store)?;
                    check_node_args(s, i, spec, args)?;
                    crate::run::validate(&config).map_err(|err| {
                        let msg = err.to_string();
                        let field = msg
                            .strip_prefix("--")
                            .and_then(|m| m.split([':', ' ']).next())
                            .map(|f| f.replace('-', "_"))
                            .unwrap_or_else(|| "db".into());
                        s.error(Some(i), &field, format!("{db_name}: {msg}"))
                    })?;
                    out.push(PlannedRow {
                        row: SuiteRow {
                            id,
                            db: spec.spec.name.clone(),
                            spec: db_name.clone(),
                            workload: workload.clone(),
                            nemesis: nemesis.clone(),
                            node_args: args.clone(),
                            nodes: config.nodes,
                            concurrency: config.concurrency,
                            time_limit_s: config.time_limit.as_secs_f64(),
                            expect,
                        },
                        config,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The row's expectation (`e`: with the defaults applied; `own`: as the row wrote it, so an `at_least` of
/// `[defaults]` does not make a row that expects valid wrong).
fn expectation(s: &LoadedSuite, i: usize, e: &Entry, own: &Entry) -> Result<Expectation, SuiteFileError> {
    match (e.expect.as_deref(), e.at_least.as_deref()) {
        (None, _) => Err(s.error(
            Some(i),
            "expect",
            "every row needs expect = \"valid\" or \"invalid\"",
        )),
        (Some("valid"), _) if own.at_least.is_none() => Ok(Expectation::Valid),
        (Some("valid"), Some(_)) => Err(s.error(
            Some(i),
            "at_least",
            "only for expect = \"invalid\" (a valid row must be valid on every seed)",
        )),
        (Some("invalid"), None) => Err(s.error(
            Some(i),
            "at_least",
            "expect = \"invalid\" needs the share of seeds that must find the bug, e.g. at_least = \"4/5\"",
        )),
        (Some("invalid"), Some(share)) => parse_share(share)
            .map(|at_least| Expectation::Invalid { at_least })
            .ok_or_else(|| {
                s.error(
                    Some(i),
                    "at_least",
                    format!("{share:?}: expected K/N with 1 <= K <= N, e.g. \"4/5\""),
                )
            }),
        (Some(other), _) => Err(s.error(
            Some(i),
            "expect",
            format!("{other:?}: expected \"valid\" or \"invalid\""),
        )),
    }
}

/// `"4/5"` or `"4 of 5"`.
fn parse_share(s: &str) -> Option<Share> {
    let (a, b) = s.split_once('/').or_else(|| s.split_once(" of "))?;
    let (found, of) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (found >= 1 && found <= of).then_some(Share { found, of })
}

#[allow(clippy::too_many_arguments)]
fn run_config(
    s: &LoadedSuite,
    i: usize,
    e: &Entry,
    spec: &LoadedSpec,
    workload: &str,
    nemesis: &str,
    args: &[String],
    store: &Path,
) -> Result<RunConfig, SuiteFileError> {
    let secs = |field: &str, v: Option<f64>, default: f64| -> Result<Duration, SuiteFileError> {
        let v = v.unwrap_or(default);
        if !(0.0..1e7).contains(&v) {
            return Err(s.error(Some(i), field, format!("{v}: must be a number of seconds")));
        }
        Ok(Duration::from_secs_f64(v))
    };
    let backend = match e.backend.as_deref() {
        None => None,
        Some("local") => Some(Backend::Local),
        Some("netns") => Some(Backend::Netns),
        Some(b) => {
            return Err(s.error(
                Some(i),
                "backend",
                format!("{b:?}: expected \"local\" or \"netns\""),
            ))
        }
    };
    Ok(RunConfig {
        spec: spec.clone(),
        backend,
        workload: Some(workload.to_string()),
        nodes: e.nodes.unwrap_or(3),
        concurrency: e.concurrency.unwrap_or(10),
        rate: e.rate,
        time_limit: secs("time_limit", e.time_limit, 20.0)?,
        seed: None,
        node_args: args.to_vec(),
        nemesis: nemesis.to_string(),
        nemesis_interval: e
            .nemesis_interval
            .map(|v| secs("nemesis_interval", Some(v), 0.0))
            .transpose()?,
        max_dead: e.max_dead,
        recovery_limit: secs("recovery_limit", e.recovery_limit, 10.0)?,
        store: store.to_path_buf(),
        name: None,
        ssh: None,
        progress: false,
    })
}

/// Runs the spec's `check_args` command with the row's node arguments appended (when the spec has one and
/// the row has arguments): a refusal is a bad suite file.
fn check_node_args(
    s: &LoadedSuite,
    i: usize,
    spec: &LoadedSpec,
    args: &[String],
) -> Result<(), SuiteFileError> {
    let Some(check) = &spec.spec.check_args else {
        return Ok(());
    };
    if args.is_empty() {
        return Ok(());
    }
    let prog = crate::spec::find_spec_program(spec, &check[0]).ok_or_else(|| {
        s.error(
            Some(i),
            "node_args",
            format!("{}: check_args: program {:?} not found", spec.origin, check[0]),
        )
    })?;
    let mut child = std::process::Command::new(prog)
        .args(&check[1..])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| s.error(Some(i), "node_args", format!("{}: check_args: {e}", spec.origin)))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(s.error(
                    Some(i),
                    "node_args",
                    format!("{}: check_args did not answer within 10 s", spec.origin),
                ));
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    let reason = err
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("refused")
        .trim()
        .to_string();
    Err(s.error(
        Some(i),
        "node_args",
        format!("{} refuses {:?}: {reason}", spec.spec.name, args.join(" ")),
    ))
}

/// `*` any run of characters, `?` one character; everything else literal.
pub fn glob_match(glob: &str, s: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), s.chars().collect());
    let (mut gi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == t[ti]) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some(gi);
            mark = ti;
            gi += 1;
        } else if let Some(st) = star {
            gi = st + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

/// `1,2,3` and ranges `1-5`.
pub fn parse_seeds(list: &str) -> Result<Vec<u64>, SuiteFileError> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || SuiteFileError::flag("--seeds", format!("{part:?}: expected seeds like 1,2,3 or 1-5"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if b < a || b - a > 10_000 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

/// `K/N`.
pub fn parse_shard(s: &str) -> Result<(u32, u32), SuiteFileError> {
    let bad = || SuiteFileError::flag("--shard", format!("{s:?}: expected K/N, e.g. 1/4"));
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u32, u32) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("early-*", "early-ack"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("early", "early-ack"));
        assert!(glob_match("*ack*", "early-ack[etcd]"));
    }

    #[test]
    fn seeds_shares_and_shards_parse() {
        assert_eq!(parse_seeds("1-3,7").unwrap(), vec![1, 2, 3, 7]);
        assert!(parse_seeds("x").is_err());
        assert_eq!(parse_share("4/5"), Some(Share { found: 4, of: 5 }));
        assert_eq!(parse_share("4 of 5"), Some(Share { found: 4, of: 5 }));
        assert_eq!(parse_share("6/5"), None);
        assert_eq!(parse_shard("2/3").unwrap(), (2, 3));
        assert!(parse_shard("0/3").is_err());
        assert!(parse_shard("4/3").is_err());
    }
}
