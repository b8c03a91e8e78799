//! The CloudStack driver's registration: `kind: cloudstack` (a CloudStack management server's
//! hypervisor hosts through the signed API). `prepare` makes `api_key_file` and
//! `secret_key_file` absolute beside the inventory; `open` reads the keys (from the `_env`
//! variables or the files, never from the section itself) and hands the catalog's hotfix set of
//! each host to the `upgrade` command. It keeps no files and runs on the wall clock.
//!
//! This module knows the CloudStack driver's section; it must not know stores or callers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drover_cloudstack::{
    CloudstackClient, CloudstackConnection, CloudstackDriver, CloudstackOptions,
};
use drover_command::ArgvTemplate;
use drover_driver::Driver;
use drover_schema::inventory::{CloudstackSection, CommandStep, DriverSection};

use crate::{
    beside_inventory, upgrade_plans, OpenContext, PrepareContext, Prepared, Registration,
    RegistryError, RunDriver,
};

pub(crate) const REGISTRATION: Registration = Registration {
    kind: "cloudstack",
    prepare,
    open,
    vm_actions: drover_driver::BASIC_VM_ACTIONS,
};

fn section_of(section: &DriverSection) -> Result<&CloudstackSection, RegistryError> {
    match section {
        DriverSection::Cloudstack(cloudstack) => Ok(cloudstack),
        other => Err(RegistryError::Recorded(format!(
            "a {} section given to the cloudstack driver",
            other.kind()
        ))),
    }
}

fn prepare(section: &DriverSection, context: &PrepareContext) -> Result<Prepared, RegistryError> {
    let mut cloudstack = section_of(section)?.clone();
    let resolve = |file: &Option<String>| {
        file.as_ref().map(|file| {
            beside_inventory(context.inventory_path, Path::new(file))
                .display()
                .to_string()
        })
    };
    cloudstack.api_key_file = resolve(&cloudstack.api_key_file);
    cloudstack.secret_key_file = resolve(&cloudstack.secret_key_file);
    Ok(Prepared {
        section: DriverSection::Cloudstack(cloudstack),
        time_scale: 1.0,
    })
}

fn bad_config(detail: String) -> RegistryError {
    RegistryError::BadConfig {
        kind: "cloudstack",
        detail,
    }
}

/// A key from its environment variable or its file's first line.
fn key(
    variable: &Option<String>,
    file: &Option<String>,
    what: &str,
) -> Result<String, RegistryError> {
    if let Some(variable) = variable {
        return std::env::var(variable).map_err(|_| {
            bad_config(format!(
                "the environment variable {variable} ({what}_env) is not set"
            ))
        });
    }
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|error| bad_config(format!("cannot read {what}_file {file}: {error}")))?;
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    Err(bad_config(format!("no {what}_env or {what}_file")))
}

fn command(
    cloudstack: &CloudstackSection,
    step: CommandStep,
) -> Result<ArgvTemplate, RegistryError> {
    let argv = cloudstack
        .commands
        .get(&step)
        .ok_or_else(|| bad_config(format!("no `{}` command", step.as_str())))?;
    ArgvTemplate::for_step(step, argv).map_err(|error| bad_config(error.to_string()))
}

fn open(run_driver: &RunDriver, context: &OpenContext) -> Result<Arc<dyn Driver>, RegistryError> {
    let cloudstack = section_of(&run_driver.section)?;
    let connection = CloudstackConnection {
        endpoint: cloudstack.endpoint.clone(),
        api_key: key(&cloudstack.api_key_env, &cloudstack.api_key_file, "api_key")?,
        secret_key: key(
            &cloudstack.secret_key_env,
            &cloudstack.secret_key_file,
            "secret_key",
        )?,
        request_timeout: Duration::from_secs(cloudstack.request_timeout_secs),
    };
    let client =
        CloudstackClient::new(connection).map_err(|error| bad_config(error.to_string()))?;
    let options = CloudstackOptions {
        zone: cloudstack.zone.clone(),
        cluster: cloudstack.cluster.clone(),
        job_timeout: Duration::from_secs(cloudstack.job_timeout_secs),
        poll: Duration::from_millis(cloudstack.poll_ms),
        upgrade_timeout: Duration::from_secs(cloudstack.upgrade_timeout_secs),
        allow_migrate_with_volume: cloudstack.allow_migrate_with_volume,
        upgrade_command: command(cloudstack, CommandStep::Upgrade)?,
        reboot_command: command(cloudstack, CommandStep::Reboot)?,
        upgrade_plans: upgrade_plans(run_driver),
    };
    Ok(Arc::new(CloudstackDriver::new(
        client,
        options,
        context.cluster,
    )))
}
