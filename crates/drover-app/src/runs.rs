//! What starting, resuming and showing a run takes in either front end beyond the engine: a
//! free run id, the inventory's hash, and the run's platform time now.
//!
//! Knows the store and the recorded driver; must not drive a run (the engine does) or render.

use drover_core::execution::Execution;
use drover_store::RunStore;

use crate::error::AppError;

/// `CLUSTER-YYYYMMDD-HHMMSS`, with `-2`, `-3`… when runs start within the same second.
pub async fn unused_run_id(store: &dyn RunStore, cluster: &str) -> Result<String, AppError> {
    let now = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
    let base = format!("{cluster}-{now}");
    for suffix in 1..1000 {
        let candidate = if suffix == 1 {
            base.clone()
        } else {
            format!("{base}-{suffix}")
        };
        if store
            .run(&candidate)
            .await
            .map_err(AppError::internal)?
            .is_none()
        {
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

/// The run's platform time now, for "in 4h51m": the run's own clock (wall or scaled), or for
/// virtual time, where no clock runs between processes, the time of its last input.
pub fn platform_now_ms(record: &drover_store::RunRecord, execution: &Execution) -> u64 {
    match crate::launch::recorded_run_driver(record) {
        Ok(run_driver) if !run_driver.virtual_time() => run_driver.new_clock().now_ms(),
        Ok(_) => execution.report().now,
        Err(_) => drover_driver::wall_now_ms(),
    }
}
