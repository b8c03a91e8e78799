//! Checks of one inventory value that `validate`, `upgrade_check` and `driver_check` all use:
//! a text that must not be empty, a number that must be at least 1, and the wording of an
//! unknown name (`unknown host "xs09" (hosts are xs01, xs02)`). Each refusal is placed through
//! `Source` on the field's path.
//!
//! A leaf: it knows `Source` and the error type, and nothing of the document types, the core
//! model or the order in which the rules run.

use super::error::InventoryError;
use super::source::Source;

/// At most this many names are listed when a VM or fault names an unknown host or VM.
const NAMES_LISTED: usize = 8;

/// `unknown host "xs09" (hosts are xs01, xs02)`, listing at most a few known names.
pub(crate) fn unknown_name_message<'a>(
    noun: &str,
    plural_noun: &str,
    name: &str,
    known_names: impl ExactSizeIterator<Item = &'a str>,
) -> String {
    let known_count = known_names.len();
    let mut listed: Vec<&str> = known_names.take(NAMES_LISTED).collect();
    if known_count > NAMES_LISTED {
        listed.push("...");
    }
    format!(
        "unknown {noun} {name:?} ({plural_noun} are {})",
        listed.join(", ")
    )
}

/// Refuses a text that is empty or only whitespace.
pub(crate) fn require_text(
    value: &str,
    field_path: &str,
    source: &Source,
) -> Result<(), InventoryError> {
    if value.trim().is_empty() {
        return Err(source.error_at(field_path, "must not be empty"));
    }
    Ok(())
}

/// Refuses 0, saying why the field needs at least 1.
pub(crate) fn require_positive_because(
    value: u64,
    field_path: &str,
    reason: &str,
    source: &Source,
) -> Result<(), InventoryError> {
    if value == 0 {
        let message = format!("must be at least 1, got 0 ({reason})");
        return Err(source.error_at(field_path, message));
    }
    Ok(())
}

/// The largest `memory_mib` of a host or VM: 1 EiB. Far above any machine, and low enough that
/// the planner's sums of memory over millions of hosts stay within `u64`.
pub const MAX_MEMORY_MIB: u64 = 1 << 40;

/// Refuses 0 and more than [`MAX_MEMORY_MIB`].
pub(crate) fn require_memory_mib(
    value: u64,
    field_path: &str,
    source: &Source,
) -> Result<(), InventoryError> {
    require_positive(value, field_path, source)?;
    if value > MAX_MEMORY_MIB {
        let message = format!("must be at most {MAX_MEMORY_MIB} (1 EiB), got {value}");
        return Err(source.error_at(field_path, message));
    }
    Ok(())
}

/// Refuses 0.
pub(crate) fn require_positive(
    value: u64,
    field_path: &str,
    source: &Source,
) -> Result<(), InventoryError> {
    if value == 0 {
        return Err(source.error_at(field_path, "must be at least 1, got 0"));
    }
    Ok(())
}
