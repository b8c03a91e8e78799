//! The operator's commands for what RAPI cannot do (`host_facts`, `health_check`, `upgrade`,
//! `reboot`): Ganeti knows neither the release a node runs nor its boot, and installs nothing;
//! and, as [`ClusterCommands`], the section's two cluster steps RAPI has no resource for:
//! `master_failover` (`{host}`: the new master) and `verify` (`{cluster}`).
//! Templates are checked when the driver is built and run by `drover-command` with `{host}` (the
//! node name), `{host.address}` (its primary IP), `{cluster}`, and `{target}` (plus the
//! catalog's `{hops}`, `{hotfixes}`, `{reboots}`) or `{boot_id_before}`.
//!
//! This module knows drover-command, and nothing of RAPI or of when a step runs.
//!
//! The commands themselves are drover-command's `HostCommands`; this module says how RAPI names
//! itself in their messages.

use std::time::Duration;

use drover_command::host_commands::CommandPlatform;
pub use drover_command::host_commands::HostCommands;
use drover_command::{
    run_step, ArgvTemplate, Placeholder, PlaceholderValues, RunLimits, StepContext,
};

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

/// The two cluster steps RAPI has no resource for, from the section's `master_failover` and
/// `verify`: checked when the driver is built, run by drover-command.
#[derive(Default)]
pub struct ClusterCommands {
    cluster: String,
    master_failover: Option<ArgvTemplate>,
    verify: Option<ArgvTemplate>,
}

/// `{host}` is the new master.
const MASTER_FAILOVER_PLACEHOLDERS: [Placeholder; 3] = [
    Placeholder::Host,
    Placeholder::HostAddress,
    Placeholder::Cluster,
];
const VERIFY_PLACEHOLDERS: [Placeholder; 1] = [Placeholder::Cluster];

impl ClusterCommands {
    pub fn new(
        cluster: &str,
        master_failover: Option<&[String]>,
        verify: Option<&[String]>,
    ) -> Result<ClusterCommands, GanetiError> {
        let parse = |step: &str, available: &[Placeholder], argv: Option<&[String]>| {
            argv.map(|argv| ArgvTemplate::parse(step, available, argv))
                .transpose()
                .map_err(|error| GanetiError::Config(error.to_string()))
        };
        Ok(ClusterCommands {
            cluster: cluster.to_string(),
            master_failover: parse(
                "master_failover",
                &MASTER_FAILOVER_PLACEHOLDERS,
                master_failover,
            )?,
            verify: parse("verify", &VERIFY_PLACEHOLDERS, verify)?,
        })
    }

    pub fn has_master_failover(&self) -> bool {
        self.master_failover.is_some()
    }

    pub fn has_verify(&self) -> bool {
        self.verify.is_some()
    }

    /// Runs `master_failover` for the new master `host` (nothing when it is not configured).
    pub async fn master_failover(
        &self,
        host: &str,
        address: &str,
        timeout: Duration,
    ) -> Result<(), GanetiError> {
        let Some(template) = &self.master_failover else {
            return Ok(());
        };
        let values = PlaceholderValues::new()
            .with(Placeholder::Host, host)
            .with(
                Placeholder::HostAddress,
                if address.is_empty() { host } else { address },
            )
            .with(Placeholder::Cluster, self.cluster.as_str());
        let context = StepContext::new("master_failover", format!("node {host}"));
        self.run(template, &context, &values, timeout).await
    }

    /// Runs `verify` (nothing when it is not configured).
    pub async fn verify(&self, timeout: Duration) -> Result<(), GanetiError> {
        let Some(template) = &self.verify else {
            return Ok(());
        };
        let values = PlaceholderValues::new().with(Placeholder::Cluster, self.cluster.as_str());
        let context = StepContext::new("verify", format!("cluster {}", self.cluster));
        self.run(template, &context, &values, timeout).await
    }

    async fn run(
        &self,
        template: &ArgvTemplate,
        context: &StepContext,
        values: &PlaceholderValues,
        timeout: Duration,
    ) -> Result<(), GanetiError> {
        let argv = template.render(context, values)?;
        run_step(context, &argv, RunLimits::with_timeout(timeout)).await?;
        Ok(())
    }
}
