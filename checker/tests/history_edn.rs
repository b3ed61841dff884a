//! Jepsen EDN and Jepsen text logs: the accepted forms and the errors of bad input (file, line, field).

use std::path::Path;

use checker::history::{read_bytes, Format};
use checker::{EventType, History, Outcome, Process};
use serde_json::json;

fn edn(text: &str) -> Result<History, String> {
    read_bytes(text.as_bytes(), Path::new("history.edn"), Format::Auto, false).map_err(|e| e.to_string())
}

fn edn_ind(text: &str) -> Result<History, String> {
    read_bytes(text.as_bytes(), Path::new("history.edn"), Format::Edn, true).map_err(|e| e.to_string())
}

fn log(text: &str) -> Result<History, String> {
    read_bytes(text.as_bytes(), Path::new("jepsen.log"), Format::Auto, false).map_err(|e| e.to_string())
}

#[test]
fn vector_list_and_bare_sequence_agree() {
    let maps =
        "{:type :invoke, :f :write, :value 0, :process 0}\n{:type :ok, :f :write, :value 0, :process 0}\n";
    let bare = edn(maps).unwrap();
    let vector = edn(&format!("[{maps}]")).unwrap();
    let list = edn(&format!("; a comment\n({maps})")).unwrap();
    assert_eq!(bare.events, vector.events);
    assert_eq!(bare.events, list.events);
    assert_eq!(bare.events.len(), 2);
    assert_eq!(bare.source.as_ref().unwrap().lines, vec![1, 2]);
    assert_eq!(list.source.as_ref().unwrap().lines, vec![2, 3]);
    let discarded = edn(&format!("#_ [1 2] #_ :x\n[{maps}]")).unwrap();
    assert_eq!(discarded.events, bare.events);
    assert_eq!(bare.events[0].f, "write");
    assert_eq!(bare.events[1].kind, EventType::Ok);
    // No times: positions keep the order.
    assert_eq!((bare.events[1].index, bare.events[1].time), (1, 1));
}

#[test]
fn records_keywords_nil_bigints_ratios_sets_and_tags() {
    let h = edn(concat!(
        "[#jepsen.history.Op{:index 7, :time 100, :type :invoke, :process 3, :f :cas, :value [1N 2], :extra #{:a}}\n",
        "#jepsen.history.Op{:index 9, :time 200, :type :info, :process 3, :f :cas, :value nil, :error [:timeout nil]}\n",
        "{:type :info, :process :nemesis, :f :start, :value \"Cut off [:n3 #{:n4}]\"}\n",
        "{:type :invoke, :process 4, :f :write, :value 99999999999999999999999N, :key :k1}\n",
        "{:type :ok, :process 4, :f :write, :value 1/2, :key :k1, :time 300}\n",
        "{:type :invoke, :process 5, :f :write, :value {:a #{1} \"b\" ##Inf}, :time 400 #_ :ignored #_ 3}\n",
        "{:type :invoke, :process 6, :f :read, :value \\x, :at #inst \"2024-01-01T00:00:00Z\", :time 400}]\n",
    ))
    .unwrap();
    let e = &h.events;
    assert_eq!(
        (e[0].index, e[0].time, e[0].process),
        (7, 100, Process::Client(3))
    );
    assert_eq!(e[0].value, json!([1, 2]));
    assert_eq!(e[1].value, json!(null));
    assert_eq!(e[1].error.as_deref(), Some(r#"["timeout",null]"#));
    assert_eq!(e[2].process, Process::Nemesis);
    assert_eq!(e[2].value, json!("Cut off [:n3 #{:n4}]"));
    assert_eq!(e[3].value, json!("99999999999999999999999"));
    assert_eq!(e[3].key.as_deref(), Some("k1"));
    assert_eq!(e[4].value, json!(0.5));
    assert_eq!(e[5].value, json!({"a": [1], "b": "inf"}));
    assert_eq!(e[6].value, json!("x"));
    // Absent indices take the position; absent times carry the previous one.
    assert_eq!((e[2].index, e[2].time), (2, 200));
    assert_eq!(h.warnings().len(), 1, "{:?}", h.warnings());
}

#[test]
fn independent_tuples_become_keys() {
    let h = edn_ind(concat!(
        "{:type :invoke, :f :cas, :value [3 [1 2]], :process 0}\n",
        "{:type :fail, :f :cas, :value [3 [1 2]], :process 0}\n",
        "{:type :invoke, :f :read, :value #jepsen.independent.Tuple{:key 4, :value nil}, :process 1}\n",
        "{:type :info, :f :read, :value :timed-out, :process 1}\n",
        "{:type :info, :f :start, :process :nemesis}\n",
    ))
    .unwrap();
    let ops = h.operations().unwrap();
    assert_eq!(ops.len(), 2);
    assert_eq!(
        (ops[0].key.as_deref(), ops[0].input.clone()),
        (Some("3"), json!([1, 2]))
    );
    assert_eq!(ops[0].outcome, Outcome::Fail);
    assert_eq!(
        (ops[1].key.as_deref(), ops[1].input.clone()),
        (Some("4"), json!(null))
    );
    assert_eq!(ops[1].outcome, Outcome::Info);
}

#[test]
fn edn_errors_name_line_and_field() {
    let cases = [
        ("{:type :invoke, :f :read}\n", "history.edn:1: process: missing"),
        (
            "\n{:type :invoke, :f :read, :process -1}",
            "history.edn:2: process: must be a non-negative integer or :nemesis, not -1",
        ),
        (
            "{:type :invoke, :f :read, :process :n1}",
            "history.edn:1: process: must be a non-negative integer or :nemesis, not :n1",
        ),
        (
            "{:type :begin, :f :read, :process 1}",
            "history.edn:1: type: must be :invoke, :ok, :fail or :info, not :begin",
        ),
        ("{:f :read, :process 1}", "history.edn:1: type: missing"),
        ("{:type :ok, :process 1}", "history.edn:1: f: missing"),
        (
            "{:type :ok, :process 1, :f [1]}",
            "history.edn:1: f: must be a keyword or a string, not a vector",
        ),
        (
            "{:type :ok, :process 1, :f :read, :time -3}",
            "history.edn:1: time: must be a non-negative integer, not -3",
        ),
        (
            "{:type :ok, :process 1, :f :read, :index 1.5}",
            "history.edn:1: index: must be a non-negative integer, not 1.5",
        ),
        (
            "[{:type :ok, :process 1, :f :read}\n :oops]",
            "history.edn:2: expected an operation map {:type ..., :f ...}, found :oops",
        ),
        (
            "[{:type :ok,\n :process 1, :f :read}",
            "history.edn:1: edn: '[' opened here is never closed",
        ),
        (
            "{:type :ok :process}",
            "history.edn:1: edn: a map needs an even number of forms",
        ),
        (
            "{:type :ok, :process 1, :f :read, :value \"abc}",
            "history.edn:1: edn: string opened here is never closed",
        ),
        (
            "{:type :ok, :process 1, :f :read}\n}",
            "history.edn:2: edn: unexpected '}'",
        ),
        (
            "{:type :ok, :process 1, :f :read, :value 12abc}",
            "history.edn:1: edn: bad number \"12abc\"",
        ),
        (
            "{:type :ok, :process 1, :f :read, :value #}",
            "history.edn:1: edn: '#' must be followed by a tag, '{', '_' or '#'",
        ),
        (
            "{:type :ok, :process 1, :f :read, :value ##Foo}",
            "history.edn:1: edn: unknown symbolic value ##Foo",
        ),
        (
            "{:type :ok, :process 1, :f :read, :value \\bogus}",
            "history.edn:1: edn: unknown character \\bogus",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(edn(text).unwrap_err(), want, "for {text}");
    }
    let more = [
        (
            "[{:type :ok, :process 1, :f :read}]\n{:type :ok, :process 1, :f :read}",
            "history.edn:1: expected an operation map {:type ..., :f ...}, found a vector",
        ),
        ("(\n{:type :ok, :process 1, :f :read}", "history.edn:1: edn: '(' opened here is never closed"),
        ("{:type :ok, :process 1, :f :read, :value :}", "history.edn:1: edn: a keyword needs a name after ':'"),
        ("{:type :ok, :process 1, :f :read, :value \"\\u12\"}", "history.edn:1: edn: bad \\u escape in string"),
        ("{:type :ok, :process 1, :f :read, :value \\", "history.edn:1: edn: a character literal needs a character after '\\'"),
        ("{:type :ok, :process 1, :f :read, :value 1/0}", "history.edn:1: edn: bad number \"1/0\""),
        (
            "{:type :invoke, :process 1, :f :read, :index 5}\n{:type :ok, :process 1, :f :read, :index 5}",
            "history.edn:2: index: index 5 already used by the event at line 1",
        ),
        (
            "{:type :invoke, :process 1, :f :read, :index 5}\n{:type :ok, :process 1, :f :read, :index 2}\n{:type :ok, :process 1, :f :read, :index 5}",
            "history.edn:3: index: index 5 already used by the event at line 1",
        ),
    ];
    for (text, want) in more {
        assert_eq!(edn(text).unwrap_err(), want, "for {text}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = format!(
        "{{:type :ok, :process 1, :f :read, :value {}}}",
        "[".repeat(100_000)
    );
    let e = edn(&text).unwrap_err();
    assert_eq!(e, "history.edn:1: edn: forms nested more than 200 deep");
    for chain in ["#a ", "#_ ", "^:m ", "'", "#{", "("] {
        let text = format!(
            "{{:type :ok, :process 1, :f :read, :value {} 1}}",
            chain.repeat(100_000)
        );
        let e = edn(&text).unwrap_err();
        assert!(e.contains("nested more than 200 deep"), "{chain}: {e}");
    }
    // Within the bound, nesting is fine.
    let text = format!(
        "{{:type :ok, :process 1, :f :read, :value {}1{}}}",
        "[".repeat(150),
        "]".repeat(150)
    );
    assert!(edn(&text).is_ok());
}

#[test]
fn jepsen_log_lines_tabs_and_spaces() {
    let h = log(concat!(
        "2015-03-27 14:15:50,123 some other line\n",
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n",
        "INFO  jepsen.util - 1   :invoke :cas    [1 2]\n",
        "INFO  jepsen.util - 0\t:ok\t:read\t3\n",
        "INFO  jepsen.util - :nemesis\t:info\t:start\tCut off [:n1] from {:n2 :n3}\n",
        "INFO  jepsen.util - 1   :info   :cas    :timed-out\n",
        "INFO  jepsen.util - Relative time begins now\n",
        "2024-01-01 INFO [jepsen worker 2] jepsen.util: 2\t:invoke\t:write\t\"x y\"\n",
    ))
    .unwrap();
    let e = &h.events;
    assert_eq!(e.len(), 6);
    assert_eq!(h.source.as_ref().unwrap().lines, vec![2, 3, 4, 5, 6, 8]);
    assert_eq!(e[1].value, json!([1, 2]));
    assert_eq!(e[2].value, json!(3));
    assert_eq!(e[3].process, Process::Nemesis);
    assert_eq!(e[3].value, json!("Cut off [:n1] from {:n2 :n3}"));
    assert_eq!(
        (e[4].value.clone(), e[4].error.as_deref()),
        (json!(null), Some("timed-out"))
    );
    assert_eq!(e[5].value, json!("x y"));
    assert_eq!(e[5].time, 5);
}

#[test]
fn jepsen_log_errors_name_line_and_field() {
    assert_eq!(
        log("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:invoke\n").unwrap_err(),
        "jepsen.log:2: f: missing after the type"
    );
    assert_eq!(
        log("INFO  jepsen.util - 0\t:invoke\t:write\t[1 2\n").unwrap_err(),
        "jepsen.log:1: value: '[' opened here is never closed"
    );
    assert_eq!(
        log("INFO  jepsen.util - 0\t:invoke\t:write\t1 2\n").unwrap_err(),
        "jepsen.log:1: value: expected one EDN value, found \"1 2\""
    );
}

#[test]
fn detection() {
    assert_eq!(
        edn("  \n{:a 1}").map(|_| ()).unwrap_err(),
        "history.edn:2: process: missing"
    );
    let h = edn("[]").unwrap();
    assert_eq!(h.source.unwrap().format, Format::Edn);
    let h = log("INFO  jepsen.util - 0\t:invoke\t:read\tnil\n").unwrap();
    assert_eq!(h.source.unwrap().format, Format::JepsenLog);
}
