//! Compatibility gates: whether the control plane is new enough for the releases a path
//! installs, and which cluster compatibility level every host supports once upgraded.
//!
//! Both are pure lookups in the catalog. This module knows nothing of how the control plane
//! version is found, nor of when a cluster level is actually raised: the caller decides.

use drover_core::Version;

use crate::error::{CatalogError, ControlPlaneShortfall};
use crate::model::{Catalog, Release};
use crate::path::UpgradePath;

/// What a gate is checked for: every release a path installs, or one target release.
#[derive(Clone, Copy, Debug)]
pub enum GateSubject<'a> {
    /// Every release the path installs; the highest requirement among them counts.
    Path(&'a UpgradePath),
    /// One release, which must be in the catalog.
    Target(&'a Version),
}

impl<'a> From<&'a UpgradePath> for GateSubject<'a> {
    fn from(path: &'a UpgradePath) -> Self {
        GateSubject::Path(path)
    }
}

impl<'a> From<&'a Version> for GateSubject<'a> {
    fn from(target: &'a Version) -> Self {
        GateSubject::Target(target)
    }
}

/// Refuses when a release of the subject needs a newer control plane than
/// `control_plane_version`, or needs one at all while that version is unknown. The highest
/// requirement along a path is the one checked, and the error names its release.
pub fn control_plane_gate<'a>(
    catalog: &Catalog,
    subject: impl Into<GateSubject<'a>>,
    control_plane_version: Option<&Version>,
) -> Result<(), CatalogError> {
    let releases = subject_releases(catalog, subject.into())?;
    let strictest = releases
        .iter()
        .filter_map(|release| Some((*release, release.requires_control_plane.as_ref()?)))
        .reduce(|strictest, candidate| {
            if candidate.1 > strictest.1 {
                candidate
            } else {
                strictest
            }
        });
    let Some((release, required)) = strictest else {
        return Ok(());
    };
    match control_plane_version {
        None => Err(CatalogError::ControlPlaneVersionUnknown {
            release: release.version.clone(),
            required: required.clone(),
        }),
        Some(running) if running < required => Err(CatalogError::ControlPlaneTooOld(Box::new(
            ControlPlaneShortfall {
                release: release.version.clone(),
                required: required.clone(),
                control_plane: running.clone(),
            },
        ))),
        Some(_) => Ok(()),
    }
}

/// The catalog releases a subject installs. A path's hops are looked up again so that a path
/// solved against another catalog cannot slip past this one's requirements.
fn subject_releases<'c>(
    catalog: &'c Catalog,
    subject: GateSubject,
) -> Result<Vec<&'c Release>, CatalogError> {
    let versions: Vec<&Version> = match subject {
        GateSubject::Path(path) => path.hops().iter().map(|hop| &hop.release_version).collect(),
        GateSubject::Target(target) => vec![target],
    };
    versions
        .into_iter()
        .map(|version| {
            catalog
                .release(version)
                .ok_or_else(|| CatalogError::ReleaseNotInCatalog {
                    version: version.clone(),
                })
        })
        .collect()
}

/// The highest cluster compatibility level that the releases of all `host_versions` support,
/// as written in the catalog: the level oVirt raises a cluster to once every host is upgraded.
/// `None` when there are no hosts, a host runs a version the catalog does not list (its levels
/// are unknown), or the hosts share no level. Levels compare as versions (`4.10` > `4.9`).
pub fn compatibility_level_after_upgrade(
    catalog: &Catalog,
    host_versions: &[Version],
) -> Option<String> {
    let mut distinct: Vec<&Version> = host_versions.iter().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let (first, others) = distinct.split_first()?;
    let mut common: Vec<&Version> = catalog
        .release(first)?
        .compatibility_levels
        .iter()
        .collect();
    for version in others {
        let supported = &catalog.release(version)?.compatibility_levels;
        common.retain(|level| supported.contains(level));
    }
    common.into_iter().max().map(|level| level.to_string())
}
