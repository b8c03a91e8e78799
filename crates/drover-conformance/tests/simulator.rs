//! The conformance suite against the simulator, opened through the driver registry from a small
//! inventory, in virtual time (a paused runtime: the half-hour upgrade takes no wall time, and
//! "at once" means no platform time at all).

mod common;

use common::simulated;
use drover_conformance::Check;

#[tokio::test(start_paused = true)]
async fn the_simulator_passes_every_check() {
    let directory = tempfile::tempdir().unwrap();
    let driver = common::open_through_registry(simulated::INVENTORY, directory.path());
    let report = drover_conformance::run_all(driver.as_ref(), &simulated::fixture()).await;
    assert_eq!(report.driver_kind, "simulator");
    assert_eq!(report.passed(), Check::ALL.to_vec());
}
