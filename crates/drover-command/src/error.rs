//! The crate's one error type: configuration mistakes found when a driver is built, and step
//! failures found when a command runs. Its text is what lands in Drover's journal and end report,
//! so every message names the step and what went wrong in the operator's terms.
//!
//! This module knows nothing of how templates are parsed or how processes are run.

use std::fmt;

use drover_driver::DriverError;

/// Which step a command ran for and what it was about ("upgrade (host xs01)"), for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepContext {
    /// The step as written in inventories (`enter_maintenance`), or a caller's own name for it.
    pub step: String,
    /// What the step acts on ("host xs01", "vm web-01 from xs01 to xs02"); may be empty.
    pub subject: String,
}

impl StepContext {
    pub fn new(step: impl Into<String>, subject: impl Into<String>) -> Self {
        StepContext {
            step: step.into(),
            subject: subject.into(),
        }
    }
}

impl fmt::Display for StepContext {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            formatter.write_str(&self.step)
        } else {
            write!(formatter, "{} ({})", self.step, self.subject)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Host commands that cannot do what is asked: a step without a command, or a `reboot`
    /// without the `host_facts` that proves it (`host_commands`).
    #[error("{0}")]
    HostCommandsIncomplete(String),

    /// A step's argv is empty.
    #[error("command for step {step} is empty: list the program and its arguments")]
    EmptyArgv { step: String },

    /// A `{` or `}` that is neither a placeholder nor a doubled literal brace.
    #[error("command for step {step}, argument {argument_index} ({argument:?}): {problem}")]
    BraceSyntax {
        step: String,
        argument_index: usize,
        argument: String,
        problem: String,
    },

    /// A placeholder name Drover does not know.
    #[error(
        "command for step {step} uses unknown placeholder {{{placeholder}}}; known placeholders: {known} (write {{{{ and }}}} for literal braces)"
    )]
    UnknownPlaceholder {
        step: String,
        placeholder: String,
        known: String,
    },

    /// A known placeholder that has no value for this step (`{vm}` in `upgrade`).
    #[error(
        "command for step {step} uses placeholder {{{placeholder}}}, which has no value for this step; this step has: {available}"
    )]
    PlaceholderNotAvailable {
        step: String,
        placeholder: String,
        available: String,
    },

    /// A placeholder in the program itself: a name must never choose what runs.
    #[error(
        "command for step {step}: the program {program:?} contains a placeholder; the program must be fixed text"
    )]
    PlaceholderInProgram { step: String, program: String },

    /// A placeholder where shell quoting cannot protect it (inside quotes, a comment, backticks…).
    #[error("command for step {step}: placeholder {{{placeholder}}} {problem}")]
    UnsafeShellPlaceholder {
        step: String,
        placeholder: String,
        problem: String,
    },

    /// A shell invoked with options that hide which argument is the script (`sh -ec …`).
    #[error(
        "command for step {step}: {program} is given {option:?} with placeholders; write exactly [{program}, \"-c\", SCRIPT, ...] (put `set -e` and the like inside SCRIPT) so Drover can quote the values"
    )]
    AmbiguousShellInvocation {
        step: String,
        program: String,
        option: String,
    },

    /// An address was given for a host the inventory does not list.
    #[error("an address is given for host {host:?}, which the inventory does not list")]
    AddressForUnknownHost { host: String },

    /// A zero timeout would fail every call at once.
    #[error("the timeout of step {step} is zero")]
    ZeroTimeout { step: String },

    /// The policy raises the cluster compatibility level but no command can do it.
    #[error("policy.raise_compatibility_level_to is {level:?} but the command driver has no set_compatibility_level command: add driver.commands.set_compatibility_level (placeholders {{level}}, {{cluster}}) or leave the policy key out")]
    CompatibilityLevelNotConfigured { level: String },

    /// The step was called but no command is configured for it.
    #[error("step {step} is not configured for the command driver")]
    NotConfigured { step: String },

    /// A value could not be passed (a NUL byte cannot be in an argument or be shell-quoted).
    #[error("{context}: the value of {{{placeholder}}} contains a NUL byte and cannot be passed")]
    UnpassableValue {
        context: Box<StepContext>,
        placeholder: String,
    },

    /// A value that starts with `-` where the program would read it as an option (a VM named
    /// `--help` passed to `virsh start {vm}`).
    #[error(
        "{context}: the value of {{{placeholder}}} is {value:?}, which starts with '-': {program} would read it as an option; \
         put a `--` argument before the values in this command if {program} accepts one, or set \
         `driver.allow_option_like_values: true` if it reads this argument as a value"
    )]
    OptionLikeValue {
        context: Box<StepContext>,
        program: String,
        placeholder: String,
        value: String,
    },

    /// Rendering found no value for a placeholder that validation allowed (a Drover bug).
    #[error("{context}: no value for placeholder {{{placeholder}}} (this is a bug in Drover)")]
    MissingValue {
        context: Box<StepContext>,
        placeholder: String,
    },

    /// The program could not be started (not found, not executable).
    #[error("{context}: program {program:?} could not be started: {cause}")]
    SpawnFailed {
        context: Box<StepContext>,
        program: String,
        cause: String,
    },

    /// The program ran and exited with a non-zero code.
    #[error(
        "{context}: program {program:?} exited with code {exit_code} after {elapsed}{output_tail}"
    )]
    NonZeroExit {
        context: Box<StepContext>,
        program: String,
        exit_code: i32,
        /// "1.2 s".
        elapsed: String,
        /// "; last lines of stderr:\n  …", or empty.
        output_tail: String,
    },

    /// The program was ended by a signal Drover did not send.
    #[error("{context}: program {program:?} was killed by {signal} after {elapsed}{output_tail}")]
    Killed {
        context: Box<StepContext>,
        program: String,
        /// "signal 9", or "an unknown cause" where the platform has no signals.
        signal: String,
        elapsed: String,
        output_tail: String,
    },

    /// The program ran past the step's timeout and was killed.
    #[error(
        "{context}: program {program:?} timed out after {timeout} and was killed{output_tail}"
    )]
    TimedOut {
        context: Box<StepContext>,
        program: String,
        /// "30 s".
        timeout: String,
        output_tail: String,
    },

    /// The program succeeded but its output is not what the step's contract says.
    #[error("{context}: program {program:?} printed {problem}; expected {expected}{output_tail}")]
    MalformedOutput {
        context: Box<StepContext>,
        program: String,
        problem: String,
        expected: String,
        output_tail: String,
    },
}

impl From<CommandError> for DriverError {
    /// Every command failure is a plain failure: Drover cannot tell from an exit code whether
    /// another destination would help, so it never claims a refusal.
    fn from(error: CommandError) -> Self {
        DriverError::Failed(error.to_string())
    }
}
