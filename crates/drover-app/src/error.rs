//! How a shared operation fails: one enum whose variant says what kind of failure it is (bad
//! input, no safe plan, internal), with the message for the operator. Each front end maps it
//! its own way: the CLI to an exit code, the server to an HTTP problem.
//!
//! This module must not know exit codes or HTTP statuses.

use std::fmt::Display;

/// Why a shared operation failed. The message is complete: front ends print it as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The inventory, the release catalog, a flag or a stored choice is wrong (the operator's
    /// to fix).
    #[error("{0}")]
    BadInput(String),
    /// The plan cannot be carried out safely (a precheck failed, no placement exists).
    #[error("{0}")]
    NoSafePlan(String),
    /// Anything else: a store, a runtime or a simulated platform that failed.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn bad_input(message: impl Display) -> Self {
        AppError::BadInput(message.to_string())
    }

    pub fn no_safe_plan(message: impl Display) -> Self {
        AppError::NoSafePlan(message.to_string())
    }

    pub fn internal(error: impl Display) -> Self {
        AppError::Internal(error.to_string())
    }
}
