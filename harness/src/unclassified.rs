//! Answers that no rule of the spec's client protocol covers, named for the person who wrote the spec.
//!
//! The templated `http` client records such an answer as indeterminate with the error
//! `unclassified: HTTP <status> "<body>" (<why>)` (see `workloads::templated`); this module finds them in a
//! history and groups them as typed [`UnclassifiedAnswer`]s, which the run record (`test.json`) keeps, the
//! report page lists and the run's summary names.

use checker::history::{Event, EventType, Process};
use results::record::UnclassifiedAnswer;
use std::collections::BTreeMap;
use std::path::Path;

/// The prefix of the error of an answer no rule covers.
pub const PREFIX: &str = "unclassified:";

/// Each distinct unclassified answer of the history file (JSON lines, as the recorder writes it), with how
/// often it came, most frequent first. A history that cannot be read gives none (the checker reports it).
pub fn in_history(history: &Path) -> Vec<UnclassifiedAnswer> {
    match checker::history::read_path(history, checker::history::Format::Jsonl, true) {
        Ok(h) => in_events(&h.events),
        Err(_) => Vec::new(),
    }
}

/// Each distinct unclassified answer among client completions (same function, outcome and error), most
/// frequent first.
pub fn in_events(events: &[Event]) -> Vec<UnclassifiedAnswer> {
    let mut groups: BTreeMap<(String, String, String), UnclassifiedAnswer> = BTreeMap::new();
    for e in events {
        let recorded_as = match e.kind {
            EventType::Info => "info",
            EventType::Fail => "fail",
            _ => continue,
        };
        let Some(err) = e.error.as_deref().filter(|err| err.starts_with(PREFIX)) else {
            continue;
        };
        if matches!(e.process, Process::Nemesis) {
            continue;
        }
        let key = (e.f.clone(), recorded_as.to_string(), err.to_string());
        groups
            .entry(key)
            .or_insert_with(|| UnclassifiedAnswer {
                f: e.f.clone(),
                recorded_as: recorded_as.to_string(),
                answer: err.to_string(),
                count: 0,
                first_index: e.index,
            })
            .count += 1;
    }
    let mut out: Vec<UnclassifiedAnswer> = groups.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_index.cmp(&b.first_index)));
    out
}

/// The summary's lines about them (nothing when there are none): the total and the most frequent few.
pub fn summary_lines(found: &[UnclassifiedAnswer]) -> String {
    if found.is_empty() {
        return String::new();
    }
    let total: u64 = found.iter().map(|a| a.count).sum();
    let mut out = format!(
        "  {total} answers no rule of the spec covers (recorded as info, a read as fail); describe them in [client]:\n"
    );
    for a in found.iter().take(5) {
        out.push_str(&format!("    {} x {}: {}\n", a.count, a.f, a.answer));
    }
    if found.len() > 5 {
        out.push_str(&format!("    ... and {} more kinds\n", found.len() - 5));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_counts_unclassified_answers() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path().join("history.jsonl");
        let lines = [
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":"a","value":1}"#,
            r#"{"index":1,"time":2,"process":0,"type":"info","f":"write","key":"a","value":1,"error":"unclassified: HTTP 418 \"tea\" (no rule covers it)"}"#,
            r#"{"index":2,"time":3,"process":1,"type":"invoke","f":"write","key":"a","value":2}"#,
            r#"{"index":3,"time":4,"process":1,"type":"info","f":"write","key":"a","value":2,"error":"unclassified: HTTP 418 \"tea\" (no rule covers it)"}"#,
            r#"{"index":4,"time":5,"process":2,"type":"invoke","f":"read","key":"a","value":null}"#,
            r#"{"index":5,"time":6,"process":2,"type":"fail","f":"read","key":"a","value":null,"error":"unclassified: HTTP 500 \"\" (no rule covers it)"}"#,
            r#"{"index":6,"time":7,"process":3,"type":"invoke","f":"write","key":"a","value":3}"#,
            r#"{"index":7,"time":8,"process":3,"type":"fail","f":"write","key":"a","value":3,"error":"client-timeout"}"#,
        ];
        std::fs::write(&h, lines.join("\n")).unwrap();
        let found = in_history(&h);
        let brief: Vec<(&str, &str, &str, u64, u64)> = found
            .iter()
            .map(|a| {
                (
                    a.f.as_str(),
                    a.recorded_as.as_str(),
                    a.answer.as_str(),
                    a.count,
                    a.first_index,
                )
            })
            .collect();
        assert_eq!(
            brief,
            [
                (
                    "write",
                    "info",
                    "unclassified: HTTP 418 \"tea\" (no rule covers it)",
                    2,
                    1
                ),
                (
                    "read",
                    "fail",
                    "unclassified: HTTP 500 \"\" (no rule covers it)",
                    1,
                    5
                ),
            ]
        );
        let s = summary_lines(&found);
        assert!(s.starts_with("  3 answers no rule of the spec covers"), "{s}");
        assert!(s.contains("2 x write: unclassified: HTTP 418"), "{s}");
        assert_eq!(summary_lines(&[]), "");
        assert_eq!(in_history(&dir.path().join("missing.jsonl")), []);
    }
}
