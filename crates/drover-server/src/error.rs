//! Why `drover serve` could not start or stopped with an error: a bad configuration (the file,
//! a flag, the state file, the address, the TLS files), refused before anything starts, or
//! anything else. Errors of API calls are `problem::ApiError`, not this.
//!
//! This module must not know exit codes: the CLI maps `BadConfig` to 2 and the rest to 1.

use std::fmt::Display;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// Refused before anything starts; the message names the file, flag or field.
    #[error("{0}")]
    BadConfig(String),
    #[error("{0}")]
    Internal(String),
}

impl ServerError {
    pub fn bad_config(message: impl Display) -> Self {
        ServerError::BadConfig(message.to_string())
    }

    pub fn internal(error: impl Display) -> Self {
        ServerError::Internal(error.to_string())
    }
}

impl From<std::io::Error> for ServerError {
    fn from(error: std::io::Error) -> Self {
        ServerError::internal(error)
    }
}
