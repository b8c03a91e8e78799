//! The simulated platform's state: hosts, VMs, and the operations in flight, each with the
//! platform time it completes at. [`SimWorld::settle`] applies every operation whose time has
//! come, in time order (what each one does is in the `complete` module), so the platform
//! finishes what it started even when nobody waits for it.
//!
//! This module knows nothing of async code, sleeping, files or the engine's clock: time is a
//! number of epoch milliseconds handed in by the caller.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use drover_core::{Cluster, HostState, Policy, Version, VmState};
use drover_driver::DriverError;
use serde::{Deserialize, Serialize};

use super::faults::{Dice, Fault, FaultBook, FaultKind, RandomFaults, SlowStep, Subject};
use super::setting_state::PlatformSettingState;
use super::snapshot::{HistoryEvent, HistoryEventKind};
use super::version_text;

/// Entering or leaving maintenance: the platform's bookkeeping, nominal seconds.
pub(super) const MAINTENANCE_CHANGE_SECS: f64 = 5.0;
/// Cordoning or uncordoning a host, nominal seconds.
pub(super) const ALLOCATION_CHANGE_SECS: f64 = 2.0;
/// Outcomes are kept this long for the callers waiting on them; a caller wakes at the completion
/// time, so only a process stalled for hours would miss its outcome (it then observes the world).
const OUTCOME_RETENTION_MS: u64 = 6 * 3600 * 1000;

/// Whether a host answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Power {
    Up,
    Rebooting,
    /// Down for good (down from the start, or lost in a reboot).
    Down,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct PlatformHost {
    pub name: String,
    pub memory_mib: u64,
    #[serde(with = "version_text")]
    pub version: Version,
    /// Boots since the simulation began; the boot id is derived from it.
    pub boot_count: u64,
    pub power: Power,
    pub in_maintenance: bool,
    pub cordoned: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct PlatformVm {
    pub name: String,
    /// Index into the hosts: where it runs, or where it is defined when stopped.
    pub host: usize,
    pub memory_mib: u64,
    pub running: bool,
    pub migratable: bool,
    pub local_storage: bool,
    /// The hosts the VM may run on (indices), when the platform restricts it (a Ganeti DRBD
    /// instance: its two nodes; a pinned VM). Worlds saved before it existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<usize>>,
}

/// What an operation does. Indices point into the world's hosts and VMs; what goes wrong was
/// decided when it started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "operation")]
pub(super) enum OperationKind {
    Migrate {
        vm: usize,
        from: usize,
        to: usize,
        fails: bool,
    },
    Shutdown {
        vm: usize,
        host: usize,
        forced: bool,
    },
    Start {
        vm: usize,
        host: usize,
    },
    Upgrade {
        host: usize,
        #[serde(with = "version_text")]
        target: Version,
        fails: bool,
        reboots: bool,
    },
    Reboot {
        host: usize,
        ignored: bool,
        never_returns: bool,
    },
    Maintenance {
        host: usize,
        enabled: bool,
    },
    Allocation {
        host: usize,
        enabled: bool,
    },
}

impl OperationKind {
    pub fn name(&self) -> &'static str {
        match self {
            OperationKind::Migrate { .. } => "migrate",
            OperationKind::Shutdown { .. } => "shutdown",
            OperationKind::Start { .. } => "start",
            OperationKind::Upgrade { .. } => "upgrade",
            OperationKind::Reboot { .. } => "reboot",
            OperationKind::Maintenance { .. } => "maintenance",
            OperationKind::Allocation { .. } => "allocation",
        }
    }

    /// The host the operation runs on (for a migration: the source).
    pub fn host(&self) -> usize {
        match self {
            OperationKind::Migrate { from: host, .. }
            | OperationKind::Shutdown { host, .. }
            | OperationKind::Start { host, .. }
            | OperationKind::Upgrade { host, .. }
            | OperationKind::Reboot { host, .. }
            | OperationKind::Maintenance { host, .. }
            | OperationKind::Allocation { host, .. } => *host,
        }
    }

    pub fn vm(&self) -> Option<usize> {
        match self {
            OperationKind::Migrate { vm, .. }
            | OperationKind::Shutdown { vm, .. }
            | OperationKind::Start { vm, .. } => Some(*vm),
            _ => None,
        }
    }

    /// Whether the operation cannot go on when `host` goes down.
    pub fn needs_host_up(&self, host: usize) -> bool {
        match self {
            OperationKind::Migrate { from, to, .. } => *from == host || *to == host,
            OperationKind::Shutdown { host: on, .. } | OperationKind::Start { host: on, .. } => {
                *on == host
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Operation {
    pub id: u64,
    pub started_at_ms: u64,
    /// `None`: it never completes (a hung migration).
    pub completes_at_ms: Option<u64>,
    pub kind: OperationKind,
}

/// Everything about the platform that must survive a restart of the process driving it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct PlatformState {
    pub hosts: Vec<PlatformHost>,
    pub vms: Vec<PlatformVm>,
    pub operations: BTreeMap<u64, Operation>,
    pub history: Vec<HistoryEvent>,
    /// The number of the next operation; it also selects the operation's random stream.
    pub next_operation_id: u64,
    /// How often each configured fault has struck.
    pub fault_uses: Vec<u32>,
    /// The cluster's compatibility level once Drover set it (`None`: as it was before).
    #[serde(default)]
    pub compatibility_level: Option<String>,
    /// Blocking settings (HA, WLB, media) the cluster started with, on or off now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<PlatformSettingState>,
}

impl PlatformState {
    /// The platform as the cluster describes it.
    pub fn from_cluster(cluster: &Cluster, fault_count: usize) -> PlatformState {
        let hosts = cluster.hosts.iter().map(|host| PlatformHost {
            name: host.name.clone(),
            memory_mib: host.memory_mib,
            version: host.version.clone(),
            boot_count: 1,
            power: if host.state == HostState::Down {
                Power::Down
            } else {
                Power::Up
            },
            in_maintenance: host.state == HostState::Maintenance,
            cordoned: host.cordoned,
        });
        let vms = cluster.vms.iter().map(|vm| PlatformVm {
            name: vm.name.clone(),
            host: vm.host.index(),
            memory_mib: vm.memory_mib,
            running: vm.state == VmState::Running,
            migratable: vm.migratable,
            local_storage: vm.local_storage,
            allowed_hosts: vm
                .allowed_hosts
                .as_ref()
                .map(|hosts| hosts.iter().map(|host| host.index()).collect()),
        });
        PlatformState {
            hosts: hosts.collect(),
            vms: vms.collect(),
            operations: BTreeMap::new(),
            history: Vec::new(),
            next_operation_id: 1,
            fault_uses: vec![0; fault_count],
            compatibility_level: None,
            settings: cluster
                .settings
                .iter()
                .map(PlatformSettingState::on)
                .collect(),
        }
    }

    /// Whether a state read from a file describes this cluster's platform, with every index in
    /// range (a bad file must be an error, not a panic later).
    pub fn check_matches(&self, cluster: &Cluster, fault_count: usize) -> Result<(), String> {
        let host_names = self.hosts.iter().map(|host| &host.name);
        if !host_names.eq(cluster.hosts.iter().map(|host| &host.name)) {
            return Err(
                "its hosts are not the cluster's hosts (names and order must match)".into(),
            );
        }
        if !self
            .vms
            .iter()
            .map(|vm| &vm.name)
            .eq(cluster.vms.iter().map(|vm| &vm.name))
        {
            return Err("its VMs are not the cluster's VMs (names and order must match)".into());
        }
        if self.fault_uses.len() != fault_count {
            let saved = self.fault_uses.len();
            return Err(format!(
                "it was written with {saved} faults configured, there are now {fault_count}"
            ));
        }
        let host_count = self.hosts.len();
        let vm_hosts_valid = self.vms.iter().all(|vm| vm.host < host_count);
        let operations_valid = self.operations.values().all(|operation| {
            let hosts_valid = operation.kind.host() < host_count
                && !matches!(operation.kind, OperationKind::Migrate { to, .. } if to >= host_count);
            hosts_valid && operation.kind.vm().is_none_or(|vm| vm < self.vms.len())
        });
        match vm_hosts_valid && operations_valid {
            true => Ok(()),
            false => Err("it refers to hosts or VMs that do not exist".into()),
        }
    }
}

/// Nominal durations, in seconds, from the cluster's policy.
#[derive(Clone, Debug)]
pub(super) struct Durations {
    pub migration_overhead_secs: f64,
    pub migration_bandwidth_mib_per_sec: f64,
    pub upgrade_secs: f64,
    pub reboot_secs: f64,
    pub vm_shutdown_secs: f64,
    pub vm_boot_secs: f64,
}

impl Durations {
    pub fn from_policy(policy: &Policy) -> Durations {
        Durations {
            migration_overhead_secs: policy.migration_overhead_secs as f64,
            // A zero bandwidth would make every migration infinite; treat it as the slowest link.
            migration_bandwidth_mib_per_sec: policy.migration_bandwidth_mib_per_sec.max(1) as f64,
            upgrade_secs: policy.upgrade_duration_secs as f64,
            reboot_secs: policy.reboot_duration_secs as f64,
            vm_shutdown_secs: policy.vm_shutdown_secs as f64,
            vm_boot_secs: policy.vm_boot_secs as f64,
        }
    }

    pub fn migration_secs(&self, memory_mib: u64) -> f64 {
        self.migration_overhead_secs + memory_mib as f64 / self.migration_bandwidth_mib_per_sec
    }
}

/// What does not change while the platform runs: durations, faults, the seed.
pub(super) struct WorldRules {
    pub durations: Durations,
    pub faults: Vec<Fault>,
    pub random_faults: RandomFaults,
    pub seed: u64,
}

/// How a successful operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Completion {
    Done,
    ShutDown { forced: bool },
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum OperationOutcome {
    Completed(Completion),
    /// The operation goes on as another one (an upgrade as its reboot).
    Continued(u64),
    Failed(DriverError),
}

#[derive(Clone, Debug)]
struct FinishedOperation {
    finished_at_ms: u64,
    outcome: OperationOutcome,
}

/// Where an operation a caller waits on stands.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum OperationStatus {
    InFlight {
        completes_at_ms: Option<u64>,
    },
    Finished(OperationOutcome),
    /// Neither in flight nor remembered (its outcome was dropped long ago).
    Forgotten,
}

/// The platform: its persistent state, its rules, and the outcomes callers have yet to read.
pub(super) struct SimWorld {
    pub state: PlatformState,
    pub rules: WorldRules,
    pub index: NameIndex,
    /// The running VMs of each host, derived from `state.vms` (a scan of every VM per call
    /// would make huge clusters quadratic).
    running_on_host: Vec<BTreeSet<usize>>,
    /// Outcomes of finished operations, for the callers waiting on them. Not persisted: callers
    /// do not survive a restart, and a new caller observes the world instead.
    outcomes: BTreeMap<u64, FinishedOperation>,
    /// Whether the state changed since it was last saved.
    changed: bool,
}

impl SimWorld {
    pub fn new(state: PlatformState, rules: WorldRules) -> SimWorld {
        let index = NameIndex::of(&state);
        let mut running_on_host = vec![BTreeSet::new(); state.hosts.len()];
        for (vm, record) in state
            .vms
            .iter()
            .enumerate()
            .filter(|(_, record)| record.running)
        {
            running_on_host[record.host].insert(vm);
        }
        SimWorld {
            running_on_host,
            state,
            rules,
            index,
            outcomes: BTreeMap::new(),
            changed: false,
        }
    }

    /// Whether the state changed since the last call; resets the flag.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    pub fn mark_changed(&mut self) {
        self.changed = true;
    }

    /// Applies, in time order, every operation that completes at or before `now_ms`.
    pub fn settle(&mut self, now_ms: u64) {
        while let Some(operation) = self.take_next_due(now_ms) {
            let at_ms = operation.completes_at_ms.unwrap_or(now_ms);
            let outcome = self.complete(&operation, at_ms);
            self.record_outcome(operation.id, at_ms, outcome);
        }
        let forget_before_ms = now_ms.saturating_sub(OUTCOME_RETENTION_MS);
        self.outcomes
            .retain(|_, finished| finished.finished_at_ms >= forget_before_ms);
    }

    pub fn status(&self, operation_id: u64) -> OperationStatus {
        if let Some(operation) = self.state.operations.get(&operation_id) {
            return OperationStatus::InFlight {
                completes_at_ms: operation.completes_at_ms,
            };
        }
        match self.outcomes.get(&operation_id) {
            Some(finished) => OperationStatus::Finished(finished.outcome.clone()),
            None => OperationStatus::Forgotten,
        }
    }

    fn take_next_due(&mut self, now_ms: u64) -> Option<Operation> {
        let (_, id) = self
            .state
            .operations
            .values()
            .filter_map(|operation| {
                operation
                    .completes_at_ms
                    .filter(|at| *at <= now_ms)
                    .map(|at| (at, operation.id))
            })
            .min()?;
        self.changed = true;
        self.state.operations.remove(&id)
    }

    fn record_outcome(&mut self, operation_id: u64, at_ms: u64, outcome: OperationOutcome) {
        self.outcomes.insert(
            operation_id,
            FinishedOperation {
                finished_at_ms: at_ms,
                outcome,
            },
        );
    }

    /// Stops an operation before it completes; whoever waits on it gets `reason` as a failure.
    pub fn cancel_operation(&mut self, operation_id: u64, at_ms: u64, reason: &str) {
        let Some(operation) = self.state.operations.remove(&operation_id) else {
            return;
        };
        let event = HistoryEventKind::OperationCancelled {
            operation: self.describe(&operation.kind),
            reason: reason.to_string(),
        };
        self.record(at_ms, event);
        let outcome = OperationOutcome::Failed(DriverError::Failed(format!(
            "{}: {reason}",
            self.describe(&operation.kind)
        )));
        self.record_outcome(operation_id, at_ms, outcome);
    }

    /// A number for a new operation and its random draws.
    pub fn allocate_operation(&mut self) -> (u64, Dice) {
        let id = self.state.next_operation_id;
        self.state.next_operation_id += 1;
        self.changed = true;
        (id, Dice::for_operation(self.rules.seed, id))
    }

    pub fn insert_operation(
        &mut self,
        id: u64,
        kind: OperationKind,
        started_at_ms: u64,
        completes_at_ms: Option<u64>,
    ) {
        self.state.operations.insert(
            id,
            Operation {
                id,
                started_at_ms,
                completes_at_ms,
                kind,
            },
        );
        self.changed = true;
    }

    /// Whether a configured fault of `kind` strikes an operation on these VM and hosts.
    pub fn strikes(&mut self, kind: FaultKind, vm: Option<usize>, hosts: &[usize]) -> bool {
        self.with_fault_book(vm, hosts, |book, subject| book.strikes(kind, subject))
    }

    /// The duration multiplier of the `slow` faults on `step` for these VM and hosts.
    pub fn slow_factor(&mut self, step: SlowStep, vm: Option<usize>, hosts: &[usize]) -> f64 {
        self.with_fault_book(vm, hosts, |book, subject| book.slow_factor(step, subject))
    }

    /// The fault book (rules and their uses so far) and the operation's subject by name.
    fn with_fault_book<T>(
        &mut self,
        vm: Option<usize>,
        hosts: &[usize],
        ask: impl FnOnce(&mut FaultBook<'_>, &Subject<'_>) -> T,
    ) -> T {
        let PlatformState {
            hosts: all_hosts,
            vms,
            fault_uses,
            ..
        } = &mut self.state;
        let host_names: Vec<&str> = hosts
            .iter()
            .map(|&host| all_hosts[host].name.as_str())
            .collect();
        let subject = Subject {
            vm: vm.map(|vm| vms[vm].name.as_str()),
            hosts: &host_names,
        };
        let mut book = FaultBook {
            faults: &self.rules.faults,
            uses: fault_uses,
        };
        ask(&mut book, &subject)
    }

    pub fn record(&mut self, at_ms: u64, kind: HistoryEventKind) {
        self.state.history.push(HistoryEvent { at_ms, kind });
        self.changed = true;
    }

    pub fn host_name(&self, host: usize) -> String {
        self.state.hosts[host].name.clone()
    }

    pub fn vm_name(&self, vm: usize) -> String {
        self.state.vms[vm].name.clone()
    }

    pub fn boot_id(&self, host: usize) -> String {
        let record = &self.state.hosts[host];
        format!("{}-boot-{}", record.name, record.boot_count)
    }

    pub fn host_answers(&self, host: usize) -> bool {
        self.state.hosts[host].power == Power::Up
    }

    /// Why the platform would not place a VM on `host` now, if it would not. Cordoning is not a
    /// reason: it is allocation policy for Drover's planner, not a platform rule.
    pub fn host_refuses_vms(&self, host: usize) -> Option<String> {
        let record = &self.state.hosts[host];
        match (record.power, record.in_maintenance) {
            (Power::Down, _) => Some(format!("host {} is down", record.name)),
            (Power::Rebooting, _) => Some(format!("host {} is rebooting", record.name)),
            (Power::Up, true) => Some(format!("host {} is in maintenance", record.name)),
            (Power::Up, false) => None,
        }
    }

    /// Why `host` cannot enter maintenance now, if it cannot.
    pub fn maintenance_entry_problem(&self, host: usize) -> Option<String> {
        let running = self
            .running_vms_on(host)
            .map(|vm| self.state.vms[vm].name.as_str());
        if let Some(list) = name_list(running) {
            return Some(format!("host still runs VMs: {list}"));
        }
        let arriving =
            self.state
                .operations
                .values()
                .filter_map(|operation| match operation.kind {
                    OperationKind::Migrate { vm, to, .. }
                    | OperationKind::Start { vm, host: to }
                        if to == host =>
                    {
                        Some(self.state.vms[vm].name.as_str())
                    }
                    _ => None,
                });
        name_list(arriving).map(|list| format!("VMs are on their way to the host: {list}"))
    }

    pub fn running_vms_on(&self, host: usize) -> impl Iterator<Item = usize> + '_ {
        self.running_on_host[host].iter().copied()
    }

    /// The only way a VM changes host or power state, so that `running_on_host` stays true.
    pub fn place_vm(&mut self, vm: usize, host: usize, running: bool) {
        let record = &mut self.state.vms[vm];
        self.running_on_host[record.host].remove(&vm);
        record.host = host;
        record.running = running;
        if running {
            self.running_on_host[host].insert(vm);
        }
        self.changed = true;
    }

    /// Memory taken on `host`: running VMs, and VMs migrating or booting there (the platform
    /// reserves their memory before they arrive).
    pub fn committed_memory_mib(&self, host: usize) -> u64 {
        let running: u64 = self
            .running_vms_on(host)
            .map(|vm| self.state.vms[vm].memory_mib)
            .sum();
        let arriving: u64 = self
            .state
            .operations
            .values()
            .filter_map(|operation| match operation.kind {
                OperationKind::Migrate { vm, to, .. } | OperationKind::Start { vm, host: to }
                    if to == host =>
                {
                    Some(self.state.vms[vm].memory_mib)
                }
                _ => None,
            })
            .sum();
        running + arriving
    }

    /// The first operation in flight that satisfies `wanted`.
    pub fn operation_where(&self, wanted: impl Fn(&OperationKind) -> bool) -> Option<&Operation> {
        self.state
            .operations
            .values()
            .find(|operation| wanted(&operation.kind))
    }

    /// "migration of VM x from a to b", for messages and the history.
    pub fn describe(&self, kind: &OperationKind) -> String {
        let host = |index: usize| self.state.hosts[index].name.as_str();
        let vm = |index: usize| self.state.vms[index].name.as_str();
        match kind {
            OperationKind::Migrate {
                vm: v, from, to, ..
            } => format!(
                "migration of VM {} from {} to {}",
                vm(*v),
                host(*from),
                host(*to)
            ),
            OperationKind::Shutdown { vm: v, host: h, .. } => {
                format!("shutdown of VM {} on {}", vm(*v), host(*h))
            }
            OperationKind::Start { vm: v, host: h } => {
                format!("start of VM {} on {}", vm(*v), host(*h))
            }
            OperationKind::Upgrade {
                host: h, target, ..
            } => format!("upgrade of {} to {target}", host(*h)),
            OperationKind::Reboot { host: h, .. } => format!("reboot of {}", host(*h)),
            OperationKind::Maintenance { host: h, enabled } => {
                format!(
                    "{} maintenance on {}",
                    if *enabled { "entering" } else { "leaving" },
                    host(*h)
                )
            }
            OperationKind::Allocation { host: h, enabled } => {
                format!(
                    "{} {}",
                    if *enabled { "uncordoning" } else { "cordoning" },
                    host(*h)
                )
            }
        }
    }
}

/// Host and VM indices by name, so that a call on a huge cluster does not scan every VM.
pub(super) struct NameIndex {
    hosts: HashMap<String, usize>,
    vms: HashMap<String, usize>,
}

impl NameIndex {
    fn of(state: &PlatformState) -> NameIndex {
        let hosts = state
            .hosts
            .iter()
            .enumerate()
            .map(|(index, host)| (host.name.clone(), index));
        let vms = state
            .vms
            .iter()
            .enumerate()
            .map(|(index, vm)| (vm.name.clone(), index));
        NameIndex {
            hosts: hosts.collect(),
            vms: vms.collect(),
        }
    }

    pub fn host(&self, name: &str) -> Option<usize> {
        self.hosts.get(name).copied()
    }

    pub fn vm(&self, name: &str) -> Option<usize> {
        self.vms.get(name).copied()
    }
}

/// "a, b, c and 4 more", or `None` when there are no names.
fn name_list<'a>(names: impl Iterator<Item = &'a str>) -> Option<String> {
    const SHOWN: usize = 5;
    let names: Vec<&str> = names.collect();
    match names.len() {
        0 => None,
        count if count <= SHOWN => Some(names.join(", ")),
        count => Some(format!(
            "{} and {} more",
            names[..SHOWN].join(", "),
            count - SHOWN
        )),
    }
}
