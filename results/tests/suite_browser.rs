//! A suite's `summary.html` in headless Chromium (Debian's `chromium`): the matrix, the detection rates,
//! false alarms and a trend of two suite runs are shown; values from the record (row names, verdict lines)
//! are escaped; the page fetches nothing. Screenshots are kept under
//! `$CARGO_TARGET_TMPDIR/suite-browser/` as test artifacts.

mod support;

use results::suite::{
    suite_dir, write_summary, CellOutcome, Counts, Expectation, Share, SuiteCell, SuiteRecord, SuiteRow,
    SuiteStatus,
};
use std::path::Path;
use support::chromium::chromium;

const EVIL: &str = "<script>alert(1)</script>";

fn row(id: &str, expect: Expectation) -> SuiteRow {
    SuiteRow {
        id: id.into(),
        db: "raftkv".into(),
        spec: "dbs/raftkv.toml".into(),
        workload: "cas-register".into(),
        nemesis: "partition,kill,pause".into(),
        node_args: vec![format!("--bug={EVIL}")],
        nodes: 5,
        concurrency: 10,
        time_limit_s: 60.0,
        expect,
    }
}

fn cell(row: &str, seed: u64, outcome: CellOutcome, as_expected: bool, ops: f64) -> SuiteCell {
    SuiteCell {
        row: row.into(),
        seed,
        outcome,
        as_expected,
        caught_by: if outcome == CellOutcome::Invalid {
            vec!["linearizability".into()]
        } else {
            vec![]
        },
        first_anomaly_s: (outcome == CellOutcome::Invalid).then_some(20.0 + seed as f64),
        counts: Some(Counts {
            ok: 1000,
            fail: 10,
            info: 1,
        }),
        ops_per_s: Some(ops),
        wall_s: 62.0,
        run: Some(format!("{row}.s{seed}/20261204T000000Z")),
        verdict_line: format!("INVALID: <img src=x onerror=alert(2)> seed {seed}"),
        finished_at: "20261204T000100Z".into(),
    }
}

/// A suite run of 3 rows x 3 seeds: a bug found 3 of 3, a bug found 1 of 3 (not met), a correct system with
/// one false alarm.
fn record(started: &str, ops: f64) -> SuiteRecord {
    let four_of_five = Expectation::Invalid {
        at_least: Share { found: 4, of: 5 },
    };
    let rows = vec![
        row("early-ack", four_of_five),
        row(&format!("stale{EVIL}"), four_of_five),
        row("correct", Expectation::Valid),
    ];
    let seeds = vec![1, 2, 3];
    let planned = rows
        .iter()
        .flat_map(|r| seeds.iter().map(move |s| (r.id.clone(), *s)))
        .collect();
    use CellOutcome::*;
    let stale = rows[1].id.clone();
    let cells = vec![
        cell("early-ack", 1, Invalid, true, ops),
        cell("early-ack", 2, Invalid, true, ops),
        cell("early-ack", 3, Invalid, true, ops),
        cell(&stale, 1, Valid, false, ops),
        cell(&stale, 2, Invalid, true, ops),
        cell(&stale, 3, Valid, false, ops),
        cell("correct", 1, Valid, true, ops),
        cell("correct", 2, Invalid, false, ops),
        cell("correct", 3, Unknown, false, ops),
    ];
    SuiteRecord {
        format: 1,
        name: "detection".into(),
        description: format!("The detection suite {EVIL}"),
        file: "suites/detection.toml".into(),
        started_at: started.into(),
        ended_at: Some(started.into()),
        status: SuiteStatus::Complete,
        shard: None,
        seeds,
        rows,
        planned,
        cells,
        running: None,
        merged_from: vec![],
    }
}

fn save(store: &Path, ts: &str, ops: f64) -> std::path::PathBuf {
    let dir = suite_dir(store, "detection", ts);
    std::fs::create_dir_all(&dir).unwrap();
    let r = record(ts, ops);
    r.save(&dir).unwrap();
    write_summary(&r, &dir, Some(store), "../../../").unwrap()
}

#[test]
fn summary_in_headless_chromium_shows_matrix_rates_alarms_and_a_trend_of_two() {
    let art = Path::new(env!("CARGO_TARGET_TMPDIR")).join("suite-browser");
    let _ = std::fs::remove_dir_all(&art);
    std::fs::create_dir_all(&art).unwrap();
    let store = art.join("store");
    save(&store, "20261203T010000Z", 900.0);
    let page = save(&store, "20261204T010000Z", 1200.0);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains(EVIL), "record values are escaped");
    assert!(!html.contains("<img src=x"), "verdict lines are escaped");
    assert!(!html.contains("<script"), "no script at all");
    let urls = html.matches("http://").count() + html.matches("https://").count();
    assert_eq!(
        urls,
        html.matches("http://www.w3.org/").count(),
        "nothing fetched"
    );

    let url = format!("file://{}", page.display());
    let dom = chromium(
        &art.join("profile-dom"),
        &["--virtual-time-budget=3000".into(), "--dump-dom".into()],
        &url,
    );
    std::fs::write(art.join("dom.html"), &dom).unwrap();
    let matrix = &dom[dom.find("id=\"matrix\"").expect("matrix shown")..];
    let matrix = &matrix[..matrix.find("</table>").unwrap()];
    assert_eq!(
        matrix.matches("<tr data-row=").count(),
        3,
        "one row per suite row"
    );
    assert_eq!(matrix.matches("class=\"cell o-expected\"").count(), 5);
    assert_eq!(matrix.matches("class=\"cell o-missed\"").count(), 2);
    assert_eq!(matrix.matches("class=\"cell o-false-alarm\"").count(), 1);
    assert_eq!(matrix.matches("class=\"cell o-unknown\"").count(), 1);
    assert!(
        dom.contains("stale&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped name shown as text"
    );
    assert!(
        dom.contains("2 row(s) NOT as expected"),
        "the stale row and the false alarm"
    );
    assert!(
        dom.contains("found 3 of 3 (needed 3), median 22.0 s to first anomaly"),
        "detection rate"
    );
    let alarms = &dom[dom.find("id=\"false-alarms\"").expect("false alarms")..];
    assert!(alarms.contains("correct seed 2"), "the false alarm is listed");
    assert!(
        dom.contains("The last 2 run(s) of suite detection"),
        "a trend of two"
    );
    assert!(
        dom.contains("id=\"trend-plot\"") && dom.contains("<svg"),
        "trend plot drawn"
    );
    let strip = &dom[dom.find("id=\"trend\"").unwrap()..];
    assert_eq!(
        strip[..strip.find("</table>").unwrap()]
            .matches("class=\"sq ")
            .count(),
        18,
        "9 cells x 2 runs in the strips"
    );
    for (name, size) in [("laptop", "1280,1800"), ("phone", "412,2400")] {
        let shot = art.join(format!("summary-{name}.png"));
        chromium(
            &art.join(format!("profile-{name}")),
            &[
                format!("--screenshot={}", shot.display()),
                format!("--window-size={size}"),
                "--virtual-time-budget=3000".into(),
            ],
            &url,
        );
        let png = std::fs::read(&shot).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png.len() > 20_000, "screenshot {name} has content");
    }
    eprintln!("screenshots in {}", art.display());
}
