//! `LibvirtDriver`: Drover's [`Driver`] for hosts reached through libvirt.
//!
//! What each call does (every one observes before it acts, so re-issuing it is safe):
//! - `discover`: every host's domains, active and inactive (see `discovery`);
//! - `host_facts`: the `host_facts` command when configured, else libvirt's version and no boot
//!   id; Drover's own cordon and maintenance marks on top;
//! - `health_check`: libvirt answers, then the `health_check` command when configured;
//! - `set_allocation`, `set_maintenance`: Drover's own marks (libvirt has neither); entering
//!   maintenance is refused while the host runs domains;
//! - `migrate`: peer-to-peer live migration, aborted past its deadline or when dropped;
//! - `shutdown_vm`: ACPI shutdown, destroyed after the graceful timeout;
//! - `start_vm`: starts the domain, moving its definition from the host that holds it first;
//! - `upgrade`, `reboot`: the configured commands, then a bounded wait for the host;
//! - `set_compatibility_level`: the configured command (libvirt has no such level); a policy
//!   that raises the level without it is refused when the driver is built.
//!
//! This module knows nothing of plans, journals or the engine's clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drover_core::{Cluster, Version};
use drover_driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved};
use drover_schema::inventory::LibvirtHost;

use crate::config::LibvirtDriverConfig;
use crate::connection::Connections;
use crate::error::LibvirtError;
use crate::host_commands::HostCommands;
use crate::marks::DroverHostMarks;
use crate::storage::SharedStorageRule;

/// The libvirt driver. Cheap to clone; clones share connections and Drover's marks.
#[derive(Clone)]
pub struct LibvirtDriver {
    inner: Arc<Inner>,
}

/// What every call needs; the call modules add their own `impl Inner` blocks.
pub(crate) struct Inner {
    pub(crate) hosts: BTreeMap<String, LibvirtHost>,
    /// The order of discovered hosts.
    pub(crate) host_order: Vec<String>,
    pub(crate) connections: Connections,
    pub(crate) commands: HostCommands,
    pub(crate) known: Cluster,
    pub(crate) storage_rule: SharedStorageRule,
    pub(crate) marks: DroverHostMarks,
    pub(crate) migration_bandwidth_mib_per_sec: Option<u64>,
    pub(crate) upgrade_plans: BTreeMap<String, drover_command::HostUpgradePlan>,
    pub(crate) call_timeout: Duration,
    pub(crate) migration_timeout: Duration,
    pub(crate) upgrade_timeout: Duration,
    pub(crate) reboot_timeout: Duration,
}

impl LibvirtDriver {
    /// Checks the config (hosts, commands, timeouts) and prepares the connections; connects
    /// to nothing yet.
    pub fn new(config: LibvirtDriverConfig) -> Result<LibvirtDriver, LibvirtError> {
        check_hosts(&config)?;
        if let Some((what, _)) = config
            .named_timeouts()
            .into_iter()
            .find(|(_, t)| t.is_zero())
        {
            return Err(LibvirtError::ZeroTimeout { what });
        }
        let commands = HostCommands::new(&config)?;
        let uris = config
            .hosts
            .iter()
            .map(|(name, host)| (name.clone(), host.uri.clone()))
            .collect();
        let inner = Inner {
            host_order: config.host_order(),
            connections: Connections::new(uris, config.connect_timeout),
            commands,
            storage_rule: SharedStorageRule::with_shared_path_prefixes(
                config.shared_storage_path_prefixes,
            ),
            marks: DroverHostMarks::open(config.marks_file)?,
            hosts: config.hosts,
            known: config.known,
            migration_bandwidth_mib_per_sec: config.migration_bandwidth_mib_per_sec,
            upgrade_plans: config.upgrade_plans,
            call_timeout: config.call_timeout,
            migration_timeout: config.migration_timeout,
            upgrade_timeout: config.upgrade_timeout,
            reboot_timeout: config.reboot_timeout,
        };
        Ok(LibvirtDriver {
            inner: Arc::new(inner),
        })
    }

    /// The host names, in the order discovery reports them.
    pub fn host_names(&self) -> &[String] {
        &self.inner.host_order
    }
}

/// At least one host, and a URI for every host of the inventory.
fn check_hosts(config: &LibvirtDriverConfig) -> Result<(), LibvirtError> {
    if config.hosts.is_empty() {
        return Err(LibvirtError::NoHosts);
    }
    match config
        .known
        .hosts
        .iter()
        .find(|host| !config.hosts.contains_key(&host.name))
    {
        Some(host) => Err(LibvirtError::HostWithoutUri {
            host: host.name.clone(),
        }),
        None => Ok(()),
    }
}

impl Inner {
    /// Fails for a host the driver does not know, before anything is done.
    pub(crate) fn require_host(&self, host: &str) -> Result<(), LibvirtError> {
        match self.hosts.contains_key(host) {
            true => Ok(()),
            false => Err(LibvirtError::UnknownHost(host.to_string())),
        }
    }

    /// Refuses to place a VM on a host Drover put in maintenance.
    pub(crate) fn refuse_if_in_maintenance(
        &self,
        host: &str,
        vm: &str,
    ) -> Result<(), LibvirtError> {
        match self.marks.is_in_maintenance(host) {
            true => Err(LibvirtError::Refused(format!(
                "host {host} is in maintenance: VM {vm} cannot be placed there"
            ))),
            false => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Driver for LibvirtDriver {
    fn kind(&self) -> &'static str {
        "libvirt"
    }

    async fn discover(&self) -> Result<Discovered, DriverError> {
        Ok(self.inner.discover().await?)
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        Ok(self.inner.host_facts(host).await?)
    }

    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        Ok(self.inner.health_check(host).await?)
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        self.inner.require_host(host)?;
        Ok(self.inner.marks.set_cordoned(host, !enabled)?)
    }

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        Ok(self.inner.set_maintenance(host, enabled).await?)
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
        let raised = self.inner.commands.set_compatibility_level(cluster, level);
        Ok(raised.await?)
    }
}
