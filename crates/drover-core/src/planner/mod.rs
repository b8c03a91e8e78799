//! The planner: turns an observed cluster and a target version into ordered waves of hosts with
//! one action per running VM, using as few migrations as the rules allow.
//!
//! Strategy (see ARCHITECTURE.md for the reasoning):
//! - control-plane hosts first, each in a wave of its own (master, then management hosts);
//! - compute hosts in waves of `max_unavailable`, oldest version first, lightest first, so the VMs
//!   that must move twice (those evacuated before any host is upgraded) are as few as possible;
//! - every VM goes to an already-upgraded host when one can take it (best fit, largest VM first),
//!   and only overflows onto an old host — which it must leave again later — when none can;
//! - a wave that cannot be emptied is shrunk; a single host that cannot be emptied fails the plan.
//!
//! This module is pure: no IO, no clock, no randomness. Same cluster in, same plan out.

mod placement;
mod prechecks;

use std::collections::VecDeque;

use crate::model::{Cluster, HostId, HostRole, HostState, RestartPolicy, Unmovable, Vm, VmId};
use crate::plan::{
    Action, ActionKind, CheckStatus, Plan, Precheck, SkipReason, SkippedHost, Summary, Wave,
    WaveKind,
};
use placement::Placement;

pub use prechecks::evacuation_capacity_batch;

/// What will happen to a running VM when its host is upgraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    Migrate,
    Restart,
    Shutdown,
    /// Suspended on its own host, resumed there after the upgrade (`unmovable: suspend`).
    Suspend,
    /// Shelved, unshelved on another host at once (`unmovable: shelve`).
    Shelve,
    /// Can neither migrate nor restart elsewhere, and the policy does not allow shutting it down.
    Blocked,
}

impl Disposition {
    /// Whether the VM waits on its own host through the upgrade (shut down or suspended).
    pub fn stays_on_own_host(self) -> bool {
        matches!(self, Disposition::Shutdown | Disposition::Suspend)
    }
}

/// The disposition of a VM under a policy, from its own properties only. A VM that can
/// live-migrate always does; one that cannot follows its `unmovable:` key when it has one (the
/// key is the operator's consent, so it needs no `auto_resolve`), else the defaults.
pub fn disposition(vm: &Vm, auto_resolve: bool) -> Disposition {
    let can_live_migrate = vm.migratable && !vm.local_storage;
    match vm.unmovable {
        _ if can_live_migrate => return Disposition::Migrate,
        Some(Unmovable::Suspend) => return Disposition::Suspend,
        Some(Unmovable::Shelve) => return Disposition::Shelve,
        Some(Unmovable::Shutdown) => return Disposition::Shutdown,
        // A restart elsewhere would leave a local disk behind: local storage keeps the default.
        Some(Unmovable::Restart) if !vm.local_storage => return Disposition::Restart,
        _ => {}
    }
    if vm.local_storage {
        Disposition::Shutdown
    } else if vm.migratable {
        Disposition::Migrate
    } else if vm.restart_policy == RestartPolicy::Always {
        Disposition::Restart
    } else if auto_resolve {
        Disposition::Shutdown
    } else {
        Disposition::Blocked
    }
}

/// Whether the cluster is a pool of one (a standalone server, which XenServer's wizard upgrades
/// too): its VMs have no other host to go to.
pub fn is_pool_of_one(cluster: &Cluster) -> bool {
    cluster.hosts.len() == 1
}

/// The disposition of a VM in its cluster: [`disposition`], except in a pool of one, where no VM
/// can go anywhere, so each one is shut down for the upgrade and started again on its host —
/// with the operator's consent (`auto_resolve`), as for any VM that cannot move. The model has no
/// suspend, so shutting down is the only way.
///
/// A VM whose `allowed_hosts` leave it no other host that could take it (up, not cordoned) is
/// treated the same way: it can only stay.
pub fn disposition_in(cluster: &Cluster, vm: &Vm) -> Disposition {
    let auto_resolve = cluster.policy.auto_resolve;
    match disposition(vm, auto_resolve) {
        Disposition::Migrate | Disposition::Restart | Disposition::Shelve
            if is_pool_of_one(cluster) || has_no_allowed_other_host(cluster, vm) =>
        {
            if auto_resolve {
                Disposition::Shutdown
            } else {
                Disposition::Blocked
            }
        }
        other => other,
    }
}

/// Whether a VM's `allowed_hosts` name no host besides its own that is up and not cordoned: no
/// order of waves lets it move. Always false for a VM without a host constraint.
pub fn has_no_allowed_other_host(cluster: &Cluster, vm: &Vm) -> bool {
    vm.allowed_hosts.as_ref().is_some_and(|allowed| {
        allowed.iter().all(|id| {
            let host = cluster.host(*id);
            *id == vm.host || host.state != HostState::Up || host.cordoned
        })
    })
}

/// Plans the rolling upgrade of `cluster` to its target version.
pub fn plan(cluster: &Cluster) -> Plan {
    let mut prechecks = prechecks::run(cluster);
    let skipped = skipped_hosts(cluster);
    let batch_size = prechecks::resolve_batch_size(cluster, &mut prechecks);
    let mut summary = Summary {
        max_unavailable: batch_size,
        migrations_lower_bound: migrations_lower_bound(cluster),
        ..Summary::default()
    };
    let blocked = prechecks.iter().any(|c| c.status == CheckStatus::Fail);
    let waves = if blocked {
        Vec::new()
    } else {
        match build_waves(cluster, batch_size) {
            Ok(waves) => waves,
            Err(failure) => {
                prechecks.push(failure.into_precheck(cluster));
                Vec::new()
            }
        }
    };
    summarize(cluster, &waves, batch_size, &mut summary);
    let final_compatibility_level = final_compatibility_level(cluster, &skipped, &mut prechecks);
    Plan {
        prechecks,
        waves,
        skipped,
        summary,
        final_compatibility_level,
    }
}

/// The level to raise the cluster to after the last host, when the policy asks for it and the
/// plan is feasible. A host left out of the selection keeps an older version, and a cluster
/// level it does not support would put it out of service (oVirt makes it non-operational), so
/// then the raise is left out with a warning that names those hosts.
fn final_compatibility_level(
    cluster: &Cluster,
    skipped: &[SkippedHost],
    prechecks: &mut Vec<Precheck>,
) -> Option<String> {
    let level = cluster.policy.raise_compatibility_level_to.clone()?;
    if prechecks.iter().any(|c| c.status == CheckStatus::Fail) {
        return None;
    }
    let left_behind: Vec<String> = skipped
        .iter()
        .filter(|s| s.reason == SkipReason::NotSelected)
        .map(|s| cluster.host(s.host).name.clone())
        .collect();
    if left_behind.is_empty() {
        return Some(level);
    }
    prechecks.push(Precheck {
        id: "compatibility-level",
        status: CheckStatus::Warn,
        message: format!(
            "the cluster compatibility level will not be raised to {level}: {} host(s) not selected stay below the target",
            left_behind.len()
        ),
        resolvable: false,
        subjects: left_behind,
    });
    None
}

fn skipped_hosts(cluster: &Cluster) -> Vec<SkippedHost> {
    cluster
        .host_ids()
        .filter_map(|id| {
            let host = cluster.host(id);
            let reason = if host.state == HostState::Down {
                SkipReason::Down
            } else if host.version == cluster.target_version
                && !cluster.policy.force_hosts.contains(&host.name)
            {
                SkipReason::AtTarget
            } else if host.version > cluster.target_version {
                SkipReason::NewerThanTarget
            } else if !cluster.is_selected(id) {
                SkipReason::NotSelected
            } else {
                return None;
            };
            Some(SkippedHost { host: id, reason })
        })
        .collect()
}

/// Every running VM that must live-migrate off a host being upgraded moves at least once.
fn migrations_lower_bound(cluster: &Cluster) -> usize {
    cluster
        .vms
        .iter()
        .filter(|vm| vm.is_running() && cluster.needs_upgrade(vm.host))
        .filter(|vm| disposition_in(cluster, vm) == Disposition::Migrate)
        .count()
}

fn summarize(cluster: &Cluster, waves: &[Wave], batch_size: u32, summary: &mut Summary) {
    summary.waves = waves.len();
    summary.hosts_to_upgrade = waves.iter().map(|w| w.hosts.len()).sum();
    summary.returns = waves.iter().map(|w| w.returns.len()).sum();
    for action in waves.iter().flat_map(|w| &w.actions) {
        match action.kind {
            ActionKind::Migrate => summary.migrations += 1,
            ActionKind::Restart => summary.restarts += 1,
            ActionKind::Shutdown => summary.shutdowns += 1,
            ActionKind::Suspend => summary.suspends += 1,
            ActionKind::Shelve => summary.shelves += 1,
        }
    }
    let (control_plane, compute) = upgrade_queues(cluster);
    // With `auto` a wave may grow past the batch resolved at the start, up to the ceiling.
    let largest_wave = auto_batch_ceiling(cluster).unwrap_or(batch_size.max(1) as usize);
    summary.waves_lower_bound = control_plane.len() + compute.len().div_ceil(largest_wave);
    if auto_batch_ceiling(cluster).is_some() {
        let largest_compute_wave = waves
            .iter()
            .filter(|wave| wave.kind == WaveKind::Compute)
            .map(|wave| wave.hosts.len() as u32)
            .max()
            .unwrap_or(0);
        summary.max_unavailable = summary.max_unavailable.max(largest_compute_wave);
    }
}

/// Hosts to upgrade: control-plane hosts (master first) one per wave, then compute hosts.
/// Compute hosts are ordered oldest version first, then fewest VMs to move, then name.
fn upgrade_queues(cluster: &Cluster) -> (Vec<HostId>, Vec<HostId>) {
    let mut control_plane: Vec<HostId> = cluster
        .host_ids()
        .filter(|id| cluster.needs_upgrade(*id) && cluster.host(*id).role != HostRole::Compute)
        .collect();
    control_plane.sort_by(|a, b| {
        let (ha, hb) = (cluster.host(*a), cluster.host(*b));
        (ha.role, &ha.version, &ha.name).cmp(&(hb.role, &hb.version, &hb.name))
    });
    let mut movable = vec![0usize; cluster.hosts.len()];
    for vm in cluster.vms.iter().filter(|vm| vm.is_running()) {
        if !disposition_in(cluster, vm).stays_on_own_host() {
            movable[vm.host.index()] += 1;
        }
    }
    let mut compute: Vec<HostId> = cluster
        .host_ids()
        .filter(|id| cluster.needs_upgrade(*id) && cluster.host(*id).role == HostRole::Compute)
        .collect();
    compute.sort_by(|a, b| {
        let (ha, hb) = (cluster.host(*a), cluster.host(*b));
        (&ha.version, movable[a.index()], &ha.name).cmp(&(
            &hb.version,
            movable[b.index()],
            &hb.name,
        ))
    });
    (control_plane, compute)
}

/// A wave that could not be emptied even with a single host in it.
struct PlacementFailure {
    host: HostId,
    vms: Vec<VmId>,
}

impl PlacementFailure {
    fn into_precheck(self, cluster: &Cluster) -> Precheck {
        let host = &cluster.host(self.host).name;
        let names: Vec<String> = self
            .vms
            .iter()
            .map(|vm| cluster.vm(*vm).name.clone())
            .collect();
        let mut subjects = vec![host.clone()];
        subjects.extend(names.iter().cloned());
        // Only VMs with a host constraint add to the message, so plans without any read as before.
        let constraints: Vec<String> = self
            .vms
            .iter()
            .filter_map(|vm| {
                let spec = cluster.vm(*vm);
                let allowed = spec.allowed_hosts.as_ref()?;
                let hosts: Vec<&str> = allowed
                    .iter()
                    .map(|id| cluster.host(*id).name.as_str())
                    .collect();
                Some(format!(
                    "{} may run only on {}",
                    spec.name,
                    hosts.join(", ")
                ))
            })
            .collect();
        let constraint_note = if constraints.is_empty() {
            String::new()
        } else {
            format!(" ({})", constraints.join("; "))
        };
        Precheck {
            id: "placement",
            status: CheckStatus::Fail,
            message: format!(
                "no safe plan: host {host} cannot be emptied; no host can take VM(s) {} \
                 (memory within the headroom, vCPU overcommit, anti-affinity, the same-or-newer \
                 version rule and at most two moves per VM considered){constraint_note}",
                names.join(", ")
            ),
            resolvable: false,
            subjects,
        }
    }
}

fn build_waves(cluster: &Cluster, batch_size: u32) -> Result<Vec<Wave>, PlacementFailure> {
    let (control_plane, compute) = upgrade_queues(cluster);
    let mut placement = Placement::new(cluster);
    let mut waves = Vec::new();
    for host in control_plane {
        let kind = match cluster.host(host).role {
            HostRole::Master => WaveKind::Master,
            _ => WaveKind::Management,
        };
        // Before any compute host is upgraded, a VM may have to wait on an old host.
        let evacuation = placement.evacuate(&[host], true);
        if evacuation.emptied.is_empty() {
            return Err(PlacementFailure {
                host,
                vms: evacuation.unplaced,
            });
        }
        let actions = evacuation.actions;
        placement.finish_upgrade(&[host]);
        let returns = placement.return_home(&actions);
        waves.push(Wave {
            kind,
            hosts: vec![host],
            actions,
            returns,
        });
    }
    let batch = batch_size.max(1) as usize;
    let auto_ceiling = auto_batch_ceiling(cluster);
    // Positions left empty in the last wave cost nothing when taken from the first one instead,
    // and the first compute wave is the one whose VMs may have to move twice. With `auto` every
    // wave is as large as the room allows, so there is no fixed size to even out.
    let slack = match auto_ceiling {
        Some(_) => 0,
        None => (batch - compute.len() % batch) % batch,
    };
    let mut first_size = batch - slack;
    // Old hosts receive VMs only until a compute host runs the target: a VM that waited on an old
    // host once then moves to an upgraded one and never again, and every later VM moves once.
    let mut old_hosts_receive = !cluster
        .hosts
        .iter()
        .any(|h| h.role == HostRole::Compute && h.version >= cluster.target_version);
    let mut queue = VecDeque::from(compute);
    while !queue.is_empty() {
        let mut wanted = first_size;
        if let Some(ceiling) = auto_ceiling {
            // The batch resolved before planning is what the free room takes from the fullest
            // hosts at the start; emptied, upgraded hosts add room as the roll goes on, and
            // `auto` promises the largest safe batches, so a later wave may grow up to the
            // ceiling (evacuation still stops at the first host it cannot empty).
            let with_room = placement.hosts_with_room(&queue, ceiling, old_hosts_receive);
            wanted = wanted.max(with_room).min(ceiling);
        }
        let wanted = wanted.min(queue.len());
        first_size = batch;
        let wave =
            evacuate_largest_possible(&mut placement, &mut queue, wanted, old_hosts_receive)?;
        old_hosts_receive = false;
        waves.push(wave);
    }
    Ok(waves)
}

/// With `max_unavailable: auto`, the most hosts a wave may take (the policy's ceiling); `None`
/// for a fixed batch (`one_host_at_a_time` is one).
fn auto_batch_ceiling(cluster: &Cluster) -> Option<usize> {
    if cluster.policy.one_host_at_a_time {
        return None;
    }
    match requested_batch_size(cluster) {
        Some(_) => None,
        None => {
            let ceiling = cluster.policy.max_unavailable_auto_ceiling;
            Some(ceiling.hosts_of(cluster.hosts.len()).max(1) as usize)
        }
    }
}

/// How many queued hosts a constrained cluster tries alone when no host of a wave can be emptied.
const HOSTS_TRIED_ALONE: usize = 32;

/// Takes up to `wanted` hosts from the front of the queue and empties as many of them as fit,
/// in queue order; the rest go back to the front of the queue for the next wave.
///
/// With host constraints the wave takes the first `wanted` hosts that leave every VM an allowed
/// host outside the wave (the wave is split around a VM's partners), and when no host of it can
/// be emptied together, each is tried alone in turn, then the next queued hosts, before the
/// plan fails.
fn evacuate_largest_possible(
    placement: &mut Placement<'_>,
    queue: &mut VecDeque<HostId>,
    wanted: usize,
    old_hosts_receive: bool,
) -> Result<Wave, PlacementFailure> {
    let hosts: Vec<HostId> = if placement.is_constrained() {
        placement.take_compatible_hosts(queue, wanted)
    } else {
        queue.drain(..wanted).collect()
    };
    let mut evacuation = placement.evacuate(&hosts, old_hosts_receive);
    if evacuation.emptied.is_empty() && hosts.len() > 1 {
        // The other hosts of the wave were not available as targets; try the first one alone
        // (with constraints, each in turn: the first may be waiting for a partner's upgrade).
        let alone_candidates = if placement.is_constrained() {
            hosts.len()
        } else {
            1
        };
        let mut first_unplaced = None;
        for host in hosts.iter().take(alone_candidates) {
            let alone = placement.evacuate(&[*host], old_hosts_receive);
            if !alone.emptied.is_empty() {
                evacuation = alone;
                break;
            }
            first_unplaced.get_or_insert(alone.unplaced);
        }
        if evacuation.emptied.is_empty() {
            evacuation.unplaced = first_unplaced.unwrap_or_default();
        }
    }
    if evacuation.emptied.is_empty() && placement.is_constrained() {
        // A host may wait for a partner that a later host of the queue frees or upgrades. Only
        // the next few are tried: trying every host on every stuck wave made a plan that cannot
        // succeed take seconds on a thousand DRBD nodes.
        for position in 0..queue.len().min(HOSTS_TRIED_ALONE) {
            let alone = placement.evacuate(&[queue[position]], old_hosts_receive);
            if !alone.emptied.is_empty() {
                queue.remove(position);
                evacuation = alone;
                break;
            }
        }
    }
    if evacuation.emptied.is_empty() {
        for host in hosts[1..].iter().rev() {
            queue.push_front(*host);
        }
        return Err(PlacementFailure {
            host: hosts[0],
            vms: evacuation.unplaced,
        });
    }
    let emptied = evacuation.emptied;
    for host in hosts.iter().rev().filter(|host| !emptied.contains(host)) {
        queue.push_front(*host);
    }
    placement.finish_upgrade(&emptied);
    // The next wave is formed from the placement after these returns.
    let returns = placement.return_home(&evacuation.actions);
    Ok(Wave {
        kind: WaveKind::Compute,
        hosts: emptied,
        actions: evacuation.actions,
        returns,
    })
}

/// The batch size asked for, before capacity is considered; `None` for `auto`.
pub fn requested_batch_size(cluster: &Cluster) -> Option<u32> {
    cluster.requested_max_unavailable()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod constraint_tests;

#[cfg(test)]
mod unmovable_tests;

/// Helper for callers that display actions: the VM and its move, by name.
pub fn describe_action(cluster: &Cluster, action: &Action) -> String {
    let vm = &cluster.vm(action.vm).name;
    let from = &cluster.host(action.from).name;
    match action.to {
        Some(to) => format!(
            "{} {vm} {from} -> {}",
            action.kind.as_str(),
            cluster.host(to).name
        ),
        None => format!("{} {vm} on {from}", action.kind.as_str()),
    }
}
