//! The event loop: one wave after another, operations scheduled on a priority queue of virtual
//! times, each completion moving the [`World`] on and starting what it unblocks.
//!
//! It knows the execution model (concurrency limits, ordering inside a wave, durations) but no
//! safety rule beyond "which hosts may receive VMs now": the rules live in `world`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use drover_core::{Action, ActionKind, Cluster, HostId, HostState, Plan, VmId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::world::{VmPhase, World};
use super::{DowntimeEvent, HostTimeline, Seconds, SimEvent, SimEventKind, SimReport};
use crate::SimError;

/// Durations vary by up to this fraction either way when a seed other than 0 is given.
const JITTER_FRACTION: f64 = 0.10;

/// Something that finishes at a given virtual time. Action indices point into the current wave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Completion {
    Migration(usize),
    Shutdown(usize),
    Boot {
        vm: VmId,
        host: HostId,
        action: usize,
    },
    Upgrade(HostId),
    Reboot(HostId),
    /// A return of the current wave (index into `Wave::returns`) finished.
    Return(usize),
}

/// Where a host is in its upgrade. Only `Serving` hosts that were up before the plan receive VMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HostPhase {
    Serving,
    Evacuating,
    Upgrading,
    Rebooting,
    /// Back on the target version, booting the VMs it shut down.
    Restoring,
    /// Done for this wave; becomes `Serving` when the wave ends.
    Finished,
}

/// The work left on one host of the current wave.
#[derive(Default)]
struct HostWork {
    waiting_migrations: VecDeque<usize>,
    migrations_running: u32,
    in_turn_queue: bool,
    /// Migrations and restarts whose VM has not left the host yet.
    movers_left: usize,
    local_shutdowns: Vec<usize>,
    local_shutdowns_started: bool,
    shutdowns_left: usize,
    /// Shut-down VMs (with their action) that boot here after the upgrade.
    down_vms: Vec<(VmId, usize)>,
    boots_left: usize,
    actions_planned: usize,
}

pub(super) struct Simulation<'a> {
    cluster: &'a Cluster,
    plan: &'a Plan,
    world: World<'a>,
    /// `None` for seed 0: nominal durations.
    jitter: Option<ChaCha8Rng>,
    now: Seconds,
    queue: BinaryHeap<Reverse<(Seconds, u64, Completion)>>,
    next_sequence: u64,
    wave: usize,
    host_phase: Vec<HostPhase>,
    wave_of_host: Vec<Option<usize>>,
    work: Vec<HostWork>,
    /// Hosts with a migration waiting and a free per-host slot, served in turn.
    turn_queue: VecDeque<HostId>,
    migrations_in_flight: u32,
    /// Wave number + 1 of the last wave that claimed each VM, to catch a VM acted on twice.
    vm_claimed_by_wave: Vec<usize>,
    downtime_started: Vec<Seconds>,
    hosts_unavailable: usize,
    timeline_of_host: Vec<Option<usize>>,
    report: SimReport,
}

impl<'a> Simulation<'a> {
    pub(super) fn new(cluster: &'a Cluster, plan: &'a Plan, seed: u64) -> Self {
        let host_count = cluster.hosts.len();
        Simulation {
            cluster,
            plan,
            world: World::new(cluster),
            jitter: (seed != 0).then(|| ChaCha8Rng::seed_from_u64(seed)),
            now: 0,
            queue: BinaryHeap::new(),
            next_sequence: 0,
            wave: 0,
            host_phase: vec![HostPhase::Serving; host_count],
            wave_of_host: vec![None; host_count],
            work: (0..host_count).map(|_| HostWork::default()).collect(),
            turn_queue: VecDeque::new(),
            migrations_in_flight: 0,
            vm_claimed_by_wave: vec![0; cluster.vms.len()],
            downtime_started: vec![0; cluster.vms.len()],
            hosts_unavailable: 0,
            timeline_of_host: vec![None; host_count],
            report: SimReport {
                makespan_secs: 0,
                migrations: 0,
                restarts: 0,
                shutdowns: 0,
                suspends: 0,
                shelves: 0,
                returns: 0,
                peak_hosts_unavailable: 0,
                hosts: Vec::new(),
                downtime: Vec::new(),
                events: Vec::new(),
            },
        }
    }

    // ---- small helpers -------------------------------------------------------------------

    fn broken(&self, message: String) -> SimError {
        SimError::InvariantBroken {
            at_secs: self.now,
            message: format!("wave {}: {message}", self.wave + 1),
        }
    }

    fn host_name(&self, host: HostId) -> &'a str {
        &self.cluster.host(host).name
    }

    fn vm_name(&self, vm: VmId) -> &'a str {
        &self.cluster.vm(vm).name
    }

    fn action(&self, index: usize) -> &'a Action {
        &self.plan.waves[self.wave].actions[index]
    }

    fn emit(&mut self, kind: SimEventKind, host: Option<HostId>, vm: Option<VmId>) {
        self.emit_move(kind, host, None, vm);
    }

    fn emit_move(
        &mut self,
        kind: SimEventKind,
        host: Option<HostId>,
        destination: Option<HostId>,
        vm: Option<VmId>,
    ) {
        self.report.events.push(SimEvent {
            at_secs: self.now,
            kind,
            host,
            destination,
            vm,
            wave: self.wave,
        });
    }

    /// A nominal duration with this run's jitter applied, in whole seconds.
    fn jittered(&mut self, nominal_secs: f64) -> Seconds {
        let factor = match &mut self.jitter {
            Some(rng) => rng.random_range(1.0 - JITTER_FRACTION..=1.0 + JITTER_FRACTION),
            None => 1.0,
        };
        (nominal_secs * factor).round().max(0.0) as Seconds
    }

    fn schedule(&mut self, nominal_secs: f64, completion: Completion) {
        let at = self.now + self.jittered(nominal_secs);
        // The sequence number keeps completions at the same second in the order they were started.
        self.queue
            .push(Reverse((at, self.next_sequence, completion)));
        self.next_sequence += 1;
    }

    fn timeline(&mut self, host: HostId) -> &mut HostTimeline {
        let index = self.timeline_of_host[host.index()].expect("every wave host has a timeline");
        &mut self.report.hosts[index]
    }

    /// Whether `host` may receive a VM now, and if not, why.
    fn check_receives(&self, host: HostId) -> Result<(), String> {
        let name = self.host_name(host);
        match (self.cluster.host(host).state, self.host_phase[host.index()]) {
            (HostState::Down, _) => Err(format!("destination {name} is down")),
            (HostState::Maintenance, _) => Err(format!("destination {name} is in maintenance")),
            (HostState::Up, HostPhase::Serving) => Ok(()),
            (HostState::Up, _) => Err(format!("destination {name} is being upgraded in this wave")),
        }
    }

    // ---- waves ---------------------------------------------------------------------------

    pub(super) fn run_wave(&mut self, wave: usize) -> Result<(), SimError> {
        self.wave = wave;
        self.begin_wave()?;
        while let Some(Reverse((at, _, completion))) = self.queue.pop() {
            self.now = at;
            self.complete(completion)?;
        }
        self.end_wave()
    }

    fn begin_wave(&mut self) -> Result<(), SimError> {
        let wave = &self.plan.waves[self.wave];
        self.emit(SimEventKind::WaveStarted, None, None);
        for host in &wave.hosts {
            self.admit_host(*host)?;
        }
        for (index, action) in wave.actions.iter().enumerate() {
            self.claim_action(index, action)?;
        }
        for host in &wave.hosts {
            self.check_every_vm_has_an_action(*host)?;
        }
        for (index, action) in wave.actions.iter().enumerate() {
            match action.kind {
                ActionKind::Restart | ActionKind::Shelve => self.start_shutdown(index),
                ActionKind::Migrate => self.queue_migration(action.from, index),
                ActionKind::Shutdown | ActionKind::Suspend => {}
            }
        }
        for host in &wave.hosts {
            self.after_departure(*host)?;
        }
        self.start_waiting_migrations()
    }

    fn admit_host(&mut self, host: HostId) -> Result<(), SimError> {
        let name = self.host_name(host);
        if self.cluster.host(host).state == HostState::Down {
            return Err(self.broken(format!("host {name} is down and cannot be upgraded")));
        }
        if let Some(earlier) = self.wave_of_host[host.index()] {
            return Err(self.broken(format!(
                "host {name} is upgraded twice (waves {} and {})",
                earlier + 1,
                self.wave + 1
            )));
        }
        self.wave_of_host[host.index()] = Some(self.wave);
        self.host_phase[host.index()] = HostPhase::Evacuating;
        self.work[host.index()] = HostWork::default();
        self.timeline_of_host[host.index()] = Some(self.report.hosts.len());
        self.report.hosts.push(HostTimeline {
            host,
            wave: self.wave,
            evacuation_started_secs: self.now,
            evacuation_finished_secs: self.now,
            upgrade_started_secs: self.now,
            reboot_finished_secs: self.now,
            back_in_service_secs: self.now,
        });
        Ok(())
    }

    /// Checks that an action can start from the state at the start of its wave and books it on
    /// its source host.
    fn claim_action(&mut self, index: usize, action: &Action) -> Result<(), SimError> {
        let (vm, from) = (action.vm, action.from);
        let context = format!(
            "{} {} from {}",
            action.kind.as_str(),
            self.vm_name(vm),
            self.host_name(from)
        );
        if self.host_phase[from.index()] != HostPhase::Evacuating
            || self.wave_of_host[from.index()] != Some(self.wave)
        {
            return Err(self.broken(format!("{context}: the source host is not in this wave")));
        }
        if self.vm_claimed_by_wave[vm.index()] == self.wave + 1 {
            return Err(self.broken(format!(
                "{context}: the VM already has an action in this wave"
            )));
        }
        self.vm_claimed_by_wave[vm.index()] = self.wave + 1;
        if self.world.phase(vm) != VmPhase::Running(from) {
            let phase = self.world.phase(vm);
            return Err(self.broken(format!(
                "{context}: the VM is not running there ({phase:?})"
            )));
        }
        let spec = self.cluster.vm(vm);
        let impossible = match (action.kind, action.to) {
            (ActionKind::Migrate, Some(_)) if spec.local_storage || !spec.migratable => {
                Some("the VM cannot live-migrate (no guest tools or local storage)")
            }
            (ActionKind::Restart, Some(_)) if spec.local_storage => {
                Some("a VM on local storage cannot start on another host")
            }
            (ActionKind::Migrate | ActionKind::Restart | ActionKind::Shelve, None) => {
                Some("the action has no destination")
            }
            (ActionKind::Shutdown, Some(_)) => Some("a shutdown comes back on its own host"),
            (ActionKind::Suspend, Some(_)) => Some("a suspend resumes on its own host"),
            _ => None,
        };
        if let Some(reason) = impossible {
            return Err(self.broken(format!("{context}: {reason}")));
        }
        let work = &mut self.work[from.index()];
        work.actions_planned += 1;
        match action.kind {
            ActionKind::Migrate | ActionKind::Restart | ActionKind::Shelve => work.movers_left += 1,
            ActionKind::Shutdown | ActionKind::Suspend => {
                work.local_shutdowns.push(index);
                work.shutdowns_left += 1;
            }
        }
        Ok(())
    }

    /// A host whose VMs are not all covered by actions could never be emptied.
    fn check_every_vm_has_an_action(&self, host: HostId) -> Result<(), SimError> {
        if self.work[host.index()].actions_planned == self.world.occupants(host) {
            return Ok(());
        }
        let forgotten = self
            .cluster
            .vm_ids()
            .find(|vm| {
                self.world.phase(*vm) == VmPhase::Running(host)
                    && self.vm_claimed_by_wave[vm.index()] != self.wave + 1
            })
            .map_or("?", |vm| self.vm_name(vm));
        Err(self.broken(format!(
            "host {} cannot be emptied: VM {forgotten} runs on it and the plan has no action for it",
            self.host_name(host)
        )))
    }

    fn end_wave(&mut self) -> Result<(), SimError> {
        let wave = &self.plan.waves[self.wave];
        if let Some(stuck) = wave
            .hosts
            .iter()
            .find(|h| self.host_phase[h.index()] != HostPhase::Finished)
        {
            let phase = self.host_phase[stuck.index()];
            return Err(self.broken(format!(
                "host {} never finished its upgrade (left {phase:?})",
                self.host_name(*stuck)
            )));
        }
        for host in &wave.hosts {
            self.host_phase[host.index()] = HostPhase::Serving;
        }
        self.run_returns()?;
        self.emit(SimEventKind::WaveFinished, None, None);
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<SimReport, SimError> {
        self.world
            .audit()
            .map_err(|message| SimError::InvariantBroken {
                at_secs: self.now,
                message: format!("after the last wave: {message}"),
            })?;
        let target = &self.cluster.target_version;
        for timeline in &self.report.hosts {
            let version = self.world.version(timeline.host);
            if version != target {
                return Err(SimError::InvariantBroken {
                    at_secs: self.now,
                    message: format!(
                        "after the last wave: host {} runs {version}, not the target {target}",
                        self.host_name(timeline.host)
                    ),
                });
            }
        }
        self.report.makespan_secs = self.now;
        Ok(self.report)
    }

    fn complete(&mut self, completion: Completion) -> Result<(), SimError> {
        match completion {
            Completion::Migration(action) => self.finish_migration(action),
            Completion::Shutdown(action) => self.finish_shutdown(action),
            Completion::Boot { vm, host, action } => self.finish_boot(vm, host, action),
            Completion::Upgrade(host) => {
                self.finish_upgrade(host);
                Ok(())
            }
            Completion::Reboot(host) => self.finish_reboot(host),
            Completion::Return(index) => {
                let action = self.plan.waves[self.wave].returns[index];
                self.world.vacate(action.vm, action.from);
                self.world.set_phase(
                    action.vm,
                    VmPhase::Running(action.to.expect("start_return checked it")),
                );
                self.report.returns += 1;
                self.migrations_in_flight -= 1;
                self.emit_move(
                    SimEventKind::MigrationFinished,
                    Some(action.from),
                    action.to,
                    Some(action.vm),
                );
                Ok(())
            }
        }
    }

    // ---- returns -------------------------------------------------------------------------

    /// Runs the wave's returns once its hosts are back in service: live migrations in plan
    /// order, at most the per-host and per-cluster limits at once, each landing checked like any
    /// migration. A return is a live migration of a running VM from a host outside the wave.
    fn run_returns(&mut self) -> Result<(), SimError> {
        let returns = &self.plan.waves[self.wave].returns;
        if returns.is_empty() {
            return Ok(());
        }
        let policy = &self.cluster.policy;
        let cluster_limit = policy.max_concurrent_migrations_per_cluster.max(1);
        let host_limit = policy.max_concurrent_migrations_per_host.max(1);
        let mut waiting: VecDeque<usize> = (0..returns.len()).collect();
        let mut running_from = vec![0u32; self.cluster.hosts.len()];
        let mut running_index: Vec<Option<HostId>> = vec![None; returns.len()];
        loop {
            let mut postponed = VecDeque::new();
            while self.migrations_in_flight < cluster_limit {
                let Some(index) = waiting.pop_front() else {
                    break;
                };
                let action = returns[index];
                if running_from[action.from.index()] >= host_limit {
                    postponed.push_back(index);
                    continue;
                }
                self.start_return(index)?;
                running_from[action.from.index()] += 1;
                running_index[index] = Some(action.from);
            }
            postponed.extend(waiting.drain(..));
            waiting = postponed;
            let Some(Reverse((at, _, completion))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            if let Completion::Return(index) = completion {
                if let Some(from) = running_index[index].take() {
                    running_from[from.index()] -= 1;
                }
            }
            self.complete(completion)?;
        }
        match waiting.front() {
            Some(index) => Err(self.broken(format!(
                "return of {} never started",
                self.vm_name(returns[*index].vm)
            ))),
            None => Ok(()),
        }
    }

    fn start_return(&mut self, index: usize) -> Result<(), SimError> {
        let action = self.plan.waves[self.wave].returns[index];
        let (vm, from) = (action.vm, action.from);
        let context = format!("return {} from {}", self.vm_name(vm), self.host_name(from));
        let spec = self.cluster.vm(vm);
        if action.kind != ActionKind::Migrate || spec.local_storage || !spec.migratable {
            return Err(self.broken(format!("{context}: a return is a live migration")));
        }
        let Some(to) = action.to else {
            return Err(self.broken(format!("{context}: the return has no destination")));
        };
        if self.world.phase(vm) != VmPhase::Running(from) {
            let phase = self.world.phase(vm);
            return Err(self.broken(format!(
                "{context}: the VM is not running there ({phase:?})"
            )));
        }
        if self.host_phase[from.index()] != HostPhase::Serving {
            return Err(self.broken(format!("{context}: the source host is being upgraded")));
        }
        self.check_landing(vm, from, to)?;
        self.world.set_phase(vm, VmPhase::Migrating { from, to });
        self.migrations_in_flight += 1;
        let policy = &self.cluster.policy;
        let nominal_secs = policy.migration_overhead_secs as f64
            + spec.memory_mib as f64 / policy.migration_bandwidth_mib_per_sec.max(1) as f64;
        self.schedule(nominal_secs, Completion::Return(index));
        self.emit_move(
            SimEventKind::MigrationStarted,
            Some(from),
            Some(to),
            Some(vm),
        );
        Ok(())
    }

    // ---- live migrations -----------------------------------------------------------------

    fn queue_migration(&mut self, host: HostId, action: usize) {
        let work = &mut self.work[host.index()];
        work.waiting_migrations.push_back(action);
        if !work.in_turn_queue {
            work.in_turn_queue = true;
            self.turn_queue.push_back(host);
        }
    }

    /// Starts waiting migrations while the cluster has free slots, one per host in turn.
    fn start_waiting_migrations(&mut self) -> Result<(), SimError> {
        let policy = &self.cluster.policy;
        // A limit of 0 would stall the upgrade forever; it is read as 1.
        let cluster_limit = policy.max_concurrent_migrations_per_cluster.max(1);
        let host_limit = policy.max_concurrent_migrations_per_host.max(1);
        while self.migrations_in_flight < cluster_limit {
            let Some(host) = self.turn_queue.pop_front() else {
                break;
            };
            let work = &mut self.work[host.index()];
            work.in_turn_queue = false;
            let Some(action) = work.waiting_migrations.pop_front() else {
                continue;
            };
            work.migrations_running += 1;
            if !work.waiting_migrations.is_empty() && work.migrations_running < host_limit {
                work.in_turn_queue = true;
                self.turn_queue.push_back(host);
            }
            self.start_migration(action)?;
        }
        Ok(())
    }

    fn start_migration(&mut self, index: usize) -> Result<(), SimError> {
        let action = self.action(index);
        let (vm, from) = (action.vm, action.from);
        let to = action.to.expect("claim_action checked the destination");
        self.check_landing(vm, from, to)?;
        self.world.set_phase(vm, VmPhase::Migrating { from, to });
        self.migrations_in_flight += 1;
        let policy = &self.cluster.policy;
        let copy_secs = self.cluster.vm(vm).memory_mib as f64
            / policy.migration_bandwidth_mib_per_sec.max(1) as f64;
        let nominal_secs = policy.migration_overhead_secs as f64 + copy_secs;
        self.schedule(nominal_secs, Completion::Migration(index));
        self.emit_move(
            SimEventKind::MigrationStarted,
            Some(from),
            Some(to),
            Some(vm),
        );
        Ok(())
    }

    /// Every rule for a VM arriving on another host: availability, version, capacity, anti-affinity.
    fn check_landing(&mut self, vm: VmId, from: HostId, to: HostId) -> Result<(), SimError> {
        let context = format!(
            "{} from {} to {}",
            self.vm_name(vm),
            self.host_name(from),
            self.host_name(to)
        );
        self.check_receives(to)
            .and_then(|()| self.world.check_version_rule(from, to))
            .and_then(|()| self.world.land(vm, to))
            .map_err(|reason| self.broken(format!("{context}: {reason}")))
    }

    fn finish_migration(&mut self, index: usize) -> Result<(), SimError> {
        let action = self.action(index);
        let (vm, from) = (action.vm, action.from);
        let to = action.to.expect("claim_action checked the destination");
        self.world.vacate(vm, from);
        self.world.set_phase(vm, VmPhase::Running(to));
        self.report.migrations += 1;
        self.migrations_in_flight -= 1;
        self.emit_move(
            SimEventKind::MigrationFinished,
            Some(from),
            Some(to),
            Some(vm),
        );
        let work = &mut self.work[from.index()];
        work.migrations_running -= 1;
        work.movers_left -= 1;
        if !work.waiting_migrations.is_empty() && !work.in_turn_queue {
            work.in_turn_queue = true;
            self.turn_queue.push_back(from);
        }
        self.after_departure(from)?;
        self.start_waiting_migrations()
    }

    // ---- shutdowns, restarts and boots ---------------------------------------------------

    fn start_shutdown(&mut self, index: usize) {
        let action = self.action(index);
        self.world
            .set_phase(action.vm, VmPhase::ShuttingDown(action.from));
        self.downtime_started[action.vm.index()] = self.now;
        let secs = match action.kind {
            ActionKind::Suspend => self.memory_copy_secs(action.vm),
            _ => self.cluster.policy.vm_shutdown_secs as f64,
        };
        self.schedule(secs, Completion::Shutdown(index));
        self.emit(
            SimEventKind::VmShutdownStarted,
            Some(action.from),
            Some(action.vm),
        );
    }

    fn finish_shutdown(&mut self, index: usize) -> Result<(), SimError> {
        let action = self.action(index);
        let (vm, from) = (action.vm, action.from);
        self.world.vacate(vm, from);
        self.emit(SimEventKind::VmShutDown, Some(from), Some(vm));
        match action.to {
            Some(to) if action.kind.starts_elsewhere() => {
                self.check_landing(vm, from, to)?;
                self.start_boot(vm, from, to, index);
                self.work[from.index()].movers_left -= 1;
                self.after_departure(from)
            }
            _ => {
                self.world.set_phase(vm, VmPhase::Down(from));
                let work = &mut self.work[from.index()];
                work.down_vms.push((vm, index));
                work.shutdowns_left -= 1;
                self.after_departure(from)
            }
        }
    }

    /// Boots a VM whose place on `host` is already counted in the world.
    fn start_boot(&mut self, vm: VmId, source: HostId, host: HostId, action: usize) {
        self.world.set_phase(vm, VmPhase::Booting(host));
        // A resume reads the saved memory back instead of booting.
        let secs = match self.action(action).kind {
            ActionKind::Suspend => self.memory_copy_secs(vm),
            _ => self.cluster.policy.vm_boot_secs as f64,
        };
        self.schedule(secs, Completion::Boot { vm, host, action });
        self.emit_move(
            SimEventKind::VmBootStarted,
            Some(source),
            Some(host),
            Some(vm),
        );
    }

    fn finish_boot(&mut self, vm: VmId, host: HostId, index: usize) -> Result<(), SimError> {
        let action = self.action(index);
        self.world.set_phase(vm, VmPhase::Running(host));
        self.emit(SimEventKind::VmStarted, Some(host), Some(vm));
        self.report.downtime.push(DowntimeEvent {
            vm,
            host: action.from,
            kind: action.kind,
            started_secs: self.downtime_started[vm.index()],
            ended_secs: self.now,
        });
        match action.kind {
            ActionKind::Restart => {
                self.report.restarts += 1;
                return Ok(());
            }
            ActionKind::Shelve => {
                self.report.shelves += 1;
                return Ok(());
            }
            ActionKind::Suspend => self.report.suspends += 1,
            _ => self.report.shutdowns += 1,
        }
        let work = &mut self.work[host.index()];
        work.boots_left -= 1;
        if work.boots_left == 0 {
            self.finish_host(host);
        }
        Ok(())
    }

    /// Writing a VM's memory to disk (suspend) or reading it back (resume): the VM's memory at
    /// the migration bandwidth, plus the migration overhead. The disk is assumed no slower than
    /// the migration network; the model has no separate figure for it.
    fn memory_copy_secs(&self, vm: VmId) -> f64 {
        let policy = &self.cluster.policy;
        policy.migration_overhead_secs as f64
            + self.cluster.vm(vm).memory_mib as f64
                / policy.migration_bandwidth_mib_per_sec.max(1) as f64
    }

    // ---- host life cycle -----------------------------------------------------------------

    /// Called whenever a VM has left `host`: starts its local shutdowns once nothing else is
    /// leaving, and sends it into maintenance once it is empty.
    fn after_departure(&mut self, host: HostId) -> Result<(), SimError> {
        let work = &self.work[host.index()];
        if work.movers_left > 0 || self.host_phase[host.index()] != HostPhase::Evacuating {
            return Ok(());
        }
        if !work.local_shutdowns_started {
            let shutdowns = std::mem::take(&mut self.work[host.index()].local_shutdowns);
            self.work[host.index()].local_shutdowns_started = true;
            for index in shutdowns {
                self.start_shutdown(index);
            }
        }
        if self.work[host.index()].shutdowns_left == 0 {
            self.enter_maintenance(host)?;
        }
        Ok(())
    }

    fn enter_maintenance(&mut self, host: HostId) -> Result<(), SimError> {
        if self.world.occupants(host) > 0 {
            return Err(self.broken(format!(
                "host {} would enter maintenance with {} VM(s) still on it",
                self.host_name(host),
                self.world.occupants(host)
            )));
        }
        self.host_phase[host.index()] = HostPhase::Upgrading;
        self.hosts_unavailable += 1;
        self.report.peak_hosts_unavailable = self
            .report
            .peak_hosts_unavailable
            .max(self.hosts_unavailable);
        let now = self.now;
        let timeline = self.timeline(host);
        timeline.evacuation_finished_secs = now;
        timeline.upgrade_started_secs = now;
        self.emit(SimEventKind::HostEnteredMaintenance, Some(host), None);
        self.emit(SimEventKind::HostUpgradeStarted, Some(host), None);
        self.check_unavailable_limit()?;
        self.schedule(
            self.cluster.policy.upgrade_duration_secs as f64,
            Completion::Upgrade(host),
        );
        Ok(())
    }

    fn check_unavailable_limit(&self) -> Result<(), SimError> {
        let limit = self.plan.summary.max_unavailable.max(1) as usize;
        if self.hosts_unavailable <= limit {
            return Ok(());
        }
        let down: Vec<&str> = self
            .cluster
            .host_ids()
            .filter(|h| {
                matches!(
                    self.host_phase[h.index()],
                    HostPhase::Upgrading | HostPhase::Rebooting
                )
            })
            .map(|h| self.host_name(h))
            .collect();
        Err(self.broken(format!(
            "{} hosts unavailable at once ({}), the plan allows {limit}",
            self.hosts_unavailable,
            down.join(", ")
        )))
    }

    fn finish_upgrade(&mut self, host: HostId) {
        self.host_phase[host.index()] = HostPhase::Rebooting;
        self.emit(SimEventKind::HostRebootStarted, Some(host), None);
        self.schedule(
            self.cluster.policy.reboot_duration_secs as f64,
            Completion::Reboot(host),
        );
    }

    fn finish_reboot(&mut self, host: HostId) -> Result<(), SimError> {
        self.world.upgrade(host);
        self.hosts_unavailable -= 1;
        self.host_phase[host.index()] = HostPhase::Restoring;
        let now = self.now;
        let timeline = self.timeline(host);
        timeline.reboot_finished_secs = now;
        timeline.back_in_service_secs = now;
        self.emit(SimEventKind::HostRebooted, Some(host), None);
        let back = match self.cluster.host(host).state {
            HostState::Maintenance => SimEventKind::HostReturnedToMaintenance,
            _ => SimEventKind::HostBackInService,
        };
        self.emit(back, Some(host), None);
        let down_vms = std::mem::take(&mut self.work[host.index()].down_vms);
        self.work[host.index()].boots_left = down_vms.len();
        if down_vms.is_empty() {
            self.finish_host(host);
        }
        for (vm, action) in down_vms {
            self.world.occupy(vm, host).map_err(|reason| {
                self.broken(format!(
                    "starting {} again on {}: {reason}",
                    self.vm_name(vm),
                    self.host_name(host)
                ))
            })?;
            self.start_boot(vm, host, host, action);
        }
        Ok(())
    }

    fn finish_host(&mut self, host: HostId) {
        self.host_phase[host.index()] = HostPhase::Finished;
    }
}
