//! Rules of the `upgrade:` section: its texts are not empty, the control plane version is a
//! version, installed hotfixes name hosts of the inventory, and a check command names a program.
//!
//! It reports problems by field path through `Source`, and knows nothing of YAML, of positions,
//! of catalogs or of how an update check runs.

use drover_core::Version;

use super::error::InventoryError;
use super::schema::HostEntry;
use super::source::Source;
use super::upgrade::UpgradeSection;
use super::value_checks::{require_text, unknown_name_message};

/// Texts are not empty, the control plane version is a version, and hotfixes name known hosts.
pub(crate) fn check_upgrade(
    section: &UpgradeSection,
    hosts: &[HostEntry],
    source: &Source,
) -> Result<(), InventoryError> {
    if let Some(catalog) = &section.catalog {
        require_text(catalog, "upgrade.catalog", source)?;
    }
    if let Some(channel) = &section.channel {
        require_text(channel, "upgrade.channel", source)?;
    }
    if let Some(version) = &section.control_plane_version {
        version
            .parse::<Version>()
            .map_err(|error| source.error_at("upgrade.control_plane_version", error.to_string()))?;
    }
    for host in section.installed_hotfixes.keys() {
        if !hosts.iter().any(|entry| &entry.name == host) {
            let known = hosts.iter().map(|entry| entry.name.as_str());
            let message = unknown_name_message("host", "hosts", host, known);
            return Err(source.error_at(&format!("upgrade.installed_hotfixes.{host}"), message));
        }
    }
    for (index, pattern) in section.watch_packages.iter().enumerate() {
        require_text(pattern, &format!("upgrade.watch_packages[{index}]"), source)?;
    }
    if section.check_command.first().is_some_and(|p| p.is_empty()) {
        return Err(source.error_at(
            "upgrade.check_command",
            "the first element is the program and must not be empty",
        ));
    }
    Ok(())
}
