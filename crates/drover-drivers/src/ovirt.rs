//! The oVirt driver's registration: `kind: ovirt` (one cluster of an oVirt / OLVM engine through
//! its REST API v4). `prepare` makes `password_file` and `ca_file` absolute beside the inventory;
//! `open` reads the password (from `password_env` or `password_file`, never from the section
//! itself). It keeps no files and runs on the wall clock. `pending_updates` answers `drover
//! check` from the engine's `update_available`.
//!
//! This module knows the oVirt driver's section; it must not know stores or callers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drover_command::ArgvTemplate;
use drover_core::Cluster;
use drover_driver::Driver;
use drover_ovirt::{OvirtClient, OvirtConnection, OvirtDriver, OvirtTimings};
use drover_schema::inventory::{CommandStep, DriverSection, OvirtSection};

use crate::{
    beside_inventory, OpenContext, PrepareContext, Prepared, Registration, RegistryError, RunDriver,
};

pub(crate) const REGISTRATION: Registration = Registration {
    kind: "ovirt",
    prepare,
    open,
    vm_actions: drover_driver::BASIC_VM_ACTIONS,
};

fn section_of(section: &DriverSection) -> Result<&OvirtSection, RegistryError> {
    match section {
        DriverSection::Ovirt(ovirt) => Ok(ovirt),
        other => Err(RegistryError::Recorded(format!(
            "a {} section given to the ovirt driver",
            other.kind()
        ))),
    }
}

fn prepare(section: &DriverSection, context: &PrepareContext) -> Result<Prepared, RegistryError> {
    let mut ovirt = section_of(section)?.clone();
    let resolve = |file: &Option<String>| {
        file.as_ref().map(|file| {
            beside_inventory(context.inventory_path, Path::new(file))
                .display()
                .to_string()
        })
    };
    ovirt.password_file = resolve(&ovirt.password_file);
    ovirt.ca_file = resolve(&ovirt.ca_file);
    Ok(Prepared {
        section: DriverSection::Ovirt(ovirt),
        time_scale: 1.0,
    })
}

fn bad_config(detail: String) -> RegistryError {
    RegistryError::BadConfig {
        kind: "ovirt",
        detail,
    }
}

fn password(ovirt: &OvirtSection) -> Result<String, RegistryError> {
    if let Some(variable) = &ovirt.password_env {
        return std::env::var(variable).map_err(|_| {
            bad_config(format!(
                "the environment variable {variable} (password_env) is not set"
            ))
        });
    }
    if let Some(file) = &ovirt.password_file {
        let text = std::fs::read_to_string(file)
            .map_err(|error| bad_config(format!("cannot read password_file {file}: {error}")))?;
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    Err(bad_config("no password_env or password_file".into()))
}

fn open(run_driver: &RunDriver, context: &OpenContext) -> Result<Arc<dyn Driver>, RegistryError> {
    let ovirt = section_of(&run_driver.section)?;
    Ok(Arc::new(driver_of(ovirt, context.cluster)?))
}

/// Each inventory host's `update_available` as the engine reports it, for `drover check` (a
/// host the engine cannot vouch for is an error for that host). A relative `password_file` is
/// read from the current directory here (a run resolves it beside the inventory).
pub(crate) async fn pending_updates(
    ovirt: &OvirtSection,
    cluster: &Cluster,
) -> Result<crate::HostUpdates, RegistryError> {
    let driver = driver_of(ovirt, cluster)?;
    let names: Vec<String> = cluster.hosts.iter().map(|host| host.name.clone()).collect();
    let pending =
        driver
            .updates_pending(&names)
            .await
            .map_err(|error| RegistryError::Unavailable {
                kind: "ovirt",
                detail: error.to_string(),
            })?;
    Ok(pending
        .into_iter()
        .map(|(host, pending)| (host, pending.map(Some)))
        .collect())
}

/// The engine's own pending update, by the section's `engine_update_check` command (none:
/// `NotChecked`), bounded by `timeout`.
pub(crate) async fn engine_update(
    ovirt: &OvirtSection,
    cluster: &Cluster,
    timeout: std::time::Duration,
) -> drover_ovirt::EngineUpdate {
    let template = match ovirt.engine_update_check.as_slice() {
        [] => None,
        argv => match drover_ovirt::engine_update_template(argv) {
            Ok(template) => Some(template),
            Err(error) => return drover_ovirt::EngineUpdate::Failed(error.to_string()),
        },
    };
    let engine_cluster = ovirt.cluster.as_deref().unwrap_or(&cluster.name);
    drover_ovirt::check_engine_update(template.as_ref(), engine_cluster, timeout).await
}

fn driver_of(ovirt: &OvirtSection, cluster: &Cluster) -> Result<OvirtDriver, RegistryError> {
    let connection = OvirtConnection {
        url: ovirt.url.clone(),
        username: ovirt.username.clone(),
        password: password(ovirt)?,
        ca_file: ovirt.ca_file.as_ref().map(Into::into),
        insecure: ovirt.insecure,
        request_timeout: Duration::from_secs(ovirt.request_timeout_secs),
    };
    let client = OvirtClient::new(connection).map_err(|error| bad_config(error.to_string()))?;
    let timings = OvirtTimings {
        migration_timeout: Duration::from_secs(ovirt.migration_timeout_secs),
        poll: Duration::from_millis(ovirt.poll_ms),
        upgrade_timeout: Duration::from_secs(ovirt.upgrade_timeout_secs),
        upgrade_reboot: ovirt.upgrade_reboot,
    };
    let upgrade_command = ovirt
        .commands
        .get(&CommandStep::Upgrade)
        .map(|argv| ArgvTemplate::for_step(CommandStep::Upgrade, argv))
        .transpose()
        .map_err(|error| bad_config(error.to_string()))?;
    Ok(OvirtDriver::new(
        client,
        timings,
        cluster,
        ovirt.cluster.clone(),
        upgrade_command,
    )
    .marking_cluster_upgrade(ovirt.mark_cluster_upgrade)
    .switching_to_policy(&ovirt.maintenance_scheduling_policy))
}
