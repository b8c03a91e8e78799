//! The Ganeti driver's registration: `kind: ganeti` (a Ganeti cluster through RAPI v2). `prepare`
//! makes `password_file` and `ca_file` absolute beside the inventory; `open` reads the password
//! (from `password_env` or `password_file`, never from the section itself) and checks the
//! section's commands (the node steps and the cluster steps `master_failover` and `verify`). It keeps no files (Drover's marks are node tags in the cluster itself)
//! and runs on the wall clock.
//!
//! This module knows the Ganeti driver's section; it must not know stores or callers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drover_driver::Driver;
use drover_ganeti::host_commands::{ClusterCommands, HostCommands};
use drover_ganeti::{GanetiDriver, GanetiTimings, RapiClient, RapiConnection};
use drover_schema::inventory::{DriverSection, GanetiSection};

use crate::{
    beside_inventory, upgrade_plans, OpenContext, PrepareContext, Prepared, Registration,
    RegistryError, RunDriver,
};

pub(crate) const REGISTRATION: Registration = Registration {
    kind: "ganeti",
    prepare,
    open,
    vm_actions: drover_driver::BASIC_VM_ACTIONS,
};

/// Bound of a `host_facts` or `health_check` command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

fn section_of(section: &DriverSection) -> Result<&GanetiSection, RegistryError> {
    match section {
        DriverSection::Ganeti(ganeti) => Ok(ganeti),
        other => Err(RegistryError::Recorded(format!(
            "a {} section given to the ganeti driver",
            other.kind()
        ))),
    }
}

fn prepare(section: &DriverSection, context: &PrepareContext) -> Result<Prepared, RegistryError> {
    let mut ganeti = section_of(section)?.clone();
    let resolve = |file: &Option<String>| {
        file.as_ref().map(|file| {
            beside_inventory(context.inventory_path, Path::new(file))
                .display()
                .to_string()
        })
    };
    ganeti.password_file = resolve(&ganeti.password_file);
    ganeti.ca_file = resolve(&ganeti.ca_file);
    Ok(Prepared {
        section: DriverSection::Ganeti(ganeti),
        time_scale: 1.0,
    })
}

fn bad_config(detail: String) -> RegistryError {
    RegistryError::BadConfig {
        kind: "ganeti",
        detail,
    }
}

fn password(ganeti: &GanetiSection) -> Result<String, RegistryError> {
    if let Some(variable) = &ganeti.password_env {
        return std::env::var(variable).map_err(|_| {
            bad_config(format!(
                "the environment variable {variable} (password_env) is not set"
            ))
        });
    }
    if let Some(file) = &ganeti.password_file {
        let text = std::fs::read_to_string(file)
            .map_err(|error| bad_config(format!("cannot read password_file {file}: {error}")))?;
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    Err(bad_config("no password_env or password_file".into()))
}

fn open(run_driver: &RunDriver, context: &OpenContext) -> Result<Arc<dyn Driver>, RegistryError> {
    let ganeti = section_of(&run_driver.section)?;
    let connection = RapiConnection {
        url: ganeti.url.clone(),
        username: ganeti.username.clone(),
        password: password(ganeti)?,
        ca_file: ganeti.ca_file.as_ref().map(Into::into),
        insecure: ganeti.insecure,
        request_timeout: Duration::from_secs(ganeti.request_timeout_secs),
    };
    let client = RapiClient::new(connection).map_err(|error| bad_config(error.to_string()))?;
    let timings = GanetiTimings {
        job_timeout: Duration::from_secs(ganeti.job_timeout_secs),
        job_poll: Duration::from_millis(ganeti.job_poll_ms),
        command_timeout: COMMAND_TIMEOUT,
        upgrade_timeout: Duration::from_secs(ganeti.upgrade_timeout_secs),
        reboot_timeout: Duration::from_secs(ganeti.reboot_timeout_secs),
    };
    let commands = HostCommands::new(
        drover_ganeti::host_commands::PLATFORM,
        &ganeti.commands,
        &context.cluster.name,
        upgrade_plans(run_driver),
    )
    .map_err(|error| bad_config(error.to_string()))?;
    let cluster_commands = ClusterCommands::new(
        &context.cluster.name,
        ganeti.master_failover.as_deref(),
        ganeti.verify.as_deref(),
    )
    .map_err(|error| bad_config(error.to_string()))?;
    Ok(Arc::new(
        GanetiDriver::new(client, timings, context.cluster, commands)
            .with_cluster_commands(cluster_commands),
    ))
}
