//! Renders whole run folders through the public API and checks the page and files.

mod support;

use results::{render_run, RunDir, Store};
use serde_json::json;

fn write_run(store: &Store, name: &str, syn: &support::Synthetic, test: serde_json::Value) -> RunDir {
    let run = store.create_run(name).unwrap();
    support::write_jsonl(&syn.events, &run.history_path());
    std::fs::write(
        run.results_path(),
        serde_json::to_vec_pretty(&syn.report).unwrap(),
    )
    .unwrap();
    std::fs::write(run.test_path(), serde_json::to_vec_pretty(&test).unwrap()).unwrap();
    std::fs::write(run.node_log_path("n1"), "node n1 log\n").unwrap();
    std::fs::write(run.node_log_path("n2"), "node n2 log\n").unwrap();
    run
}

#[test]
fn invalid_run_renders_plots_counterexample_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let syn = support::generate(3_000, 5, 5, true, false, 7);
    let test = json!({"name": "cas-register", "db": "raftkv", "workload": "cas-register",
        "nemesis": {"faults": "partition,kill"}, "nodes": [{"id": "n1"}, {"id": "n2"}, {"id": "n3"}],
        "concurrency": 5, "seed": 7});
    let run = write_run(&store, "cas-register", &syn, test);
    let out = render_run(&run).unwrap();
    let html = std::fs::read_to_string(&out.report).unwrap();
    assert_eq!(out.bytes, html.len());
    for name in ["latency-raw", "latency-quantiles", "rate"] {
        let png = std::fs::read(run.path().join(format!("{name}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png is a PNG");
        let svg = std::fs::read_to_string(run.path().join(format!("{name}.svg"))).unwrap();
        assert!(svg.contains("<svg"));
        assert!(html.contains(&format!("id=\"plot-{name}\"")));
    }
    // Verdict first, counterexample with the failing op, links to history and node logs.
    let verdict_at = html.find("id=\"verdict\"").unwrap();
    assert!(verdict_at < html.find("id=\"config\"").unwrap());
    assert!(html.contains("verdict invalid"));
    assert!(html.contains("class=\"cx\""));
    // Invalid keys first; the valid ones folded below them.
    let folded = html
        .find("<details class=\"valid-keys\"><summary>")
        .expect("valid keys folded");
    let first_invalid = html.find("verdict invalid").unwrap();
    assert!(first_invalid < folded);
    let section = &html[folded..folded + html[folded..].find("</details>").unwrap()];
    assert!(section.contains("verdict valid"), "{section}");
    assert!(
        !section.contains("verdict invalid"),
        "no invalid key among the folded ones"
    );
    assert!(html.contains(&format!("\"fail\":{}", syn.failing.unwrap())));
    assert!(html.contains("href=\"history.jsonl\""));
    assert!(html.contains("href=\"nodes/n1.log\""));
    assert!(html.contains("href=\"nodes/n2.log\""));
    // Nemesis shading in the plots: the legend names fault kinds.
    let svg = std::fs::read_to_string(run.path().join("latency-raw.svg")).unwrap();
    assert!(
        svg.contains(">partition<") || svg.contains("partition\n"),
        "legend names partition"
    );
    // The index lists it.
    let index = std::fs::read_to_string(store.write_index().unwrap()).unwrap();
    assert!(index.contains("cas-register/") && index.contains("report.html"));
}

#[test]
fn hostile_values_are_escaped_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let syn = support::generate(2_000, 4, 4, true, true, 11);
    let evil = "<script>alert(1)</script>";
    let test = json!({"name": evil, "db": "\"><img src=x onerror=alert(1)>", "workload": evil,
        "nemesis": {"faults": evil, "options": {"<b>field</b>": "</script><!--"}},
        "nodes": [{"id": evil, "argv": [evil], "env": [["<b>k</b>", "</script><!--"]]}],
        "system_version": "</script><!--",
        "unclassified": [{"f": evil, "recorded_as": "info", "answer": "unclassified: HTTP 200 \"<b>x</b></script><!--\"",
            "count": 2, "first_index": 5}]});
    let run = write_run(&store, "evil", &syn, test);
    let out = render_run(&run).unwrap();
    let html = std::fs::read_to_string(&out.report).unwrap();
    assert!(!html.contains("<script>alert"), "no raw script from data");
    assert!(!html.contains("<img src=x"), "no raw img from data");
    assert!(!html.contains("<b>"), "no raw tags from data");
    assert!(!html.contains("<!--"), "no comment openers from data");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Only our own script elements: the view's code and its JSON data.
    let scripts = html.matches("<script").count();
    let ours = html
        .matches("<script type=\"application/json\" class=\"cx-data\">")
        .count()
        + 1;
    assert_eq!(scripts, ours);
    for svg in ["latency-raw.svg", "rate.svg"] {
        let s = std::fs::read_to_string(run.path().join(svg)).unwrap();
        assert!(!s.contains("<script>") && !s.contains("<b>"));
    }
    let index = std::fs::read_to_string(store.write_index().unwrap()).unwrap();
    assert!(!index.contains("<script>alert") && !index.contains("<img src=x"));
}

#[test]
fn the_answers_no_client_rule_covered_are_listed_from_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let syn = support::generate(500, 3, 3, false, false, 5);
    let answer = |f: &str, a: &str, n: u64, i: u64| {
        json!({"f": f, "recorded_as": if f == "read" { "fail" } else { "info" }, "answer": a, "count": n,
            "first_index": i})
    };
    let test = json!({"name": "gap", "db": "forgetful", "unclassified": [
        answer("write", "unclassified: HTTP 200 \"Error: database is locked\" (no rule covers it)", 7, 12),
        answer("read", "unclassified: HTTP 418 \"I'm a teapot\" (no rule covers it)", 1, 40)]});
    let run = write_run(&store, "gap", &syn, test);
    let html = std::fs::read_to_string(render_run(&run).unwrap().report).unwrap();
    let at = html.find("<section id=\"unclassified\">").expect("the section");
    assert!(html.find("id=\"summary\"").unwrap() < at && at < html.find("id=\"plots\"").unwrap());
    let section = &html[at..at + html[at..].find("</section>").unwrap()];
    assert!(section.contains("8 answers matched no rule"), "{section}");
    let rows: Vec<&str> = section.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 2, "{section}");
    for (row, cells) in rows.iter().zip([
        [
            "7",
            "write",
            "info",
            "unclassified: HTTP 200 &quot;Error: database is locked&quot;",
            "12",
        ],
        [
            "1",
            "read",
            "fail",
            "unclassified: HTTP 418 &quot;I'm a teapot&quot;",
            "40",
        ],
    ]) {
        let mut from = 0;
        for c in cells {
            let i = row[from..]
                .find(c)
                .unwrap_or_else(|| panic!("{c} in order in {row}"));
            from += i + c.len();
        }
    }
    // A record with none: no section.
    let clean = write_run(&store, "clean", &syn, json!({"name": "clean"}));
    let html = std::fs::read_to_string(render_run(&clean).unwrap().report).unwrap();
    assert!(!html.contains("id=\"unclassified\""));
}

#[test]
fn a_run_without_results_or_config_still_renders() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let run = store.create_run("bare").unwrap();
    let syn = support::generate(300, 2, 3, false, false, 3);
    support::write_jsonl(&syn.events, &run.history_path());
    let out = render_run(&run).unwrap();
    let html = std::fs::read_to_string(out.report).unwrap();
    assert!(html.contains("No check result"));
    assert!(html.contains("No test.json"));
    // A record this build cannot read: the page still renders, names the file and line, and the run's
    // folder name stands in for its name.
    std::fs::write(run.test_path(), "{\n  \"node_count\": \"five\"\n}").unwrap();
    let html = std::fs::read_to_string(render_run(&run).unwrap().report).unwrap();
    let want = format!(
        "test.json could not be read: {}:2: invalid type",
        run.test_path().display()
    );
    assert!(html.contains(&want), "{want}");
    assert!(html.contains("<h1>bare</h1>"));
}

#[test]
fn an_empty_history_renders() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let run = store.create_run("empty").unwrap();
    std::fs::write(run.history_path(), "").unwrap();
    render_run(&run).unwrap();
}

#[test]
fn a_bad_history_line_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let run = store.create_run("bad").unwrap();
    std::fs::write(
        run.history_path(),
        "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"nope\",\"f\":\"read\"}\n",
    )
    .unwrap();
    let e = render_run(&run).unwrap_err().to_string();
    assert!(e.contains("history.jsonl:1:") && !e.contains('\n'), "{e}");
}

#[test]
fn a_history_checked_alone_gets_one_self_contained_page() {
    let dir = tempfile::tempdir().unwrap();
    let syn = support::generate(1_500, 3, 4, true, false, 9);
    let history = checker::History::new(syn.events.clone());
    let report = checker::check(&history, &checker::CheckOptions::default()).unwrap();
    let out = dir.path().join("page.html");
    let r =
        results::render_checked_history(&syn.events, &report, "history.jsonl", Some("history.jsonl"), &out)
            .unwrap();
    assert!(r.plots.is_empty());
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("verdict invalid") && html.contains("class=\"cx\""));
    for p in ["latency-raw", "latency-quantiles", "rate"] {
        assert!(html.contains(&format!("id=\"plot-{p}\"")));
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing written beside the page"
    );
}

#[test]
fn junit_from_run_folders() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bad = support::generate(500, 2, 3, true, false, 1);
    let good = support::generate(500, 2, 3, false, false, 2);
    let a = write_run(&store, "a", &bad, json!({"name": "a", "db": "raftkv"}));
    let b = write_run(&store, "b", &good, json!({"name": "b", "db": "raftkv"}));
    let suite = results::JunitSuite {
        name: "suite".into(),
        cases: vec![results::JunitCase::from_run(&a), results::JunitCase::from_run(&b)],
    };
    let path = dir.path().join("junit.xml");
    suite.write(&path).unwrap();
    let xml = std::fs::read_to_string(path).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""), "{xml}");
    assert!(xml.contains("name=\"a\" classname=\"faultline.raftkv\""));
}

/// Public histories with known answers (Knossos's EDN, Porcupine's Jepsen etcd logs), checked by the real
/// checker and rendered as `faultline check --html` does: the page shows the counterexample.
#[test]
fn corpus_histories_render_with_their_counterexamples() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    // Pages are kept as artifacts to look at.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("corpus-pages");
    std::fs::create_dir_all(&dir).unwrap();
    for file in [
        "knossos/data/cas-register/bad/rethink-fail-smaller.edn",
        "knossos/data/cas-register/bad/cas-failure.edn",
        "porcupine/test_data/jepsen/etcd_000.log",
    ] {
        let path = corpus.join(file);
        assert!(
            path.is_file(),
            "corpus file {} (shared/ sits beside the workspace)",
            path.display()
        );
        let history = checker::history::read_path(&path, checker::history::Format::Auto, false).unwrap();
        let report = checker::check(&history, &checker::CheckOptions::default()).unwrap();
        assert_eq!(report.verdict, checker::Verdict::Invalid, "{file}");
        let out = dir.join(format!("{}.html", file.replace('/', "_")));
        results::render_checked_history(&history.events, &report, file, None, &out).unwrap();
        let html = std::fs::read_to_string(&out).unwrap();
        assert!(
            html.contains("verdict invalid") && html.contains("class=\"cx\""),
            "{file}"
        );
        let op = report
            .linearizability
            .unwrap()
            .keys
            .into_iter()
            .find_map(|k| k.counterexample)
            .unwrap()
            .op;
        assert!(html.contains(&format!("\"fail\":{}", op.invoke_index)), "{file}");
    }
}

/// Big histories are downsampled: the page and its inline plots stay bounded.
#[test]
fn a_big_history_gives_a_bounded_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let syn = support::generate(60_000, 10, 10, true, false, 4);
    let run = write_run(&store, "big", &syn, json!({"name": "big"}));
    let out = render_run(&run).unwrap();
    assert!(out.bytes < 1_500_000, "report.html is {} bytes", out.bytes);
    let svg = std::fs::read_to_string(run.path().join("latency-raw.svg")).unwrap();
    let marks =
        svg.matches("<circle").count() + svg.matches("<polygon").count() + svg.matches("<rect").count();
    assert!(
        marks <= results::plots::MAX_SVG_POINTS + 200,
        "{marks} marks in latency-raw.svg"
    );
}
