//! Jepsen's EDN histories: `history.edn`, the Knossos corpus, Porcupine's kv files.
//!
//! A small EDN reader of our own (it knows the line of every map, bounds its nesting, and never panics),
//! and the mapping of EDN events onto [`RawEvent`]s: keywords become strings without the colon, `nil`
//! becomes null, bigints become numbers (strings when they do not fit in 64 bits), ratios become numbers,
//! sets become arrays, tagged values (`#jepsen.history.Op{...}`, `#inst "..."`) are unwrapped, and
//! `#jepsen.independent.Tuple{:key k :value v}` becomes `[k v]`.

use std::path::Path;

use serde_json::{Map, Number, Value};

use super::raw::{event_type, RawEvent};
use super::{Event, HistoryError, Process};

/// How deep forms may nest before the input is refused (keeps the stack safe on any input).
const MAX_DEPTH: usize = 200;

/// One EDN form, with the line where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub edn: Edn,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64, as its decimal digits (with sign).
    BigInt(String),
    Float(f64),
    Str(String),
    Char(char),
    Keyword(String),
    Symbol(String),
    List(Vec<Node>),
    Vector(Vec<Node>),
    Set(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Tagged(String, Box<Node>),
}

/// A syntax error: line and message.
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

type Res<T> = Result<T, SyntaxError>;

pub(crate) struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    depth: usize,
}

fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';')
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str, first_line: usize) -> Self {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line: first_line,
            depth: 0,
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Res<T> {
        Err(SyntaxError {
            line: self.line,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    /// Skips whitespace, commas and `;` comments.
    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b == b',' {
                self.bump();
            } else if b == b';' {
                while let Some(c) = self.peek() {
                    if c == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// The next form, or None at the end of input. Skips `#_` discarded forms.
    pub(crate) fn next_form(&mut self) -> Res<Option<Node>> {
        loop {
            self.skip_ws();
            if self.peek().is_none() {
                return Ok(None);
            }
            if let Some(node) = self.form()? {
                return Ok(Some(node));
            }
        }
    }

    /// The rest of the input after the forms read so far, without leading whitespace.
    pub(crate) fn rest(&mut self) -> &'a str {
        self.skip_ws();
        &self.text[self.pos..]
    }

    /// Reads one form at the current position; None when it was a discard (`#_ x`).
    ///
    /// Every form counts towards the nesting bound, so that chains of tags, quotes, metadata or discards
    /// cannot exhaust the stack any more than nested collections can.
    fn form(&mut self) -> Res<Option<Node>> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(format!("forms nested more than {MAX_DEPTH} deep"));
        }
        let form = self.form_inner();
        self.depth -= 1;
        form
    }

    fn form_inner(&mut self) -> Res<Option<Node>> {
        let line = self.line;
        let Some(b) = self.peek() else {
            return self.err("unexpected end of input");
        };
        let edn = match b {
            b'(' => Edn::List(self.seq(b')')?),
            b'[' => Edn::Vector(self.seq(b']')?),
            b'{' => self.map()?,
            b'"' => Edn::Str(self.string()?),
            b':' => {
                self.bump();
                let tok = self.token();
                let tok = tok.strip_prefix(':').unwrap_or(tok);
                if tok.is_empty() {
                    return self.err("a keyword needs a name after ':'");
                }
                Edn::Keyword(tok.to_string())
            }
            b'\\' => {
                self.bump();
                Edn::Char(self.character()?)
            }
            b'#' => {
                self.bump();
                match self.peek() {
                    Some(b'{') => Edn::Set(self.seq(b'}')?),
                    Some(b'_') => {
                        self.bump();
                        self.skip_ws();
                        self.required_form()?;
                        return Ok(None);
                    }
                    Some(b'#') => {
                        self.bump();
                        match self.token() {
                            "Inf" => Edn::Float(f64::INFINITY),
                            "-Inf" => Edn::Float(f64::NEG_INFINITY),
                            "NaN" => Edn::Float(f64::NAN),
                            other => return self.err(format!("unknown symbolic value ##{other}")),
                        }
                    }
                    Some(b'"') => Edn::Str(self.string()?),
                    _ => {
                        let tag = self.token().to_string();
                        if tag.is_empty() {
                            return self.err("'#' must be followed by a tag, '{', '_' or '#'");
                        }
                        self.skip_ws();
                        let inner = self.required_form()?;
                        Edn::Tagged(tag, Box::new(inner))
                    }
                }
            }
            b'^' => {
                // Metadata: read and drop it, then the form it annotates.
                self.bump();
                self.skip_ws();
                self.required_form()?;
                self.skip_ws();
                return Ok(Some(self.required_form()?));
            }
            b'\'' => {
                self.bump();
                self.skip_ws();
                return Ok(Some(self.required_form()?));
            }
            b')' | b']' | b'}' => return self.err(format!("unexpected '{}'", b as char)),
            _ => {
                let tok = self.token();
                if tok.is_empty() {
                    let c = self.text[self.pos..].chars().next().unwrap_or('?');
                    return self.err(format!("unexpected character {c:?}"));
                }
                atom(tok).map_err(|m| SyntaxError { line, message: m })?
            }
        };
        Ok(Some(Node { line, edn }))
    }

    /// A form that must be there (after a tag, `#_`, `^`).
    fn required_form(&mut self) -> Res<Node> {
        loop {
            self.skip_ws();
            if self.peek().is_none() {
                return self.err("unexpected end of input");
            }
            if let Some(n) = self.form()? {
                return Ok(n);
            }
        }
    }

    /// Items up to `close`; the opening delimiter is at the current position.
    fn seq(&mut self, close: u8) -> Res<Vec<Node>> {
        let open_line = self.line;
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    return Err(SyntaxError {
                        line: open_line,
                        message: format!("'{}' opened here is never closed", opening(close)),
                    })
                }
                Some(b) if b == close => {
                    self.bump();
                    break;
                }
                Some(_) => {
                    if let Some(n) = self.form()? {
                        items.push(n);
                    }
                }
            }
        }
        Ok(items)
    }

    fn map(&mut self) -> Res<Edn> {
        let line = self.line;
        let items = self.seq(b'}')?;
        if items.len() % 2 != 0 {
            return Err(SyntaxError {
                line,
                message: "a map needs an even number of forms".into(),
            });
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((k, v));
        }
        Ok(Edn::Map(pairs))
    }

    /// A symbol-like token; may be empty.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_delimiter(b) {
                break;
            }
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn string(&mut self) -> Res<String> {
        let open_line = self.line;
        self.bump();
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.bump();
            }
            out.push_str(&self.text[start..self.pos]);
            match self.bump() {
                None => {
                    return Err(SyntaxError {
                        line: open_line,
                        message: "string opened here is never closed".into(),
                    })
                }
                Some(b'"') => return Ok(out),
                Some(_) => {
                    let Some(e) = self.bump() else { continue };
                    match e {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'u' => {
                            let hex = self.text.get(self.pos..self.pos + 4).unwrap_or("");
                            let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                            match c {
                                Some(c) if hex.len() == 4 => {
                                    out.push(c);
                                    self.pos += 4;
                                }
                                _ => return self.err("bad \\u escape in string"),
                            }
                        }
                        other => {
                            // Keep unknown escapes (e.g. from regexes) as written.
                            out.push('\\');
                            if other.is_ascii() {
                                out.push(other as char);
                            } else {
                                // Step back: the byte starts a multi-byte character; copy it whole.
                                self.pos -= 1;
                            }
                        }
                    }
                }
            }
        }
    }

    fn character(&mut self) -> Res<char> {
        // The first character is taken even when it is a delimiter (`\(`, `\ `).
        let Some(first) = self.text[self.pos..].chars().next() else {
            return self.err("a character literal needs a character after '\\'");
        };
        self.pos += first.len_utf8();
        if first == '\n' {
            self.line += 1;
        }
        if !first.is_ascii_alphanumeric() {
            return Ok(first);
        }
        let rest = self.token();
        if rest.is_empty() {
            return Ok(first);
        }
        let name = format!("{first}{rest}");
        match name.as_str() {
            "newline" => Ok('\n'),
            "space" => Ok(' '),
            "tab" => Ok('\t'),
            "return" => Ok('\r'),
            "backspace" => Ok('\u{8}'),
            "formfeed" => Ok('\u{c}'),
            n if n.starts_with('u') && n.len() == 5 => u32::from_str_radix(&n[1..], 16)
                .ok()
                .and_then(char::from_u32)
                .map_or_else(|| self.err(format!("bad character \\{n}")), Ok),
            n => self.err(format!("unknown character \\{n}")),
        }
    }
}

fn opening(close: u8) -> char {
    match close {
        b')' => '(',
        b']' => '[',
        _ => '{',
    }
}

/// A token that is not a collection, string, keyword or character: nil, booleans, numbers, symbols.
fn atom(tok: &str) -> Result<Edn, String> {
    match tok {
        "nil" => return Ok(Edn::Nil),
        "true" => return Ok(Edn::Bool(true)),
        "false" => return Ok(Edn::Bool(false)),
        _ => {}
    }
    let b = tok.as_bytes();
    let numeric =
        b[0].is_ascii_digit() || (matches!(b[0], b'+' | b'-') && b.len() > 1 && b[1].is_ascii_digit());
    if !numeric {
        return Ok(Edn::Symbol(tok.to_string()));
    }
    number(tok).ok_or_else(|| format!("bad number {tok:?}"))
}

fn number(tok: &str) -> Option<Edn> {
    let (neg, body) = match tok.as_bytes()[0] {
        b'-' => (true, &tok[1..]),
        b'+' => (false, &tok[1..]),
        _ => (false, tok),
    };
    if let Some(digits) = body.strip_suffix('N') {
        return int(neg, digits, 10);
    }
    if let Some(dec) = body.strip_suffix('M') {
        return float(neg, dec);
    }
    if let Some((n, d)) = body.split_once('/') {
        let n: f64 = decimal_digits(n)?.parse().ok()?;
        let d: f64 = decimal_digits(d)?.parse().ok()?;
        if d == 0.0 {
            return None;
        }
        return Some(Edn::Float(if neg { -n / d } else { n / d }));
    }
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return int(neg, hex, 16);
    }
    if let Some((radix, digits)) = body.split_once(['r', 'R']) {
        let radix: u32 = radix.parse().ok().filter(|r| (2..=36).contains(r))?;
        return int(neg, digits, radix);
    }
    if body.contains(['.', 'e', 'E']) {
        return float(neg, body);
    }
    int(neg, body, 10)
}

fn decimal_digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

fn int(neg: bool, digits: &str, radix: u32) -> Option<Edn> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let signed = if neg {
        format!("-{digits}")
    } else {
        digits.to_string()
    };
    match i64::from_str_radix(&signed, radix) {
        Ok(v) => Some(Edn::Int(v)),
        Err(_) if radix == 10 => Some(Edn::BigInt(signed.trim_start_matches('+').to_string())),
        Err(_) => None,
    }
}

fn float(neg: bool, body: &str) -> Option<Edn> {
    if !body
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = body.parse().ok()?;
    Some(Edn::Float(if neg { -v } else { v }))
}

/// An EDN value as JSON.
pub(crate) fn to_json(node: &Node) -> Value {
    match &node.edn {
        Edn::Nil => Value::Null,
        Edn::Bool(b) => Value::Bool(*b),
        Edn::Int(i) => Value::from(*i),
        Edn::BigInt(s) => match s.parse::<u64>() {
            Ok(u) => Value::from(u),
            Err(_) => Value::String(s.clone()),
        },
        Edn::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
        Edn::Char(c) => Value::String(c.to_string()),
        Edn::List(items) | Edn::Vector(items) | Edn::Set(items) => items.iter().map(to_json).collect(),
        Edn::Map(pairs) => {
            let mut m = Map::new();
            for (k, v) in pairs {
                m.insert(key_text(k), to_json(v));
            }
            Value::Object(m)
        }
        Edn::Tagged(tag, inner) => {
            if tag.ends_with("independent.Tuple") {
                if let Edn::Map(pairs) = &inner.edn {
                    let k = field(pairs, "key").map(to_json).unwrap_or(Value::Null);
                    let v = field(pairs, "value").map(to_json).unwrap_or(Value::Null);
                    return Value::Array(vec![k, v]);
                }
            }
            to_json(inner)
        }
    }
}

/// A map key or an independent key as text.
pub(crate) fn key_text(node: &Node) -> String {
    match &node.edn {
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
        Edn::Int(i) => i.to_string(),
        Edn::BigInt(s) => s.clone(),
        _ => to_json(node).to_string(),
    }
}

fn field<'n>(pairs: &'n [(Node, Node)], name: &str) -> Option<&'n Node> {
    pairs.iter().find_map(|(k, v)| match &k.edn {
        Edn::Keyword(s) | Edn::Str(s) if s == name => Some(v),
        _ => None,
    })
}

/// Short text of a form for error messages.
pub(crate) fn describe(node: &Node) -> String {
    let text = match &node.edn {
        Edn::Keyword(k) => format!(":{k}"),
        Edn::Nil => "nil".to_string(),
        Edn::List(_) => "a list".to_string(),
        Edn::Vector(_) => "a vector".to_string(),
        Edn::Set(_) => "a set".to_string(),
        Edn::Map(_) => "a map".to_string(),
        Edn::Tagged(t, _) => format!("#{t}"),
        _ => to_json(node).to_string(),
    };
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

/// Parses an EDN history: one vector or list of event maps, or a bare sequence of them.
///
/// Each event is converted as soon as its map is read, so only the events, never the whole EDN tree, are
/// held in memory.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Vec<RawEvent>, HistoryError> {
    let syntax = |e: SyntaxError| HistoryError::line(path, e.line, "edn", e.message);
    let mut reader = Reader::new(text, 1);
    let mut events = Vec::new();
    // Discarded forms (`#_ ...`) before the first real one do not decide the shape.
    loop {
        reader.skip_ws();
        if reader.bytes.get(reader.pos..reader.pos + 2) != Some(b"#_") {
            break;
        }
        if reader.form().map_err(syntax)?.is_some() {
            break;
        }
    }
    let open = reader.peek();
    if matches!(open, Some(b'[') | Some(b'(')) {
        // One container of events, read element by element.
        let close = if open == Some(b'[') { b']' } else { b')' };
        let open_line = reader.line;
        reader.bump();
        reader.depth += 1;
        loop {
            reader.skip_ws();
            match reader.peek() {
                None => {
                    return Err(syntax(SyntaxError {
                        line: open_line,
                        message: format!("'{}' opened here is never closed", opening(close)),
                    }))
                }
                Some(b) if b == close => {
                    reader.bump();
                    break;
                }
                Some(_) => {
                    if let Some(node) = reader.form().map_err(syntax)? {
                        events.push(event(&node, path)?);
                    }
                }
            }
        }
        reader.depth -= 1;
        // More forms after it: then the file was a bare sequence, and its first form is no event.
        if reader.next_form().map_err(syntax)?.is_some() {
            let kind = if close == b']' { "a vector" } else { "a list" };
            return Err(HistoryError::line(
                path,
                open_line,
                "",
                format!("expected an operation map {{:type ..., :f ...}}, found {kind}"),
            ));
        }
        return Ok(events);
    }
    while let Some(node) = reader.next_form().map_err(syntax)? {
        events.push(event(&node, path)?);
    }
    Ok(events)
}

/// One event map (possibly a tagged record) as a [`RawEvent`].
fn event(node: &Node, path: &Path) -> Result<RawEvent, HistoryError> {
    let line = node.line;
    let err = |field: &str, msg: String| HistoryError::line(path, line, field, msg);
    let record = match &node.edn {
        Edn::Tagged(_, inner) => inner.as_ref(),
        _ => node,
    };
    let Edn::Map(pairs) = &record.edn else {
        return Err(err(
            "",
            format!(
                "expected an operation map {{:type ..., :f ...}}, found {}",
                describe(node)
            ),
        ));
    };
    let get = |name: &str| field(pairs, name).filter(|n| n.edn != Edn::Nil);
    let process = match get("process") {
        None => return Err(err("process", "missing".into())),
        Some(n) => match &n.edn {
            Edn::Int(i) if *i >= 0 => Process::Client(*i as u64),
            Edn::Keyword(s) | Edn::Str(s) | Edn::Symbol(s) if s == "nemesis" => Process::Nemesis,
            _ => {
                return Err(err(
                    "process",
                    format!("must be a non-negative integer or :nemesis, not {}", describe(n)),
                ))
            }
        },
    };
    let kind = match get("type") {
        None => return Err(err("type", "missing".into())),
        Some(n) => match &n.edn {
            Edn::Keyword(s) | Edn::Str(s) | Edn::Symbol(s) if event_type(s).is_some() => {
                event_type(s).unwrap_or(super::EventType::Info)
            }
            _ => {
                return Err(err(
                    "type",
                    format!("must be :invoke, :ok, :fail or :info, not {}", describe(n)),
                ))
            }
        },
    };
    let f = match get("f") {
        None => return Err(err("f", "missing".into())),
        Some(n) => match &n.edn {
            Edn::Keyword(s) | Edn::Str(s) | Edn::Symbol(s) if !s.is_empty() => s.clone(),
            _ => {
                return Err(err(
                    "f",
                    format!("must be a keyword or a string, not {}", describe(n)),
                ))
            }
        },
    };
    let natural = |name: &str| -> Result<Option<u64>, HistoryError> {
        match get(name) {
            None => Ok(None),
            Some(n) => match &n.edn {
                Edn::Int(i) if *i >= 0 => Ok(Some(*i as u64)),
                _ => Err(err(
                    name,
                    format!("must be a non-negative integer, not {}", describe(n)),
                )),
            },
        }
    };
    let time = natural("time")?;
    let index = natural("index")?;
    let key = get("key").map(key_text);
    let value = field(pairs, "value").map(to_json).unwrap_or(Value::Null);
    let error = get("error").map(|n| match to_json(n) {
        Value::String(s) => s,
        other => other.to_string(),
    });
    Ok(RawEvent {
        line,
        index,
        time,
        event: Event {
            index: 0,
            time: 0,
            process,
            kind,
            f,
            key,
            value,
            error,
        },
    })
}
