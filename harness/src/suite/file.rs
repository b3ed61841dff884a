//! Suite files (TOML): the matrix of a nightly suite. The format is documented in `docs/suites.md`.
//!
//! ```toml
//! name = "detection"             # default: the file's stem
//! seeds = [1, 2, 3, 4, 5]
//! [defaults]                     # run options of every row; a row may set any of them again
//! db = "../dbs/raftkv.toml"      # relative to this file
//! nemesis = "partition,kill,pause"
//! [[row]]
//! name = "early-ack"
//! node_args = ["--bug=early-ack"]
//! expect = "invalid"
//! at_least = "4/5"
//! ```
//!
//! `db`, `workload`, `nemesis` and `node_args` take one value or a list of values (for `node_args`, a list
//! of argument lists): a row runs every combination. Every table denies unknown fields; every error is one
//! line `file:line: field: reason`.

use super::SuiteFileError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One value or several.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub fn values(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `node_args`: one argument list, or a list of them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum NodeArgs {
    One(Vec<String>),
    Many(Vec<Vec<String>>),
}

impl NodeArgs {
    pub fn variants(&self) -> Vec<Vec<String>> {
        match self {
            NodeArgs::One(v) => vec![v.clone()],
            NodeArgs::Many(v) => v.clone(),
        }
    }
}

/// The run options of `[defaults]` and of each `[[row]]` (a row's own values win).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The row's name (only in `[[row]]`).
    pub name: Option<String>,
    /// `valid` or `invalid`.
    pub expect: Option<String>,
    /// For `expect = "invalid"`: the share of seeds that must find the bug, `"4/5"`.
    pub at_least: Option<String>,
    pub db: Option<OneOrMany<String>>,
    pub workload: Option<OneOrMany<String>>,
    pub nemesis: Option<OneOrMany<String>>,
    pub node_args: Option<NodeArgs>,
    pub nodes: Option<usize>,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    /// Seconds of client traffic.
    pub time_limit: Option<f64>,
    pub nemesis_interval: Option<f64>,
    pub max_dead: Option<usize>,
    pub recovery_limit: Option<f64>,
    /// `local` or `netns` (default: netns when root, local otherwise).
    pub backend: Option<String>,
}

impl Entry {
    /// This entry's values, with `defaults` filling what it leaves unset.
    pub fn over(&self, d: &Entry) -> Entry {
        macro_rules! pick {
            ($($f:ident),*) => { Entry { $($f: self.$f.clone().or_else(|| d.$f.clone()),)* } };
        }
        pick!(
            name,
            expect,
            at_least,
            db,
            workload,
            nemesis,
            node_args,
            nodes,
            concurrency,
            rate,
            time_limit,
            nemesis_interval,
            max_dead,
            recovery_limit,
            backend
        )
    }
}

/// A suite file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub defaults: Entry,
    #[serde(default)]
    pub row: Vec<Entry>,
}

/// A suite file read from disk, with what is needed to point at its lines.
#[derive(Debug, Clone)]
pub struct LoadedSuite {
    pub file: SuiteFile,
    /// The path as given (shown in errors).
    pub origin: String,
    pub text: String,
    /// The folder relative paths (`db`) are resolved against.
    pub base_dir: PathBuf,
    /// `name`, or the file's stem.
    pub name: String,
}

impl LoadedSuite {
    /// Reads and parses a suite file (structure only; [`super::plan`] checks the values).
    pub fn from_path(path: &Path) -> Result<LoadedSuite, SuiteFileError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SuiteFileError {
            file: origin.clone(),
            line: None,
            field: String::new(),
            reason: format!("cannot read: {e}"),
        })?;
        let file: SuiteFile = toml::from_str(&text).map_err(|e| toml_error(&origin, &text, &e))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "suite".into());
        let name = file.name.clone().unwrap_or(stem);
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(LoadedSuite {
            file,
            origin,
            text,
            base_dir,
            name,
        })
    }

    /// An error about `field` of row `row` (None: the top level or `[defaults]`).
    pub fn error(&self, row: Option<usize>, field: &str, reason: impl Into<String>) -> SuiteFileError {
        SuiteFileError {
            file: self.origin.clone(),
            line: self.line_of(row, field),
            field: match row {
                Some(i) => format!("row[{i}].{field}"),
                None => field.to_string(),
            },
            reason: reason.into(),
        }
    }

    /// The line of `key` in the `i`th `[[row]]` (or, for None, at the top or in `[defaults]`); else the
    /// row's header line.
    pub fn line_of(&self, row: Option<usize>, key: &str) -> Option<usize> {
        let mut rows_seen = 0usize;
        let mut in_target = row.is_none();
        let mut header = None;
        for (n, raw) in self.text.lines().enumerate() {
            let line = raw.trim();
            if line.starts_with('[') {
                let is_row = line.starts_with("[[row]]");
                in_target = match row {
                    Some(i) => is_row && rows_seen == i,
                    None => line.starts_with("[defaults]"),
                };
                if in_target {
                    header = Some(n + 1);
                }
                if is_row {
                    rows_seen += 1;
                }
                continue;
            }
            let k = line.split('=').next().unwrap_or("").trim().trim_matches('"');
            if in_target && line.contains('=') && k == key {
                return Some(n + 1);
            }
        }
        if row.is_none() {
            // Top-level keys come before any table.
            for (n, raw) in self.text.lines().enumerate() {
                let line = raw.trim();
                if line.starts_with('[') {
                    break;
                }
                if line.split('=').next().map(str::trim) == Some(key) && line.contains('=') {
                    return Some(n + 1);
                }
            }
        }
        header
    }
}

/// A TOML error as `file:line: field: reason`: the line from the error's span, the field named by serde's
/// message (an unknown field) or the key on that line.
fn toml_error(origin: &str, text: &str, e: &toml::de::Error) -> SuiteFileError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let message = e.message().trim().replace('\n', " ");
    let field = between(&message, "unknown field `", "`")
        .or_else(|| between(&message, "missing field `", "`"))
        .or_else(|| {
            let l = text.lines().nth(line? - 1)?;
            l.contains('=')
                .then(|| l.split('=').next().unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    SuiteFileError {
        file: origin.to_string(),
        line,
        field,
        reason: message,
    }
}

fn between(s: &str, a: &str, b: &str) -> Option<String> {
    let start = s.find(a)? + a.len();
    let end = s[start..].find(b)? + start;
    Some(s[start..end].to_string())
}
