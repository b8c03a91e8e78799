//! One driver call as the checks make it: under a tokio timeout, with a panic caught and turned
//! into a failed check (the contract says failures are values; a panic must not end the suite
//! before the other checks are reported), and named for the report.
//!
//! This module knows the `Driver` trait's results and nothing of checks or fixtures.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::task::Poll;
use std::time::Duration;

use drover_driver::DriverError;

use crate::error::ConformanceError;

/// Runs `call` within `timeout`: the driver's own answer, or why there is none.
pub(crate) async fn bounded<T>(
    name: &str,
    timeout: Duration,
    call: impl Future<Output = Result<T, DriverError>>,
) -> Result<Result<T, DriverError>, ConformanceError> {
    match tokio::time::timeout(timeout, without_panics(call)).await {
        Err(_elapsed) => Err(ConformanceError::TimedOut {
            call: name.to_string(),
            timeout,
        }),
        Ok(Err(message)) => Err(ConformanceError::Panicked {
            call: name.to_string(),
            message,
        }),
        Ok(Ok(answer)) => Ok(answer),
    }
}

/// Runs `call` within `timeout` and requires it to succeed.
pub(crate) async fn succeeds<T>(
    name: &str,
    timeout: Duration,
    call: impl Future<Output = Result<T, DriverError>>,
) -> Result<T, ConformanceError> {
    bounded(name, timeout, call)
        .await?
        .map_err(|error| ConformanceError::CallFailed {
            call: name.to_string(),
            error,
        })
}

/// `future`'s output, or the message of the panic it raised. Each poll runs under
/// `catch_unwind`; after a panic the future is never polled again, so no broken state of it is
/// observed (hence `AssertUnwindSafe`).
pub(crate) async fn without_panics<T>(future: impl Future<Output = T>) -> Result<T, String> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(move |context| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(context))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    })
    .await
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        return (*text).to_string();
    }
    if let Some(text) = payload.downcast_ref::<String>() {
        return text.clone();
    }
    "a panic without a message".to_string()
}
