//! The store's own runtime: one worker thread on which the pool, every connection, every query
//! and every timeout live. Callers hand work over and await a `JoinHandle`, which needs no timer
//! or I/O driver of the caller's runtime, so a paused runtime (virtual time) or one dropped
//! after a few calls cannot break or stall the store's connections.
//!
//! This module must not know SQL or the store's tables.

use std::future::Future;

use drover_store::StoreError;

/// The runtime, shut down without waiting when the store is dropped (possibly from inside
/// another runtime, where a blocking shutdown would panic).
#[derive(Debug)]
pub(crate) struct Background {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Background {
    pub(crate) fn start(url_without_password: &str) -> Result<Background, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("drover-store-postgres")
            .enable_all()
            .build()
            .map_err(|error| StoreError::Database {
                url_without_password: url_without_password.to_string(),
                operation: "starting the store's runtime".to_string(),
                detail: error.to_string(),
            })?;
        Ok(Background {
            runtime: Some(runtime),
        })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the store")
            .handle()
    }

    /// Runs `work` on the store's runtime and awaits its result from any context.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        match self.handle().spawn(work).await {
            Ok(result) => result,
            Err(join_error) if join_error.is_panic() => {
                std::panic::resume_unwind(join_error.into_panic())
            }
            Err(join_error) => Err(StoreError::Database {
                url_without_password: String::new(),
                operation: "a store operation".to_string(),
                detail: format!("cancelled: {join_error}"),
            }),
        }
    }

    /// Runs `work` to completion from synchronous code (`connect`), on a thread that is not a
    /// runtime worker, so it may be called from inside any runtime.
    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let handle = self.handle().clone();
        std::thread::scope(|scope| {
            scope
                .spawn(move || handle.block_on(work))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
