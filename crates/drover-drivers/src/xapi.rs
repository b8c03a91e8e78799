//! The XAPI driver's registration: `kind: xapi` (a XenServer / XCP-ng pool through XAPI's
//! JSON-RPC). `prepare` makes `password_file` and `ca_file` absolute beside the inventory; `open`
//! reads the password (from `password_env` or `password_file`, never from the section itself). It
//! keeps no files and runs on the wall clock.
//!
//! This module knows the XAPI driver's section; it must not know stores or callers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drover_command::ArgvTemplate;
use drover_core::Cluster;
use drover_driver::Driver;
use drover_schema::inventory::{CommandStep, DriverSection, XapiSection, XapiTransport};
use drover_xapi::driver::XapiTimings;
use drover_xapi::{Transport, XapiClient, XapiConnection, XapiDriver};

use crate::{
    beside_inventory, upgrade_plans, OpenContext, PrepareContext, Prepared, Registration,
    RegistryError, RunDriver,
};

pub(crate) const REGISTRATION: Registration = Registration {
    kind: "xapi",
    prepare,
    open,
    vm_actions: drover_xapi::driver::VM_ACTIONS,
};

fn section_of(section: &DriverSection) -> Result<&XapiSection, RegistryError> {
    match section {
        DriverSection::Xapi(xapi) => Ok(xapi),
        other => Err(RegistryError::Recorded(format!(
            "a {} section given to the xapi driver",
            other.kind()
        ))),
    }
}

fn prepare(section: &DriverSection, context: &PrepareContext) -> Result<Prepared, RegistryError> {
    let mut xapi = section_of(section)?.clone();
    let resolve = |file: &Option<String>| {
        file.as_ref().map(|file| {
            beside_inventory(context.inventory_path, Path::new(file))
                .display()
                .to_string()
        })
    };
    xapi.password_file = resolve(&xapi.password_file);
    xapi.ca_file = resolve(&xapi.ca_file);
    Ok(Prepared {
        section: DriverSection::Xapi(xapi),
        time_scale: 1.0,
    })
}

fn bad_config(detail: String) -> RegistryError {
    RegistryError::BadConfig {
        kind: "xapi",
        detail,
    }
}

fn password(xapi: &XapiSection) -> Result<String, RegistryError> {
    if let Some(variable) = &xapi.password_env {
        return std::env::var(variable).map_err(|_| {
            bad_config(format!(
                "the environment variable {variable} (password_env) is not set"
            ))
        });
    }
    if let Some(file) = &xapi.password_file {
        let text = std::fs::read_to_string(file)
            .map_err(|error| bad_config(format!("cannot read password_file {file}: {error}")))?;
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    Err(bad_config("no password_env or password_file".into()))
}

fn open(run_driver: &RunDriver, context: &OpenContext) -> Result<Arc<dyn Driver>, RegistryError> {
    let xapi = section_of(&run_driver.section)?;
    // The catalog's hotfix set per host, in the order the plan gives (prerequisites first).
    let hotfixes = upgrade_plans(run_driver)
        .into_iter()
        .filter(|(_, plan)| !plan.hotfixes.is_empty())
        .map(|(host, plan)| (host, plan.hotfixes))
        .collect();
    Ok(Arc::new(
        driver_of(xapi, context.cluster)?.with_hotfixes(hotfixes),
    ))
}

/// Each host's pending updates as the pool reports them (`latest_synced_updates_applied`), for
/// `drover check`. A relative `password_file` is read from the current directory here (a run
/// resolves it beside the inventory).
pub(crate) async fn pending_updates(
    xapi: &XapiSection,
    cluster: &Cluster,
) -> Result<crate::HostUpdates, RegistryError> {
    let driver = driver_of(xapi, cluster)?;
    let pending = driver
        .updates_pending()
        .await
        .map_err(|error| RegistryError::Unavailable {
            kind: "xapi",
            detail: error.to_string(),
        })?;
    Ok(pending
        .into_iter()
        .map(|(host, pending)| (host, Ok(pending)))
        .collect())
}

fn driver_of(xapi: &XapiSection, cluster: &Cluster) -> Result<XapiDriver, RegistryError> {
    let connection = XapiConnection {
        url: xapi.url.clone(),
        username: xapi.username.clone(),
        password: password(xapi)?,
        ca_file: xapi.ca_file.as_ref().map(Into::into),
        insecure: xapi.insecure,
        request_timeout: Duration::from_secs(xapi.request_timeout_secs),
    };
    let transport = match xapi.transport {
        XapiTransport::Auto => Transport::Auto,
        XapiTransport::Jsonrpc => Transport::JsonRpc,
        XapiTransport::Xmlrpc => Transport::XmlRpc,
    };
    let client = XapiClient::with_transport(connection, transport)
        .map_err(|error| bad_config(error.to_string()))?;
    let timings = XapiTimings {
        migration_timeout: Duration::from_secs(xapi.migration_timeout_secs),
        task_poll: Duration::from_millis(xapi.task_poll_ms),
        upgrade_timeout: Duration::from_secs(xapi.upgrade_timeout_secs),
    };
    let upgrade_command = xapi
        .commands
        .get(&CommandStep::Upgrade)
        .map(|argv| ArgvTemplate::for_step(CommandStep::Upgrade, argv))
        .transpose()
        .map_err(|error| bad_config(error.to_string()))?;
    Ok(XapiDriver::new(client, timings, cluster, upgrade_command))
}
