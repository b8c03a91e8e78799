//! The command driver's registration: `kind: command` (every step an operator-supplied argv
//! template). It keeps no files and runs on the wall clock.
//!
//! This module knows the command driver's section and config; it must not know stores or callers.

use std::sync::Arc;

use drover_command::{CommandDriver, CommandDriverConfig};
use drover_driver::Driver;
use drover_schema::inventory::DriverSection;

use crate::{
    upgrade_plans, OpenContext, PrepareContext, Prepared, Registration, RegistryError, RunDriver,
};

pub(crate) const REGISTRATION: Registration = Registration {
    kind: "command",
    prepare,
    open,
    vm_actions: drover_driver::BASIC_VM_ACTIONS,
};

fn prepare(section: &DriverSection, _context: &PrepareContext) -> Result<Prepared, RegistryError> {
    Ok(Prepared {
        section: section.clone(),
        time_scale: 1.0,
    })
}

fn open(run_driver: &RunDriver, context: &OpenContext) -> Result<Arc<dyn Driver>, RegistryError> {
    let DriverSection::Command(commands) = &run_driver.section else {
        return Err(RegistryError::Recorded(format!(
            "a {} section given to the command driver",
            run_driver.section.kind()
        )));
    };
    let mut config = CommandDriverConfig::from_inventory(context.cluster, commands);
    config.upgrade_plans = upgrade_plans(run_driver);
    let driver = CommandDriver::new(config).map_err(|error| RegistryError::BadConfig {
        kind: "command",
        detail: error.to_string(),
    })?;
    Ok(Arc::new(driver))
}
