//! A catalog text with its file name, turning problems into located [`CatalogError`]s.
//!
//! Placing problems is `drover_yaml`'s work; this module adds what is the catalog's own.
//! serde's messages name a list index (`releases[2]`); this module adds the release version or
//! hotfix id written there, so every message says which entry is wrong. It knows the top-level
//! keys of the format and where versions and ids sit, but no other rule.

use drover_yaml::{Position, Problem, YamlSource};

use crate::error::CatalogError;

/// The top-level keys of a catalog; every field path in a serde message starts with one.
const TOP_LEVEL_KEYS: [&str; 5] = ["catalog", "product", "channels", "releases", "hotfixes"];

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
    pub(crate) fn error_at(&self, field_path: &str, message: impl Into<String>) -> CatalogError {
        invalid(self.yaml.problem_at(field_path, message))
    }

    /// An error placed at `position`, about no particular field.
    pub(crate) fn error_at_position(
        &self,
        position: Position,
        message: impl Into<String>,
    ) -> CatalogError {
        invalid(self.yaml.problem_at_position(position, message))
    }

    /// An error about the file as a whole, placed at line 1.
    pub(crate) fn whole_file_error(&self, message: impl Into<String>) -> CatalogError {
        invalid(self.yaml.whole_file_problem(message))
    }

    /// The line of the node at `field_path`, for messages that point at a second place.
    pub(crate) fn line_of(&self, field_path: &str) -> Option<usize> {
        self.yaml.line_of(field_path)
    }

    /// Re-shapes a serde_yaml_ng error (`path: message at line L column C`) into our format.
    pub(crate) fn serde_error(&self, error: serde_yaml_ng::Error) -> CatalogError {
        let Some(parts) = self.yaml.split_serde_error(&error) else {
            return self.whole_file_error(format!(
                "{error} (a catalog is a single YAML or JSON document)"
            ));
        };
        let message = match parts
            .field_path
            .as_deref()
            .and_then(|path| self.entry_named_at(path))
        {
            Some(entry) => format!("{entry}: {}", parts.message),
            None => parts.message,
        };
        invalid(
            self.yaml
                .problem(Some(parts.position), parts.field_path, message),
        )
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
        let node = self.yaml.locate(&format!("{list}[{index}].{key}"))?;
        node.scalar.map(|name| format!("{kind} {name}"))
    }
}

fn invalid(problem: Problem) -> CatalogError {
    CatalogError::InvalidCatalog {
        line: problem.line(),
        column: problem.column(),
        source_name: problem.source_name,
        field_path: problem.field_path,
        message: problem.message,
    }
}
