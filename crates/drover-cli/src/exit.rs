//! How a command fails: the exit code it maps to and the message printed on stderr.
//! Knows nothing of what the commands do.

use std::fmt::Display;
use std::process::ExitCode;

pub const EXIT_INTERNAL: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_NO_SAFE_PLAN: u8 = 3;
pub const EXIT_INVARIANT_BROKEN: u8 = 4;
/// `drover check` could not ask some host (its check command failed or timed out).
pub const EXIT_CHECK_FAILED: u8 = 7;

/// A command's failure: an exit code and what to tell the operator.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub fn bad_input(message: impl Display) -> Self {
        Failure {
            code: EXIT_BAD_INPUT,
            message: message.to_string(),
        }
    }

    pub fn no_safe_plan(message: impl Display) -> Self {
        Failure {
            code: EXIT_NO_SAFE_PLAN,
            message: message.to_string(),
        }
    }

    pub fn invariant_broken(message: impl Display) -> Self {
        Failure {
            code: EXIT_INVARIANT_BROKEN,
            message: message.to_string(),
        }
    }

    pub fn with_code(code: u8, message: impl Display) -> Self {
        Failure {
            code,
            message: message.to_string(),
        }
    }

    pub fn internal(error: impl Display) -> Self {
        Failure {
            code: EXIT_INTERNAL,
            message: error.to_string(),
        }
    }

    pub fn report(self) -> ExitCode {
        eprintln!("error: {}", self.message);
        ExitCode::from(self.code)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::internal(format!("{error:#}"))
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::internal(error)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
