//! Knowing what to upgrade: release catalogs, upgrade paths, compatibility gates, hotfix
//! selection and package update checks.
//!
//! A release catalog (YAML or JSON, see [`parse_catalog`]) lists a product's releases, which
//! versions each may be installed from, their channels, reboots and compatibility levels, and
//! its hotfixes with their supersedence and prerequisites. From it this crate answers: which
//! chain of releases leads from a host's version to a target ([`solve_path`]), whether the
//! control plane is new enough ([`control_plane_gate`]), which cluster level every upgraded host
//! supports ([`compatibility_level_after_upgrade`]), which hotfixes to install
//! ([`select_hotfixes`]) and whether a channel offers something newer ([`is_newer_available`]).
//! It also reads what `apt list --upgradable` and `dnf check-update` print
//! ([`parse_apt_upgradable`], [`parse_dnf_check_update`]) and filters it by a [`WatchList`].
//!
//! Invariants: no IO beyond parsing the text it is given (no files, no clock, no processes);
//! every function is a deterministic function of its arguments; every input is bounded (see
//! [`limits`]) and every refusal names the release, hotfix, channel or line involved. This crate
//! knows nothing of clusters, hosts, plans or drivers: callers pass versions and text in.
//!
//! A catalog looks like this (every key is described on the field it fills, in [`Release`] and
//! [`Hotfix`]):
//!
//! ```yaml
//! catalog: 1                    # format version; only 1 exists
//! product: example-hypervisor
//! channels: [stable, eus]
//! releases:
//!   - version: "8.1"
//!     channels: [stable, eus]
//!     reboot_required: true     # default true
//!     reboot_deferrable: false  # default false
//!     upgrade_from: ["8.0", "8.0.*"]
//!     requires_control_plane: "5.2"
//!     compatibility_levels: ["4.7", "4.8"]
//! hotfixes:
//!   - id: XS81E001
//!     applies_to: ["8.1", "8.1.*"]
//!     supersedes: []
//!     requires: []
//!     reboot_required: false    # default true
//! ```

#![warn(missing_docs)]

mod catalog;
mod channel;
mod error;
mod gate;
mod hotfix;
mod hotfix_graph;
mod id_set;
pub mod limits;
mod model;
mod path;
mod pattern;
mod updates;

pub use catalog::parse_catalog;
pub use channel::{is_newer_available, newest_in_channel};
pub use error::{CatalogError, ControlPlaneShortfall, GateError, PathError, UnreachableTarget};
pub use gate::{compatibility_level_after_upgrade, control_plane_gate, GateSubject};
pub use hotfix::{select_hotfixes, HotfixReason, HotfixSelection};
pub use model::{Catalog, Hotfix, Release};
pub use path::{solve_path, UpgradeHop, UpgradePath};
pub use pattern::VersionPattern;
pub use updates::{
    parse_apt_upgradable, parse_dnf_check_update, updates_available, watched_updates,
    PackageUpdate, WatchList, DEFAULT_SYSTEM_WATCH_PATTERNS,
};
