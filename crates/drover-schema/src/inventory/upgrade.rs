//! The inventory's `upgrade:` section: what Drover needs to know what to install — the release
//! catalog file and channel, the control plane's version, the hotfixes hosts already have, and how
//! to ask a host which packages it could update (`drover check`).
//!
//! Edge types only: the core never sees them. The section's own rules (host names, versions,
//! non-empty texts) are checked by `upgrade_check`; this module knows no other section, no file
//! positions, reads no catalog and runs no command.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `upgrade:` (all optional).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as {catalog: releases.yaml, channel: stable}"
)]
pub struct UpgradeSection {
    /// The release catalog (YAML), relative to the inventory file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    /// The catalog channel the target must be in (`stable`, `eus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The version of the control plane that is not one of the hosts (oVirt's engine, PCA's
    /// management nodes upgraded separately); gates releases that require a minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_version: Option<String>,
    /// Hotfixes each host already has, by host name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub installed_hotfixes: BTreeMap<String, Vec<String>>,
    /// Packages to watch on top of Drover's system list; `*` and `?` wildcards (`qemu-*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch_packages: Vec<String>,
    /// The command that lists a host's available package updates, as an argv template
    /// (`[ssh, "{host.address}", apt, list, --upgradable]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check_command: Vec<String>,
    /// How to read the check command's output; absent: recognised from the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_format: Option<CheckFormat>,
}

/// The output format of an update check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckFormat {
    /// `apt list --upgradable`.
    Apt,
    /// `dnf check-update` / `yum check-update`.
    Dnf,
}

impl UpgradeSection {
    pub(crate) fn is_empty(&self) -> bool {
        *self == UpgradeSection::default()
    }
}
