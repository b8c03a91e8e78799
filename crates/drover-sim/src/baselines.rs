//! Two placement strategies that Drover's planner is measured against, on the same waves:
//!
//! - [`move_back`]: every VM leaves for the wave (best fit) and migrates back to its own host after
//!   the upgrade, as Xen Orchestra's rolling pool update and Windows Cluster-Aware Updating do;
//! - [`worst_fit`]: XAPI `host.evacuate`: each VM goes to the eligible host with the most free
//!   memory and stays there, moving again if that host is upgraded later.
//!
//! Both honour the same rules as the planner (memory, vCPU overcommit, anti-affinity, the
//! same-or-newer version rule, no host of the wave, no host down or in maintenance) and only count
//! moves; they produce no plan. Only live migrations are counted, as in the planner's summary.
//! Each VM costs O(log hosts) per version in use, so they run on 10,000 hosts / 300,000 VMs.
//!
//! This module must not know how the planner places VMs: it only reuses a plan's wave host lists.

use std::collections::BTreeSet;

use drover_core::planner::{disposition, Disposition};
use drover_core::{Cluster, HostId, HostRole, HostState, Plan, Version, VmId};

/// What a baseline strategy costs on a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaselineOutcome {
    /// Live migrations, every move counted (a VM that comes back counts twice).
    pub migrations: usize,
    /// Whether every VM that had to leave its host found a place.
    pub feasible: bool,
    /// VMs that found no place (they are left where they were and the count goes on).
    pub unplaced_vms: usize,
}

/// The hosts of each wave: the plan's own waves when it has some, otherwise the planner's wave
/// sequence rebuilt without placement (control-plane hosts alone, master first, then compute
/// hosts in batches of `summary.max_unavailable`), so that infeasible plans can be compared too.
pub fn wave_hosts(cluster: &Cluster, plan: &Plan) -> Vec<Vec<HostId>> {
    if !plan.waves.is_empty() {
        return plan.waves.iter().map(|wave| wave.hosts.clone()).collect();
    }
    let mut control_plane: Vec<HostId> = cluster
        .host_ids()
        .filter(|h| cluster.needs_upgrade(*h) && cluster.host(*h).role != HostRole::Compute)
        .collect();
    control_plane.sort_by_key(|h| (cluster.host(*h).role, &cluster.host(*h).name));
    let compute: Vec<HostId> = cluster
        .host_ids()
        .filter(|h| cluster.needs_upgrade(*h) && cluster.host(*h).role == HostRole::Compute)
        .collect();
    let batch = plan.summary.max_unavailable.max(1) as usize;
    control_plane
        .into_iter()
        .map(|host| vec![host])
        .chain(compute.chunks(batch).map(<[HostId]>::to_vec))
        .collect()
}

/// Every VM leaves its host for the wave (best fit) and comes back after the upgrade.
/// A VM parked on a host newer than the target cannot come back (same-or-newer rule) and stays.
pub fn move_back(cluster: &Cluster, waves: &[Vec<HostId>]) -> BaselineOutcome {
    let mut ledger = Ledger::new(cluster);
    for hosts in waves {
        let parked = ledger.evacuate(hosts, Fit::Best);
        ledger.finish_upgrade(hosts);
        for (vm, home) in parked {
            ledger.bring_back(vm, home);
        }
    }
    ledger.outcome()
}

/// XAPI `host.evacuate`: each VM goes to the eligible host with the most free memory and stays.
pub fn worst_fit(cluster: &Cluster, waves: &[Vec<HostId>]) -> BaselineOutcome {
    let mut ledger = Ledger::new(cluster);
    for hosts in waves {
        ledger.evacuate(hosts, Fit::Worst);
        ledger.finish_upgrade(hosts);
    }
    ledger.outcome()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// The host with the least free memory that takes the VM.
    Best,
    /// The host with the most free memory that takes the VM.
    Worst,
}

/// Where every running VM is and what every host has left, with the receiving hosts indexed by
/// free memory in one ordered set per version.
struct Ledger<'a> {
    cluster: &'a Cluster,
    vm_host: Vec<HostId>,
    host_vms: Vec<Vec<VmId>>,
    memory_used_mib: Vec<u64>,
    vcpus_used: Vec<u64>,
    vcpu_capacity: Vec<u64>,
    /// Rank of each host's current version among every version present.
    version_rank: Vec<usize>,
    target_rank: usize,
    group_of: Vec<Option<u32>>,
    /// Groups of the VMs on each host, one entry per VM.
    host_groups: Vec<Vec<u32>>,
    /// Hosts that can receive VMs between waves: up, not in maintenance.
    receives: Vec<bool>,
    in_pool: Vec<bool>,
    /// `pools[rank]` holds the receiving hosts of that version rank, keyed by free memory.
    pools: Vec<BTreeSet<(u64, HostId)>>,
    migrations: usize,
    unplaced_vms: usize,
}

impl<'a> Ledger<'a> {
    fn new(cluster: &'a Cluster) -> Self {
        let mut versions: Vec<&Version> = cluster.hosts.iter().map(|h| &h.version).collect();
        versions.push(&cluster.target_version);
        versions.sort();
        versions.dedup();
        let rank_of = |version: &Version| versions.partition_point(|v| *v < version);
        let host_count = cluster.hosts.len();
        let mut ledger = Ledger {
            cluster,
            vm_host: cluster.vms.iter().map(|vm| vm.host).collect(),
            host_vms: vec![Vec::new(); host_count],
            memory_used_mib: vec![0; host_count],
            vcpus_used: vec![0; host_count],
            vcpu_capacity: cluster
                .host_ids()
                .map(|h| cluster.vcpu_capacity(h))
                .collect(),
            version_rank: cluster.hosts.iter().map(|h| rank_of(&h.version)).collect(),
            target_rank: rank_of(&cluster.target_version),
            group_of: crate::groups::intern_anti_affinity_groups(cluster),
            host_groups: vec![Vec::new(); host_count],
            receives: cluster
                .hosts
                .iter()
                .map(|h| h.state == HostState::Up)
                .collect(),
            in_pool: vec![false; host_count],
            pools: vec![BTreeSet::new(); versions.len()],
            migrations: 0,
            unplaced_vms: 0,
        };
        for vm in cluster.vm_ids().filter(|vm| cluster.vm(*vm).is_running()) {
            ledger.attach(vm, cluster.vm(vm).host);
        }
        for host in cluster.host_ids() {
            ledger.enter_pool(host);
        }
        ledger
    }

    fn outcome(&self) -> BaselineOutcome {
        BaselineOutcome {
            migrations: self.migrations,
            feasible: self.unplaced_vms == 0,
            unplaced_vms: self.unplaced_vms,
        }
    }

    fn free_memory_mib(&self, host: HostId) -> u64 {
        self.cluster
            .host(host)
            .memory_mib
            .saturating_sub(self.memory_used_mib[host.index()])
    }

    fn pool_key(&self, host: HostId) -> (u64, HostId) {
        (self.free_memory_mib(host), host)
    }

    fn enter_pool(&mut self, host: HostId) {
        if self.receives[host.index()] && !self.in_pool[host.index()] {
            let key = self.pool_key(host);
            self.pools[self.version_rank[host.index()]].insert(key);
            self.in_pool[host.index()] = true;
        }
    }

    fn leave_pool(&mut self, host: HostId) {
        if self.in_pool[host.index()] {
            let key = self.pool_key(host);
            self.pools[self.version_rank[host.index()]].remove(&key);
            self.in_pool[host.index()] = false;
        }
    }

    /// Changes a host's load, keeping its pool entry (keyed by free memory) in step.
    fn with_pool_updated(&mut self, host: HostId, change: impl FnOnce(&mut Self)) {
        let pooled = self.in_pool[host.index()];
        self.leave_pool(host);
        change(self);
        if pooled {
            self.enter_pool(host);
        }
    }

    fn attach(&mut self, vm: VmId, host: HostId) {
        self.with_pool_updated(host, |ledger| {
            let spec = ledger.cluster.vm(vm);
            ledger.memory_used_mib[host.index()] += spec.memory_mib;
            ledger.vcpus_used[host.index()] += spec.vcpus as u64;
            ledger.host_vms[host.index()].push(vm);
            if let Some(group) = ledger.group_of[vm.index()] {
                ledger.host_groups[host.index()].push(group);
            }
            ledger.vm_host[vm.index()] = host;
        });
    }

    fn detach(&mut self, vm: VmId, host: HostId) {
        self.with_pool_updated(host, |ledger| {
            let spec = ledger.cluster.vm(vm);
            ledger.memory_used_mib[host.index()] -= spec.memory_mib;
            ledger.vcpus_used[host.index()] -= spec.vcpus as u64;
            let vms = &mut ledger.host_vms[host.index()];
            if let Some(position) = vms.iter().position(|v| *v == vm) {
                vms.swap_remove(position);
            }
            if let Some(group) = ledger.group_of[vm.index()] {
                let groups = &mut ledger.host_groups[host.index()];
                if let Some(position) = groups.iter().position(|g| *g == group) {
                    groups.swap_remove(position);
                }
            }
        });
    }

    fn relocate(&mut self, vm: VmId, to: HostId) {
        let from = self.vm_host[vm.index()];
        self.detach(vm, from);
        self.attach(vm, to);
        if disposition(self.cluster.vm(vm), self.cluster.policy.auto_resolve)
            == Disposition::Migrate
        {
            self.migrations += 1;
        }
    }

    /// vCPUs and anti-affinity; memory is already covered by the pool range that offered `host`.
    fn takes(&self, vm: VmId, host: HostId) -> bool {
        let vcpus = self.cluster.vm(vm).vcpus as u64;
        let vcpus_fit = self.vcpus_used[host.index()] + vcpus <= self.vcpu_capacity[host.index()];
        let group_fits = match self.group_of[vm.index()] {
            Some(group) => !self.host_groups[host.index()].contains(&group),
            None => true,
        };
        vcpus_fit && group_fits
    }

    /// The host chosen by `fit` among receiving hosts of a version at least the VM's current host's.
    fn find_host(&self, vm: VmId, fit: Fit) -> Option<HostId> {
        let memory = self.cluster.vm(vm).memory_mib;
        let source_rank = self.version_rank[self.vm_host[vm.index()].index()];
        let candidates = self.pools[source_rank..]
            .iter()
            .filter_map(|pool| match fit {
                Fit::Best => pool
                    .range((memory, HostId(0))..)
                    .find(|(_, host)| self.takes(vm, *host)),
                Fit::Worst => pool
                    .iter()
                    .rev()
                    .take_while(|(free, _)| *free >= memory)
                    .find(|(_, host)| self.takes(vm, *host)),
            });
        let chosen = match fit {
            Fit::Best => candidates.min(),
            Fit::Worst => candidates.max(),
        };
        chosen.map(|(_, host)| *host)
    }

    /// Moves every VM that must leave the wave's hosts, largest first; returns where each came from.
    fn evacuate(&mut self, hosts: &[HostId], fit: Fit) -> Vec<(VmId, HostId)> {
        for host in hosts {
            self.leave_pool(*host);
        }
        let mut movers = Vec::new();
        for host in hosts {
            for vm in self.host_vms[host.index()].iter().copied() {
                match disposition(self.cluster.vm(vm), self.cluster.policy.auto_resolve) {
                    Disposition::Migrate | Disposition::Restart | Disposition::Shelve => {
                        movers.push(vm)
                    }
                    Disposition::Shutdown | Disposition::Suspend => {}
                    Disposition::Blocked => self.unplaced_vms += 1,
                }
            }
        }
        movers.sort_by_key(|vm| {
            let spec = self.cluster.vm(*vm);
            (
                std::cmp::Reverse(spec.memory_mib),
                std::cmp::Reverse(spec.vcpus),
                *vm,
            )
        });
        let mut moved = Vec::with_capacity(movers.len());
        for vm in movers {
            let home = self.vm_host[vm.index()];
            match self.find_host(vm, fit) {
                Some(to) => {
                    self.relocate(vm, to);
                    moved.push((vm, home));
                }
                None => self.unplaced_vms += 1,
            }
        }
        moved
    }

    fn finish_upgrade(&mut self, hosts: &[HostId]) {
        for host in hosts {
            self.version_rank[host.index()] = self.version_rank[host.index()].max(self.target_rank);
            self.enter_pool(*host);
        }
    }

    /// Moves a VM back to the host it left, when the rules allow it.
    fn bring_back(&mut self, vm: VmId, home: HostId) {
        let current = self.vm_host[vm.index()];
        let version_allows = self.version_rank[home.index()] >= self.version_rank[current.index()];
        let memory_fits = self.cluster.vm(vm).memory_mib <= self.free_memory_mib(home);
        if self.receives[home.index()] && version_allows && memory_fits && self.takes(vm, home) {
            self.relocate(vm, home);
        }
    }
}
