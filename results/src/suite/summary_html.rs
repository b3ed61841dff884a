//! `summary.html` of a suite run: self-contained (inline CSS and SVG, no script, nothing fetched), every value
//! escaped by maud.
//!
//! Cells are coloured by outcome against expectation, not by verdict: a bug found is green like a correct
//! system found valid; a false alarm is red; a seed on which a bug was not found is amber; unknown, failed
//! and not-run cells are grey.

use super::judge::{judge, RowStatus, SuiteJudgement};
use super::record::{CellOutcome, Expectation, SuiteCell, SuiteRecord, SuiteRow, SUMMARY_FILE};
use super::trend::{plot_svg, point, previous_records};
use crate::html::BASE_CSS;
use crate::run_dir::write_atomically;
use crate::run_dir::StoreError;
use crate::summary::readable_timestamp;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::path::{Path, PathBuf};

const SUITE_CSS: &str = r#"
.cell{display:inline-block;min-width:4.2em;padding:2px 6px;border-radius:3px;text-align:center;font-weight:600;color:#fff;text-decoration:none}
.o-expected{background:var(--ok)}.o-false-alarm{background:var(--bad)}.o-missed{background:#d98c00}
.o-unknown{background:#8a6d3b}.o-run-failed{background:#555}.o-not-run{background:#fff;color:var(--muted);border:1px dashed var(--line)}
.strip{display:inline-flex;gap:2px;vertical-align:middle}.strip .sq{width:11px;height:11px;border-radius:2px;display:inline-block}
.row-met{color:var(--ok);font-weight:700}.row-not-met{color:var(--bad);font-weight:700}.row-undecided{color:var(--unk);font-weight:700}
.legend .cell{margin-right:6px}
"#;

/// How a cell stands against its row's expectation (the CSS class and the word shown).
pub(crate) fn cell_class(row: &SuiteRow, cell: Option<&SuiteCell>) -> (&'static str, &'static str) {
    match (row.expect, cell.map(|c| c.outcome)) {
        (_, None) => ("o-not-run", "not run"),
        (_, Some(CellOutcome::Unknown)) => ("o-unknown", "unknown"),
        (_, Some(CellOutcome::RunFailed)) => ("o-run-failed", "failed"),
        (Expectation::Valid, Some(CellOutcome::Valid)) => ("o-expected", "valid"),
        (Expectation::Valid, Some(CellOutcome::Invalid)) => ("o-false-alarm", "INVALID"),
        (Expectation::Invalid { .. }, Some(CellOutcome::Invalid)) => ("o-expected", "found"),
        (Expectation::Invalid { .. }, Some(CellOutcome::Valid)) => ("o-missed", "missed"),
    }
}

/// Writes `summary.html` into the suite run's folder `dir`, with the trend over the suite runs of the same
/// name found under `store` (when given). `to_store` is the path from `dir` to the store root, for links to
/// the runs.
pub fn write_summary(
    record: &SuiteRecord,
    dir: &Path,
    store: Option<&Path>,
    to_store: &str,
) -> Result<PathBuf, StoreError> {
    let label = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut trend: Vec<(String, SuiteRecord)> = store
        .map(|s| previous_records(s, &record.name, &label))
        .unwrap_or_default();
    // This run is the newest point, as it is now (also when it is not saved yet, or saved elsewhere).
    trend.retain(|(l, _)| *l != label);
    trend.push((label, record.clone()));
    let html = render_summary(record, &trend, to_store);
    let path = dir.join(SUMMARY_FILE);
    write_atomically(&path, html.as_bytes())?;
    Ok(path)
}

/// The page, given the trend's records (oldest first, this one last).
pub fn render_summary(record: &SuiteRecord, trend: &[(String, SuiteRecord)], to_store: &str) -> String {
    let j = judge(record);
    let code = j.exit_code();
    let (banner, headline) = match code {
        0 => ("valid", "Every row as expected".to_string()),
        1 => (
            "invalid",
            format!(
                "{} row(s) NOT as expected",
                j.rows.iter().filter(|r| r.status == RowStatus::NotMet).count()
            ),
        ),
        3 => ("unknown", "Some run failed".to_string()),
        _ => ("unknown", "Some row undecided".to_string()),
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "faultline suite " (record.name) }
                style { (PreEscaped(BASE_CSS)) (PreEscaped(SUITE_CSS)) }
            }
            body { main {
                h1 { "Suite " (record.name) }
                @if !record.description.is_empty() { p { (record.description) } }
                div class={"banner " (banner)} id="verdict" {
                    div class="big" { (headline) }
                    div { "exit code " (code) " · " (status_text(record)) }
                }
                (facts(record))
                (matrix(record, &j, to_store))
                (detection(record, &j))
                (false_alarms(record, to_store))
                (trend_section(record, trend))
                (cells_table(record, to_store))
            } }
        }
    };
    page.into_string()
}

fn status_text(r: &SuiteRecord) -> String {
    let done = r
        .planned
        .iter()
        .filter(|(row, s)| r.cell(row, *s).is_some())
        .count();
    let status = match r.status {
        super::SuiteStatus::Complete => "complete",
        super::SuiteStatus::Running => "running (or killed: --resume continues it)",
        super::SuiteStatus::OutOfTime => "stopped: time budget spent",
        super::SuiteStatus::Interrupted => "interrupted",
    };
    format!("{done} of {} cells finished · {status}", r.planned.len())
}

fn facts(r: &SuiteRecord) -> Markup {
    html! {
        table id="facts" {
            tr { th { "suite file" } td { code { (r.file) } } }
            tr { th { "started" } td { (readable_timestamp(&r.started_at)) } }
            tr { th { "ended" } td { (r.ended_at.as_deref().map(readable_timestamp).unwrap_or_else(|| "-".into())) } }
            tr { th { "seeds" } td { (r.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")) } }
            @if let Some((k, n)) = r.shard { tr { th { "shard" } td { (k) "/" (n) } } }
            @if !r.merged_from.is_empty() { tr { th { "merged from" } td { (r.merged_from.join("; ")) } } }
        }
    }
}

fn run_link(to_store: &str, cell: &SuiteCell) -> Option<String> {
    cell.run
        .as_ref()
        .map(|run| format!("{to_store}{run}/report.html"))
}

fn matrix(r: &SuiteRecord, j: &SuiteJudgement, to_store: &str) -> Markup {
    html! {
        h2 { "Matrix" }
        p class="legend muted" {
            span class="cell o-expected" { "as expected" }
            span class="cell o-false-alarm" { "false alarm" }
            span class="cell o-missed" { "bug missed" }
            span class="cell o-unknown" { "unknown" }
            span class="cell o-run-failed" { "run failed" }
            span class="cell o-not-run" { "not run" }
        }
        div class="scroll" { table id="matrix" {
            thead { tr {
                th { "row" } th { "expected" }
                @for s in &r.seeds { th class="num" { "seed " (s) } }
                th { "judgement" }
            } }
            tbody { @for row in &r.rows {
                @let planned: Vec<u64> = r.planned.iter().filter(|(x, _)| *x == row.id).map(|(_, s)| *s).collect();
                @if !planned.is_empty() {
                    tr data-row=(row.id) {
                        td { b { (row.id) } br; span class="muted" { (row.db) " · " (row.workload) " · " (row.nemesis)
                            @if !row.node_args.is_empty() { " · " code { (row.node_args.join(" ")) } } } }
                        td { (row.expect.describe()) }
                        @for s in &r.seeds {
                            td class="num" {
                                @if planned.contains(s) {
                                    @let cell = r.cell(&row.id, *s);
                                    @let (class, word) = cell_class(row, cell);
                                    @match cell.and_then(|c| run_link(to_store, c)) {
                                        Some(href) => a class={"cell " (class)} href=(href) title=(cell.map(|c| c.verdict_line.as_str()).unwrap_or("")) { (word) },
                                        None => span class={"cell " (class)} { (word) },
                                    }
                                } @else { span class="muted" { "other shard" } }
                            }
                        }
                        td { @if let Some(rj) = j.row(&row.id) {
                            span class=(row_class(rj.status)) { (rj.status.name()) } br; span class="muted" { (rj.text) }
                        } }
                    }
                }
            } }
        } }
    }
}

fn row_class(s: RowStatus) -> &'static str {
    match s {
        RowStatus::Met => "row-met",
        RowStatus::NotMet => "row-not-met",
        RowStatus::Undecided => "row-undecided",
    }
}

fn detection(r: &SuiteRecord, j: &SuiteJudgement) -> Markup {
    let bugs: Vec<_> = r
        .rows
        .iter()
        .filter(|row| matches!(row.expect, Expectation::Invalid { .. }))
        .filter_map(|row| j.row(&row.id).map(|rj| (row, rj)))
        .collect();
    html! {
        h2 { "Detection rate per bug" }
        @if bugs.is_empty() { p class="muted" { "No row of this suite expects a bug." } }
        @else { table id="detection" {
            thead { tr { th { "row" } th { "found" } th { "needed" } th { "median to first anomaly" } th { "judgement" } } }
            tbody { @for (row, rj) in &bugs { tr {
                td { (row.id) }
                td class="num" { (rj.found) " of " (rj.seeds) }
                td class="num" { (rj.needed) }
                td class="num" { @if let Some(m) = rj.median_first_anomaly_s { (format!("{m:.1} s")) } @else { "-" } }
                td { span class=(row_class(rj.status)) { (rj.status.name()) } }
            } } }
        } }
    }
}

fn false_alarms(r: &SuiteRecord, to_store: &str) -> Markup {
    let alarms: Vec<&SuiteCell> = r
        .cells
        .iter()
        .filter(|c| {
            c.outcome == CellOutcome::Invalid
                && r.row(&c.row).is_some_and(|row| row.expect == Expectation::Valid)
        })
        .collect();
    html! {
        h2 { "False alarms" }
        @if alarms.is_empty() { p id="false-alarms" { "None: every row expected valid was valid on every seed it ran." } }
        @else { ul id="false-alarms" { @for c in &alarms { li {
            (c.row) " seed " (c.seed) ": " (c.verdict_line) " "
            @if let Some(h) = run_link(to_store, c) { a href=(h) { "report" } }
        } } } }
    }
}

fn trend_section(r: &SuiteRecord, trend: &[(String, SuiteRecord)]) -> Markup {
    let points: Vec<_> = trend.iter().map(|(l, rec)| point(l, rec)).collect();
    let svg = plot_svg(&points);
    html! {
        h2 { "Trend" }
        p class="muted" id="trend-count" { "The last " (trend.len()) " run(s) of suite " (r.name) " in this store, oldest first." }
        @match svg {
            Ok(svg) => div class="plot" id="trend-plot" { (PreEscaped(svg)) },
            Err(e) => p { "The trend plot could not be drawn: " (e) },
        }
        div class="scroll" { table id="trend" {
            thead { tr { th { "cell" } th { "last outcomes (oldest first)" } } }
            tbody { @for row in &r.rows { @for s in &r.seeds {
                @if r.planned.iter().any(|(x, y)| *x == row.id && y == s) { tr {
                    td { (row.id) " seed " (s) }
                    td { span class="strip" { @for (label, rec) in trend {
                        @let class = rec.row(&row.id).map(|rr| cell_class(rr, rec.cell(&row.id, *s)));
                        @if let Some((class, word)) = class {
                            span class={"sq " (class)} title={(label) ": " (word)} {}
                        }
                    } } }
                } }
            } } }
        } }
    }
}

fn cells_table(r: &SuiteRecord, to_store: &str) -> Markup {
    html! {
        h2 { "Cells" }
        div class="scroll" { table id="cells" {
            thead { tr {
                th { "row" } th class="num" { "seed" } th { "outcome" } th { "caught by" } th class="num" { "first anomaly" }
                th class="num" { "ok / fail / info" } th class="num" { "ops/s" } th class="num" { "wall" } th { "run" }
            } }
            tbody { @for c in &r.cells {
                @let class = r.row(&c.row).map(|row| cell_class(row, Some(c)).0).unwrap_or("o-unknown");
                tr {
                    td { (c.row) } td class="num" { (c.seed) }
                    td { span class={"cell " (class)} title=(c.verdict_line) { (c.outcome.name()) } }
                    td { (if c.caught_by.is_empty() { "-".to_string() } else { c.caught_by.join(", ") }) }
                    td class="num" { @if let Some(f) = c.first_anomaly_s { (format!("{f:.1} s")) } @else { "-" } }
                    td class="num" { @if let Some(n) = c.counts { (n.ok) " / " (n.fail) " / " (n.info) } @else { "-" } }
                    td class="num" { @if let Some(o) = c.ops_per_s { (format!("{o:.0}")) } @else { "-" } }
                    td class="num" { (format!("{:.0} s", c.wall_s)) }
                    td { @if let Some(h) = run_link(to_store, c) { a href=(h) { (c.run.as_deref().unwrap_or("")) } }
                         @else { span class="muted" { (c.verdict_line) } } }
                }
            } }
        } }
    }
}
