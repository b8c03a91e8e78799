//! The world behind every front-end: the inventory's cluster run by the simulator, with the
//! faults of the inventory's `kind: simulator` section (none for another kind of section), on the
//! wall clock sped up `time_scale` times.
//!
//! This module must not know any wire protocol.

use std::path::Path;

use drover_core::Cluster;
use drover_driver::{wall_now_ms, Clock};
use drover_schema::inventory::DriverSection;
use drover_sim::driver::SimDriver;

use crate::EmulatorError;

/// An opened world: the cluster as the inventory describes it and the platform running it.
pub struct World {
    pub cluster: Cluster,
    pub driver: SimDriver,
    /// How many times faster than the wall clock platform time runs.
    pub time_scale: f64,
}

/// Opens the world of the inventory at `path`. `time_scale` overrides the section's (which may be
/// 0, virtual time, that a server answering real clients cannot use).
pub fn open(path: &Path, time_scale: Option<f64>) -> Result<World, EmulatorError> {
    let text = std::fs::read_to_string(path).map_err(|error| EmulatorError::Read {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    let file = drover_schema::parse_inventory_file(&text, &path.display().to_string())
        .map_err(|error| EmulatorError::Inventory(error.to_string()))?;
    let section = match &file.driver {
        DriverSection::Simulator(simulator) => simulator.clone(),
        _ => Default::default(),
    };
    let scale = match time_scale {
        Some(scale) if scale > 0.0 => scale,
        _ if section.time_scale > 0.0 => section.time_scale,
        _ => 1.0,
    };
    let now_ms = wall_now_ms();
    let clock = Clock::anchored(now_ms, now_ms, scale);
    let config = drover_drivers::sim_driver_config(&section);
    let driver = SimDriver::new(&file.cluster, clock, config)
        .map_err(|error| EmulatorError::World(error.to_string()))?;
    Ok(World {
        cluster: file.cluster,
        driver,
        time_scale: scale,
    })
}
