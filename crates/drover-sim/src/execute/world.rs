//! The simulated cluster's physical state — where each VM is, what each host carries, which
//! version it runs — and the safety rules checked on every change of it.
//!
//! It knows nothing of waves, time or the event queue: each change either succeeds or returns a
//! message that names the hosts and VMs involved, which the caller prefixes with its context.

use drover_core::{Cluster, HostId, Version, VmId};

/// Where a VM is in its life during the run. Every phase but `NotRunning` and `Down` occupies
/// memory and vCPUs on the host(s) it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VmPhase {
    /// Stopped before the plan and never touched by it.
    NotRunning,
    Running(HostId),
    /// Counted on both hosts while memory is copied.
    Migrating {
        from: HostId,
        to: HostId,
    },
    ShuttingDown(HostId),
    /// Shut down; will boot on this host once it is back in service.
    Down(HostId),
    Booting(HostId),
}

impl VmPhase {
    fn occupied_hosts(self) -> [Option<HostId>; 2] {
        match self {
            VmPhase::NotRunning | VmPhase::Down(_) => [None, None],
            VmPhase::Running(host) | VmPhase::ShuttingDown(host) | VmPhase::Booting(host) => {
                [Some(host), None]
            }
            VmPhase::Migrating { from, to } => [Some(from), Some(to)],
        }
    }
}

pub(super) struct World<'a> {
    cluster: &'a Cluster,
    phase: Vec<VmPhase>,
    memory_used_mib: Vec<u64>,
    vcpus_used: Vec<u64>,
    vcpu_capacity: Vec<u64>,
    /// VMs counted on each host, whatever their phase: a host is empty when this is 0.
    occupants: Vec<usize>,
    version: Vec<Version>,
    /// Interned anti-affinity group of each VM.
    group_of: Vec<Option<u32>>,
    /// Members of any group present on each host; groups are small, so a list is enough.
    group_members_on: Vec<Vec<(u32, VmId)>>,
}

impl<'a> World<'a> {
    pub(super) fn new(cluster: &'a Cluster) -> Self {
        let host_count = cluster.hosts.len();
        let mut world = World {
            cluster,
            phase: cluster
                .vms
                .iter()
                .map(|vm| match vm.is_running() {
                    true => VmPhase::Running(vm.host),
                    false => VmPhase::NotRunning,
                })
                .collect(),
            memory_used_mib: vec![0; host_count],
            vcpus_used: vec![0; host_count],
            vcpu_capacity: cluster
                .host_ids()
                .map(|h| cluster.vcpu_capacity(h))
                .collect(),
            occupants: vec![0; host_count],
            version: cluster.hosts.iter().map(|h| h.version.clone()).collect(),
            group_of: crate::groups::intern_anti_affinity_groups(cluster),
            group_members_on: vec![Vec::new(); host_count],
        };
        for vm in cluster.vm_ids() {
            if let VmPhase::Running(host) = world.phase[vm.index()] {
                // The observed placement is taken as it is; only the plan's changes are judged.
                world.add_load(vm, host);
            }
        }
        world
    }

    pub(super) fn phase(&self, vm: VmId) -> VmPhase {
        self.phase[vm.index()]
    }

    pub(super) fn set_phase(&mut self, vm: VmId, phase: VmPhase) {
        self.phase[vm.index()] = phase;
    }

    pub(super) fn occupants(&self, host: HostId) -> usize {
        self.occupants[host.index()]
    }

    pub(super) fn version(&self, host: HostId) -> &Version {
        &self.version[host.index()]
    }

    pub(super) fn upgrade(&mut self, host: HostId) {
        self.version[host.index()] = self.cluster.target_version.clone();
    }

    fn host_name(&self, host: HostId) -> &str {
        &self.cluster.host(host).name
    }

    fn vm_name(&self, vm: VmId) -> &str {
        &self.cluster.vm(vm).name
    }

    /// The same-or-newer rule: a VM never lands on a host older than the one it comes from.
    pub(super) fn check_version_rule(&self, from: HostId, to: HostId) -> Result<(), String> {
        let (source, destination) = (self.version(from), self.version(to));
        if destination < source {
            return Err(format!(
                "destination {} runs {destination}, older than source {} ({source})",
                self.host_name(to),
                self.host_name(from)
            ));
        }
        Ok(())
    }

    /// Counts `vm` on a host Drover moves it to (reservation for a migration, a restart's boot)
    /// and checks that the host stays within its headroom (the policy's reserve and maximum fill)
    /// and that no anti-affinity pair is formed.
    pub(super) fn land(&mut self, vm: VmId, host: HostId) -> Result<(), String> {
        self.check_anti_affinity(vm, host)?;
        self.add_load(vm, host);
        let limit_mib = self.cluster.placement_memory_limit_mib(host);
        self.check_capacity(host, vm, limit_mib, "its headroom limit")
    }

    /// Counts `vm` on its own host again (a shut-down VM's boot after the upgrade) and checks that
    /// the host stays within its memory and that no anti-affinity pair is formed.
    pub(super) fn occupy(&mut self, vm: VmId, host: HostId) -> Result<(), String> {
        self.check_anti_affinity(vm, host)?;
        self.add_load(vm, host);
        let memory_mib = self.cluster.host(host).memory_mib;
        self.check_capacity(host, vm, memory_mib, "its")
    }

    /// Stops counting `vm` on `host` (departure after a migration, end of a shutdown).
    pub(super) fn vacate(&mut self, vm: VmId, host: HostId) {
        let spec = self.cluster.vm(vm);
        let index = host.index();
        self.memory_used_mib[index] -= spec.memory_mib;
        self.vcpus_used[index] -= spec.vcpus as u64;
        self.occupants[index] -= 1;
        if self.group_of[vm.index()].is_some() {
            let members = &mut self.group_members_on[index];
            if let Some(position) = members.iter().position(|(_, member)| *member == vm) {
                members.swap_remove(position);
            }
        }
    }

    fn add_load(&mut self, vm: VmId, host: HostId) {
        let spec = self.cluster.vm(vm);
        let index = host.index();
        self.memory_used_mib[index] += spec.memory_mib;
        self.vcpus_used[index] += spec.vcpus as u64;
        self.occupants[index] += 1;
        if let Some(group) = self.group_of[vm.index()] {
            self.group_members_on[index].push((group, vm));
        }
    }

    fn check_capacity(
        &self,
        host: HostId,
        arriving: VmId,
        limit_mib: u64,
        limit_name: &str,
    ) -> Result<(), String> {
        let spec = self.cluster.host(host);
        let (memory, vcpus) = (
            self.memory_used_mib[host.index()],
            self.vcpus_used[host.index()],
        );
        let vcpu_limit = self.vcpu_capacity[host.index()];
        let arriving = self.vm_name(arriving);
        if memory > limit_mib {
            return Err(format!(
                "host {} would carry {memory} MiB with {arriving} (running, in-flight and booting \
                 VMs counted) > {limit_name} {limit_mib} MiB",
                spec.name
            ));
        }
        if vcpus > vcpu_limit {
            return Err(format!(
                "host {} would carry {vcpus} vCPUs with {arriving} > its limit {vcpu_limit}",
                spec.name
            ));
        }
        Ok(())
    }

    fn check_anti_affinity(&self, vm: VmId, host: HostId) -> Result<(), String> {
        let Some(group) = self.group_of[vm.index()] else {
            return Ok(());
        };
        let started_here = |member: VmId| self.cluster.vm(member).host == host;
        let clash = self.group_members_on[host.index()]
            .iter()
            .find(|(other_group, other)| {
                *other_group == group && *other != vm && !(started_here(vm) && started_here(*other))
            });
        match clash {
            Some((_, other)) => Err(format!(
                "{} and {} of anti-affinity group {} would both run on {}",
                self.vm_name(vm),
                self.vm_name(*other),
                self.cluster
                    .vm(vm)
                    .anti_affinity
                    .as_deref()
                    .unwrap_or_default(),
                self.host_name(host)
            )),
            None => Ok(()),
        }
    }

    /// A full recount from the VM phases, compared with the running totals: catches any VM that
    /// was lost, counted twice or left half-way through an operation.
    pub(super) fn audit(&self) -> Result<(), String> {
        let host_count = self.cluster.hosts.len();
        let mut memory = vec![0u64; host_count];
        let mut occupants = vec![0usize; host_count];
        for vm in self.cluster.vm_ids() {
            let phase = self.phase[vm.index()];
            let was_running = self.cluster.vm(vm).is_running();
            if was_running != matches!(phase, VmPhase::Running(_)) {
                return Err(format!(
                    "VM {} ends {phase:?}, but was {} before the plan",
                    self.vm_name(vm),
                    if was_running { "running" } else { "stopped" }
                ));
            }
            for host in phase.occupied_hosts().into_iter().flatten() {
                memory[host.index()] += self.cluster.vm(vm).memory_mib;
                occupants[host.index()] += 1;
            }
        }
        match self
            .cluster
            .host_ids()
            .find(|h| memory[h.index()] != self.memory_used_mib[h.index()] || occupants[h.index()] != self.occupants[h.index()])
        {
            Some(host) => Err(format!(
                "books of host {} disagree with the VMs on it: {} VMs / {} MiB counted, {} / {} found",
                self.host_name(host),
                self.occupants[host.index()],
                self.memory_used_mib[host.index()],
                occupants[host.index()],
                memory[host.index()]
            )),
            None => Ok(()),
        }
    }
}
