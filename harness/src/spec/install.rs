//! The spec's `[install]` section: files the ssh backend uploads to every host and commands it runs there,
//! once per host and run, before any node starts. The local backends (local, netns, external) ignore it:
//! their nodes run from this machine's files.
//!
//! ```toml
//! [install]
//! files = [{ source = "raftkv", dest = "bin/raftkv" }]
//! commands = [["sh", "-c", "mkdir -p {dir}/cache"]]
//! timeout_s = 60
//! ```
//!
//! A file's `source` is found on this machine as the node program is (a path relative to the spec's folder, or
//! a bare name on PATH or next to faultline); its `dest` is a path on the host, relative to the host's `dir`
//! unless absolute. When `command[0]` and a file's `source` are the same file, the nodes run the uploaded copy.

use super::{check_template, find_program, line_of_element, line_of_key, LoadedSpec, SpecError};
use serde::Deserialize;
use std::path::{Component, Path, PathBuf};

/// The `[install]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Install {
    /// Files to upload (skipped on a host whose copy has the same SHA-256).
    #[serde(default)]
    pub files: Vec<InstallFile>,
    /// Commands (argument arrays, placeholders [`INSTALL_PLACEHOLDERS`]) run on every host in order.
    #[serde(default)]
    pub commands: Vec<Vec<String>>,
    /// The time limit of each upload and of each command.
    #[serde(default = "default_install_timeout")]
    pub timeout_s: f64,
}

fn default_install_timeout() -> f64 {
    120.0
}

/// One file to upload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallFile {
    /// On this machine: a path (relative to the spec's folder) or a bare program name.
    pub source: String,
    /// On the host: an absolute path, or one relative to the host's `dir`.
    pub dest: String,
}

/// Placeholders of an install command: the host's `dir` and its address.
pub const INSTALL_PLACEHOLDERS: &[&str] = &["dir", "host"];

impl LoadedSpec {
    /// `[install]`: each file's source and destination, each command, the timeout.
    pub(super) fn validate_install(&self) -> Result<(), SpecError> {
        let Some(inst) = &self.spec.install else {
            return Ok(());
        };
        let at = |key: &str, i: Option<usize>, field: String, reason: String| SpecError {
            file: self.origin.clone(),
            line: line_of_element(&self.text, "install", key, i),
            field,
            reason,
        };
        let mut dests: Vec<&str> = Vec::new();
        for (i, f) in inst.files.iter().enumerate() {
            let field = |k: &str| format!("install.files[{i}].{k}");
            if f.source.trim().is_empty() {
                return Err(at(
                    "files",
                    Some(i),
                    field("source"),
                    "must name a local file".into(),
                ));
            }
            check_dest(&f.dest).map_err(|r| at("files", Some(i), field("dest"), r))?;
            if dests.contains(&f.dest.as_str()) {
                let r = format!("{:?} is the destination of an earlier file", f.dest);
                return Err(at("files", Some(i), field("dest"), r));
            }
            dests.push(&f.dest);
        }
        for (i, c) in inst.commands.iter().enumerate() {
            if c.first().is_none_or(|p| p.trim().is_empty()) {
                let r = "must name a program: [\"prog\", \"arg\", ...]".to_string();
                return Err(at("commands", Some(i), format!("install.commands[{i}]"), r));
            }
            for (j, a) in c.iter().enumerate() {
                check_template(a, INSTALL_PLACEHOLDERS)
                    .map_err(|r| at("commands", Some(i), format!("install.commands[{i}][{j}]"), r))?;
            }
        }
        if !(inst.timeout_s > 0.0 && inst.timeout_s <= 3600.0) {
            return Err(SpecError {
                file: self.origin.clone(),
                line: line_of_key(&self.text, Some("install"), "timeout_s"),
                field: "install.timeout_s".into(),
                reason: "must be in (0, 3600] seconds".into(),
            });
        }
        Ok(())
    }
}

/// A destination: a file path on the host with no `..` (relative ones stay below the host's `dir`).
fn check_dest(d: &str) -> Result<(), String> {
    let p = Path::new(d);
    if d.trim().is_empty() || d.ends_with('/') || p == Path::new("/") {
        return Err("must name a file on the host (absolute, or relative to the host's dir)".into());
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{d:?}: '..' is not allowed"));
    }
    if d.contains('\0') || d.contains('\n') {
        return Err(format!("{d:?}: not a file name"));
    }
    Ok(())
}

/// Finds each `[install]` file's source on this machine (the order of `files`); an error names the file
/// that is missing, with the spec's `provided_by` advice.
pub fn resolve_install(spec: &LoadedSpec) -> Result<Vec<PathBuf>, SpecError> {
    let Some(inst) = &spec.spec.install else {
        return Ok(Vec::new());
    };
    let base = spec.base_dir.as_deref();
    let mut out = Vec::new();
    for (i, f) in inst.files.iter().enumerate() {
        let found = if f.source.contains('/') {
            let p = Path::new(&f.source);
            let p = match base {
                Some(b) if p.is_relative() => b.join(p),
                _ => p.to_path_buf(),
            };
            p.is_file().then_some(p)
        } else {
            find_program(&f.source, base).or_else(|| base.map(|b| b.join(&f.source)).filter(|p| p.is_file()))
        };
        let Some(p) = found else {
            let provided = match &spec.spec.provided_by {
                Some(p) => format!("; it is provided by: {p}"),
                None => String::new(),
            };
            return Err(SpecError {
                file: spec.origin.clone(),
                line: line_of_element(&spec.text, "install", "files", Some(i)),
                field: format!("install.files[{i}].source"),
                reason: format!("{:?} not found on this machine{provided}", f.source),
            });
        };
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(install: &str) -> Result<LoadedSpec, SpecError> {
        let text = format!(
            "name = \"x\"\ncommand = [\"/bin/sleep\", \"{{port}}\"]\n[ready]\nkind = \"tcp\"\n\
             [client]\nprotocol = \"http-kv\"\n{install}"
        );
        LoadedSpec::from_text(&text, "x.toml", Some(PathBuf::from("/nonexistent")))
    }

    #[test]
    fn a_full_install_section_loads() {
        let s = spec(
            "[install]\nfiles = [\n  { source = \"/bin/sleep\", dest = \"bin/sleep\" },\n  \
             { source = \"conf/a.toml\", dest = \"/etc/x/a.toml\" },\n]\n\
             commands = [[\"mkdir\", \"-p\", \"{dir}/x\"], [\"true\"]]\ntimeout_s = 30\n",
        )
        .unwrap();
        let inst = s.spec.install.as_ref().unwrap();
        assert_eq!(inst.files.len(), 2);
        assert_eq!(inst.commands[0][2], "{dir}/x");
        assert_eq!(inst.timeout_s, 30.0);
        // The second source is missing here: named with its line and field.
        let e = resolve_install(&s).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.toml:10: install.files[1].source: \"conf/a.toml\" not found on this machine"
        );
        assert!(spec("").unwrap().spec.install.is_none());
        let s = spec("[install]\nfiles = [{ source = \"sleep\", dest = \"bin/sleep\" }]\n").unwrap();
        assert_eq!(s.spec.install.as_ref().unwrap().timeout_s, 120.0);
        assert!(resolve_install(&s).unwrap()[0].ends_with("sleep"));
    }

    #[test]
    fn install_errors_name_line_and_field() {
        let cases = [
            (
                "[install]\nfiles = [{ source = \"a\", dest = \"../x\" }]\n",
                "x.toml:8: install.files[0].dest: \"../x\": '..' is not allowed",
            ),
            (
                "[install]\nfiles = [\n { source = \"a\", dest = \"bin/a\" },\n { source = \"b\", dest = \"bin/a\" },\n]\n",
                "x.toml:10: install.files[1].dest: \"bin/a\" is the destination of an earlier file",
            ),
            (
                "[install]\nfiles = [{ source = \" \", dest = \"a\" }]\n",
                "x.toml:8: install.files[0].source: must name a local file",
            ),
            (
                "[install]\nfiles = [{ source = \"a\", dest = \"/\" }]\n",
                "x.toml:8: install.files[0].dest: must name a file on the host (absolute, or relative to the host's dir)",
            ),
            (
                "[install]\ncommands = [[\"true\"], []]\n",
                "x.toml:8: install.commands[1]: must name a program: [\"prog\", \"arg\", ...]",
            ),
            (
                "[install]\ncommands = [[\"echo\", \"{port}\"]]\n",
                "x.toml:8: install.commands[0][1]: unknown placeholder {port} (known here: {dir}, {host})",
            ),
            (
                "[install]\n\ntimeout_s = 0\n",
                "x.toml:9: install.timeout_s: must be in (0, 3600] seconds",
            ),
        ];
        for (section, want) in cases {
            let e = spec(section).unwrap_err();
            assert_eq!(e.to_string(), want, "{section}");
        }
        // A typo in the section is an unknown field with its line.
        let e = spec("[install]\nfile = []\n").unwrap_err();
        assert_eq!(e.line, Some(8), "{e}");
        assert!(e.reason.contains("unknown field `file`"), "{e}");
    }
}
