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

use crate::run_dir::{io, write_atomically};
pub use crate::run_dir::{
    RunDir, StoreError, HISTORY_FILE, INDEX_FILE, LATEST_LINK, NODES_DIR, REPORT_FILE, RESULTS_FILE,
    TEST_FILE,
};

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
        let suites = crate::suite::suite_links(&self.root);
        let html = crate::index::render_index(&runs, &suites);
        let path = self.root.join(INDEX_FILE);
        write_atomically(&path, html.as_bytes())?;
        Ok(path)
    }
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
    let ts = jiff::Timestamp::from_second(secs as i64).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime("%Y%m%dT%H%M%SZ").to_string()
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
