//! Jepsen's EDN histories.
use std::path::Path;

use super::format::RawEvent;
use super::HistoryError;

pub(crate) fn parse(_text: &str, path: &Path) -> Result<Vec<RawEvent>, HistoryError> {
    Err(HistoryError::file(path, "EDN histories are not supported yet"))
}
