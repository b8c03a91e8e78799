//! The undo steps checks end with, whether they passed or not, so the next check starts from
//! the state the fixture describes. Each is itself an idempotent driver call.
//!
//! This module knows the driver's calls and the fixture's timeouts, nothing of checks.

use drover_driver::Driver;

use crate::call::succeeds;
use crate::error::ConformanceError;
use crate::fixture::Fixture;

/// Takes a host out of maintenance.
pub(crate) async fn leave_maintenance(
    driver: &dyn Driver,
    fixture: &Fixture,
    host: &str,
) -> Result<(), ConformanceError> {
    let call = format!("set_maintenance({host}, false)");
    succeeds(
        &call,
        fixture.timeouts.call,
        driver.set_maintenance(host, false),
    )
    .await
}
