//! Prechecks: what must hold before a rolling upgrade starts, reported as data.
//!
//! Each check names the hosts and VMs it is about. Checks never change the cluster; the ones marked
//! `resolvable` are fixed by the plan itself when `policy.auto_resolve` is on.

use super::{
    disposition, disposition_in, has_no_allowed_other_host, is_pool_of_one, requested_batch_size,
    Disposition,
};
use crate::model::{Cluster, HostId, HostRole, HostState, SettingKind, Unmovable, Vm};
use crate::plan::{CheckStatus, Precheck};

/// At most this many names are spelled out in one message; the full list is in `subjects`.
const NAMES_IN_MESSAGE: usize = 8;

fn name_list(names: &[String]) -> String {
    let shown: Vec<&str> = names
        .iter()
        .take(NAMES_IN_MESSAGE)
        .map(String::as_str)
        .collect();
    match names.len().saturating_sub(NAMES_IN_MESSAGE) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

fn check(
    id: &'static str,
    status: CheckStatus,
    message: String,
    subjects: Vec<String>,
) -> Precheck {
    Precheck {
        id,
        status,
        message,
        resolvable: false,
        subjects,
    }
}

pub(super) fn run(cluster: &Cluster) -> Vec<Precheck> {
    vec![
        target_version(cluster),
        hosts_down(cluster),
        hosts_in_maintenance(cluster),
        unmovable_vms(cluster),
        local_storage_vms(cluster),
        anti_affinity(cluster),
        headroom(cluster),
    ]
    .into_iter()
    .chain(pool_of_one(cluster))
    .chain(blocking_settings(cluster))
    .chain(host_constraints(cluster))
    .collect()
}

/// VMs that may run only on some hosts (`allowed_hosts`). Absent when no VM carries the key, so
/// the prechecks of clusters without constraints stay as they were. Fails (resolvable) naming
/// every VM that must leave a host being upgraded but has no other allowed host that is up and
/// not cordoned: no split of the waves helps it.
fn host_constraints(cluster: &Cluster) -> Option<Precheck> {
    let constrained = cluster
        .vms
        .iter()
        .filter(|vm| vm.allowed_hosts.is_some())
        .count();
    if constrained == 0 {
        return None;
    }
    let mut stuck = Vec::new();
    let mut subjects = Vec::new();
    for vm in cluster.vms.iter().filter(|vm| {
        vm.is_running()
            && cluster.needs_upgrade(vm.host)
            && matches!(
                disposition(vm, false),
                Disposition::Migrate | Disposition::Restart | Disposition::Shelve
            )
            && has_no_allowed_other_host(cluster, vm)
    }) {
        let allowed: Vec<&str> = vm
            .allowed_hosts
            .iter()
            .flatten()
            .map(|id| cluster.host(*id).name.as_str())
            .collect();
        stuck.push(format!(
            "{} on {} (allowed_hosts: {})",
            vm.name,
            cluster.host(vm.host).name,
            allowed.join(", ")
        ));
        subjects.push(vm.name.clone());
        for host in allowed {
            if !subjects.iter().any(|known| known == host) {
                subjects.push(host.to_string());
            }
        }
    }
    if stuck.is_empty() {
        let message = format!(
            "{constrained} VM(s) run only on their allowed_hosts: no wave holds a VM's host \
             together with every other host it may go to"
        );
        return Some(check(
            "host-constraints",
            CheckStatus::Pass,
            message,
            Vec::new(),
        ));
    }
    let (status, verdict) = if cluster.policy.auto_resolve {
        (
            CheckStatus::Warn,
            "resolved: they are shut down for their host's upgrade and started again on it",
        )
    } else {
        (
            CheckStatus::Fail,
            "resolvable by shutting them down for their host's upgrade (policy.auto_resolve / \
             --resolve), or by allowing another host",
        )
    };
    let message = format!(
        "VM(s) {} have no allowed host but their own that is up and not cordoned; {verdict}",
        name_list(&stuck)
    );
    Some(Precheck {
        resolvable: true,
        ..check("host-constraints", status, message, subjects)
    })
}

/// One precheck per kind of blocking platform setting that is on (none when none is): it fails
/// and is resolvable, or with `auto_resolve` warns what Drover will change and put back.
fn blocking_settings(cluster: &Cluster) -> Vec<Precheck> {
    SettingKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let subjects: Vec<String> = cluster
                .settings
                .iter()
                .filter(|setting| setting.kind == kind)
                .map(|setting| setting.vm.clone().unwrap_or_else(|| cluster.name.clone()))
                .collect();
            (!subjects.is_empty()).then(|| blocking_setting(cluster, kind, subjects))
        })
        .collect()
}

fn blocking_setting(cluster: &Cluster, kind: SettingKind, subjects: Vec<String>) -> Precheck {
    let (what, change) = match kind {
        SettingKind::HaEnabled => (
            format!("high availability (HA) is enabled on pool {}: it restarts VMs and fences hosts during the roll", cluster.name),
            "Drover disables HA before the first host and enables it again, with its saved configuration, when the run completes or is aborted",
        ),
        SettingKind::WlbEnabled => (
            format!("workload balancing (WLB) is enabled on pool {}: it moves VMs during the roll", cluster.name),
            "Drover disables WLB before the first host and enables it again when the run completes or is aborted",
        ),
        SettingKind::VmMediaInserted => (
            format!("VM(s) {} have a CD/DVD inserted, which pins them to their host", name_list(&subjects)),
            "Drover ejects it before the first host and does not insert it again",
        ),
        SettingKind::SchedulingPolicy => (
            format!("cluster {} runs a scheduling policy other than its maintenance policy: the engine balances VMs and starts new ones during the roll", cluster.name),
            "Drover switches it to the maintenance policy before the first host and back, with its properties, when the run completes or is aborted",
        ),
        SettingKind::ClusterUpgradeUnmarked => (
            format!("cluster {} is not marked as upgrading: the engine would not show the roll as a cluster upgrade", cluster.name),
            "Drover marks it (upgrade start) before the first host, reports each host's progress, and clears the mark (upgrade finish) when the run completes or is aborted",
        ),
        SettingKind::WorkloadUpdateMethods => (
            format!("OpenShift Virtualization's automatic workload updates are on in cluster {} (HyperConverged spec.workloadUpdateStrategy.workloadUpdateMethods): KubeVirt migrates or evicts VMs by itself during the roll", cluster.name),
            "Drover saves the workload update methods and empties them before the first host, and puts the saved list back when the run completes or is aborted",
        ),
        SettingKind::MachineConfigPoolUnpaused => (
            format!("the worker MachineConfigPool of cluster {} is not paused: the Machine Config Operator would update and reboot workers by itself during the roll", cluster.name),
            "Drover pauses it before the first host, moves each emptied node through a pool of its own, and unpauses it when the run completes or is aborted",
        ),
    };
    let (status, message) = if cluster.policy.auto_resolve || kind.needs_no_consent() {
        (CheckStatus::Warn, format!("{what}; resolved: {change}"))
    } else {
        let message = format!("{what}; resolvable: {change} (policy.auto_resolve / --resolve)");
        (CheckStatus::Fail, message)
    };
    Precheck {
        resolvable: true,
        ..check(kind.name(), status, message, subjects)
    }
}

/// The headroom Drover keeps on every host it places VMs on, and the hosts already past it
/// (they keep their VMs but receive none).
fn headroom(cluster: &Cluster) -> Precheck {
    let policy = &cluster.policy;
    let rule = format!(
        "VMs are placed on a host only up to {}% of its memory and with {} MiB left free \
         (host_memory_max_fill_percent, host_memory_reserve_mib)",
        policy.host_memory_max_fill_percent, policy.host_memory_reserve_mib
    );
    let mut used_mib = vec![0u64; cluster.hosts.len()];
    for vm in cluster.vms.iter().filter(|vm| vm.is_running()) {
        used_mib[vm.host.index()] += vm.memory_mib;
    }
    let past: Vec<String> = cluster
        .host_ids()
        .filter(|h| used_mib[h.index()] > cluster.placement_memory_limit_mib(*h))
        .map(|h| cluster.host(h).name.clone())
        .collect();
    if past.is_empty() {
        return check("headroom", CheckStatus::Pass, rule, past);
    }
    let message = format!(
        "{rule}; host(s) {} are fuller than that already: they keep their VMs and receive none",
        name_list(&past)
    );
    check("headroom", CheckStatus::Warn, message, past)
}

/// A pool of one has nowhere to migrate: its running VMs are shut down for the upgrade and
/// started again afterwards, with the operator's consent (`auto_resolve`), as for any VM that
/// cannot move. Absent unless the cluster is a pool of one whose host has VMs to stop.
fn pool_of_one(cluster: &Cluster) -> Option<Precheck> {
    if !is_pool_of_one(cluster) || !cluster.needs_upgrade(crate::model::HostId(0)) {
        return None;
    }
    let host = &cluster.hosts[0].name;
    let stopping: Vec<String> = cluster
        .vms
        .iter()
        .filter(|vm| vm.is_running() && !vm.local_storage)
        .map(|vm| vm.name.clone())
        .collect();
    if stopping.is_empty() {
        return None;
    }
    let (status, verdict) = if cluster.policy.auto_resolve {
        (
            CheckStatus::Warn,
            "resolved: they are shut down before its upgrade and started again on it afterwards \
             (no suspend in Drover's model)",
        )
    } else {
        (
            CheckStatus::Fail,
            "resolvable by shutting them down before its upgrade and starting them again on it \
             afterwards (policy.auto_resolve / --resolve)",
        )
    };
    let message = format!(
        "pool of one: host {host} has no other host to migrate its {} running VM(s) to ({}); {verdict}",
        stopping.len(),
        name_list(&stopping)
    );
    let mut subjects = vec![host.clone()];
    subjects.extend(stopping);
    Some(Precheck {
        resolvable: true,
        ..check("pool-of-one", status, message, subjects)
    })
}

fn target_version(cluster: &Cluster) -> Precheck {
    let target = &cluster.target_version;
    let below = cluster
        .host_ids()
        .filter(|h| cluster.needs_upgrade(*h))
        .count();
    let newer_hosts: Vec<&crate::model::Host> = cluster
        .hosts
        .iter()
        .filter(|h| h.version > *target)
        .collect();
    if !newer_hosts.is_empty() {
        let described: Vec<String> = newer_hosts
            .iter()
            .map(|h| format!("{} ({})", h.name, h.version))
            .collect();
        let message = format!(
            "target {target} is older than host(s) {}; they are left as they are (no downgrades)",
            name_list(&described)
        );
        let subjects = newer_hosts.iter().map(|h| h.name.clone()).collect();
        return check("target-version", CheckStatus::Warn, message, subjects);
    }
    if below == 0 {
        let message = format!("every reachable host already runs {target}: nothing to upgrade");
        return check("target-version", CheckStatus::Warn, message, Vec::new());
    }
    let message = format!("{below} host(s) run a version older than the target {target}");
    check("target-version", CheckStatus::Pass, message, Vec::new())
}

fn hosts_down(cluster: &Cluster) -> Precheck {
    let down: Vec<String> = cluster
        .hosts
        .iter()
        .filter(|h| h.state == HostState::Down && h.version < cluster.target_version)
        .map(|h| h.name.clone())
        .collect();
    if down.is_empty() {
        return check(
            "hosts-down",
            CheckStatus::Pass,
            "no host is down".into(),
            down,
        );
    }
    let stranded: Vec<String> = cluster
        .vms
        .iter()
        .filter(|vm| vm.is_running() && cluster.host(vm.host).state == HostState::Down)
        .map(|vm| vm.name.clone())
        .collect();
    let mut message = format!(
        "host(s) {} are down and cannot be upgraded: left out of the plan",
        name_list(&down)
    );
    if !stranded.is_empty() {
        message.push_str(&format!(
            "; VM(s) {} are reported running on them and are left alone",
            name_list(&stranded)
        ));
    }
    check("hosts-down", CheckStatus::Warn, message, down)
}

fn hosts_in_maintenance(cluster: &Cluster) -> Precheck {
    let held: Vec<String> = cluster
        .hosts
        .iter()
        .filter(|h| h.state == HostState::Maintenance)
        .map(|h| h.name.clone())
        .collect();
    if held.is_empty() {
        return check(
            "hosts-in-maintenance",
            CheckStatus::Pass,
            "no host is in maintenance".into(),
            held,
        );
    }
    let message = format!(
        "host(s) {} are in maintenance: never used as migration targets; upgraded if older than \
         the target and returned to maintenance afterwards",
        name_list(&held)
    );
    Precheck {
        resolvable: true,
        ..check("hosts-in-maintenance", CheckStatus::Warn, message, held)
    }
}

/// VMs that can neither live-migrate nor be restarted elsewhere, on hosts that need upgrading.
/// A pool of one has its own check (`pool-of-one`), which names every VM.
fn unmovable_vms(cluster: &Cluster) -> Precheck {
    let blocked: Vec<String> = cluster
        .vms
        .iter()
        .filter(|_| !is_pool_of_one(cluster))
        .filter(|vm| vm.is_running() && cluster.needs_upgrade(vm.host))
        .filter(|vm| disposition(vm, false) == Disposition::Blocked)
        .map(|vm| vm.name.clone())
        .collect();
    if blocked.is_empty() {
        let message =
            "every running VM can live-migrate, restart elsewhere, or has local storage".into();
        return check("unmovable-vms", CheckStatus::Pass, message, blocked);
    }
    let (status, verdict) = if cluster.policy.auto_resolve {
        (CheckStatus::Warn, "resolved: they will be shut down and started again on their own host after its upgrade")
    } else {
        (CheckStatus::Fail, "resolvable by shutting them down for their host's upgrade (policy.auto_resolve / --resolve)")
    };
    let message = format!(
        "VM(s) {} cannot live-migrate and have restart_policy manual; {verdict}",
        name_list(&blocked)
    );
    Precheck {
        resolvable: true,
        ..check("unmovable-vms", status, message, blocked)
    }
}

fn local_storage_vms(cluster: &Cluster) -> Precheck {
    let local: Vec<&Vm> = cluster
        .vms
        .iter()
        .filter(|vm| vm.is_running() && vm.local_storage && cluster.needs_upgrade(vm.host))
        .collect();
    if local.is_empty() {
        return check(
            "local-storage-vms",
            CheckStatus::Pass,
            "no running VM uses local storage".into(),
            Vec::new(),
        );
    }
    // One that asked to be suspended or shelved (`unmovable:`) is not shut down.
    let (parked, shut): (Vec<&Vm>, Vec<&Vm>) = local
        .into_iter()
        .partition(|vm| matches!(vm.unmovable, Some(Unmovable::Suspend | Unmovable::Shelve)));
    let names = |vms: &[&Vm]| -> Vec<String> { vms.iter().map(|vm| vm.name.clone()).collect() };
    if shut.is_empty() {
        let parked = names(&parked);
        let message = format!(
            "VM(s) {} use local storage and are suspended or shelved as their unmovable key asks, not shut down",
            name_list(&parked)
        );
        return check("local-storage-vms", CheckStatus::Pass, message, parked);
    }
    let local = names(&shut);
    let message = format!(
        "VM(s) {} use local storage: shut down during their host's upgrade and started again on it",
        name_list(&local)
    );
    check("local-storage-vms", CheckStatus::Warn, message, local)
}

/// Running VMs of one anti-affinity group already sharing a host.
fn anti_affinity(cluster: &Cluster) -> Precheck {
    let mut members: Vec<(&str, HostId, &str)> = cluster
        .vms
        .iter()
        .filter(|vm| vm.is_running())
        .filter_map(|vm| {
            vm.anti_affinity
                .as_deref()
                .map(|g| (g, vm.host, vm.name.as_str()))
        })
        .collect();
    members.sort_unstable();
    let mut violations = Vec::new();
    for pair in members.windows(2) {
        if pair[0].0 == pair[1].0 && pair[0].1 == pair[1].1 {
            let host = &cluster.host(pair[0].1).name;
            violations.push(format!(
                "{} and {} (group {}) on {host}",
                pair[0].2, pair[1].2, pair[0].0
            ));
        }
    }
    if violations.is_empty() {
        return check(
            "anti-affinity",
            CheckStatus::Pass,
            "no anti-affinity group shares a host".into(),
            violations,
        );
    }
    let message = format!(
        "already violated: {}; Drover never adds a violation and separates these VMs when their host is emptied",
        name_list(&violations)
    );
    Precheck {
        resolvable: true,
        ..check("anti-affinity", CheckStatus::Warn, message, violations)
    }
}

/// Memory and vCPUs a host gives up while it is down: what it had free plus what must leave it.
struct Withdrawal {
    host: HostId,
    memory_mib: u64,
    vcpus: u64,
    /// Memory of the VMs that must leave the host (the rest of `memory_mib` is its own free room).
    moving_memory_mib: u64,
    moving_vcpus: u64,
}

fn withdrawals(cluster: &Cluster) -> (Vec<Withdrawal>, u64, u64) {
    let host_count = cluster.hosts.len();
    let mut used_memory = vec![0u64; host_count];
    let mut used_vcpus = vec![0u64; host_count];
    let mut moving_memory = vec![0u64; host_count];
    let mut moving_vcpus = vec![0u64; host_count];
    for vm in cluster.vms.iter().filter(|vm| vm.is_running()) {
        let host = vm.host.index();
        used_memory[host] += vm.memory_mib;
        used_vcpus[host] += vm.vcpus as u64;
        if !disposition_in(cluster, vm).stays_on_own_host() {
            moving_memory[host] += vm.memory_mib;
            moving_vcpus[host] += vm.vcpus as u64;
        }
    }
    let (mut free_memory, mut free_vcpus) = (0u64, 0u64);
    let mut list = Vec::new();
    for id in cluster.host_ids() {
        let host = cluster.host(id);
        let receives = host.state == HostState::Up && !host.cordoned;
        // Room for VMs that come in is counted within the headroom.
        let own_free_memory = cluster
            .placement_memory_limit_mib(id)
            .saturating_sub(used_memory[id.index()]);
        let own_free_vcpus = cluster
            .vcpu_capacity(id)
            .saturating_sub(used_vcpus[id.index()]);
        if receives {
            free_memory += own_free_memory;
            free_vcpus += own_free_vcpus;
        }
        if cluster.needs_upgrade(id) {
            let (lost_memory, lost_vcpus) = if receives {
                (own_free_memory, own_free_vcpus)
            } else {
                (0, 0)
            };
            list.push(Withdrawal {
                host: id,
                memory_mib: lost_memory + moving_memory[id.index()],
                vcpus: lost_vcpus + moving_vcpus[id.index()],
                moving_memory_mib: moving_memory[id.index()],
                moving_vcpus: moving_vcpus[id.index()],
            });
        }
    }
    (list, free_memory, free_vcpus)
}

/// The largest number of compute hosts that can be down at once by aggregate capacity (N+k): the
/// worst such batch must fit in the free memory and vCPUs of the cluster. 0 if even one cannot.
pub fn evacuation_capacity_batch(cluster: &Cluster) -> u32 {
    let (list, free_memory, free_vcpus) = withdrawals(cluster);
    let control_plane_fits = list
        .iter()
        .filter(|w| cluster.host(w.host).role != HostRole::Compute)
        .all(|w| w.memory_mib <= free_memory && w.vcpus <= free_vcpus);
    if !control_plane_fits {
        return 0;
    }
    let compute: Vec<&Withdrawal> = list
        .iter()
        .filter(|w| cluster.host(w.host).role == HostRole::Compute)
        .collect();
    let largest_batch = |amount: &dyn Fn(&Withdrawal) -> u64, budget: u64| {
        let mut amounts: Vec<u64> = compute.iter().map(|w| amount(w)).collect();
        amounts.sort_unstable_by(|a, b| b.cmp(a));
        let mut total = 0u64;
        amounts
            .iter()
            .take_while(|a| {
                total += **a;
                total <= budget
            })
            .count() as u32
    };
    let by_memory = largest_batch(&|w| w.memory_mib, free_memory);
    let by_vcpus = largest_batch(&|w| w.vcpus, free_vcpus);
    if compute.is_empty() {
        return 1;
    }
    by_memory.min(by_vcpus)
}

/// Chooses the batch size from the policy and capacity and records the `capacity` precheck.
pub(super) fn resolve_batch_size(cluster: &Cluster, prechecks: &mut Vec<Precheck>) -> u32 {
    let compute_hosts = cluster
        .host_ids()
        .filter(|h| cluster.needs_upgrade(*h) && cluster.host(*h).role == HostRole::Compute)
        .count() as u32;
    let capacity_batch = evacuation_capacity_batch(cluster);
    let nothing_to_move = !cluster.host_ids().any(|h| cluster.needs_upgrade(h));
    if is_pool_of_one(cluster) {
        let message = "pool of one: no VM migrates, so no free capacity is needed".to_string();
        prechecks.push(check("capacity", CheckStatus::Pass, message, Vec::new()));
        return 1;
    }
    if capacity_batch == 0 && !nothing_to_move {
        prechecks.push(no_room_for_one_host(cluster));
        return 1;
    }
    let most_useful = compute_hosts.max(1);
    if cluster.policy.one_host_at_a_time {
        let message = format!(
            "one_host_at_a_time: one host per wave whatever max_unavailable says (the platform's \
             upgrade tool refuses concurrent upgrades); free capacity takes {capacity_batch} host(s)"
        );
        prechecks.push(check("capacity", CheckStatus::Pass, message, Vec::new()));
        return 1;
    }
    match requested_batch_size(cluster) {
        None => {
            let fitting = capacity_batch.clamp(1, most_useful);
            let ceiling_share = cluster.policy.max_unavailable_auto_ceiling;
            let ceiling = ceiling_share.hosts_of(cluster.hosts.len());
            let batch = fitting.min(ceiling);
            // Below the ceiling, later waves may grow as upgraded hosts come back empty.
            let growth = match batch < ceiling {
                true => {
                    "; later waves grow with the room that upgraded hosts free, up to the ceiling"
                }
                false => "",
            };
            let message = format!(
                "max_unavailable auto: batches of up to {batch} host(s): the free capacity takes \
                 {fitting} (N+{fitting}), max_unavailable_auto_ceiling {} of {} hosts allows {ceiling}{growth}",
                ceiling_share.to_text(),
                cluster.hosts.len()
            );
            prechecks.push(check("capacity", CheckStatus::Pass, message, Vec::new()));
            batch
        }
        Some(requested) => {
            let batch = requested.min(most_useful);
            if capacity_batch >= batch {
                let message = format!(
                    "free capacity can take the VMs of any {batch} host(s) at once (N+{batch})"
                );
                prechecks.push(check("capacity", CheckStatus::Pass, message, Vec::new()));
            } else {
                let message = format!(
                    "free capacity covers only {capacity_batch} of the largest hosts at once (N+{capacity_batch}); \
                     waves that do not fit are made smaller than max_unavailable {batch}"
                );
                prechecks.push(check("capacity", CheckStatus::Warn, message, Vec::new()));
            }
            batch
        }
    }
}

/// The N+1 failure, naming every host whose VMs cannot fit in the free room of the others.
fn no_room_for_one_host(cluster: &Cluster) -> Precheck {
    let (list, free_memory, free_vcpus) = withdrawals(cluster);
    let mut subjects = Vec::new();
    let mut details = Vec::new();
    for withdrawal in list
        .iter()
        .filter(|w| w.memory_mib > free_memory || w.vcpus > free_vcpus)
    {
        let name = cluster.host(withdrawal.host).name.clone();
        let others_memory = free_memory - (withdrawal.memory_mib - withdrawal.moving_memory_mib);
        let others_vcpus = free_vcpus - (withdrawal.vcpus - withdrawal.moving_vcpus);
        details.push(format!(
            "{name}: its VMs need {} MiB and {} vCPUs, the other hosts have {others_memory} MiB and {others_vcpus} vCPUs free",
            withdrawal.moving_memory_mib, withdrawal.moving_vcpus
        ));
        subjects.push(name);
    }
    let message = format!(
        "not enough free memory or vCPUs on the other hosts to empty even one host (N+1): {}",
        name_list(&details)
    );
    check("capacity", CheckStatus::Fail, message, subjects)
}
