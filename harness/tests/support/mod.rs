//! Helpers shared by the harness's real tests (included with `mod support;`).
#![allow(dead_code)]

use harness::LoadedSpec;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A shipped spec, `dbs/<name>`.
pub fn spec(name: &str) -> Arc<LoadedSpec> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbs").join(name);
    Arc::new(LoadedSpec::from_path(&p).unwrap())
}

/// Puts raftkv where the spec finds it (next to this test's executable folder), building it when missing.
pub fn ensure_raftkv() {
    let exe = std::env::current_exe().unwrap();
    let profile_dir: PathBuf = exe.parent().unwrap().parent().unwrap().to_path_buf();
    if profile_dir.join("raftkv").is_file() {
        return;
    }
    let mut cmd = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"));
    cmd.args(["build", "-p", "raftkv", "--target-dir"])
        .arg(profile_dir.parent().unwrap())
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(cmd.status().unwrap().success(), "building raftkv failed");
}
