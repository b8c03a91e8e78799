//! The operator's commands for the host steps a platform's API cannot do (`host_facts`,
//! `health_check`, `upgrade`, `reboot`), for drivers whose platform knows neither the release a
//! host runs nor its boot and installs nothing (Ganeti's RAPI, Nova's Compute API). Templates are
//! checked when the driver is built and rendered with `{host}`, `{host.address}` (the host's own
//! name when the platform gives no address), `{cluster}`, and `{target}` (plus the catalog's
//! `{hops}`, `{hotfixes}`, `{reboots}`) or `{boot_id_before}`.
//!
//! This module knows nothing of any platform's API or of when a step runs.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_driver::HostFacts;
use drover_schema::inventory::CommandStep;

use crate::output::host_facts_from_output;
use crate::{
    run_step, ArgvTemplate, CommandError, HostUpgradePlan, Placeholder, PlaceholderValues,
    RunLimits, StepContext, StepOutput,
};

/// How a platform names itself in the messages of its host commands.
#[derive(Clone, Copy, Debug)]
pub struct CommandPlatform {
    /// The driver section's kind (`ganeti`).
    pub section: &'static str,
    /// What cannot do a missing step (`RAPI`, `the Compute API`).
    pub api: &'static str,
    /// What the platform calls a host (`node`, `host`).
    pub host_word: &'static str,
}

/// The configured commands.
pub struct HostCommands {
    platform: CommandPlatform,
    templates: BTreeMap<CommandStep, ArgvTemplate>,
    cluster: String,
    upgrade_plans: BTreeMap<String, HostUpgradePlan>,
}

impl HostCommands {
    /// Checks every template; a `reboot` needs a `host_facts` (the boot id proves the reboot).
    pub fn new(
        platform: CommandPlatform,
        commands: &BTreeMap<CommandStep, Vec<String>>,
        cluster: &str,
        upgrade_plans: BTreeMap<String, HostUpgradePlan>,
    ) -> Result<HostCommands, CommandError> {
        let mut templates = BTreeMap::new();
        for (step, argv) in commands {
            templates.insert(*step, ArgvTemplate::for_step(*step, argv)?);
        }
        if templates.contains_key(&CommandStep::Reboot)
            && !templates.contains_key(&CommandStep::HostFacts)
        {
            return Err(CommandError::HostCommandsIncomplete(format!(
                "a reboot command needs a host_facts command (the boot id says whether the {} rebooted)",
                platform.host_word
            )));
        }
        Ok(HostCommands {
            platform,
            templates,
            cluster: cluster.to_string(),
            upgrade_plans,
        })
    }

    pub fn is_configured(&self, step: CommandStep) -> bool {
        self.templates.contains_key(&step)
    }

    /// What the catalog tells this host's installer (`{hops}`, …), if anything.
    pub fn upgrade_plan(&self, host: &str) -> Option<&HostUpgradePlan> {
        self.upgrade_plans.get(host)
    }

    fn host_values(&self, host: &str, address: &str) -> PlaceholderValues {
        PlaceholderValues::new()
            .with(Placeholder::Host, host)
            .with(
                Placeholder::HostAddress,
                if address.is_empty() { host } else { address },
            )
            .with(Placeholder::Cluster, self.cluster.as_str())
    }

    /// Runs a configured step's command; its stdout is returned. A step without a command is
    /// `CommandError::HostCommandsIncomplete`.
    pub async fn run(
        &self,
        step: CommandStep,
        host: &str,
        address: &str,
        extra: &[(Placeholder, String)],
        timeout: Duration,
    ) -> Result<(StepContext, String, StepOutput), CommandError> {
        let template = self.templates.get(&step).ok_or_else(|| {
            CommandError::HostCommandsIncomplete(format!(
                "no `{}` command in the {} section ({} cannot do this step)",
                step.as_str(),
                self.platform.section,
                self.platform.api
            ))
        })?;
        let mut values = self.host_values(host, address);
        for (placeholder, value) in extra {
            values = values.with(*placeholder, value.as_str());
        }
        let context = StepContext::new(step.as_str(), format!("host {host}"));
        let argv = template.render(&context, &values)?;
        let output = run_step(&context, &argv, RunLimits::with_timeout(timeout)).await?;
        Ok((context, template.program().to_string(), output))
    }

    /// The facts the `host_facts` command prints.
    pub async fn host_facts(
        &self,
        host: &str,
        address: &str,
        timeout: Duration,
    ) -> Result<HostFacts, CommandError> {
        let (context, program, output) = self
            .run(CommandStep::HostFacts, host, address, &[], timeout)
            .await?;
        host_facts_from_output(&context, &program, &output)
    }

    /// The `upgrade` command's extra placeholders for `host`.
    pub fn upgrade_values(&self, host: &str, target: &str) -> Vec<(Placeholder, String)> {
        HostUpgradePlan::values(self.upgrade_plans.get(host), target).to_vec()
    }
}
