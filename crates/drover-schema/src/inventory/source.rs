//! An inventory text with its file name, turning problems into located [`InventoryError`]s.
//!
//! Placing problems is `drover_yaml`'s work; this module adds what is the inventory's own: its
//! top-level keys, the wording of an empty file, of a second document and of a syntax error, and
//! the error type. It knows no other rule of the schema, and nothing of the cluster model.

use drover_yaml::{Problem, YamlSource};

use super::error::InventoryError;

/// The top-level keys of an inventory; every field path in a serde message starts with one.
const TOP_LEVEL_KEYS: [&str; 5] = ["cluster", "policy", "hosts", "vms", "driver"];

pub(crate) struct Source<'a> {
    yaml: YamlSource<'a>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(name: &'a str, text: &'a str) -> Source<'a> {
        Source {
            yaml: YamlSource {
                name,
                text,
                top_level_keys: &TOP_LEVEL_KEYS,
            },
        }
    }

    /// An error about the node at `field_path`, placed at that node (or its nearest ancestor).
    pub(crate) fn error_at(&self, field_path: &str, message: impl Into<String>) -> InventoryError {
        invalid(self.yaml.problem_at(field_path, message))
    }

    /// The line of the node at `field_path`, for messages that point at a second place.
    pub(crate) fn line_of(&self, field_path: &str) -> Option<usize> {
        self.yaml.line_of(field_path)
    }

    /// Refuses a text that nests deeper than `limit` before serde_yaml_ng reads it: its parser
    /// takes time quadratic in the depth of flow collections (`[[[…]]]`).
    pub(crate) fn nesting_error(&self, limit: usize) -> Option<InventoryError> {
        let position = drover_yaml::nesting_deeper_than_bounded(self.yaml.text, limit)?;
        let message = format!(
            "mappings and sequences nest deeper than {limit} levels here; an inventory needs five"
        );
        Some(invalid(self.yaml.problem_at_position(position, message)))
    }

    pub(crate) fn empty_file_error(&self) -> InventoryError {
        invalid(self.yaml.whole_file_problem(
            "the file is empty: an inventory needs at least `cluster` and `hosts`",
        ))
    }

    /// Re-shapes a serde_yaml_ng error (`path: message at line L column C`) into our format.
    pub(crate) fn serde_error(&self, error: serde_yaml_ng::Error) -> InventoryError {
        let Some(parts) = self.yaml.split_serde_error(&error) else {
            return self.unlocated_serde_error(error);
        };
        let mut message = parts.message;
        // A message without a field path may be the scanner's, which does not say it is one.
        if parts.field_path.is_none() && drover_yaml::is_malformed(self.yaml.text) {
            message = format!(
                "syntax error: {message}{}",
                self.yaml.tab_hint(parts.position)
            );
        }
        invalid(
            self.yaml
                .problem(Some(parts.position), parts.field_path, message),
        )
    }

    /// serde_yaml_ng gives no position for a stream of several documents; find the second one.
    fn unlocated_serde_error(&self, error: serde_yaml_ng::Error) -> InventoryError {
        invalid(match drover_yaml::second_document_start(self.yaml.text) {
            Some(position) => self.yaml.problem_at_position(
                position,
                "an inventory is a single YAML document, but a second one starts here",
            ),
            None => self.yaml.whole_file_problem(error.to_string()),
        })
    }
}

fn invalid(problem: Problem) -> InventoryError {
    InventoryError::Invalid {
        line: problem.line(),
        column: problem.column(),
        source_name: problem.source_name,
        field_path: problem.field_path,
        message: problem.message,
    }
}
