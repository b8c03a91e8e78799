//! Rules that span more than one value, and the conversion of a read document into a core
//! [`Cluster`]: non-empty names, non-zero sizes and limits, unique names, VMs on known hosts,
//! hosts not already over capacity. Hosts get `HostId` = their index in the file.
//!
//! It reports problems by field path through `Source`, and knows nothing of YAML or positions.

use std::collections::HashMap;

use drover_core::{Cluster, Host, HostId, Policy, Vm};

use super::error::InventoryError;
use super::schema::{HostEntry, InventoryDocument, PolicySection, VmEntry};
use super::source::Source;

/// At most this many host names are listed when a VM names an unknown host.
const HOST_NAMES_LISTED: usize = 8;

pub(crate) fn into_cluster(
    document: InventoryDocument,
    source: &Source,
) -> Result<Cluster, InventoryError> {
    require_text(&document.cluster.name, "cluster.name", source)?;
    let policy = into_policy(&document.policy, source)?;
    check_hosts(&document.hosts, source)?;
    let vms = into_vms(document.vms, &document.hosts, source)?;
    let cluster = Cluster {
        name: document.cluster.name,
        target_version: document.cluster.target_version,
        policy,
        hosts: document.hosts.into_iter().map(into_host).collect(),
        vms,
    };
    check_capacity(&cluster, source)?;
    Ok(cluster)
}

fn into_policy(section: &PolicySection, source: &Source) -> Result<Policy, InventoryError> {
    let defaults = Policy::default();
    let policy = Policy {
        max_unavailable: section.max_unavailable.unwrap_or(defaults.max_unavailable),
        cpu_overcommit: section.cpu_overcommit.unwrap_or(defaults.cpu_overcommit),
        auto_resolve: section.auto_resolve.unwrap_or(defaults.auto_resolve),
        upgrade_duration_secs: section
            .upgrade_duration_secs
            .unwrap_or(defaults.upgrade_duration_secs),
        reboot_duration_secs: section
            .reboot_duration_secs
            .unwrap_or(defaults.reboot_duration_secs),
        migration_bandwidth_mib_per_sec: section
            .migration_bandwidth_mib_per_sec
            .unwrap_or(defaults.migration_bandwidth_mib_per_sec),
        migration_overhead_secs: section
            .migration_overhead_secs
            .unwrap_or(defaults.migration_overhead_secs),
        max_concurrent_migrations_per_host: section
            .max_concurrent_migrations_per_host
            .unwrap_or(defaults.max_concurrent_migrations_per_host),
        max_concurrent_migrations_per_cluster: section
            .max_concurrent_migrations_per_cluster
            .unwrap_or(defaults.max_concurrent_migrations_per_cluster),
        vm_shutdown_secs: section
            .vm_shutdown_secs
            .unwrap_or(defaults.vm_shutdown_secs),
        vm_boot_secs: section.vm_boot_secs.unwrap_or(defaults.vm_boot_secs),
        ..defaults.clone()
    };
    check_policy_limits(&policy, source)?;
    Ok(policy)
}

/// Limits that would stall or divide by zero in the planner and simulator.
fn check_policy_limits(policy: &Policy, source: &Source) -> Result<(), InventoryError> {
    let overcommit = policy.cpu_overcommit;
    if !(overcommit.is_finite() && overcommit > 0.0) {
        let message = format!("must be a number greater than 0, got {overcommit}");
        return Err(source.error_at("policy.cpu_overcommit", message));
    }
    require_positive(
        policy.migration_bandwidth_mib_per_sec,
        "policy.migration_bandwidth_mib_per_sec",
        source,
    )?;
    require_positive(
        policy.max_concurrent_migrations_per_host.into(),
        "policy.max_concurrent_migrations_per_host",
        source,
    )?;
    require_positive(
        policy.max_concurrent_migrations_per_cluster.into(),
        "policy.max_concurrent_migrations_per_cluster",
        source,
    )
}

fn check_hosts(hosts: &[HostEntry], source: &Source) -> Result<(), InventoryError> {
    if hosts.is_empty() {
        return Err(source.error_at("hosts", "must list at least one host"));
    }
    for (index, host) in hosts.iter().enumerate() {
        require_text(&host.name, &format!("hosts[{index}].name"), source)?;
        require_positive(
            host.memory_mib,
            &format!("hosts[{index}].memory_mib"),
            source,
        )?;
        require_positive(host.cpus.into(), &format!("hosts[{index}].cpus"), source)?;
    }
    require_unique_names(
        hosts.iter().map(|host| host.name.as_str()),
        "hosts",
        "host",
        source,
    )
}

fn into_host(entry: HostEntry) -> Host {
    Host {
        name: entry.name,
        role: entry.role,
        version: entry.version,
        memory_mib: entry.memory_mib,
        cpus: entry.cpus,
        state: entry.state,
        cordoned: false,
        labels: entry.labels,
    }
}

fn into_vms(
    entries: Vec<VmEntry>,
    hosts: &[HostEntry],
    source: &Source,
) -> Result<Vec<Vm>, InventoryError> {
    for (index, vm) in entries.iter().enumerate() {
        require_text(&vm.name, &format!("vms[{index}].name"), source)?;
        require_positive(vm.memory_mib, &format!("vms[{index}].memory_mib"), source)?;
        require_positive(vm.vcpus.into(), &format!("vms[{index}].vcpus"), source)?;
    }
    require_unique_names(
        entries.iter().map(|vm| vm.name.as_str()),
        "vms",
        "VM",
        source,
    )?;
    let host_ids: HashMap<&str, HostId> = hosts
        .iter()
        .enumerate()
        .map(|(index, host)| (host.name.as_str(), HostId(index as u32)))
        .collect();
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| match host_ids.get(entry.host.as_str()) {
            Some(host) => Ok(into_vm(entry, *host)),
            None => Err(unknown_host_error(index, &entry.host, hosts, source)),
        })
        .collect()
}

fn into_vm(entry: VmEntry, host: HostId) -> Vm {
    Vm {
        name: entry.name,
        host,
        memory_mib: entry.memory_mib,
        vcpus: entry.vcpus,
        state: entry.state,
        migratable: entry.migratable,
        local_storage: entry.local_storage,
        restart_policy: entry.restart_policy,
        anti_affinity: entry.anti_affinity,
    }
}

fn unknown_host_error(
    vm_index: usize,
    host_name: &str,
    hosts: &[HostEntry],
    source: &Source,
) -> InventoryError {
    let mut known: Vec<&str> = hosts
        .iter()
        .take(HOST_NAMES_LISTED)
        .map(|host| host.name.as_str())
        .collect();
    if hosts.len() > HOST_NAMES_LISTED {
        known.push("...");
    }
    let message = format!(
        "unknown host {host_name:?} (hosts are {})",
        known.join(", ")
    );
    source.error_at(&format!("vms[{vm_index}].host"), message)
}

/// Names the second occurrence (the error's position) and the line of the first.
fn require_unique_names<'a>(
    names: impl Iterator<Item = &'a str>,
    list_key: &str,
    noun: &str,
    source: &Source,
) -> Result<(), InventoryError> {
    let mut first_index_by_name: HashMap<&str, usize> = HashMap::new();
    for (index, name) in names.enumerate() {
        if let Some(first_index) = first_index_by_name.insert(name, index) {
            let first_path = format!("{list_key}[{first_index}].name");
            let first_line = source
                .line_of(&first_path)
                .map_or(String::new(), |line| format!(" at line {line}"));
            let message =
                format!("duplicate {noun} name {name:?}: already used by {first_path}{first_line}");
            return Err(source.error_at(&format!("{list_key}[{index}].name"), message));
        }
    }
    Ok(())
}

/// A host whose running VMs already exceed it cannot be planned for: the inventory is wrong.
fn check_capacity(cluster: &Cluster, source: &Source) -> Result<(), InventoryError> {
    let usage = running_usage_by_host(cluster);
    for host_id in cluster.host_ids() {
        check_host_capacity(cluster, host_id, usage[host_id.index()], source)?;
    }
    Ok(())
}

/// Memory and vCPUs taken on one host by its running VMs.
#[derive(Clone, Copy, Default)]
struct Usage {
    memory_mib: u64,
    vcpus: u64,
}

fn running_usage_by_host(cluster: &Cluster) -> Vec<Usage> {
    let mut usage = vec![Usage::default(); cluster.hosts.len()];
    for vm in cluster.vms.iter().filter(|vm| vm.is_running()) {
        let host_usage = &mut usage[vm.host.index()];
        host_usage.memory_mib += vm.memory_mib;
        host_usage.vcpus += u64::from(vm.vcpus);
    }
    usage
}

fn check_host_capacity(
    cluster: &Cluster,
    host_id: HostId,
    usage: Usage,
    source: &Source,
) -> Result<(), InventoryError> {
    let host = cluster.host(host_id);
    let path = format!("hosts[{}]", host_id.index());
    if usage.memory_mib > host.memory_mib {
        let message = format!(
            "host {:?} is over capacity: its running VMs use {} MiB of memory, more than its memory_mib {}",
            host.name, usage.memory_mib, host.memory_mib
        );
        return Err(source.error_at(&path, message));
    }
    let vcpu_limit = cluster.vcpu_capacity(host_id);
    if usage.vcpus > vcpu_limit {
        let message = format!(
            "host {:?} is over capacity: its running VMs use {} vCPUs, more than its limit of {vcpu_limit} (cpus {} × cpu_overcommit {})",
            host.name, usage.vcpus, host.cpus, cluster.policy.cpu_overcommit
        );
        return Err(source.error_at(&path, message));
    }
    Ok(())
}

fn require_text(value: &str, field_path: &str, source: &Source) -> Result<(), InventoryError> {
    if value.trim().is_empty() {
        return Err(source.error_at(field_path, "must not be empty"));
    }
    Ok(())
}

fn require_positive(value: u64, field_path: &str, source: &Source) -> Result<(), InventoryError> {
    if value == 0 {
        return Err(source.error_at(field_path, "must be at least 1, got 0"));
    }
    Ok(())
}
