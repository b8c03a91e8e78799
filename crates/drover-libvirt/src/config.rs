//! How to build a [`crate::LibvirtDriver`]: the hosts and their URIs, the host-step commands,
//! the inventory (for roles, labels and VM settings that override a domain's metadata), the
//! shared-storage rule, and every timeout.
//!
//! [`LibvirtDriverConfig::from_inventory`] takes the timeouts from the policy and the shared path
//! prefixes and bandwidth limit from the driver section; the marks file is the caller's choice
//! (it knows where the state lives). This module knows nothing of libvirt calls.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use drover_core::Cluster;
use drover_schema::inventory::{CommandStep, LibvirtHost, LibvirtSection};

/// How long opening a connection to a host's libvirt may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one ordinary libvirt call (list, look up, start, define) may take by default.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The steps that may be commands; the driver does every other step through libvirt.
/// libvirt has no cluster compatibility level, so raising one is always a command.
pub const COMMANDABLE_STEPS: [CommandStep; 5] = [
    CommandStep::HostFacts,
    CommandStep::HealthCheck,
    CommandStep::Upgrade,
    CommandStep::Reboot,
    CommandStep::SetCompatibilityLevel,
];

#[derive(Clone, Debug, PartialEq)]
pub struct LibvirtDriverConfig {
    /// Per host name: its libvirt URI (also the destination URI of peer-to-peer migrations, so
    /// it must be reachable from every other host) and its address (`{host.address}` in
    /// commands).
    pub hosts: BTreeMap<String, LibvirtHost>,
    /// Argv templates of host steps (see [`COMMANDABLE_STEPS`]), with `drover-command`'s
    /// placeholders.
    pub commands: BTreeMap<CommandStep, Vec<String>>,
    /// The inventory: host roles and labels, and VM settings that win over domain metadata.
    pub known: Cluster,
    /// Passed to libvirt as the migration's bandwidth limit; `None`: libvirt's default.
    pub migration_bandwidth_mib_per_sec: Option<u64>,
    /// Paths under these prefixes are on shared storage (see [`crate::storage`]).
    pub shared_storage_path_prefixes: Vec<PathBuf>,
    /// Where Drover's cordon and maintenance marks are kept between processes; `None`: in
    /// memory only.
    pub marks_file: Option<PathBuf>,
    /// Per host, what its upgrade command is told (`{hops}`, `{hotfixes}`, `{reboots}`) and
    /// whether it runs although the host reports the target.
    pub upgrade_plans: BTreeMap<String, drover_command::HostUpgradePlan>,
    pub connect_timeout: Duration,
    /// One ordinary libvirt call.
    pub call_timeout: Duration,
    /// A live migration's own deadline: past it the migration is aborted.
    pub migration_timeout: Duration,
    /// The `host_facts` and `health_check` commands.
    pub step_timeout: Duration,
    /// The `upgrade` command plus the wait for the host to answer again.
    pub upgrade_timeout: Duration,
    /// The `reboot` command plus the wait for a new boot id.
    pub reboot_timeout: Duration,
}

impl LibvirtDriverConfig {
    /// The config of an inventory's `kind: libvirt` section, with the policy's timeouts:
    /// `migration_timeout_secs`, `upgrade_timeout_secs`, `reboot_timeout_secs`, and
    /// `step_timeout_secs` for the quick commands; the section's shared path prefixes (none:
    /// every file or block disk is local) and bandwidth limit (the policy's
    /// `migration_bandwidth_mib_per_sec` is the planner's estimate of the network, not a limit).
    /// No marks file: the caller sets one.
    pub fn from_inventory(known: &Cluster, section: &LibvirtSection) -> LibvirtDriverConfig {
        let policy = &known.policy;
        let step_timeout = Duration::from_secs(policy.step_timeout_secs);
        LibvirtDriverConfig {
            hosts: section.hosts.clone(),
            commands: section.commands.clone(),
            known: known.clone(),
            migration_bandwidth_mib_per_sec: section.migration_bandwidth_mib_per_sec,
            shared_storage_path_prefixes: section
                .shared_storage_path_prefixes
                .iter()
                .map(PathBuf::from)
                .collect(),
            marks_file: None,
            upgrade_plans: BTreeMap::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT.min(step_timeout),
            call_timeout: DEFAULT_CALL_TIMEOUT.min(step_timeout),
            migration_timeout: Duration::from_secs(policy.migration_timeout_secs),
            step_timeout,
            upgrade_timeout: Duration::from_secs(policy.upgrade_timeout_secs),
            reboot_timeout: Duration::from_secs(policy.reboot_timeout_secs),
        }
    }

    /// Every timeout with its name, for checks and messages.
    pub(crate) fn named_timeouts(&self) -> [(&'static str, Duration); 6] {
        [
            ("connect timeout", self.connect_timeout),
            ("call timeout", self.call_timeout),
            ("migration timeout", self.migration_timeout),
            ("step timeout", self.step_timeout),
            ("upgrade timeout", self.upgrade_timeout),
            ("reboot timeout", self.reboot_timeout),
        ]
    }

    /// The hosts in the inventory's order, then the driver's other hosts by name: the order of
    /// discovered hosts.
    pub(crate) fn host_order(&self) -> Vec<String> {
        let known = self
            .known
            .hosts
            .iter()
            .map(|host| host.name.clone())
            .filter(|name| self.hosts.contains_key(name));
        let others = self
            .hosts
            .keys()
            .filter(|name| self.known.host_named(name).is_none())
            .cloned();
        known.chain(others).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &str = r#"
cluster: {name: lab, target_version: "2.0"}
policy: {step_timeout_secs: 20, migration_timeout_secs: 120, reboot_timeout_secs: 300}
hosts:
  - {name: h2, version: "1.0", memory_mib: 4096, cpus: 2}
  - {name: h1, role: master, version: "1.0", memory_mib: 4096, cpus: 2}
vms:
  - {name: web1, host: h1, memory_mib: 128, anti_affinity: web}
driver:
  kind: libvirt
  hosts:
    h1: {uri: "qemu+tcp://10.213.0.11/system", address: 10.213.0.11}
    h2: {uri: "qemu+tcp://10.213.0.12/system", address: 10.213.0.12}
    h3: {uri: "qemu+tcp://10.213.0.13/system", address: 10.213.0.13}
  commands:
    host_facts: [cat, "/state/{host}/facts"]
"#;

    fn config() -> LibvirtDriverConfig {
        let file = drover_schema::parse_inventory_file(INVENTORY, "lab.yaml").unwrap();
        let drover_schema::DriverSection::Libvirt(section) = &file.driver else {
            panic!("the test inventory has a libvirt section");
        };
        LibvirtDriverConfig::from_inventory(&file.cluster, section)
    }

    #[test]
    fn from_inventory_takes_hosts_commands_and_policy_timeouts() {
        let config = config();
        assert_eq!(config.hosts["h1"].uri, "qemu+tcp://10.213.0.11/system");
        assert_eq!(config.hosts["h2"].address, "10.213.0.12");
        assert_eq!(
            config.commands[&CommandStep::HostFacts],
            vec!["cat".to_string(), "/state/{host}/facts".to_string()]
        );
        assert_eq!(config.step_timeout, Duration::from_secs(20));
        assert_eq!(config.call_timeout, Duration::from_secs(20));
        assert_eq!(config.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(config.migration_timeout, Duration::from_secs(120));
        assert_eq!(config.reboot_timeout, Duration::from_secs(300));
        assert_eq!(config.migration_bandwidth_mib_per_sec, None);
        assert!(config.shared_storage_path_prefixes.is_empty());
        assert_eq!(config.known.vms[0].anti_affinity.as_deref(), Some("web"));
    }

    #[test]
    fn hosts_are_ordered_as_the_inventory_then_by_name() {
        assert_eq!(config().host_order(), vec!["h2", "h1", "h3"]);
    }
}
