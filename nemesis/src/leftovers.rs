//! `heal_leftovers`: removes what a killed harness left of the nemesis, without any cluster.

use crate::error::NemesisError;
use crate::firewall::{self, CHAIN_PREFIX};
use std::process::Command;

/// Where a leftover chain was found: the host, or a network namespace.
fn place_name(ns: Option<&str>) -> String {
    ns.map_or("host".to_string(), |n| format!("netns {n}"))
}

fn run(ns: Option<&str>, argv: &[String]) -> Result<String, NemesisError> {
    let mut cmd = match ns {
        Some(n) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", n]);
            c.args(argv);
            c
        }
        None => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    let out = cmd.output().map_err(|source| NemesisError::Io {
        path: argv[0].clone(),
        source,
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NemesisError::Command {
            place: place_name(ns),
            argv: argv.join(" "),
            status: out
                .status
                .code()
                .map_or("killed by a signal".into(), |c| format!("exit {c}")),
            stderr: String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        })
    }
}

/// Removes faultline's iptables chains (with their jump rules) in the host namespace and in each of
/// `namespaces` that still exists: the chain of `run_id`, or every `FL-` chain when `run_id` is `None`
/// (which also removes the chains of runs still going). With a run id, also removes the run's node cgroups
/// that no process uses any more. Idempotent. Returns what it removed, one line each (`host: FL-abc`).
pub fn heal_leftovers(run_id: Option<&str>, namespaces: &[String]) -> Result<Vec<String>, NemesisError> {
    let wanted = run_id.map(firewall::chain_name);
    let select = |c: &str| match &wanted {
        Some(w) => c == w,
        None => c.starts_with(CHAIN_PREFIX),
    };
    let mut removed = Vec::new();
    let mut places: Vec<Option<&str>> = vec![None];
    for ns in namespaces {
        if std::path::Path::new("/var/run/netns").join(ns).exists() {
            places.push(Some(ns.as_str()));
        }
    }
    for ns in places {
        let listing = run(ns, &firewall::iptables(&["-S"]))?;
        for argv in firewall::removal_commands(&listing, select) {
            run(ns, &argv)?;
            if argv[2] == "-X" {
                removed.push(format!("{}: {}", place_name(ns), argv[3]));
            }
        }
    }
    if let Some(id) = run_id {
        for dir in crate::cgroup::remove_run(id) {
            removed.push(format!("cgroup {dir}"));
        }
    }
    Ok(removed)
}
