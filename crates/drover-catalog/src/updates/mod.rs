//! Package update checks: parsing what `apt list --upgradable` and `dnf`/`yum check-update`
//! print, and picking out the updates a watch list cares about.
//!
//! The commands are run elsewhere (by a command driver); this module only reads their standard
//! output as text. Unknown lines are refused rather than skipped, because a silently skipped
//! line could hide an update. It knows nothing of releases, hosts or how commands are run.

mod apt;
mod dnf;
mod watch;

pub use apt::parse_apt_upgradable;
pub use dnf::parse_dnf_check_update;
pub use watch::{WatchList, DEFAULT_SYSTEM_WATCH_PATTERNS};

use crate::error::CatalogError;
use crate::limits::MAX_UPDATE_OUTPUT_BYTES;

/// One package that has a newer version available.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageUpdate {
    /// The package name, without architecture (`qemu-kvm-core`).
    pub name: String,
    /// The architecture (`x86_64`, `amd64`, `noarch`, `all`).
    pub arch: String,
    /// The version that would be installed, as the package manager printed it
    /// (`1:2.06-70.el9_3.1`, `9.0.0-4+deb12u2`).
    pub available_version: String,
    /// The installed version, when the output shows it (apt does, dnf does not).
    pub current_version: Option<String>,
    /// Where the update comes from: apt's suites (`stable-security`), dnf's repository id.
    pub source: String,
    /// Installed packages this update replaces (dnf's "Obsoleting Packages"), as `name.arch`.
    pub obsoletes: Vec<String>,
}

/// The updates of `updates` whose package, or a package it obsoletes, is on the watch list.
pub fn watched_updates<'a>(
    updates: &'a [PackageUpdate],
    watch_list: &WatchList,
) -> Vec<&'a PackageUpdate> {
    updates
        .iter()
        .filter(|update| {
            watch_list.matches(&update.name)
                || update
                    .obsoletes
                    .iter()
                    .any(|obsoleted| watch_list.matches(package_name_of(obsoleted)))
        })
        .collect()
}

/// Whether any update of `updates` is on the watch list: the "upgrade available" signal.
pub fn updates_available(updates: &[PackageUpdate], watch_list: &WatchList) -> bool {
    !watched_updates(updates, watch_list).is_empty()
}

/// `kernel-core.x86_64` → `kernel-core`.
fn package_name_of(name_and_arch: &str) -> &str {
    name_and_arch
        .rsplit_once('.')
        .map_or(name_and_arch, |(name, _)| name)
}

/// Refuses output larger than the parsing limit before any line is read.
fn check_output_size(text: &str, format: &'static str) -> Result<(), CatalogError> {
    if text.len() > MAX_UPDATE_OUTPUT_BYTES {
        return Err(CatalogError::InputTooLarge {
            what: format,
            count: text.len(),
            limit: MAX_UPDATE_OUTPUT_BYTES,
        });
    }
    Ok(())
}

fn unparsable(format: &'static str, line_number: usize, line: &str, reason: &str) -> CatalogError {
    CatalogError::UnparsableUpdateOutput {
        format,
        line_number,
        line: line.to_string(),
        reason: reason.to_string(),
    }
}
