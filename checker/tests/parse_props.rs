//! Property tests over the history parsers: no input makes them panic, every error is one line naming the
//! file, and JSON Lines round-trips. (The cargo-fuzz target in `checker/fuzz/` explores the same entry
//! point for longer; this runs in CI.)

use std::path::Path;
use std::time::Duration;

use checker::history::{read_bytes, write_jsonl, Format};
use checker::{availability, stats, Event, EventType, History, Process};
use proptest::prelude::*;

const FORMATS: [Format; 4] = [Format::Auto, Format::Jsonl, Format::Edn, Format::JepsenLog];

/// Feeds `bytes` to every parser; checks the outcome is an error on one line naming the file, or a history
/// that pairing, availability and stats can all look at without panicking.
fn exercise(bytes: &[u8]) {
    for format in FORMATS {
        for independent in [false, true] {
            match read_bytes(bytes, Path::new("fuzz.in"), format, independent) {
                Err(e) => {
                    let text = e.to_string();
                    assert!(text.starts_with("fuzz.in"), "{text}");
                    assert!(!text.contains('\n'), "{text:?}");
                }
                Ok(h) => {
                    if let Err(e) = h.operations() {
                        let text = e.to_string();
                        assert!(text.starts_with("fuzz.in:"), "{text}");
                        assert!(!text.contains('\n'), "{text:?}");
                    }
                    let _ = stats::compute(&h);
                    let _ = availability::check(&h, Duration::from_secs(1));
                    assert_eq!(h.source.as_ref().map(|s| s.lines.len()), Some(h.events.len()));
                    for w in h.warnings() {
                        assert!(!w.contains('\n'));
                    }
                }
            }
        }
    }
}

fn edn_like() -> impl Strategy<Value = String> {
    // Fragments of the three formats, glued at random: reaches far deeper than uniform bytes.
    let piece = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("#{".to_string()),
        Just("#_".to_string()),
        Just("#jepsen.history.Op".to_string()),
        Just("#jepsen.independent.Tuple".to_string()),
        Just("##Inf".to_string()),
        Just(":type".to_string()),
        Just(":process".to_string()),
        Just(":f".to_string()),
        Just(":value".to_string()),
        Just(":key".to_string()),
        Just(":time".to_string()),
        Just(":index".to_string()),
        Just(":error".to_string()),
        Just(":invoke".to_string()),
        Just(":ok".to_string()),
        Just(":fail".to_string()),
        Just(":info".to_string()),
        Just(":nemesis".to_string()),
        Just(":read".to_string()),
        Just(":write".to_string()),
        Just("nil".to_string()),
        Just("\"a\\\"b\\u00e9\"".to_string()),
        Just("\\newline".to_string()),
        Just("\\u".to_string()),
        Just("\\".to_string()),
        Just(";c\n".to_string()),
        Just("INFO  jepsen.util - ".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just(" ".to_string()),
        Just(",".to_string()),
        Just("\"".to_string()),
        Just("{\"process\":".to_string()),
        Just("\"type\":\"invoke\"".to_string()),
        Just("\"f\":\"read\"".to_string()),
        Just("\"time\":".to_string()),
        Just("\"value\":".to_string()),
        Just("\"key\":".to_string()),
        Just("\"nemesis\"".to_string()),
        "-?[0-9]{1,25}[NM]?".prop_map(|s| s),
        "[0-9]{1,3}/[0-9]{1,3}".prop_map(|s| s),
        "[0-9]\\.[0-9]e-?[0-9]{1,4}".prop_map(|s| s),
        "[a-z:#^'\\\\./-]{1,6}".prop_map(|s| s),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

fn event() -> impl Strategy<Value = Event> {
    let process = prop_oneof![(0u64..6).prop_map(Process::Client), Just(Process::Nemesis)];
    let kind = prop_oneof![
        Just(EventType::Invoke),
        Just(EventType::Ok),
        Just(EventType::Fail),
        Just(EventType::Info)
    ];
    let value = prop_oneof![
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z ]{0,8}".prop_map(serde_json::Value::from),
        (any::<i32>(), any::<i32>()).prop_map(|(a, b)| serde_json::json!([a, b])),
    ];
    (
        any::<u64>(),
        process,
        kind,
        "[a-z-]{1,8}",
        proptest::option::of("[a-z0-9\"\\\\é ]{0,6}"),
        value,
        proptest::option::of(".{0,8}"),
    )
        .prop_map(|(time, process, kind, f, key, value, error)| Event {
            index: 0,
            time,
            process,
            kind,
            f,
            key,
            value,
            error,
        })
}

/// EDN text for a JSON value of the kinds `event()` generates.
fn edn_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "nil".into(),
        serde_json::Value::String(s) => edn_string(s),
        serde_json::Value::Array(a) => format!("[{}]", a.iter().map(edn_value).collect::<Vec<_>>().join(" ")),
        other => other.to_string(),
    }
}

fn edn_string(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
    )
}

fn edn_event(e: &Event) -> String {
    let process = match e.process {
        Process::Client(p) => p.to_string(),
        Process::Nemesis => ":nemesis".into(),
    };
    let kind = serde_json::to_value(e.kind).unwrap();
    let mut s = format!(
        "{{:index {}, :time {}, :process {process}, :type :{}, :f :{}, :value {}",
        e.index,
        e.time,
        kind.as_str().unwrap(),
        e.f,
        edn_value(&e.value)
    );
    if let Some(k) = &e.key {
        s.push_str(&format!(", :key {}", edn_string(k)));
    }
    if let Some(err) = &e.error {
        s.push_str(&format!(", :error {}", edn_string(err)));
    }
    s.push('}');
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        exercise(&bytes);
    }

    #[test]
    fn arbitrary_format_fragments_never_panic(text in edn_like()) {
        exercise(text.as_bytes());
    }

    #[test]
    fn arbitrary_lines_never_panic(lines in prop::collection::vec("[ -~\t]{0,80}", 0..20)) {
        exercise(lines.join("\n").as_bytes());
    }

    #[test]
    fn edn_reads_what_jepsen_would_write(mut events in prop::collection::vec(event(), 0..30), wrap in 0..3usize) {
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
            e.time /= 2; // EDN integers are 64-bit signed
        }
        let body: Vec<String> = events.iter().map(edn_event).collect();
        let text = match wrap {
            0 => body.join("\n"),
            1 => format!("[{}]", body.join("\n")),
            _ => format!("({})", body.join("\n ; a comment\n")),
        };
        let h = read_bytes(text.as_bytes(), Path::new("h.edn"), Format::Auto, false).unwrap();
        prop_assert_eq!(&h.events, &events);
        let step = if wrap == 2 { 2 } else { 1 };
        let lines: Vec<usize> = (0..events.len()).map(|i| 1 + step * i).collect();
        prop_assert_eq!(&h.source.unwrap().lines, &lines);
    }

    #[test]
    fn jepsen_logs_read_what_jepsen_would_write(events in prop::collection::vec(event(), 0..30), tabs in any::<bool>()) {
        let sep = if tabs { "\t" } else { "   " };
        let text: String = events
            .iter()
            .map(|e| {
                let process = match e.process {
                    Process::Client(p) => p.to_string(),
                    Process::Nemesis => ":nemesis".into(),
                };
                let kind = serde_json::to_value(e.kind).unwrap();
                format!(
                    "INFO  jepsen.util - {process}{sep}:{}{sep}:{}{sep}{}\n",
                    kind.as_str().unwrap(),
                    e.f,
                    edn_value(&e.value)
                )
            })
            .collect();
        let h = read_bytes(text.as_bytes(), Path::new("jepsen.log"), Format::Auto, false).unwrap();
        prop_assert_eq!(h.events.len(), events.len());
        for (got, want) in h.events.iter().zip(&events) {
            prop_assert_eq!((got.process, got.kind, &got.f, &got.value), (want.process, want.kind, &want.f, &want.value));
        }
    }

    #[test]
    fn jsonl_round_trips(mut events in prop::collection::vec(event(), 0..30)) {
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        let h = History::new(events);
        let mut out = Vec::new();
        write_jsonl(&h, &mut out).unwrap();
        let back = read_bytes(&out, Path::new("h.jsonl"), Format::Auto, false).unwrap();
        prop_assert_eq!(&back.events, &h.events);
        // Cut anywhere inside the last line: the rest still parses, with a warning.
        if out.len() > 2 {
            let cut = &out[..out.len() - 2];
            let partial = read_bytes(cut, Path::new("h.jsonl"), Format::Jsonl, false).unwrap();
            prop_assert_eq!(partial.events.len(), h.events.len() - 1);
            prop_assert_eq!(partial.warnings().len(), 1);
        }
    }
}
