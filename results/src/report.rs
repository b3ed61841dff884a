//! `report.html`: one self-contained page per run (inline CSS, JS and SVG; nothing fetched).
//!
//! Order of the page: the verdict; the configuration (`test.json`); summary statistics; the answers no
//! client rule covered (from the record, when there were any); the plots; the nemesis timeline; each
//! checker's result; for every invalid key an interactive counterexample view; links to the full history,
//! results and node logs. The counterexample view draws only the checker's bounded
//! window around the failure, so the page stays a few MB even for a 1,000,000-operation history.

use crate::data::{self, FaultInterval, ReadError};
use crate::html::{display_value, fmt_ns, script_json, short_json, verdict_badge, verdict_class, BASE_CSS};
use crate::plots::{fault_color_hex, PlotData, PlotError, PlotKind};
use crate::record::{RecordError, RunRecord, UnclassifiedAnswer};
use crate::run_dir::{RunDir, HISTORY_FILE, RESULTS_FILE, TEST_FILE};
use checker::history::{Event, Operation, Outcome};
use checker::result::{
    AvailabilityResult, CheckReport, Counterexample, KeyResult, LinearizabilityResult, OutcomeCounts,
    Quantiles, Stats,
};
use checker::Verdict;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The most operations of a counterexample window the page draws (the checker's window is normally smaller).
pub const MAX_WINDOW_OPS: usize = 1_500;
/// The most nemesis events listed in the timeline table.
const MAX_NEMESIS_ROWS: usize = 1_000;
/// The most rows of each per-key table (invalid and unknown keys; valid keys, folded).
const MAX_KEY_ROWS: usize = 200;
/// The most counterexample views on one page.
const MAX_COUNTEREXAMPLES: usize = 5;
/// The most kinds of unclassified answer listed.
const MAX_UNCLASSIFIED_ROWS: usize = 50;
/// Unclassified answers longer than this are cut in the page (the client already bounds the body it quotes).
const MAX_ANSWER_CHARS: usize = 400;
/// Model states longer than this (as JSON) are cut in the page.
const MAX_STATE_CHARS: usize = 2_000;

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Links the page shows, relative to the page's folder (or absolute).
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// The full history (`history.jsonl`).
    pub history: Option<String>,
    /// `results.json`.
    pub results: Option<String>,
    /// `test.json`.
    pub test: Option<String>,
    /// Node logs (`nodes/n1.log`, ...).
    pub node_logs: Vec<String>,
    /// Plot images beside the page (`latency-raw.png`, ...).
    pub plot_files: Vec<String>,
    /// The store's index, when the page sits in a store.
    pub index: Option<String>,
}

/// Everything a report page is made from.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    /// The page's title (the test's name).
    pub title: String,
    pub events: &'a [Event],
    /// The checkers' conclusions; None when nothing was checked.
    pub check: Option<&'a CheckReport>,
    /// The run's record (`test.json`): `Ok(None)` when there is none (a history checked on its own), `Err`
    /// with the reason when it could not be read.
    pub record: Result<Option<&'a RunRecord>, String>,
    pub links: Links,
}

/// What rendering wrote.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The page.
    pub report: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
    /// Plot files written beside it (PNG and SVG).
    pub plots: Vec<PathBuf>,
}

/// Re-renders a run folder from its files: reads `history.jsonl`, `results.json` (if present) and
/// `test.json` (if present), writes the plots (PNG and SVG) and `report.html` into the folder.
pub fn render_run(run: &RunDir) -> Result<Rendered, ReportError> {
    let check = if run.results_path().is_file() {
        Some(data::read_results(&run.results_path())?)
    } else {
        None
    };
    render_run_with(run, check.as_ref())
}

/// Renders a run folder with a check report already in memory (the harness's path after a run).
pub fn render_run_with(run: &RunDir, check: Option<&CheckReport>) -> Result<Rendered, ReportError> {
    let events = data::read_history(&run.history_path())?;
    let record = match run.record() {
        Ok(r) => Ok(Some(r)),
        Err(RecordError::Missing(_)) => Ok(None),
        Err(e) => Err(e.to_string()),
    };
    let dir = run.path();
    let ops = data::pair_operations(&events);
    let faults = data::fault_intervals(&events);
    let plot_data = PlotData::new(&ops, &faults, events.last().map(|e| e.time).unwrap_or(0));
    let (svgs, plots) = plot_data.write_all(dir)?;
    let exists = |name: &str| dir.join(name).is_file().then(|| name.to_string());
    let in_store = dir.parent().and_then(Path::parent).map(|s| {
        s.join(crate::run_dir::INDEX_FILE).is_file() || s.join(crate::run_dir::LATEST_LINK).exists()
    });
    let links = Links {
        history: Some(HISTORY_FILE.to_string()),
        results: exists(RESULTS_FILE),
        test: exists(TEST_FILE),
        node_logs: run.node_logs(),
        plot_files: plots
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect(),
        index: (in_store == Some(true)).then(|| format!("../../{}", crate::run_dir::INDEX_FILE)),
    };
    let title = match &record {
        Ok(Some(r)) if !r.name.is_empty() => r.name.clone(),
        _ => run.test_name().to_string(),
    };
    let input = ReportInput {
        title,
        events: &events,
        check,
        record: record.as_ref().map(Option::as_ref).map_err(String::clone),
        links,
    };
    let page = render_page(&input, &ops, &faults, &svgs);
    let report = run.report_path();
    crate::run_dir::write_atomically(&report, page.as_bytes()).map_err(|e| match e {
        crate::run_dir::StoreError::Io { path, source } => ReportError::Write { path, source },
        other => ReportError::Write {
            path: report.clone(),
            source: std::io::Error::other(other.to_string()),
        },
    })?;
    Ok(Rendered {
        report,
        bytes: page.len(),
        plots,
    })
}

/// Renders the page for a history checked alone (`faultline check --html FILE`): one self-contained file
/// with the plots inline and no files beside it. `history_href` is the link to the full history, if any.
pub fn render_checked_history(
    events: &[Event],
    check: &CheckReport,
    title: &str,
    history_href: Option<&str>,
    out: &Path,
) -> Result<Rendered, ReportError> {
    let input = ReportInput {
        title: title.to_string(),
        events,
        check: Some(check),
        record: Ok(None),
        links: Links {
            history: history_href.map(str::to_string),
            ..Links::default()
        },
    };
    let page = render_html(&input)?;
    std::fs::write(out, page.as_bytes()).map_err(|source| ReportError::Write {
        path: out.into(),
        source,
    })?;
    Ok(Rendered {
        report: out.to_path_buf(),
        bytes: page.len(),
        plots: Vec::new(),
    })
}

/// Renders a report page to a string (plots inline as SVG; no files written).
pub fn render_html(input: &ReportInput<'_>) -> Result<String, ReportError> {
    let ops = data::pair_operations(input.events);
    let faults = data::fault_intervals(input.events);
    let plot_data = PlotData::new(&ops, &faults, input.events.last().map(|e| e.time).unwrap_or(0));
    let svgs = PlotKind::ALL
        .iter()
        .map(|k| plot_data.svg(*k))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(render_page(input, &ops, &faults, &svgs))
}

fn render_page(
    input: &ReportInput<'_>,
    ops: &[Operation],
    faults: &[FaultInterval],
    svgs: &[String],
) -> String {
    let verdict = input.check.map(|c| c.verdict);
    let (vclass, _) = verdict_class(verdict);
    let computed;
    let stats = match input.check.and_then(|c| c.stats.as_ref()) {
        Some(s) => s,
        None => {
            computed = compute_stats(ops, input.events);
            &computed
        }
    };
    let end_ns = input.events.last().map(|e| e.time).unwrap_or(0);
    let lin = input.check.and_then(|c| c.linearizability.as_ref());
    let counterexamples: Vec<(&KeyResult, &Counterexample)> = lin
        .map(|l| {
            l.keys
                .iter()
                .filter_map(|k| k.counterexample.as_ref().map(|c| (k, c)))
                .collect()
        })
        .unwrap_or_default();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "faultline: " (input.title) " — " (verdict_class(verdict).1) }
                style { (PreEscaped(BASE_CSS)) (PreEscaped(REPORT_CSS)) }
            }
            body { main {
                nav class="muted" {
                    @if let Some(i) = &input.links.index { a href=(i) { "all runs" } " · " }
                    "faultline report"
                }
                h1 { (input.title) }
                section id="verdict" class={"banner " (vclass)} {
                    div class="big" { "Verdict: " (verdict_badge(verdict)) }
                    (verdict_explanation(input.check, &counterexamples))
                }
                section id="config" {
                    h2 { "Configuration" }
                    (config_table(&input.record))
                }
                section id="summary" {
                    h2 { "Summary" }
                    (summary(stats, ops.len()))
                }
                @if let Ok(Some(r)) = &input.record {
                    @if !r.unclassified.is_empty() { (unclassified_section(&r.unclassified)) }
                }
                (plots_section(svgs, &input.links))
                section id="nemesis" {
                    h2 { "Nemesis timeline" }
                    (nemesis_timeline(input.events, faults, end_ns))
                }
                (checkers_section(input.check))
                (counterexamples_section(&counterexamples, lin.map(|l| l.model.as_str()).unwrap_or(""), &input.links))
                (files_section(input))
            } }
            script { (PreEscaped(REPORT_JS)) }
        }
    };
    page.into_string()
}

fn plots_section(svgs: &[String], links: &Links) -> Markup {
    html! {
        section id="plots" {
            h2 { "Plots" }
            @for (kind, svg) in PlotKind::ALL.iter().zip(svgs) {
                figure class="plotfig" id={"plot-" (kind.name())} {
                    div class="svgplot" { (PreEscaped(strip_xml_decl(svg))) }
                    figcaption class="muted" {
                        (kind.name())
                        @for f in links.plot_files.iter().filter(|f| f.starts_with(kind.name()) && f[kind.name().len()..].starts_with('.')) {
                            " · " a href=(f) { (f) }
                        }
                    }
                }
            }
        }
    }
}

fn checkers_section(check: Option<&CheckReport>) -> Markup {
    html! {
        section id="checkers" {
            h2 { "Checkers" }
            @match check {
                None => p { "No check result: this history was not checked (no results.json). Run "
                            code { "faultline report --recheck" } " to check it." },
                Some(c) => {
                    (linearizability_section(c.linearizability.as_ref()))
                    (availability_section(c.availability.as_ref()))
                    (stats_section(c.stats.as_ref()))
                }
            }
        }
    }
}

fn counterexamples_section(
    counterexamples: &[(&KeyResult, &Counterexample)],
    model: &str,
    links: &Links,
) -> Markup {
    html! {
        @if !counterexamples.is_empty() {
            section id="counterexamples" {
                h2 { "Counterexample" @if counterexamples.len() > 1 { "s" } }
                @for (i, (k, cx)) in counterexamples.iter().take(MAX_COUNTEREXAMPLES).enumerate() {
                    (counterexample_view(i, k, cx, model, links))
                }
                @if counterexamples.len() > MAX_COUNTEREXAMPLES {
                    p class="muted" { (counterexamples.len() - MAX_COUNTEREXAMPLES) " more invalid keys are listed in the table above." }
                }
            }
        }
    }
}

fn files_section(input: &ReportInput<'_>) -> Markup {
    html! {
        section id="files" {
            h2 { "Files" }
            ul {
                @if let Some(h) = &input.links.history { li { a href=(h) { "full history" } " (" (input.events.len()) " events)" } }
                @if let Some(r) = &input.links.results { li { a href=(r) { "results.json" } } }
                @if let Some(t) = &input.links.test { li { a href=(t) { "test.json" } } }
                @for f in &input.links.plot_files { li { a href=(f) { (f) } } }
            }
            @if !input.links.node_logs.is_empty() {
                h3 { "Node logs" }
                ul class="nodelogs" { @for l in &input.links.node_logs { li { a href=(l) { (l) } } } }
            }
        }
    }
}

fn strip_xml_decl(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

fn verdict_explanation(check: Option<&CheckReport>, cxs: &[(&KeyResult, &Counterexample)]) -> Markup {
    let Some(c) = check else {
        return html! { p { "This history has not been checked." } };
    };
    let lin = c.linearizability.as_ref();
    html! {
        @if let Some((k, cx)) = cxs.first() {
            p {
                "Not linearizable" @if let Some(key) = &k.key { " on key " code { (key) } } ": operation "
                code { (op_text(&cx.op)) } " by process " (cx.op.process) " (invoked at "
                (fmt_secs(cx.op.call)) ") cannot be placed after any longest linearizable prefix. "
                a href="#counterexamples" { "See the counterexample." }
            }
        }
        @if let Some(l) = lin {
            @let invalid = l.keys.iter().filter(|k| k.verdict == Verdict::Invalid).count();
            @let unknown = l.keys.iter().filter(|k| k.verdict == Verdict::Unknown).count();
            p { "Linearizability (" (l.model) "): " (verdict_badge(Some(l.verdict))) " — " (l.keys.len()) " keys, "
                (invalid) " invalid, " (unknown) " unknown, checked in " (format!("{:.0}", l.elapsed_ms)) " ms." }
            @for (reason, keys) in unknown_reasons(l).iter().take(3) {
                p class="muted" {
                    "Unknown"
                    @if !keys.is_empty() {
                        " on "
                        @for (i, key) in keys.iter().take(5).enumerate() { @if i > 0 { ", " } code { (key) } }
                        @if keys.len() > 5 { " and " (keys.len() - 5) " more keys" }
                    }
                    ": " (reason)
                }
            }
        }
        @if let Some(a) = &c.availability {
            p { "Availability: " (verdict_badge(Some(a.verdict))) " — longest stretch without an ok: " (fmt_ns(a.longest_gap_ns)) "." }
        }
    }
}

/// Unknown keys grouped by their reason, in order of first appearance.
fn unknown_reasons(l: &LinearizabilityResult) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for k in l.keys.iter().filter(|k| k.verdict == Verdict::Unknown) {
        let reason = k.reason.clone().unwrap_or_else(|| "no reason given".into());
        let key = k.key.clone();
        match groups.iter_mut().find(|g| g.0 == reason) {
            Some(g) => g.1.extend(key),
            None => groups.push((reason, key.into_iter().collect())),
        }
    }
    groups
}

fn fmt_secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// `cas [1,2] → ok`, `read → 3`, ... (short).
fn op_text(op: &Operation) -> String {
    let input = if op.input.is_null() {
        String::new()
    } else {
        format!(" {}", short_json(&op.input, 80))
    };
    let out = match op.outcome {
        Outcome::Ok if !op.output.is_null() && op.output != op.input => {
            format!(" → {}", short_json(&op.output, 80))
        }
        Outcome::Ok if op.f == "read" || op.f == "get" => " → nil".to_string(),
        Outcome::Ok => " → ok".to_string(),
        Outcome::Fail => " → fail".to_string(),
        Outcome::Info => " → info".to_string(),
    };
    format!("{}{}{}", op.f, input, out)
}

/// The fields of the run record shown first, in this order (those that are set).
fn headline(r: &RunRecord) -> Vec<(&'static str, String)> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let secs = |s: f64| if s > 0.0 { format!("{s} s") } else { String::new() };
    let ts = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            crate::summary::readable_timestamp(s)
        }
    };
    let rows = [
        ("name", r.name.clone()),
        ("db", r.db.clone()),
        ("system_version", opt(r.system_version.clone())),
        ("workload", r.workload.clone()),
        ("model", r.model.clone()),
        ("nemesis", r.nemesis.faults.clone()),
        ("backend", r.backend.clone()),
        (
            "node_count",
            if r.node_count > 0 {
                r.node_count.to_string()
            } else {
                String::new()
            },
        ),
        (
            "nodes",
            r.nodes
                .iter()
                .map(|n| n.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "concurrency",
            if r.concurrency > 0 {
                r.concurrency.to_string()
            } else {
                String::new()
            },
        ),
        ("rate", opt(r.rate.map(|x| format!("{x} ops/s")))),
        ("time_limit", secs(r.time_limit)),
        ("recovery_limit", secs(r.recovery_limit)),
        ("seed", opt(r.seed.map(|x| x.to_string()))),
        ("node_args", r.node_args.join(" ")),
        ("started_at", ts(&r.started_at)),
        ("ended_at", ts(r.ended_at.as_deref().unwrap_or(""))),
        ("error", opt(r.error.clone())),
    ];
    rows.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

fn config_table(record: &Result<Option<&RunRecord>, String>) -> Markup {
    let r = match record {
        Ok(Some(r)) => r,
        Ok(None) => return html! { p class="muted" { "No test.json: the configuration is unknown." } },
        Err(e) => return html! { p class="muted" { "test.json could not be read: " (e) } },
    };
    let Value::Object(map) = r.to_json() else {
        return html! {};
    };
    html! {
        div class="scroll" { table class="kv" { tbody {
            @for (k, v) in headline(r) { tr { th { (k) } td { (v) } } }
        } } }
        details class="alltest" {
            summary { "All of test.json (" (map.len()) " fields)" }
            div class="scroll" { table class="kv" { tbody {
                @for (k, v) in &map {
                    tr { th { (k) } td {
                        @match v {
                            Value::String(s) if s.len() > 200 => pre { (short_text(s, 8_000)) },
                            Value::Object(_) | Value::Array(_) => code class="wrap" { (short_json(v, 8_000)) },
                            _ => (display_value(v)),
                        }
                    } }
                }
            } } }
        }
    }
}

fn short_text(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

fn compute_stats(ops: &[Operation], events: &[Event]) -> Stats {
    let mut s = Stats::default();
    let mut lats: Vec<u64> = Vec::new();
    for op in ops {
        let c = s.by_f.entry(op.f.clone()).or_insert_with(OutcomeCounts::default);
        match op.outcome {
            Outcome::Ok => {
                s.ok += 1;
                c.ok += 1
            }
            Outcome::Fail => {
                s.fail += 1;
                c.fail += 1
            }
            Outcome::Info => {
                s.info += 1;
                c.info += 1
            }
        }
        if let Some(r) = op.ret {
            lats.push(r.saturating_sub(op.call));
        }
    }
    lats.sort_unstable();
    let q = |p: f64| {
        if lats.is_empty() {
            0
        } else {
            lats[((lats.len() as f64 * p).ceil() as usize).clamp(1, lats.len()) - 1]
        }
    };
    s.latency_ns = Quantiles {
        p50: q(0.5),
        p95: q(0.95),
        p99: q(0.99),
        max: q(1.0),
    };
    let (first, last) = (
        events.first().map(|e| e.time).unwrap_or(0),
        events.last().map(|e| e.time).unwrap_or(0),
    );
    s.duration_ns = last.saturating_sub(first);
    s.ok_per_sec = if s.duration_ns > 0 {
        s.ok as f64 / (s.duration_ns as f64 / 1e9)
    } else {
        0.0
    };
    s
}

fn summary(s: &Stats, n_ops: usize) -> Markup {
    let total = s.ok + s.fail + s.info;
    let by_f: Vec<(&String, &OutcomeCounts)> = s.by_f.iter().take(50).collect();
    html! {
        div class="cards" {
            div class="card" { div class="n" { (total) } div class="l" { "operations" } }
            div class="card ok" { div class="n" { (s.ok) } div class="l" { "ok" } }
            div class="card fail" { div class="n" { (s.fail) } div class="l" { "fail" } }
            div class="card info" { div class="n" { (s.info) } div class="l" { "info (indeterminate)" } }
            div class="card" { div class="n" { (format!("{:.1}", s.ok_per_sec)) } div class="l" { "ok / s" } }
            div class="card" { div class="n" { (fmt_ns(s.duration_ns)) } div class="l" { "duration" } }
        }
        @if total as usize != n_ops && n_ops > 0 { p class="muted" { "(" (n_ops) " operations in the history.)" } }
        div class="scroll" { table {
            thead { tr { th { "latency" } th class="num" { "p50" } th class="num" { "p95" } th class="num" { "p99" } th class="num" { "max" } } }
            tbody { tr { td { "completed ops" }
                td class="num" { (fmt_ns(s.latency_ns.p50)) } td class="num" { (fmt_ns(s.latency_ns.p95)) }
                td class="num" { (fmt_ns(s.latency_ns.p99)) } td class="num" { (fmt_ns(s.latency_ns.max)) } } }
        } }
        @if !by_f.is_empty() {
            div class="scroll" { table {
                thead { tr { th { "function" } th class="num" { "ok" } th class="num" { "fail" } th class="num" { "info" } } }
                tbody { @for (f, c) in by_f { tr { td { code { (f) } } td class="num" { (c.ok) } td class="num" { (c.fail) } td class="num" { (c.info) } } } }
            } }
        }
    }
}

/// The answers no rule of the spec's client protocol covered (from the run record): what the spec's author
/// should describe in `[client]`. Every answer is shown as text, escaped.
fn unclassified_section(found: &[UnclassifiedAnswer]) -> Markup {
    let total: u64 = found.iter().map(|a| a.count).sum();
    html! {
        section id="unclassified" {
            h2 { "Answers no client rule covers" }
            p {
                (total) " answer" @if total != 1 { "s" } " matched no rule of the spec's " code { "[client]" }
                " protocol. Each was recorded as indeterminate (" code { "info" } "; a read, which changes nothing, as "
                code { "fail" } "), never as " code { "ok" } " or a definite failure, so the verdict does not rest on "
                "a guess; but every such operation weakens what the check can show. Describe these answers in the "
                "spec's rules (" code { "faultline probe --db SPEC" } " shows how each answer is classified)."
            }
            div class="scroll" { table {
                thead { tr {
                    th class="num" { "count" } th { "function" } th { "recorded as" } th { "answer" }
                    th class="num" { "first at (history index)" }
                } }
                tbody { @for a in found.iter().take(MAX_UNCLASSIFIED_ROWS) { tr {
                    td class="num" { (a.count) } td { code { (a.f) } } td { (a.recorded_as) }
                    td { code class="answer" { (short_text(&a.answer, MAX_ANSWER_CHARS)) } }
                    td class="num" { (a.first_index) }
                } } }
            } }
            @if found.len() > MAX_UNCLASSIFIED_ROWS {
                p class="muted" { (found.len() - MAX_UNCLASSIFIED_ROWS) " more kinds of answer are in test.json (" code { "unclassified" } ")." }
            }
        }
    }
}

fn nemesis_timeline(events: &[Event], faults: &[FaultInterval], end_ns: u64) -> Markup {
    let nem: Vec<&Event> = data::nemesis_events(events).collect();
    if nem.is_empty() {
        return html! { p class="muted" { "No faults: the nemesis recorded no events." } };
    }
    let mut kinds: Vec<&str> = Vec::new();
    for f in faults {
        if !kinds.contains(&f.kind.as_str()) {
            kinds.push(&f.kind);
        }
    }
    let end = end_ns
        .max(faults.iter().map(|f| f.end.unwrap_or(f.start)).max().unwrap_or(0))
        .max(1) as f64;
    let (w, label_w, row_h) = (1000.0f64, 110.0f64, 22.0f64);
    let x = |t: u64| label_w + (t as f64 / end) * (w - label_w - 10.0);
    let h = row_h * kinds.len() as f64 + 26.0;
    let ticks: Vec<u64> = (0..=5).map(|i| (end * i as f64 / 5.0) as u64).collect();
    html! {
        div class="scroll" {
            svg class="timeline" viewBox={"0 0 " (w) " " (h)} width="100%" role="img" aria-label="nemesis timeline" {
                @for (r, kind) in kinds.iter().enumerate() {
                    @let y = r as f64 * row_h + 4.0;
                    @let color = fault_color_hex(kind);
                    text x="4" y=(y + 14.0) class="tl-label" { (kind) }
                    line x1=(label_w) x2=(w - 10.0) y1=(y + row_h / 2.0) y2=(y + row_h / 2.0) stroke="#e3e6eb" {}
                    @for iv in faults.iter().filter(|f| f.kind == **kind) {
                        @let x0 = x(iv.start);
                        @let x1 = x(iv.end.unwrap_or(end_ns)).max(x0 + 2.0);
                        rect x=(x0) y=(y + 2.0) width=(x1 - x0) height=(row_h - 6.0) fill=(color) fill-opacity="0.55" stroke=(color) {
                            title { (iv.start_f) " at " (fmt_secs(iv.start))
                                @if let Some(e) = iv.end { " until " (fmt_secs(e)) } @else { " (never stopped)" }
                                @if !iv.detail.is_empty() { ": " (iv.detail) } }
                        }
                    }
                }
                @for t in &ticks {
                    @let tx = x(*t);
                    line x1=(tx) x2=(tx) y1=(h - 24.0) y2=(h - 18.0) stroke="#5b6475" {}
                    text x=(tx) y=(h - 6.0) text-anchor=(if *t == 0 { "start" } else if *t == ticks[ticks.len() - 1] { "end" } else { "middle" }) class="tl-tick" { (format!("{:.1}s", *t as f64 / 1e9)) }
                }
            }
        }
        details {
            summary { (nem.len()) " nemesis events" }
            div class="scroll" { table {
                thead { tr { th class="num" { "time" } th { "action" } th { "what / where" } } }
                tbody {
                    @for e in nem.iter().take(MAX_NEMESIS_ROWS) {
                        tr {
                            td class="num" { (fmt_secs(e.time)) }
                            td { span class="swatch" style={"background:" (fault_color_hex(&data::fault_kind(&e.f).map(|k| k.0).unwrap_or_else(|| e.f.clone())))} {} code { (e.f) } }
                            td { @if !e.value.is_null() { code { (short_json(&e.value, 500)) } } @if let Some(err) = &e.error { " " span class="err" { (err) } } }
                        }
                    }
                }
            } }
            @if nem.len() > MAX_NEMESIS_ROWS { p class="muted" { "… " (nem.len() - MAX_NEMESIS_ROWS) " more in the full history." } }
        }
    }
}

fn linearizability_section(lin: Option<&LinearizabilityResult>) -> Markup {
    let Some(l) = lin else {
        return html! { h3 { "Linearizability" } p class="muted" { "Not checked." } };
    };
    // Invalid keys first, then unknown ones; the valid ones folded: a run over many keys is about the few
    // that are wrong.
    let mut keys: Vec<&KeyResult> = l.keys.iter().filter(|k| k.verdict != Verdict::Valid).collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.verdict));
    let valid: Vec<&KeyResult> = l.keys.iter().filter(|k| k.verdict == Verdict::Valid).collect();
    html! {
        h3 { "Linearizability " (verdict_badge(Some(l.verdict))) }
        p { "Model " code { (l.model) } ", " (l.keys.len()) " keys, " (format!("{:.1}", l.elapsed_ms)) " ms." }
        @if !keys.is_empty() { (key_table(&keys)) }
        @if !valid.is_empty() {
            details class="valid-keys" {
                summary { (valid.len()) " valid keys" }
                (key_table(&valid))
            }
        }
    }
}

/// A table of keys (at most [`MAX_KEY_ROWS`] rows; the rest counted).
fn key_table(keys: &[&KeyResult]) -> Markup {
    let shown = keys.len().min(MAX_KEY_ROWS);
    html! {
        div class="scroll" { table {
            thead { tr { th { "key" } th { "verdict" } th class="num" { "ops" } th class="num" { "ms" } th { "note" } } }
            tbody {
                @for k in &keys[..shown] {
                    tr {
                        td { @if let Some(key) = &k.key { code { (key) } } @else { span class="muted" { "(whole history)" } } }
                        td { (verdict_badge(Some(k.verdict))) }
                        td class="num" { (k.ops) }
                        td class="num" { (format!("{:.1}", k.elapsed_ms)) }
                        td {
                            @if let Some(r) = &k.reason { (r) }
                            @if let Some(c) = &k.counterexample { "cannot linearize " code { (op_text(&c.op)) } }
                        }
                    }
                }
            }
        } }
        @if keys.len() > shown { p class="muted" { (keys.len() - shown) " more keys in results.json." } }
    }
}

fn availability_section(a: Option<&AvailabilityResult>) -> Markup {
    let Some(a) = a else { return html! {} };
    html! {
        h3 { "Availability " (verdict_badge(Some(a.verdict))) }
        p { "Longest stretch without an ok completion: " (fmt_ns(a.longest_gap_ns)) ", from " (fmt_secs(a.longest_gap_start))
            ". Recovery limit after the final heal: " (fmt_ns(a.recovery_limit_ns)) "." }
        @if !a.stalls.is_empty() {
            p class="err" { "Stalls: a live, connected majority existed for longer than the limit without any ok." }
            div class="scroll" { table {
                thead { tr { th class="num" { "from" } th class="num" { "to" } th class="num" { "with a live majority" } } }
                tbody { @for st in a.stalls.iter().take(MAX_NEMESIS_ROWS) { tr {
                    td class="num" { (fmt_secs(st.start)) } td class="num" { (fmt_secs(st.end)) }
                    td class="num" { (fmt_ns(st.majority_ns)) }
                } } }
            } }
        }
        @if !a.recoveries.is_empty() {
            div class="scroll" { table {
                thead { tr { th class="num" { "heal at" } th { "action" } th class="num" { "recovered after" } } }
                tbody { @for r in a.recoveries.iter().take(MAX_NEMESIS_ROWS) { tr {
                    td class="num" { (fmt_secs(r.heal_time)) } td { code { (r.f) } }
                    td class="num" { @match r.recovery_ns { Some(ns) => (fmt_ns(ns)), None => span class="err" { "never" } } }
                } } }
            } }
        }
    }
}

fn stats_section(s: Option<&Stats>) -> Markup {
    let Some(s) = s else { return html! {} };
    html! {
        h3 { "Stats" }
        p { (s.ok) " ok, " (s.fail) " fail, " (s.info) " info; " (format!("{:.1}", s.ok_per_sec)) " ok/s over " (fmt_ns(s.duration_ns)) "." }
    }
}

/// The embedded data of one counterexample view, bounded: the window (capped around the failing op), and
/// each prefix cut to the window's operations, with model states as short JSON text.
fn counterexample_data(k: &KeyResult, cx: &Counterexample, model: &str, history: Option<&str>) -> Value {
    let mut window: Vec<&Operation> = cx.window.iter().collect();
    if !window.iter().any(|o| o.invoke_index == cx.op.invoke_index) {
        window.push(&cx.op);
        window.sort_by_key(|o| o.invoke_index);
    }
    let total = window.len();
    if window.len() > MAX_WINDOW_OPS {
        let at = window
            .iter()
            .position(|o| o.invoke_index == cx.op.invoke_index)
            .unwrap_or(0);
        let lo = at
            .saturating_sub(MAX_WINDOW_OPS * 3 / 4)
            .min(window.len() - MAX_WINDOW_OPS);
        window = window[lo..lo + MAX_WINDOW_OPS].to_vec();
    }
    let ids: std::collections::HashSet<u64> = window.iter().map(|o| o.invoke_index).collect();
    let ops: Vec<Value> = window
        .iter()
        .map(|o| {
            json!({
                "id": o.invoke_index, "p": o.process, "f": o.f,
                "in": short_json(&o.input, 200), "out": short_json(&o.output, 200),
                "o": match o.outcome { Outcome::Ok => "ok", Outcome::Fail => "fail", Outcome::Info => "info" },
                "err": o.error, "call": o.call, "ret": o.ret,
            })
        })
        .collect();
    let prefixes: Vec<Value> = cx
        .prefixes
        .iter()
        .take(3)
        .map(|p| {
            let n = p.omitted + p.ops.len();
            let mut steps = Vec::new();
            for (i, id) in p.ops.iter().enumerate() {
                if ids.contains(id) {
                    let st = p
                        .states
                        .get(i)
                        .map(|s| short_json(s, MAX_STATE_CHARS))
                        .unwrap_or_default();
                    steps.push(json!([p.omitted + i + 1, id, st]));
                }
            }
            let last = p.states.last().map(|s| short_json(s, MAX_STATE_CHARS));
            json!({"len": n, "steps": steps, "final": last, "blocked": p.blocked})
        })
        .collect();
    json!({
        "key": k.key, "model": model, "fail": cx.op.invoke_index, "ops": ops, "prefixes": prefixes,
        "total": total, "history": history,
    })
}

fn counterexample_view(i: usize, k: &KeyResult, cx: &Counterexample, model: &str, links: &Links) -> Markup {
    let data = counterexample_data(k, cx, model, links.history.as_deref());
    let shown = data["ops"].as_array().map(Vec::len).unwrap_or(0);
    let longest = cx.prefixes.first();
    html! {
        div class="cx" id={"cx-" (i)} data-cx=(i) {
            h3 { "Key " @if let Some(key) = &k.key { code { (key) } } @else { "(whole history)" } " " (verdict_badge(Some(k.verdict))) }
            p class="cx-fail" {
                "The operation that cannot be linearized: " strong class="failop" { code { (op_text(&cx.op)) } }
                " — process " (cx.op.process) ", invoked at " (fmt_secs(cx.op.call))
                @if let Some(r) = cx.op.ret { ", returned at " (fmt_secs(r)) }
                @if let Some(e) = &cx.op.error { " (" (e) ")" } "."
            }
            @if let Some(p) = longest {
                p { "Longest linearizable prefix: " (p.omitted + p.ops.len()) " operations; model state after it: "
                    code { (p.states.last().map(|s| short_json(s, 300)).unwrap_or_else(|| "(initial)".into())) } "." }
            }
            p class="muted" {
                "Showing " (shown) " operations of this key around the failure"
                @if data["total"].as_u64().unwrap_or(0) as usize > shown { " (of " (data["total"]) " in the checker's window)" }
                @if let Some(h) = &links.history { "; the " a href=(h) { "full history" } " has everything" } ". "
                "Green bars are the longest linearizable prefix (numbered in linearization order), the red bar is the "
                "operation that cannot be linearized; hover or tap a bar for details and the model state."
            }
            div class="cx-controls" {
                label { "Prefix " select class="cx-prefix" {
                    @for (pi, p) in cx.prefixes.iter().take(3).enumerate() { option value=(pi) { "#" (pi + 1) " (" (p.omitted + p.ops.len()) " ops)" } }
                } }
                label { input type="checkbox" class="cx-realtime"; " real time axis" }
            }
            div class="cx-note muted" {}
            div class="cx-wrap scroll" { svg class="cx-svg" xmlns="http://www.w3.org/2000/svg" {} }
            div class="cx-tip" hidden {}
            script type="application/json" class="cx-data" { (PreEscaped(script_json(&data))) }
            details class="cx-table" {
                summary { "The window as a table" }
                div class="scroll" { table {
                    thead { tr { th class="num" { "#" } th class="num" { "process" } th { "op" } th { "outcome" } th class="num" { "invoke" } th class="num" { "return" } th { "in prefix" } } }
                    tbody {
                        @let order = prefix_order(longest);
                        @for o in cx.window.iter().take(MAX_WINDOW_OPS) {
                            tr class=[if o.invoke_index == cx.op.invoke_index { Some("failrow") } else { None }] {
                                td class="num" { (o.invoke_index) } td class="num" { (o.process) }
                                td { code { (op_text(o)) } @if let Some(e) = &o.error { " " span class="err" { (e) } } }
                                td { (format!("{:?}", o.outcome).to_lowercase()) }
                                td class="num" { (fmt_secs(o.call)) }
                                td class="num" { @if let Some(r) = o.ret { (fmt_secs(r)) } @else { "—" } }
                                td { @if let Some((n, st)) = order.get(&o.invoke_index) { (n) ". state " code { (st) } } }
                            }
                        }
                    }
                } }
            }
        }
    }
}

fn prefix_order(p: Option<&checker::result::Prefix>) -> BTreeMap<u64, (usize, String)> {
    let mut m = BTreeMap::new();
    if let Some(p) = p {
        for (i, id) in p.ops.iter().enumerate() {
            m.insert(
                *id,
                (
                    i + 1,
                    p.states.get(i).map(|s| short_json(s, 200)).unwrap_or_default(),
                ),
            );
        }
    }
    m
}

const REPORT_CSS: &str = r#"
nav{font-size:.85rem;margin-top:6px}
.cards{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:110px}
.card .n{font-size:1.3rem;font-weight:700;font-variant-numeric:tabular-nums}.card .l{font-size:.8rem;color:var(--muted)}
.card.ok .n{color:var(--ok)}.card.fail .n{color:var(--bad)}.card.info .n{color:var(--unk)}
table.kv th{width:1%;white-space:nowrap}
code.wrap{white-space:pre-wrap;word-break:break-all}
details.alltest{margin:6px 0}
figure.plotfig{margin:10px 0}
.svgplot svg{width:100%;height:auto;max-width:1200px;border:1px solid var(--line)}
svg.timeline{min-width:600px;max-width:1200px}.tl-label{font-size:12px}.tl-tick{font-size:11px;fill:#5b6475}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:middle}
.err{color:var(--bad)}
.cx{border:1px solid var(--line);border-radius:6px;padding:6px 12px;margin:10px 0;position:relative}
.failop code{color:var(--bad);font-weight:700}
.cx-note{font-size:.8rem}
.cx-controls{display:flex;gap:16px;flex-wrap:wrap;font-size:.9rem;margin:6px 0}
.cx-svg{display:block}
.cx-svg text{font-size:11px;font-family:"DejaVu Sans",sans-serif}
.cx-svg .bar{cursor:pointer}
.cx-tip{position:absolute;z-index:5;background:#fff;border:1px solid #8a94a6;border-radius:4px;padding:6px 8px;font-size:.8rem;max-width:min(420px,90vw);box-shadow:0 2px 8px rgba(0,0,0,.15);white-space:pre-wrap;word-break:break-all}
tr.failrow td{background:#fdecec}
"#;

const REPORT_JS: &str = r#"
(function(){
'use strict';
var NS='http://www.w3.org/2000/svg';
function el(n,a,p){var e=document.createElementNS(NS,n);for(var k in a){e.setAttribute(k,a[k]);}if(p){p.appendChild(e);}return e;}
function secs(ns){return (ns/1e9).toFixed(4)+' s';}
function rel(d,span){
  if(span>=1e10){return '+'+(d/1e9).toFixed(1)+'s';}
  if(span>=1e7){return '+'+(d/1e6).toFixed(span>=1e8?0:1)+'ms';}
  if(span>=1e4){return '+'+(d/1e3).toFixed(span>=1e5?0:1)+'µs';}
  return '+'+Math.round(d)+'ns';
}
function draw(box){
  var d=JSON.parse(box.querySelector('.cx-data').textContent);
  var svg=box.querySelector('.cx-svg'), tip=box.querySelector('.cx-tip');
  var pi=+box.querySelector('.cx-prefix').value||0, real=box.querySelector('.cx-realtime').checked;
  while(svg.firstChild){svg.removeChild(svg.firstChild);}
  var pre=d.prefixes[pi]||{steps:[],len:0,final:null}, order={};
  pre.steps.forEach(function(s){order[s[1]]={n:s[0],state:s[2]};});
  var procs=[];d.ops.forEach(function(o){if(procs.indexOf(o.p)<0){procs.push(o.p);}});procs.sort(function(a,b){return a-b;});
  var tmax=0;d.ops.forEach(function(o){tmax=Math.max(tmax,o.call,o.ret===null?o.call:o.ret);});
  var times=[];d.ops.forEach(function(o){times.push(o.call);if(o.ret!==null){times.push(o.ret);}});
  times.push(tmax+1);times.sort(function(a,b){return a-b;});
  var uniq=[];times.forEach(function(t){if(!uniq.length||uniq[uniq.length-1]!==t){uniq.push(t);}});
  var pos={};uniq.forEach(function(t,i){pos[t]=i;});
  var tmin=uniq[0]||0, left=78, rowH=30, top=26;
  var width=Math.max(box.clientWidth-30, Math.min(24000, real?1200:uniq.length*16+left+20));
  var span=width-left-20;
  function X(t){return real? left+(t-tmin)/Math.max(1,(tmax+1-tmin))*span : left+pos[t]/Math.max(1,uniq.length-1)*span;}
  var height=top+procs.length*rowH+10;
  svg.setAttribute('width',width);svg.setAttribute('height',height);svg.setAttribute('viewBox','0 0 '+width+' '+height);
  box.querySelector('.cx-note').textContent='Time axis: '+(real?'real time':'event order (equal steps between invocations and returns)')+', relative to '+secs(tmin)+' · prefix '+(pi+1)+' has '+pre.len+' operations';
  var nt=Math.max(2,Math.min(10,Math.floor(span/110)));
  for(var i=0;i<=nt;i++){
    var tt=real? tmin+i/nt*(tmax+1-tmin) : uniq[Math.round(i/nt*(uniq.length-1))];
    var tx=X(tt);el('line',{x1:tx,x2:tx,y1:top-12,y2:height-6,stroke:'#e8ebf0'},svg);
    var tl=el('text',{x:tx,y:top-16,'text-anchor':'middle',fill:'#5b6475'},svg);tl.textContent=rel(tt-tmin,tmax-tmin);
  }
  procs.forEach(function(p,r){
    var y=top+r*rowH;
    el('line',{x1:left,x2:width-10,y1:y+rowH/2,y2:y+rowH/2,stroke:'#eceff3'},svg);
  });
  d.ops.forEach(function(o){
    var r=procs.indexOf(o.p), y=top+r*rowH+4, x0=X(o.call), x1=o.ret===null?width-12:X(o.ret);
    var fail=o.id===d.fail, lin=order[o.id], blocked=(pre.blocked===o.id&&!fail);
    var fill=fail?'#d32f2f':(lin?'#2e9e5b':'#b8c0cc'), stroke=fail?'#7f0000':(o.o==='info'?'#ff8c00':'#6b7280');
    var g=el('g',{'class':'bar'+(fail?' failing':'')+(lin?' linearized':''),'data-id':o.id},svg);
    var rect=el('rect',{x:x0,y:y,width:Math.max(3,x1-x0),height:rowH-8,rx:3,fill:fill,'fill-opacity':fail?0.95:0.8,stroke:stroke,'stroke-width':fail?2.5:1},g);
    if(o.o==='info'){rect.setAttribute('stroke-dasharray','4 2');}
    if(blocked){rect.setAttribute('stroke','#b71c1c');rect.setAttribute('stroke-width',2.5);rect.setAttribute('stroke-dasharray','5 3');}
    var label=(lin?lin.n+'. ':'')+(fail?'✗ ':'')+o.f+(o.in&&o.in!=='null'?' '+o.in:'')+(o.o==='ok'&&o.out!=='null'&&o.out!==o.in?' → '+o.out:'');
    if(x1-x0>30){var tx=el('text',{x:x0+3,y:y+rowH/2,fill:fail||lin?'#fff':'#1d2330'},g);tx.textContent=label.length>(x1-x0)/6?label.slice(0,Math.max(1,Math.floor((x1-x0)/6)-1))+'…':label;}
    function show(ev){
      var s='op #'+o.id+' · process '+o.p+'\n'+o.f+' '+o.in+' → '+o.o+(o.o==='ok'?' '+o.out:'')+(o.err?' ('+o.err+')':'')+
        '\ninvoked '+secs(o.call)+(o.ret!==null?' · returned '+secs(o.ret):' · never returned');
      if(lin){s+='\nlinearized as #'+lin.n+' of '+pre.len+'\nmodel state after: '+lin.state;}
      else if(fail){s+='\ncannot be linearized after the prefix'+(pre.final!==null?'\nmodel state after the prefix: '+pre.final:'');}
      else{s+='\nnot in this prefix'+(blocked?'\nthis prefix cannot be extended to include it':'');}
      tip.textContent=s;tip.hidden=false;
      var b=box.getBoundingClientRect();
      tip.style.left=Math.max(0,Math.min(ev.clientX-b.left+12,b.width-300))+'px';tip.style.top=(ev.clientY-b.top+14)+'px';
    }
    g.addEventListener('mousemove',show);g.addEventListener('click',show);
    g.addEventListener('mouseleave',function(){tip.hidden=true;});
    if(fail){var m=el('text',{x:x1+4,y:y-1,fill:'#b71c1c','font-weight':'bold'},svg);m.textContent='✗ cannot be linearized: '+label.replace('✗ ','');}
  });
  var labs=el('g',{'class':'cx-labels'},svg);
  el('rect',{x:0,y:0,width:left-4,height:height,fill:'#fff'},labs);
  procs.forEach(function(p,r){var lab=el('text',{x:4,y:top+r*rowH+rowH/2+4},labs);lab.textContent='process '+p;});
  box._labels=labs;
  var wrap=box.querySelector('.cx-wrap');
  var f=svg.querySelector('.failing');if(f){var fx=+f.firstChild.getAttribute('x');wrap.scrollLeft=Math.max(0,fx-wrap.clientWidth/2);}
  labs.setAttribute('transform','translate('+wrap.scrollLeft+',0)');
}
document.querySelectorAll('.cx').forEach(function(box){
  var redraw=function(){draw(box);};
  box.querySelector('.cx-prefix').addEventListener('change',redraw);
  box.querySelector('.cx-realtime').addEventListener('change',redraw);
  var wrap=box.querySelector('.cx-wrap');
  wrap.addEventListener('scroll',function(){if(box._labels){box._labels.setAttribute('transform','translate('+wrap.scrollLeft+',0)');}});
  redraw();
});
})();
"#;
