//! The inventory's `driver:` section as serde types: which platform driver runs the upgrade and
//! how it is set up (the simulator with its faults, libvirt, or operator-supplied commands).
//!
//! The section is tagged by `kind` and refuses unknown keys. These types check the form of each
//! value only; rules that need the cluster (a fault naming a VM that exists) live in
//! `driver_check`, and the tag is read by `driver_tag` so that errors keep their positions. This
//! module knows nothing of how drivers work, of file positions, or of the core model.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use super::fields::{
    null_as_empty, number, optional_ratio, optional_whole_number, unique_keys, whole_number,
};

/// The `driver:` section; an inventory without one gets the default simulator.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DriverSection {
    /// A simulated platform, driven by virtual or scaled wall-clock time.
    Simulator(SimulatorSection),
    /// Hosts reached through libvirt.
    Libvirt(LibvirtSection),
    /// Every step done by an operator-supplied command.
    Command(CommandSection),
    /// A XenServer / XCP-ng pool through its XAPI (JSON-RPC).
    Xapi(XapiSection),
    /// An oVirt / Oracle Linux Virtualization Manager cluster through the engine's REST API v4.
    Ovirt(OvirtSection),
    /// A Ganeti cluster through its RAPI (version 2, HTTPS).
    Ganeti(GanetiSection),
    /// Apache CloudStack zones and clusters through its signed API (`/client/api`, JSON).
    Cloudstack(CloudstackSection),
    /// A KubeVirt / OpenShift Virtualization cluster through the Kubernetes API.
    Kubevirt(KubevirtSection),
    /// An OpenStack cloud's compute hosts through Nova's Compute API (Keystone v3).
    Openstack(OpenstackSection),
}

impl DriverSection {
    /// The section's `kind:` (the name the driver registry knows it by).
    pub fn kind(&self) -> &'static str {
        match self {
            DriverSection::Simulator(_) => "simulator",
            DriverSection::Libvirt(_) => "libvirt",
            DriverSection::Command(_) => "command",
            DriverSection::Xapi(_) => "xapi",
            DriverSection::Ovirt(_) => "ovirt",
            DriverSection::Ganeti(_) => "ganeti",
            DriverSection::Cloudstack(_) => "cloudstack",
            DriverSection::Kubevirt(_) => "kubevirt",
            DriverSection::Openstack(_) => "openstack",
        }
    }

    /// Where the section says a host is (`{host.address}`), when it says.
    pub fn host_address(&self, host: &str) -> Option<&str> {
        match self {
            DriverSection::Libvirt(libvirt) => libvirt.hosts.get(host).map(|h| h.address.as_str()),
            _ => None,
        }
    }
}

impl Default for DriverSection {
    fn default() -> Self {
        DriverSection::Simulator(SimulatorSection::default())
    }
}

/// `kind: simulator`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a simulator driver mapping such as {kind: simulator, seed: 1}"
)]
pub struct SimulatorSection {
    /// 0 runs in virtual time (instantly); N > 0 runs on the wall clock N times faster than the
    /// platform would.
    #[serde(default, deserialize_with = "number", skip_serializing_if = "is_zero")]
    pub time_scale: f64,
    /// Seeds the jitter of durations and the random faults.
    #[serde(
        default = "first_seed",
        deserialize_with = "whole_number",
        skip_serializing_if = "is_first_seed"
    )]
    pub seed: u64,
    /// Where the simulated platform keeps its state between Drover processes. Relative paths are
    /// relative to the inventory file's directory; `load_inventory_file` resolves them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub faults: Vec<FaultEntry>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "RandomFaults::is_none"
    )]
    pub random_faults: RandomFaults,
}

impl Default for SimulatorSection {
    fn default() -> Self {
        SimulatorSection {
            time_scale: 0.0,
            seed: first_seed(),
            state_file: None,
            faults: Vec::new(),
            random_faults: RandomFaults::default(),
        }
    }
}

/// One injected fault. Which of `vm`, `host`, `times`, `step` and `factor` apply depends on
/// `fault`; a parsed inventory has exactly the ones that apply (see [`FaultName`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a fault mapping such as {fault: migration-fails, vm: web-01, times: 2}"
)]
pub struct FaultEntry {
    pub fault: FaultName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// How many occurrences fail, for faults that count them; `None` means once.
    #[serde(
        default,
        deserialize_with = "optional_whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub times: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepName>,
    /// How many times longer the step takes, for `slow`.
    #[serde(
        default,
        deserialize_with = "optional_ratio",
        skip_serializing_if = "Option::is_none"
    )]
    pub factor: Option<f64>,
}

impl FaultEntry {
    /// `times`, or 1 when left out.
    pub fn times_or_once(&self) -> u32 {
        self.times.unwrap_or(1)
    }
}

/// The fault names of the file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultName {
    /// `vm`, `times`: the first `times` migrations of the VM fail.
    MigrationFails,
    /// `vm`, optional `times`: the platform refuses every migration of the VM (the first
    /// `times` only, when given: a refusal another destination or a later try gets past).
    MigrationRefused,
    /// `vm`, `times`: the first `times` migrations never complete (until Drover's timeout).
    MigrationHangs,
    /// `host`, `times`: the first `times` upgrades of the host fail.
    UpgradeFails,
    /// `host`: after its reboot the host never answers again.
    HostNeverReturns,
    /// `host`: the upgrade leaves the old boot id, so Drover must reboot the host itself.
    UpgradeDoesNotReboot,
    /// `host`: reboots do nothing (the boot id never changes).
    RebootIgnored,
    /// `vm`: graceful shutdown is ignored, so Drover must force the VM off.
    ShutdownIgnored,
    /// `step`, `factor`, optional `host`: the step takes `factor` times longer.
    Slow,
    /// `times`: the first `times` raises of the cluster compatibility level fail.
    CompatibilityLevelFails,
}

impl FaultName {
    /// The name as written in inventories (`migration-fails`).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultName::MigrationFails => "migration-fails",
            FaultName::MigrationRefused => "migration-refused",
            FaultName::MigrationHangs => "migration-hangs",
            FaultName::UpgradeFails => "upgrade-fails",
            FaultName::HostNeverReturns => "host-never-returns",
            FaultName::UpgradeDoesNotReboot => "upgrade-does-not-reboot",
            FaultName::RebootIgnored => "reboot-ignored",
            FaultName::ShutdownIgnored => "shutdown-ignored",
            FaultName::Slow => "slow",
            FaultName::CompatibilityLevelFails => "compatibility-level-fails",
        }
    }
}

impl fmt::Display for FaultName {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The simulated steps a `slow` fault can slow down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepName {
    Migrate,
    Upgrade,
    Reboot,
    Shutdown,
    Start,
    Maintenance,
}

/// Probabilities in 0..=1 of faults drawn at random from the simulator's seed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of probabilities such as {migration_failure: 0.05}"
)]
pub struct RandomFaults {
    #[serde(default, deserialize_with = "number", skip_serializing_if = "is_zero")]
    pub migration_failure: f64,
    #[serde(default, deserialize_with = "number", skip_serializing_if = "is_zero")]
    pub upgrade_failure: f64,
    #[serde(default, deserialize_with = "number", skip_serializing_if = "is_zero")]
    pub shutdown_ignored: f64,
    #[serde(default, deserialize_with = "number", skip_serializing_if = "is_zero")]
    pub host_never_returns: f64,
}

impl RandomFaults {
    /// Every probability is 0: no random fault.
    pub fn is_none(&self) -> bool {
        *self == RandomFaults::default()
    }

    /// Each probability with its key, for checks and messages.
    pub(crate) fn named_probabilities(&self) -> [(&'static str, f64); 4] {
        [
            ("migration_failure", self.migration_failure),
            ("upgrade_failure", self.upgrade_failure),
            ("shutdown_ignored", self.shutdown_ignored),
            ("host_never_returns", self.host_never_returns),
        ]
    }
}

/// `kind: libvirt` (its shape only, for now).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a libvirt driver mapping such as {kind: libvirt, hosts: {xs01: {uri: \"qemu+tcp://xs01/system\", address: xs01}}}"
)]
pub struct LibvirtSection {
    /// Per host name, how to reach it.
    #[serde(deserialize_with = "unique_libvirt_hosts")]
    pub hosts: BTreeMap<String, LibvirtHost>,
    /// Commands that replace the driver's own way of doing a step.
    #[serde(
        default,
        deserialize_with = "unique_command_steps",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub commands: BTreeMap<CommandStep, Vec<String>>,
    /// The bandwidth limit passed to libvirt for every live migration (MiB/s); absent: libvirt's
    /// default (unlimited). `policy.migration_bandwidth_mib_per_sec` is only the planner's
    /// estimate of the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_bandwidth_mib_per_sec: Option<u64>,
    /// Disk paths under these directories are on storage every host shares (NFS, a cluster
    /// file system); any other file or block disk makes its VM `local_storage`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_storage_path_prefixes: Vec<String>,
    /// Where Drover keeps its cordon and maintenance marks between processes (libvirt has
    /// neither); relative to the inventory. Absent: next to the state file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marks_file: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as {uri: \"qemu+tcp://xs01/system\", address: xs01}"
)]
pub struct LibvirtHost {
    pub uri: String,
    pub address: String,
}

/// `kind: xapi`: a XenServer / XCP-ng pool through XAPI's JSON-RPC (`URL/jsonrpc`). The password
/// is never in the inventory: it is read from `password_env` or `password_file`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a xapi driver mapping such as {kind: xapi, url: \"https://pool-master\", username: root, password_env: XAPI_PASSWORD}"
)]
pub struct XapiSection {
    /// The pool master (any member works: the driver follows `HOST_IS_SLAVE` to the master).
    pub url: String,
    pub username: String,
    /// The environment variable holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// A file holding the password (its first line); relative to the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// CA certificates (PEM) the server's certificate must chain to, for `https://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Accept any server certificate (logged loudly at every connection). For test pools only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// XAPI's encoding: `auto` (JSON-RPC, falling back to XML-RPC when the server has no
    /// `/jsonrpc`), `jsonrpc` or `xmlrpc`.
    #[serde(default, skip_serializing_if = "XapiTransport::is_auto")]
    pub transport: XapiTransport,
    /// Bound of one XAPI request, seconds.
    #[serde(default = "default_xapi_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// A migration task still pending after this many seconds is cancelled (`task.cancel`).
    #[serde(default = "default_xapi_migration_timeout_secs")]
    pub migration_timeout_secs: u64,
    /// How often a task is polled, milliseconds.
    #[serde(default = "default_xapi_task_poll_ms")]
    pub task_poll_ms: u64,
    /// How long an upgrade (its command, then the host answering at the target version) may
    /// take, seconds.
    #[serde(default = "default_xapi_upgrade_timeout_secs")]
    pub upgrade_timeout_secs: u64,
    /// Commands for what XAPI does not do itself: only `upgrade` (the installer or
    /// `xe-install-update`; placeholders `{host}`, `{host.address}`, `{target}`, `{cluster}`).
    #[serde(
        default,
        deserialize_with = "unique_command_steps",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub commands: BTreeMap<CommandStep, Vec<String>>,
}

/// How the xapi driver talks to the server: XAPI serves the same calls as JSON-RPC at
/// `/jsonrpc` and as XML-RPC at `/`; older servers only the latter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XapiTransport {
    /// JSON-RPC, or XML-RPC if the server answers `/jsonrpc` with 404 or a body that is not JSON.
    #[default]
    Auto,
    Jsonrpc,
    Xmlrpc,
}

impl XapiTransport {
    pub fn is_auto(&self) -> bool {
        *self == XapiTransport::Auto
    }
}

/// `kind: ovirt`: one cluster of an oVirt / OLVM engine through its REST API v4
/// (`URL/ovirt-engine/api`), logged in through the engine's SSO. The password is never in the
/// inventory: it is read from `password_env` or `password_file`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an ovirt driver mapping such as {kind: ovirt, url: \"https://engine.example\", username: admin@internal, password_env: OVIRT_PASSWORD}"
)]
pub struct OvirtSection {
    /// The engine (`https://engine.example`; a trailing `/ovirt-engine/api` is accepted).
    pub url: String,
    /// An engine user with its profile (`admin@internal`).
    pub username: String,
    /// The environment variable holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// A file holding the password (its first line); relative to the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// The engine's CA certificate (PEM, `/ovirt-engine/services/pki-resource?resource=ca-certificate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Accept any server certificate (logged loudly at every connection). For test engines only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// The engine's cluster this inventory is; absent: the inventory's cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Bound of one API request, seconds.
    #[serde(default = "default_xapi_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// A migration still running after this many seconds is cancelled (`cancelmigration`).
    #[serde(default = "default_xapi_migration_timeout_secs")]
    pub migration_timeout_secs: u64,
    /// How often an action's effect (a VM's or host's status) is polled, milliseconds.
    #[serde(default = "default_ovirt_poll_ms")]
    pub poll_ms: u64,
    /// How long an upgrade (the engine's `upgrade` or the command, then the host back at the
    /// target version) may take, seconds.
    #[serde(default = "default_xapi_upgrade_timeout_secs")]
    pub upgrade_timeout_secs: u64,
    /// Whether the engine's `upgrade` reboots the host (the engine's default: yes).
    #[serde(default = "default_true", skip_serializing_if = "Clone::clone")]
    pub upgrade_reboot: bool,
    /// Whether the run marks the cluster as upgrading on the engine (`ClusterService.upgrade`
    /// start before the first host, the progress after each host, finish at the end), as the
    /// `cluster_upgrade` role does; on by default.
    #[serde(default = "default_true", skip_serializing_if = "Clone::clone")]
    pub mark_cluster_upgrade: bool,
    /// A command that asks the engine machine whether the engine itself has an update pending
    /// (the API cannot say), e.g. `[ssh, root@engine, engine-upgrade-check, --quiet]`; exit 0
    /// pending, 1 none, anything else a failed check. Placeholder `{cluster}`. Absent: `drover
    /// check` says the engine was not checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engine_update_check: Vec<String>,
    /// The scheduling policy the roll switches the cluster to (the blocking setting
    /// `scheduling-policy`) and back from; the `cluster_upgrade` role's `cluster_maintenance` by
    /// default. A policy name of the engine (`SchedulingPolicy.name`, 1 to 128 characters:
    /// ovirt-engine's `cluster_policies.name` is a VARCHAR(128)).
    #[serde(
        default = "default_maintenance_scheduling_policy",
        skip_serializing_if = "is_default_maintenance_scheduling_policy"
    )]
    pub maintenance_scheduling_policy: String,
    /// Only `upgrade`: a command that replaces the engine's own `upgrade` action (placeholders
    /// `{host}`, `{host.address}`, `{target}`, `{cluster}`).
    #[serde(
        default,
        deserialize_with = "unique_command_steps",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub commands: BTreeMap<CommandStep, Vec<String>>,
}

/// `kind: cloudstack`: one CloudStack management server's hypervisor hosts (type Routing), of
/// one zone and cluster or of all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a cloudstack driver mapping such as {kind: cloudstack, endpoint: https://cloud.example/client/api, api_key_env: CS_KEY, secret_key_env: CS_SECRET, commands: {upgrade: [...], reboot: [...]}}"
)]
pub struct CloudstackSection {
    /// The API endpoint (`https://cloud.example/client/api`).
    pub endpoint: String,
    /// The environment variable holding the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// A file holding the API key (its first line); relative to the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
    /// The environment variable holding the secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_env: Option<String>,
    /// A file holding the secret key (its first line); relative to the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_file: Option<String>,
    /// Only the hosts of this zone (by name); absent: every zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Only the hosts of this cluster (by name); absent: every cluster of the zone(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Bound of one API request, seconds.
    #[serde(default = "default_xapi_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Bound of one asynchronous job (a migration, a stop, a start, maintenance), seconds.
    #[serde(default = "default_xapi_migration_timeout_secs")]
    pub job_timeout_secs: u64,
    /// How often `queryAsyncJobResult` and a host's state are polled, milliseconds.
    #[serde(default = "default_ovirt_poll_ms")]
    pub poll_ms: u64,
    /// How long the upgrade command, then the host reporting the target version, may take, seconds.
    #[serde(default = "default_xapi_upgrade_timeout_secs")]
    pub upgrade_timeout_secs: u64,
    /// Move a VM on local storage with its volumes (`migrateVirtualMachineWithVolume`) instead of
    /// shutting it down for its host's upgrade.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_migrate_with_volume: bool,
    /// `upgrade` (the hotfixes, run on the hypervisor: placeholders `{host}`, `{host.address}`,
    /// `{target}`, `{hotfixes}`, `{hops}`, `{reboots}`, `{cluster}`) and `reboot` (`{host}`,
    /// `{host.address}`, `{boot_id_before}`): CloudStack's API does neither.
    #[serde(
        default,
        deserialize_with = "unique_command_steps",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub commands: BTreeMap<CommandStep, Vec<String>>,
}

/// `kind: kubevirt`: a KubeVirt / OpenShift Virtualization cluster through the Kubernetes API,
/// with a kubeconfig (and context) or, without `kubeconfig`, the in-cluster service account.
/// Host names are node names, VM names `NAMESPACE/NAME` (`NAME` in the `default` namespace). The node's upgrade and reboot are the
/// operator's commands (`commands.upgrade`, `commands.reboot`: placeholders `{host}`,
/// `{host.address}`, `{target}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a kubevirt driver mapping such as {kind: kubevirt, kubeconfig: kubeconfig.yaml}"
)]
pub struct KubevirtSection {
    /// A kubeconfig file (relative to the inventory); absent: in-cluster credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// The kubeconfig's context; absent: its current-context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Bound of one API request, seconds.
    #[serde(default = "default_xapi_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// A VirtualMachineInstanceMigration still running after this is deleted (aborted), seconds
    /// (KubeVirt's own bound of a pending migration is 15 minutes).
    #[serde(default = "default_kubevirt_migration_timeout_secs")]
    pub migration_timeout_secs: u64,
    /// Shutdowns started per `batch_eviction_interval_secs` (OpenShift Virtualization's
    /// `batchEvictionSize` default: 10).
    #[serde(default = "default_kubevirt_batch_eviction_size")]
    pub batch_eviction_size: u64,
    /// OpenShift Virtualization's `batchEvictionInterval` default: 1 minute.
    #[serde(default = "default_kubevirt_batch_eviction_interval_secs")]
    pub batch_eviction_interval_secs: u64,
    /// A drain whose pods are not all gone by then fails, seconds.
    #[serde(default = "default_kubevirt_drain_timeout_secs")]
    pub drain_timeout_secs: u64,
    /// How long the upgrade command and the node's return at the target may take, seconds.
    #[serde(default = "default_xapi_upgrade_timeout_secs")]
    pub upgrade_timeout_secs: u64,
    /// How often migrations, VMs and nodes are looked at while Drover waits, milliseconds.
    #[serde(default = "default_kubevirt_poll_ms")]
    pub poll_ms: u64,
    /// The namespace of the HyperConverged resource `kubevirt-hyperconverged` (its `Upgradeable`
    /// gate and workload update methods); absent: `openshift-cnv`, OpenShift Virtualization's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyperconverged_namespace: Option<String>,
    /// Only `upgrade` and `reboot`: the node's own steps.
    #[serde(
        default,
        deserialize_with = "unique_command_steps",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub commands: BTreeMap<CommandStep, Vec<String>>,
    /// How an emptied node is updated: `commands` (the `upgrade`/`reboot` commands, the
    /// default) or `machine-config-pool` (OpenShift's Machine Config Operator, through a custom
    /// MachineConfigPool of Drover's, with the worker pool paused during the roll).
    #[serde(default, skip_serializing_if = "KubevirtNodeUpdate::is_commands")]
    pub node_update: KubevirtNodeUpdate,
    /// The worker MachineConfigPool paused during the roll with `node_update:
    /// machine-config-pool`; absent: `worker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_config_pool: Option<String>,
}

/// `node_update` of the kubevirt section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KubevirtNodeUpdate {
    /// The node's `upgrade` and `reboot` commands.
    #[default]
    Commands,
    /// OpenShift's Machine Config Operator through a MachineConfigPool.
    MachineConfigPool,
}

impl KubevirtNodeUpdate {
    pub fn is_commands(&self) -> bool {
        *self == KubevirtNodeUpdate::Commands
    }
}

fn default_kubevirt_migration_timeout_secs() -> u64 {
    900
}

fn default_kubevirt_batch_eviction_size() -> u64 {
    10
}

fn default_kubevirt_batch_eviction_interval_secs() -> u64 {
    60
}

fn default_kubevirt_drain_timeout_secs() -> u64 {
    600
}

fn default_kubevirt_poll_ms() -> u64 {
    2_000
}

fn default_ovirt_poll_ms() -> u64 {
    500
}

/// The `cluster_upgrade` role's policy (oVirt/ovirt-ansible-collection
/// `roles/cluster_upgrade/tasks/cluster_policy.yml`).
pub const DEFAULT_MAINTENANCE_SCHEDULING_POLICY: &str = "cluster_maintenance";

fn default_maintenance_scheduling_policy() -> String {
    DEFAULT_MAINTENANCE_SCHEDULING_POLICY.to_string()
}

fn is_default_maintenance_scheduling_policy(policy: &str) -> bool {
    policy == DEFAULT_MAINTENANCE_SCHEDULING_POLICY
}

fn default_true() -> bool {
    true
}

fn default_xapi_upgrade_timeout_secs() -> u64 {
    7_200
}

fn default_xapi_request_timeout_secs() -> u64 {
    30
}

fn default_xapi_migration_timeout_secs() -> u64 {
    3_600
}

fn default_xapi_task_poll_ms() -> u64 {
    1_000
}

/// `kind: ganeti`: a Ganeti cluster through RAPI v2 (`https://master:5080/2/…`). The password is
/// never in the inventory: it is read from `password_env` or `password_file`. Host names are
/// Ganeti's node names; the platform version, the boot id, the upgrade and the reboot are the
/// operator's commands (Ganeti has no call for any of them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a ganeti driver mapping such as {kind: ganeti, url: \"https://cluster:5080\", username: drover, password_env: GANETI_RAPI_PASSWORD}"
)]
pub struct GanetiSection {
    /// The RAPI of the cluster's master (the cluster address follows a master failover).
    pub url: String,
    pub username: String,
    /// The environment variable holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// A file holding the password (its first line); relative to the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// CA certificates (PEM) the RAPI certificate must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Accept any server certificate (logged loudly when the driver opens). For test clusters only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Bound of one RAPI request, seconds.
    #[serde(default = "default_ganeti_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// A job (migration, failover, shutdown, startup, role change) not finished after this many
    /// seconds is cancelled (`DELETE /2/jobs/ID`) and the step fails.
    #[serde(default = "default_ganeti_job_timeout_secs")]
    pub job_timeout_secs: u64,
    /// How often a job is polled (`GET /2/jobs/ID`), milliseconds.
    #[serde(default = "default_ganeti_job_poll_ms")]
    pub job_poll_ms: u64,
    /// How long an upgrade command, then the node answering again, may take, seconds.
    #[serde(default = "default_ganeti_upgrade_timeout_secs")]
    pub upgrade_timeout_secs: u64,
    /// How long a reboot command, then the node answering with a new boot id, may take, seconds.
    #[serde(default = "default_ganeti_reboot_timeout_secs")]
    pub reboot_timeout_secs: u64,
    /// Commands for what RAPI does not do: `host_facts` (version and boot id), `health_check`,
    /// `upgrade` and `reboot` (placeholders `{host}`, `{host.address}` (the node's primary IP),
    /// `{cluster}`, `{target}`, `{boot_id_before}`).
    #[serde(
        default,
        deserialize_with = "unique_command_steps",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub commands: BTreeMap<CommandStep, Vec<String>>,
    /// Hands the master role to `{host}`, a master candidate, before the master is drained
    /// (`gnt-cluster master-failover` must run on the new master; RAPI has no resource for it).
    /// Placeholders `{host}`, `{host.address}`, `{cluster}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_failover: Option<Vec<String>>,
    /// The cluster's own check before a plan (`gnt-cluster verify`): its failure refuses
    /// discovery. Placeholder `{cluster}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Vec<String>>,
}

fn default_ganeti_request_timeout_secs() -> u64 {
    30
}

fn default_ganeti_job_timeout_secs() -> u64 {
    3_600
}

fn default_ganeti_job_poll_ms() -> u64 {
    500
}

fn default_ganeti_upgrade_timeout_secs() -> u64 {
    7_200
}

fn default_ganeti_reboot_timeout_secs() -> u64 {
    1_800
}

/// `kind: openstack`: an OpenStack cloud's `nova-compute` hosts through the Compute API, with
/// Keystone v3 authentication (a password or an application credential) and Placement. The
/// cloud is given field by field or as a `clouds.yaml` entry (`cloud`, fields given here win);
/// the password or secret comes from the environment or a file (or the `clouds.yaml` entry),
/// never from this section. Host names are Nova's compute service hosts; the platform version,
/// the boot id, the upgrade and the reboot are the operator's commands (Nova has no call for
/// any of them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an openstack driver mapping such as {kind: openstack, cloud: prod}"
)]
pub struct OpenstackSection {
    /// A `clouds.yaml` entry to start from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    /// The `clouds.yaml` holding `cloud` (relative to the inventory); default: openstacksdk's
    /// search path (`./clouds.yaml`, `~/.config/openstack/`, `/etc/openstack/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clouds_file: Option<String>,
    /// Keystone, e.g. `https://keystone.example:5000/v3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The user's domain (default `Default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_domain: Option<String>,
    /// The project the token is scoped to (Nova's admin calls need an admin role there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The project's domain (default `Default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_domain: Option<String>,
    /// An application credential's id (its secret comes from `password_env`/`password_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_credential_id: Option<String>,
    /// The environment variable holding the password (or the application credential's secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// A file holding the password or secret (its first line); relative to the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// The catalog region (default: the first endpoint of each service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The catalog interface: `public` (default), `internal` or `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// CA certificates (PEM) the cloud's certificates must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Accept any certificate (logged loudly when the driver opens). For test clouds only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Let Nova block-migrate servers with a local disk (`block_migration: auto`); without it
    /// such servers are not migratable (the plan shuts them down instead).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_block_migration: bool,
    /// Bound of one API request, seconds.
    #[serde(default = "default_openstack_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// A live migration not finished after this many seconds is aborted and the step fails.
    #[serde(default = "default_openstack_migration_timeout_secs")]
    pub migration_timeout_secs: u64,
    /// Bound of a stop, a start or a cold migration, seconds.
    #[serde(default = "default_openstack_action_timeout_secs")]
    pub action_timeout_secs: u64,
    /// How often a migration or a server is polled, milliseconds.
    #[serde(default = "default_openstack_poll_ms")]
    pub poll_ms: u64,
    /// How long an upgrade command, then the compute service reporting again, may take, seconds.
    #[serde(default = "default_openstack_upgrade_timeout_secs")]
    pub upgrade_timeout_secs: u64,
    /// How long a reboot command, then the host answering with a new boot id and its compute
    /// service reporting `up`, may take, seconds.
    #[serde(default = "default_openstack_reboot_timeout_secs")]
    pub reboot_timeout_secs: u64,
    /// Commands for what the Compute API does not do: `host_facts` (version and boot id),
    /// `health_check`, `upgrade` and `reboot` (placeholders `{host}`, `{host.address}` (the
    /// hypervisor's `host_ip`), `{cluster}`, `{target}`, `{boot_id_before}`).
    #[serde(
        default,
        deserialize_with = "unique_command_steps",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub commands: BTreeMap<CommandStep, Vec<String>>,
}

fn default_openstack_request_timeout_secs() -> u64 {
    30
}

fn default_openstack_migration_timeout_secs() -> u64 {
    1_800
}

fn default_openstack_action_timeout_secs() -> u64 {
    600
}

fn default_openstack_poll_ms() -> u64 {
    1_000
}

fn default_openstack_upgrade_timeout_secs() -> u64 {
    7_200
}

fn default_openstack_reboot_timeout_secs() -> u64 {
    1_800
}

/// `kind: command`: every step is a command (an argv list, run without a shell).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a command driver mapping such as {kind: command, commands: {upgrade: [/usr/local/bin/upgrade-host]}}"
)]
pub struct CommandSection {
    #[serde(deserialize_with = "unique_command_steps")]
    pub commands: BTreeMap<CommandStep, Vec<String>>,
    /// Pass values that start with `-` (a VM named `--help`) where a program would read them as
    /// options. Off by default: such a call fails naming the value, unless the command puts a
    /// `--` argument before it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_option_like_values: bool,
}

/// The steps a command can be configured for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStep {
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
    /// After the last host: `{level}`, `{cluster}`.
    SetCompatibilityLevel,
}

impl StepName {
    /// The name as written in inventories (`migrate`).
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Migrate => "migrate",
            StepName::Upgrade => "upgrade",
            StepName::Reboot => "reboot",
            StepName::Shutdown => "shutdown",
            StepName::Start => "start",
            StepName::Maintenance => "maintenance",
        }
    }
}

impl CommandStep {
    /// The name as written in inventories (`enter_maintenance`).
    pub fn as_str(self) -> &'static str {
        match self {
            CommandStep::Discover => "discover",
            CommandStep::HostFacts => "host_facts",
            CommandStep::HealthCheck => "health_check",
            CommandStep::Cordon => "cordon",
            CommandStep::Uncordon => "uncordon",
            CommandStep::EnterMaintenance => "enter_maintenance",
            CommandStep::ExitMaintenance => "exit_maintenance",
            CommandStep::Migrate => "migrate",
            CommandStep::ShutdownVm => "shutdown_vm",
            CommandStep::StartVm => "start_vm",
            CommandStep::Upgrade => "upgrade",
            CommandStep::Reboot => "reboot",
            CommandStep::SetCompatibilityLevel => "set_compatibility_level",
        }
    }
}

/// Reads a driver's `commands`, refusing a step given twice.
fn unique_command_steps<'de, D>(
    deserializer: D,
) -> Result<BTreeMap<CommandStep, Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    unique_keys(
        deserializer,
        "step",
        "a mapping of steps to commands, such as {upgrade: [/usr/local/bin/upgrade-host]}",
    )
}

/// Reads libvirt's `hosts`, refusing a host given twice.
fn unique_libvirt_hosts<'de, D>(deserializer: D) -> Result<BTreeMap<String, LibvirtHost>, D::Error>
where
    D: Deserializer<'de>,
{
    unique_keys(
        deserializer,
        "host",
        "a mapping of host names to {uri, address}",
    )
}

fn first_seed() -> u64 {
    1
}

fn is_first_seed(seed: &u64) -> bool {
    *seed == first_seed()
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}
