//! `faultline report` and `faultline serve`, driving the real binary.

#[path = "../results/tests/support/mod.rs"]
mod support;

use assert_cmd::Command;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

fn run_folder(store: &std::path::Path, invalid: bool, with_results: bool) -> results::RunDir {
    let s = results::Store::open(store).unwrap();
    let run = s.create_run("cas-register").unwrap();
    let keys = if invalid { 4 } else { 3 }; // the generator makes key 3 unknown
    let syn = support::generate(2_000, keys, 4, invalid, true, 21);
    support::write_jsonl(&syn.events, &run.history_path());
    if with_results {
        std::fs::write(run.results_path(), serde_json::to_vec(&syn.report).unwrap()).unwrap();
    }
    std::fs::write(
        run.test_path(),
        r#"{"name":"<script>alert(1)</script>","db":"raftkv"}"#,
    )
    .unwrap();
    std::fs::write(run.node_log_path("n1"), "hello from n1\n").unwrap();
    run
}

#[test]
fn report_rerenders_a_run_and_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let run = run_folder(&store, true, true);
    let out = Command::cargo_bin("faultline")
        .unwrap()
        .arg("report")
        .arg(run.path())
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout.contains("report.html") && stdout.contains("invalid"),
        "{stdout}"
    );
    let html = std::fs::read_to_string(run.report_path()).unwrap();
    assert!(html.contains("verdict invalid") && html.contains("class=\"cx\""));
    assert!(!html.contains("<script>alert"));
    for p in ["latency-raw.png", "latency-quantiles.svg", "rate.png"] {
        assert!(run.path().join(p).is_file(), "{p}");
    }
    let index = std::fs::read_to_string(store.join("index.html")).unwrap();
    assert!(index.contains("verdict invalid"));
    // Through the latest symlink too, and a valid run exits 0.
    let run2 = run_folder(&store, false, true);
    Command::cargo_bin("faultline")
        .unwrap()
        .arg("report")
        .arg(store.join("latest"))
        .assert()
        .code(0);
    assert!(run2.report_path().is_file());
}

/// A run folder with only a history (no hostile strings: the real checker must know every op).
fn unchecked_run(store: &std::path::Path, invalid: bool) -> (results::RunDir, Option<u64>) {
    let s = results::Store::open(store).unwrap();
    let run = s.create_run("recheck").unwrap();
    let syn = support::generate(3_000, 3, 5, invalid, false, 33);
    support::write_jsonl(&syn.events, &run.history_path());
    std::fs::write(run.test_path(), r#"{"name":"recheck","workload":"cas-register"}"#).unwrap();
    (run, syn.failing)
}

#[test]
fn report_without_results_checks_the_history_with_the_real_checker() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = unchecked_run(&dir.path().join("store"), false);
    Command::cargo_bin("faultline")
        .unwrap()
        .arg("report")
        .arg(run.path())
        .assert()
        .code(0);
    let report: checker::CheckReport =
        serde_json::from_slice(&std::fs::read(run.results_path()).unwrap()).unwrap();
    assert_eq!(report.verdict, checker::Verdict::Valid);
    assert!(std::fs::read_to_string(run.report_path())
        .unwrap()
        .contains("verdict valid"));

    let (run, _) = unchecked_run(&dir.path().join("store2"), true);
    Command::cargo_bin("faultline")
        .unwrap()
        .arg("report")
        .arg(run.path())
        .assert()
        .code(1);
    let report: checker::CheckReport =
        serde_json::from_slice(&std::fs::read(run.results_path()).unwrap()).unwrap();
    assert_eq!(report.verdict, checker::Verdict::Invalid);
    let html = std::fs::read_to_string(run.report_path()).unwrap();
    assert!(
        html.contains("class=\"cx\""),
        "counterexample view from the real checker"
    );
    let cx = report
        .linearizability
        .unwrap()
        .keys
        .into_iter()
        .find_map(|k| k.counterexample)
        .unwrap();
    assert!(html.contains(&format!("\"fail\":{}", cx.op.invoke_index)));
    // The synthetic bad read (42, a value nobody wrote) is on key k0.
    assert_eq!(cx.op.key.as_deref(), Some("k0"));

    // --recheck with an explicit model replaces results.json; an unknown model is bad input.
    Command::cargo_bin("faultline")
        .unwrap()
        .args(["report", "--recheck", "--model", "cas"])
        .arg(run.path())
        .assert()
        .code(1);
    // A model that does not know the history's ops: one line naming the file, line and field.
    let out = Command::cargo_bin("faultline")
        .unwrap()
        .args(["report", "--recheck", "--model", "register"])
        .arg(run.path())
        .assert()
        .code(254);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("history.jsonl:") && err.trim().lines().count() == 1,
        "{err}"
    );
    Command::cargo_bin("faultline")
        .unwrap()
        .args(["report", "--recheck", "--model", "nope"])
        .arg(run.path())
        .assert()
        .code(254);
}

#[test]
fn recheck_judges_availability_as_the_run_did_with_its_cluster_size_and_recovery_limit() {
    // Linearizable, but after n1 is killed at 1 s nothing succeeds for 20 s while four of five nodes are
    // up and connected: a stall for a 5-node run with a 10 s recovery limit (test.json says so).
    let dir = tempfile::tempdir().unwrap();
    let s = results::Store::open(dir.path().join("store")).unwrap();
    let run = s.create_run("stall").unwrap();
    let sec = 1_000_000_000u64;
    let lines = [
        r#"{"process":0,"type":"invoke","f":"write","key":"k","value":1,"time":0}"#.to_string(),
        format!(
            r#"{{"process":0,"type":"ok","f":"write","key":"k","value":1,"time":{}}}"#,
            sec / 10
        ),
        format!(r#"{{"process":"nemesis","type":"info","f":"kill","value":{{"node":"n1"}},"time":{sec}}}"#),
        format!(
            r#"{{"process":0,"type":"invoke","f":"read","key":"k","value":null,"time":{}}}"#,
            2 * sec
        ),
        format!(
            r#"{{"process":0,"type":"ok","f":"read","key":"k","value":1,"time":{}}}"#,
            22 * sec
        ),
        format!(
            r#"{{"process":"nemesis","type":"info","f":"restart","value":{{"node":"n1"}},"time":{}}}"#,
            23 * sec
        ),
        format!(
            r#"{{"process":0,"type":"invoke","f":"read","key":"k","value":null,"time":{}}}"#,
            23 * sec + 1
        ),
        format!(
            r#"{{"process":0,"type":"ok","f":"read","key":"k","value":1,"time":{}}}"#,
            23 * sec + 2
        ),
    ];
    std::fs::write(run.history_path(), lines.join("\n") + "\n").unwrap();
    std::fs::write(
        run.test_path(),
        r#"{"name":"stall","workload":"cas-register","node_count":5,"recovery_limit":10.0}"#,
    )
    .unwrap();
    Command::cargo_bin("faultline")
        .unwrap()
        .args(["report", "--recheck"])
        .arg(run.path())
        .assert()
        .code(1);
    let report: checker::CheckReport =
        serde_json::from_slice(&std::fs::read(run.results_path()).unwrap()).unwrap();
    assert_eq!(report.verdict, checker::Verdict::Invalid);
    assert_eq!(report.linearizability.unwrap().verdict, checker::Verdict::Valid);
    let a = report.availability.unwrap();
    assert_eq!(a.stalls.len(), 1, "{a:?}");
    assert!(std::fs::read_to_string(run.report_path())
        .unwrap()
        .contains("Stalls"));
}

#[test]
fn report_bad_input_is_one_line_and_254() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("faultline")
        .unwrap()
        .arg("report")
        .arg(dir.path().join("nope"))
        .assert()
        .code(254);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("nope"));

    let run = run_folder(&dir.path().join("store"), false, true);
    std::fs::write(run.history_path(), "{\"index\":0}\n").unwrap();
    let out = Command::cargo_bin("faultline")
        .unwrap()
        .arg("report")
        .arg(run.path())
        .assert()
        .code(254);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("history.jsonl:1:") && err.trim().lines().count() == 1,
        "{err}"
    );

    std::fs::write(run.results_path(), "{\"verdict\": 3}").unwrap();
    let out = Command::cargo_bin("faultline")
        .unwrap()
        .arg("report")
        .arg(run.path())
        .assert()
        .code(254);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("results.json"), "{err}");
}

/// Kills the server (by its PID) when the test ends, whatever happened.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `faultline serve` on a free loopback port; returns the server and its `host:port`.
fn start_server(store: &std::path::Path) -> (Server, String) {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("faultline"))
        .args(["serve", "--addr", "127.0.0.1:0", "--store"])
        .arg(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{line}");
    (server, addr)
}

/// Sends `request` (a request line and headers, without the blank line that ends them) on a fresh
/// connection, asking the server to close it; returns the status and the whole answer.
fn http(addr: &str, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let request = format!("{}\r\nConnection: close\r\n\r\n", request.trim_end());
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

/// The value of header `name` in a raw answer (names compared without case).
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next().unwrap_or("");
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn serve_is_read_only_and_stays_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let run = run_folder(&store, true, true);
    results::render_run(&run).unwrap();
    std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    let (_server, addr) = start_server(&store);

    let (code, body) = http(&addr, "GET / HTTP/1.1\r\nHost: x");
    assert_eq!(code, 200);
    assert!(body.contains("faultline runs") && body.contains("verdict invalid"));
    let (code, body) = http(&addr, "GET /latest/report.html HTTP/1.1\r\nHost: x");
    assert_eq!(code, 200);
    assert!(body.contains("text/html") && body.contains("class=\"cx\""));
    let (code, body) = http(&addr, "GET /latest/nodes/n1.log HTTP/1.1");
    assert_eq!(code, 200);
    assert!(body.contains("hello from n1"));
    let (code, body) = http(&addr, "GET /latest/latency-raw.png HTTP/1.1");
    assert!(code == 200 && body.contains("image/png"));
    assert_eq!(http(&addr, "GET /../secret.txt HTTP/1.1").0, 404);
    assert_eq!(http(&addr, "GET /%2e%2e/secret.txt HTTP/1.1").0, 404);
    assert_eq!(
        http(&addr, "POST /index.html HTTP/1.1\r\nContent-Length: 0").0,
        405
    );
    assert_eq!(http(&addr, "DELETE /index.html HTTP/1.1").0, 405);
    assert_eq!(http(&addr, "PUT /new.html HTTP/1.1\r\nContent-Length: 0").0, 405);
    assert!(!store.join("new.html").exists());
    let (code, head) = http(&addr, "HEAD /index.html HTTP/1.1");
    assert!(code == 200 && !head.contains("<html"), "{head}");
    assert!(store.join("index.html").is_file());
}

/// Every way out of the store is refused over real HTTP: `..` plain and percent-encoded, absolute paths
/// (plain, `//`, encoded `/`, absolute-form targets), and symlinks in the store that lead outside it
/// (to a file and to a folder); symlinks that stay inside (`latest`) still work.
#[test]
fn serve_refuses_every_path_out_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let dir_path = std::fs::canonicalize(dir.path()).unwrap();
    let store = dir_path.join("store");
    let run = run_folder(&store, false, true);
    results::render_run(&run).unwrap();
    let secret = dir_path.join("secret.txt");
    std::fs::write(&secret, "secret-marker-5e1").unwrap();
    std::os::unix::fs::symlink(&secret, store.join("out-file")).unwrap();
    std::os::unix::fs::symlink(&dir_path, store.join("out-dir")).unwrap();
    std::os::unix::fs::symlink("../../secret.txt", run.path().join("rel-out")).unwrap();
    let (_server, addr) = start_server(&store);

    let abs = secret.display().to_string();
    let abs_encoded = abs.replace('/', "%2F");
    let targets = [
        "/../secret.txt".to_string(),
        "/%2e%2e/secret.txt".into(),
        "/%2E%2E/secret.txt".into(),
        "/.%2e/secret.txt".into(),
        "/latest/%2e%2e/%2e%2e/secret.txt".into(),
        "/latest/../../secret.txt".into(),
        "/%2e%2e%2fsecret.txt".into(),
        format!("/{abs_encoded}"),
        format!("/%2F{}", &abs[1..]),
        format!("/{abs}"),
        format!("/{}", abs.replace('/', "%5C")),
        format!("http://{addr}/../secret.txt"),
        "/out-file".into(),
        "/out-dir/secret.txt".into(),
        "/out-dir/".into(),
        "/out-dir".into(),
        "/latest/rel-out".into(),
    ];
    for target in &targets {
        let (code, answer) = http(&addr, &format!("GET {target} HTTP/1.1\r\nHost: x"));
        assert!(
            (400..500).contains(&code) && !answer.contains("secret-marker"),
            "{target}: {answer}"
        );
    }
    // A symlink that stays inside the store is followed.
    let (code, answer) = http(&addr, "GET /latest/test.json HTTP/1.1");
    assert!(code == 200 && answer.contains("raftkv"), "{answer}");
}

/// Content types a browser shows correctly (the store's text files as text), `nosniff` everywhere, the
/// redirect of a folder to its `/` form, and an escaped listing of a folder without `index.html`.
#[test]
fn serve_types_files_and_lists_folders() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let run = run_folder(&store, false, true);
    results::render_run(&run).unwrap();
    std::fs::write(run.nodes_dir().join("<i>x.log"), "odd name").unwrap();
    let (_server, addr) = start_server(&store);

    let types = [
        ("/", "text/html"),
        ("/latest/report.html", "text/html"),
        ("/latest/history.jsonl", "text/plain"),
        ("/latest/nodes/n1.log", "text/plain"),
        ("/latest/test.json", "application/json"),
        ("/latest/latency-raw.png", "image/png"),
        ("/latest/latency-quantiles.svg", "image/svg+xml"),
    ];
    for (path, want) in types {
        let (code, answer) = http(&addr, &format!("GET {path} HTTP/1.1"));
        assert_eq!(code, 200, "{path}: {answer}");
        let got = header(&answer, "content-type").unwrap_or("");
        assert!(got.starts_with(want), "{path}: {got}");
        assert_eq!(header(&answer, "x-content-type-options"), Some("nosniff"));
    }
    let (code, answer) = http(&addr, "GET /latest/nodes HTTP/1.1");
    assert!((300..400).contains(&code), "{answer}");
    assert_eq!(header(&answer, "location"), Some("/latest/nodes/"));
    let (code, listing) = http(&addr, "GET /latest/nodes/ HTTP/1.1");
    assert_eq!(code, 200, "{listing}");
    assert!(header(&listing, "content-type").unwrap().starts_with("text/html"));
    assert!(listing.contains("href=\"n1.log\""), "{listing}");
    assert!(listing.contains("&lt;i&gt;x.log") && listing.contains("href=\"%3Ci%3Ex.log\""));
    assert!(!listing.contains("<i>x"), "{listing}");
    let (code, answer) = http(&addr, "GET /latest/nodes/%3Ci%3Ex.log HTTP/1.1");
    assert!(code == 200 && answer.ends_with("odd name"), "{answer}");
}

#[test]
fn serve_refuses_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("faultline")
        .unwrap()
        .args(["serve", "--addr", "127.0.0.1:0", "--store"])
        .arg(dir.path().join("nope"))
        .assert()
        .code(254);
}
