//! `CommandDriver`: Drover's [`Driver`] for any platform, where every step is a command the
//! operator configures (`ssh {host.address} dnf -y upgrade`, `pca-admin update compute-node
//! {host}`, `virsh migrate …`). Commands are argv templates (see [`crate::template`]) run without
//! a shell (see [`crate::runner`]).
//!
//! # Output contracts
//!
//! - Every step succeeds when its command exits 0. A non-zero exit, a timeout or a program that
//!   cannot start fails the step with a message naming the step, the program, the exit code or
//!   "timed out after N s", and the last lines of output (stderr, else stdout).
//! - `host_facts` prints the host's facts (see [`crate::output`]): JSON `{"version": "8.2.1",
//!   "boot_id": "…", "in_maintenance": false, "cordoned": false}` or the same as `key=value`
//!   lines; the last two keys are optional and default to false.
//! - `discover` (optional) prints a YAML or JSON document with `hosts:` and `vms:` written like
//!   the inventory's entries. Without a discover command, discovery returns the inventory's hosts
//!   and VMs, each host's version, maintenance and cordon refreshed by `host_facts` when that is
//!   configured (a host whose facts fail is reported down; when every host fails, discovery
//!   fails), and VMs placed where this driver last migrated, stopped or started them.
//! - `shutdown_vm` may print a line `forced=true` when it had to power the VM off.
//! - `set_compatibility_level` (`{level}`, `{cluster}`) runs once after the last host when the
//!   policy asks for `raise_compatibility_level_to`; the driver is refused at build time when
//!   the policy asks and this command is missing. Setting the level the cluster already has
//!   must exit 0.
//! - Any other stdout is ignored, except in error messages.
//! - `cordon`/`uncordon` without a command: the cordon is Drover's own, kept in memory by this
//!   driver and reported as `cordoned` by `host_facts` and discovery. Memory does not survive a
//!   restart; the engine's journal is the durable record of what Drover cordoned.
//! - Any other step without a command fails with "step X is not configured for the command
//!   driver" when it is called.
//!
//! # Idempotency is the commands' job
//!
//! The engine re-issues a call that was in flight when Drover stopped, so **every command must be
//! safe to run again**: entering maintenance on a host already in maintenance, migrating a VM
//! that already runs on the destination, starting a running VM must all exit 0 without doing
//! anything. This driver observes before acting only where `host_facts` can tell it: `upgrade`
//! is skipped when the host already runs the target version or newer, and `reboot` is skipped
//! when the host's boot id already differs from `{boot_id_before}` (which the reboot command also
//! gets, so a script can make the same check). A reboot or upgrade command must return only once
//! the host answers again.
//!
//! # Timeouts
//!
//! Each step's command runs under its timeout ([`CommandDriverConfig::timeout_for`]); `shutdown_vm`
//! gets the graceful timeout on top. [`CommandDriverConfig::from_inventory`] takes them from the
//! policy so that they match the engine's.
//!
//! # Example
//!
//! `crates/drover-command/examples/fake-platform/` is a complete platform made of small shell
//! scripts that keep each host's version and boot id in files, with an inventory that drives it;
//! `tests/fake_platform.rs` upgrades it through this driver and through the engine.
//!
//! This module knows nothing of plans, journals or the clock.

mod discovery;
mod remembered;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drover_core::{Cluster, Version};
use drover_driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved};
use drover_schema::inventory::{CommandSection, CommandStep};

use crate::error::{CommandError, StepContext};
use crate::output;
use crate::runner::{self, RunLimits, StepOutput};
use crate::template::{ArgvTemplate, Placeholder, PlaceholderValues};
use remembered::Remembered;

/// Bytes of a discover command's stdout kept: an inventory of thousands of VMs is megabytes.
pub const DISCOVER_MAX_CAPTURED_BYTES: usize = 16 * 1024 * 1024;

/// The engine allows a VM shutdown this long beyond its graceful timeout.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(60);

/// How to build a [`CommandDriver`].
#[derive(Clone, Debug, PartialEq)]
pub struct CommandDriverConfig {
    /// Argv templates per step; see [`Placeholder::available_for`] for their placeholders.
    pub commands: BTreeMap<CommandStep, Vec<String>>,
    /// `{host.address}` / `{to.address}` per host name; a host not listed is reached by its name.
    pub host_addresses: BTreeMap<String, String>,
    /// `{cluster}`.
    pub cluster: String,
    /// The timeout of every step that has none in `step_timeouts`.
    pub step_timeout: Duration,
    /// Per-step timeouts (for `shutdown_vm`: on top of the graceful timeout).
    pub step_timeouts: BTreeMap<CommandStep, Duration>,
    /// The inventory: the hosts and VMs discovery reports when no discover command is configured.
    pub known: Cluster,
    /// Per host, what its upgrade installs (`{hops}`, `{hotfixes}`, `{reboots}`); a host not
    /// listed installs the target alone.
    pub upgrade_plans: BTreeMap<String, HostUpgradePlan>,
    /// `driver.allow_option_like_values`: pass values starting with `-` where a program reads
    /// options (see the template module).
    pub allow_option_like_values: bool,
}

/// What one host's upgrade command is told, from the release catalog or a forced update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostUpgradePlan {
    pub hops: Vec<String>,
    pub hotfixes: Vec<String>,
    pub reboots: u32,
    /// Run the upgrade although the host already reports the target (package updates).
    pub even_at_target: bool,
}

impl HostUpgradePlan {
    /// The upgrade placeholders' values for a host with this plan (or none) going to `target`.
    pub fn values(plan: Option<&HostUpgradePlan>, target: &str) -> [(Placeholder, String); 4] {
        let hops = plan
            .filter(|p| !p.hops.is_empty())
            .map_or(target.to_string(), |p| p.hops.join(","));
        [
            (Placeholder::Target, target.to_string()),
            (Placeholder::Hops, hops),
            (
                Placeholder::Hotfixes,
                plan.map_or(String::new(), |p| p.hotfixes.join(",")),
            ),
            (
                Placeholder::Reboots,
                plan.map_or("1".to_string(), |p| p.reboots.to_string()),
            ),
        ]
    }
}

impl CommandDriverConfig {
    /// The config of an inventory's `kind: command` section, with the engine's timeouts from the
    /// policy: `migration_timeout_secs` for migrate, `upgrade_timeout_secs` for upgrade,
    /// `reboot_timeout_secs` for reboot, one minute beyond the graceful timeout for shutdown_vm,
    /// and `step_timeout_secs` for every other step. No host addresses: hosts are reached by name.
    pub fn from_inventory(known: &Cluster, section: &CommandSection) -> CommandDriverConfig {
        let policy = &known.policy;
        let step_timeouts = BTreeMap::from([
            (
                CommandStep::Migrate,
                Duration::from_secs(policy.migration_timeout_secs),
            ),
            (
                CommandStep::Upgrade,
                Duration::from_secs(policy.upgrade_timeout_secs),
            ),
            (
                CommandStep::Reboot,
                Duration::from_secs(policy.reboot_timeout_secs),
            ),
            (CommandStep::ShutdownVm, SHUTDOWN_MARGIN),
        ]);
        CommandDriverConfig {
            commands: section.commands.clone(),
            host_addresses: BTreeMap::new(),
            cluster: known.name.clone(),
            step_timeout: Duration::from_secs(policy.step_timeout_secs),
            step_timeouts,
            known: known.clone(),
            upgrade_plans: BTreeMap::new(),
            allow_option_like_values: section.allow_option_like_values,
        }
    }

    /// The timeout of one step's command.
    pub fn timeout_for(&self, step: CommandStep) -> Duration {
        self.step_timeouts
            .get(&step)
            .copied()
            .unwrap_or(self.step_timeout)
    }
}

/// The command driver. Cheap to clone; clones share their memory of cordons and VM moves.
#[derive(Clone)]
pub struct CommandDriver {
    inner: Arc<Inner>,
}

struct Inner {
    templates: BTreeMap<CommandStep, ArgvTemplate>,
    timeouts: BTreeMap<CommandStep, Duration>,
    host_addresses: BTreeMap<String, String>,
    cluster: String,
    known: Cluster,
    upgrade_plans: BTreeMap<String, HostUpgradePlan>,
    remembered: Remembered,
}

/// A finished successful run, with what its error messages need.
struct Ran {
    context: StepContext,
    program: String,
    output: StepOutput,
}

impl CommandDriver {
    /// Checks every configured command (placeholders known and available for its step, shell
    /// quoting possible), every address (for a known host) and every timeout (not zero).
    pub fn new(config: CommandDriverConfig) -> Result<CommandDriver, CommandError> {
        let templates = config
            .commands
            .iter()
            .map(|(step, argv)| {
                let template = ArgvTemplate::for_step(*step, argv)?;
                Ok((
                    *step,
                    match config.allow_option_like_values {
                        true => template.allowing_option_like_values(),
                        false => template,
                    },
                ))
            })
            .collect::<Result<BTreeMap<_, _>, CommandError>>()?;
        check_addresses(&config)?;
        check_compatibility_command(&config)?;
        let timeouts = all_steps()
            .map(|step| Ok((step, nonzero(step, config.timeout_for(step))?)))
            .collect::<Result<BTreeMap<_, _>, CommandError>>()?;
        let inner = Inner {
            templates,
            timeouts,
            host_addresses: config.host_addresses,
            cluster: config.cluster,
            known: config.known,
            upgrade_plans: config.upgrade_plans,
            remembered: Remembered::default(),
        };
        Ok(CommandDriver {
            inner: Arc::new(inner),
        })
    }

    /// The steps that have a command.
    pub fn configured_steps(&self) -> impl Iterator<Item = CommandStep> + '_ {
        self.inner.templates.keys().copied()
    }
}

fn all_steps() -> impl Iterator<Item = CommandStep> {
    use CommandStep::*;
    [
        Discover,
        HostFacts,
        HealthCheck,
        Cordon,
        Uncordon,
        EnterMaintenance,
        ExitMaintenance,
        Migrate,
        ShutdownVm,
        StartVm,
        Upgrade,
        Reboot,
        SetCompatibilityLevel,
    ]
    .into_iter()
}

/// A run that must raise the compatibility level fails at its very end without this command,
/// after every host was upgraded; better to refuse before the first.
fn check_compatibility_command(config: &CommandDriverConfig) -> Result<(), CommandError> {
    let requested = &config.known.policy.raise_compatibility_level_to;
    match requested {
        Some(level)
            if !config
                .commands
                .contains_key(&CommandStep::SetCompatibilityLevel) =>
        {
            Err(CommandError::CompatibilityLevelNotConfigured {
                level: level.clone(),
            })
        }
        _ => Ok(()),
    }
}

fn check_addresses(config: &CommandDriverConfig) -> Result<(), CommandError> {
    match config
        .host_addresses
        .keys()
        .find(|host| config.known.host_named(host).is_none())
    {
        Some(host) => Err(CommandError::AddressForUnknownHost { host: host.clone() }),
        None => Ok(()),
    }
}

fn nonzero(step: CommandStep, timeout: Duration) -> Result<Duration, CommandError> {
    match timeout.is_zero() {
        true => Err(CommandError::ZeroTimeout {
            step: step.as_str().into(),
        }),
        false => Ok(timeout),
    }
}

/// Whole seconds, rounded up: a graceful timeout is never shortened.
fn whole_secs_rounded_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

impl Inner {
    fn address_of<'a>(&'a self, host: &'a str) -> &'a str {
        self.host_addresses.get(host).map_or(host, String::as_str)
    }

    fn host_values(&self, host: &str) -> PlaceholderValues {
        PlaceholderValues::new()
            .with(Placeholder::Host, host)
            .with(Placeholder::HostAddress, self.address_of(host))
            .with(Placeholder::Cluster, self.cluster.as_str())
    }

    fn limits(&self, step: CommandStep) -> RunLimits {
        RunLimits::with_timeout(self.timeouts[&step])
    }

    fn is_configured(&self, step: CommandStep) -> bool {
        self.templates.contains_key(&step)
    }

    /// Renders and runs a step's command; fails when the step has none.
    async fn run(
        &self,
        step: CommandStep,
        subject: String,
        values: &PlaceholderValues,
        limits: RunLimits,
    ) -> Result<Ran, CommandError> {
        let template = self
            .templates
            .get(&step)
            .ok_or_else(|| CommandError::NotConfigured {
                step: step.as_str().into(),
            })?;
        let context = StepContext::new(step.as_str(), subject);
        let argv = template.render(&context, values)?;
        let output = runner::run_step(&context, &argv, limits).await?;
        Ok(Ran {
            context,
            program: template.program().to_string(),
            output,
        })
    }

    /// A host step: `{host}`, `{host.address}`, `{cluster}` and the step's own timeout.
    async fn run_host_step(&self, step: CommandStep, host: &str) -> Result<Ran, CommandError> {
        let subject = format!("host {host}");
        self.run(step, subject, &self.host_values(host), self.limits(step))
            .await
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, CommandError> {
        let ran = self.run_host_step(CommandStep::HostFacts, host).await?;
        let mut facts = output::host_facts_from_output(&ran.context, &ran.program, &ran.output)?;
        if let Some(cordoned) = self.remembered.cordoned(host) {
            facts.cordoned = cordoned;
        }
        Ok(facts)
    }

    /// Whether `host_facts` (when configured and answering) shows the step already done.
    async fn already_done(&self, host: &str, done: impl Fn(&HostFacts) -> bool) -> bool {
        if !self.is_configured(CommandStep::HostFacts) {
            return false;
        }
        // A host that does not answer has not been seen done; the step's command decides.
        matches!(self.host_facts(host).await, Ok(facts) if done(&facts))
    }

    async fn discover(self: &Arc<Self>) -> Result<Discovered, CommandError> {
        if !self.is_configured(CommandStep::Discover) {
            return discovery::from_inventory(self).await;
        }
        let values = PlaceholderValues::new().with(Placeholder::Cluster, self.cluster.as_str());
        let limits = RunLimits {
            max_captured_bytes: DISCOVER_MAX_CAPTURED_BYTES,
            ..self.limits(CommandStep::Discover)
        };
        let subject = format!("cluster {}", self.cluster);
        let ran = self
            .run(CommandStep::Discover, subject, &values, limits)
            .await?;
        let mut discovered =
            output::discovered_from_output(&ran.context, &ran.program, &ran.output)?;
        self.remembered.apply_cordons(&mut discovered.hosts);
        Ok(discovered)
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), CommandError> {
        let step = match enabled {
            true => CommandStep::Uncordon,
            false => CommandStep::Cordon,
        };
        if !self.is_configured(step) {
            self.remembered.set_cordoned(host, !enabled);
            return Ok(());
        }
        self.run_host_step(step, host).await.map(drop)
    }

    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), CommandError> {
        let values = self
            .host_values(from)
            .with(Placeholder::Vm, vm)
            .with(Placeholder::From, from)
            .with(Placeholder::To, to)
            .with(Placeholder::ToAddress, self.address_of(to));
        let subject = format!("vm {vm} from {from} to {to}");
        let limits = self.limits(CommandStep::Migrate);
        self.run(CommandStep::Migrate, subject, &values, limits)
            .await?;
        self.remembered.set_vm(vm, to, true);
        Ok(())
    }

    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, CommandError> {
        let graceful_secs = whole_secs_rounded_up(graceful_timeout);
        let values = self
            .host_values(host)
            .with(Placeholder::Vm, vm)
            .with(Placeholder::GracefulTimeoutSecs, graceful_secs.to_string());
        let margin = self.limits(CommandStep::ShutdownVm);
        let limits = RunLimits {
            timeout: margin.timeout.saturating_add(graceful_timeout),
            ..margin
        };
        let subject = format!("vm {vm} on host {host}");
        let ran = self
            .run(CommandStep::ShutdownVm, subject, &values, limits)
            .await?;
        let forced = output::forced_from_output(&ran.context, &ran.program, &ran.output)?;
        self.remembered.set_vm(vm, host, false);
        Ok(ShutdownObserved { forced })
    }

    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), CommandError> {
        let values = self.host_values(host).with(Placeholder::Vm, vm);
        let subject = format!("vm {vm} on host {host}");
        let limits = self.limits(CommandStep::StartVm);
        self.run(CommandStep::StartVm, subject, &values, limits)
            .await?;
        self.remembered.set_vm(vm, host, true);
        Ok(())
    }

    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), CommandError> {
        self.require(CommandStep::Upgrade)?;
        let plan = self.upgrade_plans.get(host);
        let even_at_target = plan.is_some_and(|p| p.even_at_target);
        if !even_at_target
            && self
                .already_done(host, |facts| facts.version >= *target)
                .await
        {
            return Ok(());
        }
        let mut values = self.host_values(host);
        for (placeholder, value) in HostUpgradePlan::values(plan, target.as_str()) {
            values = values.with(placeholder, value);
        }
        let limits = self.limits(CommandStep::Upgrade);
        self.run(
            CommandStep::Upgrade,
            format!("host {host}"),
            &values,
            limits,
        )
        .await
        .map(drop)
    }

    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), CommandError> {
        self.require(CommandStep::Reboot)?;
        if self
            .already_done(host, |facts| facts.boot_id != boot_id_before)
            .await
        {
            return Ok(());
        }
        let values = self
            .host_values(host)
            .with(Placeholder::BootIdBefore, boot_id_before);
        let limits = self.limits(CommandStep::Reboot);
        self.run(CommandStep::Reboot, format!("host {host}"), &values, limits)
            .await
            .map(drop)
    }

    async fn set_compatibility_level(
        &self,
        cluster: &str,
        level: &str,
    ) -> Result<(), CommandError> {
        let step = CommandStep::SetCompatibilityLevel;
        let values = PlaceholderValues::new()
            .with(Placeholder::Cluster, cluster)
            .with(Placeholder::Level, level);
        let subject = format!("cluster {cluster} to {level}");
        self.run(step, subject, &values, self.limits(step))
            .await
            .map(drop)
    }

    /// Fails a step without a command before observing anything for it.
    fn require(&self, step: CommandStep) -> Result<(), CommandError> {
        match self.is_configured(step) {
            true => Ok(()),
            false => Err(CommandError::NotConfigured {
                step: step.as_str().into(),
            }),
        }
    }
}

#[async_trait::async_trait]
impl Driver for CommandDriver {
    fn kind(&self) -> &'static str {
        "command"
    }

    async fn discover(&self) -> Result<Discovered, DriverError> {
        Ok(self.inner.discover().await?)
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        Ok(self.inner.host_facts(host).await?)
    }

    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        let ran = self
            .inner
            .run_host_step(CommandStep::HealthCheck, host)
            .await;
        Ok(ran.map(drop)?)
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        Ok(self.inner.set_allocation(host, enabled).await?)
    }

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let step = match enabled {
            true => CommandStep::EnterMaintenance,
            false => CommandStep::ExitMaintenance,
        };
        Ok(self.inner.run_host_step(step, host).await.map(drop)?)
    }

    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError> {
        Ok(self.inner.migrate(vm, from, to).await?)
    }

    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, DriverError> {
        Ok(self.inner.shutdown_vm(vm, host, graceful_timeout).await?)
    }

    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        Ok(self.inner.start_vm(vm, host).await?)
    }

    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        Ok(self.inner.upgrade(host, target).await?)
    }

    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), DriverError> {
        Ok(self.inner.reboot(host, boot_id_before).await?)
    }

    async fn set_compatibility_level(&self, cluster: &str, level: &str) -> Result<(), DriverError> {
        Ok(self.inner.set_compatibility_level(cluster, level).await?)
    }
}
