//! `faultline run` needs no root on the local backend: run as the `nobody` user (uid 65534, through
//! setpriv(1)), with copies of `faultline` and `raftkv` in a folder that user can reach.

#[path = "run_support.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use support::*;

#[test]
fn local_backend_runs_without_root() {
    assert!(is_root(), "this test drops from root to nobody (CI runs as root)");
    ensure_raftkv();
    let dir = tempfile::Builder::new()
        .prefix("faultline-nobody-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = faultline();
    for name in ["faultline", "raftkv"] {
        let dst = dir.path().join(name);
        std::fs::copy(bin.parent().unwrap().join(name), &dst).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let store = dir.path().join("store");
    let run = |extra: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(dir.path().join("faultline"))
            .args(["run", "--time-limit", "3", "--concurrency", "4", "--store"])
            .arg(&store)
            .args(extra)
            .env("PATH", "/usr/bin:/bin")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["--nemesis", "kill,pause", "--nemesis-interval", "1"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("could not remove"), "{stderr}");
    let run_dir = latest(&store);
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("test.json")).unwrap()).unwrap();
    assert_eq!(test["backend"], "local");
    assert_eq!(leftovers(&run_dir), Vec::<String>::new());
    // Network faults need root: refused before anything starts.
    let out = run(&["--nemesis", "partition"]);
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("need root"));
}
