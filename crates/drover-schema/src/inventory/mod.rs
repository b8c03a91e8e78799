//! Inventory files in (YAML, or JSON, which is YAML too) and back out.
//!
//! Reading is three steps: serde_yaml_ng checks the shape and the form of every value (unknown
//! keys, types, signs, enum values, versions), `validate` checks the rules that span values
//! (names, references, capacity) and builds the core [`Cluster`], and every refusal names the
//! file, line, column and field path. This module knows the file format and the core model; it
//! knows nothing of planning, and reads no file other than the one it is given.

mod error;
mod fields;
mod locate;
mod schema;
mod source;
mod validate;
mod write;

use std::path::Path;

use drover_core::Cluster;

pub use error::InventoryError;
pub use schema::{ClusterSection, HostEntry, InventoryDocument, PolicySection, VmEntry};

use source::Source;

/// Reads and parses the inventory file at `path`; the file name in errors is `path` as given.
pub fn load_inventory(path: &Path) -> Result<Cluster, InventoryError> {
    let source_name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_inventory(&text, &source_name),
        Err(cause) => Err(InventoryError::Unreadable { source_name, cause }),
    }
}

/// Parses an inventory held in memory; `source_name` is the file name shown in errors.
pub fn parse_inventory(text: &str, source_name: &str) -> Result<Cluster, InventoryError> {
    let source = Source {
        name: source_name,
        text,
    };
    if is_blank(text) {
        return Err(source.empty_file_error());
    }
    let document: InventoryDocument =
        serde_yaml_ng::from_str(text).map_err(|error| source.serde_error(error))?;
    validate::into_cluster(document, &source)
}

/// `cluster` as inventory YAML that [`parse_inventory`] reads back to an equal cluster.
pub fn inventory_to_yaml(cluster: &Cluster) -> String {
    serde_yaml_ng::to_string(&InventoryDocument::from_cluster(cluster))
        .expect("an inventory document holds only strings, numbers, booleans and string maps")
}

/// Only whitespace and comments: serde_yaml_ng would report a confusing "missing field".
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}
