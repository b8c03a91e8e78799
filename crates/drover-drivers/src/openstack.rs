//! The OpenStack driver's registration: `kind: openstack` (Nova's Compute API with Keystone v3).
//! `prepare` makes `clouds_file`, `password_file` and `ca_file` absolute beside the inventory;
//! `open` merges the section over its `clouds.yaml` entry (the section's fields win), reads the
//! password or application credential secret (from `password_env` or `password_file`, else the
//! `clouds.yaml` entry, never from the section itself) and checks the section's commands. It
//! keeps no files (Drover's marks are the compute services' disabled reasons in Nova itself)
//! and runs on the wall clock.
//!
//! This module knows the OpenStack driver's section; it must not know stores or callers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drover_driver::Driver;
use drover_openstack::auth::{Credentials, KeystoneAuth};
use drover_openstack::clouds::{self, CloudEntry};
use drover_openstack::host_commands::HostCommands;
use drover_openstack::{Connection, OpenstackClient, OpenstackDriver, OpenstackTimings};
use drover_schema::inventory::{DriverSection, OpenstackSection};

use crate::{
    beside_inventory, upgrade_plans, OpenContext, PrepareContext, Prepared, Registration,
    RegistryError, RunDriver,
};

pub(crate) const REGISTRATION: Registration = Registration {
    kind: "openstack",
    prepare,
    open,
    vm_actions: drover_openstack::driver::VM_ACTIONS,
};

/// Bound of a `host_facts` or `health_check` command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

fn section_of(section: &DriverSection) -> Result<&OpenstackSection, RegistryError> {
    match section {
        DriverSection::Openstack(openstack) => Ok(openstack),
        other => Err(RegistryError::Recorded(format!(
            "a {} section given to the openstack driver",
            other.kind()
        ))),
    }
}

fn prepare(section: &DriverSection, context: &PrepareContext) -> Result<Prepared, RegistryError> {
    let mut openstack = section_of(section)?.clone();
    let resolve = |file: &Option<String>| {
        file.as_ref().map(|file| {
            beside_inventory(context.inventory_path, Path::new(file))
                .display()
                .to_string()
        })
    };
    openstack.clouds_file = resolve(&openstack.clouds_file);
    openstack.password_file = resolve(&openstack.password_file);
    openstack.ca_file = resolve(&openstack.ca_file);
    Ok(Prepared {
        section: DriverSection::Openstack(openstack),
        time_scale: 1.0,
    })
}

fn bad_config(detail: String) -> RegistryError {
    RegistryError::BadConfig {
        kind: "openstack",
        detail,
    }
}

/// The password or secret: the section's source, else the clouds.yaml entry's.
fn secret(openstack: &OpenstackSection, cloud: &CloudEntry) -> Result<String, RegistryError> {
    if let Some(variable) = &openstack.password_env {
        return std::env::var(variable).map_err(|_| {
            bad_config(format!(
                "the environment variable {variable} (password_env) is not set"
            ))
        });
    }
    if let Some(file) = &openstack.password_file {
        let text = std::fs::read_to_string(file)
            .map_err(|error| bad_config(format!("cannot read password_file {file}: {error}")))?;
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    cloud
        .application_credential_secret
        .clone()
        .or_else(|| cloud.password.clone())
        .ok_or_else(|| {
            bad_config("no password_env or password_file, and the clouds.yaml entry has no password or secret".into())
        })
}

/// The Keystone side of the section, over its clouds.yaml entry.
fn keystone(
    openstack: &OpenstackSection,
) -> Result<(KeystoneAuth, Option<String>, bool), RegistryError> {
    let cloud = match &openstack.cloud {
        Some(name) => clouds::load(name, openstack.clouds_file.as_deref().map(Path::new))
            .map_err(|error| bad_config(error.to_string()))?,
        None => CloudEntry::default(),
    };
    let pick = |mine: &Option<String>, theirs: &Option<String>| mine.clone().or(theirs.clone());
    let auth_url = pick(&openstack.auth_url, &cloud.auth_url).ok_or_else(|| {
        bad_config("no auth_url (in the section or its clouds.yaml entry)".into())
    })?;
    let secret = secret(openstack, &cloud)?;
    let credential_id = pick(
        &openstack.application_credential_id,
        &cloud.application_credential_id,
    );
    let credentials = match credential_id {
        Some(id) => Credentials::ApplicationCredential { id, secret },
        None => Credentials::Password {
            username: pick(&openstack.username, &cloud.username)
                .ok_or_else(|| bad_config("no username and no application_credential_id".into()))?,
            user_domain: pick(&openstack.user_domain, &cloud.user_domain_name)
                .unwrap_or_else(|| "Default".into()),
            password: secret,
            project: pick(&openstack.project, &cloud.project_name)
                .ok_or_else(|| bad_config("no project to scope the token to".into()))?,
            project_domain: pick(&openstack.project_domain, &cloud.project_domain_name)
                .unwrap_or_else(|| "Default".into()),
        },
    };
    let auth = KeystoneAuth {
        auth_url,
        credentials,
        region: pick(&openstack.region, &cloud.region_name),
        interface: pick(&openstack.interface, &cloud.interface).unwrap_or_else(|| "public".into()),
    };
    Ok((
        auth,
        pick(&openstack.ca_file, &cloud.cacert),
        openstack.insecure || cloud.insecure,
    ))
}

fn open(run_driver: &RunDriver, context: &OpenContext) -> Result<Arc<dyn Driver>, RegistryError> {
    let openstack = section_of(&run_driver.section)?;
    let (auth, ca_file, insecure) = keystone(openstack)?;
    let client = OpenstackClient::new(Connection {
        auth,
        ca_file: ca_file.map(Into::into),
        insecure,
        request_timeout: Duration::from_secs(openstack.request_timeout_secs),
    })
    .map_err(|error| bad_config(error.to_string()))?;
    let timings = OpenstackTimings {
        migration_timeout: Duration::from_secs(openstack.migration_timeout_secs),
        poll: Duration::from_millis(openstack.poll_ms),
        action_timeout: Duration::from_secs(openstack.action_timeout_secs),
        command_timeout: COMMAND_TIMEOUT,
        upgrade_timeout: Duration::from_secs(openstack.upgrade_timeout_secs),
        reboot_timeout: Duration::from_secs(openstack.reboot_timeout_secs),
    };
    let commands = HostCommands::new(
        drover_openstack::host_commands::PLATFORM,
        &openstack.commands,
        &context.cluster.name,
        upgrade_plans(run_driver),
    )
    .map_err(|error| bad_config(error.to_string()))?;
    // The run is named in every reason Drover writes: its cluster and its start (wall clock, ms).
    let run_label = format!(
        "cluster {}, run started at {} ms",
        context.cluster.name, run_driver.wall_anchor_ms
    );
    Ok(Arc::new(OpenstackDriver::new(
        client,
        timings,
        commands,
        openstack.allow_block_migration,
        run_label,
    )))
}
