//! Answers that no rule of the spec's client protocol covers, named for the person who wrote the spec.
//!
//! The templated `http` client records such an answer as indeterminate with the error
//! `unclassified: HTTP <status> "<body>" (<why>)` (see `workloads::templated`); this module finds them in a
//! history and groups them, so the run's summary can say which answers the spec should describe.

use std::collections::BTreeMap;
use std::path::Path;

/// The prefix of the error of an answer no rule covers.
pub const PREFIX: &str = "unclassified:";

/// Each distinct unclassified answer (`write: unclassified: HTTP 418 "..." (...)`) with how often it came,
/// most frequent first. Lines that are not JSON are skipped (the checker reports them).
pub fn in_history(history: &Path) -> Vec<(String, usize)> {
    let Ok(text) = std::fs::read_to_string(history) else {
        return Vec::new();
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(err) = e.get("error").and_then(|v| v.as_str()) else {
            continue;
        };
        if err.starts_with(PREFIX) {
            let f = e.get("f").and_then(|v| v.as_str()).unwrap_or("?");
            *counts.entry(format!("{f}: {err}")).or_default() += 1;
        }
    }
    let mut out: Vec<(String, usize)> = counts.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// The summary's lines about them (nothing when there are none): the total and the most frequent few.
pub fn summary_lines(found: &[(String, usize)]) -> String {
    if found.is_empty() {
        return String::new();
    }
    let total: usize = found.iter().map(|(_, n)| n).sum();
    let mut out = format!(
        "  {total} answers no rule of the spec covers (recorded as info, a read as fail); describe them in [client]:\n"
    );
    for (what, n) in found.iter().take(5) {
        out.push_str(&format!("    {n} x {what}\n"));
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
            r#"{"index":0,"type":"info","f":"write","error":"unclassified: HTTP 418 \"tea\" (no rule covers it)"}"#,
            r#"{"index":1,"type":"info","f":"write","error":"unclassified: HTTP 418 \"tea\" (no rule covers it)"}"#,
            r#"{"index":2,"type":"fail","f":"read","error":"unclassified: HTTP 500 \"\" (no rule covers it)"}"#,
            r#"{"index":3,"type":"fail","f":"write","error":"client-timeout"}"#,
            "not json",
        ];
        std::fs::write(&h, lines.join("\n")).unwrap();
        let found = in_history(&h);
        assert_eq!(
            found,
            [
                (
                    "write: unclassified: HTTP 418 \"tea\" (no rule covers it)".to_string(),
                    2
                ),
                (
                    "read: unclassified: HTTP 500 \"\" (no rule covers it)".to_string(),
                    1
                ),
            ]
        );
        let s = summary_lines(&found);
        assert!(s.starts_with("  3 answers no rule of the spec covers"), "{s}");
        assert!(s.contains("2 x write: unclassified: HTTP 418"), "{s}");
        assert_eq!(summary_lines(&[]), "");
    }
}
