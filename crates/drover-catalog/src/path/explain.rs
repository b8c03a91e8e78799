//! Why no upgrade path exists, as an error that names the missing edge: how far the running
//! version gets, what the target accepts, and which releases would bridge the gap but are
//! outside the channel.
//!
//! Only called once the solver has failed, so its extra searches cost nothing on success. It
//! knows the graph and the catalog, but not how a found path is built.

use drover_core::Version;

use super::graph::StepGraph;
use crate::error::{CatalogError, UnreachableTarget};
use crate::model::{Catalog, Release};

/// At most this many out-of-channel releases are named in the message.
const OUTSIDE_CHANNEL_NAMED: usize = 3;

pub(super) fn unreachable_error(
    catalog: &Catalog,
    graph: &StepGraph,
    target: &Release,
    channel: Option<&str>,
) -> CatalogError {
    let from = graph.running_version();
    CatalogError::Unreachable(Box::new(UnreachableTarget {
        from: from.clone(),
        to: target.version.clone(),
        channel: channel.map(str::to_string),
        newest_reachable: graph.newest_reachable().clone(),
        target_accepts_from: target.upgrade_from.iter().map(|p| p.to_string()).collect(),
        accepted_outside_channel: accepted_outside_channel(catalog, from, target, channel),
    }))
}

/// Releases the target could be installed from that the channel leaves out: the usual reason a
/// path exists in one channel and not in another.
fn accepted_outside_channel(
    catalog: &Catalog,
    from: &Version,
    target: &Release,
    channel: Option<&str>,
) -> Vec<Version> {
    if channel.is_none() {
        return Vec::new();
    }
    catalog
        .releases()
        .iter()
        .filter(|release| !release.is_in_channel(channel) && release.version > *from)
        .filter(|release| target.is_installable_from(&release.version))
        .take(OUTSIDE_CHANNEL_NAMED)
        .map(|release| release.version.clone())
        .collect()
}
