//! The operator's commands for what RAPI cannot do (`host_facts`, `health_check`, `upgrade`,
//! `reboot`): Ganeti knows neither the release a node runs nor its boot, and installs nothing;
//! and two cluster steps RAPI has no resource for: `master_failover` (`{host}`: the new master)
//! and `verify` (`{cluster}`).
//! Templates are checked when the driver is built and run by `drover-command` with `{host}` (the
//! node name), `{host.address}` (its primary IP), `{cluster}`, and `{target}` (plus the
//! catalog's `{hops}`, `{hotfixes}`, `{reboots}`) or `{boot_id_before}`.
//!
//! This module knows drover-command, and nothing of RAPI or of when a step runs.
//!
//! The commands themselves are drover-command's `HostCommands`; this module says how RAPI names
//! itself in their messages.

use drover_command::host_commands::CommandPlatform;
pub use drover_command::host_commands::HostCommands;

use crate::GanetiError;

/// The section and words of this platform's host-command messages.
pub const PLATFORM: CommandPlatform = CommandPlatform {
    section: "ganeti",
    api: "RAPI",
    host_word: "node",
};

/// A step without a command (or a reboot without `host_facts`) is the configuration's fault;
/// anything else went wrong running the command.
impl From<drover_command::CommandError> for GanetiError {
    fn from(error: drover_command::CommandError) -> Self {
        match error {
            drover_command::CommandError::HostCommandsIncomplete(detail) => {
                GanetiError::Config(detail)
            }
            other => GanetiError::Command(other.to_string()),
        }
    }
}
