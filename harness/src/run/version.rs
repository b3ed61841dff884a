//! The system's version for the run record, through the spec's `version` command.

use crate::spec::LoadedSpec;
use std::time::Duration;

/// The system's version through the spec's `version` command (first line), or why not.
pub(crate) async fn system_version(spec: &LoadedSpec) -> String {
    let Some(v) = &spec.spec.version else {
        return "unknown (the spec has no version command)".into();
    };
    let prog = if v[0] == spec.spec.command[0] {
        crate::spec::resolve_program(spec)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| v[0].clone())
    } else {
        v[0].clone()
    };
    let out = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::process::Command::new(&prog)
            .args(&v[1..])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    match out {
        Ok(Ok(o)) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let text = if text.trim().is_empty() {
                String::from_utf8_lossy(&o.stderr).into_owned()
            } else {
                text
            };
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(2)
                .collect::<Vec<_>>()
                .join("; ")
        }
        Ok(Ok(o)) => format!("unknown ({} exited with {})", prog, o.status),
        Ok(Err(e)) => format!("unknown ({prog}: {e})"),
        Err(_) => format!("unknown ({prog} did not answer within 5 s)"),
    }
}
