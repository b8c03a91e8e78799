//! A YAML text with its file name, turning field paths and serde_yaml_ng errors into located
//! [`Problem`]s.
//!
//! Positions come from serde_yaml_ng for its own errors and from `locate` for the checks a
//! format crate makes afterwards. This module knows the top-level keys of a format only as the
//! list it is given (to recognise field paths in serde's messages); it knows no other rule of any
//! format and no crate's error type: what a problem means is up to the caller.

use crate::locate::{self, LocatedNode, Position};

/// A problem placed in a text, ready to become a `FILE:LINE[:COL]: [field.path: ]message` error
/// of the caller's own type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub source_name: String,
    /// `None` for the document as a whole.
    pub position: Option<Position>,
    /// Where in the document, in `hosts[3].name` notation; `None` for no particular field.
    pub field_path: Option<String>,
    pub message: String,
}

impl Problem {
    /// The 1-based line; without a known position, line 1 stands for the document as a whole.
    pub fn line(&self) -> usize {
        self.position.map_or(1, |position| position.line)
    }

    /// The 1-based column, when the position is known.
    pub fn column(&self) -> Option<usize> {
        self.position.map(|position| position.column)
    }
}

/// A serde_yaml_ng error (`path: message at line L column C`) taken apart, for a format crate
/// to word before it becomes a [`Problem`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerdeErrorParts {
    pub position: Position,
    /// The field path serde named at the start of its message, if it named one.
    pub field_path: Option<String>,
    /// serde's message without the field path and without the position suffix.
    pub message: String,
}

/// The text of one file and what is needed to place problems in it.
#[derive(Clone, Copy, Debug)]
pub struct YamlSource<'a> {
    /// The file name shown in problems.
    pub name: &'a str,
    pub text: &'a str,
    /// The top-level keys of the format; every field path in a serde message starts with one.
    pub top_level_keys: &'a [&'a str],
}

impl YamlSource<'_> {
    /// A problem at `position` (`None`: the document as a whole) about `field_path`, if any.
    pub fn problem(
        &self,
        position: Option<Position>,
        field_path: Option<String>,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            source_name: self.name.to_string(),
            position,
            field_path,
            message: message.into(),
        }
    }

    /// A problem about the node at `field_path`, placed at that node (or its nearest ancestor).
    pub fn problem_at(&self, field_path: &str, message: impl Into<String>) -> Problem {
        let position = locate::locate_nearest(self.text, field_path);
        self.problem(position, Some(field_path.to_string()), message)
    }

    /// A problem placed at `position`, about no particular field.
    pub fn problem_at_position(&self, position: Position, message: impl Into<String>) -> Problem {
        self.problem(Some(position), None, message)
    }

    /// A problem about the file as a whole, placed at line 1.
    pub fn whole_file_problem(&self, message: impl Into<String>) -> Problem {
        self.problem(None, None, message)
    }

    /// The node at `field_path` in the first document, if there is one.
    pub fn locate(&self, field_path: &str) -> Option<LocatedNode> {
        locate::locate(self.text, field_path)
    }

    /// The line of the node at `field_path`, for messages that point at a second place.
    pub fn line_of(&self, field_path: &str) -> Option<usize> {
        self.locate(field_path).map(|node| node.position.line)
    }

    /// Takes a serde_yaml_ng error apart; `None` when serde gave no position (it gives none for
    /// a stream of several documents), so the caller words that case itself.
    pub fn split_serde_error(&self, error: &serde_yaml_ng::Error) -> Option<SerdeErrorParts> {
        let location = error.location()?;
        let position = Position {
            line: location.line(),
            column: location.column(),
        };
        // The position is kept apart, so it is cut from the end of the message.
        let suffix = format!(" at line {} column {}", position.line, position.column);
        let text = error.to_string().replacen(&suffix, "", 1);
        let (field_path, message) = self.split_field_path(&text);
        Some(SerdeErrorParts {
            position,
            field_path,
            message,
        })
    }

    /// libyaml's message for a tab is "found character that cannot start any token"; this says
    /// what the character is when it is a tab at `position`, and is empty otherwise.
    pub fn tab_hint(&self, position: Position) -> &'static str {
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

    /// Splits `hosts[0].memory_mib: must be ...` into path and message. A message may itself
    /// contain ": ", and a key may too, so the longest prefix that names a node of the document
    /// wins; when none does, the shortest one that looks like a path.
    fn split_field_path(&self, text: &str) -> (Option<String>, String) {
        let candidates: Vec<&str> = text
            .match_indices(": ")
            .map(|(at, _)| &text[..at])
            .filter(|prefix| self.starts_with_top_level_key(prefix))
            .collect();
        let located = candidates
            .iter()
            .rev()
            .find(|prefix| self.locate(prefix).is_some());
        match located.or(candidates.first()) {
            Some(path) => (Some(path.to_string()), text[path.len() + 2..].to_string()),
            None => (None, text.to_string()),
        }
    }

    fn starts_with_top_level_key(&self, prefix: &str) -> bool {
        self.top_level_keys.iter().any(|key| {
            prefix
                .strip_prefix(key)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const TOP_LEVEL_KEYS: [&str; 2] = ["hosts", "cluster"];

    fn source(text: &str) -> YamlSource<'_> {
        YamlSource {
            name: "inventory.yaml",
            text,
            top_level_keys: &TOP_LEVEL_KEYS,
        }
    }

    fn at(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn places_a_field_at_its_node_or_nearest_ancestor() {
        let text = "cluster: {name: a}\nhosts:\n  - name: xs01\n";
        let problem = source(text).problem_at("hosts[0].cpus", "is missing");
        assert_eq!(problem.position, Some(at(3, 5)));
        assert_eq!((problem.line(), problem.column()), (3, Some(5)));
        assert_eq!(problem.field_path.as_deref(), Some("hosts[0].cpus"));
        assert_eq!(problem.source_name, "inventory.yaml");
        let whole = source(text).whole_file_problem("empty");
        assert_eq!((whole.line(), whole.column()), (1, None));
        assert_eq!(source(text).line_of("hosts[0].name"), Some(3));
    }

    #[test]
    fn takes_a_serde_error_apart() {
        let text = "hosts:\n  - 1\n  - x\n";
        let error = serde_yaml_ng::from_str::<BTreeMap<String, Vec<u32>>>(text).unwrap_err();
        let parts = source(text).split_serde_error(&error).unwrap();
        assert_eq!(parts.position, at(3, 5));
        assert_eq!(parts.field_path.as_deref(), Some("hosts[1]"));
        assert_eq!(parts.message, "invalid type: string \"x\", expected u32");
    }

    #[test]
    fn keeps_a_message_whose_prefix_is_no_field_path() {
        let text = "other: [1, x]\n";
        let error = serde_yaml_ng::from_str::<BTreeMap<String, Vec<u32>>>(text).unwrap_err();
        let parts = source(text).split_serde_error(&error).unwrap();
        assert_eq!(parts.field_path, None);
        assert!(parts.message.starts_with("other[1]: invalid type"));
    }

    #[test]
    fn leaves_an_unlocated_serde_error_to_the_caller() {
        let text = "hosts: []\n---\ncluster: []\n";
        let error = serde_yaml_ng::from_str::<BTreeMap<String, Vec<u32>>>(text).unwrap_err();
        assert_eq!(source(text).split_serde_error(&error), None);
    }

    #[test]
    fn names_a_tab() {
        let text = "hosts:\n\t- 1\n";
        assert_eq!(
            source(text).tab_hint(at(2, 1)),
            " (a tab: YAML indents with spaces only)"
        );
        assert_eq!(source(text).tab_hint(at(1, 1)), "");
    }
}
