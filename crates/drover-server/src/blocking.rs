//! Blocking work (journal replays, CPU-bound) run off the API's async workers, with a
//! panicked task answered as an internal error.
//!
//! A leaf: it must not know the handlers, the runs or the store.

use crate::problem::ApiError;

/// Runs blocking work on tokio's blocking threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}
