//! `store/index.html`: every run of the store, newest first.

use crate::html::{fmt_ns, verdict_badge, BASE_CSS};
use crate::run_dir::{RunDir, HISTORY_FILE, REPORT_FILE, RESULTS_FILE, TEST_FILE};
use crate::summary::summarize;
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Renders the index page of a store's runs (given newest first). Links are relative to the store root.
pub(crate) fn render_index(runs: &[RunDir], suites: &[crate::suite::SuiteLink]) -> String {
    let rows: Vec<Markup> = runs.iter().map(row).collect();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "faultline runs" }
                style { (PreEscaped(BASE_CSS)) }
            }
            body { main {
                h1 { "faultline runs" }
                p class="muted" { (runs.len()) " runs, newest first. " a href="latest/report.html" { "Latest report" } }
                (crate::suite::suites_section(suites))
                div class="scroll" {
                    table {
                        thead { tr {
                            th { "verdict" } th { "test" } th { "time" } th { "db" } th { "workload" }
                            th class="hide-narrow" { "nemesis" } th class="num" { "ops" } th class="num" { "duration" } th { "files" }
                        } }
                        tbody { @for r in &rows { (r) } }
                    }
                }
            } }
        }
    };
    page.into_string()
}

fn row(run: &RunDir) -> Markup {
    let s = summarize(run);
    let base = format!("{}/{}/", run.test_name(), run.timestamp());
    html! {
        tr {
            td { (verdict_badge(s.verdict)) }
            td {
                @if s.has_report { a href={(base) (REPORT_FILE)} { (s.name) } } @else { (s.name) }
                @if let Some(e) = &s.record_error { " " span class="muted" title=(e) { "(test.json unreadable)" } }
            }
            td { (s.started_at) }
            td { (s.db) }
            td { (s.workload) }
            td class="hide-narrow" { (s.nemesis) }
            td class="num" { @if let Some(n) = s.ops { (n) } }
            td class="num" { @if let Some(d) = s.duration_ns { (fmt_ns(d)) } }
            td {
                @if s.has_report { a href={(base) (REPORT_FILE)} { "report" } " " }
                a href={(base) (HISTORY_FILE)} { "history" } " "
                a href={(base) (RESULTS_FILE)} { "results" } " "
                a href={(base) (TEST_FILE)} { "config" } " "
                a href=(base) { "folder" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::record::{Counts, RunRecord};
    use crate::store::Store;

    #[test]
    fn index_lists_runs_and_escapes_their_fields() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_run("alpha").unwrap();
        let mut record = RunRecord {
            name: "<script>alert(1)</script>".into(),
            db: "\"><img src=x onerror=alert(1)>".into(),
            workload: "cas-register".into(),
            counts: Some(Counts {
                ok: 1,
                fail: 0,
                info: 0,
            }),
            ..Default::default()
        };
        record.nemesis.faults = "partition,kill".into();
        a.write_record(&record).unwrap();
        std::fs::write(
            a.results_path(),
            r#"{"verdict":"invalid","stats":{"ok":10,"fail":2,"info":1,"by_f":{},"latency_ns":{"p50":1,"p95":2,"p99":3,"max":4},"ok_per_sec":1.0,"duration_ns":5000000000}}"#,
        )
        .unwrap();
        // Same-second runs are ordered by folder creation time, which has the kernel's tick resolution.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let _b = store.create_run("beta").unwrap(); // no files at all
        std::thread::sleep(std::time::Duration::from_millis(20));
        let c = store.create_run("gamma").unwrap();
        std::fs::write(c.test_path(), "{\"name\": [").unwrap();
        let path = store.write_index().unwrap();
        let html = std::fs::read_to_string(path).unwrap();
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<img src=x"));
        assert!(html.contains("verdict invalid"));
        assert!(html.contains("partition, kill"));
        assert!(html.contains(">13<"));
        assert!(html.contains("5.00 s"));
        assert!(html.contains("beta"));
        // A record that cannot be read still lists the run, by its folder, and says so.
        assert!(html.contains("gamma") && html.contains("(test.json unreadable)"));
        // Newest first.
        assert!(html.find("beta").unwrap() < html.find("alpha").unwrap());
    }
}
