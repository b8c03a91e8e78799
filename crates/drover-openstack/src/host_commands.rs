//! The operator's commands for what the Compute API cannot do (`host_facts`, `health_check`,
//! `upgrade`, `reboot`): Nova knows neither the release a compute host runs nor its boot, and
//! installs nothing. Templates are checked when the driver is built and run by `drover-command`
//! with `{host}` (the compute service's host), `{host.address}` (its hypervisor's `host_ip`),
//! `{cluster}`, and `{target}` (plus the catalog's `{hops}`, `{hotfixes}`, `{reboots}`) or
//! `{boot_id_before}`.
//!
//! This module knows drover-command, and nothing of Nova or of when a step runs.
//!
//! The commands themselves are drover-command's `HostCommands`; this module says how Nova names
//! itself in their messages.

use drover_command::host_commands::CommandPlatform;
pub use drover_command::host_commands::HostCommands;

use crate::OpenstackError;

/// The section and words of this platform's host-command messages.
pub const PLATFORM: CommandPlatform = CommandPlatform {
    section: "openstack",
    api: "the Compute API",
    host_word: "host",
};

/// A step without a command (or a reboot without `host_facts`) is the configuration's fault;
/// anything else went wrong running the command.
impl From<drover_command::CommandError> for OpenstackError {
    fn from(error: drover_command::CommandError) -> Self {
        match error {
            drover_command::CommandError::HostCommandsIncomplete(detail) => {
                OpenstackError::Config(detail)
            }
            other => OpenstackError::Command(other.to_string()),
        }
    }
}
