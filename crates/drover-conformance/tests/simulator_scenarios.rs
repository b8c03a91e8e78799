//! The run-level scenarios on the simulator, opened through the registry as `drover run` opens
//! it: the scenario's world as the inventory, with a `time_scale` (a platform on a scaled wall
//! clock that saves its world file after every change, so it outlives a killed process, as a
//! real one does) and the world file beside the inventory, which the fixture reads to observe the
//! platform without going through the driver under test.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use drover_conformance::{Scenario, Stage, Staged};
use drover_driver::Clock;
use drover_schema::inventory::{DriverSection, SimulatorSection};
use drover_sim::driver::{SimDriver, SimDriverConfig, WorldSnapshot};

/// Platform time runs this many times faster than the wall clock: a scenario's run (minutes of
/// platform time) takes seconds.
const TIME_SCALE: f64 = 200.0;

struct Simulator;

/// The platform as its world file says now, settled at the run's clock: a copy of the file opened
/// by a second, throwaway simulator (the run's own keeps writing the original).
fn observe(
    world_file: &Path,
    copy: &Path,
    cluster: &drover_core::Cluster,
    section: &SimulatorSection,
    clock: &Clock,
) -> Result<WorldSnapshot, String> {
    std::fs::copy(world_file, copy).map_err(|error| format!("copying the world file: {error}"))?;
    // The same faults: a world file is read only by a platform with the rules it was written by.
    let config = SimDriverConfig {
        state_file: Some(copy.to_path_buf()),
        save_only_on_request: true,
        ..drover_drivers::sim_driver_config(section)
    };
    let reader = SimDriver::new(cluster, clock.clone(), config).map_err(|e| e.to_string())?;
    Ok(reader.snapshot())
}

#[async_trait::async_trait]
impl Stage for Simulator {
    fn platform(&self) -> String {
        format!("the simulator through the registry at {TIME_SCALE}× the wall clock")
    }

    fn opt_out(&self, _scenario: Scenario) -> Option<String> {
        None
    }

    async fn stage(
        &self,
        scenario: Scenario,
        world: &str,
        directory: &Path,
    ) -> Result<Staged, String> {
        let hosts_and_vms = world.split("driver:").next().unwrap_or(world);
        let inventory_text = format!(
            "{hosts_and_vms}driver: {{kind: simulator, seed: 11, time_scale: {TIME_SCALE}, state_file: world.json, faults: {}}}\n",
            scenario.faults()
        );
        let file = drover_schema::parse_inventory_file(&inventory_text, "inventory.yaml")
            .map_err(|error| error.to_string())?;
        let DriverSection::Simulator(section) = file.driver else {
            return Err("a simulator section".into());
        };
        let cluster = file.cluster;
        let world_file: PathBuf = directory.join("world.json");
        let copy = directory.join("observed.json");
        Ok(Staged {
            inventory_text,
            observe: Box::new(move |clock| observe(&world_file, &copy, &cluster, &section, clock)),
            keep_alive: Box::new(()),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_meets_every_scenario() {
    let report = drover_conformance::run_scenarios(Arc::new(Simulator)).await;
    assert_eq!(
        report.passed(),
        drover_conformance::selected_scenarios(),
        "{report}"
    );
}
