//! Upgrade paths: the shortest chain of releases from a running version to a target, each
//! installable from the one before, within a channel when one is given.
//!
//! A hop installs one release whose `upgrade_from` matches the version the host runs. Ties
//! between shortest paths go to the newer intermediate release. A path also says which hops
//! reboot when all of them are done in one maintenance window. This module knows the catalog,
//! not hosts, clusters or time.

mod explain;
mod graph;

use drover_core::Version;

use crate::error::CatalogError;
use crate::model::{Catalog, Release};
use graph::StepGraph;

/// One hop of an upgrade path: installing `release_version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeHop {
    /// The release installed by this hop.
    pub release_version: Version,
    /// Whether reaching this release needs a reboot at some point.
    pub reboot_required: bool,
    /// Whether that reboot may wait for a later hop of the same window.
    pub reboot_deferrable: bool,
    /// Whether the host reboots right after this hop when the path is done in one window.
    pub reboot_after_hop: bool,
    /// The control plane floor of this release, if any.
    pub requires_control_plane: Option<Version>,
}

/// A solved upgrade path. Only [`solve_path`] makes one, so its hops always form a chain of
/// allowed upgrades from `from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradePath {
    from: Version,
    channel: Option<String>,
    hops: Vec<UpgradeHop>,
    reboots_needed: usize,
}

impl UpgradePath {
    fn new(from: &Version, channel: Option<&str>, hops: Vec<UpgradeHop>) -> UpgradePath {
        UpgradePath {
            from: from.clone(),
            channel: channel.map(str::to_string),
            reboots_needed: hops.iter().filter(|hop| hop.reboot_after_hop).count(),
            hops,
        }
    }

    /// The version the host runs before the first hop.
    pub fn from(&self) -> &Version {
        &self.from
    }

    /// The version after the last hop (the running version when there is nothing to do).
    pub fn target(&self) -> &Version {
        self.hops
            .last()
            .map_or(&self.from, |hop| &hop.release_version)
    }

    /// The channel the path was solved in, if one was asked for.
    pub fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// The hops in the order they are installed.
    pub fn hops(&self) -> &[UpgradeHop] {
        &self.hops
    }

    /// True when the host already runs the target.
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }

    /// How many reboots the hops need when all are done in one maintenance window: deferrable
    /// reboots wait for a later hop, and the last hop reboots if any reboot is still owed.
    pub fn reboots_needed(&self) -> usize {
        self.reboots_needed
    }

    /// `8.0 → 8.1 → 8.2 (1 reboot)`.
    pub fn summary(&self) -> String {
        let mut versions = vec![self.from.to_string()];
        versions.extend(self.hops.iter().map(|hop| hop.release_version.to_string()));
        let reboots = match (self.hops.len(), self.reboots_needed) {
            (0, _) => "already there".to_string(),
            (_, 0) => "no reboot".to_string(),
            (_, 1) => "1 reboot".to_string(),
            (_, count) => format!("{count} reboots"),
        };
        format!("{} ({reboots})", versions.join(" → "))
    }
}

/// The shortest upgrade path from `from` to `to`, using only releases of `channel` when given.
///
/// Refuses an unknown channel, a target that is not a release of the catalog or channel, a
/// target older than `from`, and a target no chain of allowed upgrades leads to (naming where
/// the chain breaks). `from` need not be in the catalog: hosts may run older versions.
pub fn solve_path(
    catalog: &Catalog,
    from: &Version,
    to: &Version,
    channel: Option<&str>,
) -> Result<UpgradePath, CatalogError> {
    let target = target_release(catalog, to, channel)?;
    if from > to {
        return Err(CatalogError::Downgrade {
            from: from.clone(),
            to: to.clone(),
        });
    }
    if from == to {
        return Ok(UpgradePath::new(from, channel, Vec::new()));
    }
    let graph = StepGraph::new(catalog, from, to, channel);
    let nodes = graph
        .shortest_path()
        .ok_or_else(|| explain::unreachable_error(catalog, &graph, target, channel))?;
    let hops = with_reboots(nodes.iter().map(|node| graph.release(*node)));
    Ok(UpgradePath::new(from, channel, hops))
}

/// The release `to`, checked to be in the catalog and in `channel`.
fn target_release<'a>(
    catalog: &'a Catalog,
    to: &Version,
    channel: Option<&str>,
) -> Result<&'a Release, CatalogError> {
    if let Some(channel) = channel {
        if !catalog.has_channel(channel) {
            return Err(CatalogError::UnknownChannel {
                channel: channel.to_string(),
                known_channels: catalog.channels().to_vec(),
            });
        }
    }
    let absent = |channels_of_target: Vec<String>| CatalogError::TargetNotInCatalog {
        target: to.clone(),
        channel: channel.map(str::to_string),
        channels_of_target,
    };
    let release = catalog.release(to).ok_or_else(|| absent(Vec::new()))?;
    if !release.is_in_channel(channel) {
        return Err(absent(release.channels.clone()));
    }
    Ok(release)
}

/// The hops with their reboots placed for one maintenance window. A deferrable reboot is owed
/// until a hop that must reboot at once, or the last hop, pays it.
fn with_reboots<'a>(releases: impl ExactSizeIterator<Item = &'a Release>) -> Vec<UpgradeHop> {
    let last = releases.len().saturating_sub(1);
    let mut reboot_owed = false;
    releases
        .enumerate()
        .map(|(index, release)| {
            reboot_owed |= release.reboot_required;
            let reboots_now = reboot_owed
                && (index == last || (release.reboot_required && !release.reboot_deferrable));
            if reboots_now {
                reboot_owed = false;
            }
            UpgradeHop {
                release_version: release.version.clone(),
                reboot_required: release.reboot_required,
                reboot_deferrable: release.reboot_deferrable,
                reboot_after_hop: reboots_now,
                requires_control_plane: release.requires_control_plane.clone(),
            }
        })
        .collect()
}
