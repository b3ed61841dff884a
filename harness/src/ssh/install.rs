//! The spec's `[install]` on the ssh backend: on every host (in parallel), each file is uploaded unless the
//! host already has a file with the same SHA-256 at its destination, then each command runs once, in order,
//! each within the section's `timeout_s`. A failure is the host and one line (exit 3). Installed files stay on
//! the hosts after the run (that is what lets the next run skip them); the run's own folder is removed as
//! always.

use super::{sh, Remotes, SshHost, COMMAND_TIMEOUT};
use crate::spec::{LoadedSpec, Vars};
use crate::HarnessError;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes stdin to `$1` (through `$1.part`, renamed when complete) and makes it executable.
const UPLOAD: &str =
    r#"mkdir -p "$(dirname "$1")" && cat >"$1.part" && chmod 755 "$1.part" && mv -f "$1.part" "$1""#;

/// A local file read once for every host: its bytes and their SHA-256.
pub struct LocalFile {
    pub path: PathBuf,
    bytes: Vec<u8>,
    sha256: String,
}

impl LocalFile {
    pub fn read(path: &Path) -> Result<LocalFile, HarnessError> {
        use sha2::Digest;
        let bytes = std::fs::read(path).map_err(HarnessError::io(format!("reading {}", path.display())))?;
        let sha256 = format!("{:x}", sha2::Sha256::digest(&bytes));
        Ok(LocalFile {
            path: path.to_path_buf(),
            bytes,
            sha256,
        })
    }
}

/// Where `dest` of an install file lands on host `h` (relative: below its `dir`).
pub fn dest_on(h: &SshHost, dest: &str) -> PathBuf {
    let d = Path::new(dest);
    if d.is_absolute() {
        d.to_path_buf()
    } else {
        h.dir.join(d)
    }
}

/// Sends `f` to `remote` on host `i` unless a file with the same SHA-256 is already there (`Ok(false)`:
/// nothing sent). The copy goes to a temporary name, then is renamed, and is made executable.
pub fn send_if_changed(
    r: &Remotes,
    i: usize,
    f: &LocalFile,
    remote: &Path,
    timeout: Duration,
) -> Result<bool, HarnessError> {
    let dst = remote.display().to_string();
    let have = r.run(
        i,
        &["sha256sum".into(), "--".into(), dst.clone()],
        COMMAND_TIMEOUT,
    )?;
    if have.success() && have.stdout_text().split_whitespace().next() == Some(f.sha256.as_str()) {
        return Ok(false);
    }
    let out = r.run_with_input(
        i,
        &sh(UPLOAD, "faultline-upload", [dst]),
        f.bytes.clone(),
        timeout,
    )?;
    if !out.success() {
        return Err(HarnessError::Ssh {
            host: r.hosts()[i].label(),
            reason: format!(
                "uploading {} to {}: {}",
                f.path.display(),
                remote.display(),
                out.stderr_line()
            ),
        });
    }
    Ok(true)
}

/// Runs the spec's `[install]` on every host of `r`. Returns, per host, where the node program was
/// installed when one of the files is `program` (the node program found on this machine), so the nodes
/// run that copy.
pub fn install(r: &Remotes, spec: &LoadedSpec, program: &Path) -> Result<Vec<Option<PathBuf>>, HarnessError> {
    let Some(inst) = &spec.spec.install else {
        return Ok(vec![None; r.hosts().len()]);
    };
    let sources = crate::spec::resolve_install(spec)?;
    let files: Vec<(LocalFile, &str)> = sources
        .iter()
        .zip(&inst.files)
        .map(|(p, f)| Ok((LocalFile::read(p)?, f.dest.as_str())))
        .collect::<Result<_, HarnessError>>()?;
    let same = |p: &Path| std::fs::canonicalize(p).ok() == std::fs::canonicalize(program).ok();
    let program_dest = files.iter().find(|(f, _)| same(&f.path)).map(|(_, d)| *d);
    let timeout = Duration::from_secs_f64(inst.timeout_s);
    let results: Vec<Result<(), HarnessError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..r.hosts().len())
            .map(|i| {
                let files = &files;
                s.spawn(move || install_host(r, i, files, &inst.commands, timeout))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(HarnessError::Setup("install thread panicked".into())))
            })
            .collect()
    });
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(r.hosts()
        .iter()
        .map(|h| program_dest.map(|d| dest_on(h, d)))
        .collect())
}

/// One host: its files, then its commands; prints what it did on one line.
fn install_host(
    r: &Remotes,
    i: usize,
    files: &[(LocalFile, &str)],
    commands: &[Vec<String>],
    timeout: Duration,
) -> Result<(), HarnessError> {
    let h = &r.hosts()[i];
    let (mut sent, mut kept) = (Vec::new(), Vec::new());
    for (f, dest) in files {
        let to = dest_on(h, dest);
        if send_if_changed(r, i, f, &to, timeout)? {
            sent.push(to.display().to_string());
        } else {
            kept.push(to.display().to_string());
        }
    }
    let mut vars = Vars::new();
    vars.set("dir", h.dir.display()).set("host", h.address);
    for (k, c) in commands.iter().enumerate() {
        let argv: Vec<String> = c.iter().map(|a| vars.fill(a)).collect();
        let out = r.run(i, &argv, timeout)?;
        if !out.success() {
            return Err(HarnessError::Ssh {
                host: h.label(),
                reason: format!(
                    "install.commands[{k}] ({}): exit {}: {}",
                    argv.join(" "),
                    out.status.map_or("by a signal".to_string(), |c| c.to_string()),
                    out.stderr_line()
                ),
            });
        }
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "nothing".to_string()
        } else {
            v.join(", ")
        }
    };
    eprintln!(
        "faultline: install on {}: sent {}; unchanged {}; {} command(s) run",
        h.label(),
        list(&sent),
        list(&kept),
        commands.len()
    );
    Ok(())
}
