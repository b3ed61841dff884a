//! Reading and writing faultline's JSON Lines, and the errors of bad lines (file, line, field).

use std::path::Path;

use checker::history::{read_bytes, read_path, write_jsonl, Format};
use checker::{EventType, History, Process};

fn parse(text: &str) -> Result<History, String> {
    read_bytes(
        text.as_bytes(),
        Path::new("run/history.jsonl"),
        Format::Auto,
        false,
    )
    .map_err(|e| e.to_string())
}

fn err(text: &str) -> String {
    parse(text).expect_err("bad input")
}

const DESIGN: &str = concat!(
    r#"{"index":0,"time":1000,"process":0,"type":"invoke","f":"cas","key":"k3","value":[1,2]}"#,
    "\n",
    r#"{"index":1,"time":9200,"process":0,"type":"fail","f":"cas","key":"k3","value":[1,2],"error":"cas-mismatch"}"#,
    "\n",
    r#"{"index":2,"time":9900,"process":"nemesis","type":"info","f":"start-partition","value":{"groups":[["n1","n2","n3"],["n3","n4","n5"]],"kind":"majority-ring"}}"#,
    "\n",
);

#[test]
fn reads_design_example_and_writes_it_back_identically() {
    // (Object keys are written sorted, so the example's nemesis value lists its keys in that order.)
    let h = parse(DESIGN).unwrap();
    assert_eq!(h.events.len(), 3);
    assert_eq!(h.events[1].kind, EventType::Fail);
    assert_eq!(h.events[1].error.as_deref(), Some("cas-mismatch"));
    assert_eq!(h.events[2].process, Process::Nemesis);
    assert_eq!(h.events[0].key.as_deref(), Some("k3"));
    let src = h.source.as_ref().unwrap();
    assert_eq!(src.format, Format::Jsonl);
    assert_eq!(src.lines, vec![1, 2, 3]);
    assert!(h.warnings().is_empty());
    let mut out = Vec::new();
    write_jsonl(&h, &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), DESIGN);
}

#[test]
fn round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let h = parse(DESIGN).unwrap();
    write_jsonl(&h, std::fs::File::create(&path).unwrap()).unwrap();
    let back = read_path(&path, Format::Auto, false).unwrap();
    assert_eq!(back.events, h.events);
    assert_eq!(back.source.unwrap().path, path);
}

#[test]
fn assigns_positions_and_times_when_absent() {
    let h = parse(concat!(
        r#"{"process":0,"type":"invoke","f":"read"}"#,
        "\n",
        r#"{"process":0,"type":"ok","f":"read","value":null}"#,
        "\n"
    ))
    .unwrap();
    assert_eq!((h.events[0].index, h.events[0].time), (0, 0));
    assert_eq!((h.events[1].index, h.events[1].time), (1, 1));
}

#[test]
fn trailing_partial_line_is_skipped_with_a_warning() {
    let text = format!("{DESIGN}{}", r#"{"index":3,"time":99"#);
    let h = parse(&text).unwrap();
    assert_eq!(h.events.len(), 3);
    assert_eq!(
        h.warnings(),
        ["run/history.jsonl:4: skipped a partial last line (the run was probably stopped while writing it)"]
    );
}

#[test]
fn a_bad_line_in_the_middle_is_an_error() {
    let text = format!(
        "{}{{\"index\":3,\"time\":99\n{}",
        &DESIGN[..DESIGN.len()],
        r#"{"process":0}"#
    );
    let e = err(&text);
    assert!(
        e.starts_with("run/history.jsonl:4: json: not valid JSON at column "),
        "{e}"
    );
}

#[test]
fn a_bad_last_line_with_newline_is_an_error() {
    let e = err(concat!(
        r#"{"process":0,"type":"invoke","f":"read"}"#,
        "\n",
        "{\"process\":\n"
    ));
    assert!(e.starts_with("run/history.jsonl:2: json: not valid JSON"), "{e}");
}

#[test]
fn field_errors_name_line_and_field() {
    let cases = [
        (
            r#"{"type":"invoke","f":"read"}"#,
            "run/history.jsonl:1: process: missing",
        ),
        (
            r#"{"process":-1,"type":"invoke","f":"read"}"#,
            "run/history.jsonl:1: process: must be a non-negative integer or \"nemesis\", not -1",
        ),
        (
            r#"{"process":"n1","type":"invoke","f":"read"}"#,
            "run/history.jsonl:1: process: must be a non-negative integer or \"nemesis\", not \"n1\"",
        ),
        (
            r#"{"process":0,"f":"read"}"#,
            "run/history.jsonl:1: type: missing",
        ),
        (
            r#"{"process":0,"type":"done","f":"read"}"#,
            "run/history.jsonl:1: type: must be \"invoke\", \"ok\", \"fail\" or \"info\", not \"done\"",
        ),
        (
            r#"{"process":0,"type":"invoke"}"#,
            "run/history.jsonl:1: f: missing",
        ),
        (
            r#"{"process":0,"type":"invoke","f":3}"#,
            "run/history.jsonl:1: f: must be a non-empty string, not 3",
        ),
        (
            r#"{"process":0,"type":"invoke","f":"read","time":-5}"#,
            "run/history.jsonl:1: time: must be a non-negative integer, not -5",
        ),
        (
            r#"{"process":0,"type":"invoke","f":"read","time":1.5}"#,
            "run/history.jsonl:1: time: must be a non-negative integer, not 1.5",
        ),
        (
            r#"{"process":0,"type":"invoke","f":"read","index":"a"}"#,
            "run/history.jsonl:1: index: must be a non-negative integer, not \"a\"",
        ),
        (
            r#"{"process":0,"type":"invoke","f":"read","key":[1]}"#,
            "run/history.jsonl:1: key: must be a string or a number, not [1]",
        ),
        (
            r#"{"process":0,"type":"invoke","f":"read"} x"#,
            "run/history.jsonl:1: json: not valid JSON at column 42: trailing characters",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(err(&format!("{line}\n")), want, "for {line}");
    }
}

#[test]
fn duplicate_index_is_an_error() {
    let e = err(concat!(
        r#"{"index":0,"process":0,"type":"invoke","f":"read"}"#,
        "\n",
        r#"{"index":0,"process":0,"type":"ok","f":"read"}"#,
        "\n"
    ));
    assert_eq!(
        e,
        "run/history.jsonl:2: index: index 0 already used by the event at line 1"
    );
}

#[test]
fn not_an_object_is_an_error() {
    let e = read_bytes(b"[1,2]\n", Path::new("h"), Format::Jsonl, false)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "h:1: json: expected a JSON object `{...}` on each line");
}

#[test]
fn invalid_utf8_names_the_line() {
    let e = read_bytes(
        b"{\"process\":0}\n\xff\xfe\n",
        Path::new("h"),
        Format::Jsonl,
        false,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "h:2: not valid UTF-8 (byte 14)");
}

#[test]
fn missing_file_names_the_file() {
    let e = read_path(Path::new("/nonexistent/h.jsonl"), Format::Auto, false)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/h.jsonl: cannot read: "), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn undetectable_format_is_an_error() {
    let e = err("hello world\n");
    assert_eq!(
        e,
        "run/history.jsonl: cannot tell the history format: use --format jsonl, edn or jepsen-log"
    );
}

#[test]
fn empty_file_is_an_empty_history() {
    assert!(parse("").unwrap().events.is_empty());
    assert!(parse("\n\n").unwrap().events.is_empty());
}

#[test]
fn independent_tuples_split_into_key_and_value() {
    let text = concat!(
        r#"{"process":0,"type":"invoke","f":"write","value":[5,3]}"#,
        "\n",
        r#"{"process":0,"type":"ok","f":"write","value":[5,3]}"#,
        "\n",
        r#"{"process":"nemesis","type":"info","f":"start","value":"x"}"#,
        "\n"
    );
    let h = read_bytes(text.as_bytes(), Path::new("h"), Format::Auto, true).unwrap();
    assert_eq!(h.events[0].key.as_deref(), Some("5"));
    assert_eq!(h.events[0].value, serde_json::json!(3));
    assert_eq!(h.events[2].value, serde_json::json!("x"));
    let bad = concat!(r#"{"process":0,"type":"invoke","f":"write","value":3}"#, "\n");
    let e = read_bytes(bad.as_bytes(), Path::new("h"), Format::Auto, true)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "h:1: value: with independent keys, a client invoke must carry a [key value] tuple, not 3"
    );
}

#[test]
fn format_names_parse() {
    assert_eq!("jsonl".parse::<Format>().unwrap(), Format::Jsonl);
    assert_eq!("edn".parse::<Format>().unwrap(), Format::Edn);
    assert_eq!("jepsen-log".parse::<Format>().unwrap(), Format::JepsenLog);
    assert_eq!("auto".parse::<Format>().unwrap(), Format::Auto);
    assert!("xml".parse::<Format>().is_err());
    assert_eq!(Format::JepsenLog.to_string(), "jepsen-log");
}

#[test]
fn files_are_streamed_with_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    let name = path.display().to_string();
    // A partial last line, cut in the middle of a multi-byte character.
    let mut bytes = DESIGN.as_bytes().to_vec();
    bytes.extend_from_slice("{\"f\":\"é".as_bytes());
    bytes.pop();
    std::fs::write(&path, &bytes).unwrap();
    let h = read_path(&path, Format::Auto, false).unwrap();
    assert_eq!(h.events, parse(DESIGN).unwrap().events);
    assert_eq!(h.warnings().len(), 1);
    assert!(h.warnings()[0].starts_with(&format!("{name}:4: skipped a partial last line")));
    // Invalid UTF-8 in the middle: the same message as from bytes.
    let first = r#"{"process":0,"type":"invoke","f":"read"}"#;
    std::fs::write(&path, [first.as_bytes(), b"\n\xff\xfe\n"].concat()).unwrap();
    let e = read_path(&path, Format::Jsonl, false).unwrap_err().to_string();
    assert_eq!(e, format!("{name}:2: not valid UTF-8 (byte {})", first.len() + 1));
    // A bad field: file, line, field.
    std::fs::write(
        &path,
        format!(
            "{DESIGN}{}\n",
            r#"{"process":0,"type":"ok","f":"read","time":"x"}"#
        ),
    )
    .unwrap();
    let e = read_path(&path, Format::Auto, false).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("{name}:4: time: must be a non-negative integer, not \"x\"")
    );
    // Events, lines and the format are as when parsed from bytes.
    std::fs::write(&path, format!("\n\n{DESIGN}")).unwrap();
    let h = read_path(&path, Format::Auto, false).unwrap();
    let src = h.source.unwrap();
    assert_eq!((src.lines, src.format), (vec![3, 4, 5], Format::Jsonl));
}

#[test]
fn large_files_read_in_chunks_agree_with_bytes() {
    // More than one chunk (8 MiB) of lines, with blank and CRLF lines in between.
    let mut text = String::new();
    for i in 0..140_000u64 {
        let p = i % 7;
        text.push_str(&format!(
            "{{\"index\":{i},\"time\":{i},\"process\":{p},\"type\":\"{}\",\"f\":\"write\",\"key\":\"k{}\",\"value\":{i}}}",
            if i % 2 == 0 { "invoke" } else { "ok" },
            i % 13
        ));
        text.push_str(if i % 1000 == 0 { "\r\n\n" } else { "\n" });
    }
    assert!(text.len() > 9 << 20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let lines = text.lines().count();

    std::fs::write(&path, &text).unwrap();
    let streamed = read_path(&path, Format::Auto, false).unwrap();
    let whole = read_bytes(text.as_bytes(), &path, Format::Auto, false).unwrap();
    assert_eq!(streamed.events.len(), 140_000);
    assert_eq!(streamed, whole);

    // A bad line at the end: its line number counts every line of every chunk.
    let bad = format!(
        "{text}{}\n",
        r#"{"process":0,"type":"ok","f":"write","index":"x"}"#
    );
    std::fs::write(&path, &bad).unwrap();
    let e = read_path(&path, Format::Auto, false).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}:{}: index: must be a non-negative integer, not \"x\"",
            path.display(),
            lines + 1
        )
    );

    // Invalid UTF-8 at the end: the same message (line and byte) as from bytes.
    let mut bytes = text.clone().into_bytes();
    bytes.extend_from_slice(b"{\"f\":\"\xff\"}\n");
    std::fs::write(&path, &bytes).unwrap();
    let streamed = read_path(&path, Format::Auto, false).unwrap_err();
    let whole = read_bytes(&bytes, &path, Format::Auto, false).unwrap_err();
    assert_eq!(streamed, whole);

    // A partial last line after many chunks: skipped with a warning naming its line.
    let partial = format!("{text}{{\"index\":1");
    std::fs::write(&path, &partial).unwrap();
    let h = read_path(&path, Format::Auto, false).unwrap();
    assert_eq!(h.events.len(), 140_000);
    assert!(
        h.warnings()[0].contains(&format!(":{}: skipped a partial last line", lines + 1)),
        "{:?}",
        h.warnings()
    );
}
