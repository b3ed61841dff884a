//! The store index's list of suite runs (`store/index.html` links each run's `summary.html`).

use super::judge::judge;
use super::record::{SuiteRecord, SUITES_DIR, SUITE_FILE, SUMMARY_FILE};
use crate::summary::readable_timestamp;
use maud::{html, Markup};
use std::path::Path;

/// One suite run as the index lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteLink {
    pub name: String,
    /// The suite run's folder name (a UTC timestamp).
    pub timestamp: String,
    /// The suite's exit code as judged from its record.
    pub exit_code: u8,
    /// `12 of 12 cells`.
    pub cells: String,
}

/// Every suite run of the store, newest first.
pub fn suite_links(store_root: &Path) -> Vec<SuiteLink> {
    let mut links = Vec::new();
    let suites = store_root.join(SUITES_DIR);
    for name in std::fs::read_dir(&suites).into_iter().flatten().flatten() {
        let n = name.file_name().to_string_lossy().into_owned();
        for run in std::fs::read_dir(name.path()).into_iter().flatten().flatten() {
            let ts = run.file_name().to_string_lossy().into_owned();
            let Ok(r) = SuiteRecord::load(&run.path().join(SUITE_FILE)) else {
                continue;
            };
            links.push(SuiteLink {
                name: n.clone(),
                exit_code: judge(&r).exit_code(),
                cells: format!("{} of {} cells", r.cells.len(), r.planned.len()),
                timestamp: ts,
            });
        }
    }
    links.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then(a.name.cmp(&b.name)));
    links
}

/// The index's "Suites" section (nothing when the store has no suite run).
pub(crate) fn suites_section(links: &[SuiteLink]) -> Markup {
    html! {
        @if !links.is_empty() {
            h2 { "Suites" }
            div class="scroll" { table id="suites" {
                thead { tr { th { "suite" } th { "time" } th { "result" } th { "cells" } } }
                tbody { @for l in links { tr {
                    td { a href={(SUITES_DIR) "/" (l.name) "/" (l.timestamp) "/" (SUMMARY_FILE)} { (l.name) } }
                    td { (readable_timestamp(&l.timestamp)) }
                    td { (match l.exit_code { 0 => "every row as expected", 1 => "some row NOT as expected",
                        3 => "a run failed", _ => "undecided" }) }
                    td { (l.cells) }
                } } }
            } }
            h2 { "Runs" }
        }
    }
}
