//! The planner's working copy of the cluster: where each running VM is, what each host has left,
//! which hosts can receive VMs, and a best-fit index over them.
//!
//! Receiving hosts are split into one pool of *final* hosts (at or above the target version: a VM
//! placed there never moves again) and one pool per older version. A VM from a host of version v
//! may go to any final host or to an old pool of version ≥ v (XenServer's same-or-newer rule).
//! Each pool is ordered by free memory so best fit is a range lookup.
//!
//! A VM with `allowed_hosts` looks only at those hosts (a short list, so no index is needed). It
//! may wait on an old host even after old hosts stopped receiving other VMs, because its only
//! allowed hosts may all be old (a Ganeti DRBD instance whose secondary is not upgraded yet); it
//! still moves at most twice, the second time to an upgraded host. When some VM has a constraint,
//! waves are chosen so that no VM loses every host it may go to (`take_compatible_hosts`), and a
//! host that cannot be emptied is deferred to a later wave instead of ending the wave there.

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
    /// How many times each VM moved so far, returns included: a return is only ever a VM's
    /// second move.
    move_count: Vec<u8>,
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
    /// Whether some running VM carries `allowed_hosts`; without one, waves are formed and
    /// evacuated exactly as before constraints existed.
    constrained: bool,
    /// For each host, the running constrained VMs that list it in `allowed_hosts` (empty when
    /// `constrained` is false).
    allowed_by_host: Vec<Vec<VmId>>,
    /// Scratch marks of the hosts of the wave being formed.
    in_wave: Vec<bool>,
}

/// The result of emptying a wave: the `emptied` hosts were emptied by `actions`, in wave order;
/// the `deferred` ones were not (they receive VMs again) and `unplaced` are the VMs of the first
/// of them that found no place.
pub(super) struct Evacuation {
    pub emptied: Vec<HostId>,
    pub deferred: Vec<HostId>,
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
            move_count: vec![0; cluster.vms.len()],
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
            constrained: false,
            allowed_by_host: Vec::new(),
            in_wave: vec![false; host_count],
        };
        let constrained_vms = cluster
            .vm_ids()
            .filter(|vm| cluster.vm(*vm).is_running() && cluster.vm(*vm).allowed_hosts.is_some());
        for vm in constrained_vms {
            if !placement.constrained {
                placement.constrained = true;
                placement.allowed_by_host = vec![Vec::new(); host_count];
            }
            for host in cluster.vm(vm).allowed_hosts.iter().flatten() {
                placement.allowed_by_host[host.index()].push(vm);
            }
        }
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
        if let Some(allowed) = &self.cluster.vm(vm).allowed_hosts {
            return self.find_allowed_target(vm, source, allowed);
        }
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
                .find(|host| {
                    *host != source && self.fits(vm, *host) && self.keeps_room_for_pairs(vm, *host)
                })
        })
    }

    /// For a VM allowed on exactly two hosts (a DRBD pair), the one of them that is not `host`.
    fn pair_partner(&self, vm: VmId, host: HostId) -> Option<HostId> {
        match self.cluster.vm(vm).allowed_hosts.as_deref() {
            Some([first, second]) if *first == host => Some(*second),
            Some([first, second]) if *second == host => Some(*first),
            _ => None,
        }
    }

    fn is_final(&self, host: HostId) -> bool {
        self.version_rank[host.index()] >= self.target_rank
    }

    /// Memory and vCPUs of the pair VMs that will come to `host` when their current host, not
    /// upgraded yet, is: they can go nowhere else.
    fn returning_to(&self, host: HostId) -> (u64, u64) {
        let mut load = (0, 0);
        for vm in &self.allowed_by_host[host.index()] {
            let on = self.vm_host[vm.index()];
            if on != host && self.pair_partner(*vm, host) == Some(on) && !self.is_final(on) {
                let spec = self.cluster.vm(*vm);
                load.0 += spec.memory_mib;
                load.1 += spec.vcpus as u64;
            }
        }
        load
    }

    /// In a constrained cluster a VM without a constraint leaves a host the room its pair VMs
    /// will need when they are forced back onto it (best fit would otherwise fill upgraded hosts
    /// to the brim and strand DRBD instances whose only other node is full).
    fn keeps_room_for_pairs(&self, vm: VmId, host: HostId) -> bool {
        if !self.constrained {
            return true;
        }
        let spec = self.cluster.vm(vm);
        let (memory, vcpus) = self.returning_to(host);
        let vcpus_left =
            self.vcpu_capacity[host.index()].saturating_sub(self.vcpus_used[host.index()] + vcpus);
        self.free_memory(host) >= spec.memory_mib + memory && vcpus_left >= spec.vcpus as u64
    }

    /// Whether `host`, upgraded now, can hold what stays on it and every pair VM that will end
    /// on it: each pair VM whose other host is not upgraded yet ends here (it comes back, or
    /// comes when its current host is upgraded). Upgrading a host before its partners fills it.
    fn holds_its_pairs(&self, host: HostId) -> bool {
        self.fill_with_its_pairs(host) <= 1.0
    }

    /// What `host` would hold after an upgrade now (see [`Self::holds_its_pairs`]), as a share
    /// of its headroom: memory or vCPUs, whichever is fuller.
    fn fill_with_its_pairs(&self, host: HostId) -> f64 {
        let (mut memory, mut vcpus) = (0u64, 0u64);
        for vm in &self.host_vms[host.index()] {
            if !self.must_leave(*vm) {
                memory += self.cluster.vm(*vm).memory_mib;
                vcpus += self.cluster.vm(*vm).vcpus as u64;
            }
        }
        for vm in &self.allowed_by_host[host.index()] {
            let partner_is_old = self
                .pair_partner(*vm, host)
                .is_some_and(|partner| !self.is_final(partner));
            if partner_is_old && self.must_leave(*vm) {
                memory += self.cluster.vm(*vm).memory_mib;
                vcpus += self.cluster.vm(*vm).vcpus as u64;
            }
        }
        let share = |used: u64, limit: u64| used as f64 / limit.max(1) as f64;
        share(memory, self.memory_limit_mib[host.index()])
            .max(share(vcpus, self.vcpu_capacity[host.index()]))
    }

    /// Best fit among a constrained VM's allowed hosts, in the order of [`Self::find_target`]:
    /// upgraded hosts first, then old ones of a version at least the source's, newest first,
    /// then the least free memory. Old hosts only for a VM that has not moved yet (no third
    /// move), but whether or not other VMs may still go there: its allowed hosts may all be old.
    fn find_allowed_target(&self, vm: VmId, source: HostId, allowed: &[HostId]) -> Option<HostId> {
        let memory = self.cluster.vm(vm).memory_mib;
        let lowest_old_pool = 1 + self.version_rank[source.index()].min(self.target_rank);
        let may_wait_on_old_host = !self.moved_before[vm.index()];
        allowed
            .iter()
            .copied()
            .filter(|host| *host != source)
            .filter_map(|host| {
                let pool = self.pool_of[host.index()]?;
                // Waiting on an old host is safe only if the VM can leave it again for its
                // upgrade: another allowed host must receive VMs then (its source, upgraded).
                let version_allows = pool == 0
                    || (may_wait_on_old_host
                        && pool >= lowest_old_pool
                        && allowed
                            .iter()
                            .any(|other| *other != host && self.receives[other.index()]));
                let free_memory = self.free_memory(host);
                (version_allows && free_memory >= memory && self.fits(vm, host)).then_some((
                    pool != 0,
                    std::cmp::Reverse(pool),
                    free_memory,
                    host,
                ))
            })
            .min()
            .map(|(_, _, _, host)| host)
    }

    /// How many hosts from the front of `queue` (at most `ceiling`) the receiving hosts outside
    /// them have room for, by the total memory and vCPUs of the VMs that must leave them: hosts
    /// not upgraded yet count only while they receive. An upper estimate (packing may empty
    /// fewer, and `evacuate` stops or defers there), at least one host.
    pub(super) fn hosts_with_room(
        &self,
        queue: &std::collections::VecDeque<HostId>,
        ceiling: usize,
        old_hosts_receive: bool,
    ) -> usize {
        let receives_now = |host: HostId| match self.pool_of[host.index()] {
            Some(pool) => pool == 0 || old_hosts_receive,
            None => false,
        };
        let free_vcpus = |host: HostId| {
            self.vcpu_capacity[host.index()].saturating_sub(self.vcpus_used[host.index()])
        };
        let (mut room_memory_mib, mut room_vcpus) = (0u64, 0u64);
        for host in self.cluster.host_ids().filter(|host| receives_now(*host)) {
            room_memory_mib += self.free_memory(host);
            room_vcpus += free_vcpus(host);
        }
        let (mut leaving_memory_mib, mut leaving_vcpus) = (0u64, 0u64);
        let mut fitting = 0;
        for host in queue.iter().copied().take(ceiling) {
            if receives_now(host) {
                room_memory_mib = room_memory_mib.saturating_sub(self.free_memory(host));
                room_vcpus = room_vcpus.saturating_sub(free_vcpus(host));
            }
            for vm in self.host_vms[host.index()].iter().copied() {
                if self.must_leave(vm) {
                    leaving_memory_mib += self.cluster.vm(vm).memory_mib;
                    leaving_vcpus += self.cluster.vm(vm).vcpus as u64;
                }
            }
            if leaving_memory_mib > room_memory_mib || leaving_vcpus > room_vcpus {
                break;
            }
            fitting += 1;
        }
        fitting.max(1)
    }

    /// Whether some running VM carries `allowed_hosts`.
    pub(super) fn is_constrained(&self) -> bool {
        self.constrained
    }

    /// Takes up to `wanted` hosts from the queue, skipping (and keeping in the queue, in order)
    /// every host that would leave some VM of the wave with no allowed host outside it: a VM on
    /// it whose other allowed hosts are all in the wave, or a VM on a host already taken that may
    /// go only to it and hosts in the wave. Only for constrained clusters.
    pub(super) fn take_compatible_hosts(
        &mut self,
        queue: &mut std::collections::VecDeque<HostId>,
        wanted: usize,
    ) -> Vec<HostId> {
        // Hosts that can hold their pairs' VMs first: upgrading a host ends its pairs' VMs on it
        // (each comes back or comes over when its partner is upgraded). When none can, any host
        // (its evacuation may still succeed, or fail naming what blocks it).
        let mut chosen = self.take_hosts_where(queue, wanted, |placement, host| {
            placement.joins_wave_safely(host) && placement.holds_its_pairs(host)
        });
        if chosen.is_empty() {
            chosen = self.take_hosts_where(queue, wanted, Self::joins_wave_safely);
        }
        if chosen.is_empty() && !queue.is_empty() {
            // No host can leave every VM a way out: take the first, whose evacuation fails and
            // names the VMs that block it.
            chosen.extend(queue.pop_front());
        }
        chosen
    }

    /// Takes up to `wanted` hosts that `joins` accepts from the queue, keeping the others in it in
    /// order.
    fn take_hosts_where(
        &mut self,
        queue: &mut std::collections::VecDeque<HostId>,
        wanted: usize,
        joins: impl Fn(&Self, HostId) -> bool,
    ) -> Vec<HostId> {
        let mut chosen = Vec::with_capacity(wanted);
        let mut skipped = std::collections::VecDeque::new();
        while let Some(host) = queue.pop_front() {
            if joins(self, host) {
                self.in_wave[host.index()] = true;
                chosen.push(host);
                if chosen.len() == wanted {
                    break;
                }
            } else {
                skipped.push_back(host);
            }
        }
        for host in &chosen {
            self.in_wave[host.index()] = false;
        }
        skipped.extend(queue.drain(..));
        *queue = skipped;
        chosen
    }

    /// Whether a VM must leave its host when the host goes down (it migrates or restarts).
    fn must_leave(&self, vm: VmId) -> bool {
        matches!(
            disposition_in(self.cluster, self.cluster.vm(vm)),
            Disposition::Migrate | Disposition::Restart | Disposition::Shelve
        )
    }

    /// Whether a constrained VM on `from` keeps an allowed host outside the wave (and other than
    /// `also_leaving`) that receives VMs at all.
    fn keeps_a_way_out(&self, vm: VmId, from: HostId, also_leaving: HostId) -> bool {
        let allowed = self.cluster.vm(vm).allowed_hosts.iter().flatten();
        allowed.copied().any(|host| {
            host != from
                && host != also_leaving
                && !self.in_wave[host.index()]
                && self.receives[host.index()]
        })
    }

    fn joins_wave_safely(&self, host: HostId) -> bool {
        let own_vms_keep_a_way_out = self.host_vms[host.index()].iter().all(|vm| {
            self.cluster.vm(*vm).allowed_hosts.is_none()
                || !self.must_leave(*vm)
                || self.keeps_a_way_out(*vm, host, host)
        });
        own_vms_keep_a_way_out
            && self.allowed_by_host[host.index()].iter().all(|vm| {
                let from = self.vm_host[vm.index()];
                !self.in_wave[from.index()]
                    || !self.must_leave(*vm)
                    || self.keeps_a_way_out(*vm, from, host)
            })
    }

    /// Empties the given hosts in order, one action per running VM, largest VM first within each
    /// host. All of them stop receiving VMs first, so no VM lands on a host of the same wave.
    /// Stops at the first host whose VMs cannot all be placed: that host's moves are undone and it
    /// and the hosts after it receive VMs again. One pass, so a huge batch costs one placement.
    /// `old_hosts_receive`: whether a VM that has not moved yet may wait on a host not upgraded.
    ///
    /// In a constrained cluster a host that cannot be emptied is deferred instead (it receives
    /// VMs again) and the hosts after it are still emptied: a host whose VMs wait for a partner
    /// that is in this wave or not upgraded yet should not cut the wave short.
    pub(super) fn evacuate(&mut self, hosts: &[HostId], old_hosts_receive: bool) -> Evacuation {
        self.old_hosts_receive = old_hosts_receive;
        for host in hosts {
            self.leave_pool(*host);
        }
        let mut evacuation = Evacuation {
            emptied: Vec::with_capacity(hosts.len()),
            deferred: Vec::new(),
            actions: Vec::new(),
            unplaced: Vec::new(),
        };
        for (index, host) in hosts.iter().enumerate() {
            match self.evacuate_one(*host) {
                Ok(host_actions) => {
                    evacuation.actions.extend(host_actions);
                    evacuation.emptied.push(*host);
                }
                Err(unplaced) if self.constrained => {
                    self.enter_pool(*host);
                    evacuation.deferred.push(*host);
                    if evacuation.unplaced.is_empty() {
                        evacuation.unplaced = unplaced;
                    }
                }
                Err(unplaced) => {
                    for later in &hosts[index..] {
                        self.enter_pool(*later);
                    }
                    evacuation.deferred.extend_from_slice(&hosts[index..]);
                    evacuation.unplaced = unplaced;
                    return evacuation;
                }
            }
        }
        evacuation
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
                Disposition::Restart => restarts.push((vm, ActionKind::Restart)),
                Disposition::Shelve => restarts.push((vm, ActionKind::Shelve)),
                Disposition::Shutdown => shutdowns.push((vm, ActionKind::Shutdown)),
                Disposition::Suspend => shutdowns.push((vm, ActionKind::Suspend)),
                Disposition::Blocked => blocked.push(vm),
            }
        }
        if !blocked.is_empty() {
            return Err(blocked);
        }
        let mut movers: Vec<(VmId, ActionKind)> = migrations
            .into_iter()
            .map(|vm| (vm, ActionKind::Migrate))
            .chain(restarts)
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
            self.move_count[done.vm.index()] += 1;
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
        actions.sort_by_key(|a| a.kind.starts_elsewhere());
        actions.extend(shutdowns.into_iter().map(|(vm, kind)| Action {
            vm,
            kind,
            from: host,
            to: None,
        }));
        Ok(actions)
    }

    /// Returns after a wave whose hosts are upgraded and receive again (`Wave::returns`): every
    /// constrained VM that `actions` live-migrated off a wave host onto a host not upgraded yet,
    /// and that moved only that once, goes back to the wave host when it can take it (memory
    /// within the headroom, vCPUs, anti-affinity; it is an allowed host, and upgraded). The VM
    /// would have to leave the old host again in that host's own wave, so a return adds no move:
    /// it makes the second move earlier, the next wave starts from the home placement (as
    /// hroller assumes) and the old host has its own room back for its own wave. A VM that went
    /// to an upgraded host stays there (it never moves again). Nothing for clusters without
    /// constraints, so their plans are unchanged.
    pub(super) fn return_home(&mut self, actions: &[Action]) -> Vec<Action> {
        if !self.constrained {
            return Vec::new();
        }
        let mut returns = Vec::new();
        for action in actions {
            let (vm, home) = (action.vm, action.from);
            let Some(at) = action.to else { continue };
            let waits_on_old_host = action.kind == ActionKind::Migrate
                && self.cluster.vm(vm).allowed_hosts.is_some()
                && self.vm_host[vm.index()] == at
                && self.move_count[vm.index()] == 1
                && !self.is_final(at);
            if waits_on_old_host {
                self.try_return(vm, at, home, &mut returns);
            }
        }
        returns
    }

    /// Moves `vm` from `at` back to `home` when home can take it, and records the return.
    fn try_return(&mut self, vm: VmId, at: HostId, home: HostId, returns: &mut Vec<Action>) {
        let takes = self.pool_of[home.index()] == Some(0)
            && self.free_memory(home) >= self.cluster.vm(vm).memory_mib
            && self.fits(vm, home);
        if !takes {
            return;
        }
        self.detach(vm, at);
        self.attach(vm, home);
        self.move_count[vm.index()] += 1;
        returns.push(Action {
            vm,
            kind: ActionKind::Migrate,
            from: at,
            to: Some(home),
        });
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
