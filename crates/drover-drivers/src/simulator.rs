//! The simulator's registration: `kind: simulator`. Its world file is placed by its own section
//! (`state_file`, relative to the inventory), else beside the caller's files: one per run, or one
//! per cluster when the platform outlives runs (a server).
//!
//! This module knows the simulator's section and config; it must not know stores or callers.

use std::sync::Arc;

use drover_driver::Driver;
use drover_schema::inventory::{DriverSection, FaultEntry, SimulatorSection};
use drover_sim::driver::{Fault, FaultKind, RandomFaults, SimDriver, SimDriverConfig, SlowStep};

use crate::{
    beside_inventory, beside_prefix, OpenContext, PrepareContext, Prepared, Registration,
    RegistryError, RunDriver,
};

pub(crate) const REGISTRATION: Registration = Registration {
    kind: "simulator",
    prepare,
    open,
    vm_actions: drover_sim::driver::VM_ACTIONS,
};

fn section_of(section: &DriverSection) -> Result<&SimulatorSection, RegistryError> {
    match section {
        DriverSection::Simulator(simulator) => Ok(simulator),
        other => Err(RegistryError::Recorded(format!(
            "a {} section given to the simulator",
            other.kind()
        ))),
    }
}

fn prepare(section: &DriverSection, context: &PrepareContext) -> Result<Prepared, RegistryError> {
    let mut simulator = section_of(section)?.clone();
    let world = match &simulator.state_file {
        Some(file) => beside_inventory(context.inventory_path, file),
        None if context.keep_platform_per_cluster => beside_prefix(
            context.files_prefix,
            &format!("{}.sim.json", file_name_part(context.cluster)),
        ),
        None => beside_prefix(
            context.files_prefix,
            &format!("{}.{}.sim.json", context.cluster, context.now_ms),
        ),
    };
    simulator.state_file = Some(world);
    Ok(Prepared {
        time_scale: simulator.time_scale,
        section: DriverSection::Simulator(simulator),
    })
}

/// The simulated platform's configuration from a `kind: simulator` section (seed, faults, random
/// faults), in memory only: also what the platform emulators build their world from.
pub fn sim_driver_config(simulator: &SimulatorSection) -> SimDriverConfig {
    SimDriverConfig {
        seed: simulator.seed,
        faults: simulator.faults.iter().map(fault_from_entry).collect(),
        random_faults: random_faults(simulator),
        state_file: None,
        save_only_on_request: false,
    }
}

fn open(run_driver: &RunDriver, context: &OpenContext) -> Result<Arc<dyn Driver>, RegistryError> {
    let simulator = section_of(&run_driver.section)?;
    let config = SimDriverConfig {
        // Discovery changes nothing, so it needs no world file.
        state_file: match context.read_only {
            true => None,
            false => simulator.state_file.clone(),
        },
        save_only_on_request: run_driver.virtual_time(),
        ..sim_driver_config(simulator)
    };
    let driver =
        SimDriver::new(context.cluster, context.clock.clone(), config).map_err(|error| {
            RegistryError::Unavailable {
                kind: "simulator",
                detail: error.to_string(),
            }
        })?;
    Ok(Arc::new(driver))
}

/// A cluster name as part of a file name: as written when it is safe there, else with unsafe
/// characters replaced and a hash of the name added (so two names never share a file).
fn file_name_part(name: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !name.is_empty() && name.chars().all(safe) && !name.starts_with('.') {
        return name.to_string();
    }
    let replaced: String = name
        .chars()
        .take(64)
        .map(|c| if safe(c) { c } else { '_' })
        .collect();
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let hex: String = digest
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{replaced}-{hex}")
}

fn fault_from_entry(entry: &FaultEntry) -> Fault {
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

fn random_faults(section: &SimulatorSection) -> RandomFaults {
    let random = &section.random_faults;
    RandomFaults {
        migration_failure: random.migration_failure,
        upgrade_failure: random.upgrade_failure,
        shutdown_ignored: random.shutdown_ignored,
        host_never_returns: random.host_never_returns,
    }
}
