//! One run's folder (`<store>/<test-name>/<timestamp>/`) and the names of the files in it. The run's record
//! (`test.json`) is typed in [`crate::record`].

use std::path::{Path, PathBuf};

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

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One run's folder and the well-known files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub(crate) path: PathBuf,
    pub(crate) test_name: String,
    pub(crate) timestamp: String,
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
                ((n.ends_with(".log") || n.ends_with(".data.txt")) && e.path().is_file())
                    .then(|| format!("{NODES_DIR}/{n}"))
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
