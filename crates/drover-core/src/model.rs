//! The cluster model: hosts, VMs, the upgrade policy, as plain data.
//!
//! Hosts and VMs are addressed by dense indices (`HostId`, `VmId`) so that the planner can work on
//! hundreds of thousands of VMs with flat vectors. This module knows no file format and no platform.

use std::collections::{BTreeMap, BTreeSet};

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
    /// Allocation disabled (cordoned): never a migration target.
    pub cordoned: bool,
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

/// What the operator asks for a VM that cannot live-migrate (inventory `unmovable:`). Absent,
/// the VM keeps the default: shut down on its own host with local storage, restarted elsewhere
/// when the platform restarts it (`restart_policy: always`), else shut down with the operator's
/// consent (`auto_resolve`). A per-VM key, not a platform capability: whether a guest may lose
/// its memory (shutdown) or its host for a while (shelve) is the operator's call, and the
/// platform's support is checked separately, before the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unmovable {
    /// Shut down, started again on its own host after that host's upgrade.
    Shutdown,
    /// Memory saved to disk (XAPI `VM.suspend`), resumed on its own host after the upgrade:
    /// no boot, the guest's processes keep running from where they stopped.
    Suspend,
    /// Stopped and offloaded by the platform (Nova `shelve`), which keeps its disk and identity,
    /// then brought back (`unshelve`) on a planned host with room, as a restart would be.
    Shelve,
    /// Shut down, started on another host at once.
    Restart,
}

impl Unmovable {
    pub fn as_str(self) -> &'static str {
        match self {
            Unmovable::Shutdown => "shutdown",
            Unmovable::Suspend => "suspend",
            Unmovable::Shelve => "shelve",
            Unmovable::Restart => "restart",
        }
    }
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
    /// What to do when the VM cannot live-migrate; `None` keeps the default (see [`Unmovable`]).
    pub unmovable: Option<Unmovable>,
    pub anti_affinity: Option<String>,
    /// The hosts this VM may run on, sorted, its own host among them; `None` means any host.
    /// Ganeti DRBD instances ({primary, secondary}: a move swaps the two, which the driver keeps),
    /// oVirt pinning and affinity, KubeVirt node selectors and CloudStack host tags all come down
    /// to this set.
    pub allowed_hosts: Option<Vec<HostId>>,
}

impl Vm {
    pub fn is_running(&self) -> bool {
        self.state == VmState::Running
    }

    /// Whether the VM may run on `host` (always, when it has no host constraint).
    pub fn may_run_on(&self, host: HostId) -> bool {
        self.allowed_hosts
            .as_ref()
            .is_none_or(|allowed| allowed.binary_search(&host).is_ok())
    }
}

/// How many hosts may be unavailable at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxUnavailable {
    Count(u32),
    /// A share of the cluster's hosts (`10%`), resolved by [`HostShare::hosts_of`].
    Percent(u32),
    /// The largest batch that the cluster's spare capacity allows, up to
    /// `policy.max_unavailable_auto_ceiling`.
    Auto,
}

/// A number of hosts, given as a count or as a percentage of the cluster's hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostShare {
    Hosts(u32),
    Percent(u32),
}

impl HostShare {
    /// The number of hosts this share means in a cluster of `host_count` hosts: a percentage is
    /// rounded down (as Kubernetes rounds `maxUnavailable`), and the result is at least 1 so that
    /// a small cluster can still be upgraded.
    pub fn hosts_of(self, host_count: usize) -> u32 {
        let hosts = match self {
            HostShare::Hosts(count) => count as u64,
            HostShare::Percent(percent) => host_count as u64 * percent as u64 / 100,
        };
        hosts.clamp(1, u32::MAX as u64) as u32
    }

    /// The share as written in an inventory: `12` or `10%`.
    pub fn to_text(self) -> String {
        match self {
            HostShare::Hosts(count) => count.to_string(),
            HostShare::Percent(percent) => format!("{percent}%"),
        }
    }
}

/// Who runs the installer on each host (XenServer's automatic and manual modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpgradeMode {
    /// Drover runs the upgrade step itself through the driver.
    Automatic,
    /// The run pauses at each host's upgrade step until `drover continue HOST`.
    Manual,
}

/// Whether a run starts right after planning or waits for `drover approve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApprovalMode {
    Automatic,
    Manual,
}

/// A weekly maintenance window such as `Sat 22:00-06:00`: it opens on the given days at
/// `start_minute` (minutes after local midnight) and lasts until `end_minute`, on the next day
/// when `end_minute <= start_minute`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MaintenanceWindow {
    /// Days the window opens, 0 = Monday … 6 = Sunday.
    pub days: Vec<u8>,
    pub start_minute: u16,
    pub end_minute: u16,
}

impl MaintenanceWindow {
    /// Whether this window is open at a local time, given as the weekday (0 = Monday) and the
    /// minute after midnight. Pure arithmetic; the caller converts the clock to local time.
    pub fn is_open_at(&self, weekday: u8, minute: u16) -> bool {
        let opens_today = self.days.contains(&weekday);
        let opened_yesterday = self.days.contains(&((weekday + 6) % 7));
        if self.start_minute < self.end_minute {
            opens_today && minute >= self.start_minute && minute < self.end_minute
        } else {
            (opens_today && minute >= self.start_minute)
                || (opened_yesterday && minute < self.end_minute)
        }
    }
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
    pub mode: UpgradeMode,
    pub approval: ApprovalMode,
    /// Tries of one step (the first included) before its host fails.
    pub max_step_attempts: u32,
    pub retry_backoff_initial_secs: u64,
    pub retry_backoff_max_secs: u64,
    /// Timeout of quick steps: cordon, maintenance, facts, health check, VM start, discovery.
    pub step_timeout_secs: u64,
    pub migration_timeout_secs: u64,
    pub upgrade_timeout_secs: u64,
    pub reboot_timeout_secs: u64,
    /// Graceful shutdown time before a VM is forced off.
    pub vm_shutdown_timeout_secs: u64,
    /// A migration with no host able to take it fails after this (KubeVirt: 5 minutes).
    pub unschedulable_timeout_secs: u64,
    /// Any other pending action fails after this (KubeVirt: 15 minutes).
    pub pending_timeout_secs: u64,
    /// Restarts (evictions) per interval (OpenShift Virtualization: 10 per minute).
    pub batch_eviction_size: u32,
    pub batch_eviction_interval_secs: u64,
    /// No new host starts outside these windows; empty means always.
    pub windows: Vec<MaintenanceWindow>,
    /// IANA time zone the windows are written in.
    pub time_zone: String,
    /// Upgrade only these hosts (by name); `None` means every host older than the target.
    /// oVirt's Upgrade Manager upgrades one host at a time this way.
    pub only_hosts: Option<BTreeSet<String>>,
    /// Hosts already at the target that are upgraded all the same: they have package updates
    /// (`drover check`) or the operator forces them (`--force-host`).
    pub force_hosts: BTreeSet<String>,
    /// After the last host, set the cluster's compatibility level to this (oVirt raises it once
    /// every host runs the new version); `None` leaves it alone.
    pub raise_compatibility_level_to: Option<String>,
    /// The most hosts `max_unavailable: auto` takes down at once, however much room there is:
    /// spare capacity alone once took 249 of 1,001 hosts down together.
    pub max_unavailable_auto_ceiling: HostShare,
    /// Memory every host keeps free of VMs Drover places or moves there (hypervisor, ballooning).
    pub host_memory_reserve_mib: u64,
    /// Drover never fills a host's memory above this share by placing or moving VMs onto it.
    pub host_memory_max_fill_percent: u32,
    /// Upgrade one host per wave whatever `max_unavailable` says: the platform's own upgrade tool
    /// refuses concurrent upgrades (Oracle PCA's `pca-admin update compute-node`).
    pub one_host_at_a_time: bool,
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
            mode: UpgradeMode::Automatic,
            approval: ApprovalMode::Automatic,
            max_step_attempts: 3,
            retry_backoff_initial_secs: 5,
            retry_backoff_max_secs: 300,
            step_timeout_secs: 300,
            migration_timeout_secs: 900,
            upgrade_timeout_secs: 2 * 3600,
            reboot_timeout_secs: 1200,
            vm_shutdown_timeout_secs: 120,
            unschedulable_timeout_secs: 300,
            pending_timeout_secs: 900,
            batch_eviction_size: 10,
            batch_eviction_interval_secs: 60,
            windows: Vec::new(),
            time_zone: "UTC".to_string(),
            only_hosts: None,
            force_hosts: BTreeSet::new(),
            raise_compatibility_level_to: None,
            // One host in ten: Kubernetes' and OpenShift's rolling defaults are far lower still.
            max_unavailable_auto_ceiling: HostShare::Percent(10),
            host_memory_reserve_mib: 0,
            // Room for the hypervisor's own growth, ballooning and the next host failure.
            host_memory_max_fill_percent: 90,
            one_host_at_a_time: false,
        }
    }
}

/// A kind of platform setting that must be off while hosts are rolled (the prechecks of
/// XenServer's Rolling Pool Upgrade): the platform's own high availability or load balancing
/// would move or restart VMs behind Drover's back, and removable media pins a VM to its host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SettingKind {
    /// The pool's high availability (XenServer HA): restarts VMs and fences hosts by itself.
    HaEnabled,
    /// Workload balancing: moves VMs by itself.
    WlbEnabled,
    /// A VM's CD/DVD drive holds media (about one VM).
    VmMediaInserted,
    /// The cluster runs a scheduling policy other than its maintenance policy (oVirt's
    /// `cluster_maintenance`): the engine balances VMs and starts new ones during the roll.
    SchedulingPolicy,
    /// The cluster is not marked as upgrading (oVirt's `Cluster.upgrade_in_progress`, set by
    /// `ClusterService.upgrade`): the engine would not show the roll as a cluster upgrade. Drover
    /// marks it before the first host and clears the mark at the end, as the `cluster_upgrade`
    /// role does; harmless, so it never needs the operator's consent.
    ClusterUpgradeUnmarked,
    /// OpenShift Virtualization's automatic workload updates are on (the HyperConverged
    /// resource's `spec.workloadUpdateStrategy.workloadUpdateMethods` is not empty): KubeVirt
    /// migrates or evicts VMs by itself while the cluster is updated.
    WorkloadUpdateMethods,
    /// OpenShift's worker MachineConfigPool is not paused (`spec.paused` false): the Machine
    /// Config Operator would update and reboot workers by itself, in its own order, during the
    /// roll (only reported by a kubevirt driver with `node_update: machine-config-pool`).
    MachineConfigPoolUnpaused,
}

impl SettingKind {
    pub const ALL: [SettingKind; 7] = [
        SettingKind::HaEnabled,
        SettingKind::WlbEnabled,
        SettingKind::VmMediaInserted,
        SettingKind::SchedulingPolicy,
        SettingKind::ClusterUpgradeUnmarked,
        SettingKind::WorkloadUpdateMethods,
        SettingKind::MachineConfigPoolUnpaused,
    ];

    /// The name as written in inventories and prechecks (`ha-enabled`).
    pub fn name(self) -> &'static str {
        match self {
            SettingKind::HaEnabled => "ha-enabled",
            SettingKind::WlbEnabled => "wlb-enabled",
            SettingKind::VmMediaInserted => "vm-media-inserted",
            SettingKind::SchedulingPolicy => "scheduling-policy",
            SettingKind::ClusterUpgradeUnmarked => "cluster-upgrade-unmarked",
            SettingKind::WorkloadUpdateMethods => "workload-update-methods",
            SettingKind::MachineConfigPoolUnpaused => "machine-config-pool-unpaused",
        }
    }

    pub fn from_name(name: &str) -> Option<SettingKind> {
        SettingKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    /// Whether Drover puts the setting back after the run. Ejected media is not inserted again:
    /// the VM does not need it to run, and putting it back would block the next roll.
    pub fn is_restored(self) -> bool {
        !matches!(self, SettingKind::VmMediaInserted)
    }

    /// Whether the setting is about one VM (else about the whole pool).
    pub fn is_about_a_vm(self) -> bool {
        matches!(self, SettingKind::VmMediaInserted)
    }

    /// Whether Drover changes it without the operator's consent (`policy.auto_resolve`): only a
    /// mark that changes nothing the platform does.
    pub fn needs_no_consent(self) -> bool {
        matches!(self, SettingKind::ClusterUpgradeUnmarked)
    }
}

/// One blocking setting as observed: its kind and, for a VM's setting, the VM's name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlatformSetting {
    pub kind: SettingKind,
    /// The VM it is about (`None`: the whole pool).
    pub vm: Option<String>,
}

impl PlatformSetting {
    pub fn pool(kind: SettingKind) -> PlatformSetting {
        PlatformSetting { kind, vm: None }
    }

    pub fn of_vm(kind: SettingKind, vm: &str) -> PlatformSetting {
        PlatformSetting {
            kind,
            vm: Some(vm.to_string()),
        }
    }

    /// `ha-enabled`, or `vm-media-inserted on web-01`, for messages.
    pub fn label(&self) -> String {
        match &self.vm {
            Some(vm) => format!("{} on {vm}", self.kind.name()),
            None => self.kind.name().to_string(),
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
    /// Platform settings that block a roll, as observed (empty on platforms without any).
    pub settings: Vec<PlatformSetting>,
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

    /// The memory Drover may fill on a host by placing or moving VMs there: its memory less the
    /// reserve, and at most the maximum fill. VMs already there may exceed it; only what Drover
    /// adds is held to it.
    pub fn placement_memory_limit_mib(&self, id: HostId) -> u64 {
        let memory_mib = self.host(id).memory_mib;
        let fill_limit_mib =
            memory_mib as u128 * self.policy.host_memory_max_fill_percent.min(100) as u128 / 100;
        let reserve_limit_mib = memory_mib.saturating_sub(self.policy.host_memory_reserve_mib);
        (fill_limit_mib as u64).min(reserve_limit_mib)
    }

    /// The batch size `max_unavailable` asks for, before capacity is considered; `None` for `auto`.
    pub fn requested_max_unavailable(&self) -> Option<u32> {
        match self.policy.max_unavailable {
            MaxUnavailable::Count(count) => Some(count.max(1)),
            MaxUnavailable::Percent(percent) => {
                Some(HostShare::Percent(percent).hosts_of(self.hosts.len()))
            }
            MaxUnavailable::Auto => None,
        }
    }

    /// Whether a host takes part in the upgrade: reachable, older than the target, and selected
    /// (when the policy selects hosts).
    pub fn needs_upgrade(&self, id: HostId) -> bool {
        let host = self.host(id);
        let at_target_but_forced =
            host.version == self.target_version && self.policy.force_hosts.contains(&host.name);
        host.state != HostState::Down
            && (host.version < self.target_version || at_target_but_forced)
            && self.is_selected(id)
    }

    /// Whether the policy's host selection (if any) names this host.
    pub fn is_selected(&self, id: HostId) -> bool {
        self.policy
            .only_hosts
            .as_ref()
            .is_none_or(|names| names.contains(&self.host(id).name))
    }
}
