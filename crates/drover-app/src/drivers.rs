//! Choosing and opening the driver a run uses, from the inventory's `driver:` section, and
//! remembering the choice in the run record so `resume` reopens the same platform on the same
//! timeline. Only this module knows which drivers exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drover_command::{CommandDriver, CommandDriverConfig};
use drover_core::execution::{Discovered, HostFacts};
use drover_core::Cluster;
use drover_core::Version;
use drover_engine::clock::wall_now_ms;
use drover_engine::Clock;
use drover_engine::{Driver, DriverError, ShutdownObserved};
use drover_schema::inventory::DriverSection;
use drover_sim::driver::{Fault, FaultKind, RandomFaults, SimDriver, SimDriverConfig, SlowStep};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What a run records about its driver: enough to reopen it and continue its clock.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DriverChoice {
    pub kind: String,
    /// 0: virtual time (instant); N: platform time runs N× faster than the wall clock.
    pub time_scale: f64,
    pub wall_anchor_ms: u64,
    pub platform_anchor_ms: u64,
    pub seed: u64,
    /// Where the simulated platform keeps its state between drover processes.
    pub state_file: Option<PathBuf>,
    /// Per host, what the release catalog says its installer must do (`{hops}`, `{hotfixes}`,
    /// `{reboots}` in upgrade commands); empty without a catalog.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upgrade_recipes: BTreeMap<String, crate::catalog::UpgradeRecipe>,
    #[serde(skip)]
    faults: Vec<Fault>,
    #[serde(skip)]
    random_faults: RandomFaults,
}

impl DriverChoice {
    /// The choice for a new run. The simulator's world is kept next to the state file unless
    /// the inventory says where, so that `retry`/`resume` in a later process find it again.
    pub fn from_section(
        section: &DriverSection,
        inventory: &Path,
        state: &Path,
        cluster: &str,
    ) -> Result<Self, AppError> {
        let now = wall_now_ms();
        match section {
            DriverSection::Simulator(simulator) => {
                let state_file = match &simulator.state_file {
                    Some(file) => {
                        absolute(&inventory.parent().unwrap_or(Path::new(".")).join(file))
                    }
                    None => absolute(&sim_world_path(state, cluster, now)),
                };
                Ok(DriverChoice {
                    kind: "simulator".into(),
                    time_scale: simulator.time_scale,
                    wall_anchor_ms: now,
                    platform_anchor_ms: now,
                    seed: simulator.seed,
                    state_file: Some(state_file),
                    upgrade_recipes: BTreeMap::new(),
                faults: simulator.faults.iter().map(fault_from_entry).collect(),
                    random_faults: random_faults(simulator),
                })
            }
            DriverSection::Command(_) => Ok(DriverChoice {
                kind: "command".into(),
                time_scale: 1.0,
                wall_anchor_ms: now,
                platform_anchor_ms: now,
                seed: 0,
                state_file: None,
                upgrade_recipes: BTreeMap::new(),
                faults: Vec::new(),
                random_faults: RandomFaults::default(),
            }),
            DriverSection::Libvirt(libvirt) if cfg!(feature = "libvirt") => Ok(DriverChoice {
                kind: "libvirt".into(),
                time_scale: 1.0,
                wall_anchor_ms: now,
                platform_anchor_ms: now,
                seed: 0,
                state_file: Some(libvirt_marks_path(libvirt, inventory, state, cluster)),
                upgrade_recipes: BTreeMap::new(),
                faults: Vec::new(),
                random_faults: RandomFaults::default(),
            }),
            DriverSection::Libvirt(_) => Err(AppError::bad_input(
                "driver kind libvirt needs a drover built with `--features libvirt` (and libvirt-dev installed)",
            )),
        }
    }

    /// The choice recorded with a run, with the faults re-read from its stored inventory.
    pub fn from_options(section: &DriverSection, options_json: &str) -> Result<Self, AppError> {
        let mut choice: DriverChoice = serde_json::from_str(options_json).map_err(|error| {
            AppError::internal(format!("the run's driver options do not parse: {error}"))
        })?;
        if let DriverSection::Simulator(simulator) = section {
            choice.faults = simulator.faults.iter().map(fault_from_entry).collect();
            choice.random_faults = random_faults(simulator);
        }
        Ok(choice)
    }

    pub fn options_json(&self) -> String {
        serde_json::to_string(self).expect("driver options are plain data")
    }

    pub fn kind_name(&self) -> &str {
        &self.kind
    }

    pub fn virtual_time(&self) -> bool {
        self.time_scale == 0.0
    }

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
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// What each host's upgrade command is told, from the recipes the run was started with.
fn upgrade_plans(choice: &DriverChoice) -> BTreeMap<String, drover_command::HostUpgradePlan> {
    choice
        .upgrade_recipes
        .iter()
        .map(|(host, recipe)| (host.clone(), recipe.to_plan()))
        .collect()
}

/// Drover's cordon and maintenance marks on libvirt hosts: one file per cluster (not per run),
/// because a host stays cordoned across runs until Drover uncordons it.
fn libvirt_marks_path(
    section: &drover_schema::inventory::LibvirtSection,
    inventory: &Path,
    state: &Path,
    cluster: &str,
) -> PathBuf {
    match &section.marks_file {
        Some(file) => absolute(&inventory.parent().unwrap_or(Path::new(".")).join(file)),
        None => {
            let state_name = state
                .file_name()
                .map_or("drover.db".into(), |n| n.to_string_lossy().into_owned());
            absolute(&state.with_file_name(format!("{state_name}.{cluster}.libvirt-marks.json")))
        }
    }
}

fn sim_world_path(state: &Path, cluster: &str, now_ms: u64) -> PathBuf {
    let file_name = format!(
        "{}.{cluster}.{now_ms}.sim.json",
        state
            .file_name()
            .map_or("drover.db".into(), |n| n.to_string_lossy().into_owned())
    );
    state.with_file_name(file_name)
}

fn fault_from_entry(entry: &drover_schema::inventory::FaultEntry) -> Fault {
    use drover_schema::inventory::{FaultName, StepName};
    let kind = match entry.fault {
        FaultName::MigrationFails => FaultKind::MigrationFails,
        FaultName::MigrationRefused => FaultKind::MigrationRefused,
        FaultName::MigrationHangs => FaultKind::MigrationHangs,
        FaultName::UpgradeFails => FaultKind::UpgradeFails,
        FaultName::HostNeverReturns => FaultKind::HostNeverReturns,
        FaultName::UpgradeDoesNotReboot => FaultKind::UpgradeDoesNotReboot,
        FaultName::RebootIgnored => FaultKind::RebootIgnored,
        FaultName::ShutdownIgnored => FaultKind::ShutdownIgnored,
        FaultName::Slow => FaultKind::Slow,
        FaultName::CompatibilityLevelFails => FaultKind::CompatibilityLevelFails,
    };
    let step = entry.step.map(|step| match step {
        StepName::Migrate => SlowStep::Migrate,
        StepName::Upgrade => SlowStep::Upgrade,
        StepName::Reboot => SlowStep::Reboot,
        StepName::Shutdown => SlowStep::Shutdown,
        StepName::Start => SlowStep::Start,
        StepName::Maintenance => SlowStep::Maintenance,
    });
    Fault {
        kind,
        vm: entry.vm.clone(),
        host: entry.host.clone(),
        times: entry.times,
        step,
        factor: entry.factor,
    }
}

fn random_faults(section: &drover_schema::inventory::SimulatorSection) -> RandomFaults {
    let random = &section.random_faults;
    RandomFaults {
        migration_failure: random.migration_failure,
        upgrade_failure: random.upgrade_failure,
        shutdown_ignored: random.shutdown_ignored,
        host_never_returns: random.host_never_returns,
    }
}

/// The platform a run talks to: one of the drivers this build knows.
pub enum AnyDriver {
    Simulator(SimDriver),
    Command(CommandDriver),
    #[cfg(feature = "libvirt")]
    Libvirt(drover_libvirt::LibvirtDriver),
}

/// Opens the driver of a choice for a cluster on a clock. `section` is the run's stored
/// inventory section (the command driver's argv templates live there).
pub fn open_driver(
    choice: &DriverChoice,
    section: &DriverSection,
    cluster: &Cluster,
    clock: Clock,
) -> Result<AnyDriver, AppError> {
    #[cfg(feature = "libvirt")]
    if let DriverSection::Libvirt(libvirt) = section {
        let mut config = drover_libvirt::LibvirtDriverConfig::from_inventory(cluster, libvirt);
        config.marks_file = choice.state_file.clone();
        config.upgrade_plans = upgrade_plans(choice);
        let driver = drover_libvirt::LibvirtDriver::new(config)
            .map_err(|error| AppError::bad_input(format!("libvirt driver: {error}")))?;
        return Ok(AnyDriver::Libvirt(driver));
    }
    if let DriverSection::Command(commands) = section {
        let mut config = CommandDriverConfig::from_inventory(cluster, commands);
        config.upgrade_plans = upgrade_plans(choice);
        let driver = CommandDriver::new(config)
            .map_err(|error| AppError::bad_input(format!("command driver: {error}")))?;
        return Ok(AnyDriver::Command(driver));
    }
    let config = SimDriverConfig {
        seed: choice.seed,
        faults: choice.faults.clone(),
        random_faults: choice.random_faults,
        state_file: choice.state_file.clone(),
        save_only_on_request: choice.virtual_time(),
    };
    SimDriver::new(cluster, clock, config)
        .map(AnyDriver::Simulator)
        .map_err(|error| AppError::internal(format!("simulator: {error}")))
}

impl AnyDriver {
    /// Saves the simulated platform (a no-op for real platforms, which keep their own state).
    pub fn save(&self) -> Result<(), DriverError> {
        match self {
            AnyDriver::Simulator(driver) => driver.save(),
            _ => Ok(()),
        }
    }
}

/// Forwards every call to the driver inside.
macro_rules! forward {
    ($self:ident, $driver:ident => $call:expr) => {
        match $self {
            AnyDriver::Simulator($driver) => $call.await,
            AnyDriver::Command($driver) => $call.await,
            #[cfg(feature = "libvirt")]
            AnyDriver::Libvirt($driver) => $call.await,
        }
    };
}

#[drover_engine::async_trait]
impl Driver for AnyDriver {
    fn kind(&self) -> &'static str {
        match self {
            AnyDriver::Simulator(driver) => driver.kind(),
            AnyDriver::Command(driver) => driver.kind(),
            #[cfg(feature = "libvirt")]
            AnyDriver::Libvirt(driver) => driver.kind(),
        }
    }

    async fn discover(&self) -> Result<Discovered, DriverError> {
        forward!(self, driver => driver.discover())
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        forward!(self, driver => driver.host_facts(host))
    }

    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        forward!(self, driver => driver.health_check(host))
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        forward!(self, driver => driver.set_allocation(host, enabled))
    }

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        forward!(self, driver => driver.set_maintenance(host, enabled))
    }

    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError> {
        forward!(self, driver => driver.migrate(vm, from, to))
    }

    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: std::time::Duration,
    ) -> Result<ShutdownObserved, DriverError> {
        forward!(self, driver => driver.shutdown_vm(vm, host, graceful_timeout))
    }

    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        forward!(self, driver => driver.start_vm(vm, host))
    }

    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        forward!(self, driver => driver.upgrade(host, target))
    }

    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), DriverError> {
        forward!(self, driver => driver.reboot(host, boot_id_before))
    }

    async fn set_compatibility_level(&self, cluster: &str, level: &str) -> Result<(), DriverError> {
        forward!(self, driver => driver.set_compatibility_level(cluster, level))
    }
}
