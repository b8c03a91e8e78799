//! Channel questions for the approval strategy: the newest release a channel offers, and
//! whether it is newer than the target a cluster is set to.
//!
//! Pure lookups; this module knows nothing of approvals, clusters or when to ask.

use drover_core::Version;

use crate::model::{Catalog, Release};

/// The newest release of `channel`, or `None` if the channel offers none (or is unknown).
pub fn newest_in_channel<'a>(catalog: &'a Catalog, channel: &str) -> Option<&'a Release> {
    catalog
        .releases()
        .iter()
        .rev()
        .find(|release| release.is_in_channel(Some(channel)))
}

/// The newest release of `channel` when it is newer than `current_target`, else `None`.
pub fn is_newer_available(
    catalog: &Catalog,
    channel: &str,
    current_target: &Version,
) -> Option<Version> {
    newest_in_channel(catalog, channel)
        .filter(|release| release.version > *current_target)
        .map(|release| release.version.clone())
}
