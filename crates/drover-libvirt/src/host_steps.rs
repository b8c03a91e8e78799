//! Host steps: facts, health, maintenance, upgrade and reboot.
//!
//! libvirt knows a host's libvirt version but not the platform version Drover upgrades, nor a
//! boot id, nor how to install anything, so these steps are the operator's commands (argv
//! templates kept in `host_commands`, checked and run by `drover-command`, placeholders `{host}`, `{host.address}`,
//! `{cluster}`, plus `{target}` for upgrade and `{boot_id_before}` for reboot):
//! - `host_facts` prints the facts in `drover-command`'s contract (`version=…`, `boot_id=…`).
//!   Without it, the version is libvirt's own (`virConnectGetLibVersion` as `major.minor.micro`)
//!   and the boot id is [`BOOT_ID_UNAVAILABLE`], so a reboot cannot be confirmed: a `reboot`
//!   command therefore requires a `host_facts` command;
//! - `health_check` runs after libvirt answered; without it, libvirt answering is the check;
//! - `upgrade` is skipped when the host already reports the target (needs `host_facts`); after
//!   it the driver waits, within the upgrade timeout, until the host answers again;
//! - `reboot` is skipped when the boot id already differs; after it the driver waits, within the
//!   reboot timeout, until the host reports a new boot id and libvirt answers.
//!
//! Maintenance is Drover's own mark (libvirt has none); entering it is refused while the host
//! runs domains, as a real platform would. This module knows nothing of domains beyond their
//! count and names.

use std::time::Duration;

use drover_command::Placeholder;
use drover_core::Version;
use drover_driver::HostFacts;
use drover_schema::inventory::CommandStep;
use tokio::time::Instant;

use crate::driver::Inner;
use crate::error::LibvirtError;
use crate::marks::HostMarks;

/// The boot id reported without a `host_facts` command: libvirt does not know one.
pub const BOOT_ID_UNAVAILABLE: &str = "unavailable (no host_facts command)";
/// How often a host coming back from an upgrade or reboot is asked again.
const COMEBACK_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// `major * 1,000,000 + minor * 1,000 + micro` as `major.minor.micro`.
pub(crate) fn version_from_libvirt(encoded_version: u32) -> Version {
    let text = format!(
        "{}.{}.{}",
        encoded_version / 1_000_000,
        encoded_version / 1_000 % 1_000,
        encoded_version % 1_000
    );
    text.parse()
        .expect("three whole numbers joined by dots are a version")
}

/// Drover's own marks win over what the host reports.
pub(crate) fn with_marks(mut facts: HostFacts, marks: HostMarks) -> HostFacts {
    if let Some(cordoned) = marks.cordoned {
        facts.cordoned = cordoned;
    }
    if let Some(in_maintenance) = marks.in_maintenance {
        facts.in_maintenance = in_maintenance;
    }
    facts
}

fn time_left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl Inner {
    pub(crate) async fn host_facts(&self, host: &str) -> Result<HostFacts, LibvirtError> {
        self.require_host(host)?;
        let facts = self.platform_facts(host, self.call_timeout).await?;
        Ok(with_marks(facts, self.marks.of(host)))
    }

    /// The host's own facts, without Drover's marks: the command's, else libvirt's.
    pub(crate) async fn platform_facts(
        &self,
        host: &str,
        timeout: Duration,
    ) -> Result<HostFacts, LibvirtError> {
        if self.commands.is_configured(CommandStep::HostFacts) {
            return Ok(self.commands.host_facts(host, timeout).await?);
        }
        let encoded_version = self.libvirt_version(host, timeout).await?;
        Ok(HostFacts {
            version: version_from_libvirt(encoded_version),
            boot_id: BOOT_ID_UNAVAILABLE.to_string(),
            in_maintenance: false,
            cordoned: false,
        })
    }

    /// `virConnectGetLibVersion` of the host's libvirtd: proof that it answers.
    pub(crate) async fn libvirt_version(
        &self,
        host: &str,
        timeout: Duration,
    ) -> Result<u32, LibvirtError> {
        let operation = "get the libvirt version";
        let host_name = host.to_string();
        let timeout = timeout.min(self.call_timeout);
        self.connections
            .call(host, operation, timeout, move |connect| {
                connect
                    .lib_version()
                    .map_err(|e| LibvirtError::from_libvirt(&host_name, operation, &e))
            })
            .await
    }

    pub(crate) async fn health_check(&self, host: &str) -> Result<(), LibvirtError> {
        self.require_host(host)?;
        self.libvirt_version(host, self.call_timeout).await?;
        if !self.commands.is_configured(CommandStep::HealthCheck) {
            return Ok(());
        }
        let values = self.commands.host_values(host);
        let timeout = self.commands.step_timeout;
        self.commands
            .run(CommandStep::HealthCheck, host, values, timeout)
            .await?;
        Ok(())
    }

    pub(crate) async fn set_maintenance(
        &self,
        host: &str,
        enabled: bool,
    ) -> Result<(), LibvirtError> {
        self.require_host(host)?;
        if !enabled || self.marks.is_in_maintenance(host) {
            return self.marks.set_in_maintenance(host, enabled);
        }
        // Marked first, so a migration or start that checks the mark after this point is
        // refused; one that passed it already shows up as a domain on the host below.
        self.marks.set_in_maintenance(host, true)?;
        let mut running = match self.active_domain_names(host).await {
            Ok(running) => running,
            Err(error) => {
                self.marks.set_in_maintenance(host, false)?;
                return Err(error);
            }
        };
        if running.is_empty() {
            return Ok(());
        }
        self.marks.set_in_maintenance(host, false)?;
        // libvirt lists domains in no particular order; a sorted list reads (and tests) the same.
        running.sort();
        Err(LibvirtError::Refused(format!(
            "host {host} still runs VMs: {}",
            running.join(", ")
        )))
    }

    /// The names of the domains active on a host (running, paused, or arriving by migration).
    pub(crate) async fn active_domain_names(
        &self,
        host: &str,
    ) -> Result<Vec<String>, LibvirtError> {
        let operation = "list active domains";
        let host_name = host.to_string();
        self.connections
            .call(host, operation, self.call_timeout, move |connect| {
                let failed =
                    |e: virt::error::Error| LibvirtError::from_libvirt(&host_name, operation, &e);
                let domains = connect
                    .list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                    .map_err(failed)?;
                domains
                    .iter()
                    .map(|domain| domain.name().map_err(failed))
                    .collect()
            })
            .await
    }

    pub(crate) async fn upgrade(&self, host: &str, target: &Version) -> Result<(), LibvirtError> {
        self.require_host(host)?;
        self.commands.require(CommandStep::Upgrade)?;
        let deadline = Instant::now() + self.upgrade_timeout;
        let plan = self.upgrade_plans.get(host);
        if self.commands.is_configured(CommandStep::HostFacts)
            && !plan.is_some_and(|p| p.even_at_target)
        {
            let facts = self.commands.host_facts(host, time_left(deadline)).await;
            if matches!(facts, Ok(facts) if facts.version >= *target) {
                return Ok(());
            }
        }
        let mut values = self.commands.host_values(host);
        for (placeholder, value) in drover_command::HostUpgradePlan::values(plan, target.as_str()) {
            values = values.with(placeholder, value);
        }
        self.commands
            .run(CommandStep::Upgrade, host, values, time_left(deadline))
            .await?;
        let expectation = "answering";
        self.wait_until_back(host, deadline, self.upgrade_timeout, expectation, |_| true)
            .await
    }

    pub(crate) async fn reboot(
        &self,
        host: &str,
        boot_id_before: &str,
    ) -> Result<(), LibvirtError> {
        self.require_host(host)?;
        self.commands.require(CommandStep::Reboot)?;
        let deadline = Instant::now() + self.reboot_timeout;
        let facts = self.commands.host_facts(host, time_left(deadline)).await;
        // A host that does not answer has not been seen rebooted: the command decides.
        let already_rebooted = matches!(&facts, Ok(facts) if facts.boot_id != boot_id_before);
        if !already_rebooted {
            let values = self
                .commands
                .host_values(host)
                .with(Placeholder::BootIdBefore, boot_id_before);
            self.commands
                .run(CommandStep::Reboot, host, values, time_left(deadline))
                .await?;
        }
        let expectation = "with a new boot id";
        self.wait_until_back(host, deadline, self.reboot_timeout, expectation, |facts| {
            facts.boot_id != boot_id_before
        })
        .await
    }

    /// Waits until the host's facts satisfy `is_back` and its libvirt answers, or `deadline`
    /// (the end of the step's `limit`).
    async fn wait_until_back(
        &self,
        host: &str,
        deadline: Instant,
        limit: Duration,
        expectation: &str,
        is_back: impl Fn(&HostFacts) -> bool,
    ) -> Result<(), LibvirtError> {
        let limit_secs = limit.as_secs();
        loop {
            let last_seen = match self.platform_facts(host, time_left(deadline)).await {
                Ok(facts) if is_back(&facts) => {
                    match self.libvirt_version(host, time_left(deadline)).await {
                        Ok(_) => return Ok(()),
                        Err(error) => error.to_string(),
                    }
                }
                Ok(facts) => format!("version {}, boot id {}", facts.version, facts.boot_id),
                Err(error) => error.to_string(),
            };
            if Instant::now() + COMEBACK_POLL_INTERVAL >= deadline {
                return Err(LibvirtError::HostDidNotComeBack {
                    host: host.to_string(),
                    expectation: expectation.to_string(),
                    limit_secs,
                    last_seen,
                });
            }
            tracing::debug!(host, %last_seen, "waiting for the host to come back {expectation}");
            tokio::time::sleep(COMEBACK_POLL_INTERVAL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libvirt_versions_are_dotted() {
        assert_eq!(version_from_libvirt(9_000_000).as_str(), "9.0.0");
        assert_eq!(version_from_libvirt(10_002_013).as_str(), "10.2.13");
    }

    #[test]
    fn drover_marks_win_over_reported_facts() {
        let facts = HostFacts {
            version: "1.0".parse().unwrap(),
            boot_id: "b".into(),
            in_maintenance: true,
            cordoned: false,
        };
        let unchanged = with_marks(facts.clone(), HostMarks::default());
        assert_eq!(unchanged, facts);
        let marked = with_marks(
            facts,
            HostMarks {
                cordoned: Some(true),
                in_maintenance: Some(false),
            },
        );
        assert!(marked.cordoned && !marked.in_maintenance);
    }
}
