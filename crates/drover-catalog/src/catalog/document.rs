//! The catalog file format as serde types: field names, defaults and the form of each value.
//!
//! Unknown keys are refused everywhere, so a misspelt `reboot_deferable` is an error rather than
//! a silently ignored setting. Versions and version patterns are read from the text as written
//! (`8.10` stays 8.10, never the float 8.1). Rules that span values (duplicates, references,
//! upgrade direction) live in `validate`; this module knows nothing of positions or messages.

use std::fmt;
use std::marker::PhantomData;

use drover_core::Version;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::pattern::VersionPattern;

/// A whole catalog file.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a catalog mapping with `catalog`, `product` and `releases` (and optional `channels`, `hotfixes`)"
)]
pub(crate) struct CatalogDocument {
    /// The format version; only 1 exists.
    pub(crate) catalog: u32,
    pub(crate) product: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) channels: Vec<String>,
    pub(crate) releases: Vec<ReleaseEntry>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) hotfixes: Vec<HotfixEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a release mapping such as {version: \"8.1\", upgrade_from: [\"8.0.*\"]}"
)]
pub(crate) struct ReleaseEntry {
    pub(crate) version: VersionText,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) channels: Vec<String>,
    /// Left out: a reboot is assumed, the safe guess for a host upgrade.
    #[serde(default = "reboot_unless_told_otherwise")]
    pub(crate) reboot_required: bool,
    #[serde(default)]
    pub(crate) reboot_deferrable: bool,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) upgrade_from: Vec<PatternText>,
    #[serde(default)]
    pub(crate) requires_control_plane: Option<VersionText>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) compatibility_levels: Vec<VersionText>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a hotfix mapping such as {id: XS81E001, applies_to: [\"8.1.*\"]}"
)]
pub(crate) struct HotfixEntry {
    pub(crate) id: String,
    pub(crate) applies_to: Vec<PatternText>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) supersedes: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) requires: Vec<String>,
    /// Left out: a reboot is assumed, as for releases.
    #[serde(default = "reboot_unless_told_otherwise")]
    pub(crate) reboot_required: bool,
}

fn reboot_unless_told_otherwise() -> bool {
    true
}

/// Reads a YAML null (`hotfixes:` with nothing after it) as the empty list, like a left-out key.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// A version read from its text.
#[derive(Debug)]
pub(crate) struct VersionText(pub(crate) Version);

/// A version pattern (`8.0` or `8.0.*`) read from its text.
#[derive(Debug)]
pub(crate) struct PatternText(pub(crate) VersionPattern);

impl<'de> Deserialize<'de> for VersionText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parse = |text: &str| {
            text.parse()
                .map(VersionText)
                .map_err(|error| format!("{error}"))
        };
        deserializer.deserialize_str(TextVisitor::new(
            "a quoted version such as \"8.2.1\"",
            parse,
        ))
    }
}

impl<'de> Deserialize<'de> for PatternText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parse = |text: &str| VersionPattern::parse(text).map(PatternText);
        deserializer.deserialize_str(TextVisitor::new(
            "a quoted version such as \"8.0\" or series such as \"8.0.*\"",
            parse,
        ))
    }
}

/// serde_yaml_ng hands an unquoted scalar to `deserialize_str` as written, so `8.10` arrives as
/// "8.10"; the parse error is raised inside the visitor so that serde places it on the value.
struct TextVisitor<T, F> {
    expecting: &'static str,
    parse: F,
    output: PhantomData<T>,
}

impl<T, F: Fn(&str) -> Result<T, String>> TextVisitor<T, F> {
    fn new(expecting: &'static str, parse: F) -> Self {
        TextVisitor {
            expecting,
            parse,
            output: PhantomData,
        }
    }
}

impl<T, F: Fn(&str) -> Result<T, String>> Visitor<'_> for TextVisitor<T, F> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        (self.parse)(text).map_err(E::custom)
    }
}
