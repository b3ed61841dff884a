//! The templated `http` client: any key-value system with an HTTP API of its own, described in the DB spec.
//!
//! Each operation (`read`, `write`, `cas`, `append`, `add`, `read_set`) is a request template (method, path,
//! body, headers with the placeholders `{key}`, `{value}`, `{from}`, `{to}`) plus **rules** that classify
//! the answer. A rule matches on the status (`200`, `"5xx"`, a list), a regex searched in the body, and/or
//! a JSON pointer whose value equals a given one; the first rule that matches decides the outcome (`ok`,
//! `absent` for reads, `fail`, `cas-mismatch`, `info`). An operation's own rules are tried before the
//! shared `[client] rules`; with no rules at all, a 2xx status is ok. An answer that no rule covers is
//! recorded as indeterminate (`info`; `fail` for a read, which changes nothing) with the error
//! `unclassified: HTTP <status>: <body>`, never as a guessed ok or fail.
//!
//! Values: `encoding = "plain"` (default: a string as it is, a number as its digits), `"json"` (the JSON
//! text, so a string has quotes) or `"base64"` (of the plain text). Placeholders landing in the path are
//! URL-encoded. A read's value is found by `value.pointer` (JSON pointer), `value.regex` (a capture group)
//! or the raw body (the default), trimmed of surrounding whitespace unless `value.trim = false`.
//!
//! Every template, regex and pointer is checked by [`compile`] when the spec is read; errors name the field
//! (`client.read.rules[1].body_regex: ...`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hyper::Method;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::completion::{text_to_value, value_to_text, Completion};
use crate::exchange::{Answer, Exchange};
use crate::http::{HttpConn, HttpTrouble};
use crate::http_kv::encode_segment;
use crate::workload::{Call, Op, Workload};

/// Settings of the templated `http` protocol: the DB spec's `[client]` table with `protocol = "http"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// `"http"`. The tag is taken by [`crate::Protocol`]; it is only seen when the table is read on its own
    /// (the spec reader does, because serde loses the line of an error inside a tagged enum).
    #[serde(default, skip_serializing)]
    pub protocol: Option<String>,
    /// Per-request timeout in milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How values are written into requests and read from answers.
    #[serde(default)]
    pub encoding: Encoding,
    /// Rules tried after each operation's own (e.g. how "not the leader" looks, for every operation).
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub read: Option<OpTemplate>,
    #[serde(default)]
    pub write: Option<OpTemplate>,
    #[serde(default)]
    pub cas: Option<OpTemplate>,
    #[serde(default)]
    pub append: Option<OpTemplate>,
    #[serde(default)]
    pub add: Option<OpTemplate>,
    #[serde(default)]
    pub read_set: Option<OpTemplate>,
}

fn default_timeout_ms() -> u64 {
    5000
}
fn default_true() -> bool {
    true
}
fn default_group() -> usize {
    1
}

/// How values travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// A string as it is, a number as its digits.
    #[default]
    Plain,
    /// The value's JSON text (`"t1.2;"` with quotes, `5`).
    Json,
    /// Base64 of the plain text.
    Base64,
}

/// One operation's request and its rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpTemplate {
    /// Default: GET for `read` and `read_set`, PUT for `write`, POST otherwise.
    #[serde(default)]
    pub method: Option<String>,
    /// Starts with `/`; may carry a query (`/kv?key={key}`).
    pub path: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Reads only: where the value is in an ok answer (default: the raw body).
    #[serde(default)]
    pub value: Option<ValueSpec>,
}

/// Where a read's value is in the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSpec {
    /// A JSON pointer into the body parsed as JSON (`/node/value`); JSON null there is "absent".
    #[serde(default)]
    pub pointer: Option<String>,
    /// A regex searched in the body; the value is capture `group` (default 1).
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default = "default_group")]
    pub group: usize,
    /// Trim surrounding whitespace from the text found (default true).
    #[serde(default = "default_true")]
    pub trim: bool,
}

/// One classification rule: every condition given must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A status (`200`), a class (`"4xx"`) or a list of them.
    #[serde(default)]
    pub status: Option<StatusSpec>,
    /// A regex searched in the body (as UTF-8 text, invalid bytes replaced).
    #[serde(default)]
    pub body_regex: Option<String>,
    /// A JSON pointer into the body parsed as JSON; with `equals`, the value there must equal it; alone, it
    /// must exist.
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub equals: Option<Value>,
    pub outcome: Outcome,
    /// The error recorded for a fail or info (default `http-<status>`); `{body}` stands for the start of the
    /// answer's body.
    #[serde(default)]
    pub error: Option<String>,
}

/// Statuses a rule matches.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StatusSpec {
    One(StatusPattern),
    Many(Vec<StatusPattern>),
}

/// `200` or `"2xx"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StatusPattern {
    Code(u16),
    Class(String),
}

impl<'de> Deserialize<'de> for StatusSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StatusVisitor)
    }
}

impl<'de> Deserialize<'de> for StatusPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(StatusVisitor)? {
            StatusSpec::One(p) => Ok(p),
            StatusSpec::Many(_) => Err(serde::de::Error::custom("a list inside a list of statuses")),
        }
    }
}

/// Reads `200`, `"5xx"` or a list of them, with an error that says so.
struct StatusVisitor;

impl<'de> serde::de::Visitor<'de> for StatusVisitor {
    type Value = StatusSpec;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a status (200), a class (\"5xx\") or a list of them")
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StatusSpec, E> {
        u16::try_from(v)
            .map(|c| StatusSpec::One(StatusPattern::Code(c)))
            .map_err(|_| E::custom(format!("{v} is not an HTTP status (100..=599)")))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StatusSpec, E> {
        self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StatusSpec, E> {
        Ok(StatusSpec::One(StatusPattern::Class(v.to_string())))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<StatusSpec, A::Error> {
        let mut out = Vec::new();
        while let Some(p) = seq.next_element::<StatusPattern>()? {
            out.push(p);
        }
        Ok(StatusSpec::Many(out))
    }
}

/// What a matching rule says about the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It took effect (a read: its value is in the answer).
    Ok,
    /// Reads only: the key has no value (ok, read null; an empty set).
    Absent,
    /// It definitely did not take effect.
    Fail,
    /// Cas only: the current value differed (a definite failure).
    CasMismatch,
    /// It may or may not have taken effect.
    Info,
}

/// The operations a spec can describe, with their spec names and placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Read,
    Write,
    Cas,
    Append,
    Add,
    ReadSet,
}

impl OpKind {
    const ALL: [OpKind; 6] = [
        OpKind::Read,
        OpKind::Write,
        OpKind::Cas,
        OpKind::Append,
        OpKind::Add,
        OpKind::ReadSet,
    ];

    fn of(call: &Call) -> OpKind {
        match call {
            Call::Read => OpKind::Read,
            Call::ReadSet => OpKind::ReadSet,
            Call::Write(_) => OpKind::Write,
            Call::Cas(..) => OpKind::Cas,
            Call::Append(_) => OpKind::Append,
            Call::Add(_) => OpKind::Add,
        }
    }

    fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Cas => "cas",
            OpKind::Append => "append",
            OpKind::Add => "add",
            OpKind::ReadSet => "read_set",
        }
    }

    fn placeholders(self) -> &'static [&'static str] {
        match self {
            OpKind::Read | OpKind::ReadSet => &["key"],
            OpKind::Cas => &["key", "from", "to"],
            _ => &["key", "value"],
        }
    }

    fn is_read(self) -> bool {
        matches!(self, OpKind::Read | OpKind::ReadSet)
    }

    fn default_method(self) -> &'static str {
        match self {
            OpKind::Read | OpKind::ReadSet => "GET",
            OpKind::Write => "PUT",
            _ => "POST",
        }
    }

    /// The operations a workload sends.
    fn needed_by(w: Workload) -> &'static [OpKind] {
        match w {
            Workload::Register => &[OpKind::Read, OpKind::Write],
            Workload::CasRegister => &[OpKind::Read, OpKind::Write, OpKind::Cas],
            Workload::Append => &[OpKind::Read, OpKind::Append],
            Workload::Set => &[OpKind::Add, OpKind::ReadSet],
        }
    }
}

impl HttpSettings {
    fn template(&self, kind: OpKind) -> Option<&OpTemplate> {
        match kind {
            OpKind::Read => self.read.as_ref(),
            OpKind::Write => self.write.as_ref(),
            OpKind::Cas => self.cas.as_ref(),
            OpKind::Append => self.append.as_ref(),
            OpKind::Add => self.add.as_ref(),
            OpKind::ReadSet => self.read_set.as_ref(),
        }
    }

    /// The operations of `workload` this spec does not describe (spec names: `cas`, `read_set`, ...).
    pub fn missing_for(&self, workload: Workload) -> Vec<&'static str> {
        OpKind::needed_by(workload)
            .iter()
            .filter(|k| self.template(**k).is_none())
            .map(|k| k.name())
            .collect()
    }
}

/// Makes a [`FieldError`]: the TOML table (`client.read`), the key in it (`rules`), the element of an array
/// when the key is one, and the field inside it.
fn field_error(section: &str, key: &str, index: Option<usize>, sub: &str, reason: String) -> Box<FieldError> {
    let mut field = if key.is_empty() {
        section.to_string()
    } else {
        format!("{section}.{key}")
    };
    if let Some(i) = index {
        field.push_str(&format!("[{i}]"));
    }
    if !sub.is_empty() {
        field.push('.');
        field.push_str(sub);
    }
    Box::new(FieldError {
        section: section.to_string(),
        key: key.to_string(),
        index,
        field,
        reason,
    })
}

/// A setting of the templated protocol that cannot work, located for the spec reader: `section` is the TOML
/// table (`client.read`), `key` the key in it, `index` the element when the key is an array (a rule),
/// `field` the whole dotted path.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub section: String,
    pub key: String,
    pub index: Option<usize>,
    pub field: String,
    pub reason: String,
}

/// The checked, compiled form of [`HttpSettings`].
#[derive(Debug)]
pub(crate) struct Plan {
    timeout: Duration,
    encoding: Encoding,
    ops: Vec<(OpKind, OpPlan)>,
}

#[derive(Debug)]
struct OpPlan {
    method: Method,
    path: String,
    body: Option<String>,
    headers: Vec<(String, String)>,
    rules: Vec<RulePlan>,
    value: ValuePlan,
}

#[derive(Debug)]
struct RulePlan {
    /// Where it was written (`client.write.rules[0]`), for traces.
    origin: String,
    /// Inclusive status ranges; empty matches any status.
    statuses: Vec<(u16, u16)>,
    body: Option<Regex>,
    pointer: Option<(String, Option<Value>)>,
    outcome: Outcome,
    error: Option<String>,
}

#[derive(Debug)]
enum ValuePlan {
    Raw { trim: bool },
    Pointer(String),
    Regex { re: Regex, group: usize, trim: bool },
}

/// Checks every template, rule, regex and pointer and compiles them.
pub(crate) fn compile(s: &HttpSettings) -> Result<Plan, Box<FieldError>> {
    if s.timeout_ms == 0 {
        return Err(field_error(
            "client",
            "timeout_ms",
            None,
            "",
            "must be above 0".into(),
        ));
    }
    for (name, value) in &s.headers {
        check_header(name, value, &[]).map_err(|r| field_error("client", "headers", None, name, r))?;
    }
    let shared = compile_rules(&s.rules, "client", None)?;
    let mut ops = Vec::new();
    for kind in OpKind::ALL {
        let Some(t) = s.template(kind) else { continue };
        ops.push((kind, compile_op(s, kind, t, &shared)?));
    }
    if ops.is_empty() {
        return Err(field_error(
            "client",
            "",
            None,
            "",
            "describe at least one operation ([client.read], [client.write], ...)".into(),
        ));
    }
    Ok(Plan {
        timeout: Duration::from_millis(s.timeout_ms),
        encoding: s.encoding,
        ops,
    })
}

fn compile_op(
    s: &HttpSettings,
    kind: OpKind,
    t: &OpTemplate,
    shared: &[RulePlan],
) -> Result<OpPlan, Box<FieldError>> {
    let section = format!("client.{}", kind.name());
    let err = |key: &str, reason: String| field_error(&section, key, None, "", reason);
    let method_name = t.method.as_deref().unwrap_or(kind.default_method());
    let method = match method_name {
        "GET" | "POST" | "PUT" | "DELETE" | "PATCH" => {
            Method::from_bytes(method_name.as_bytes()).map_err(|e| err("method", e.to_string()))?
        }
        other => {
            return Err(err(
                "method",
                format!("unknown HTTP method {other:?} (GET, POST, PUT, DELETE, PATCH)"),
            ))
        }
    };
    if !t.path.starts_with('/') {
        return Err(err("path", "must start with '/'".into()));
    }
    if t.path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(
            "path",
            "must not contain spaces or control characters".into(),
        ));
    }
    check_placeholders(&t.path, kind.placeholders()).map_err(|r| err("path", r))?;
    if let Some(b) = &t.body {
        check_placeholders(b, kind.placeholders()).map_err(|r| err("body", r))?;
    }
    let mut headers: Vec<(String, String)> = s.headers.clone().into_iter().collect();
    for (name, value) in &t.headers {
        check_header(name, value, kind.placeholders())
            .map_err(|r| field_error(&section, "headers", None, name, r))?;
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.clone(), value.clone()));
    }
    let own = compile_rules(&t.rules, &section, Some(kind))?;
    if kind == OpKind::Cas
        && !own
            .iter()
            .chain(shared)
            .any(|r| r.outcome == Outcome::CasMismatch)
    {
        return Err(err(
            "rules",
            "a cas needs a rule with outcome = \"cas-mismatch\" (how the system says the value differed); \
             without one a mismatch would be taken for a success"
                .into(),
        ));
    }
    let mut rules = own;
    if rules.is_empty() && shared.is_empty() {
        rules.push(RulePlan {
            origin: "default rule (2xx is ok)".into(),
            statuses: vec![(200, 299)],
            body: None,
            pointer: None,
            outcome: Outcome::Ok,
            error: None,
        });
    }
    rules.extend(shared.iter().map(RulePlan::clone_for));
    let value = compile_value(t.value.as_ref(), kind, &section)?;
    Ok(OpPlan {
        method,
        path: t.path.clone(),
        body: t.body.clone(),
        headers,
        rules,
        value,
    })
}

impl RulePlan {
    fn clone_for(&self) -> RulePlan {
        RulePlan {
            origin: self.origin.clone(),
            statuses: self.statuses.clone(),
            body: self.body.clone(),
            pointer: self.pointer.clone(),
            outcome: self.outcome,
            error: self.error.clone(),
        }
    }
}

fn compile_value(v: Option<&ValueSpec>, kind: OpKind, section: &str) -> Result<ValuePlan, Box<FieldError>> {
    let Some(v) = v else {
        return Ok(ValuePlan::Raw { trim: true });
    };
    let err = |sub: &str, reason: String| field_error(section, "value", None, sub, reason);
    if !kind.is_read() {
        return Err(err("", "only reads (read, read_set) have a value to find".into()));
    }
    match (&v.pointer, &v.regex) {
        (Some(_), Some(_)) => Err(err("", "give pointer or regex, not both".into())),
        (Some(p), None) => {
            check_pointer(p).map_err(|r| err("pointer", r))?;
            Ok(ValuePlan::Pointer(p.clone()))
        }
        (None, Some(r)) => {
            let re = Regex::new(r).map_err(|e| err("regex", one_line(&e)))?;
            if v.group >= re.captures_len() {
                return Err(err(
                    "group",
                    format!(
                        "the regex has no capture group {} (it has {})",
                        v.group,
                        re.captures_len() - 1
                    ),
                ));
            }
            Ok(ValuePlan::Regex {
                re,
                group: v.group,
                trim: v.trim,
            })
        }
        (None, None) => Ok(ValuePlan::Raw { trim: v.trim }),
    }
}

fn compile_rules(
    rules: &[Rule],
    section: &str,
    kind: Option<OpKind>,
) -> Result<Vec<RulePlan>, Box<FieldError>> {
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let err = |sub: &str, reason: String| field_error(section, "rules", Some(i), sub, reason);
        let statuses = match &r.status {
            None => Vec::new(),
            Some(StatusSpec::One(p)) => vec![status_range(p).map_err(|e| err("status", e))?],
            Some(StatusSpec::Many(ps)) if ps.is_empty() => {
                return Err(err("status", "an empty list matches nothing".into()))
            }
            Some(StatusSpec::Many(ps)) => ps
                .iter()
                .map(status_range)
                .collect::<Result<_, _>>()
                .map_err(|e| err("status", e))?,
        };
        let body = match &r.body_regex {
            Some(b) => Some(Regex::new(b).map_err(|e| err("body_regex", one_line(&e)))?),
            None => None,
        };
        let pointer = match (&r.pointer, &r.equals) {
            (Some(p), eq) => {
                check_pointer(p).map_err(|e| err("pointer", e))?;
                Some((p.clone(), eq.clone()))
            }
            (None, Some(_)) => return Err(err("equals", "needs a pointer (where to compare)".into())),
            (None, None) => None,
        };
        if statuses.is_empty() && body.is_none() && pointer.is_none() {
            return Err(err(
                "",
                "matches every answer: give a status, a body_regex or a pointer".into(),
            ));
        }
        let allowed = match (r.outcome, kind) {
            (Outcome::Absent, Some(k)) => k.is_read(),
            (Outcome::Absent, None) => false,
            (Outcome::CasMismatch, Some(k)) => k == OpKind::Cas,
            (Outcome::CasMismatch, None) => false,
            _ => true,
        };
        if !allowed {
            let why = match r.outcome {
                Outcome::Absent => "outcome \"absent\" belongs in the rules of read or read_set",
                _ => "outcome \"cas-mismatch\" belongs in the rules of cas",
            };
            return Err(err("outcome", why.into()));
        }
        out.push(RulePlan {
            origin: format!("{section}.rules[{i}]"),
            statuses,
            body,
            pointer,
            outcome: r.outcome,
            error: r.error.clone(),
        });
    }
    Ok(out)
}

fn status_range(p: &StatusPattern) -> Result<(u16, u16), String> {
    match p {
        StatusPattern::Code(c) if (100..=599).contains(c) => Ok((*c, *c)),
        StatusPattern::Code(c) => Err(format!("{c} is not an HTTP status (100..=599)")),
        StatusPattern::Class(s) => {
            let b = s.as_bytes();
            if b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && s[1..].eq_ignore_ascii_case("xx") {
                let base = u16::from(b[0] - b'0') * 100;
                Ok((base, base + 99))
            } else {
                Err(format!(
                    "{s:?}: expected a status such as 200 or a class such as \"5xx\""
                ))
            }
        }
    }
}

fn check_pointer(p: &str) -> Result<(), String> {
    if !(p.is_empty() || p.starts_with('/')) {
        return Err(format!(
            "{p:?} is not a JSON pointer: it is empty or starts with '/' (e.g. \"/node/value\")"
        ));
    }
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!("{p:?}: '~' must be followed by 0 or 1 (RFC 6901)"));
        }
    }
    Ok(())
}

fn check_header(name: &str, value: &str, known: &[&str]) -> Result<(), String> {
    hyper::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| "not a valid header name".to_string())?;
    if value.chars().any(|c| c.is_control()) {
        return Err("a header value must not contain control characters".into());
    }
    check_placeholders(value, known)
}

fn one_line(e: &dyn fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `{name}` placeholders of a template, with `name` a lowercase identifier; other braces are literal
/// (so JSON bodies need no escaping). The one reading of the template syntax: the DB spec's command and probe
/// templates (harness) use it too. Yields (start, end, name) byte ranges.
pub fn placeholders(t: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let bytes = t.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if bytes[i] == b'{' {
                let start = i;
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_lowercase()
                        || bytes[j] == b'_'
                        || (j > i + 1 && bytes[j].is_ascii_digit()))
                {
                    j += 1;
                }
                if j > i + 1 && j < bytes.len() && bytes[j] == b'}' {
                    i = j + 1;
                    return Some((start, j + 1, &t[start + 1..j]));
                }
            }
            i += 1;
        }
        None
    })
}

fn check_placeholders(t: &str, known: &[&str]) -> Result<(), String> {
    for (_, _, name) in placeholders(t) {
        if !known.contains(&name) {
            let all = ["key", "value", "from", "to"];
            let why = if all.contains(&name) {
                "cannot appear here"
            } else {
                "is unknown"
            };
            let list: Vec<String> = known.iter().map(|k| format!("{{{k}}}")).collect();
            return Err(format!(
                "placeholder {{{name}}} {why} (known here: {})",
                if list.is_empty() {
                    "none".to_string()
                } else {
                    list.join(", ")
                }
            ));
        }
    }
    Ok(())
}

fn fill(t: &str, vars: &[(&str, String)], url: bool) -> String {
    let mut out = String::with_capacity(t.len() + 16);
    let mut last = 0;
    for (start, end, name) in placeholders(t) {
        out.push_str(&t[last..start]);
        let v = vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if url {
            out.push_str(&encode_segment(v));
        } else {
            out.push_str(v);
        }
        last = end;
    }
    out.push_str(&t[last..]);
    out
}

impl Encoding {
    fn encode(self, v: &Value) -> String {
        match self {
            Encoding::Plain => value_to_text(v),
            Encoding::Json => v.to_string(),
            Encoding::Base64 => B64.encode(value_to_text(v)),
        }
    }

    /// Decodes the text found in an answer.
    fn decode_text(self, text: &str) -> Result<Value, String> {
        match self {
            Encoding::Plain => Ok(text_to_value(text.as_bytes())),
            Encoding::Json => {
                serde_json::from_str(text).map_err(|e| format!("value {text:?} is not JSON: {e}"))
            }
            Encoding::Base64 => B64
                .decode(text)
                .map(|b| text_to_value(&b))
                .map_err(|e| format!("value {text:?} is not base64: {e}")),
        }
    }

    /// Decodes the JSON value found at a pointer.
    fn decode_json(self, v: &Value) -> Result<Value, String> {
        match (self, v) {
            (_, Value::Null) => Ok(Value::Null),
            (Encoding::Json, v) => Ok(v.clone()),
            (_, Value::String(s)) => self.decode_text(s),
            (Encoding::Plain, v) => Ok(v.clone()),
            (Encoding::Base64, v) => Err(format!("value {v} is not a base64 string")),
        }
    }
}

/// A client of one node speaking the templated protocol.
#[derive(Debug)]
pub struct TemplatedClient {
    conn: HttpConn,
    plan: std::sync::Arc<Plan>,
}

impl TemplatedClient {
    pub(crate) fn new(node: &str, plan: std::sync::Arc<Plan>) -> TemplatedClient {
        TemplatedClient {
            conn: HttpConn::new(node, plan.timeout),
            plan,
        }
    }

    pub(crate) fn node(&self) -> &str {
        self.conn.node()
    }

    pub(crate) async fn call(&mut self, op: &Op) -> Completion {
        self.call_traced(op).await.0
    }

    /// Sends `op` and classifies the answer; also says what was sent and received, and by which rule (no
    /// exchange when the spec does not describe the operation).
    pub(crate) async fn call_traced(&mut self, op: &Op) -> (Completion, Vec<Exchange>) {
        let call = &op.call;
        let kind = OpKind::of(call);
        let plan = self.plan.clone();
        let Some((_, p)) = plan.ops.iter().find(|(k, _)| *k == kind) else {
            let e = format!("unsupported: the spec describes no [client.{}]", kind.name());
            return (Completion::fail(call, e), Vec::new());
        };
        let enc = plan.encoding;
        let mut vars = vec![("key", op.key.clone())];
        match call {
            Call::Read | Call::ReadSet => {}
            Call::Write(v) => vars.push(("value", enc.encode(v))),
            Call::Cas(f, t) => vars.extend([("from", enc.encode(f)), ("to", enc.encode(t))]),
            Call::Append(s) => vars.push(("value", enc.encode(&Value::String(s.clone())))),
            Call::Add(e) => vars.push(("value", enc.encode(&json!(e)))),
        }
        let path = fill(&p.path, &vars, true);
        let body = p.body.as_ref().map(|b| fill(b, &vars, false));
        let mut headers: Vec<(String, String)> = p
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), fill(v, &vars, false)))
            .collect();
        if body.is_some()
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            let json_body = enc == Encoding::Json
                || body
                    .as_deref()
                    .is_some_and(|b| b.trim_start().starts_with(['{', '[']));
            let t = if json_body {
                "application/json"
            } else {
                "text/plain"
            };
            headers.push(("content-type".into(), t.into()));
        }
        let mut ex = Exchange {
            request: format!("{} {}", p.method, path),
            request_body: body.clone(),
            answer: Err(String::new()),
            rule: None,
        };
        let header_refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let sent = self
            .conn
            .request(
                p.method.clone(),
                &path,
                body.map(String::into_bytes),
                &header_refs,
            )
            .await;
        let completion = match sent {
            Ok((status, bytes)) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let (c, rule) = classify(p, enc, call, status.as_u16(), &text);
                ex.answer = Ok(Answer::Http {
                    status: status.as_u16(),
                    body: text,
                });
                ex.rule = rule;
                c
            }
            Err(HttpTrouble::NotSent(e)) => {
                ex.answer = Err(e.clone());
                Completion::fail(call, e)
            }
            Err(HttpTrouble::Unknown(e)) => {
                ex.answer = Err(e.clone());
                Completion::unknown(call, e)
            }
        };
        (completion, vec![ex])
    }
}

/// Classifies an answer by the first matching rule; the rule's origin comes back for traces.
fn classify(p: &OpPlan, enc: Encoding, call: &Call, status: u16, body: &str) -> (Completion, Option<String>) {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let Some(rule) = p.rules.iter().find(|r| r.matches(status, body, json.as_ref())) else {
        return (
            Completion::unknown(call, unclassified(status, body, "no rule covers it")),
            None,
        );
    };
    let origin = Some(rule.origin.clone());
    let error = || match &rule.error {
        Some(e) => e.replace("{body}", &excerpt(body)),
        None => format!("http-{status}"),
    };
    let c = match rule.outcome {
        Outcome::Fail => Completion::fail(call, error()),
        Outcome::Info => Completion::unknown(call, error()),
        Outcome::CasMismatch => Completion::fail(call, "cas-mismatch"),
        Outcome::Absent if matches!(call, Call::ReadSet) => Completion::ok(json!([])),
        Outcome::Absent => Completion::ok(Value::Null),
        Outcome::Ok => match call {
            Call::Read => match find_value(&p.value, enc, body, json.as_ref()) {
                Ok(v) => Completion::ok(v),
                Err(e) => Completion::unknown(call, unclassified(status, body, &e)),
            },
            Call::ReadSet => match find_set(&p.value, enc, body, json.as_ref()) {
                Ok(v) => Completion::ok(v),
                Err(e) => Completion::unknown(call, unclassified(status, body, &e)),
            },
            _ => Completion::done(call),
        },
    };
    (c, origin)
}

/// The error of an answer no rule covers: it names the status and the start of the body.
fn unclassified(status: u16, body: &str, why: &str) -> String {
    format!("unclassified: HTTP {status} {:?} ({why})", excerpt(body))
}

/// The start of a body, trimmed, on one line.
fn excerpt(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        out.push('…');
    }
    out
}

impl RulePlan {
    fn matches(&self, status: u16, body: &str, json: Option<&Value>) -> bool {
        if !self.statuses.is_empty() && !self.statuses.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status)) {
            return false;
        }
        if let Some(re) = &self.body {
            if !re.is_match(body) {
                return false;
            }
        }
        if let Some((pointer, equals)) = &self.pointer {
            let Some(found) = json.and_then(|j| j.pointer(pointer)) else {
                return false;
            };
            if let Some(eq) = equals {
                if found != eq {
                    return false;
                }
            }
        }
        true
    }
}

/// What a value rule found in an answer, before decoding.
enum Found {
    Text(String),
    Json(Value),
}

fn find_raw(v: &ValuePlan, body: &str, json: Option<&Value>) -> Result<Found, String> {
    let trimmed = |t: &str, trim: bool| if trim { t.trim().to_string() } else { t.to_string() };
    match v {
        ValuePlan::Raw { trim } => Ok(Found::Text(trimmed(body, *trim))),
        ValuePlan::Pointer(p) => {
            let j = json.ok_or("the body is not JSON")?;
            let found = j.pointer(p).ok_or_else(|| format!("nothing at {p}"))?;
            Ok(Found::Json(found.clone()))
        }
        ValuePlan::Regex { re, group, trim } => {
            let caps = re.captures(body).ok_or("the value regex does not match")?;
            let text = caps.get(*group).map(|m| m.as_str()).unwrap_or("");
            Ok(Found::Text(trimmed(text, *trim)))
        }
    }
}

fn find_value(v: &ValuePlan, enc: Encoding, body: &str, json: Option<&Value>) -> Result<Value, String> {
    match find_raw(v, body, json)? {
        Found::Text(t) => enc.decode_text(&t),
        Found::Json(j) => enc.decode_json(&j),
    }
}

/// A set read: a JSON array, or a text list separated by commas, semicolons or white space; each element
/// decoded with the encoding and an integer.
fn find_set(v: &ValuePlan, enc: Encoding, body: &str, json: Option<&Value>) -> Result<Value, String> {
    let elements: Vec<Value> = match find_raw(v, body, json)? {
        Found::Json(Value::Null) => Vec::new(),
        Found::Json(Value::Array(items)) => items
            .iter()
            .map(|i| enc.decode_json(i))
            .collect::<Result<_, _>>()?,
        Found::Json(Value::String(s)) | Found::Text(s) => s
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(|p| enc.decode_text(p))
            .collect::<Result<_, _>>()?,
        Found::Json(other) => vec![enc.decode_json(&other)?],
    };
    let mut out = elements
        .iter()
        .map(|e| {
            match e {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| format!("set element {e} is not an integer"))
        })
        .collect::<Result<Vec<i64>, String>>()?;
    out.sort_unstable();
    Ok(json!(out))
}

#[cfg(test)]
mod tests;
