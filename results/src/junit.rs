//! JUnit XML, so CI systems show faultline's verdicts natively (`--junit FILE` of `run` and `suite`).
//!
//! One `<testcase>` per run: `valid` passes; `invalid` is a `<failure type="invalid">`; `unknown` is a
//! `<failure type="unknown">` (the checker could not decide, which a CI must not take for a pass); a run
//! that produced no verdict (it failed to set up, say) is an `<error>`.

use crate::run_dir::RunDir;
use checker::Verdict;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::path::Path;
use std::time::Duration;

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
    /// The document as `quick-junit` models it: one `<testsuites>` holding one `<testsuite>`.
    fn report(&self) -> Report {
        let mut suite = TestSuite::new(&self.name);
        suite.add_test_cases(self.cases.iter().map(JunitCase::test_case));
        suite.set_time(Duration::from_secs_f64(
            self.cases.iter().map(|c| c.time_secs.max(0.0)).sum(),
        ));
        let mut report = Report::new(&self.name);
        report.add_test_suite(suite);
        report
    }

    /// The XML document (quick-junit escapes every name and message and drops characters XML forbids).
    pub fn to_xml(&self) -> String {
        self.report()
            .to_string()
            .unwrap_or_else(|e| format!("<!-- JUnit XML could not be written: {e} -->\n"))
    }

    /// Writes the XML document to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        self.report().serialize(file).map_err(std::io::Error::other)
    }
}

impl JunitCase {
    /// valid passes; invalid and unknown are failures typed as such; no verdict is an error.
    fn test_case(&self) -> TestCase {
        let status = match self.verdict {
            Some(Verdict::Valid) => TestCaseStatus::success(),
            v => {
                let (kind, ty) = match v {
                    Some(Verdict::Invalid) => (NonSuccessKind::Failure, "invalid"),
                    Some(_) => (NonSuccessKind::Failure, "unknown"),
                    None => (NonSuccessKind::Error, "run-failed"),
                };
                let mut status = TestCaseStatus::non_success(kind);
                status
                    .set_type(ty)
                    .set_message(&self.message)
                    .set_description(&self.details);
                status
            }
        };
        let mut case = TestCase::new(&self.name, status);
        case.set_classname(&self.classname)
            .set_time(Duration::from_secs_f64(self.time_secs.max(0.0)));
        if !self.details.is_empty() {
            case.set_system_out(&self.details);
        }
        case
    }
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
        assert_eq!(x.matches("<failure ").count(), 2, "{x}");
        assert_eq!(x.matches("<error ").count(), 1, "{x}");
        assert!(
            x.contains("<failure message=\"m\" type=\"invalid\">d</failure>"),
            "{x}"
        );
        assert!(
            x.contains("<failure message=\"m\" type=\"unknown\">d</failure>"),
            "{x}"
        );
        assert!(
            x.contains("<error message=\"m\" type=\"run-failed\">d</error>"),
            "{x}"
        );
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
        // quick-junit escapes what XML needs escaped (apostrophes may stay as they are inside double
        // quotes) and drops the control character XML 1.0 forbids.
        assert!(x.contains("&lt;x a=&quot;1&quot;&gt;&amp;"), "{x}");
        assert!(!x.contains('\u{1}'), "{x}");
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
