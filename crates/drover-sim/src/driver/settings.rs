//! The simulated platform's blocking settings (HA, WLB, a VM's CD/DVD): which are on, what
//! turning one off saved, and how often each was turned off and back on, so that tests and the
//! DST checker can see that Drover put back exactly what it changed, once.
//!
//! Resolving is immediate (a pool-wide switch, not an operation that takes time) and idempotent:
//! a setting already off answers what was saved when it was turned off, as a real platform's
//! driver must, so a resolve re-issued after a crash gets the same answer. `setting-resolve-fails`
//! faults refuse resolves. Knows nothing of the engine or the journal.

use drover_core::PlatformSetting;
use drover_driver::DriverError;

use super::faults::FaultKind;
use super::setting_state::PlatformSettingState;
use super::snapshot::{HistoryEventKind, SettingSnapshot};
use super::world::SimWorld;

impl SimWorld {
    fn setting_index(&self, setting: &PlatformSetting) -> Option<usize> {
        self.state
            .settings
            .iter()
            .position(|s| s.setting.as_str() == setting.kind.name() && s.vm == setting.vm)
    }

    /// The settings that are on, as discovery reports them.
    pub fn settings_on(&self) -> Vec<PlatformSetting> {
        self.state
            .settings
            .iter()
            .filter(|s| s.on)
            .filter_map(PlatformSettingState::setting)
            .collect()
    }

    /// Turns a setting off and answers what was saved; a setting already off (or one the
    /// platform never had) answers at once.
    pub fn resolve_setting(
        &mut self,
        setting: &PlatformSetting,
        now_ms: u64,
    ) -> Result<String, DriverError> {
        let Some(index) = self.setting_index(setting) else {
            return Ok(String::new());
        };
        if !self.state.settings[index].on {
            return Ok(self.state.settings[index].saved.clone().unwrap_or_default());
        }
        let vm = setting.vm.as_deref().and_then(|vm| self.index.vm(vm));
        if self.strikes(FaultKind::SettingResolveFails, vm, &[]) {
            return Err(DriverError::Refused(format!(
                "the platform refused to turn {} off",
                setting.label()
            )));
        }
        let record = &mut self.state.settings[index];
        record.on = false;
        record.resolves += 1;
        let saved = match setting.kind.is_restored() {
            true => format!(
                "simulated {} configuration {}",
                setting.label(),
                record.resolves
            ),
            false => String::new(),
        };
        record.saved = Some(saved.clone());
        let event = HistoryEventKind::SettingResolved {
            setting: setting.label(),
        };
        self.record(now_ms, event);
        Ok(saved)
    }

    /// Turns a resolved setting back on with what its resolve saved; one already on is done.
    pub fn restore_setting(
        &mut self,
        setting: &PlatformSetting,
        saved: &str,
        now_ms: u64,
    ) -> Result<(), DriverError> {
        let label = setting.label();
        let Some(index) = self.setting_index(setting) else {
            return Err(DriverError::NotFound(format!("setting {label}")));
        };
        let record = &mut self.state.settings[index];
        if record.on {
            return Ok(());
        }
        if !setting.kind.is_restored() {
            return Err(DriverError::Refused(format!(
                "{label} cannot be put back (ejected media is not inserted again)"
            )));
        }
        if record.saved.as_deref() != Some(saved) {
            return Err(DriverError::Refused(format!(
                "{label}: the saved configuration {saved:?} is not the one the platform saved"
            )));
        }
        record.on = true;
        record.restores += 1;
        self.record(now_ms, HistoryEventKind::SettingRestored { setting: label });
        Ok(())
    }

    pub fn setting_snapshots(&self) -> Vec<SettingSnapshot> {
        self.state
            .settings
            .iter()
            .filter_map(|record| {
                Some(SettingSnapshot {
                    setting: record.setting()?,
                    on: record.on,
                    resolves: record.resolves,
                    restores: record.restores,
                })
            })
            .collect()
    }
}
