//! JUnit XML, so CI systems show faultline's verdicts natively (`--junit FILE` of `run` and `suite`).
//!
//! One `<testcase>` per run: `valid` passes; `invalid` is a `<failure type="invalid">`; `unknown` is a
//! `<failure type="unknown">` (the checker could not decide, which a CI must not take for a pass); a run
//! that produced no verdict (it failed to set up, say) is an `<error>`.

use crate::run_dir::RunDir;
use checker::Verdict;
use std::fmt::Write;
use std::path::Path;

/// One test case: a run and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct JunitCase {
    /// The test's name (`cas-register-partition`, ...).
    pub name: String,
    /// Grouping shown by CI systems (e.g. the DB spec's name).
    pub classname: String,
    pub time_secs: f64,
    /// None when the run produced no verdict.
    pub verdict: Option<Verdict>,
    /// One line saying why it failed (empty for a pass).
    pub message: String,
    /// More text: where the report is, the failing operation, ...
    pub details: String,
}

/// A suite of cases (one `faultline run`, or a whole `faultline suite`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JunitSuite {
    pub name: String,
    pub cases: Vec<JunitCase>,
}

impl JunitCase {
    /// The case for a run folder, from its run record (`test.json`) and `results.json`.
    pub fn from_run(run: &RunDir) -> JunitCase {
        let s = crate::summary::summarize(run);
        let message = match s.verdict {
            Some(Verdict::Valid) => String::new(),
            Some(Verdict::Invalid) => "not linearizable (or another checker failed)".to_string(),
            Some(Verdict::Unknown) => "the checker could not decide in its budget".to_string(),
            None => match &s.error {
                Some(e) => format!("the run produced no verdict: {e}"),
                None => "the run produced no verdict".to_string(),
            },
        };
        JunitCase {
            name: s.name,
            classname: if s.db.is_empty() {
                "faultline".into()
            } else {
                format!("faultline.{}", s.db)
            },
            time_secs: s.duration_ns.unwrap_or(0) as f64 / 1e9,
            verdict: s.verdict,
            message,
            details: format!(
                "run folder: {}\nreport: {}",
                run.path().display(),
                run.report_path().display()
            ),
        }
    }
}

impl JunitSuite {
    /// The XML document.
    pub fn to_xml(&self) -> String {
        let failures = self
            .cases
            .iter()
            .filter(|c| matches!(c.verdict, Some(Verdict::Invalid | Verdict::Unknown)))
            .count();
        let errors = self.cases.iter().filter(|c| c.verdict.is_none()).count();
        let time: f64 = self.cases.iter().map(|c| c.time_secs).sum();
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            x,
            "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">",
            esc(&self.name),
            self.cases.len()
        );
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time:.3}\">",
            esc(&self.name),
            self.cases.len()
        );
        for c in &self.cases {
            let _ = write!(
                x,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                esc(&c.name),
                esc(&c.classname),
                c.time_secs
            );
            match c.verdict {
                Some(Verdict::Valid) => x.push_str(">\n"),
                Some(v) => {
                    let kind = if v == Verdict::Invalid {
                        "invalid"
                    } else {
                        "unknown"
                    };
                    let _ = writeln!(
                        x,
                        ">\n      <failure type=\"{kind}\" message=\"{}\">{}</failure>",
                        esc(&c.message),
                        esc(&c.details)
                    );
                }
                None => {
                    let _ = writeln!(
                        x,
                        ">\n      <error type=\"run-failed\" message=\"{}\">{}</error>",
                        esc(&c.message),
                        esc(&c.details)
                    );
                }
            }
            if !c.details.is_empty() {
                let _ = writeln!(x, "      <system-out>{}</system-out>", esc(&c.details));
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n</testsuites>\n");
        x
    }

    /// Writes the XML document to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_xml())
    }
}

/// XML text and attribute escaping; characters XML 1.0 forbids become U+FFFD.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, v: Option<Verdict>) -> JunitCase {
        JunitCase {
            name: name.into(),
            classname: "faultline.raftkv".into(),
            time_secs: 1.5,
            verdict: v,
            message: "m".into(),
            details: "d".into(),
        }
    }

    #[test]
    fn verdicts_map_to_junit() {
        let suite = JunitSuite {
            name: "nightly".into(),
            cases: vec![
                case("a", Some(Verdict::Valid)),
                case("b", Some(Verdict::Invalid)),
                case("c", Some(Verdict::Unknown)),
                case("d", None),
            ],
        };
        let x = suite.to_xml();
        assert!(x.contains("tests=\"4\" failures=\"2\" errors=\"1\""));
        assert!(x.contains("<failure type=\"invalid\""));
        assert!(x.contains("<failure type=\"unknown\""));
        assert!(x.contains("<error type=\"run-failed\""));
        assert!(x.contains("time=\"6.000\""));
    }

    #[test]
    fn names_are_escaped() {
        let mut c = case("<x a=\"1\">&'\u{1}", Some(Verdict::Invalid));
        c.message = "</failure><script>".into();
        let x = JunitSuite {
            name: "s".into(),
            cases: vec![c],
        }
        .to_xml();
        assert!(x.contains("&lt;x a=&quot;1&quot;&gt;&amp;&apos;\u{FFFD}"));
        assert!(!x.contains("<script>"));
        assert_eq!(x.matches("</failure>").count(), 1);
    }

    #[test]
    fn from_a_run_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let run = store.create_run("t").unwrap();
        std::fs::write(run.test_path(), r#"{"name":"cas","db":"etcd"}"#).unwrap();
        std::fs::write(run.results_path(), r#"{"verdict":"valid"}"#).unwrap();
        let c = JunitCase::from_run(&run);
        assert_eq!(
            (c.name.as_str(), c.classname.as_str(), c.verdict),
            ("cas", "faultline.etcd", Some(Verdict::Valid))
        );
    }

    #[test]
    fn a_failed_run_says_why_from_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let run = store.create_run("t").unwrap();
        let record = crate::RunRecord {
            name: "cas".into(),
            error: Some("node n2 exited during start-up".into()),
            ..Default::default()
        };
        run.write_record(&record).unwrap();
        let c = JunitCase::from_run(&run);
        assert_eq!(c.verdict, None);
        assert_eq!(
            c.message,
            "the run produced no verdict: node n2 exited during start-up"
        );
    }
}
