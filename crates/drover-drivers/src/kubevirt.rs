//! The kubevirt driver's registration (cargo feature `kubevirt`): `kind: kubevirt` (a KubeVirt /
//! OpenShift Virtualization cluster through the Kubernetes API). `prepare` makes `kubeconfig`
//! absolute beside the inventory; `open` turns the section's numbers into the driver's settings
//! and its `upgrade`/`reboot` commands into templates. The client is made at the driver's first
//! call. It keeps no files and runs on the wall clock.
//!
//! This module knows the kubevirt driver's section; it must not know stores or callers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drover_command::ArgvTemplate;
use drover_driver::Driver;
use drover_kubevirt::{KubevirtConnection, KubevirtDriver, KubevirtSettings};
use drover_schema::inventory::{CommandStep, DriverSection, KubevirtNodeUpdate, KubevirtSection};

use crate::{
    beside_inventory, OpenContext, PrepareContext, Prepared, Registration, RegistryError, RunDriver,
};

pub(crate) const REGISTRATION: Registration = Registration {
    kind: "kubevirt",
    prepare,
    open,
    vm_actions: drover_driver::BASIC_VM_ACTIONS,
};

fn section_of(section: &DriverSection) -> Result<&KubevirtSection, RegistryError> {
    match section {
        DriverSection::Kubevirt(kubevirt) => Ok(kubevirt),
        other => Err(RegistryError::Recorded(format!(
            "a {} section given to the kubevirt driver",
            other.kind()
        ))),
    }
}

fn prepare(section: &DriverSection, context: &PrepareContext) -> Result<Prepared, RegistryError> {
    let mut kubevirt = section_of(section)?.clone();
    kubevirt.kubeconfig = kubevirt.kubeconfig.as_ref().map(|file| {
        beside_inventory(context.inventory_path, Path::new(file))
            .display()
            .to_string()
    });
    Ok(Prepared {
        section: DriverSection::Kubevirt(kubevirt),
        time_scale: 1.0,
    })
}

fn open(run_driver: &RunDriver, _context: &OpenContext) -> Result<Arc<dyn Driver>, RegistryError> {
    let kubevirt = section_of(&run_driver.section)?;
    let template = |step: CommandStep| {
        kubevirt
            .commands
            .get(&step)
            .map(|argv| ArgvTemplate::for_step(step, argv))
            .transpose()
            .map_err(|error| RegistryError::BadConfig {
                kind: "kubevirt",
                detail: error.to_string(),
            })
    };
    let settings =
        KubevirtSettings {
            request_timeout: Duration::from_secs(kubevirt.request_timeout_secs),
            migration_timeout: Duration::from_secs(kubevirt.migration_timeout_secs),
            drain_timeout: Duration::from_secs(kubevirt.drain_timeout_secs),
            upgrade_timeout: Duration::from_secs(kubevirt.upgrade_timeout_secs),
            poll_interval: Duration::from_millis(kubevirt.poll_ms),
            batch_eviction_size: u32::try_from(kubevirt.batch_eviction_size).unwrap_or(u32::MAX),
            batch_eviction_interval: Duration::from_secs(kubevirt.batch_eviction_interval_secs),
            hyperconverged_namespace: kubevirt.hyperconverged_namespace.clone().unwrap_or_else(
                || drover_kubevirt::hyperconverged::DEFAULT_HYPERCONVERGED_NAMESPACE.to_string(),
            ),
            machine_config_pool: match kubevirt.node_update {
                KubevirtNodeUpdate::Commands => None,
                KubevirtNodeUpdate::MachineConfigPool => {
                    Some(kubevirt.machine_config_pool.clone().unwrap_or_else(|| {
                        drover_kubevirt::machineconfig::DEFAULT_WORKER_POOL.to_string()
                    }))
                }
            },
            ..KubevirtSettings::default()
        };
    Ok(Arc::new(KubevirtDriver::new(
        KubevirtConnection {
            kubeconfig: kubevirt.kubeconfig.as_ref().map(Into::into),
            context: kubevirt.context.clone(),
        },
        settings,
        template(CommandStep::Upgrade)?,
        template(CommandStep::Reboot)?,
    )))
}
