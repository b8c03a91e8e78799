//! A catalog text with its file name, turning problems into located [`CatalogError`]s.
//!
//! Positions come from serde_yaml_ng for its own errors and from `locate` for the checks made
//! afterwards. serde's messages name a list index (`releases[2]`); this module adds the release
//! version or hotfix id written there, so every message says which entry is wrong. It knows the
//! top-level keys of the format and where versions and ids sit, but no other rule.

use super::locate::{self, Position};
use crate::error::CatalogError;

/// The top-level keys of a catalog; every field path in a serde message starts with one.
const TOP_LEVEL_KEYS: [&str; 5] = ["catalog", "product", "channels", "releases", "hotfixes"];

pub(crate) struct Source<'a> {
    pub(crate) name: &'a str,
    pub(crate) text: &'a str,
}

impl Source<'_> {
    /// An error about the node at `field_path`, placed at that node (or its nearest ancestor).
    pub(crate) fn error_at(&self, field_path: &str, message: impl Into<String>) -> CatalogError {
        let position = locate::locate_nearest(self.text, field_path);
        self.invalid(position, Some(field_path.to_string()), message.into())
    }

    /// An error placed at `position`, about no particular field.
    pub(crate) fn error_at_position(
        &self,
        position: Position,
        message: impl Into<String>,
    ) -> CatalogError {
        self.invalid(Some(position), None, message.into())
    }

    /// An error about the file as a whole, placed at line 1.
    pub(crate) fn whole_file_error(&self, message: impl Into<String>) -> CatalogError {
        self.invalid(None, None, message.into())
    }

    /// The line of the node at `field_path`, for messages that point at a second place.
    pub(crate) fn line_of(&self, field_path: &str) -> Option<usize> {
        locate::locate(self.text, field_path).map(|found| found.position.line)
    }

    /// Re-shapes a serde_yaml_ng error (`path: message at line L column C`) into our format.
    pub(crate) fn serde_error(&self, error: serde_yaml_ng::Error) -> CatalogError {
        let Some(location) = error.location() else {
            return self.whole_file_error(format!(
                "{error} (a catalog is a single YAML or JSON document)"
            ));
        };
        let position = Position {
            line: location.line(),
            column: location.column(),
        };
        let suffix = format!(" at line {} column {}", position.line, position.column);
        let text = error.to_string().replacen(&suffix, "", 1);
        let (field_path, message) = self.split_field_path(&text);
        let message = match field_path
            .as_deref()
            .and_then(|path| self.entry_named_at(path))
        {
            Some(entry) => format!("{entry}: {message}"),
            None => message,
        };
        self.invalid(Some(position), field_path, message)
    }

    /// "release 8.1" or "hotfix XS81E001" for a path inside that list entry, read from the text.
    fn entry_named_at(&self, field_path: &str) -> Option<String> {
        let (kind, key, list) = if field_path.starts_with("releases[") {
            ("release", "version", "releases")
        } else if field_path.starts_with("hotfixes[") {
            ("hotfix", "id", "hotfixes")
        } else {
            return None;
        };
        let index_end = field_path.find(']')?;
        let index = &field_path[list.len() + 1..index_end];
        let found = locate::locate(self.text, &format!("{list}[{index}].{key}"))?;
        found.scalar.map(|name| format!("{kind} {name}"))
    }

    /// Splits `releases[0].version: invalid ...` into path and message. A message may itself
    /// contain ": ", so the longest prefix that names a node of the document wins.
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
    ) -> CatalogError {
        CatalogError::InvalidCatalog {
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
