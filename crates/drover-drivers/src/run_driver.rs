//! What a run records about its driver, in the run's options: the driver's own `driver:`
//! section as resolved when the run started (one variant per driver, not a shared record), the
//! run's timeline (so a resumed run continues the same clock), and what the release catalog
//! tells each host's installer. A resumed run reopens its driver from this alone.
//!
//! This module knows the serde form and the clock; it must not know any driver's internals.

use std::collections::BTreeMap;

use drover_driver::Clock;
use drover_schema::inventory::DriverSection;
use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// A run's driver, as recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunDriver {
    /// The section's kind (also inside `section`; kept at the top for readers of the options).
    pub kind: String,
    /// The driver's section, resolved for this run.
    #[serde(rename = "driver")]
    pub section: DriverSection,
    /// 0: virtual time (instant); N: platform time runs N× faster than the wall clock.
    pub time_scale: f64,
    pub wall_anchor_ms: u64,
    pub platform_anchor_ms: u64,
    /// Per host, what the release catalog says its installer must do (`{hops}`, `{hotfixes}`,
    /// `{reboots}` in upgrade commands); empty without a catalog.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upgrade_recipes: BTreeMap<String, UpgradeRecipe>,
}

/// What one host's installer is told.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeRecipe {
    pub hops: Vec<String>,
    pub hotfixes: Vec<String>,
    pub reboots: u32,
    /// Forced (`--force-host`, package updates found by `drover check`): upgraded although it
    /// already runs the target.
    #[serde(default)]
    pub even_at_target: bool,
}

impl UpgradeRecipe {
    pub fn to_plan(&self) -> drover_command::HostUpgradePlan {
        drover_command::HostUpgradePlan {
            hops: self.hops.clone(),
            hotfixes: self.hotfixes.clone(),
            reboots: self.reboots,
            even_at_target: self.even_at_target,
        }
    }
}

/// The options of runs started before the driver's section was recorded: a flat record; the
/// section was read from the run's stored inventory.
#[derive(Deserialize)]
struct EarlierOptions {
    time_scale: f64,
    wall_anchor_ms: u64,
    platform_anchor_ms: u64,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    state_file: Option<std::path::PathBuf>,
    #[serde(default)]
    upgrade_recipes: BTreeMap<String, UpgradeRecipe>,
}

impl RunDriver {
    /// The options a run records: this driver, plus `extra` keys of the caller's (a reviewed
    /// plan, who created the run) side by side.
    pub fn options_json(&self, extra: serde_json::Map<String, serde_json::Value>) -> String {
        let mut options = serde_json::to_value(self).expect("driver options are plain data");
        if let Some(object) = options.as_object_mut() {
            object.extend(extra);
        }
        options.to_string()
    }

    /// The driver a run recorded in its options. Runs of older drovers recorded no section:
    /// `earlier_section` gives it (the one read of a stored inventory, done by the caller only
    /// then).
    pub fn from_options(
        options_json: &str,
        earlier_section: impl FnOnce() -> Result<DriverSection, String>,
    ) -> Result<RunDriver, RegistryError> {
        let options: serde_json::Value = serde_json::from_str(options_json)
            .map_err(|error| RegistryError::Recorded(error.to_string()))?;
        if options.get("driver").is_some() {
            return serde_json::from_value(options)
                .map_err(|error| RegistryError::Recorded(error.to_string()));
        }
        let earlier: EarlierOptions = serde_json::from_value(options)
            .map_err(|error| RegistryError::Recorded(error.to_string()))?;
        let mut section = earlier_section().map_err(RegistryError::Recorded)?;
        if let DriverSection::Simulator(simulator) = &mut section {
            simulator.seed = earlier.seed.unwrap_or(simulator.seed);
            simulator.state_file = earlier.state_file.or(simulator.state_file.take());
        }
        Ok(RunDriver {
            kind: section.kind().to_string(),
            section,
            time_scale: earlier.time_scale,
            wall_anchor_ms: earlier.wall_anchor_ms,
            platform_anchor_ms: earlier.platform_anchor_ms,
            upgrade_recipes: earlier.upgrade_recipes,
        })
    }

    pub fn virtual_time(&self) -> bool {
        self.time_scale == 0.0
    }

    /// Whether the run's platform is the simulator running faster than the wall clock (its
    /// times in reports are platform times, not the operator's).
    pub fn is_simulated(&self) -> bool {
        matches!(self.section, DriverSection::Simulator(_)) && self.time_scale != 1.0
    }

    /// The clock of a new run.
    pub fn new_clock(&self) -> Clock {
        if self.virtual_time() {
            Clock::virtual_from(self.platform_anchor_ms)
        } else {
            Clock::anchored(
                self.wall_anchor_ms,
                self.platform_anchor_ms,
                self.time_scale,
            )
        }
    }

    /// A clock that continues the run's timeline: virtual time picks up where the journal ended.
    pub fn resumed_clock(&self, last_journal_ms: u64) -> Clock {
        if self.virtual_time() {
            Clock::virtual_from(last_journal_ms.max(self.platform_anchor_ms))
        } else {
            Clock::anchored(
                self.wall_anchor_ms,
                self.platform_anchor_ms,
                self.time_scale,
            )
        }
    }

    /// The file the driver keeps its platform in, if it keeps one (the simulator's world).
    pub fn platform_file(&self) -> Option<&std::path::Path> {
        match &self.section {
            DriverSection::Simulator(simulator) => simulator.state_file.as_deref(),
            _ => None,
        }
    }
}
