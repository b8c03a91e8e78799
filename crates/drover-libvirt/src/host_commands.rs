//! The operator's host-step commands of a libvirt driver (`host_facts`, `health_check`,
//! `upgrade`, `reboot`, `set_compatibility_level`): checked when the driver is built (only
//! steps that may be commands, a `reboot` needs a `host_facts`, a raised compatibility level
//! needs its command), then rendered and run by `drover-command` with the host's placeholders.
//!
//! It knows the driver's config and `drover-command`, and nothing of libvirt connections, of
//! Drover's marks, or of when a step runs: that is `host_steps`, which calls it.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_command::output::host_facts_from_output;
use drover_command::{
    run_step, ArgvTemplate, CommandError, Placeholder, PlaceholderValues, RunLimits, StepContext,
    StepOutput,
};
use drover_driver::HostFacts;
use drover_schema::inventory::CommandStep;

use crate::config::{LibvirtDriverConfig, COMMANDABLE_STEPS};
use crate::error::LibvirtError;

/// The configured host-step commands.
pub(crate) struct HostCommands {
    templates: BTreeMap<CommandStep, ArgvTemplate>,
    addresses: BTreeMap<String, String>,
    cluster: String,
    /// Every command's time limit, and the most a `host_facts` call may take.
    pub(crate) step_timeout: Duration,
}

impl HostCommands {
    /// Checks that every command is for a step that may be one, and its template.
    pub(crate) fn new(config: &LibvirtDriverConfig) -> Result<HostCommands, LibvirtError> {
        let mut templates = BTreeMap::new();
        for (step, argv) in &config.commands {
            if !COMMANDABLE_STEPS.contains(step) {
                return Err(LibvirtError::StepNotCommandable {
                    step: step.as_str().into(),
                });
            }
            templates.insert(*step, ArgvTemplate::for_step(*step, argv)?);
        }
        let has = |step| templates.contains_key(&step);
        if has(CommandStep::Reboot) && !has(CommandStep::HostFacts) {
            return Err(LibvirtError::RebootWithoutHostFacts);
        }
        let raise = &config.known.policy.raise_compatibility_level_to;
        if let Some(level) = raise
            .as_ref()
            .filter(|_| !has(CommandStep::SetCompatibilityLevel))
        {
            let level = level.clone();
            return Err(LibvirtError::CompatibilityLevelWithoutCommand { level });
        }
        let addresses = config
            .hosts
            .iter()
            .map(|(name, host)| (name.clone(), host.address.clone()))
            .collect();
        Ok(HostCommands {
            templates,
            addresses,
            cluster: config.known.name.clone(),
            step_timeout: config.step_timeout,
        })
    }

    pub(crate) fn is_configured(&self, step: CommandStep) -> bool {
        self.templates.contains_key(&step)
    }

    pub(crate) fn require(&self, step: CommandStep) -> Result<(), LibvirtError> {
        match self.is_configured(step) {
            true => Ok(()),
            false => Err(LibvirtError::NotConfigured {
                step: step.as_str().into(),
            }),
        }
    }

    /// `{host}`, `{host.address}` and `{cluster}` for a host.
    pub(crate) fn host_values(&self, host: &str) -> PlaceholderValues {
        let address = self.addresses.get(host).map_or(host, String::as_str);
        PlaceholderValues::new()
            .with(Placeholder::Host, host)
            .with(Placeholder::HostAddress, address)
            .with(Placeholder::Cluster, self.cluster.as_str())
    }

    /// Renders and runs a configured step's command for `host`.
    pub(crate) async fn run(
        &self,
        step: CommandStep,
        host: &str,
        values: PlaceholderValues,
        timeout: Duration,
    ) -> Result<(StepContext, String, StepOutput), CommandError> {
        let subject = format!("host {host}");
        self.run_about(step, subject, values, timeout).await
    }

    /// The `set_compatibility_level` command (`{cluster}`, `{level}`, the step timeout); the
    /// command must succeed when the cluster already has the level.
    pub(crate) async fn set_compatibility_level(
        &self,
        cluster: &str,
        level: &str,
    ) -> Result<(), LibvirtError> {
        let step = CommandStep::SetCompatibilityLevel;
        self.require(step)?;
        let values = PlaceholderValues::new()
            .with(Placeholder::Cluster, cluster)
            .with(Placeholder::Level, level);
        let subject = format!("cluster {cluster} to {level}");
        self.run_about(step, subject, values, self.step_timeout)
            .await?;
        Ok(())
    }

    /// Renders and runs a configured step's command; `subject` names what it acts on.
    async fn run_about(
        &self,
        step: CommandStep,
        subject: String,
        values: PlaceholderValues,
        timeout: Duration,
    ) -> Result<(StepContext, String, StepOutput), CommandError> {
        let template = self
            .templates
            .get(&step)
            .ok_or_else(|| CommandError::NotConfigured {
                step: step.as_str().into(),
            })?;
        let context = StepContext::new(step.as_str(), subject);
        let argv = template.render(&context, &values)?;
        let output = run_step(&context, &argv, RunLimits::with_timeout(timeout)).await?;
        Ok((context, template.program().to_string(), output))
    }

    /// The facts the `host_facts` command prints, within `timeout` (at most the step timeout).
    pub(crate) async fn host_facts(
        &self,
        host: &str,
        timeout: Duration,
    ) -> Result<HostFacts, CommandError> {
        let timeout = timeout.min(self.step_timeout);
        let values = self.host_values(host);
        let (context, program, output) = self
            .run(CommandStep::HostFacts, host, values, timeout)
            .await?;
        host_facts_from_output(&context, &program, &output)
    }
}
