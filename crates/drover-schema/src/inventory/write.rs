//! Cluster → inventory document, for writing a cluster back as a file that reads to an equal
//! cluster. Fields equal to their defaults are left out to keep files short.
//!
//! Knows the core model and the document types, not the YAML text or its layout.

use drover_core::{Cluster, Host, Policy, Vm};

use super::schema::{ClusterSection, HostEntry, InventoryDocument, PolicySection, VmEntry};

impl InventoryDocument {
    /// The document describing `cluster`; VMs name their host by the host's name.
    pub fn from_cluster(cluster: &Cluster) -> InventoryDocument {
        InventoryDocument {
            cluster: ClusterSection {
                name: cluster.name.clone(),
                target_version: cluster.target_version.clone(),
            },
            policy: policy_overrides(&cluster.policy),
            hosts: cluster.hosts.iter().map(host_entry).collect(),
            vms: cluster.vms.iter().map(|vm| vm_entry(vm, cluster)).collect(),
            driver: None,
            upgrade: Default::default(),
        }
    }
}

/// Only the settings that differ from `Policy::default()`. Every field is named, so a field
/// added to the core `Policy` must be written here too.
fn policy_overrides(policy: &Policy) -> PolicySection {
    let defaults = Policy::default();
    PolicySection {
        max_unavailable: changed(policy.max_unavailable, defaults.max_unavailable),
        max_unavailable_auto_ceiling: changed(
            policy.max_unavailable_auto_ceiling,
            defaults.max_unavailable_auto_ceiling,
        ),
        host_memory_reserve_mib: changed(
            policy.host_memory_reserve_mib,
            defaults.host_memory_reserve_mib,
        ),
        host_memory_max_fill_percent: changed(
            policy.host_memory_max_fill_percent,
            defaults.host_memory_max_fill_percent,
        ),
        cpu_overcommit: changed(policy.cpu_overcommit, defaults.cpu_overcommit),
        auto_resolve: changed(policy.auto_resolve, defaults.auto_resolve),
        upgrade_duration_secs: changed(
            policy.upgrade_duration_secs,
            defaults.upgrade_duration_secs,
        ),
        reboot_duration_secs: changed(policy.reboot_duration_secs, defaults.reboot_duration_secs),
        migration_bandwidth_mib_per_sec: changed(
            policy.migration_bandwidth_mib_per_sec,
            defaults.migration_bandwidth_mib_per_sec,
        ),
        migration_overhead_secs: changed(
            policy.migration_overhead_secs,
            defaults.migration_overhead_secs,
        ),
        max_concurrent_migrations_per_host: changed(
            policy.max_concurrent_migrations_per_host,
            defaults.max_concurrent_migrations_per_host,
        ),
        max_concurrent_migrations_per_cluster: changed(
            policy.max_concurrent_migrations_per_cluster,
            defaults.max_concurrent_migrations_per_cluster,
        ),
        vm_shutdown_secs: changed(policy.vm_shutdown_secs, defaults.vm_shutdown_secs),
        vm_boot_secs: changed(policy.vm_boot_secs, defaults.vm_boot_secs),
        mode: changed(policy.mode, defaults.mode),
        approval: changed(policy.approval, defaults.approval),
        max_step_attempts: changed(policy.max_step_attempts, defaults.max_step_attempts),
        retry_backoff_initial_secs: changed(
            policy.retry_backoff_initial_secs,
            defaults.retry_backoff_initial_secs,
        ),
        retry_backoff_max_secs: changed(
            policy.retry_backoff_max_secs,
            defaults.retry_backoff_max_secs,
        ),
        step_timeout_secs: changed(policy.step_timeout_secs, defaults.step_timeout_secs),
        migration_timeout_secs: changed(
            policy.migration_timeout_secs,
            defaults.migration_timeout_secs,
        ),
        upgrade_timeout_secs: changed(policy.upgrade_timeout_secs, defaults.upgrade_timeout_secs),
        reboot_timeout_secs: changed(policy.reboot_timeout_secs, defaults.reboot_timeout_secs),
        vm_shutdown_timeout_secs: changed(
            policy.vm_shutdown_timeout_secs,
            defaults.vm_shutdown_timeout_secs,
        ),
        unschedulable_timeout_secs: changed(
            policy.unschedulable_timeout_secs,
            defaults.unschedulable_timeout_secs,
        ),
        pending_timeout_secs: changed(policy.pending_timeout_secs, defaults.pending_timeout_secs),
        batch_eviction_size: changed(policy.batch_eviction_size, defaults.batch_eviction_size),
        batch_eviction_interval_secs: changed(
            policy.batch_eviction_interval_secs,
            defaults.batch_eviction_interval_secs,
        ),
        windows: policy.windows.clone(),
        time_zone: changed(policy.time_zone.clone(), defaults.time_zone),
        force_hosts: policy.force_hosts.iter().cloned().collect(),
        raise_compatibility_level_to: policy.raise_compatibility_level_to.clone(),
        only_hosts: policy
            .only_hosts
            .as_ref()
            .map(|names| names.iter().cloned().collect()),
    }
}

fn changed<T: PartialEq>(value: T, default: T) -> Option<T> {
    (value != default).then_some(value)
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
        restart_policy: vm.restart_policy,
        anti_affinity: vm.anti_affinity.clone(),
    }
}
