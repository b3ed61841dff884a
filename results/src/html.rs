//! Pieces shared by the HTML pages: the style sheet, verdict badges, number formatting.

use checker::Verdict;
use maud::{html, Markup};
use serde_json::Value;

/// The style sheet shared by `index.html` and `report.html` (inline in each page).
pub(crate) const BASE_CSS: &str = r#"
:root{--fg:#1d2330;--muted:#5b6475;--bg:#fff;--line:#dde1e8;--ok:#1a7f37;--bad:#c62828;--unk:#b26a00;--info:#6f42c1}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg);margin:0;line-height:1.4}
main{max-width:1200px;margin:0 auto;padding:12px 16px 48px}
h1{font-size:1.5rem;margin:.4em 0}h2{font-size:1.2rem;margin:1.4em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}
h3{font-size:1rem;margin:1em 0 .4em}
a{color:#0b5cad}
table{border-collapse:collapse;font-size:.9rem}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f9;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:700;text-transform:uppercase;letter-spacing:.03em}
.verdict.valid{background:var(--ok)}.verdict.invalid{background:var(--bad)}.verdict.unknown{background:var(--unk)}.verdict.none{background:#8a94a6}
.banner{padding:14px 16px;border-radius:6px;margin:8px 0 12px;border:1px solid var(--line)}
.banner.valid{background:#e8f5ec;border-color:#9fd3ae}.banner.invalid{background:#fdecec;border-color:#f2a7a7}.banner.unknown{background:#fff4e0;border-color:#f0c987}
.banner .big{font-size:1.6rem;font-weight:800}
.muted{color:var(--muted)}
code,pre{font-family:"DejaVu Sans Mono",ui-monospace,Menlo,monospace;font-size:.85rem}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.plot{max-width:100%;height:auto;border:1px solid var(--line);margin:6px 0}
@media (max-width:640px){main{padding:8px}th,td{padding:3px 5px}h1{font-size:1.25rem}.hide-narrow{display:none}}
"#;

/// The CSS class and label of a verdict (`none` when there is none).
pub(crate) fn verdict_class(v: Option<Verdict>) -> (&'static str, &'static str) {
    match v {
        Some(Verdict::Valid) => ("valid", "valid"),
        Some(Verdict::Invalid) => ("invalid", "invalid"),
        Some(Verdict::Unknown) => ("unknown", "unknown"),
        None => ("none", "no result"),
    }
}

/// A coloured verdict badge.
pub(crate) fn verdict_badge(v: Option<Verdict>) -> Markup {
    let (class, label) = verdict_class(v);
    html! { span class={"verdict " (class)} { (label) } }
}

/// A duration in nanoseconds, human-sized (`812 µs`, `3.2 ms`, `4.51 s`, `2m 03s`).
pub fn fmt_ns(ns: u64) -> String {
    let f = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.0} µs", f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", f / 1e6)
    } else if ns < 120_000_000_000 {
        format!("{:.2} s", f / 1e9)
    } else {
        let s = ns / 1_000_000_000;
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

/// A free-form JSON value as short text: strings as they are, arrays joined by `, `, objects by their
/// `name` field when they have one, else compact JSON.
pub(crate) fn display_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(display_value).collect::<Vec<_>>().join(", "),
        Value::Object(o) => match o.get("name") {
            Some(Value::String(s)) => s.clone(),
            _ => v.to_string(),
        },
        other => other.to_string(),
    }
}

/// Compact JSON of a value, cut at `max` characters (with `…`).
pub(crate) fn short_json(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.chars().count() <= max {
        s
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// JSON text safe to embed inside an HTML `<script>` element: `<`, `>`, `&` and the line separators are
/// written as `\u` escapes, so neither `</script>` nor `<!--` can appear.
pub fn script_json(v: &Value) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script() {
        let v = serde_json::json!({"k": "</script><!-- <script>alert(1)</script>"});
        let s = script_json(&v);
        assert!(!s.contains("</"));
        assert!(!s.contains("<!--"));
        assert!(!s.contains('<'));
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_ns(512), "512 ns");
        assert_eq!(fmt_ns(3_200_000), "3.2 ms");
        assert_eq!(fmt_ns(4_510_000_000), "4.51 s");
        assert_eq!(fmt_ns(123_000_000_000), "2m 03s");
    }
}
