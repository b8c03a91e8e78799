//! The libvirt driver's registration: `kind: libvirt` (cargo feature `libvirt`). Drover's cordon
//! and maintenance marks on libvirt hosts live in one file per cluster (not per run: a host
//! stays cordoned across runs until Drover uncordons it), placed by the section's `marks_file`
//! (relative to the inventory) or beside the caller's files.
//!
//! This module knows the libvirt driver's section and config; it must not know stores or callers.

use std::sync::Arc;

use drover_driver::Driver;
use drover_schema::inventory::DriverSection;

use crate::{
    beside_inventory, beside_prefix, upgrade_plans, OpenContext, PrepareContext, Prepared,
    Registration, RegistryError, RunDriver,
};

pub(crate) const REGISTRATION: Registration = Registration {
    kind: "libvirt",
    prepare,
    open,
    vm_actions: drover_driver::BASIC_VM_ACTIONS,
};

fn prepare(section: &DriverSection, context: &PrepareContext) -> Result<Prepared, RegistryError> {
    let DriverSection::Libvirt(libvirt) = section else {
        return Err(wrong_section(section));
    };
    let mut libvirt = libvirt.clone();
    let marks = match &libvirt.marks_file {
        Some(file) => beside_inventory(context.inventory_path, std::path::Path::new(file)),
        None => beside_prefix(
            context.files_prefix,
            &format!("{}.libvirt-marks.json", context.cluster),
        ),
    };
    libvirt.marks_file = Some(marks.display().to_string());
    Ok(Prepared {
        section: DriverSection::Libvirt(libvirt),
        time_scale: 1.0,
    })
}

fn open(run_driver: &RunDriver, context: &OpenContext) -> Result<Arc<dyn Driver>, RegistryError> {
    let DriverSection::Libvirt(libvirt) = &run_driver.section else {
        return Err(wrong_section(&run_driver.section));
    };
    let mut config = drover_libvirt::LibvirtDriverConfig::from_inventory(context.cluster, libvirt);
    config.marks_file = libvirt.marks_file.as_ref().map(std::path::PathBuf::from);
    config.upgrade_plans = upgrade_plans(run_driver);
    let driver =
        drover_libvirt::LibvirtDriver::new(config).map_err(|error| RegistryError::BadConfig {
            kind: "libvirt",
            detail: error.to_string(),
        })?;
    Ok(Arc::new(driver))
}

fn wrong_section(section: &DriverSection) -> RegistryError {
    RegistryError::Recorded(format!(
        "a {} section given to the libvirt driver",
        section.kind()
    ))
}
