//! The planner's working copy of the cluster: where each running VM is, what each host has left,
//! which hosts can receive VMs, and a best-fit index over them.
//!
//! Receiving hosts are split into one pool of *final* hosts (at or above the target version: a VM
//! placed there never moves again) and one pool per older version. A VM from a host of version v
//! may go to any final host or to an old pool of version ≥ v (XenServer's same-or-newer rule).
//! Each pool is ordered by free memory so best fit is a range lookup.

use std::collections::BTreeSet;

use super::{disposition_in, Disposition};
use crate::model::{Cluster, HostId, HostState, VmId};
use crate::plan::{Action, ActionKind};

pub(super) struct Placement<'a> {
    cluster: &'a Cluster,
    /// Current host of every VM (running or not).
    vm_host: Vec<HostId>,
    /// VMs moved already in an earlier wave (onto an old host): they get first pick of the
    /// upgraded hosts, so that no VM has to move a third time.
    moved_before: Vec<bool>,
    /// Running VMs per host, plus shut-down local VMs that will start again there.
    host_vms: Vec<Vec<VmId>>,
    memory_used_mib: Vec<u64>,
    /// What Drover may fill on each host (`Cluster::placement_memory_limit_mib`: the headroom).
    memory_limit_mib: Vec<u64>,
    vcpus_used: Vec<u64>,
    vcpu_capacity: Vec<u64>,
    /// Rank of each host's current version among all versions; `target_rank` and above are final.
    version_rank: Vec<usize>,
    target_rank: usize,
    /// Anti-affinity groups present on each host, with their VM counts.
    host_groups: Vec<Vec<(u32, u32)>>,
    vm_group: Vec<Option<u32>>,
    /// Whether a host may receive VMs at all (up, not in maintenance).
    receives: Vec<bool>,
    /// The pool a receiving host currently sits in, if any.
    pool_of: Vec<Option<usize>>,
    /// pools[0] holds final hosts; pools[1 + rank] holds old hosts of that version rank.
    pools: Vec<BTreeSet<(u64, HostId)>>,
    /// Whether the evacuation under way may send a VM that has not moved yet to an old host.
    old_hosts_receive: bool,
}

/// The result of emptying a wave: the first `emptied` hosts were emptied by `actions`; if fewer
/// than all, `unplaced` are the VMs of the next host that found no place.
pub(super) struct Evacuation {
    pub emptied: usize,
    pub actions: Vec<Action>,
    pub unplaced: Vec<VmId>,
}

/// One applied placement, kept so that a host that cannot be emptied can be undone.
struct Move {
    vm: VmId,
    from: HostId,
    to: HostId,
}

impl<'a> Placement<'a> {
    pub(super) fn new(cluster: &'a Cluster) -> Self {
        let mut versions: Vec<_> = cluster.hosts.iter().map(|h| &h.version).collect();
        versions.push(&cluster.target_version);
        versions.sort();
        versions.dedup();
        let rank_of = |v| {
            versions
                .binary_search(&v)
                .expect("every version was ranked")
        };
        let target_rank = rank_of(&cluster.target_version);
        let host_count = cluster.hosts.len();
        let mut groups: Vec<&str> = cluster
            .vms
            .iter()
            .filter_map(|vm| vm.anti_affinity.as_deref())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        let vm_group = cluster
            .vms
            .iter()
            .map(|vm| {
                vm.anti_affinity
                    .as_deref()
                    .map(|g| groups.binary_search(&g).expect("group was collected") as u32)
            })
            .collect();
        let mut placement = Placement {
            cluster,
            vm_host: cluster.vms.iter().map(|vm| vm.host).collect(),
            moved_before: vec![false; cluster.vms.len()],
            host_vms: vec![Vec::new(); host_count],
            memory_used_mib: vec![0; host_count],
            memory_limit_mib: cluster
                .host_ids()
                .map(|h| cluster.placement_memory_limit_mib(h))
                .collect(),
            vcpus_used: vec![0; host_count],
            vcpu_capacity: cluster
                .host_ids()
                .map(|h| cluster.vcpu_capacity(h))
                .collect(),
            version_rank: cluster.hosts.iter().map(|h| rank_of(&h.version)).collect(),
            target_rank,
            host_groups: vec![Vec::new(); host_count],
            vm_group,
            receives: cluster
                .hosts
                .iter()
                .map(|h| h.state == HostState::Up && !h.cordoned)
                .collect(),
            pool_of: vec![None; host_count],
            pools: vec![BTreeSet::new(); target_rank + 1],
            old_hosts_receive: true,
        };
        for vm in cluster.vm_ids().filter(|vm| cluster.vm(*vm).is_running()) {
            placement.attach(vm, cluster.vm(vm).host);
        }
        for host in cluster.host_ids() {
            placement.enter_pool(host);
        }
        placement
    }

    /// Memory left on a host for VMs Drover brings there, within the headroom.
    fn free_memory(&self, host: HostId) -> u64 {
        self.memory_limit_mib[host.index()].saturating_sub(self.memory_used_mib[host.index()])
    }

    fn pool_index(&self, host: HostId) -> usize {
        let rank = self.version_rank[host.index()];
        if rank >= self.target_rank {
            0
        } else {
            1 + rank
        }
    }

    fn enter_pool(&mut self, host: HostId) {
        if !self.receives[host.index()] || self.pool_of[host.index()].is_some() {
            return;
        }
        let pool = self.pool_index(host);
        let key = (self.free_memory(host), host);
        self.pools[pool].insert(key);
        self.pool_of[host.index()] = Some(pool);
    }

    fn leave_pool(&mut self, host: HostId) {
        if let Some(pool) = self.pool_of[host.index()].take() {
            let key = (self.free_memory(host), host);
            self.pools[pool].remove(&key);
        }
    }

    /// Records a VM as present on a host, keeping the pool index in step with its free memory.
    fn attach(&mut self, vm: VmId, host: HostId) {
        let pool = self.pool_of[host.index()];
        if let Some(pool) = pool {
            let key = (self.free_memory(host), host);
            self.pools[pool].remove(&key);
        }
        let spec = self.cluster.vm(vm);
        self.memory_used_mib[host.index()] += spec.memory_mib;
        self.vcpus_used[host.index()] += spec.vcpus as u64;
        self.host_vms[host.index()].push(vm);
        if let Some(group) = self.vm_group[vm.index()] {
            let groups = &mut self.host_groups[host.index()];
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, count)) => *count += 1,
                None => groups.push((group, 1)),
            }
        }
        self.vm_host[vm.index()] = host;
        if let Some(pool) = pool {
            let key = (self.free_memory(host), host);
            self.pools[pool].insert(key);
        }
    }

    fn detach(&mut self, vm: VmId, host: HostId) {
        let pool = self.pool_of[host.index()];
        if let Some(pool) = pool {
            let key = (self.free_memory(host), host);
            self.pools[pool].remove(&key);
        }
        let spec = self.cluster.vm(vm);
        self.memory_used_mib[host.index()] -= spec.memory_mib;
        self.vcpus_used[host.index()] -= spec.vcpus as u64;
        let list = &mut self.host_vms[host.index()];
        if let Some(position) = list.iter().position(|v| *v == vm) {
            list.swap_remove(position);
        }
        if let Some(group) = self.vm_group[vm.index()] {
            let groups = &mut self.host_groups[host.index()];
            if let Some(position) = groups.iter().position(|(g, _)| *g == group) {
                groups[position].1 -= 1;
                if groups[position].1 == 0 {
                    groups.swap_remove(position);
                }
            }
        }
        if let Some(pool) = pool {
            let key = (self.free_memory(host), host);
            self.pools[pool].insert(key);
        }
    }

    fn fits(&self, vm: VmId, host: HostId) -> bool {
        let spec = self.cluster.vm(vm);
        let vcpus_left = self.vcpu_capacity[host.index()]
            - self.vcpus_used[host.index()].min(self.vcpu_capacity[host.index()]);
        if (spec.vcpus as u64) > vcpus_left {
            return false;
        }
        match self.vm_group[vm.index()] {
            Some(group) => !self.host_groups[host.index()]
                .iter()
                .any(|(g, _)| *g == group),
            None => true,
        }
    }

    /// Best fit: the receiving host with the least free memory that still takes the VM, final
    /// hosts first, then old hosts of a version at least the source's (newest first). A VM goes
    /// to an old host only while old hosts receive and only if it has not moved before: from an
    /// old host it must move again, and no VM moves a third time.
    fn find_target(&self, vm: VmId, source: HostId) -> Option<HostId> {
        let memory = self.cluster.vm(vm).memory_mib;
        let source_rank = self.version_rank[source.index()];
        let old_pools_start = if self.old_hosts_receive && !self.moved_before[vm.index()] {
            1 + source_rank.min(self.target_rank)
        } else {
            self.pools.len()
        };
        let old_pools = (old_pools_start..self.pools.len()).rev();
        std::iter::once(0).chain(old_pools).find_map(|pool| {
            self.pools[pool]
                .range((memory, HostId(0))..)
                .map(|(_, host)| *host)
                .find(|host| *host != source && self.fits(vm, *host))
        })
    }

    /// Empties the given hosts in order, one action per running VM, largest VM first within each
    /// host. All of them stop receiving VMs first, so no VM lands on a host of the same wave.
    /// Stops at the first host whose VMs cannot all be placed: that host's moves are undone and it
    /// and the hosts after it receive VMs again. One pass, so a huge batch costs one placement.
    /// `old_hosts_receive`: whether a VM that has not moved yet may wait on a host not upgraded.
    pub(super) fn evacuate(&mut self, hosts: &[HostId], old_hosts_receive: bool) -> Evacuation {
        self.old_hosts_receive = old_hosts_receive;
        for host in hosts {
            self.leave_pool(*host);
        }
        let mut actions = Vec::new();
        for (index, host) in hosts.iter().enumerate() {
            match self.evacuate_one(*host) {
                Ok(host_actions) => actions.extend(host_actions),
                Err(unplaced) => {
                    for later in &hosts[index..] {
                        self.enter_pool(*later);
                    }
                    return Evacuation {
                        emptied: index,
                        actions,
                        unplaced,
                    };
                }
            }
        }
        Evacuation {
            emptied: hosts.len(),
            actions,
            unplaced: Vec::new(),
        }
    }

    /// Places every VM that must leave one host (which is out of the pools already); on failure
    /// undoes its moves and returns the VMs that found no place.
    fn evacuate_one(&mut self, host: HostId) -> Result<Vec<Action>, Vec<VmId>> {
        let mut migrations = Vec::new();
        let mut restarts = Vec::new();
        let mut shutdowns = Vec::new();
        let mut blocked = Vec::new();
        for vm in self.host_vms[host.index()].iter().copied() {
            match disposition_in(self.cluster, self.cluster.vm(vm)) {
                Disposition::Migrate => migrations.push(vm),
                Disposition::Restart => restarts.push(vm),
                Disposition::Shutdown => shutdowns.push(vm),
                Disposition::Blocked => blocked.push(vm),
            }
        }
        if !blocked.is_empty() {
            return Err(blocked);
        }
        let mut movers: Vec<(VmId, ActionKind)> = migrations
            .into_iter()
            .map(|vm| (vm, ActionKind::Migrate))
            .chain(restarts.into_iter().map(|vm| (vm, ActionKind::Restart)))
            .collect();
        // Largest first is the classic best-fit-decreasing order: it packs tightest.
        movers.sort_by_key(|(vm, _)| {
            let spec = self.cluster.vm(*vm);
            (
                std::cmp::Reverse(self.moved_before[vm.index()]),
                std::cmp::Reverse(spec.memory_mib),
                std::cmp::Reverse(spec.vcpus),
                *vm,
            )
        });
        let mut moves: Vec<Move> = Vec::with_capacity(movers.len());
        let mut unplaced = Vec::new();
        for (vm, _) in &movers {
            match self.find_target(*vm, host) {
                Some(target) => {
                    self.detach(*vm, host);
                    self.attach(*vm, target);
                    moves.push(Move {
                        vm: *vm,
                        from: host,
                        to: target,
                    });
                }
                None => unplaced.push(*vm),
            }
        }
        if !unplaced.is_empty() {
            for done in moves.into_iter().rev() {
                self.detach(done.vm, done.to);
                self.attach(done.vm, done.from);
            }
            return Err(unplaced);
        }
        for done in &moves {
            self.moved_before[done.vm.index()] = true;
        }
        // Live migrations first, then restarts (CloudStack: migrate the VMs with tools, then shut
        // down the others), then the local-storage shutdowns right before maintenance.
        let mut actions: Vec<Action> = movers
            .iter()
            .zip(&moves)
            .map(|((vm, kind), done)| Action {
                vm: *vm,
                kind: *kind,
                from: host,
                to: Some(done.to),
            })
            .collect();
        actions.sort_by_key(|a| a.kind == ActionKind::Restart);
        actions.extend(shutdowns.into_iter().map(|vm| Action {
            vm,
            kind: ActionKind::Shutdown,
            from: host,
            to: None,
        }));
        Ok(actions)
    }

    /// The hosts of a finished wave now run the target version and, unless they were in
    /// maintenance before, receive VMs again (their shut-down VMs start on them first).
    pub(super) fn finish_upgrade(&mut self, hosts: &[HostId]) {
        for host in hosts {
            self.version_rank[host.index()] = self.target_rank;
            self.enter_pool(*host);
        }
    }
}
