//! The one error type of history reading and pairing.

use std::path::PathBuf;

use super::History;

/// A history that cannot be read or makes no sense, with where and what.
///
/// Displays on one line as `path:LINE: field: what is wrong` (parts that are not known are left out; a
/// history built in memory names the event's position instead of a file and line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(self))]
pub struct HistoryError {
    /// The file, when the history came from one.
    pub path: Option<PathBuf>,
    /// The 1-based line in that file.
    pub line: Option<usize>,
    /// The event's position in the history, for histories without a file.
    pub position: Option<usize>,
    /// The field at fault (`process`, `type`, `time`, `value`, ...), when one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl HistoryError {
    /// An error about the event at `position` of `history` (its file and line when it has them).
    ///
    /// This is how other checkers report, e.g., an `f` their model does not know.
    pub fn at(history: &History, position: usize, field: &str, message: impl Into<String>) -> HistoryError {
        let path = history.source.as_ref().map(|s| s.path.clone());
        let line = history.line_of(position);
        HistoryError {
            path,
            line,
            position: if line.is_none() { Some(position) } else { None },
            field: Some(field.to_string()).filter(|f| !f.is_empty()),
            message: message.into(),
        }
    }

    /// An error at a line of a file.
    pub(crate) fn line(path: &std::path::Path, line: usize, field: &str, message: impl Into<String>) -> Self {
        HistoryError {
            path: Some(path.to_path_buf()),
            line: Some(line),
            position: None,
            field: Some(field.to_string()).filter(|f| !f.is_empty()),
            message: message.into(),
        }
    }

    /// An error about a whole file (it cannot be opened, its format cannot be told).
    pub(crate) fn file(path: &std::path::Path, message: impl Into<String>) -> Self {
        HistoryError {
            path: Some(path.to_path_buf()),
            line: None,
            position: None,
            field: None,
            message: message.into(),
        }
    }
}

fn render(e: &HistoryError) -> String {
    let mut out = String::new();
    match (&e.path, e.line, e.position) {
        (Some(p), Some(l), _) => out.push_str(&format!("{}:{l}: ", p.display())),
        (Some(p), None, Some(pos)) => out.push_str(&format!("{}: event {pos}: ", p.display())),
        (Some(p), None, None) => out.push_str(&format!("{}: ", p.display())),
        (None, Some(l), _) => out.push_str(&format!("line {l}: ")),
        (None, None, Some(pos)) => out.push_str(&format!("event {pos}: ")),
        (None, None, None) => {}
    }
    if let Some(f) = &e.field {
        out.push_str(f);
        out.push_str(": ");
    }
    // One line, whatever the message holds.
    out.push_str(&one_line(&e.message));
    out
}

/// Collapses line breaks so that every error prints on one line.
pub(crate) fn one_line(s: &str) -> String {
    if s.contains(['\n', '\r']) {
        s.replace(['\n', '\r'], " ")
    } else {
        s.to_string()
    }
}
