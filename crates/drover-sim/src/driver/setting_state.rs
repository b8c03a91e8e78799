//! One blocking setting of the simulated platform as its state file keeps it: the kind's name,
//! the VM it is about, whether it is on, what turning it off saved, and how often it was turned
//! off and on. Plain data: it knows nothing of the world or of calls.

use drover_core::{PlatformSetting, SettingKind};
use serde::{Deserialize, Serialize};

/// One setting the platform has, on or off.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct PlatformSettingState {
    /// The kind's name (`ha-enabled`).
    pub setting: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
    pub on: bool,
    /// What turning it off saved (the simulated configuration to turn it on with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<String>,
    /// Times the platform turned it off, and back on.
    #[serde(default)]
    pub resolves: u32,
    #[serde(default)]
    pub restores: u32,
}

impl PlatformSettingState {
    pub fn on(setting: &PlatformSetting) -> PlatformSettingState {
        PlatformSettingState {
            setting: setting.kind.name().to_string(),
            vm: setting.vm.clone(),
            on: true,
            saved: None,
            resolves: 0,
            restores: 0,
        }
    }

    /// The core's setting, if the saved kind is one this build knows.
    pub fn setting(&self) -> Option<PlatformSetting> {
        Some(PlatformSetting {
            kind: SettingKind::from_name(&self.setting)?,
            vm: self.vm.clone(),
        })
    }
}
