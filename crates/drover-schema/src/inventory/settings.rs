//! `cluster.settings`: the platform settings that block a roll (XenServer's Rolling Pool Upgrade
//! prechecks: HA, WLB, a VM's CD/DVD), as `drover discover` observed them or as the simulated
//! platform starts with them. Each entry is `{setting: ha-enabled}` or, for a setting about one
//! VM, `{setting: vm-media-inserted, vm: web-01}`. oVirt's `scheduling-policy` and KubeVirt's
//! `workload-update-methods` are not names of the file format: a run reads them from the
//! platform, and `drover discover` leaves them out.
//!
//! The serde types check the shape; `into_settings` checks the rules that need the VMs (a VM
//! setting names a known VM, a pool setting names none, no entry twice) and places every
//! refusal on its field path. Knows nothing of how drivers resolve settings.

use std::collections::HashSet;

use drover_core::{PlatformSetting, SettingKind};
use serde::{Deserialize, Serialize};

use super::error::InventoryError;
use super::source::Source;
use super::value_checks::unknown_name_message;

/// One blocking setting that is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a setting mapping such as {setting: ha-enabled} or {setting: vm-media-inserted, vm: web-01}"
)]
pub struct SettingEntry {
    pub setting: SettingName,
    /// The VM the setting is about; only for `vm-media-inserted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
}

/// The setting names of the file format (the core's [`SettingKind`] names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettingName {
    /// The pool's high availability is enabled.
    HaEnabled,
    /// Workload balancing is enabled.
    WlbEnabled,
    /// `vm`: the VM's CD/DVD drive holds media.
    VmMediaInserted,
}

impl SettingName {
    fn kind(self) -> SettingKind {
        match self {
            SettingName::HaEnabled => SettingKind::HaEnabled,
            SettingName::WlbEnabled => SettingKind::WlbEnabled,
            SettingName::VmMediaInserted => SettingKind::VmMediaInserted,
        }
    }

    /// The file's name of a kind; `None` for oVirt's scheduling policy and KubeVirt's workload
    /// update methods, which a run reads from the platform every time and inventories do not
    /// name.
    fn of(kind: SettingKind) -> Option<SettingName> {
        match kind {
            SettingKind::HaEnabled => Some(SettingName::HaEnabled),
            SettingKind::WlbEnabled => Some(SettingName::WlbEnabled),
            SettingKind::VmMediaInserted => Some(SettingName::VmMediaInserted),
            SettingKind::SchedulingPolicy
            | SettingKind::ClusterUpgradeUnmarked
            | SettingKind::WorkloadUpdateMethods
            | SettingKind::MachineConfigPoolUnpaused => None,
        }
    }
}

/// The entry `drover discover` writes for an observed setting (none for a setting the file
/// format does not name).
pub(crate) fn setting_entry(setting: &PlatformSetting) -> Option<SettingEntry> {
    Some(SettingEntry {
        setting: SettingName::of(setting.kind)?,
        vm: setting.vm.clone(),
    })
}

/// The core's settings, once every entry names what its kind needs.
/// `vm_names`: the inventory's VMs.
pub(crate) fn into_settings(
    entries: &[SettingEntry],
    vm_names: &[&str],
    source: &Source,
) -> Result<Vec<PlatformSetting>, InventoryError> {
    let mut seen = HashSet::new();
    let mut settings = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let kind = entry.setting.kind();
        let path = format!("cluster.settings[{index}]");
        match (&entry.vm, kind.is_about_a_vm()) {
            (None, true) => {
                let message = format!("setting `{}` needs `vm`: the VM it is about", kind.name());
                return Err(source.error_at(&path, message));
            }
            (Some(_), false) => {
                let message = format!(
                    "does not apply to setting `{}`, which is about the whole pool",
                    kind.name()
                );
                return Err(source.error_at(&format!("{path}.vm"), message));
            }
            (Some(vm), true) if !vm_names.contains(&vm.as_str()) => {
                let message = unknown_name_message("VM", "VMs", vm, vm_names.iter().copied());
                return Err(source.error_at(&format!("{path}.vm"), message));
            }
            _ => {}
        }
        let setting = PlatformSetting {
            kind,
            vm: entry.vm.clone(),
        };
        if !seen.insert(setting.clone()) {
            let message = format!("setting {} is listed twice", setting.label());
            return Err(source.error_at(&path, message));
        }
        settings.push(setting);
    }
    Ok(settings)
}
