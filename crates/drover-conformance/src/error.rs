//! `ConformanceError`, the one error type of the suite: why a check failed. Every variant names
//! the call or the state it is about, so a report line says what to fix; this module must not
//! know which checks exist.

use std::time::Duration;

use drover_driver::DriverError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConformanceError {
    /// A call failed that the contract says must succeed.
    #[error("{call} failed: {error}")]
    CallFailed { call: String, error: DriverError },
    /// A call succeeded or failed in a way the contract does not allow.
    #[error("{call}: expected {expected}, got {got}")]
    WrongAnswer {
        call: String,
        expected: String,
        got: String,
    },
    /// A call did not return within its bound.
    #[error("{call} did not return within {} ms", timeout.as_millis())]
    TimedOut { call: String, timeout: Duration },
    /// A call panicked instead of returning a `DriverError`.
    #[error("{call} panicked: {message}")]
    Panicked { call: String, message: String },
    /// What the platform shows after the calls is not what they should have done.
    #[error("{0}")]
    WrongState(String),
    /// The platform is not as the fixture describes it (a check's precondition).
    #[error("the fixture does not match the platform: {0}")]
    Fixture(String),
}

/// A check's outcome once it has undone what it changed: the check's own failure comes first,
/// and a failed undo fails a check that passed (the next checks would start from a wrong state).
pub(crate) fn after_restoring(
    outcome: Result<String, ConformanceError>,
    restored: Result<(), ConformanceError>,
) -> Result<String, ConformanceError> {
    match (outcome, restored) {
        (outcome, Ok(())) => outcome,
        (Ok(_), Err(restore)) => Err(ConformanceError::WrongState(format!(
            "the check passed, but undoing what it changed failed: {restore}"
        ))),
        (Err(failure), Err(restore)) => Err(ConformanceError::WrongState(format!(
            "{failure}; undoing what the check changed failed too: {restore}"
        ))),
    }
}
