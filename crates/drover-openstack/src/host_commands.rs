//! The operator's commands for what the Compute API cannot do (`host_facts`, `health_check`,
//! `upgrade`, `reboot`): Nova knows neither the release a compute host runs nor its boot, and
//! installs nothing. Templates are checked when the driver is built and run by `drover-command`
//! with `{host}` (the compute service's host), `{host.address}` (its hypervisor's `host_ip`),
//! `{cluster}`, and `{target}` (plus the catalog's `{hops}`, `{hotfixes}`, `{reboots}`) or
//! `{boot_id_before}`.
//!
//! This module knows drover-command, and nothing of Nova or of when a step runs.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_command::output::host_facts_from_output;
use drover_command::{
    run_step, ArgvTemplate, HostUpgradePlan, Placeholder, PlaceholderValues, RunLimits, StepContext,
};
use drover_driver::HostFacts;
use drover_schema::inventory::CommandStep;

use crate::OpenstackError;

/// The configured commands.
pub struct HostCommands {
    templates: BTreeMap<CommandStep, ArgvTemplate>,
    cluster: String,
    upgrade_plans: BTreeMap<String, HostUpgradePlan>,
}

impl HostCommands {
    /// Checks every template; a `reboot` needs a `host_facts` (the boot id proves the reboot).
    pub fn new(
        commands: &BTreeMap<CommandStep, Vec<String>>,
        cluster: &str,
        upgrade_plans: BTreeMap<String, HostUpgradePlan>,
    ) -> Result<HostCommands, OpenstackError> {
        let mut templates = BTreeMap::new();
        for (step, argv) in commands {
            let template = ArgvTemplate::for_step(*step, argv)
                .map_err(|error| OpenstackError::Config(error.to_string()))?;
            templates.insert(*step, template);
        }
        if templates.contains_key(&CommandStep::Reboot)
            && !templates.contains_key(&CommandStep::HostFacts)
        {
            return Err(OpenstackError::Config(
                "a reboot command needs a host_facts command (the boot id says whether the host rebooted)".into(),
            ));
        }
        Ok(HostCommands {
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

    /// Runs a configured step's command; its stdout is returned.
    pub async fn run(
        &self,
        step: CommandStep,
        host: &str,
        address: &str,
        extra: &[(Placeholder, String)],
        timeout: Duration,
    ) -> Result<(StepContext, String, drover_command::StepOutput), OpenstackError> {
        let template = self.templates.get(&step).ok_or_else(|| {
            OpenstackError::Config(format!(
                "no `{}` command in the openstack section (the Compute API cannot do this step)",
                step.as_str()
            ))
        })?;
        let mut values = self.host_values(host, address);
        for (placeholder, value) in extra {
            values = values.with(*placeholder, value.as_str());
        }
        let context = StepContext::new(step.as_str(), format!("host {host}"));
        let command_failed =
            |error: drover_command::CommandError| OpenstackError::Command(error.to_string());
        let argv = template.render(&context, &values).map_err(command_failed)?;
        let output = run_step(&context, &argv, RunLimits::with_timeout(timeout))
            .await
            .map_err(command_failed)?;
        Ok((context, template.program().to_string(), output))
    }

    /// The facts the `host_facts` command prints.
    pub async fn host_facts(
        &self,
        host: &str,
        address: &str,
        timeout: Duration,
    ) -> Result<HostFacts, OpenstackError> {
        let (context, program, output) = self
            .run(CommandStep::HostFacts, host, address, &[], timeout)
            .await?;
        host_facts_from_output(&context, &program, &output)
            .map_err(|error| OpenstackError::Command(error.to_string()))
    }

    /// The `upgrade` command's extra placeholders for `host`.
    pub fn upgrade_values(&self, host: &str, target: &str) -> Vec<(Placeholder, String)> {
        HostUpgradePlan::values(self.upgrade_plans.get(host), target).to_vec()
    }
}
