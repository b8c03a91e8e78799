//! Inventory files in (YAML, or JSON, which is YAML too) and back out.
//!
//! Reading is three steps: the serde types check the shape and the form of every value (unknown
//! keys, types, signs, enum values, versions, maintenance windows) — read by serde_json for JSON,
//! by `fast_read` for plain YAML, and by serde_yaml_ng, which words and places every refusal,
//! for whatever those decline — then `validate`, `upgrade_check`
//! and `driver_check` check the rules that span values (names, references, capacity, limits, the
//! time zone, faults naming VMs and hosts) and build the core [`Cluster`] and the
//! [`DriverSection`], and every refusal names the file, line, column and field path. This module
//! knows the file format and the core model; it knows nothing of planning or of how drivers work,
//! and reads no file other than the one it is given.

mod driver;
mod driver_check;
mod driver_tag;
mod error;
mod fast_read;
#[cfg(test)]
mod fast_read_tests;
mod fields;
mod schema;
mod settings;
mod source;
mod upgrade;
mod upgrade_check;
mod validate;
mod value_checks;
mod window;
mod write;

use std::path::Path;

use drover_core::Cluster;

pub use driver::{
    CloudstackSection, CommandSection, CommandStep, DriverSection, FaultEntry, FaultName,
    GanetiSection, KubevirtNodeUpdate, KubevirtSection, LibvirtHost, LibvirtSection,
    OpenstackSection, OvirtSection, RandomFaults, SimulatorSection, StepName, XapiSection,
    XapiTransport,
};
pub use error::InventoryError;
pub use schema::{ClusterSection, HostEntry, InventoryDocument, PolicySection, VmEntry};
pub use settings::{SettingEntry, SettingName};
pub use upgrade::{CheckFormat, UpgradeSection};
pub use validate::policy_from_record;
pub use window::maintenance_window_text;

use source::Source;

/// Deepest nesting of mappings and sequences accepted (an inventory needs five: the document,
/// `driver`, `commands`, a step's argv list; generous on purpose). Checked before parsing.
pub const MAX_INVENTORY_NESTING_DEPTH: usize = 64;

/// A YAML or JSON text that nests deeper than [`MAX_INVENTORY_NESTING_DEPTH`] (where, as
/// `line:column`), for other files read with serde_yaml_ng such as `drover serve`'s config.
pub fn nesting_too_deep(text: &str) -> Option<String> {
    drover_yaml::nesting_deeper_than_bounded(text, MAX_INVENTORY_NESTING_DEPTH).map(|position| {
        format!(
            "{}:{}: mappings and sequences nest deeper than {MAX_INVENTORY_NESTING_DEPTH} levels",
            position.line, position.column
        )
    })
}

/// A parsed inventory file: the cluster, the driver that will act on it, and the text it was
/// read from (kept so that a run can record exactly what it was started with).
#[derive(Clone, Debug, PartialEq)]
pub struct InventoryFile {
    pub cluster: Cluster,
    /// The `driver:` section, or the default simulator when the file has none.
    pub driver: DriverSection,
    /// The `upgrade:` section (empty when the file has none).
    pub upgrade: UpgradeSection,
    pub source_text: String,
}

/// Reads and parses the inventory file at `path`, returning the cluster only.
pub fn load_inventory(path: &Path) -> Result<Cluster, InventoryError> {
    load_inventory_file(path).map(|file| file.cluster)
}

/// Parses an inventory held in memory, returning the cluster only; `source_name` is the file
/// name shown in errors. The `driver:` section is checked all the same.
pub fn parse_inventory(text: &str, source_name: &str) -> Result<Cluster, InventoryError> {
    read_inventory(text, source_name).map(|(cluster, _, _)| cluster)
}

/// Reads and parses the inventory file at `path`; the file name in errors is `path` as given.
/// A relative simulator `state_file` is made relative to the file's directory.
pub fn load_inventory_file(path: &Path) -> Result<InventoryFile, InventoryError> {
    let source_name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(cause) => return Err(InventoryError::Unreadable { source_name, cause }),
    };
    let (cluster, driver, upgrade) = read_inventory(&text, &source_name)?;
    // The text read is kept as it is: copying it would cost as much again as reading it.
    let mut file = InventoryFile {
        cluster,
        driver,
        upgrade,
        source_text: text,
    };
    let directory = path.parent().unwrap_or(Path::new(""));
    resolve_state_file(&mut file.driver, directory);
    if let Some(catalog) = &mut file.upgrade.catalog {
        // `join` keeps an absolute path as it is.
        *catalog = directory.join(&*catalog).display().to_string();
    }
    Ok(file)
}

/// Parses an inventory held in memory with its driver section; `source_name` is the file name
/// shown in errors. Paths in the driver section are kept as written.
pub fn parse_inventory_file(
    text: &str,
    source_name: &str,
) -> Result<InventoryFile, InventoryError> {
    let (cluster, driver, upgrade) = read_inventory(text, source_name)?;
    Ok(InventoryFile {
        cluster,
        driver,
        upgrade,
        source_text: text.to_string(),
    })
}

/// `cluster` as inventory YAML that [`parse_inventory`] reads back to an equal cluster.
pub fn inventory_to_yaml(cluster: &Cluster) -> String {
    serde_yaml_ng::to_string(&InventoryDocument::from_cluster(cluster))
        .expect("an inventory document holds only strings, numbers, booleans and string maps")
}

fn read_inventory(
    text: &str,
    source_name: &str,
) -> Result<(Cluster, DriverSection, UpgradeSection), InventoryError> {
    let source = Source::new(source_name, text);
    if is_blank(text) {
        return Err(source.empty_file_error());
    }
    // The fast reader declines what nests too deep, so the depth check (which keeps serde_yaml_ng
    // away from its quadratic cases) runs only before the slower readers.
    let fast = match looks_like_json(text) {
        true => read_json_fast(text),
        false => fast_read::read_yaml_fast(text, None),
    };
    let mut document = match fast {
        Some(document) => document,
        None => {
            if let Some(error) = source.nesting_error(MAX_INVENTORY_NESTING_DEPTH) {
                return Err(error);
            }
            match read_as_json(text) {
                Some(document) => document,
                None => serde_yaml_ng::from_str(text).map_err(|error| source.serde_error(error))?,
            }
        }
    };
    let driver = document.driver.take().unwrap_or_default();
    let upgrade = std::mem::take(&mut document.upgrade);
    upgrade_check::check_upgrade(&upgrade, &document.hosts, &source)?;
    let cluster = validate::into_cluster(document, &source)?;
    driver_check::check_driver(&driver, &cluster, &source)?;
    Ok((cluster, driver, upgrade))
}

/// A text that looks like JSON is read with serde_json first: serde_yaml_ng reads JSON (flow
/// YAML) several times slower. The same serde types check it, so the result is the same; when
/// serde_json refuses the text, serde_yaml_ng reads it again, so every error keeps its YAML
/// wording and its file:line:column and field path.
fn read_as_json(text: &str) -> Option<InventoryDocument> {
    if !looks_like_json(text) {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// JSON read by serde_json before the nesting check, which costs a tenth of the whole read on a
/// big file: kept only when the text nests no deeper than the check allows (a cheap scan of
/// valid JSON), so whatever the check would refuse still goes the slow way and gets its message.
fn read_json_fast(text: &str) -> Option<InventoryDocument> {
    let document = serde_json::from_str(text).ok()?;
    json_nesting_within(text, MAX_INVENTORY_NESTING_DEPTH).then_some(document)
}

/// Whether arrays and objects in `text`, which serde_json has read as valid JSON, nest at most
/// `limit` deep. In valid JSON a bracket outside a string always opens or closes a collection.
fn json_nesting_within(text: &str, limit: usize) -> bool {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => {
                // Past the closing quote: a backslash escapes the byte after it.
                index += 1;
                while index < bytes.len() && bytes[index] != b'"' {
                    index += if bytes[index] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        index += 1;
    }
    true
}

fn looks_like_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

fn resolve_state_file(driver: &mut DriverSection, inventory_directory: &Path) {
    if let DriverSection::Simulator(simulator) = driver {
        if let Some(state_file) = &mut simulator.state_file {
            // `join` keeps an absolute path as it is.
            *state_file = inventory_directory.join(&*state_file);
        }
    }
}

/// Only whitespace and comments: serde_yaml_ng would report a confusing "missing field".
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}

#[cfg(test)]
mod json_nesting_tests {
    use super::json_nesting_within;

    #[test]
    fn brackets_in_strings_do_not_count_and_escaped_quotes_do_not_end_them() {
        assert!(json_nesting_within(r#"{"a": [[1]], "b": "[[[[{{"}"#, 3));
        assert!(!json_nesting_within(r#"{"a": [[1]], "b": "[[[[{{"}"#, 2));
        assert!(json_nesting_within(r#"{"a": "x\"[[[[", "b": "\\"}"#, 1));
        assert!(!json_nesting_within(r#"{"a": "\\", "b": [[]]}"#, 2));
    }

    #[test]
    fn a_json_inventory_deeper_than_the_limit_gets_the_nesting_message() {
        let nested = format!("{}1{}", "[".repeat(70), "]".repeat(70));
        let text = format!(
            "{{\"cluster\": {{\"name\": \"c\", \"target_version\": \"8.2.1\"}}, \"hosts\": [], \"x\": {nested}}}"
        );
        let error = super::parse_inventory(&text, "pool.json").unwrap_err();
        assert!(
            error.to_string().contains("nest deeper than 64 levels"),
            "{error}"
        );
    }
}
