//! The inventory file format as serde types, used both to read and to write inventories.
//!
//! Field names, defaults and allowed values here are the file format's contract. Unknown keys are
//! refused everywhere. These types check the form of each value only; cross-field rules live in
//! `validate`, and this module knows nothing of file positions or of how errors are reported.

use std::collections::BTreeMap;

use drover_core::{
    ApprovalMode, HostRole, HostShare, HostState, MaintenanceWindow, MaxUnavailable, RestartPolicy,
    Unmovable, UpgradeMode, Version, VmState,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::driver::DriverSection;
use super::fields::{
    null_as_empty, optional_host_share, optional_max_unavailable, optional_ratio,
    optional_whole_number, unique_labels, version_text, whole_number, window_list,
};
use super::settings::SettingEntry;
use super::upgrade::UpgradeSection;

/// A whole inventory file: the cluster, its upgrade policy, its hosts and VMs, and the driver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an inventory mapping with `cluster` and `hosts` (and optional `policy`, `vms`, `driver`)"
)]
pub struct InventoryDocument {
    pub cluster: ClusterSection,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "PolicySection::is_empty"
    )]
    pub policy: PolicySection,
    pub hosts: Vec<HostEntry>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub vms: Vec<VmEntry>,
    /// Left out (or empty): the default simulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverSection>,
    /// Release catalog, channel, control plane, hotfixes, update check.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "UpgradeSection::is_empty"
    )]
    pub upgrade: UpgradeSection,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as {name: pool-a, target_version: \"8.2.1\"}"
)]
pub struct ClusterSection {
    pub name: String,
    #[serde(with = "version_text")]
    pub target_version: Version,
    /// Platform settings that block a roll and are on (HA, WLB, a VM's CD/DVD).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub settings: Vec<SettingEntry>,
}

/// Policy overrides; a field left out takes its value from `drover_core::Policy::default()`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of policy settings")]
pub struct PolicySection {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_max_unavailable"
    )]
    pub max_unavailable: Option<MaxUnavailable>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_ratio"
    )]
    pub cpu_overcommit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_resolve: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub upgrade_duration_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub reboot_duration_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub migration_bandwidth_mib_per_sec: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub migration_overhead_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub max_concurrent_migrations_per_host: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub max_concurrent_migrations_per_cluster: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub vm_shutdown_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub vm_boot_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_upgrade_mode"
    )]
    pub mode: Option<UpgradeMode>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_approval_mode"
    )]
    pub approval: Option<ApprovalMode>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub max_step_attempts: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub retry_backoff_initial_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub retry_backoff_max_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub step_timeout_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub migration_timeout_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub upgrade_timeout_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub reboot_timeout_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub vm_shutdown_timeout_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub unschedulable_timeout_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub pending_timeout_secs: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub batch_eviction_size: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub batch_eviction_interval_secs: Option<u64>,
    /// Texts such as "Sat 22:00-06:00"; none means the upgrade may start at any time.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "window_list")]
    pub windows: Vec<MaintenanceWindow>,
    /// IANA name such as "Europe/Paris"; checked against the time zone database in `validate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Upgrade only these hosts; absent means every host older than the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_hosts: Option<Vec<String>>,
    /// Hosts at the target upgraded all the same (package updates, or forced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub force_hosts: Vec<String>,
    /// The cluster compatibility level to set after the last host (a non-empty text such as
    /// "4.8"); absent leaves it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raise_compatibility_level_to: Option<String>,
    /// The most hosts `max_unavailable: auto` takes down at once: a count or "10%".
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_host_share"
    )]
    pub max_unavailable_auto_ceiling: Option<HostShare>,
    /// Memory kept free on every host Drover places VMs on.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub host_memory_reserve_mib: Option<u64>,
    /// The highest share of a host's memory Drover fills by placing VMs there (1 to 100).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_whole_number"
    )]
    pub host_memory_max_fill_percent: Option<u32>,
    /// One host per wave whatever `max_unavailable` says (a platform whose upgrade tool refuses
    /// concurrent upgrades, such as Oracle PCA's `pca-admin update compute-node`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_host_at_a_time: Option<bool>,
}

impl PolicySection {
    fn is_empty(&self) -> bool {
        *self == PolicySection::default()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a host mapping such as {name: xs01, version: \"8.0.0\", memory_mib: 786432, cpus: 96}"
)]
pub struct HostEntry {
    pub name: String,
    #[serde(
        with = "HostRoleName",
        default = "compute_role",
        skip_serializing_if = "is_compute_role"
    )]
    pub role: HostRole,
    #[serde(with = "version_text")]
    pub version: Version,
    #[serde(deserialize_with = "whole_number")]
    pub memory_mib: u64,
    #[serde(deserialize_with = "whole_number")]
    pub cpus: u32,
    #[serde(
        with = "HostStateName",
        default = "host_up",
        skip_serializing_if = "is_host_up"
    )]
    pub state: HostState,
    /// Allocation disabled: never a migration target.
    #[serde(default, skip_serializing_if = "is_no")]
    pub cordoned: bool,
    #[serde(
        default,
        deserialize_with = "unique_labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a VM mapping such as {name: web-01, host: xs01, memory_mib: 8192}"
)]
pub struct VmEntry {
    pub name: String,
    /// The name of the host the VM is on.
    pub host: String,
    #[serde(deserialize_with = "whole_number")]
    pub memory_mib: u64,
    #[serde(
        deserialize_with = "whole_number",
        default = "one_vcpu",
        skip_serializing_if = "is_one_vcpu"
    )]
    pub vcpus: u32,
    #[serde(
        with = "VmStateName",
        default = "vm_running",
        skip_serializing_if = "is_vm_running"
    )]
    pub state: VmState,
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub migratable: bool,
    #[serde(default, skip_serializing_if = "is_no")]
    pub local_storage: bool,
    #[serde(
        with = "RestartPolicyName",
        default = "manual_restart",
        skip_serializing_if = "is_manual_restart"
    )]
    pub restart_policy: RestartPolicy,
    /// What to do when the VM cannot live-migrate: shutdown, suspend, shelve or restart;
    /// absent keeps the default (see `drover_core::Unmovable`).
    #[serde(
        with = "optional_unmovable",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unmovable: Option<Unmovable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<String>,
    /// The hosts the VM may run on (its own among them); absent means any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
}

// The core enums carry no serde on purpose; these remote definitions give them their file names.

#[derive(Serialize, Deserialize)]
#[serde(remote = "HostRole", rename_all = "lowercase")]
enum HostRoleName {
    Master,
    Management,
    Compute,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "HostState", rename_all = "lowercase")]
enum HostStateName {
    Up,
    Maintenance,
    Down,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "VmState", rename_all = "lowercase")]
enum VmStateName {
    Running,
    Stopped,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "RestartPolicy", rename_all = "lowercase")]
enum RestartPolicyName {
    Always,
    Manual,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Unmovable", rename_all = "lowercase")]
enum UnmovableName {
    Shutdown,
    Suspend,
    Shelve,
    Restart,
}

/// `unmovable` of a VM, where a left-out value keeps the default (`with = ...`).
mod optional_unmovable {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        choice: &Option<Unmovable>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match choice {
            Some(choice) => UnmovableName::serialize(choice, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Unmovable>, D::Error> {
        UnmovableName::deserialize(deserializer).map(Some)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "UpgradeMode", rename_all = "lowercase")]
enum UpgradeModeName {
    Automatic,
    Manual,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "ApprovalMode", rename_all = "lowercase")]
enum ApprovalModeName {
    Automatic,
    Manual,
}

/// `mode` in the policy, where a left-out value takes the core default (`with = ...`).
mod optional_upgrade_mode {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        mode: &Option<UpgradeMode>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match mode {
            Some(mode) => UpgradeModeName::serialize(mode, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<UpgradeMode>, D::Error> {
        UpgradeModeName::deserialize(deserializer).map(Some)
    }
}

/// `approval` in the policy, where a left-out value takes the core default (`with = ...`).
mod optional_approval_mode {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        approval: &Option<ApprovalMode>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match approval {
            Some(approval) => ApprovalModeName::serialize(approval, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<ApprovalMode>, D::Error> {
        ApprovalModeName::deserialize(deserializer).map(Some)
    }
}

// Defaults of optional fields, and the tests that leave them out when writing.

fn compute_role() -> HostRole {
    HostRole::Compute
}

fn is_compute_role(role: &HostRole) -> bool {
    *role == compute_role()
}

fn host_up() -> HostState {
    HostState::Up
}

fn is_host_up(state: &HostState) -> bool {
    *state == host_up()
}

fn one_vcpu() -> u32 {
    1
}

fn is_one_vcpu(vcpus: &u32) -> bool {
    *vcpus == one_vcpu()
}

fn vm_running() -> VmState {
    VmState::Running
}

fn is_vm_running(state: &VmState) -> bool {
    *state == vm_running()
}

fn manual_restart() -> RestartPolicy {
    RestartPolicy::Manual
}

fn is_manual_restart(policy: &RestartPolicy) -> bool {
    *policy == manual_restart()
}

fn yes() -> bool {
    true
}

fn is_yes(value: &bool) -> bool {
    *value
}

fn is_no(value: &bool) -> bool {
    !*value
}
