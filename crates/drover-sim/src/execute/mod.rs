//! Virtual-time execution of a plan: a discrete-event simulation that checks the safety rules
//! itself, independently of the planner and of `drover_core::check`.
//!
//! # Model
//! - Time is whole seconds (`u64`) of virtual time from the start of the plan; nothing sleeps and
//!   the wall clock is never read.
//! - Waves run in plan order. A wave starts when every host of the previous wave is back in service
//!   and the VMs shut down for it have booted again.
//! - At the start of a wave every host of the wave starts its evacuation:
//!   - live migrations start in plan order, at most `policy.max_concurrent_migrations_per_host`
//!     at once per source host and `policy.max_concurrent_migrations_per_cluster` at once in the
//!     cluster (hosts take turns); a migration takes
//!     `migration_overhead_secs + memory_mib / migration_bandwidth_mib_per_sec`. These limits
//!     apply to live migrations only: guest shutdowns and boots put no load on the migration network.
//!   - restarts shut the VM down at once (`vm_shutdown_secs`) and boot it on its destination
//!     (`vm_boot_secs`); its downtime is both.
//!   - shutdowns (local storage, resolved unmovable VMs) begin when every other VM has left the
//!     host, so that their downtime is as short as the plan allows; the VM stays down until its
//!     host is back in service and it has booted there again (`vm_boot_secs`).
//!   - suspends (`unmovable: suspend`) run where shutdowns do, but write the VM's memory out
//!     and read it back instead of shutting down and booting: each takes the migration overhead
//!     plus the VM's memory at the migration bandwidth;
//!   - shelves (`unmovable: shelve`) run like restarts (`vm_shutdown_secs`, then `vm_boot_secs`
//!     on the destination); the image the platform keeps is not modelled (no disk sizes).
//! - Returns (`Wave::returns`) start once every host of the wave is back in service: live
//!   migrations under the same per-host and per-cluster limits, in plan order; the next wave
//!   starts when they have all finished.
//! - A host whose last VM has left enters maintenance, upgrades (`upgrade_duration_secs`), reboots
//!   (`reboot_duration_secs`), then runs the target version and leaves maintenance (a host that
//!   was in maintenance before the plan returns to maintenance instead and receives no VM).
//! - Every duration is multiplied by a factor drawn uniformly in [0.9, 1.1] from a ChaCha8 stream
//!   seeded with `seed`, then rounded to the second. Seed 0 means no jitter: nominal durations.
//!   The same seed always gives the same report.
//!
//! # Invariants checked on every change of state
//! - memory and vCPUs of the VMs on a host stay within `memory_mib` and `floor(cpus × cpu_overcommit)`,
//!   counting a migrating VM on both its source and its destination (what hypervisors reserve),
//!   and a booting VM on the host it boots on; a host a VM migrates or restarts to stays within
//!   its headroom (`Cluster::placement_memory_limit_mib`: the policy's reserve and maximum fill);
//! - a VM only lands on a host that is up, not in maintenance, not in the current wave, and whose
//!   current version is the same as or newer than its source's current version;
//! - two running VMs of one anti-affinity group never share a host, unless both started the plan on it;
//! - no more hosts are unavailable at once than the plan's `summary.max_unavailable`;
//! - each action's VM is running on its source when the wave starts; no VM is lost or runs twice;
//! - at the end, every host of the plan runs the target version.
//!
//! Only increases of a host's load are checked against its capacity: a host already over capacity
//! in the observed cluster is the cluster's fault, not the plan's, until the plan adds to it.
//!
//! This module must not know the planner's strategy (it reads only the `Plan` data) and does no IO.

mod run;
mod world;

use drover_core::{ActionKind, Cluster, HostId, Plan, VmId};

use crate::SimError;

/// Virtual time, in whole seconds from the start of the plan.
pub type Seconds = u64;

/// What happened at one instant of the simulation. Used to replay the run as a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimEventKind {
    WaveStarted,
    MigrationStarted,
    MigrationFinished,
    VmShutdownStarted,
    VmShutDown,
    VmBootStarted,
    VmStarted,
    HostEnteredMaintenance,
    HostUpgradeStarted,
    HostRebootStarted,
    HostRebooted,
    HostBackInService,
    /// A host that was in maintenance before the plan goes back to maintenance after its upgrade.
    HostReturnedToMaintenance,
    WaveFinished,
}

impl SimEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SimEventKind::WaveStarted => "wave-started",
            SimEventKind::MigrationStarted => "migration-started",
            SimEventKind::MigrationFinished => "migration-finished",
            SimEventKind::VmShutdownStarted => "vm-shutdown-started",
            SimEventKind::VmShutDown => "vm-shut-down",
            SimEventKind::VmBootStarted => "vm-boot-started",
            SimEventKind::VmStarted => "vm-started",
            SimEventKind::HostEnteredMaintenance => "host-entered-maintenance",
            SimEventKind::HostUpgradeStarted => "host-upgrade-started",
            SimEventKind::HostRebootStarted => "host-reboot-started",
            SimEventKind::HostRebooted => "host-rebooted",
            SimEventKind::HostBackInService => "host-back-in-service",
            SimEventKind::HostReturnedToMaintenance => "host-returned-to-maintenance",
            SimEventKind::WaveFinished => "wave-finished",
        }
    }
}

/// One event of the run. `host` is the host the event is about (a migration's source, a VM's host);
/// `destination` is set for migrations and restarts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimEvent {
    pub at_secs: Seconds,
    pub kind: SimEventKind,
    pub host: Option<HostId>,
    pub destination: Option<HostId>,
    pub vm: Option<VmId>,
    /// Index into `plan.waves` (0-based).
    pub wave: usize,
}

/// When each phase of one host's upgrade happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTimeline {
    pub host: HostId,
    /// Index into `plan.waves` (0-based).
    pub wave: usize,
    pub evacuation_started_secs: Seconds,
    /// The last VM left; the host entered maintenance.
    pub evacuation_finished_secs: Seconds,
    pub upgrade_started_secs: Seconds,
    pub reboot_finished_secs: Seconds,
    pub back_in_service_secs: Seconds,
}

/// A span during which a VM's guest was not running (restarts and shutdowns; migrations have none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DowntimeEvent {
    pub vm: VmId,
    /// The host the VM was on when it went down.
    pub host: HostId,
    pub kind: ActionKind,
    pub started_secs: Seconds,
    pub ended_secs: Seconds,
}

impl DowntimeEvent {
    pub fn duration_secs(&self) -> Seconds {
        self.ended_secs - self.started_secs
    }
}

/// The outcome of a simulated run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimReport {
    /// From the start of the first wave to the end of the last one.
    pub makespan_secs: Seconds,
    pub migrations: usize,
    pub restarts: usize,
    pub shutdowns: usize,
    /// VMs suspended for their host's upgrade and resumed on it.
    pub suspends: usize,
    /// VMs shelved and unshelved on another host.
    pub shelves: usize,
    /// Returns (`Wave::returns`): live migrations back to a VM's upgraded home host after its
    /// wave; not counted in `migrations`.
    pub returns: usize,
    /// The most hosts in maintenance (upgrading or rebooting) at the same time.
    pub peak_hosts_unavailable: usize,
    /// One entry per host of the plan, in plan order.
    pub hosts: Vec<HostTimeline>,
    /// In the order the VMs came back.
    pub downtime: Vec<DowntimeEvent>,
    /// Sorted by time; events at the same second are in the order they happened.
    pub events: Vec<SimEvent>,
}

impl SimReport {
    /// The sum of every VM's downtime.
    pub fn total_downtime_secs(&self) -> Seconds {
        self.downtime.iter().map(DowntimeEvent::duration_secs).sum()
    }
}

/// Runs `plan` on `cluster` in virtual time; `seed` draws the duration jitter (0: none).
///
/// Refuses an infeasible plan and fails with [`SimError::InvariantBroken`] as soon as a safety
/// rule breaks (see the module documentation for the model and the rules).
pub fn simulate(cluster: &Cluster, plan: &Plan, seed: u64) -> Result<SimReport, SimError> {
    if !plan.is_feasible() {
        return Err(SimError::InfeasiblePlan {
            failed_prechecks: plan
                .failed_prechecks()
                .map(|check| format!("{}: {}", check.id, check.message))
                .collect(),
        });
    }
    check_references(cluster, plan)?;
    let mut simulation = run::Simulation::new(cluster, plan, seed);
    for wave in 0..plan.waves.len() {
        simulation.run_wave(wave)?;
    }
    simulation.finish()
}

/// Every id in the plan must index into the cluster, so that the run can never panic on one.
fn check_references(cluster: &Cluster, plan: &Plan) -> Result<(), SimError> {
    let unknown = |message: String| Err(SimError::UnknownReference { message });
    let host_known = |host: HostId| host.index() < cluster.hosts.len();
    for (index, wave) in plan.waves.iter().enumerate() {
        let number = index + 1;
        if let Some(host) = wave.hosts.iter().find(|h| !host_known(**h)) {
            return unknown(format!("wave {number} names host #{}", host.0));
        }
        for action in wave.actions.iter().chain(&wave.returns) {
            if action.vm.index() >= cluster.vms.len() {
                return unknown(format!("wave {number} names VM #{}", action.vm.0));
            }
            if !host_known(action.from) || action.to.is_some_and(|to| !host_known(to)) {
                return unknown(format!(
                    "wave {number}: an action of VM {} names a host the cluster does not have",
                    cluster.vm(action.vm).name
                ));
            }
        }
    }
    Ok(())
}
