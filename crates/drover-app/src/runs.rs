//! What starting, resuming and showing a run takes in either front end beyond the engine: a
//! free run id and the inventory's hash.
//!
//! Knows the store; must not drive a run (the engine does) or render.

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
