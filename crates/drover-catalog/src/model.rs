//! The catalog as the rest of the crate sees it: releases, hotfixes and channels, already
//! checked.
//!
//! A [`Catalog`] only comes out of [`crate::parse_catalog`], so every one in hand satisfies the
//! catalog rules (unique versions and ids, known channels and hotfixes, upgrade edges that go
//! up, no supersedence or prerequisite cycles). This module knows no file format and no
//! solver; it answers lookups.

use drover_core::Version;

use crate::id_set::IdSet;
use crate::pattern::VersionPattern;

/// One release of the product: a version hosts can be upgraded to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// The version hosts run once this release is installed.
    pub version: Version,
    /// The channels that offer this release. A release in no channel is only reachable when no
    /// channel is asked for.
    pub channels: Vec<String>,
    /// Whether reaching this release needs a host reboot.
    pub reboot_required: bool,
    /// Whether that reboot may wait when another hop follows in the same maintenance window
    /// (OpenShift pauses worker pools to reboot once).
    pub reboot_deferrable: bool,
    /// The versions this release may be installed from directly. Only versions older than the
    /// release match, so `4.14.*` on release 4.14.9 accepts 4.14.0 to 4.14.8.
    pub upgrade_from: Vec<VersionPattern>,
    /// The oldest control plane (manager, management nodes) that may run compute hosts at
    /// this release, when there is such a floor.
    pub requires_control_plane: Option<Version>,
    /// The cluster compatibility levels this release supports, as written.
    pub compatibility_levels: Vec<Version>,
}

impl Release {
    /// Whether this release belongs to `channel`; `None` asks for every release.
    pub fn is_in_channel(&self, channel: Option<&str>) -> bool {
        channel.is_none_or(|channel| self.channels.iter().any(|name| name == channel))
    }

    /// Whether a host running `running` may install this release directly.
    pub fn is_installable_from(&self, running: &Version) -> bool {
        *running < self.version
            && self
                .upgrade_from
                .iter()
                .any(|pattern| pattern.matches(running))
    }
}

/// One hotfix: a fix installed on top of a release, without changing its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hotfix {
    /// The vendor's id (`XS81E001`, `HF-1403`), unique in the catalog.
    pub id: String,
    /// The releases this hotfix may be installed on.
    pub applies_to: Vec<VersionPattern>,
    /// The hotfixes this one replaces: installing it makes them unnecessary.
    pub supersedes: Vec<String>,
    /// The hotfixes that must be installed first (or a hotfix that supersedes them).
    pub requires: Vec<String>,
    /// Whether installing it needs a host reboot.
    pub reboot_required: bool,
}

impl Hotfix {
    /// Whether this hotfix may be installed on a host running `release`.
    pub fn applies_to_release(&self, release: &Version) -> bool {
        self.applies_to
            .iter()
            .any(|pattern| pattern.matches(release))
    }
}

/// A checked release catalog of one product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    product: String,
    channels: Vec<String>,
    /// Ascending by version, no two equal.
    releases: Vec<Release>,
    /// Ascending by id, no two equal.
    hotfixes: Vec<Hotfix>,
    /// For each hotfix (same index), every hotfix it supersedes, directly or through others.
    superseded_closures: Vec<IdSet>,
}

impl Catalog {
    /// Assembles a catalog from parts that `catalog::validate` has already checked and sorted.
    pub(crate) fn from_checked_parts(
        product: String,
        channels: Vec<String>,
        releases: Vec<Release>,
        hotfixes: Vec<Hotfix>,
        superseded_closures: Vec<IdSet>,
    ) -> Catalog {
        Catalog {
            product,
            channels,
            releases,
            hotfixes,
            superseded_closures,
        }
    }

    /// The product the catalog describes.
    pub fn product(&self) -> &str {
        &self.product
    }

    /// The channels the catalog declares, in the order written.
    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    /// Whether the catalog declares `channel`.
    pub fn has_channel(&self, channel: &str) -> bool {
        self.channels.iter().any(|name| name == channel)
    }

    /// Every release, oldest first.
    pub fn releases(&self) -> &[Release] {
        &self.releases
    }

    /// Every hotfix, by id.
    pub fn hotfixes(&self) -> &[Hotfix] {
        &self.hotfixes
    }

    /// The release equal to `version` (`8.2` finds `8.2.0`).
    pub fn release(&self, version: &Version) -> Option<&Release> {
        self.releases
            .binary_search_by(|release| release.version.cmp(version))
            .ok()
            .map(|index| &self.releases[index])
    }

    /// The hotfix with this id.
    pub fn hotfix(&self, id: &str) -> Option<&Hotfix> {
        self.hotfix_index(id).map(|index| &self.hotfixes[index])
    }

    pub(crate) fn hotfix_index(&self, id: &str) -> Option<usize> {
        self.hotfixes
            .binary_search_by(|hotfix| hotfix.id.as_str().cmp(id))
            .ok()
    }

    /// Every hotfix that the hotfix at `index` supersedes, directly or transitively.
    pub(crate) fn superseded_by(&self, index: usize) -> &IdSet {
        &self.superseded_closures[index]
    }

    /// Whether the hotfix named `superseding` supersedes `superseded`, directly or transitively.
    pub fn supersedes(&self, superseding: &str, superseded: &str) -> bool {
        match (
            self.hotfix_index(superseding),
            self.hotfix_index(superseded),
        ) {
            (Some(superseding), Some(superseded)) => {
                self.superseded_closures[superseding].contains(superseded)
            }
            _ => false,
        }
    }
}
