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
        let c = Ctx { text, origin, base };
        let raw: RawFile =
            toml::from_str(text).map_err(|e| c.err(e.span(), "", e.message().trim().replace('\n', " ")))?;
        if raw.host.is_empty() {
            return Err(c.err(
                None,
                "host",
                "no [[host]] listed: one host per node is needed".into(),
            ));
        }
        let known_hosts = match &raw.known_hosts {
            Some(k) => c.path_of(k, "known_hosts")?,
            None => PathBuf::from(expand_home("~/.ssh/known_hosts")),
        };
        let mut hosts: Vec<SshHost> = Vec::new();
        for (i, h) in raw.host.iter().enumerate() {
            let host = c.host(i, h.get_ref(), &raw)?;
            if hosts.iter().any(|o| o.address == host.address) {
                let hr = h.get_ref();
                let span = hr.address.as_ref().map(|a| a.span()).unwrap_or(hr.host.span());
                let reason = format!("{} is listed twice: one node per host", host.address);
                return Err(c.err(Some(span), &format!("host[{i}].address"), reason));
            }
            hosts.push(host);
        }
        Ok(HostsFile {
            origin: origin.to_string(),
            known_hosts,
            hosts,
        })
    }
}

/// The text being parsed, for errors and relative paths.
struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
    base: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, span: Option<std::ops::Range<usize>>, field: &str, reason: String) -> SpecError {
        let text = self.text;
        SpecError {
            file: self.origin.to_string(),
            line: span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
            field: field.to_string(),
            reason,
        }
    }

    /// A path of the file: `~/` expanded, relative to the file's folder.
    fn path_of(&self, s: &Spanned<String>, field: &str) -> Result<PathBuf, SpecError> {
        if s.get_ref().trim().is_empty() {
            return Err(self.err(Some(s.span()), field, "must not be empty".into()));
        }
        let p = PathBuf::from(expand_home(s.get_ref()));
        Ok(if p.is_absolute() { p } else { self.base.join(p) })
    }

    /// Host `i`, the file's top-level defaults `d` filling what it leaves out.
    fn host(&self, i: usize, hr: &RawHost, d: &RawFile) -> Result<SshHost, SpecError> {
        let at = |f: &str| format!("host[{i}].{f}");
        let name = hr.host.get_ref().trim();
        if name.is_empty() || name.starts_with('-') || name.contains(char::is_whitespace) {
            let reason = format!("{name:?} is not a host name or address");
            return Err(self.err(Some(hr.host.span()), &at("host"), reason));
        }
        Ok(SshHost {
            host: name.to_string(),
            port: self.port(hr.port.as_ref().or(d.port.as_ref()), &at("port"))?,
            user: self.user(hr.user.as_ref().or(d.user.as_ref()), &at("user"))?,
            identity: self.identity(hr.identity.as_ref().or(d.identity.as_ref()), &at("identity"))?,
            sudo: hr.sudo.or(d.sudo).unwrap_or(false),
            address: self.address(hr, name, &at("address"))?,
            dir: self.dir(hr.dir.as_ref().or(d.dir.as_ref()), &at("dir"))?,
        })
    }

    fn port(&self, p: Option<&Spanned<i64>>, field: &str) -> Result<u16, SpecError> {
        let Some(p) = p else { return Ok(22) };
        u16::try_from(*p.get_ref())
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                let reason = format!("{} is not a port (1..=65535)", p.get_ref());
                self.err(Some(p.span()), field, reason)
            })
    }

    fn user(&self, u: Option<&Spanned<String>>, field: &str) -> Result<Option<String>, SpecError> {
        let Some(u) = u else { return Ok(None) };
        let name = u.get_ref();
        if name.is_empty() || name.starts_with('-') || name.contains(char::is_whitespace) {
            return Err(self.err(Some(u.span()), field, format!("{name:?} is not a user name")));
        }
        Ok(Some(name.clone()))
    }

    fn identity(&self, k: Option<&Spanned<String>>, field: &str) -> Result<Option<PathBuf>, SpecError> {
        let Some(k) = k else { return Ok(None) };
        let p = self.path_of(k, field)?;
        if !p.is_file() {
            let reason = format!("{}: no such key file", p.display());
            return Err(self.err(Some(k.span()), field, reason));
        }
        Ok(Some(p))
    }

    /// `address`, or `host` when it is an IP address.
    fn address(&self, hr: &RawHost, name: &str, field: &str) -> Result<IpAddr, SpecError> {
        match &hr.address {
            Some(a) => a.get_ref().parse::<IpAddr>().map_err(|_| {
                let reason = format!("{:?} is not an IP address", a.get_ref());
                self.err(Some(a.span()), field, reason)
            }),
            None => name.parse::<IpAddr>().map_err(|_| {
                let reason =
                    format!("host {name:?} is not an IP address: give the address its peers reach it at");
                self.err(Some(hr.host.span()), field, reason)
            }),
        }
    }

    fn dir(&self, s: Option<&Spanned<String>>, field: &str) -> Result<PathBuf, SpecError> {
        let Some(s) = s else {
            return Ok(PathBuf::from("/tmp/faultline"));
        };
        let p = PathBuf::from(s.get_ref());
        if !p.is_absolute() || p == Path::new("/") {
            let reason = "must be an absolute path below /".to_string();
            return Err(self.err(Some(s.span()), field, reason));
        }
        Ok(p)
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
