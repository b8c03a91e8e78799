//! The checks of a host's two marks: cordon (allocation) and maintenance. Each sets its mark
//! twice, clears it twice, looks at `host_facts` and discovery after each, and always ends with
//! the mark cleared.
//!
//! This module knows the fixture and the driver's calls, not the order checks run in.

use drover_core::HostState;
use drover_driver::Driver;

use crate::call::succeeds;
use crate::error::{after_restoring, ConformanceError};
use crate::fixture::Fixture;
use crate::observe::{discover, facts};
use crate::restore::leave_maintenance;

/// Cordon twice, uncordon twice: the repeats return at once; host_facts and discovery show
/// each state.
pub async fn cordon_is_idempotent_and_discovered(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    let host = fixture.cordon_host.as_str();
    let outcome = cordon_twice_and_back(driver, fixture, host).await;
    let uncordon = format!("set_allocation({host}, true)");
    let restored = succeeds(
        &uncordon,
        fixture.timeouts.call,
        driver.set_allocation(host, true),
    )
    .await;
    after_restoring(outcome, restored)
}

async fn cordon_twice_and_back(
    driver: &dyn Driver,
    fixture: &Fixture,
    host: &str,
) -> Result<String, ConformanceError> {
    let before = facts(driver, fixture, host).await?;
    if before.cordoned {
        return Err(ConformanceError::Fixture(format!(
            "cordon host {host} is cordoned at the start"
        )));
    }
    for cordoned in [true, false] {
        let call = format!("set_allocation({host}, {})", !cordoned);
        succeeds(
            &call,
            fixture.timeouts.call,
            driver.set_allocation(host, !cordoned),
        )
        .await?;
        let repeat = format!("{call} repeated");
        succeeds(
            &repeat,
            fixture.timeouts.repeated_call,
            driver.set_allocation(host, !cordoned),
        )
        .await?;
        let facts = facts(driver, fixture, host).await?;
        if facts.cordoned != cordoned {
            return Err(ConformanceError::WrongState(format!(
                "after {repeat}, host_facts says cordoned {}",
                facts.cordoned
            )));
        }
        let discovered_cordoned = discover(driver, fixture).await?.host(host)?.cordoned;
        if discovered_cordoned != cordoned {
            return Err(ConformanceError::WrongState(format!(
                "after {repeat}, discovery says cordoned {discovered_cordoned}"
            )));
        }
    }
    Ok(format!(
        "host {host} cordoned and uncordoned twice each; facts and discovery followed"
    ))
}

/// Enter maintenance twice, leave it twice: the repeats return at once; host_facts and
/// discovery show each state.
pub async fn maintenance_is_idempotent_and_discovered(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    let host = fixture.maintenance_host.as_str();
    let outcome = maintenance_twice_and_back(driver, fixture, host).await;
    let restored = leave_maintenance(driver, fixture, host).await;
    after_restoring(outcome, restored)
}

async fn maintenance_twice_and_back(
    driver: &dyn Driver,
    fixture: &Fixture,
    host: &str,
) -> Result<String, ConformanceError> {
    discover(driver, fixture)
        .await?
        .require_empty(host, "the maintenance check")?;
    if facts(driver, fixture, host).await?.in_maintenance {
        return Err(ConformanceError::Fixture(format!(
            "maintenance host {host} is in maintenance at the start"
        )));
    }
    for (enabled, state) in [(true, HostState::Maintenance), (false, HostState::Up)] {
        let call = format!("set_maintenance({host}, {enabled})");
        succeeds(
            &call,
            fixture.timeouts.call,
            driver.set_maintenance(host, enabled),
        )
        .await?;
        let repeat = format!("{call} repeated");
        succeeds(
            &repeat,
            fixture.timeouts.repeated_call,
            driver.set_maintenance(host, enabled),
        )
        .await?;
        let facts = facts(driver, fixture, host).await?;
        if facts.in_maintenance != enabled {
            return Err(ConformanceError::WrongState(format!(
                "after {repeat}, host_facts says in_maintenance {}",
                facts.in_maintenance
            )));
        }
        discover(driver, fixture)
            .await?
            .require_host_state(host, state, &repeat)?;
    }
    Ok(format!(
        "host {host} entered and left maintenance twice each; facts and discovery followed"
    ))
}
