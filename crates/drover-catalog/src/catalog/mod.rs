//! Release catalogs in (YAML, or JSON, which is YAML too): parsing and checking.
//!
//! Reading is two steps: serde_yaml_ng checks the shape and the form of every value (unknown
//! keys, types, versions, version patterns), then `validate` and `hotfix_rules` check the rules
//! that span values and build the [`Catalog`]. Every refusal names the file, line, column, field
//! path and the release or hotfix involved. This module reads only the text it is given: no
//! files, no network. It knows nothing of path solving or hotfix selection.

mod document;
mod field_checks;
mod hotfix_rules;
mod source;
mod validate;

use source::Source;

use crate::error::CatalogError;
use crate::limits::{MAX_CATALOG_NESTING_DEPTH, MAX_CATALOG_TEXT_BYTES};
use crate::model::Catalog;

/// Parses and checks a catalog held in memory; `source_name` is the file name shown in errors.
/// Either the whole catalog is accepted or none of it.
pub fn parse_catalog(text: &str, source_name: &str) -> Result<Catalog, CatalogError> {
    let source = Source::new(source_name, text);
    if text.len() > MAX_CATALOG_TEXT_BYTES {
        return Err(source.whole_file_error(format!(
            "the catalog is {} bytes, more than the limit of {MAX_CATALOG_TEXT_BYTES}",
            text.len()
        )));
    }
    if is_blank(text) {
        return Err(source.whole_file_error(
            "the file is empty: a catalog needs at least `catalog`, `product` and `releases`",
        ));
    }
    if let Some(position) = drover_yaml::nesting_deeper_than(text, MAX_CATALOG_NESTING_DEPTH) {
        let message = format!(
            "mappings and sequences nest deeper than {MAX_CATALOG_NESTING_DEPTH} levels here; a catalog needs four"
        );
        return Err(source.error_at_position(position, message));
    }
    let document = serde_yaml_ng::from_str(text).map_err(|error| source.serde_error(error))?;
    validate::into_catalog(document, &source)
}

/// Only whitespace and comments: serde_yaml_ng would report a confusing "missing field".
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}
