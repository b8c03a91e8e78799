//! The checks that change nothing: discovery's consistency, host facts against discovery, an
//! unknown host, health checks.
//!
//! This module knows the fixture and the driver's calls, not the order checks run in.

use std::collections::BTreeSet;

use drover_core::{HostState, VmState};
use drover_driver::{Driver, DriverError};

use crate::call::{bounded, succeeds};
use crate::error::ConformanceError;
use crate::fixture::{Fixture, UNKNOWN_HOST};
use crate::observe::discover;

/// Discovery lists unique names, every VM on a discovered host, and the fixture's hosts and VMs
/// as the fixture describes them.
pub async fn discovery_is_consistent(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    let seen = discover(driver, fixture).await?;
    let discovered = &seen.discovered;
    if let Some(name) = first_duplicate(discovered.hosts.iter().map(|h| h.name.as_str())) {
        return Err(ConformanceError::WrongState(format!(
            "discovery lists host {name} twice"
        )));
    }
    if let Some(name) = first_duplicate(discovered.vms.iter().map(|v| v.name.as_str())) {
        return Err(ConformanceError::WrongState(format!(
            "discovery lists VM {name} twice"
        )));
    }
    for vm in &discovered.vms {
        seen.placement(&vm.name)?;
    }
    for name in &fixture.healthy_hosts {
        let host = seen.host(name).map_err(as_fixture_error)?;
        if host.state != HostState::Up || host.cordoned {
            return Err(ConformanceError::Fixture(format!(
                "healthy host {name} is {:?}{} at the start",
                host.state,
                if host.cordoned { " and cordoned" } else { "" }
            )));
        }
    }
    for name in [
        &fixture.cordon_host,
        &fixture.maintenance_host,
        &fixture.upgrade.host,
        &fixture.migration.to,
        &fixture.power.host,
    ] {
        seen.host(name).map_err(as_fixture_error)?;
    }
    let migrating = seen
        .placement(&fixture.migration.vm)
        .map_err(as_fixture_error)?;
    if (migrating.host.as_str(), migrating.state)
        != (fixture.migration.from.as_str(), VmState::Running)
    {
        return Err(ConformanceError::Fixture(format!(
            "VM {} is {migrating}, not running on {}",
            fixture.migration.vm, fixture.migration.from
        )));
    }
    let powered = seen
        .placement(&fixture.power.vm)
        .map_err(as_fixture_error)?;
    if powered.state != VmState::Running {
        return Err(ConformanceError::Fixture(format!(
            "VM {} is {powered}, not running",
            fixture.power.vm
        )));
    }
    Ok(format!(
        "{} hosts and {} VMs, names unique, every VM on a discovered host",
        discovered.hosts.len(),
        discovered.vms.len()
    ))
}

fn first_duplicate<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = BTreeSet::new();
    names.into_iter().find(|name| !seen.insert(*name))
}

/// A name the fixture gives that discovery lacks is the fixture's mistake, not the driver's.
fn as_fixture_error(error: ConformanceError) -> ConformanceError {
    match error {
        ConformanceError::WrongState(text) => ConformanceError::Fixture(text),
        other => other,
    }
}

/// `host_facts` of every host that answers agrees with discovery on version, maintenance and
/// cordon.
pub async fn host_facts_match_discovery(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    let seen = discover(driver, fixture).await?;
    let mut disagreements = Vec::new();
    let mut compared = 0;
    for host in &seen.discovered.hosts {
        if host.state == HostState::Down {
            continue;
        }
        let call = format!("host_facts({})", host.name);
        let facts = succeeds(&call, fixture.timeouts.call, driver.host_facts(&host.name)).await?;
        compared += 1;
        let in_maintenance = host.state == HostState::Maintenance;
        if facts.version != host.version {
            disagreements.push(format!(
                "{}: version {} in host_facts, {} in discovery",
                host.name, facts.version, host.version
            ));
        }
        if facts.in_maintenance != in_maintenance {
            disagreements.push(format!(
                "{}: in_maintenance {} in host_facts, state {:?} in discovery",
                host.name, facts.in_maintenance, host.state
            ));
        }
        if facts.cordoned != host.cordoned {
            disagreements.push(format!(
                "{}: cordoned {} in host_facts, {} in discovery",
                host.name, facts.cordoned, host.cordoned
            ));
        }
    }
    match disagreements.is_empty() {
        true => Ok(format!(
            "the facts of {compared} hosts match discovery (version, maintenance, cordon)"
        )),
        false => Err(ConformanceError::WrongState(disagreements.join("; "))),
    }
}

/// `host_facts` of a host the platform does not have is `NotFound`.
pub async fn host_facts_of_unknown_host_is_not_found(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    let call = format!("host_facts({UNKNOWN_HOST})");
    match bounded(
        &call,
        fixture.timeouts.call,
        driver.host_facts(UNKNOWN_HOST),
    )
    .await?
    {
        Err(DriverError::NotFound(text)) => Ok(format!("NotFound: {text}")),
        other => Err(ConformanceError::WrongAnswer {
            call,
            expected: "Err(NotFound)".into(),
            got: format!("{other:?}"),
        }),
    }
}

/// `health_check` of every healthy host is Ok.
pub async fn health_check_of_healthy_hosts_is_ok(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    for host in &fixture.healthy_hosts {
        let call = format!("health_check({host})");
        succeeds(&call, fixture.timeouts.call, driver.health_check(host)).await?;
    }
    Ok(format!(
        "{} healthy hosts pass their health check",
        fixture.healthy_hosts.len()
    ))
}
