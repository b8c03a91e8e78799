//! What starting, resuming and stopping a run takes in either front end, beyond the engine: a
//! free run id, the inventory's hash, the store's durability in virtual time, saving the
//! simulated platform when the engine stops, and the run's platform time now.
//!
//! Knows the store and the driver choice; must not drive a run (the engine does) or render.

use drover_core::execution::Execution;
use drover_store::Store;

use crate::drivers::{AnyDriver, DriverChoice};
use crate::error::AppError;

/// `CLUSTER-YYYYMMDD-HHMMSS`, with `-2`, `-3`… when runs start within the same second.
pub fn unused_run_id(store: &Store, cluster: &str) -> Result<String, AppError> {
    let now = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
    let base = format!("{cluster}-{now}");
    for suffix in 1..1000 {
        let candidate = if suffix == 1 {
            base.clone()
        } else {
            format!("{base}-{suffix}")
        };
        if store.run(&candidate).map_err(AppError::internal)?.is_none() {
            return Ok(candidate);
        }
    }
    Err(AppError::internal(format!(
        "no free run id after {base}-999"
    )))
}

/// The hex SHA-256 of a text (a run keeps its inventory's, so `resume -i` can refuse another).
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A run in virtual time finishes in seconds with thousands of journal writes; syncing each to
/// the disk would make it minutes. Its commits still survive a killed process.
pub fn relax_for_virtual_time(store: &mut Store, choice: &DriverChoice) -> Result<(), AppError> {
    if choice.virtual_time() {
        store.relax_durability().map_err(AppError::internal)?;
    }
    Ok(())
}

/// The simulated platform saves itself at once on the wall clock; in virtual time only here,
/// when the engine stopped, so that the next `drover` process finds it as it was left.
pub fn save_platform(driver: &AnyDriver) -> Result<(), AppError> {
    driver
        .save()
        .map_err(|error| AppError::internal(format!("simulator: {error}")))
}

/// The run's platform time now, for "in 4h51m": the run's own clock (wall or scaled), or for
/// virtual time, where no clock runs between processes, the time of its last input.
pub fn platform_now_ms(record: &drover_store::RunRecord, execution: &Execution) -> u64 {
    let file = drover_schema::inventory::parse_inventory_file(&record.inventory_text, "inventory");
    let choice = file
        .ok()
        .and_then(|file| DriverChoice::from_options(&file.driver, &record.options_json).ok());
    match choice {
        Some(choice) if !choice.virtual_time() => choice.new_clock().now_ms(),
        Some(_) => execution.report().now,
        None => drover_engine::clock::wall_now_ms(),
    }
}
