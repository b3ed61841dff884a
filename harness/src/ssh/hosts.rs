//! The hosts file of `--backend ssh` (TOML): which machines run the nodes, one node per host, and how to
//! reach them. Every field is checked when the file is read; a mistake is a [`SpecError`] naming the file,
//! the line and the field (exit 254). Schema and a worked example: `docs/ssh.md`.

use crate::SpecError;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// One host, every default filled in. Recorded in the run's state file (so `faultline heal` can reach it
/// again after the harness died).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshHost {
    /// Where `ssh` connects (a name or an address).
    pub host: String,
    pub port: u16,
    /// `None`: ssh's own default (the local user, or the ssh config's).
    pub user: Option<String>,
    /// The private key; `None`: the agent or ssh's defaults. Never a password.
    pub identity: Option<PathBuf>,
    /// Run iptables through `sudo -n` (a user that is not root, with passwordless sudo for iptables).
    pub sudo: bool,
    /// The address the node listens on and its peers and faultline's clients reach it at.
    pub address: IpAddr,
    /// Where faultline keeps its files on the host: `<dir>/<run id>/` holds the nodes' data and logs.
    pub dir: PathBuf,
}

/// A parsed hosts file.
#[derive(Debug, Clone)]
pub struct HostsFile {
    /// The file, for messages.
    pub origin: String,
    /// The known_hosts file host keys are checked against.
    pub known_hosts: PathBuf,
    pub hosts: Vec<SshHost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    known_hosts: Option<Spanned<String>>,
    #[serde(default)]
    host: Vec<Spanned<RawHost>>,
    // Defaults for every host:
    port: Option<Spanned<i64>>,
    user: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
    sudo: Option<bool>,
    dir: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    host: Spanned<String>,
    address: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    user: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
    sudo: Option<bool>,
    dir: Option<Spanned<String>>,
}

impl HostsFile {
    /// Reads and checks a hosts file. Relative paths in it are relative to the file's folder.
    pub fn load(path: &Path) -> Result<HostsFile, SpecError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::unreadable(&origin, &e))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        HostsFile::parse(&text, &origin, &base)
    }

    /// Parses hosts-file text; `base` resolves relative paths.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<HostsFile, SpecError> {
        let err = |span: Option<std::ops::Range<usize>>, field: &str, reason: String| SpecError {
            file: origin.to_string(),
            line: span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
            field: field.to_string(),
            reason,
        };
        let raw: RawFile =
            toml::from_str(text).map_err(|e| err(e.span(), "", e.message().trim().replace('\n', " ")))?;
        if raw.host.is_empty() {
            return Err(err(
                None,
                "host",
                "no [[host]] listed: one host per node is needed".into(),
            ));
        }
        let path_of = |s: &Spanned<String>, field: &str| -> Result<PathBuf, SpecError> {
            if s.get_ref().trim().is_empty() {
                return Err(err(Some(s.span()), field, "must not be empty".into()));
            }
            let p = PathBuf::from(expand_home(s.get_ref()));
            Ok(if p.is_absolute() { p } else { base.join(p) })
        };
        let known_hosts = match &raw.known_hosts {
            Some(k) => path_of(k, "known_hosts")?,
            None => PathBuf::from(expand_home("~/.ssh/known_hosts")),
        };
        let d = &raw;
        let mut hosts = Vec::new();
        for (i, h) in raw.host.iter().enumerate() {
            let at = |f: &str| format!("host[{i}].{f}");
            let hr = h.get_ref();
            let name = hr.host.get_ref().trim();
            if name.is_empty() || name.starts_with('-') || name.contains(char::is_whitespace) {
                return Err(err(
                    Some(hr.host.span()),
                    &at("host"),
                    format!("{name:?} is not a host name or address"),
                ));
            }
            let port = match hr.port.as_ref().or(d.port.as_ref()) {
                Some(p) => u16::try_from(*p.get_ref())
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| {
                        err(
                            Some(p.span()),
                            &at("port"),
                            format!("{} is not a port (1..=65535)", p.get_ref()),
                        )
                    })?,
                None => 22,
            };
            let user = match hr.user.as_ref().or(d.user.as_ref()) {
                Some(u)
                    if u.get_ref().is_empty()
                        || u.get_ref().starts_with('-')
                        || u.get_ref().contains(char::is_whitespace) =>
                {
                    return Err(err(
                        Some(u.span()),
                        &at("user"),
                        format!("{:?} is not a user name", u.get_ref()),
                    ))
                }
                Some(u) => Some(u.get_ref().clone()),
                None => None,
            };
            let identity = match hr.identity.as_ref().or(d.identity.as_ref()) {
                Some(k) => {
                    let p = path_of(k, &at("identity"))?;
                    if !p.is_file() {
                        return Err(err(
                            Some(k.span()),
                            &at("identity"),
                            format!("{}: no such key file", p.display()),
                        ));
                    }
                    Some(p)
                }
                None => None,
            };
            let address = match &hr.address {
                Some(a) => a.get_ref().parse::<IpAddr>().map_err(|_| {
                    err(
                        Some(a.span()),
                        &at("address"),
                        format!("{:?} is not an IP address", a.get_ref()),
                    )
                })?,
                None => name.parse::<IpAddr>().map_err(|_| {
                    err(
                        Some(hr.host.span()),
                        &at("address"),
                        format!("host {name:?} is not an IP address: give the address its peers reach it at"),
                    )
                })?,
            };
            if hosts.iter().any(|o: &SshHost| o.address == address) {
                let span = hr.address.as_ref().map(|a| a.span()).unwrap_or(hr.host.span());
                return Err(err(
                    Some(span),
                    &at("address"),
                    format!("{address} is listed twice: one node per host"),
                ));
            }
            let dir = match hr.dir.as_ref().or(d.dir.as_ref()) {
                Some(s) => {
                    let p = PathBuf::from(s.get_ref());
                    if !p.is_absolute() || p == Path::new("/") {
                        return Err(err(
                            Some(s.span()),
                            &at("dir"),
                            "must be an absolute path below /".into(),
                        ));
                    }
                    p
                }
                None => PathBuf::from("/tmp/faultline"),
            };
            hosts.push(SshHost {
                host: name.to_string(),
                port,
                user,
                identity,
                sudo: hr.sudo.or(d.sudo).unwrap_or(false),
                address,
                dir,
            });
        }
        Ok(HostsFile {
            origin: origin.to_string(),
            known_hosts,
            hosts,
        })
    }
}

impl SshHost {
    /// `user@host:port`, for messages.
    pub fn label(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}:{}", self.host, self.port),
            None => format!("{}:{}", self.host, self.port),
        }
    }
}

fn expand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<HostsFile, SpecError> {
        HostsFile::parse(t, "hosts.toml", Path::new("/etc"))
    }

    #[test]
    fn defaults_and_overrides() {
        let f = parse(
            "known_hosts = \"kh\"\nuser = \"fl\"\nsudo = true\n\n[[host]]\nhost = \"10.0.0.1\"\n\n[[host]]\n\
             host = \"db2.example\"\naddress = \"10.0.0.2\"\nport = 2222\nuser = \"root\"\nsudo = false\n",
        )
        .unwrap();
        assert_eq!(f.known_hosts, PathBuf::from("/etc/kh"));
        assert_eq!(f.hosts.len(), 2);
        assert_eq!(f.hosts[0].user.as_deref(), Some("fl"));
        assert!(f.hosts[0].sudo);
        assert_eq!(f.hosts[0].port, 22);
        assert_eq!(f.hosts[1].label(), "root@db2.example:2222");
        assert_eq!(f.hosts[1].address.to_string(), "10.0.0.2");
        assert!(!f.hosts[1].sudo);
        assert_eq!(f.hosts[1].dir, PathBuf::from("/tmp/faultline"));
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = parse("[[host]]\nhost = \"10.0.0.1\"\n\n[[host]]\nhost = \"db\"\n").unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert_eq!(e.field, "host[1].address");
        let e = parse("[[host]]\nhost = \"10.0.0.1\"\nport = 70000\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "hosts.toml:3: host[0].port: 70000 is not a port (1..=65535)"
        );
        let e = parse("[[host]]\nhost = \"10.0.0.1\"\npassword = \"x\"\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.reason.contains("password"), "{e}");
        let e = parse("user = \"x\"\n").unwrap_err();
        assert_eq!(e.field, "host");
        let e = parse("[[host]]\nhost = \"10.0.0.1\"\n[[host]]\nhost = \"10.0.0.1\"\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("hosts.toml:4: host[1].address: 10.0.0.1 is listed twice"),
            "{e}"
        );
    }
}
