//! The checks of VM calls: migrating an unknown VM, a migration and its repeat, shutdown and
//! start with their repeats. The migrated VM stays on its destination (the fixture relies on
//! that to empty a host); the powered VM always ends running again.
//!
//! This module knows the fixture and the driver's calls, not the order checks run in.

use drover_driver::{Driver, DriverError};
use tokio::time::Instant;

use crate::call::{bounded, succeeds};
use crate::error::{after_restoring, ConformanceError};
use crate::fixture::{Fixture, UNKNOWN_VM};
use crate::observe::{discover, Placement};

/// Migrating a VM the platform does not have is `NotFound` (or `Refused`), never Ok.
pub async fn migrate_of_unknown_vm_is_not_found(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    let (from, to) = (&fixture.migration.from, &fixture.migration.to);
    let call = format!("migrate({UNKNOWN_VM}, {from}, {to})");
    let answer = bounded(
        &call,
        fixture.timeouts.slow_call,
        driver.migrate(UNKNOWN_VM, from, to),
    )
    .await?;
    match answer {
        Err(DriverError::NotFound(text)) => Ok(format!("NotFound: {text}")),
        Err(DriverError::Refused(text)) => Ok(format!("Refused: {text}")),
        other => Err(ConformanceError::WrongAnswer {
            call,
            expected: "Err(NotFound) or Err(Refused)".into(),
            got: format!("{other:?}"),
        }),
    }
}

/// The migration moves the running VM (discovery shows it running on the destination), and the
/// same call again succeeds at once and changes nothing.
pub async fn migrate_moves_the_vm_and_repeats_at_once(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    let migration = &fixture.migration;
    let (vm, from, to) = (&migration.vm, &migration.from, &migration.to);
    let at_start = discover(driver, fixture).await?.placement(vm)?;
    if at_start != Placement::running_on(from) {
        return Err(ConformanceError::Fixture(format!(
            "VM {vm} is {at_start} when the migration check starts, not running on {from}"
        )));
    }
    let call = format!("migrate({vm}, {from}, {to})");
    let started = Instant::now();
    succeeds(
        &call,
        fixture.timeouts.slow_call,
        driver.migrate(vm, from, to),
    )
    .await?;
    let migration_ms = started.elapsed().as_millis();
    let destination = Placement::running_on(to);
    discover(driver, fixture)
        .await?
        .require_placement(vm, &destination, &call)?;
    let repeat = format!("{call} repeated");
    let started = Instant::now();
    succeeds(
        &repeat,
        fixture.timeouts.repeated_call,
        driver.migrate(vm, from, to),
    )
    .await?;
    let repeat_ms = started.elapsed().as_millis();
    discover(driver, fixture)
        .await?
        .require_placement(vm, &destination, &repeat)?;
    Ok(format!(
        "VM {vm} moved from {from} to {to} in {migration_ms} ms; the repeat took {repeat_ms} ms"
    ))
}

/// Shutdown stops the VM, a second shutdown succeeds at once without forcing, start runs it
/// again on its host, a second start succeeds at once; discovery follows each step.
pub async fn shutdown_and_start_are_idempotent_and_discovered(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    let (vm, host) = (&fixture.power.vm, &fixture.power.host);
    let at_start = discover(driver, fixture).await?.placement(vm)?;
    if at_start != Placement::running_on(host) {
        return Err(ConformanceError::Fixture(format!(
            "VM {vm} is {at_start} when the power check starts, not running on {host}"
        )));
    }
    let outcome = stop_twice_and_start_twice(driver, fixture).await;
    // A VM left stopped by a failure part-way would change what later checks see.
    let start = format!("start_vm({vm}, {host})");
    let restored = succeeds(&start, fixture.timeouts.call, driver.start_vm(vm, host)).await;
    after_restoring(outcome, restored)
}

async fn stop_twice_and_start_twice(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    let power = &fixture.power;
    let (vm, host, graceful) = (&power.vm, &power.host, power.graceful_timeout);
    let shutdown = format!("shutdown_vm({vm}, {host}, {} ms)", graceful.as_millis());
    let shutdown_timeout = fixture.timeouts.slow_call + graceful;
    let first = succeeds(
        &shutdown,
        shutdown_timeout,
        driver.shutdown_vm(vm, host, graceful),
    )
    .await?;
    let stopped = Placement::stopped_on(host);
    discover(driver, fixture)
        .await?
        .require_placement(vm, &stopped, &shutdown)?;
    let repeat = format!("{shutdown} repeated");
    let again = succeeds(
        &repeat,
        fixture.timeouts.repeated_call,
        driver.shutdown_vm(vm, host, graceful),
    )
    .await?;
    if again.forced {
        return Err(ConformanceError::WrongAnswer {
            call: repeat,
            expected: "forced: false (the VM was already stopped)".into(),
            got: "forced: true".into(),
        });
    }
    discover(driver, fixture)
        .await?
        .require_placement(vm, &stopped, &repeat)?;
    let start = format!("start_vm({vm}, {host})");
    succeeds(&start, fixture.timeouts.call, driver.start_vm(vm, host)).await?;
    let running = Placement::running_on(host);
    discover(driver, fixture)
        .await?
        .require_placement(vm, &running, &start)?;
    let repeat = format!("{start} repeated");
    succeeds(
        &repeat,
        fixture.timeouts.repeated_call,
        driver.start_vm(vm, host),
    )
    .await?;
    discover(driver, fixture)
        .await?
        .require_placement(vm, &running, &repeat)?;
    Ok(format!(
        "VM {vm} stopped ({}), stopped again at once, started on {host}, started again at once",
        if first.forced {
            "forced off"
        } else {
            "gracefully"
        }
    ))
}
