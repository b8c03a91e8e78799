//! The cluster model: hosts, VMs, the upgrade policy, as plain data.
//!
//! Hosts and VMs are addressed by dense indices (`HostId`, `VmId`) so that the planner can work on
//! hundreds of thousands of VMs with flat vectors. This module knows no file format and no platform.

use std::collections::BTreeMap;

use crate::version::Version;

/// Index of a host in [`Cluster::hosts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub u32);

/// Index of a VM in [`Cluster::vms`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmId(pub u32);

impl HostId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl VmId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a host does for the cluster; control-plane hosts are upgraded first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostRole {
    /// The pool master (XenServer) / primary manager: upgraded first, alone.
    Master,
    /// A management / control-plane node: upgraded after the master, one at a time.
    Management,
    /// A compute node.
    Compute,
}

/// The administrative state of a host as observed before planning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostState {
    Up,
    /// Already in maintenance: upgraded, returned to maintenance, never a migration target.
    Maintenance,
    /// Unreachable or powered off: cannot be upgraded, left out of the plan.
    Down,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub name: String,
    pub role: HostRole,
    pub version: Version,
    pub memory_mib: u64,
    pub cpus: u32,
    pub state: HostState,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmState {
    Running,
    Stopped,
}

/// Whether the platform starts the VM again by itself after a shutdown (KubeVirt runStrategy Always).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestartPolicy {
    Always,
    Manual,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Vm {
    pub name: String,
    pub host: HostId,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub state: VmState,
    pub migratable: bool,
    pub local_storage: bool,
    pub restart_policy: RestartPolicy,
    pub anti_affinity: Option<String>,
}

impl Vm {
    pub fn is_running(&self) -> bool {
        self.state == VmState::Running
    }
}

/// How many hosts may be unavailable at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxUnavailable {
    Count(u32),
    /// The largest batch that the cluster's spare capacity allows.
    Auto,
}

/// The knobs of a rolling upgrade. Durations feed the simulator; the planner uses the limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub max_unavailable: MaxUnavailable,
    /// vCPUs placed on a host may reach `cpu_overcommit × cpus`.
    pub cpu_overcommit: f64,
    /// Let Drover resolve resolvable precheck failures itself (XenServer's "Resolve All"):
    /// VMs that can neither migrate nor restart elsewhere are shut down and started again on
    /// their own host after its upgrade.
    pub auto_resolve: bool,
    pub upgrade_duration_secs: u64,
    pub reboot_duration_secs: u64,
    pub migration_bandwidth_mib_per_sec: u64,
    /// Fixed cost of one live migration on top of copying memory (setup, switch-over).
    pub migration_overhead_secs: u64,
    pub max_concurrent_migrations_per_host: u32,
    pub max_concurrent_migrations_per_cluster: u32,
    pub vm_shutdown_secs: u64,
    pub vm_boot_secs: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_unavailable: MaxUnavailable::Count(1),
            cpu_overcommit: 4.0,
            auto_resolve: false,
            // Oracle PCA: "The update takes approximately 30 minutes for each compute node."
            upgrade_duration_secs: 30 * 60,
            reboot_duration_secs: 5 * 60,
            // About 10 Gbit/s of migration network.
            migration_bandwidth_mib_per_sec: 1_000,
            migration_overhead_secs: 5,
            max_concurrent_migrations_per_host: 2,
            max_concurrent_migrations_per_cluster: 64,
            vm_shutdown_secs: 60,
            vm_boot_secs: 45,
        }
    }
}

/// Everything the planner needs to know: the target, the policy, and the observed hosts and VMs.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub target_version: Version,
    pub policy: Policy,
    pub hosts: Vec<Host>,
    pub vms: Vec<Vm>,
}

impl Cluster {
    pub fn host(&self, id: HostId) -> &Host {
        &self.hosts[id.index()]
    }

    pub fn vm(&self, id: VmId) -> &Vm {
        &self.vms[id.index()]
    }

    pub fn host_ids(&self) -> impl Iterator<Item = HostId> + '_ {
        (0..self.hosts.len() as u32).map(HostId)
    }

    pub fn vm_ids(&self) -> impl Iterator<Item = VmId> + '_ {
        (0..self.vms.len() as u32).map(VmId)
    }

    pub fn host_named(&self, name: &str) -> Option<HostId> {
        self.hosts
            .iter()
            .position(|h| h.name == name)
            .map(|i| HostId(i as u32))
    }

    /// The vCPU capacity of a host under the policy's overcommit ratio.
    pub fn vcpu_capacity(&self, id: HostId) -> u64 {
        (self.host(id).cpus as f64 * self.policy.cpu_overcommit).floor() as u64
    }

    /// Whether a host takes part in the upgrade: reachable and older than the target.
    pub fn needs_upgrade(&self, id: HostId) -> bool {
        let host = self.host(id);
        host.state != HostState::Down && host.version < self.target_version
    }
}
