//! Cluster → inventory document, for writing a cluster back as a file that reads to an equal
//! cluster. Fields equal to their defaults are left out to keep files short.
//!
//! Knows the core model and the document types, not the YAML text or its layout.

use drover_core::{Cluster, Host, Policy, Vm};

use super::schema::{ClusterSection, HostEntry, InventoryDocument, PolicySection, VmEntry};
use super::settings::setting_entry;

impl InventoryDocument {
    /// The document describing `cluster`; VMs name their host by the host's name.
    pub fn from_cluster(cluster: &Cluster) -> InventoryDocument {
        InventoryDocument {
            cluster: ClusterSection {
                name: cluster.name.clone(),
                target_version: cluster.target_version.clone(),
                settings: cluster.settings.iter().filter_map(setting_entry).collect(),
            },
            policy: policy_overrides(&cluster.policy),
            hosts: cluster.hosts.iter().map(host_entry).collect(),
            vms: cluster.vms.iter().map(|vm| vm_entry(vm, cluster)).collect(),
            driver: None,
            upgrade: Default::default(),
        }
    }
}

impl PolicySection {
    /// Every setting of `policy`, defaults included: what a run records when it starts, so that
    /// resuming it with a later drover (whose defaults may differ) plans with the same policy.
    pub fn complete(policy: &Policy) -> PolicySection {
        policy_section(policy, None)
    }
}

/// Only the settings that differ from `Policy::default()`.
fn policy_overrides(policy: &Policy) -> PolicySection {
    policy_section(policy, Some(&Policy::default()))
}

/// The settings of `policy` that differ from `defaults` (all of them without defaults). Every
/// field is named, so a field added to the core `Policy` must be written here too.
fn policy_section(policy: &Policy, defaults: Option<&Policy>) -> PolicySection {
    let complete = Policy::default();
    let keep_all = defaults.is_none();
    let defaults = defaults.unwrap_or(&complete);
    PolicySection {
        // Written only when on, even in a complete section, so documents of policies without it
        // read as before; absent reads as off.
        one_host_at_a_time: policy.one_host_at_a_time.then_some(true),
        max_unavailable: changed_or_all(keep_all, policy.max_unavailable, defaults.max_unavailable),
        max_unavailable_auto_ceiling: changed_or_all(
            keep_all,
            policy.max_unavailable_auto_ceiling,
            defaults.max_unavailable_auto_ceiling,
        ),
        host_memory_reserve_mib: changed_or_all(
            keep_all,
            policy.host_memory_reserve_mib,
            defaults.host_memory_reserve_mib,
        ),
        host_memory_max_fill_percent: changed_or_all(
            keep_all,
            policy.host_memory_max_fill_percent,
            defaults.host_memory_max_fill_percent,
        ),
        cpu_overcommit: changed_or_all(keep_all, policy.cpu_overcommit, defaults.cpu_overcommit),
        auto_resolve: changed_or_all(keep_all, policy.auto_resolve, defaults.auto_resolve),
        upgrade_duration_secs: changed_or_all(
            keep_all,
            policy.upgrade_duration_secs,
            defaults.upgrade_duration_secs,
        ),
        reboot_duration_secs: changed_or_all(
            keep_all,
            policy.reboot_duration_secs,
            defaults.reboot_duration_secs,
        ),
        migration_bandwidth_mib_per_sec: changed_or_all(
            keep_all,
            policy.migration_bandwidth_mib_per_sec,
            defaults.migration_bandwidth_mib_per_sec,
        ),
        migration_overhead_secs: changed_or_all(
            keep_all,
            policy.migration_overhead_secs,
            defaults.migration_overhead_secs,
        ),
        max_concurrent_migrations_per_host: changed_or_all(
            keep_all,
            policy.max_concurrent_migrations_per_host,
            defaults.max_concurrent_migrations_per_host,
        ),
        max_concurrent_migrations_per_cluster: changed_or_all(
            keep_all,
            policy.max_concurrent_migrations_per_cluster,
            defaults.max_concurrent_migrations_per_cluster,
        ),
        vm_shutdown_secs: changed_or_all(
            keep_all,
            policy.vm_shutdown_secs,
            defaults.vm_shutdown_secs,
        ),
        vm_boot_secs: changed_or_all(keep_all, policy.vm_boot_secs, defaults.vm_boot_secs),
        mode: changed_or_all(keep_all, policy.mode, defaults.mode),
        approval: changed_or_all(keep_all, policy.approval, defaults.approval),
        max_step_attempts: changed_or_all(
            keep_all,
            policy.max_step_attempts,
            defaults.max_step_attempts,
        ),
        retry_backoff_initial_secs: changed_or_all(
            keep_all,
            policy.retry_backoff_initial_secs,
            defaults.retry_backoff_initial_secs,
        ),
        retry_backoff_max_secs: changed_or_all(
            keep_all,
            policy.retry_backoff_max_secs,
            defaults.retry_backoff_max_secs,
        ),
        step_timeout_secs: changed_or_all(
            keep_all,
            policy.step_timeout_secs,
            defaults.step_timeout_secs,
        ),
        migration_timeout_secs: changed_or_all(
            keep_all,
            policy.migration_timeout_secs,
            defaults.migration_timeout_secs,
        ),
        upgrade_timeout_secs: changed_or_all(
            keep_all,
            policy.upgrade_timeout_secs,
            defaults.upgrade_timeout_secs,
        ),
        reboot_timeout_secs: changed_or_all(
            keep_all,
            policy.reboot_timeout_secs,
            defaults.reboot_timeout_secs,
        ),
        vm_shutdown_timeout_secs: changed_or_all(
            keep_all,
            policy.vm_shutdown_timeout_secs,
            defaults.vm_shutdown_timeout_secs,
        ),
        unschedulable_timeout_secs: changed_or_all(
            keep_all,
            policy.unschedulable_timeout_secs,
            defaults.unschedulable_timeout_secs,
        ),
        pending_timeout_secs: changed_or_all(
            keep_all,
            policy.pending_timeout_secs,
            defaults.pending_timeout_secs,
        ),
        batch_eviction_size: changed_or_all(
            keep_all,
            policy.batch_eviction_size,
            defaults.batch_eviction_size,
        ),
        batch_eviction_interval_secs: changed_or_all(
            keep_all,
            policy.batch_eviction_interval_secs,
            defaults.batch_eviction_interval_secs,
        ),
        windows: policy.windows.clone(),
        time_zone: changed_or_all(
            keep_all,
            policy.time_zone.clone(),
            defaults.time_zone.clone(),
        ),
        force_hosts: policy.force_hosts.iter().cloned().collect(),
        raise_compatibility_level_to: policy.raise_compatibility_level_to.clone(),
        only_hosts: policy
            .only_hosts
            .as_ref()
            .map(|names| names.iter().cloned().collect()),
    }
}

fn changed_or_all<T: PartialEq>(keep_all: bool, value: T, default: T) -> Option<T> {
    (keep_all || value != default).then_some(value)
}

fn host_entry(host: &Host) -> HostEntry {
    HostEntry {
        name: host.name.clone(),
        role: host.role,
        version: host.version.clone(),
        memory_mib: host.memory_mib,
        cpus: host.cpus,
        state: host.state,
        cordoned: host.cordoned,
        labels: host.labels.clone(),
    }
}

fn vm_entry(vm: &Vm, cluster: &Cluster) -> VmEntry {
    VmEntry {
        name: vm.name.clone(),
        host: cluster.host(vm.host).name.clone(),
        memory_mib: vm.memory_mib,
        vcpus: vm.vcpus,
        state: vm.state,
        migratable: vm.migratable,
        local_storage: vm.local_storage,
        unmovable: vm.unmovable,
        restart_policy: vm.restart_policy,
        anti_affinity: vm.anti_affinity.clone(),
        allowed_hosts: vm.allowed_hosts.as_ref().map(|allowed| {
            allowed
                .iter()
                .map(|host| cluster.host(*host).name.clone())
                .collect()
        }),
    }
}
