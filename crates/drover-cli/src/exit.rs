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

/// The shared operations' failures keep today's exit codes: bad input 2, no safe plan 3,
/// anything else 1.
impl From<drover_app::AppError> for Failure {
    fn from(error: drover_app::AppError) -> Self {
        use drover_app::AppError as E;
        let code = match &error {
            E::BadInput(_) => EXIT_BAD_INPUT,
            E::NoSafePlan(_) => EXIT_NO_SAFE_PLAN,
            E::Internal(_) => EXIT_INTERNAL,
        };
        Failure::with_code(code, error)
    }
}

/// `drover serve` refused to start on a bad configuration (exit 2) or failed otherwise (1).
impl From<drover_server::ServerError> for Failure {
    fn from(error: drover_server::ServerError) -> Self {
        use drover_server::ServerError as E;
        let code = match &error {
            E::BadConfig(_) => EXIT_BAD_INPUT,
            E::Internal(_) => EXIT_INTERNAL,
        };
        Failure::with_code(code, error)
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
