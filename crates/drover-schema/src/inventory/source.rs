//! An inventory text with its file name, turning problems into located [`InventoryError`]s.
//!
//! Positions come from serde_yaml_ng for its own errors and from `locate` for the checks made
//! afterwards. This module knows the top-level keys of the format (to recognise field paths in
//! serde's messages) but no other rule of the schema, and nothing of the cluster model.

use super::error::InventoryError;
use super::locate::{self, Position};

/// The top-level keys of an inventory; every field path in a serde message starts with one.
const TOP_LEVEL_KEYS: [&str; 5] = ["cluster", "policy", "hosts", "vms", "driver"];

pub(crate) struct Source<'a> {
    pub(crate) name: &'a str,
    pub(crate) text: &'a str,
}

impl Source<'_> {
    /// An error about the node at `field_path`, placed at that node (or its nearest ancestor).
    pub(crate) fn error_at(&self, field_path: &str, message: impl Into<String>) -> InventoryError {
        let position = locate::locate_nearest(self.text, field_path);
        self.invalid(position, Some(field_path.to_string()), message.into())
    }

    /// The line of the node at `field_path`, for messages that point at a second place.
    pub(crate) fn line_of(&self, field_path: &str) -> Option<usize> {
        locate::locate(self.text, field_path).map(|position| position.line)
    }

    pub(crate) fn empty_file_error(&self) -> InventoryError {
        let message = "the file is empty: an inventory needs at least `cluster` and `hosts`";
        self.invalid(None, None, message.to_string())
    }

    /// Re-shapes a serde_yaml_ng error (`path: message at line L column C`) into our format.
    pub(crate) fn serde_error(&self, error: serde_yaml_ng::Error) -> InventoryError {
        let Some(location) = error.location() else {
            return self.unlocated_serde_error(error);
        };
        let position = Position {
            line: location.line(),
            column: location.column(),
        };
        let suffix = format!(" at line {} column {}", position.line, position.column);
        let text = error.to_string().replacen(&suffix, "", 1);
        let (field_path, mut message) = self.split_field_path(&text);
        if field_path.is_none() && locate::is_malformed(self.text) {
            message = format!("syntax error: {message}{}", self.tab_hint(position));
        }
        self.invalid(Some(position), field_path, message)
    }

    /// libyaml's message for a tab is "found character that cannot start any token"; say what it is.
    fn tab_hint(&self, position: Position) -> &'static str {
        let character = self
            .text
            .lines()
            .nth(position.line.saturating_sub(1))
            .and_then(|line| line.chars().nth(position.column.saturating_sub(1)));
        match character {
            Some('\t') => " (a tab: YAML indents with spaces only)",
            _ => "",
        }
    }

    /// serde_yaml_ng gives no position for a stream of several documents; find the second one.
    fn unlocated_serde_error(&self, error: serde_yaml_ng::Error) -> InventoryError {
        match locate::second_document_start(self.text) {
            Some(position) => self.invalid(
                Some(position),
                None,
                "an inventory is a single YAML document, but a second one starts here".to_string(),
            ),
            None => self.invalid(None, None, error.to_string()),
        }
    }

    /// Splits `hosts[0].memory_mib: must be ...` into path and message. A message may itself
    /// contain ": ", and a key may too, so the longest prefix that names a node of the document wins.
    fn split_field_path(&self, text: &str) -> (Option<String>, String) {
        let candidates: Vec<&str> = text
            .match_indices(": ")
            .map(|(at, _)| &text[..at])
            .filter(|prefix| starts_with_top_level_key(prefix))
            .collect();
        let located = candidates
            .iter()
            .rev()
            .find(|prefix| locate::locate(self.text, prefix).is_some());
        match located.or(candidates.first()) {
            Some(path) => (Some(path.to_string()), text[path.len() + 2..].to_string()),
            None => (None, text.to_string()),
        }
    }

    /// Without a known position the error points at line 1, the document as a whole.
    fn invalid(
        &self,
        position: Option<Position>,
        field_path: Option<String>,
        message: String,
    ) -> InventoryError {
        InventoryError::Invalid {
            source_name: self.name.to_string(),
            line: position.map_or(1, |position| position.line),
            column: position.map(|position| position.column),
            field_path,
            message,
        }
    }
}

fn starts_with_top_level_key(prefix: &str) -> bool {
    TOP_LEVEL_KEYS.iter().any(|key| {
        prefix
            .strip_prefix(key)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    })
}
