//! The results store: one folder per run, `latest`, and the index page.
//!
//! Layout (see `docs/results.md`):
//! ```text
//! store/
//!   index.html                      every run, newest first
//!   latest -> <test-name>/<timestamp>
//!   <test-name>/<timestamp>/        one run (timestamp like 20261130T120102Z, -1, -2... when taken)
//!     history.jsonl test.json results.json report.html latency-raw.{png,svg} ... nodes/<id>.log
//! ```

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the history file in a run folder.
pub const HISTORY_FILE: &str = "history.jsonl";
/// Name of the configuration file in a run folder.
pub const TEST_FILE: &str = "test.json";
/// Name of the checkers' results in a run folder.
pub const RESULTS_FILE: &str = "results.json";
/// Name of the report page in a run folder.
pub const REPORT_FILE: &str = "report.html";
/// Name of the folder of node logs in a run folder.
pub const NODES_DIR: &str = "nodes";
/// Name of the symlink to the newest run, in the store root.
pub const LATEST_LINK: &str = "latest";
/// Name of the index page, in the store root.
pub const INDEX_FILE: &str = "index.html";

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A test name that cannot name a folder of the store.
    #[error("test name {0:?} is not usable as a store folder (empty, `latest`, or only dots)")]
    BadTestName(String),
    /// A folder that is not a run folder of a store.
    #[error("{}: not a run folder (expected <store>/<test-name>/<timestamp>/)", .0.display())]
    NotARun(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A results store rooted at one folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `dir`, creating the folder if it does not exist.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        let root = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        Ok(Store { root })
    }

    /// The store's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a fresh run folder `<root>/<test-name>/<timestamp>/` (with its `nodes/`) and points
    /// `latest` at it. Characters of `test_name` other than letters, digits, `.`, `_` and `-` become `-`.
    /// Two runs created in the same second get distinct folders (`...Z`, `...Z-1`, ...).
    pub fn create_run(&self, test_name: &str) -> Result<RunDir, StoreError> {
        let name = sanitize_test_name(test_name)?;
        let test_dir = self.root.join(&name);
        std::fs::create_dir_all(&test_dir).map_err(io(&test_dir))?;
        let stamp = utc_timestamp(SystemTime::now());
        let mut n = 0u32;
        let (path, timestamp) = loop {
            let ts = if n == 0 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
            let p = test_dir.join(&ts);
            match std::fs::create_dir(&p) {
                Ok(()) => break (p, ts),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(StoreError::Io { path: p, source: e }),
            }
        };
        let nodes = path.join(NODES_DIR);
        std::fs::create_dir_all(&nodes).map_err(io(&nodes))?;
        self.point_latest(&name, &timestamp)?;
        Ok(RunDir {
            path,
            test_name: name,
            timestamp,
        })
    }

    /// Points `latest` at `<name>/<timestamp>` atomically (a new symlink renamed over the old one).
    fn point_latest(&self, name: &str, timestamp: &str) -> Result<(), StoreError> {
        let link = self.root.join(LATEST_LINK);
        let tmp = self
            .root
            .join(format!(".{LATEST_LINK}.{}.{}", std::process::id(), timestamp));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(Path::new(name).join(timestamp), &tmp).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(io(&link))?;
        Ok(())
    }

    /// Every run of the store, newest first (by timestamp, then test name).
    pub fn runs(&self) -> Result<Vec<RunDir>, StoreError> {
        let mut runs = Vec::new();
        for test in std::fs::read_dir(&self.root).map_err(io(&self.root))? {
            let test = test.map_err(io(&self.root))?;
            let name = test.file_name().to_string_lossy().into_owned();
            if name == LATEST_LINK || name.starts_with('.') {
                continue;
            }
            let ft = test.file_type().map_err(io(&test.path()))?;
            if !ft.is_dir() {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(test.path()) else {
                continue;
            };
            for run in entries.flatten() {
                let ts = run.file_name().to_string_lossy().into_owned();
                if parse_timestamp_key(&ts).is_some() && run.path().is_dir() {
                    runs.push(RunDir {
                        path: run.path(),
                        test_name: name.clone(),
                        timestamp: ts,
                    });
                }
            }
        }
        // Folder names have second precision; runs of different tests in the same second are ordered by
        // their folders' creation times.
        let created = |r: &RunDir| {
            std::fs::metadata(&r.path)
                .and_then(|m| m.created().or_else(|_| m.modified()))
                .ok()
        };
        let mut keyed: Vec<_> = runs
            .into_iter()
            .map(|r| (parse_timestamp_key(&r.timestamp), created(&r), r))
            .collect();
        keyed.sort_by(|a, b| {
            (&b.0, &b.1)
                .cmp(&(&a.0, &a.1))
                .then_with(|| a.2.test_name.cmp(&b.2.test_name))
        });
        let runs: Vec<RunDir> = keyed.into_iter().map(|(_, _, r)| r).collect();
        Ok(runs)
    }

    /// The run `latest` points to, if any.
    pub fn latest(&self) -> Option<RunDir> {
        let link = self.root.join(LATEST_LINK);
        let target = std::fs::read_link(&link).ok()?;
        RunDir::open(self.root.join(target)).ok()
    }

    /// Writes `<root>/index.html` listing every run (newest first) and returns its path.
    pub fn write_index(&self) -> Result<PathBuf, StoreError> {
        let runs = self.runs()?;
        let html = crate::index::render_index(&runs);
        let path = self.root.join(INDEX_FILE);
        write_atomically(&path, html.as_bytes())?;
        Ok(path)
    }
}

/// One run's folder and the well-known files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
    test_name: String,
    timestamp: String,
}

impl RunDir {
    /// Opens an existing run folder `<store>/<test-name>/<timestamp>/` (or a symlink such as `latest`).
    pub fn open(path: impl AsRef<Path>) -> Result<RunDir, StoreError> {
        let given = path.as_ref();
        let path = std::fs::canonicalize(given).map_err(io(given))?;
        if !path.is_dir() {
            return Err(StoreError::NotARun(given.to_path_buf()));
        }
        let timestamp = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let test_name = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(RunDir {
            path,
            test_name,
            timestamp,
        })
    }

    /// The run's folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The test's name (the parent folder's name).
    pub fn test_name(&self) -> &str {
        &self.test_name
    }
    /// The run's folder name, a UTC timestamp like `20261130T120102Z` (maybe with a `-N` suffix).
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }
    /// `history.jsonl`.
    pub fn history_path(&self) -> PathBuf {
        self.path.join(HISTORY_FILE)
    }
    /// `test.json`.
    pub fn test_path(&self) -> PathBuf {
        self.path.join(TEST_FILE)
    }
    /// `results.json`.
    pub fn results_path(&self) -> PathBuf {
        self.path.join(RESULTS_FILE)
    }
    /// `report.html`.
    pub fn report_path(&self) -> PathBuf {
        self.path.join(REPORT_FILE)
    }
    /// `nodes/`, where the harness puts node logs and data.
    pub fn nodes_dir(&self) -> PathBuf {
        self.path.join(NODES_DIR)
    }
    /// `nodes/<id>.log`.
    pub fn node_log_path(&self, node_id: &str) -> PathBuf {
        self.nodes_dir().join(format!("{node_id}.log"))
    }
    /// The node logs present, sorted by name, as paths relative to the run folder (`nodes/n1.log`).
    pub fn node_logs(&self) -> Vec<String> {
        let mut logs: Vec<String> = std::fs::read_dir(self.nodes_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                (n.ends_with(".log") && e.path().is_file()).then(|| format!("{NODES_DIR}/{n}"))
            })
            .collect();
        logs.sort();
        logs
    }
}

/// Writes a file through a temporary sibling and a rename, so readers never see half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let file_name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Makes a test name safe as one folder name.
fn sanitize_test_name(name: &str) -> Result<String, StoreError> {
    let clean: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.is_empty() || clean == LATEST_LINK || clean.chars().all(|c| c == '.') {
        return Err(StoreError::BadTestName(name.to_string()));
    }
    Ok(clean)
}

/// `20261130T120102Z` for a time (UTC, second precision).
pub fn utc_timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Parses a run folder name (`20261130T120102Z` or `20261130T120102Z-3`) into a sortable key.
fn parse_timestamp_key(s: &str) -> Option<(String, u32)> {
    let (base, n) = match s.split_once('-') {
        Some((b, n)) => (b, n.parse::<u32>().ok()?),
        None => (s, 0),
    };
    let b = base.as_bytes();
    let ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[9..15].iter().all(u8::is_ascii_digit);
    ok.then(|| (base.to_string(), n))
}

/// Seconds since the epoch to (year, month, day, hour, minute, second), UTC (proleptic Gregorian).
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, mi, s) = ((rem / 3600) as u32, ((rem % 3600) / 60) as u32, (rem % 60) as u32);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d, h, mi, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_and_compact() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "19700101T000000Z");
        // 2026-11-30 12:01:02 UTC
        let t = UNIX_EPOCH + Duration::from_secs(1_796_040_062);
        assert_eq!(utc_timestamp(t), "20261130T120102Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_timestamp(leap), "20000229T000000Z");
    }

    #[test]
    fn timestamp_keys_sort_suffixes_numerically() {
        let a = parse_timestamp_key("20261130T120102Z-2").unwrap();
        let b = parse_timestamp_key("20261130T120102Z-10").unwrap();
        assert!(a < b);
        assert!(parse_timestamp_key("latest").is_none());
        assert!(parse_timestamp_key("20261130T120102Z-x").is_none());
    }

    #[test]
    fn runs_in_one_second_are_distinct_and_latest_follows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let runs: Vec<RunDir> = (0..5)
            .map(|_| store.create_run("cas register/1").unwrap())
            .collect();
        let mut paths: Vec<_> = runs.iter().map(|r| r.path().to_path_buf()).collect();
        paths.dedup();
        assert_eq!(paths.len(), 5);
        assert_eq!(runs[0].test_name(), "cas-register-1");
        assert!(runs[4].nodes_dir().is_dir());
        let latest = store.latest().unwrap();
        assert_eq!(latest.path(), std::fs::canonicalize(runs[4].path()).unwrap());
        let listed = store.runs().unwrap();
        assert_eq!(listed.len(), 5);
        assert_eq!(listed[0].timestamp(), runs[4].timestamp());
        assert_eq!(listed[4].timestamp(), runs[0].timestamp());
    }

    #[test]
    fn bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(store.create_run(""), Err(StoreError::BadTestName(_))));
        assert!(matches!(store.create_run(".."), Err(StoreError::BadTestName(_))));
        assert!(matches!(
            store.create_run("latest"),
            Err(StoreError::BadTestName(_))
        ));
        // Slashes cannot escape the store.
        let r = store.create_run("../../etc").unwrap();
        assert!(r.path().starts_with(dir.path()));
    }
}
