//! The checks of a host's upgrade cycle: the cluster's compatibility level, and upgrade then
//! reboot with their repeats. The upgraded host ends out of maintenance and stays upgraded.
//!
//! This module knows the fixture and the driver's calls, not the order checks run in.

use drover_core::HostState;
use drover_driver::Driver;

use crate::call::succeeds;
use crate::error::{after_restoring, ConformanceError};
use crate::fixture::Fixture;
use crate::observe::{discover, facts};
use crate::restore::leave_maintenance;

/// Setting the compatibility level succeeds; setting the level the cluster already has succeeds
/// at once.
pub async fn compatibility_level_is_idempotent(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    let (cluster, level) = (&fixture.compatibility.cluster, &fixture.compatibility.level);
    let call = format!("set_compatibility_level({cluster}, {level})");
    succeeds(
        &call,
        fixture.timeouts.call,
        driver.set_compatibility_level(cluster, level),
    )
    .await?;
    let repeat = format!("{call} repeated");
    succeeds(
        &repeat,
        fixture.timeouts.repeated_call,
        driver.set_compatibility_level(cluster, level),
    )
    .await?;
    Ok(format!("cluster {cluster} set to level {level} twice"))
}

/// Upgrade of a host in maintenance, then reboot with the boot id from before: the host runs
/// the target with a new boot id; upgrade and reboot with the old boot id again do nothing.
pub async fn upgrade_then_reboot_change_version_and_boot_id_once(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    let host = fixture.upgrade.host.as_str();
    let outcome = upgrade_and_reboot(driver, fixture, host).await;
    let restored = leave_maintenance(driver, fixture, host).await;
    let outcome = after_restoring(outcome, restored)?;
    let target = &fixture.upgrade.target;
    let seen = discover(driver, fixture).await?;
    let after = "the upgrade and leaving maintenance";
    seen.require_host_state(host, HostState::Up, after)?;
    let version = &seen.host(host)?.version;
    match version == target {
        true => Ok(outcome),
        false => Err(ConformanceError::WrongState(format!(
            "after {after}, discovery shows host {host} at {version}, expected {target}"
        ))),
    }
}

async fn upgrade_and_reboot(
    driver: &dyn Driver,
    fixture: &Fixture,
    host: &str,
) -> Result<String, ConformanceError> {
    let target = &fixture.upgrade.target;
    discover(driver, fixture)
        .await?
        .require_empty(host, "the upgrade check")?;
    let before = facts(driver, fixture, host).await?;
    if before.version >= *target {
        return Err(ConformanceError::Fixture(format!(
            "upgrade host {host} already runs {}, not older than the target {target}",
            before.version
        )));
    }
    let enter = format!("set_maintenance({host}, true)");
    succeeds(
        &enter,
        fixture.timeouts.call,
        driver.set_maintenance(host, true),
    )
    .await?;
    let upgrade = format!("upgrade({host}, {target})");
    succeeds(
        &upgrade,
        fixture.timeouts.slow_call,
        driver.upgrade(host, target),
    )
    .await?;
    let old_boot_id = before.boot_id.as_str();
    let reboot = format!("reboot({host}, {old_boot_id})");
    succeeds(
        &reboot,
        fixture.timeouts.slow_call,
        driver.reboot(host, old_boot_id),
    )
    .await?;
    let after = facts(driver, fixture, host).await?;
    if after.version != *target || after.boot_id == before.boot_id {
        return Err(ConformanceError::WrongState(format!(
            "after {upgrade} and {reboot}, host_facts says version {} boot id {}; expected {target} \
             and a boot id other than {old_boot_id}",
            after.version, after.boot_id
        )));
    }
    let repeat_upgrade = format!("{upgrade} repeated");
    succeeds(
        &repeat_upgrade,
        fixture.timeouts.repeated_call,
        driver.upgrade(host, target),
    )
    .await?;
    let repeat_reboot = format!("{reboot} repeated");
    succeeds(
        &repeat_reboot,
        fixture.timeouts.repeated_call,
        driver.reboot(host, old_boot_id),
    )
    .await?;
    let last = facts(driver, fixture, host).await?;
    if last.boot_id != after.boot_id || last.version != *target {
        return Err(ConformanceError::WrongState(format!(
            "after {repeat_upgrade} and {repeat_reboot}, host_facts says version {} boot id {}; \
             expected {target} and the unchanged boot id {}",
            last.version, last.boot_id, after.boot_id
        )));
    }
    let health = format!("health_check({host})");
    succeeds(&health, fixture.timeouts.call, driver.health_check(host)).await?;
    Ok(format!(
        "host {host} upgraded from {} to {target}, boot id {old_boot_id} -> {}; the repeats \
         changed nothing",
        before.version, after.boot_id
    ))
}
