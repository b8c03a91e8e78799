//! The invariants a rolling upgrade must keep, checked on the simulated platform itself (not on
//! Drover's view of it) after every engine step and at the end of the run.
//!
//! A suspended or shelved VM is not running on the platform: it is not "lost" (only a VM still
//! running when its host reboots is), it must run again when the run ends like any VM Drover
//! stopped, and capacity does not count it on any host meanwhile — XAPI clears a suspended VM's
//! `resident_on` and `scheduled_to_be_resident_on` ("make sure we aren't reserving any memory
//! for this VM", `ocaml/xapi/xapi_vm_lifecycle.ml`) and Nova frees an offloaded server's host,
//! so its return needs room like any start, which the capacity check then covers.

use std::collections::{BTreeMap, BTreeSet};

use drover_core::{Cluster, HostState, Version};
use drover_sim::driver::{HistoryEventKind, PlatformHostState, WorldSnapshot};

pub struct Checker {
    cluster: Cluster,
    initial: WorldSnapshot,
    max_unavailable: usize,
    /// How much of the platform history has been checked already.
    history_checked: usize,
    versions: BTreeMap<String, Version>,
    lost_hosts: BTreeSet<String>,
    /// Anti-affinity (group, host) pairs and their member counts at the start.
    initial_group_counts: BTreeMap<(String, String), usize>,
    /// Blocking settings that are on now, as the history says (labels).
    settings_on: BTreeSet<String>,
}

impl Checker {
    pub fn new(cluster: &Cluster, initial: WorldSnapshot, max_unavailable: usize) -> Self {
        let versions = initial
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.version.clone()))
            .collect();
        let initial_group_counts = group_counts(cluster, &initial);
        let settings_on = initial
            .settings
            .iter()
            .filter(|s| s.on)
            .map(|s| s.setting.label())
            .collect();
        Checker {
            settings_on,
            cluster: cluster.clone(),
            initial,
            max_unavailable,
            history_checked: 0,
            versions,
            lost_hosts: BTreeSet::new(),
            initial_group_counts,
        }
    }

    pub fn lost_hosts(&self) -> &BTreeSet<String> {
        &self.lost_hosts
    }

    /// Checks one instant: availability, capacity, anti-affinity, host constraints, and the
    /// history since last time.
    pub fn check_step(&mut self, snapshot: &WorldSnapshot) -> Result<(), String> {
        self.check_history(snapshot)?;
        self.check_unavailable(snapshot)?;
        self.check_capacity(snapshot)?;
        self.check_anti_affinity(snapshot)?;
        self.check_allowed_hosts(snapshot)
    }

    /// A running VM with `allowed_hosts` runs on one of them (a DRBD instance on its two nodes).
    fn check_allowed_hosts(&self, snapshot: &WorldSnapshot) -> Result<(), String> {
        for vm in snapshot.vms.iter().filter(|vm| vm.running) {
            let Some(spec) = self.cluster.vms.iter().find(|spec| spec.name == vm.name) else {
                continue;
            };
            let Some(allowed) = &spec.allowed_hosts else {
                continue;
            };
            let names: Vec<&str> = allowed
                .iter()
                .map(|host| self.cluster.host(*host).name.as_str())
                .collect();
            if !names.contains(&vm.host.as_str()) {
                return Err(format!(
                    "VM {} runs on {}, outside its allowed hosts {}",
                    vm.name,
                    vm.host,
                    names.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn check_history(&mut self, snapshot: &WorldSnapshot) -> Result<(), String> {
        for event in &snapshot.history[self.history_checked.min(snapshot.history.len())..] {
            self.check_settings_off_while_hosts_change(&event.kind)?;
            match &event.kind {
                HistoryEventKind::VmMigrated { vm, from, to, .. } => {
                    let (source, destination) = (&self.versions[from], &self.versions[to]);
                    if destination < source {
                        return Err(format!("VM {vm} moved from {from} ({source}) to the older {to} ({destination})"));
                    }
                }
                HistoryEventKind::HostUpgraded {
                    host, to_version, ..
                } => {
                    let version = to_version
                        .parse()
                        .map_err(|e| format!("bad version in history: {e}"))?;
                    self.versions.insert(host.clone(), version);
                }
                HistoryEventKind::VmLost { vm, host } => {
                    return Err(format!(
                        "VM {vm} was lost: it was still running on {host} when the host rebooted"
                    ));
                }
                HistoryEventKind::HostLost { host } => {
                    self.lost_hosts.insert(host.clone());
                }
                _ => {}
            }
        }
        self.history_checked = snapshot.history.len();
        Ok(())
    }

    /// Hosts out of service because of the run: in maintenance (not before), or rebooting.
    fn check_unavailable(&self, snapshot: &WorldSnapshot) -> Result<(), String> {
        let unavailable: Vec<&str> = snapshot
            .hosts
            .iter()
            .filter(|h| !self.lost_hosts.contains(&h.name))
            .filter(|h| {
                let before = self.initial.host(&h.name).map(|i| i.state);
                match h.state {
                    PlatformHostState::Rebooting => true,
                    PlatformHostState::Maintenance => {
                        before != Some(PlatformHostState::Maintenance)
                    }
                    _ => false,
                }
            })
            .map(|h| h.name.as_str())
            .collect();
        if unavailable.len() > self.max_unavailable {
            return Err(format!(
                "{} hosts unavailable at once ({}), max_unavailable is {}",
                unavailable.len(),
                unavailable.join(", "),
                self.max_unavailable
            ));
        }
        Ok(())
    }

    fn check_capacity(&self, snapshot: &WorldSnapshot) -> Result<(), String> {
        let mut memory: BTreeMap<&str, u64> = BTreeMap::new();
        let mut vcpus: BTreeMap<&str, u64> = BTreeMap::new();
        for vm in snapshot.vms.iter().filter(|v| v.running) {
            let Some(spec) = self.cluster.vms.iter().find(|v| v.name == vm.name) else {
                continue;
            };
            *memory.entry(vm.host.as_str()).or_default() += spec.memory_mib;
            *vcpus.entry(vm.host.as_str()).or_default() += spec.vcpus as u64;
        }
        for host in &self.cluster.hosts {
            let used = memory.get(host.name.as_str()).copied().unwrap_or(0);
            if used > host.memory_mib {
                return Err(format!(
                    "host {} runs {used} MiB of VMs, more than its {} MiB",
                    host.name, host.memory_mib
                ));
            }
            let limit = (host.cpus as f64 * self.cluster.policy.cpu_overcommit).floor() as u64;
            let used = vcpus.get(host.name.as_str()).copied().unwrap_or(0);
            if used > limit {
                return Err(format!(
                    "host {} runs {used} vCPUs, more than its limit {limit}",
                    host.name
                ));
            }
        }
        Ok(())
    }

    fn check_anti_affinity(&self, snapshot: &WorldSnapshot) -> Result<(), String> {
        for ((group, host), count) in group_counts(&self.cluster, snapshot) {
            let before = self
                .initial_group_counts
                .get(&(group.clone(), host.clone()))
                .copied()
                .unwrap_or(1);
            if count > before.max(1) {
                return Err(format!(
                    "{count} VMs of anti-affinity group {group} run on {host}"
                ));
            }
        }
        Ok(())
    }

    /// At the end: a completed run upgraded every host it did not skip (new boot id, target
    /// version); any finished run undid every cordon and maintenance it made and restarted every
    /// VM it stopped — except what died with a lost host, and hosts whose restore Drover reported
    /// it could not do (`unrestorable`: the platform kept refusing until the restore deadline).
    pub fn check_end(
        &self,
        snapshot: &WorldSnapshot,
        completed: bool,
        skipped: &BTreeSet<String>,
        unrestorable: &BTreeSet<String>,
    ) -> Result<(), String> {
        let target = &self.cluster.target_version;
        for host in &self.cluster.hosts {
            let now = snapshot
                .host(&host.name)
                .ok_or_else(|| format!("host {} vanished", host.name))?;
            let before = self
                .initial
                .host(&host.name)
                .expect("initial snapshot has every host");
            let lost = self.lost_hosts.contains(&host.name);
            let wanted = host.state != HostState::Down && host.version < *target;
            if completed && wanted && !skipped.contains(&host.name) {
                if now.version != *target {
                    return Err(format!(
                        "run completed but {} runs {}",
                        host.name, now.version
                    ));
                }
                if now.boot_id == before.boot_id {
                    return Err(format!("run completed but {} never rebooted", host.name));
                }
            }
            if lost || unrestorable.contains(&host.name) {
                continue;
            }
            let was_maintenance = before.state == PlatformHostState::Maintenance;
            if (now.state == PlatformHostState::Maintenance) != was_maintenance {
                return Err(format!(
                    "{} left in state {:?} (was {:?})",
                    host.name, now.state, before.state
                ));
            }
            if now.cordoned != before.cordoned {
                return Err(format!(
                    "{} left cordoned={} (was {})",
                    host.name, now.cordoned, before.cordoned
                ));
            }
        }
        for vm in self.initial.vms.iter().filter(|v| v.running) {
            let now = snapshot
                .vm(&vm.name)
                .ok_or_else(|| format!("VM {} vanished", vm.name))?;
            if !now.running && !self.lost_hosts.contains(&now.host) {
                return Err(format!(
                    "VM {} was running before the run and is stopped on {} after it",
                    vm.name, now.host
                ));
            }
        }
        Ok(())
    }
}

impl Checker {
    /// Drover changes hosts and VMs only while every blocking setting is off: each was resolved
    /// before the first host, and the ones put back go back after the last host's restores.
    fn check_settings_off_while_hosts_change(
        &mut self,
        event: &HistoryEventKind,
    ) -> Result<(), String> {
        let change = match event {
            HistoryEventKind::SettingResolved { setting } => {
                self.settings_on.remove(setting);
                return Ok(());
            }
            HistoryEventKind::SettingRestored { setting } => {
                self.settings_on.insert(setting.clone());
                return Ok(());
            }
            HistoryEventKind::VmMigrated { vm, .. } => format!("VM {vm} migrated"),
            HistoryEventKind::VmStopped { vm, .. } => format!("VM {vm} stopped"),
            HistoryEventKind::VmStarted { vm, .. } => format!("VM {vm} started"),
            HistoryEventKind::MaintenanceChanged { host, .. } => {
                format!("host {host} changed maintenance")
            }
            HistoryEventKind::AllocationChanged { host, .. } => format!("host {host} (un)cordoned"),
            HistoryEventKind::HostRebootStarted { host } => format!("host {host} rebooted"),
            _ => return Ok(()),
        };
        match self.settings_on.first() {
            Some(setting) => Err(format!("{change} while {setting} was on")),
            None => Ok(()),
        }
    }

    /// A finished run (completed or aborted) put back every restorable setting it turned off,
    /// exactly once, with what its resolve saved (the platform refuses anything else).
    pub fn check_settings(&self, snapshot: &WorldSnapshot) -> Result<(), String> {
        for setting in &snapshot.settings {
            let was_on = self
                .initial
                .settings
                .iter()
                .any(|s| s.setting == setting.setting && s.on);
            if !was_on || !setting.setting.kind.is_restored() {
                continue;
            }
            if !setting.on || setting.restores != setting.resolves.min(1) {
                return Err(format!(
                    "{} was on before the run; after it: on {}, turned off {} time(s), put back {} time(s)",
                    setting.setting.label(),
                    setting.on,
                    setting.resolves,
                    setting.restores
                ));
            }
        }
        Ok(())
    }

    /// A completed run raised the compatibility level it was asked for exactly when every host
    /// that answers runs the target (a host left below it would not support the level); a run
    /// that did not complete never raised it.
    pub fn check_compatibility_level(
        &self,
        snapshot: &WorldSnapshot,
        completed: bool,
    ) -> Result<(), String> {
        let requested = self.cluster.policy.raise_compatibility_level_to.as_deref();
        let target = &self.cluster.target_version;
        let below: Vec<&str> = snapshot
            .hosts
            .iter()
            .filter(|h| h.state != PlatformHostState::Down && h.version < *target)
            .map(|h| h.name.as_str())
            .collect();
        let expected = requested.filter(|_| completed && below.is_empty());
        let actual = snapshot.compatibility_level.as_deref();
        if actual == expected {
            return Ok(());
        }
        Err(format!(
            "the platform's compatibility level is {actual:?}, expected {expected:?} (asked {requested:?}, completed {completed}, hosts below the target {below:?})"
        ))
    }
}

fn group_counts(cluster: &Cluster, snapshot: &WorldSnapshot) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for vm in snapshot.vms.iter().filter(|v| v.running) {
        let group = cluster
            .vms
            .iter()
            .find(|v| v.name == vm.name)
            .and_then(|v| v.anti_affinity.clone());
        if let Some(group) = group {
            *counts.entry((group, vm.host.clone())).or_insert(0) += 1;
        }
    }
    counts
}
