//! The invariants checked after the fact, on a simulated platform's recorded history: the world
//! is rebuilt event by event from its initial state, and the checker looks at every instant, as
//! the DST harness does while it drives. For runs this harness does not drive itself — several
//! `drover serve` instances taking a run over from each other, a process killed and resumed —
//! whose only witness is the platform's saved state.
//!
//! The rebuilt world must end where the saved one is (same hosts, VMs, versions, states), or the
//! replay itself is reported as wrong: a check that passes on a world it did not rebuild faithfully
//! would prove nothing. Must not know the engine or the store.

use std::collections::{BTreeMap, BTreeSet};

use drover_core::{Cluster, Version};
use drover_sim::driver::{
    HistoryEvent, HistoryEventKind, HostSnapshot, PlatformHostState, VmSnapshot, WorldSnapshot,
};

use crate::invariants::Checker;

/// How a run ended, for the end-of-run checks.
pub struct RunEnd<'a> {
    pub completed: bool,
    pub skipped: &'a BTreeSet<String>,
    pub unrestorable: &'a BTreeSet<String>,
}

/// Checks every instant of `last`'s history, starting from `initial` (the platform before the
/// run, its history empty or a prefix of `last`'s), then the end of the run.
pub fn check_recorded_run(
    cluster: &Cluster,
    initial: &WorldSnapshot,
    last: &WorldSnapshot,
    max_unavailable: usize,
    end: &RunEnd<'_>,
) -> Result<(), String> {
    let mut checker = Checker::new(cluster, initial.clone(), max_unavailable);
    let mut world = Rebuilt::from(initial);
    let mut seen = initial.clone();
    for (index, event) in last.history.iter().enumerate().skip(initial.history.len()) {
        world
            .apply(event)
            .map_err(|error| format!("history event {index} ({:?}): {error}", event.kind))?;
        seen.now_ms = event.at_ms;
        seen.hosts = world.hosts();
        seen.vms = world.vms();
        seen.history.push(event.clone());
        checker
            .check_step(&seen)
            .map_err(|error| format!("at {} ms (history event {index}): {error}", event.at_ms))?;
    }
    world.require_same_as(last)?;
    checker.check_end(last, end.completed, end.skipped, end.unrestorable)?;
    checker.check_compatibility_level(last, end.completed)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Power {
    Up,
    Rebooting,
    Down,
}

struct RebuiltHost {
    version: Version,
    boot_id: String,
    power: Power,
    in_maintenance: bool,
    cordoned: bool,
}

/// The platform rebuilt from events, by name.
struct Rebuilt {
    order: Vec<String>,
    hosts: BTreeMap<String, RebuiltHost>,
    vm_order: Vec<String>,
    /// VM → (host, running).
    vms: BTreeMap<String, (String, bool)>,
}

impl Rebuilt {
    fn from(initial: &WorldSnapshot) -> Rebuilt {
        let hosts = initial
            .hosts
            .iter()
            .map(|host| {
                let (power, in_maintenance) = match host.state {
                    PlatformHostState::Up => (Power::Up, false),
                    PlatformHostState::Maintenance => (Power::Up, true),
                    PlatformHostState::Rebooting => (Power::Rebooting, false),
                    PlatformHostState::Down => (Power::Down, false),
                };
                let rebuilt = RebuiltHost {
                    version: host.version.clone(),
                    boot_id: host.boot_id.clone(),
                    power,
                    in_maintenance,
                    cordoned: host.cordoned,
                };
                (host.name.clone(), rebuilt)
            })
            .collect();
        Rebuilt {
            order: initial.hosts.iter().map(|h| h.name.clone()).collect(),
            hosts,
            vm_order: initial.vms.iter().map(|v| v.name.clone()).collect(),
            vms: initial
                .vms
                .iter()
                .map(|vm| (vm.name.clone(), (vm.host.clone(), vm.running)))
                .collect(),
        }
    }

    fn host(&mut self, name: &str) -> Result<&mut RebuiltHost, String> {
        self.hosts
            .get_mut(name)
            .ok_or_else(|| format!("unknown host {name}"))
    }

    fn place(&mut self, vm: &str, host: &str, running: bool) -> Result<(), String> {
        let slot = self
            .vms
            .get_mut(vm)
            .ok_or_else(|| format!("unknown VM {vm}"))?;
        *slot = (host.to_string(), running);
        Ok(())
    }

    fn apply(&mut self, event: &HistoryEvent) -> Result<(), String> {
        match &event.kind {
            HistoryEventKind::VmMigrated { vm, to, .. } => self.place(vm, to, true)?,
            HistoryEventKind::VmStopped { vm, host, .. }
            | HistoryEventKind::VmLost { vm, host } => self.place(vm, host, false)?,
            HistoryEventKind::VmStarted { vm, host, .. } => self.place(vm, host, true)?,
            HistoryEventKind::MaintenanceChanged {
                host,
                in_maintenance,
            } => self.host(host)?.in_maintenance = *in_maintenance,
            HistoryEventKind::AllocationChanged { host, cordoned } => {
                self.host(host)?.cordoned = *cordoned
            }
            HistoryEventKind::HostUpgraded {
                host, to_version, ..
            } => {
                self.host(host)?.version = to_version
                    .parse()
                    .map_err(|error| format!("bad version {to_version}: {error}"))?
            }
            HistoryEventKind::HostRebootStarted { host } => {
                self.host(host)?.power = Power::Rebooting
            }
            HistoryEventKind::HostRebooted { host, boot_id, .. } => {
                let rebuilt = self.host(host)?;
                rebuilt.power = Power::Up;
                rebuilt.boot_id = boot_id.clone();
            }
            HistoryEventKind::HostLost { host } => self.host(host)?.power = Power::Down,
            HistoryEventKind::MigrationFailed { .. }
            | HistoryEventKind::UpgradeFailed { .. }
            | HistoryEventKind::RebootIgnored { .. }
            | HistoryEventKind::OperationCancelled { .. }
            | HistoryEventKind::CompatibilityLevelSet { .. }
            // Settings are the checker's own to follow (from the same history).
            | HistoryEventKind::SettingResolved { .. }
            | HistoryEventKind::SettingRestored { .. } => {}
        }
        Ok(())
    }

    fn hosts(&self) -> Vec<HostSnapshot> {
        self.order
            .iter()
            .map(|name| {
                let host = &self.hosts[name];
                HostSnapshot {
                    name: name.clone(),
                    version: host.version.clone(),
                    boot_id: host.boot_id.clone(),
                    state: match (host.power, host.in_maintenance) {
                        (Power::Down, _) => PlatformHostState::Down,
                        (Power::Rebooting, _) => PlatformHostState::Rebooting,
                        (Power::Up, true) => PlatformHostState::Maintenance,
                        (Power::Up, false) => PlatformHostState::Up,
                    },
                    cordoned: host.cordoned,
                }
            })
            .collect()
    }

    fn vms(&self) -> Vec<VmSnapshot> {
        self.vm_order
            .iter()
            .map(|name| {
                let (host, running) = &self.vms[name];
                VmSnapshot {
                    name: name.clone(),
                    host: host.clone(),
                    running: *running,
                }
            })
            .collect()
    }

    /// The rebuilt world is the saved one: otherwise the replay, not the run, is wrong.
    fn require_same_as(&self, last: &WorldSnapshot) -> Result<(), String> {
        let rebuilt_hosts = self.hosts();
        let rebuilt_vms = self.vms();
        for host in &last.hosts {
            let rebuilt = rebuilt_hosts.iter().find(|h| h.name == host.name);
            if rebuilt != Some(host) {
                return Err(format!(
                    "the history does not rebuild host {}: rebuilt {rebuilt:?}, saved {host:?}",
                    host.name
                ));
            }
        }
        for vm in &last.vms {
            let rebuilt = rebuilt_vms.iter().find(|v| v.name == vm.name);
            if rebuilt != Some(vm) {
                return Err(format!(
                    "the history does not rebuild VM {}: rebuilt {rebuilt:?}, saved {vm:?}",
                    vm.name
                ));
            }
        }
        Ok(())
    }
}
