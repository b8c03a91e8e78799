//! Checks of one catalog field at a time that `validate` and `hotfix_rules` both use: an
//! identifier (channel name, hotfix id) is non-empty, bounded and free of spaces, and a list is
//! no longer than its limit. Each refusal is placed through `Source` on the field's path.
//!
//! A leaf: it knows the limits and `Source`, and nothing of releases, hotfixes, the document
//! types or the order in which the rules run.

use super::source::Source;
use crate::error::CatalogError;
use crate::limits::{MAX_LIST_ENTRIES, MAX_NAME_CHARS};

/// A channel name or hotfix id: non-empty, bounded, and free of spaces so it prints unambiguously.
pub(super) fn check_identifier(
    text: &str,
    what: &str,
    path: &str,
    source: &Source,
) -> Result<(), CatalogError> {
    let problem = if text.is_empty() {
        Some("is empty".to_string())
    } else if text.chars().count() > MAX_NAME_CHARS {
        Some(format!("is longer than {MAX_NAME_CHARS} characters"))
    } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains a space or control character".to_string())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(source.error_at(path, format!("{what} {text:?} {problem}"))),
        None => Ok(()),
    }
}

/// Refuses a list longer than `limit`, placed on the list.
pub(super) fn check_count(
    count: usize,
    limit: usize,
    path: &str,
    what: &str,
    source: &Source,
) -> Result<(), CatalogError> {
    if count > limit {
        let message = format!("{count} {what} is more than the limit of {limit}");
        return Err(source.error_at(path, message));
    }
    Ok(())
}

/// Each of an entry's lists (`path.field`) within `MAX_LIST_ENTRIES`; `subject` names the entry.
pub(super) fn check_list_lengths(
    lists: &[(&str, usize)],
    path: &str,
    subject: &str,
    source: &Source,
) -> Result<(), CatalogError> {
    for (field, count) in lists {
        let what = format!("{subject}: {field} entries");
        check_count(
            *count,
            MAX_LIST_ENTRIES,
            &format!("{path}.{field}"),
            &what,
            source,
        )?;
    }
    Ok(())
}
