//! Opens rendered reports in headless Chromium (Debian's `chromium`): the page must show the verdict, the
//! plots and, for an invalid history, the counterexample view with the failing op drawn by its script.
//! Screenshots are kept under `$CARGO_TARGET_TMPDIR/report-browser/` as test artifacts.

mod support;

use results::{render_run, Store};
use serde_json::json;
use std::path::{Path, PathBuf};
use support::chromium::chromium;

fn artifacts(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-browser")
        .join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn render_invalid(root: &Path) -> (PathBuf, u64, String) {
    let store = Store::open(root.join("store")).unwrap();
    let syn = support::generate(4_000, 5, 5, true, false, 5);
    let run = store.create_run("cas-register").unwrap();
    support::write_jsonl(&syn.events, &run.history_path());
    // The verdict and counterexample come from the real checker.
    let history = checker::History::new(syn.events.clone());
    let report = checker::check(&history, &checker::CheckOptions::default()).unwrap();
    assert_eq!(report.verdict, checker::Verdict::Invalid);
    std::fs::write(run.results_path(), serde_json::to_vec(&report).unwrap()).unwrap();
    let test = json!({"name": "cas-register", "db": "raftkv", "workload": "cas-register",
        "nemesis": {"faults": "partition,kill,pause,loss"}, "node_count": 3, "concurrency": 5, "time_limit": 20,
        "seed": 5});
    std::fs::write(run.test_path(), test.to_string()).unwrap();
    std::fs::write(run.node_log_path("n1"), "log\n").unwrap();
    let out = render_run(&run).unwrap();
    store.write_index().unwrap();
    let op = report
        .linearizability
        .as_ref()
        .unwrap()
        .keys
        .iter()
        .find_map(|k| k.counterexample.clone())
        .unwrap()
        .op;
    (out.report, op.invoke_index, format!("{} {}", op.f, op.output))
}

#[test]
fn invalid_report_in_headless_chromium() {
    let dir = artifacts("invalid");
    let (report, failing, op_text) = render_invalid(&dir);
    let html = std::fs::read_to_string(&report).unwrap();
    // Self-contained: nothing to fetch (the only URL is the SVG namespace).
    let urls = html.matches("http://").count() + html.matches("https://").count();
    assert_eq!(
        urls,
        html.matches("http://www.w3.org/").count(),
        "no external URL in the page"
    );
    assert!(!html.contains(" src=\""), "no external resources");

    let url = format!("file://{}", report.display());
    let dom = chromium(
        &dir.join("profile-dom"),
        &["--virtual-time-budget=5000".into(), "--dump-dom".into()],
        &url,
    );
    assert!(dom.contains("Verdict"), "verdict shown");
    assert!(dom.contains("verdict invalid"), "invalid verdict shown");
    for p in ["latency-raw", "latency-quantiles", "rate"] {
        assert!(dom.contains(&format!("id=\"plot-{p}\"")), "plot {p} shown");
    }
    // The script drew the counterexample: bars, the failing one marked with its id.
    assert!(dom.contains("class=\"bar failing\""), "failing op drawn");
    assert!(
        dom.contains(&format!("data-id=\"{failing}\"")),
        "failing op has its id"
    );
    assert!(dom.contains("class=\"bar linearized\""), "prefix drawn");
    assert!(dom.contains(&op_text) || dom.contains("read"), "failing op named");
    std::fs::write(dir.join("dom.html"), &dom).unwrap();

    for (name, size) in [("laptop", "1280,2000"), ("phone", "412,2400")] {
        let shot = dir.join(format!("report-{name}.png"));
        chromium(
            &dir.join(format!("profile-{name}")),
            &[
                format!("--screenshot={}", shot.display()),
                format!("--window-size={size}"),
                "--virtual-time-budget=5000".into(),
            ],
            &url,
        );
        let png = std::fs::read(&shot).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png.len() > 20_000, "screenshot {name} has content");
    }
    // The counterexample view on its own: a copy of the page with the other sections hidden (headless
    // screenshots do not follow #anchors).
    let cx_page = report.with_file_name("report-cx-only.html");
    let hide = "<style>#config,#summary,#plots,#nemesis,#checkers,#files{display:none}</style></head>";
    std::fs::write(&cx_page, html.replacen("</head>", hide, 1)).unwrap();
    let shot = dir.join("report-counterexample.png");
    chromium(
        &dir.join("profile-cx"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,1100".into(),
            "--virtual-time-budget=5000".into(),
        ],
        &format!("file://{}", cx_page.display()),
    );
    assert!(
        std::fs::read(&shot).unwrap().len() > 20_000,
        "counterexample screenshot has content"
    );
    let shot = dir.join("report-counterexample-phone.png");
    chromium(
        &dir.join("profile-cx-phone"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=412,1400".into(),
            "--virtual-time-budget=5000".into(),
        ],
        &format!("file://{}", cx_page.display()),
    );
    assert!(shot.is_file());
    let index = report
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("index.html");
    let ishot = dir.join("index.png");
    chromium(
        &dir.join("profile-index"),
        &[
            format!("--screenshot={}", ishot.display()),
            "--window-size=1280,600".into(),
        ],
        &format!("file://{}", index.display()),
    );
    assert!(ishot.is_file());
    eprintln!("screenshots in {}", dir.display());
}
