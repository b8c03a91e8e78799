//! Rules that span more than one value, and the conversion of a read document into a core
//! [`Cluster`]: non-empty names, non-zero sizes, limits and timeouts, retry delays in order, a
//! known time zone, unique names, VMs on known hosts, hosts not already over capacity. Hosts get
//! `HostId` = their index in the file.
//!
//! It reports problems by field path through `Source`, and knows nothing of YAML or positions.
//! The checks of one value it shares with `upgrade_check` and `driver_check` live in
//! `value_checks`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use drover_core::{Cluster, Host, HostId, Policy, Vm};

use super::error::InventoryError;
use super::schema::{HostEntry, InventoryDocument, PolicySection, VmEntry};
use super::settings::into_settings;
use super::source::Source;
use super::value_checks::{
    require_memory_mib, require_positive, require_positive_because, require_text,
    unknown_name_message, MAX_MEMORY_MIB,
};

pub(crate) fn into_cluster(
    document: InventoryDocument,
    source: &Source,
) -> Result<Cluster, InventoryError> {
    require_text(&document.cluster.name, "cluster.name", source)?;
    let policy = into_policy(&document.policy, source)?;
    check_hosts(&document.hosts, source)?;
    check_only_hosts(&document.policy, &document.hosts, source)?;
    let vm_names: Vec<&str> = document.vms.iter().map(|vm| vm.name.as_str()).collect();
    let settings = into_settings(&document.cluster.settings, &vm_names, source)?;
    let vms = into_vms(document.vms, &document.hosts, source)?;
    let cluster = Cluster {
        name: document.cluster.name,
        target_version: document.cluster.target_version,
        policy,
        hosts: document.hosts.into_iter().map(into_host).collect(),
        vms,
        settings,
    };
    check_capacity(&cluster, source)?;
    Ok(cluster)
}

/// Every field is named, so a field added to the core `Policy` must be given a key here.
fn into_policy(section: &PolicySection, source: &Source) -> Result<Policy, InventoryError> {
    let defaults = Policy::default();
    let policy = Policy {
        max_unavailable: section.max_unavailable.unwrap_or(defaults.max_unavailable),
        one_host_at_a_time: section
            .one_host_at_a_time
            .unwrap_or(defaults.one_host_at_a_time),
        max_unavailable_auto_ceiling: section
            .max_unavailable_auto_ceiling
            .unwrap_or(defaults.max_unavailable_auto_ceiling),
        host_memory_reserve_mib: section
            .host_memory_reserve_mib
            .unwrap_or(defaults.host_memory_reserve_mib),
        host_memory_max_fill_percent: section
            .host_memory_max_fill_percent
            .unwrap_or(defaults.host_memory_max_fill_percent),
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
        mode: section.mode.unwrap_or(defaults.mode),
        approval: section.approval.unwrap_or(defaults.approval),
        max_step_attempts: section
            .max_step_attempts
            .unwrap_or(defaults.max_step_attempts),
        retry_backoff_initial_secs: section
            .retry_backoff_initial_secs
            .unwrap_or(defaults.retry_backoff_initial_secs),
        retry_backoff_max_secs: section
            .retry_backoff_max_secs
            .unwrap_or(defaults.retry_backoff_max_secs),
        step_timeout_secs: section
            .step_timeout_secs
            .unwrap_or(defaults.step_timeout_secs),
        migration_timeout_secs: section
            .migration_timeout_secs
            .unwrap_or(defaults.migration_timeout_secs),
        upgrade_timeout_secs: section
            .upgrade_timeout_secs
            .unwrap_or(defaults.upgrade_timeout_secs),
        reboot_timeout_secs: section
            .reboot_timeout_secs
            .unwrap_or(defaults.reboot_timeout_secs),
        vm_shutdown_timeout_secs: section
            .vm_shutdown_timeout_secs
            .unwrap_or(defaults.vm_shutdown_timeout_secs),
        unschedulable_timeout_secs: section
            .unschedulable_timeout_secs
            .unwrap_or(defaults.unschedulable_timeout_secs),
        pending_timeout_secs: section
            .pending_timeout_secs
            .unwrap_or(defaults.pending_timeout_secs),
        batch_eviction_size: section
            .batch_eviction_size
            .unwrap_or(defaults.batch_eviction_size),
        batch_eviction_interval_secs: section
            .batch_eviction_interval_secs
            .unwrap_or(defaults.batch_eviction_interval_secs),
        windows: section.windows.clone(),
        time_zone: section.time_zone.clone().unwrap_or(defaults.time_zone),
        force_hosts: section.force_hosts.iter().cloned().collect(),
        raise_compatibility_level_to: section.raise_compatibility_level_to.clone(),
        only_hosts: section
            .only_hosts
            .as_ref()
            .map(|names| names.iter().cloned().collect()),
    };
    check_policy_limits(&policy, source)?;
    check_execution_limits(&policy, source)?;
    check_retry_backoff(section, &policy, source)?;
    check_time_zone(section, source)?;
    if let Some(level) = &section.raise_compatibility_level_to {
        require_text(level, "policy.raise_compatibility_level_to", source)?;
    }
    Ok(policy)
}

/// Attempts, batch sizes and timeouts of 0 would fail or stall every run.
fn check_execution_limits(policy: &Policy, source: &Source) -> Result<(), InventoryError> {
    require_positive_because(
        policy.max_step_attempts.into(),
        "policy.max_step_attempts",
        "the first try is an attempt",
        source,
    )?;
    require_positive_because(
        policy.batch_eviction_size.into(),
        "policy.batch_eviction_size",
        "no VM could ever be restarted",
        source,
    )?;
    let timeouts_secs = [
        ("policy.step_timeout_secs", policy.step_timeout_secs),
        (
            "policy.migration_timeout_secs",
            policy.migration_timeout_secs,
        ),
        ("policy.upgrade_timeout_secs", policy.upgrade_timeout_secs),
        ("policy.reboot_timeout_secs", policy.reboot_timeout_secs),
        (
            "policy.vm_shutdown_timeout_secs",
            policy.vm_shutdown_timeout_secs,
        ),
        (
            "policy.unschedulable_timeout_secs",
            policy.unschedulable_timeout_secs,
        ),
        ("policy.pending_timeout_secs", policy.pending_timeout_secs),
    ];
    for (field_path, timeout_secs) in timeouts_secs {
        require_positive_because(
            timeout_secs,
            field_path,
            "a timeout of 0 seconds would fail every step at once",
            source,
        )?;
    }
    Ok(())
}

/// The first retry delay may not exceed the largest; the message is placed on the key written.
fn check_retry_backoff(
    section: &PolicySection,
    policy: &Policy,
    source: &Source,
) -> Result<(), InventoryError> {
    let initial_secs = policy.retry_backoff_initial_secs;
    let max_secs = policy.retry_backoff_max_secs;
    if initial_secs <= max_secs {
        return Ok(());
    }
    let (field_path, message) = match section.retry_backoff_initial_secs {
        Some(_) => (
            "policy.retry_backoff_initial_secs",
            format!("must be at most retry_backoff_max_secs ({max_secs}), got {initial_secs}"),
        ),
        None => (
            "policy.retry_backoff_max_secs",
            format!(
                "must be at least retry_backoff_initial_secs ({initial_secs}, its default), got {max_secs}"
            ),
        ),
    };
    Err(source.error_at(field_path, message))
}

/// The zone must be in the time zone database that Drover will convert the windows with.
fn check_time_zone(section: &PolicySection, source: &Source) -> Result<(), InventoryError> {
    let Some(name) = &section.time_zone else {
        return Ok(());
    };
    if jiff::tz::TimeZone::get(name).is_err() {
        let message = format!(
            "unknown time zone {name:?} (expected an IANA name such as \"Europe/Paris\" or \"UTC\")"
        );
        return Err(source.error_at("policy.time_zone", message));
    }
    Ok(())
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
    )?;
    let fill_percent = policy.host_memory_max_fill_percent;
    if !(1..=100).contains(&fill_percent) {
        let message = format!("must be a whole number from 1 to 100, got {fill_percent}");
        return Err(source.error_at("policy.host_memory_max_fill_percent", message));
    }
    Ok(())
}

fn check_hosts(hosts: &[HostEntry], source: &Source) -> Result<(), InventoryError> {
    if hosts.is_empty() {
        return Err(source.error_at("hosts", "must list at least one host"));
    }
    for (index, host) in hosts.iter().enumerate() {
        // Field paths are formatted only for an entry that fails: formatting three for each of
        // 10,000 hosts and 400,000 VMs cost more than the checks.
        if !host.name.trim().is_empty()
            && (1..=MAX_MEMORY_MIB).contains(&host.memory_mib)
            && host.cpus > 0
        {
            continue;
        }
        require_text(&host.name, &format!("hosts[{index}].name"), source)?;
        require_memory_mib(
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
        cordoned: entry.cordoned,
        labels: entry.labels,
    }
}

fn into_vms(
    entries: Vec<VmEntry>,
    hosts: &[HostEntry],
    source: &Source,
) -> Result<Vec<Vm>, InventoryError> {
    for (index, vm) in entries.iter().enumerate() {
        if !vm.name.trim().is_empty()
            && (1..=MAX_MEMORY_MIB).contains(&vm.memory_mib)
            && vm.vcpus > 0
        {
            continue;
        }
        require_text(&vm.name, &format!("vms[{index}].name"), source)?;
        require_memory_mib(vm.memory_mib, &format!("vms[{index}].memory_mib"), source)?;
        require_positive(vm.vcpus.into(), &format!("vms[{index}].vcpus"), source)?;
    }
    require_unique_names(
        entries.iter().map(|vm| vm.name.as_str()),
        "vms",
        "VM",
        source,
    )?;
    let host_ids: NameMap<HostId> = hosts
        .iter()
        .enumerate()
        .map(|(index, host)| (host.name.as_str(), HostId(index as u32)))
        .collect();
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| match host_ids.get(entry.host.as_str()) {
            Some(host) => {
                let allowed_hosts = allowed_host_ids(index, &entry, &host_ids, hosts, source)?;
                Ok(into_vm(entry, *host, allowed_hosts))
            }
            None => Err(unknown_host_error(index, &entry.host, hosts, source)),
        })
        .collect()
}

/// `allowed_hosts` as sorted ids: every name a known host, the list not empty, and the VM's own
/// host in it (a VM already outside its allowed hosts is a wrong inventory, not a plan to fix).
fn allowed_host_ids(
    vm_index: usize,
    entry: &VmEntry,
    host_ids: &NameMap<HostId>,
    hosts: &[HostEntry],
    source: &Source,
) -> Result<Option<Vec<HostId>>, InventoryError> {
    let Some(names) = &entry.allowed_hosts else {
        return Ok(None);
    };
    let path = format!("vms[{vm_index}].allowed_hosts");
    if names.is_empty() {
        let message = "must name at least one host (leave the key out to allow any host)";
        return Err(source.error_at(&path, message));
    }
    let mut ids = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        match host_ids.get(name.as_str()) {
            Some(id) => ids.push(*id),
            None => {
                let known = hosts.iter().map(|host| host.name.as_str());
                let message = unknown_name_message("host", "hosts", name, known);
                return Err(source.error_at(&format!("{path}[{index}]"), message));
            }
        }
    }
    if !names.contains(&entry.host) {
        let message = format!(
            "must include the VM's own host {:?}: a VM runs only on its allowed hosts",
            entry.host
        );
        return Err(source.error_at(&path, message));
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

fn into_vm(entry: VmEntry, host: HostId, allowed_hosts: Option<Vec<HostId>>) -> Vm {
    Vm {
        name: entry.name,
        host,
        memory_mib: entry.memory_mib,
        vcpus: entry.vcpus,
        state: entry.state,
        migratable: entry.migratable,
        local_storage: entry.local_storage,
        unmovable: entry.unmovable,
        restart_policy: entry.restart_policy,
        anti_affinity: entry.anti_affinity,
        allowed_hosts,
    }
}

/// A selection naming a host that is not in the inventory is a typo, not an empty upgrade.
fn check_only_hosts(
    section: &PolicySection,
    hosts: &[HostEntry],
    source: &Source,
) -> Result<(), InventoryError> {
    let lists = [
        (
            "only_hosts",
            section.only_hosts.as_deref().unwrap_or_default(),
        ),
        ("force_hosts", section.force_hosts.as_slice()),
    ];
    for (key, names) in lists {
        for (index, name) in names.iter().enumerate() {
            if !hosts.iter().any(|host| &host.name == name) {
                let known = hosts.iter().map(|h| h.name.as_str());
                let message = unknown_name_message("host", "hosts", name, known);
                return Err(source.error_at(&format!("policy.{key}[{index}]"), message));
            }
        }
    }
    Ok(())
}

fn unknown_host_error(
    vm_index: usize,
    host_name: &str,
    hosts: &[HostEntry],
    source: &Source,
) -> InventoryError {
    let message = unknown_name_message(
        "host",
        "hosts",
        host_name,
        hosts.iter().map(|host| host.name.as_str()),
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
    // Sized up front and hashed with `NameHasher`: with hundreds of thousands of VMs, growing
    // the map and SipHash were a tenth of reading a JSON inventory.
    let mut first_index_by_name: NameMap<usize> =
        HashMap::with_capacity_and_hasher(names.size_hint().0, BuildHasherDefault::default());
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

/// Memory and vCPUs taken on one host by its running VMs. Summed in `u128`: each VM's
/// `memory_mib` may be as large as `u64::MAX`, and two such VMs on one host are an inventory
/// error to report, not an overflow.
#[derive(Clone, Copy, Default)]
struct Usage {
    memory_mib: u128,
    vcpus: u128,
}

fn running_usage_by_host(cluster: &Cluster) -> Vec<Usage> {
    let mut usage = vec![Usage::default(); cluster.hosts.len()];
    for vm in cluster.vms.iter().filter(|vm| vm.is_running()) {
        let host_usage = &mut usage[vm.host.index()];
        host_usage.memory_mib += u128::from(vm.memory_mib);
        host_usage.vcpus += u128::from(vm.vcpus);
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
    if usage.memory_mib > u128::from(host.memory_mib) {
        let message = format!(
            "host {:?} is over capacity: its running VMs use {} MiB of memory, more than its memory_mib {}",
            host.name, usage.memory_mib, host.memory_mib
        );
        return Err(source.error_at(&path, message));
    }
    let vcpu_limit = cluster.vcpu_capacity(host_id);
    if usage.vcpus > u128::from(vcpu_limit) {
        let message = format!(
            "host {:?} is over capacity: its running VMs use {} vCPUs, more than its limit of {vcpu_limit} (cpus {} × cpu_overcommit {})",
            host.name, usage.vcpus, host.cpus, cluster.policy.cpu_overcommit
        );
        return Err(source.error_at(&path, message));
    }
    Ok(())
}

/// The policy a run recorded when it started ([`PolicySection::complete`]), read back for its
/// replay. `record_name` names the record in errors (there is no file to point into).
pub fn policy_from_record(
    section: &PolicySection,
    record_name: &str,
) -> Result<Policy, InventoryError> {
    into_policy(section, &Source::new(record_name, ""))
}

/// Names from the inventory to what they stand for, hashed by [`NameHasher`].
type NameMap<'a, T> = HashMap<&'a str, T, BuildHasherDefault<NameHasher>>;

/// A fast hash for names from the inventory (FxHash's multiply-rotate, eight bytes at a time).
/// Not resistant to chosen collisions, which is fine for a file the operator gives drover: the
/// worst case is a slow check, not a wrong one.
#[derive(Default)]
struct NameHasher {
    hash: u64,
}

impl NameHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(last) ^ rest.len() as u64);
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}
