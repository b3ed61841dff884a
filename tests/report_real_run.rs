//! The report of a real run: `faultline run` against a real 3-node raftkv cluster (network namespaces,
//! partitions and kills, two deliberate bugs), then the run's report.html opened in headless Chromium. The screenshot is kept under
//! `$CARGO_TARGET_TMPDIR/report-real-run/`.

#[path = "run_support.rs"]
mod run_support;
#[path = "../results/tests/support/mod.rs"]
mod support;

use assert_cmd::Command;
use std::path::Path;

#[test]
fn a_real_runs_report_shows_verdict_plots_faults_and_logs() {
    run_support::ensure_raftkv();
    let art = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-real-run");
    let _ = std::fs::remove_dir_all(&art);
    std::fs::create_dir_all(&art).unwrap();
    let store = art.join("store");
    let name = format!("report-real-{}", std::process::id());
    let code = real_run(&store, &name);

    let run = results::Store::open(&store).unwrap().latest().unwrap();
    assert_eq!(run.test_name(), name);
    let report = run.report_path();
    let html = std::fs::read_to_string(&report).unwrap();
    let verdict = ["valid", "invalid", "unknown"][code as usize];
    assert!(
        html.contains(&format!("verdict {verdict}")),
        "page shows the run's verdict ({verdict})"
    );
    assert!(!run.node_logs().is_empty(), "the harness collected node logs");
    for log in run.node_logs() {
        assert!(html.contains(&format!("href=\"{log}\"")), "{log} linked");
    }
    let events = results::data::read_history(&run.history_path()).unwrap();
    assert!(
        events.iter().any(|e| e.process == checker::Process::Nemesis),
        "the nemesis recorded faults"
    );

    browse(&art, &report, code);

    // Re-rendering the same run gives the same verdict.
    Command::cargo_bin("faultline")
        .unwrap()
        .arg("report")
        .arg(run.path())
        .assert()
        .code(code);
}

/// Runs `faultline run` on a real netns cluster into `store`; returns its exit code, a verdict (0..=2).
fn real_run(store: &Path, name: &str) -> i32 {
    let out = Command::cargo_bin("faultline")
        .unwrap()
        // Two of raftkv's deliberate bugs under partitions and kills: the run is usually invalid, which
        // exercises the counterexample view on a real history (a valid run still checks everything else).
        .args([
            "run",
            "--backend",
            "netns",
            "--time-limit",
            "8",
            "--nemesis",
            "partition,kill",
        ])
        .args([
            "--nemesis-interval",
            "1",
            "--node-arg=--bug=stale-leader-read",
            "--node-arg=--bug=early-ack",
        ])
        .args(["--concurrency", "5", "--name", name, "--store"])
        .arg(store)
        .timeout(std::time::Duration::from_secs(240))
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        (0..=2).contains(&code),
        "the run produced a verdict: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    code
}

/// Opens the report in headless Chromium: the rendered page shows the verdict, the plots, the nemesis
/// timeline and (invalid) the counterexample; a screenshot is kept in `art`.
fn browse(art: &Path, report: &Path, code: i32) {
    let verdict = ["valid", "invalid", "unknown"][code as usize];
    let url = format!("file://{}", report.display());
    let dom = support::chromium::chromium(
        &art.join("profile-dom"),
        &["--virtual-time-budget=5000".into(), "--dump-dom".into()],
        &url,
    );
    assert!(dom.contains("Verdict") && dom.contains(&format!("verdict {verdict}")));
    for p in ["latency-raw", "latency-quantiles", "rate"] {
        assert!(dom.contains(&format!("id=\"plot-{p}\"")), "plot {p} shown");
    }
    assert!(
        dom.contains("class=\"tl-label\">kill<") || dom.contains("class=\"tl-label\">partition<"),
        "the nemesis timeline has a row of faults"
    );
    if code == 1 {
        assert!(
            dom.contains("class=\"bar failing\""),
            "an invalid run draws its failing op"
        );
        assert!(
            dom.contains("class=\"bar linearized\""),
            "and its longest linearizable prefix"
        );
    }
    eprintln!("real run verdict: {verdict}; screenshot in {}", art.display());
    let shot = art.join("report.png");
    support::chromium::chromium(
        &art.join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
            "--virtual-time-budget=5000".into(),
        ],
        &url,
    );
    assert!(
        std::fs::read(&shot).unwrap().len() > 20_000,
        "the screenshot has content"
    );
}
