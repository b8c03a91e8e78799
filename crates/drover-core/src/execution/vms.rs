//! The VM actions of a wave: live migrations within per-host and per-cluster limits, retried on
//! another destination; restarts (shut down, start elsewhere) and shelves (shelve, unshelve
//! elsewhere) in eviction batches; shutdowns and suspends of VMs that come back on their own host
//! after its upgrade. Keeps the last attempts per VM.

use std::collections::VecDeque;

use super::{
    CommandId, CommandKind, Execution, ExecutionSettings, HostStep, Millis, Observation, Outcome,
    Purpose,
};
use crate::model::{HostId, HostState, VmId};
use crate::plan::{Action, ActionKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VmPhase {
    /// Waiting for its turn (limits, eviction batch, or its host's other VMs for a shutdown).
    Pending,
    Migrating,
    ShuttingDown,
    /// Shut down; starts on `to` (restart) or back on its own host after the upgrade (shutdown).
    Stopped,
    Starting,
    Done,
    /// Gave up on; its host failed.
    Failed,
    /// Its host was skipped before the action ran: the VM stays where it is.
    Cancelled,
}

/// One failed attempt, as shown to the operator.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Attempt {
    pub at: Millis,
    pub destination: Option<HostId>,
    pub error: String,
}

#[derive(Clone, Debug)]
pub(super) struct VmRun {
    pub kind: ActionKind,
    pub from: HostId,
    pub to: Option<HostId>,
    pub wave: usize,
    pub phase: VmPhase,
    pub since: Millis,
    pub command: Option<CommandId>,
    pub attempts: u32,
    pub retry_at: Option<Millis>,
    /// Since when no host could take this VM (a retry found no destination).
    pub unschedulable_since: Option<Millis>,
    pub tried: Vec<HostId>,
    pub history: VecDeque<Attempt>,
    pub down_since: Option<Millis>,
    pub downtime_ms: u64,
    /// A shelve that no other host could take: it waits on its own host and is unshelved there
    /// after the upgrade (a restart in that case becomes a shutdown instead).
    pub back_on_own_host: bool,
    /// A return (`Wave::returns`): a live migration back to this host, the VM's home, after its
    /// wave. It goes there or nowhere, and when it cannot, the VM stays where it is (no halt).
    pub return_home: Option<HostId>,
}

impl VmRun {
    pub fn new(action: &Action, wave: usize, now: Millis) -> Self {
        VmRun {
            kind: action.kind,
            from: action.from,
            to: action.to,
            wave,
            phase: VmPhase::Pending,
            since: now,
            command: None,
            attempts: 0,
            retry_at: None,
            unschedulable_since: None,
            tried: Vec::new(),
            history: VecDeque::new(),
            down_since: None,
            downtime_ms: 0,
            back_on_own_host: false,
            return_home: None,
        }
    }

    /// A return of `action` (a migration back home) in wave `wave`.
    pub fn new_return(action: &Action, wave: usize, now: Millis) -> Self {
        VmRun {
            return_home: action.to,
            ..VmRun::new(action, wave, now)
        }
    }

    pub fn is_return(&self) -> bool {
        self.return_home.is_some()
    }

    /// Whether the VM waits on its own host and comes back there after the upgrade.
    pub fn stays(&self) -> bool {
        self.kind.stays_on_own_host() || self.back_on_own_host
    }

    /// Whether the VM stops and then starts on its destination (a restart or a shelve).
    pub fn starts_elsewhere(&self) -> bool {
        self.kind.starts_elsewhere() && !self.back_on_own_host
    }

    /// The call that stops this VM for its action: a suspend or a shelve where the plan asks,
    /// else a graceful shutdown.
    fn stop_command(&self, vm: VmId, graceful_timeout_ms: u64) -> CommandKind {
        let host = self.from;
        match self.kind {
            ActionKind::Suspend => CommandKind::SuspendVm { vm, host },
            ActionKind::Shelve => CommandKind::ShelveVm { vm, host },
            _ => CommandKind::ShutdownVm {
                vm,
                host,
                graceful_timeout_ms,
            },
        }
    }

    /// The call that brings this VM back on `host`: resume, unshelve or start, as it stopped.
    pub fn bring_back_command(&self, vm: VmId, host: HostId) -> CommandKind {
        match self.kind {
            ActionKind::Suspend => CommandKind::ResumeVm { vm, host },
            ActionKind::Shelve => CommandKind::UnshelveVm { vm, host },
            _ => CommandKind::StartVm { vm, host },
        }
    }

    /// The times this action may next need time to pass: a backoff ending, a pending limit
    /// expiring. The caller keeps the earliest one still in the future.
    pub fn wakeups(&self, settings: &ExecutionSettings) -> [Option<Millis>; 2] {
        match self.phase {
            VmPhase::Stopped => [self.retry_at, None],
            VmPhase::Pending => {
                let limit = match self.unschedulable_since {
                    Some(since) => since + settings.unschedulable_timeout_ms,
                    None => self.since + settings.pending_timeout_ms,
                };
                [self.retry_at, Some(limit)]
            }
            _ => [None, None],
        }
    }

    /// Whether this VM is on its way to `host` (planned there and not started yet, migrating
    /// there, or a restart that will start there): it holds its place there for capacity and
    /// anti-affinity before it arrives, as the plan reserved it.
    pub fn is_incoming_to(&self, host: HostId) -> bool {
        let moving = match self.kind {
            ActionKind::Migrate => matches!(self.phase, VmPhase::Pending | VmPhase::Migrating),
            ActionKind::Restart | ActionKind::Shelve => {
                matches!(
                    self.phase,
                    VmPhase::Pending | VmPhase::ShuttingDown | VmPhase::Stopped | VmPhase::Starting
                )
            }
            ActionKind::Shutdown | ActionKind::Suspend => false,
        };
        moving && self.to == Some(host)
    }

    /// A pending action's clocks skip the time no Drover process ran.
    pub fn discount_downtime(&mut self, downtime_ms: Millis) {
        if self.phase == VmPhase::Pending {
            self.since += downtime_ms;
        }
        if let Some(since) = self.unschedulable_since.as_mut() {
            *since += downtime_ms;
        }
    }

    fn set(&mut self, phase: VmPhase, now: Millis) {
        self.phase = phase;
        self.since = now;
    }

    pub fn retry_after_halt(&mut self, now: Millis) {
        if self.phase == VmPhase::Stopped && self.command.is_none() {
            self.attempts = 0;
            self.retry_at = None;
            self.unschedulable_since = None;
        }
        if self.phase == VmPhase::Failed {
            self.set(VmPhase::Pending, now);
            self.attempts = 0;
            self.retry_at = None;
            self.unschedulable_since = None;
            // The operator may have fixed what made destinations refuse: all are candidates again.
            self.tried.clear();
        }
    }

    fn record_failure(&mut self, now: Millis, error: String, keep: usize) {
        self.history.push_back(Attempt {
            at: now,
            destination: self.to,
            error,
        });
        while self.history.len() > keep {
            self.history.pop_front();
        }
    }
}

impl Execution {
    /// Starts every VM action that may start now, then moves evacuated hosts on.
    pub(super) fn advance_vms(&mut self) {
        let ready: Vec<VmId> = self
            .vms
            .iter()
            .filter(|(_, run)| run.phase == VmPhase::Pending && run.command.is_none())
            .filter(|(_, run)| {
                run.is_return() || self.hosts[run.from.index()].step == HostStep::Evacuating
            })
            .map(|(vm, _)| *vm)
            .collect();
        for vm in ready {
            self.advance_vm(vm);
        }
        // Restarted VMs whose start failed are started again once their backoff is over, and
        // only while attempts are left: a VM that used them all waits for the operator (retry,
        // skip or abort), never for a tight loop of starts.
        let max_attempts = self.settings.max_step_attempts;
        let restarts_to_start: Vec<(VmId, Option<HostId>)> = self
            .vms
            .iter()
            .filter(|(_, r)| {
                r.starts_elsewhere() && r.phase == VmPhase::Stopped && r.command.is_none()
            })
            .filter(|(_, r)| r.attempts < max_attempts)
            .filter(|(_, r)| r.retry_at.is_none_or(|t| t <= self.now))
            .map(|(vm, r)| (*vm, r.to))
            .collect();
        for (vm, planned) in restarts_to_start {
            let destination = match planned {
                Some(to) if self.vms[&vm].tried.is_empty() => Some(to),
                _ => self.restart_destination(vm),
            };
            match destination {
                Some(to) => self.start_vm(vm, to),
                None => self.come_back_on_own_host(vm),
            }
        }
        for host in self.wave_hosts.clone() {
            if self.hosts[host.index()].step == HostStep::Evacuating
                && self.hosts[host.index()].command.is_none()
            {
                self.maybe_finish_evacuation(host);
            }
        }
    }

    fn advance_vm(&mut self, vm: VmId) {
        let run = &self.vms[&vm];
        if self.pending_too_long(run) {
            let error = match run.unschedulable_since {
                Some(_) => "no host can take the VM (unschedulable)".to_string(),
                None => "still pending after the pending timeout".to_string(),
            };
            self.fail_vm(vm, error);
            return;
        }
        if run.retry_at.is_some_and(|t| t > self.now) {
            return;
        }
        match run.kind {
            ActionKind::Migrate if run.is_return() => self.try_start_return(vm),
            ActionKind::Migrate => self.try_start_migration(vm),
            ActionKind::Restart | ActionKind::Shelve => self.try_start_eviction(vm),
            ActionKind::Shutdown | ActionKind::Suspend => self.try_start_shutdown(vm),
        }
    }

    fn pending_too_long(&self, run: &VmRun) -> bool {
        match run.unschedulable_since {
            Some(since) => self.now >= since + self.settings.unschedulable_timeout_ms,
            None => self.now >= run.since + self.settings.pending_timeout_ms,
        }
    }

    fn migrations_in_flight(&self, source: Option<HostId>) -> u32 {
        match source {
            Some(host) => self.migrating_from.get(&host).copied().unwrap_or(0),
            None => self.migrating_from.values().sum(),
        }
    }

    /// Keeps the per-source count of migrations in flight as a VM enters or leaves `Migrating`.
    fn count_migration(&mut self, source: HostId, started: bool) {
        let count = self.migrating_from.entry(source).or_insert(0);
        if started {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
        }
    }

    /// Whether a migration from `from` must wait for a slot (per source host, per cluster).
    fn migration_slots_full(&self, from: HostId) -> bool {
        self.migrations_in_flight(Some(from)) >= self.settings.max_concurrent_migrations_per_host
            || self.migrations_in_flight(None)
                >= self.settings.max_concurrent_migrations_per_cluster
    }

    fn try_start_migration(&mut self, vm: VmId) {
        let from = self.vms[&vm].from;
        if self.migration_slots_full(from) {
            self.waiting_on_own_limits(vm);
            return;
        }
        let Some(to) = self.destination_for(vm) else {
            return;
        };
        self.issue_migration(vm, from, to);
    }

    /// A return goes to its home host only, within the same limits as any migration, and only
    /// while the VM still runs where the plan left it and home can take it now (its own place
    /// there not counted twice); otherwise it fails at once and the VM stays.
    fn try_start_return(&mut self, vm: VmId) {
        let run = &self.vms[&vm];
        let (from, home) = (run.from, run.return_home.expect("a return has a home"));
        if self.migration_slots_full(from) {
            self.waiting_on_own_limits(vm);
            return;
        }
        let spec = self.cluster.vm(vm);
        if !spec.is_running() || spec.host != from {
            let error = format!("the VM no longer runs on {}", self.cluster.host(from).name);
            self.fail_vm(vm, error);
            return;
        }
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        run.to = None;
        let home_takes_it = self.can_take(vm, home);
        self.vms.get_mut(&vm).expect("vm run exists").to = Some(home);
        if !home_takes_it {
            let error = format!(
                "its home host {} cannot take it now",
                self.cluster.host(home).name
            );
            self.fail_vm(vm, error);
            return;
        }
        self.issue_migration(vm, from, home);
    }

    fn issue_migration(&mut self, vm: VmId, from: HostId, to: HostId) {
        let now = self.now;
        let timeout = self.settings.migration_timeout_ms;
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        run.attempts += 1;
        let attempt = run.attempts;
        let id = self.issue(
            CommandKind::Migrate { vm, from, to },
            timeout,
            attempt,
            Purpose::Vm { vm },
        );
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        run.command = Some(id);
        run.set(VmPhase::Migrating, now);
        self.count_migration(from, true);
    }

    /// The planned destination, or after a failure another host that can take the VM now.
    /// `None` marks the VM unschedulable until a host frees up or its timeout fails it.
    fn destination_for(&mut self, vm: VmId) -> Option<HostId> {
        let run = &self.vms[&vm];
        if let Some(to) = run.to {
            // The first try follows the plan, made from the same observed state; later tries
            // check the destination against what changed since.
            if run.tried.is_empty() && run.attempts == 0 {
                return Some(to);
            }
            if !run.tried.contains(&to) && self.can_take(vm, to) {
                return Some(to);
            }
        }
        let tried = run.tried.clone();
        let from = run.from;
        let best_of = |untried: bool| {
            self.cluster
                .host_ids()
                .filter(|h| *h != from && tried.contains(h) != untried && self.can_take(vm, *h))
                .min_by_key(|h| (self.free_memory_mib(*h), *h))
        };
        // Another host first; when none can take the VM, a host already tried (the failure may
        // have been passing: a job still running, a network blip) rather than no host at all.
        // Attempts stay capped by `max_step_attempts`.
        let choice = best_of(true).or_else(|| best_of(false));
        let now = self.now;
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        match choice {
            Some(host) => {
                run.to = Some(host);
                run.unschedulable_since = None;
            }
            None => {
                run.unschedulable_since.get_or_insert(now);
            }
        }
        choice
    }

    /// Re-plans a restarted VM that no other host can take now: it stays shut down and comes
    /// back on its own host after that host's upgrade, like a VM with local storage. Its place
    /// on the destination that refused it is released. A shelved VM stays shelved and is
    /// unshelved there.
    fn come_back_on_own_host(&mut self, vm: VmId) {
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        if run.kind == ActionKind::Shelve {
            run.back_on_own_host = true;
        } else {
            run.kind = ActionKind::Shutdown;
        }
        run.to = None;
        run.attempts = 0;
        run.retry_at = None;
        run.unschedulable_since = None;
    }

    /// Another host for a restarted VM whose start failed; `None` while none can take it.
    fn restart_destination(&mut self, vm: VmId) -> Option<HostId> {
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        run.to = None;
        self.destination_for(vm)
    }

    fn free_memory_mib(&self, host: HostId) -> u64 {
        let used: u64 = self.load_on(host).0;
        self.cluster.host(host).memory_mib.saturating_sub(used)
    }

    /// Memory and vCPUs on a host: running VMs there plus VMs on their way to it.
    fn load_on(&self, host: HostId) -> (u64, u64) {
        let mut memory = 0;
        let mut vcpus = 0;
        for (index, vm) in self.cluster.vms.iter().enumerate() {
            let incoming = self
                .vms
                .get(&VmId(index as u32))
                .is_some_and(|r| r.is_incoming_to(host));
            if (vm.is_running() && vm.host == host) || incoming {
                memory += vm.memory_mib;
                vcpus += vm.vcpus as u64;
            }
        }
        (memory, vcpus)
    }

    /// Whether `host` may receive `vm` now: up, not cordoned, not in maintenance, not being
    /// upgraded, among its allowed hosts, same or newer version, room for memory and vCPUs, no
    /// anti-affinity sibling.
    fn can_take(&self, vm: VmId, host: HostId) -> bool {
        let target = self.cluster.host(host);
        let run = &self.hosts[host.index()];
        if target.state != HostState::Up
            || target.cordoned
            || run.step.is_unavailable()
            || run.cordoned_by_us
        {
            return false;
        }
        if matches!(run.step, HostStep::Skipped) {
            return false;
        }
        let spec = self.cluster.vm(vm);
        // A retry never takes a VM outside the hosts it may run on (`Vm::allowed_hosts`).
        if !spec.may_run_on(host) {
            return false;
        }
        if target.version < self.cluster.host(self.vms[&vm].from).version {
            return false;
        }
        let (memory, vcpus) = self.load_on(host);
        // Within the headroom (policy reserve and maximum fill), as the planner places.
        if memory + spec.memory_mib > self.cluster.placement_memory_limit_mib(host)
            || vcpus + spec.vcpus as u64 > self.cluster.vcpu_capacity(host)
        {
            return false;
        }
        match &spec.anti_affinity {
            Some(group) => !self.cluster.vms.iter().enumerate().any(|(index, other)| {
                index != vm.index()
                    && other.anti_affinity.as_ref() == Some(group)
                    && ((other.is_running() && other.host == host)
                        || self
                            .vms
                            .get(&VmId(index as u32))
                            .is_some_and(|r| r.is_incoming_to(host)))
            }),
            None => true,
        }
    }

    fn try_start_eviction(&mut self, vm: VmId) {
        if !self.eviction_budget_left() {
            self.waiting_on_own_limits(vm);
            return;
        }
        let needs_destination = self.vms[&vm].to.is_none() || !self.vms[&vm].tried.is_empty();
        if needs_destination && self.destination_for(vm).is_none() {
            return;
        }
        self.eviction_batch.1 += 1;
        self.start_shutdown(vm);
    }

    /// Batched eviction (OpenShift: `batchEvictionSize` per `batchEvictionInterval`).
    fn eviction_budget_left(&mut self) -> bool {
        let (started, count) = self.eviction_batch;
        if self.now >= started + self.settings.batch_eviction_interval_ms || count == 0 {
            if count == 0 || self.now >= started + self.settings.batch_eviction_interval_ms {
                self.eviction_batch = (self.now, 0);
            }
            return true;
        }
        count < self.settings.batch_eviction_size
    }

    /// A VM that comes back on its own host shuts down last, once its host's other VMs left.
    fn try_start_shutdown(&mut self, vm: VmId) {
        let from = self.vms[&vm].from;
        let others_busy = self.vms.values().any(|r| {
            r.from == from && !r.stays() && !matches!(r.phase, VmPhase::Done | VmPhase::Cancelled)
        });
        if others_busy {
            self.waiting_on_own_limits(vm);
        } else {
            self.start_shutdown(vm);
        }
    }

    /// Waiting for a slot under Drover's own limits (concurrency, eviction batches, a host's
    /// other VMs) is the plan working, not a stuck action: the pending clock starts again. The
    /// pending timeout stays as a backstop for any other wait.
    fn waiting_on_own_limits(&mut self, vm: VmId) {
        let now = self.now;
        if let Some(run) = self.vms.get_mut(&vm) {
            run.since = now;
        }
    }

    fn start_shutdown(&mut self, vm: VmId) {
        let now = self.now;
        let graceful = self.settings.vm_shutdown_graceful_ms;
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        run.attempts += 1;
        let attempt = run.attempts;
        let kind = run.stop_command(vm, graceful);
        let timeout = match kind {
            // The driver forces the VM off after the graceful timeout; leave it a minute beyond.
            CommandKind::ShutdownVm { .. } => graceful + 60_000,
            // A suspend writes the VM's memory out and a shelve its disk: a migration's worth.
            _ => self.settings.migration_timeout_ms,
        };
        let id = self.issue(kind, timeout, attempt, Purpose::Vm { vm });
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        run.command = Some(id);
        run.set(VmPhase::ShuttingDown, now);
        run.down_since.get_or_insert(now);
    }

    fn start_vm(&mut self, vm: VmId, host: HostId) {
        let now = self.now;
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        run.attempts += 1;
        let attempt = run.attempts;
        let kind = run.bring_back_command(vm, host);
        let timeout = self.bring_back_timeout_ms(&kind);
        let id = self.issue(kind, timeout, attempt, Purpose::Vm { vm });
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        run.command = Some(id);
        run.set(VmPhase::Starting, now);
    }

    /// A start boots; a resume reads the VM's memory back and an unshelve its disk, which take
    /// a migration's worth of time.
    pub(super) fn bring_back_timeout_ms(&self, kind: &CommandKind) -> Millis {
        match kind {
            CommandKind::ResumeVm { .. } | CommandKind::UnshelveVm { .. } => {
                self.settings.migration_timeout_ms
            }
            _ => self.settings.vm_start_timeout_ms,
        }
    }

    pub(super) fn on_vm_outcome(&mut self, vm: VmId, command: CommandId, outcome: Outcome) {
        let Some(run) = self.vms.get_mut(&vm) else {
            return;
        };
        if run.command != Some(command) {
            return;
        }
        run.command = None;
        let phase = run.phase;
        let from = run.from;
        if phase == VmPhase::Migrating {
            self.count_migration(from, false);
        }
        match outcome {
            Outcome::Succeeded(observation) => self.on_vm_succeeded(vm, phase, observation),
            Outcome::Failed { error, refused } => self.on_vm_failed(vm, phase, error, refused),
            Outcome::TimedOut => self.on_vm_failed(
                vm,
                phase,
                format!("{} timed out", phase_label(phase)),
                false,
            ),
        }
        self.advance_vms();
    }

    fn on_vm_succeeded(&mut self, vm: VmId, phase: VmPhase, observation: Observation) {
        let now = self.now;
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        run.attempts = 0;
        match phase {
            VmPhase::Migrating => {
                let to = run.to.expect("a migration has a destination");
                let is_return = run.is_return();
                run.set(VmPhase::Done, now);
                self.cluster.vms[vm.index()].host = to;
                if is_return {
                    self.counters.returns += 1;
                } else {
                    self.counters.migrations += 1;
                }
            }
            VmPhase::ShuttingDown => {
                if let Observation::ShutDown { forced: true } = observation {
                    self.counters.forced_shutdowns += 1;
                }
                run.set(VmPhase::Stopped, now);
                self.cluster.vms[vm.index()].state = crate::model::VmState::Stopped;
                if run.starts_elsewhere() {
                    let to = run.to.expect("a restart has a destination");
                    self.start_vm(vm, to);
                } else if run.kind == ActionKind::Suspend {
                    self.counters.suspends += 1;
                } else {
                    self.counters.shutdowns += 1;
                }
            }
            VmPhase::Starting => {
                let host = run.to.unwrap_or(run.from);
                let down_since = run.down_since.take().unwrap_or(now);
                run.downtime_ms += now.saturating_sub(down_since);
                run.set(VmPhase::Done, now);
                let spec = &mut self.cluster.vms[vm.index()];
                spec.host = host;
                spec.state = crate::model::VmState::Running;
                match self.vms[&vm].kind {
                    ActionKind::Restart => self.counters.restarts += 1,
                    ActionKind::Shelve => self.counters.shelves += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn on_vm_failed(&mut self, vm: VmId, phase: VmPhase, error: String, refused: bool) {
        let now = self.now;
        let keep = self.settings.attempts_kept_per_vm;
        let max = self.settings.max_step_attempts;
        let backoff = self.settings.backoff_ms(self.vms[&vm].attempts);
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        run.record_failure(now, error.clone(), keep);
        if phase == VmPhase::Migrating {
            self.counters.migrations_failed += 1;
            // Another destination next time (KubeVirt: a new migration object per attempt). A
            // refusal rules the destination out; a timeout or error might be the network, but
            // trying elsewhere is just as cheap and spreads the risk.
            if let Some(to) = run.to {
                run.tried.push(to);
            }
            if refused && !run.is_return() {
                run.to = None;
            }
        }
        if phase == VmPhase::Starting {
            // The VM is shut down whatever happens next; a restart tries another host next time.
            run.set(VmPhase::Stopped, now);
            if run.starts_elsewhere() {
                if let Some(to) = run.to {
                    run.tried.push(to);
                }
            }
        }
        if run.attempts >= max {
            if phase == VmPhase::Starting && refused && run.starts_elsewhere() {
                // Refused everywhere it was tried: the VM is already shut down, so it can
                // wait safely for its own host instead of failing that host.
                // (`on_vm_outcome` then lets its host's evacuation finish.)
                self.come_back_on_own_host(vm);
                return;
            }
            self.fail_vm(vm, error);
            return;
        }
        // A failed start leaves the VM stopped, to be started again after the backoff; anything
        // else goes back to pending (a migration then picks another destination).
        let back_to = if phase == VmPhase::Starting {
            VmPhase::Stopped
        } else {
            VmPhase::Pending
        };
        run.set(back_to, now);
        run.retry_at = Some(now + backoff);
    }

    /// A VM action that ran out of attempts or time fails the host it was leaving.
    fn fail_vm(&mut self, vm: VmId, error: String) {
        let now = self.now;
        let keep = self.settings.attempts_kept_per_vm;
        let run = self.vms.get_mut(&vm).expect("vm run exists");
        if run.is_return() {
            // The VM runs where it is; nothing is lost and no host is at fault. The re-plan
            // after the wave takes it from there.
            if run.history.back().is_none_or(|last| last.error != error) {
                run.record_failure(now, error, keep);
            }
            run.set(VmPhase::Failed, now);
            self.counters.returns_failed += 1;
            return;
        }
        let stopped = run.phase == VmPhase::Stopped;
        // A VM that is shut down stays stopped (abort or skip starts it again); others failed.
        if !stopped {
            run.set(VmPhase::Failed, now);
        }
        let host = run.from;
        let name = self.cluster.vm(vm).name.clone();
        let step = self.hosts[host.index()].step;
        if !matches!(
            step,
            HostStep::Done | HostStep::Skipped | HostStep::UpgradeFailed
        ) {
            self.fail_host(host, step, format!("VM {name}: {error}"));
        }
    }

    /// Once every VM that must leave a host has left (and its shutdowns are done), the host
    /// moves on to maintenance.
    pub(super) fn maybe_finish_evacuation(&mut self, host: HostId) {
        let mut any_left = false;
        for run in self.vms.values().filter(|r| r.from == host) {
            let finished = if run.stays() {
                run.phase == VmPhase::Stopped
            } else {
                matches!(run.phase, VmPhase::Done | VmPhase::Cancelled)
            };
            if !finished {
                any_left = true;
            }
        }
        if !any_left {
            self.next_step(host, HostStep::Evacuating);
        }
    }

    /// StartingVms: boot again every VM shut down on this host for its upgrade.
    pub(super) fn start_parked_vms(&mut self, host: HostId) {
        let parked: Vec<VmId> = self
            .vms
            .iter()
            .filter(|(_, r)| {
                r.from == host && r.stays() && r.phase == VmPhase::Stopped && r.command.is_none()
            })
            .filter(|(_, r)| r.attempts < self.settings.max_step_attempts)
            .filter(|(_, r)| r.retry_at.is_none_or(|t| t <= self.now))
            .map(|(vm, _)| *vm)
            .collect();
        for vm in parked {
            self.start_vm(vm, host);
        }
        let waiting = self.vms.values().any(|r| {
            r.from == host && r.stays() && matches!(r.phase, VmPhase::Stopped | VmPhase::Starting)
        });
        if !waiting {
            self.next_step(host, HostStep::StartingVms);
        }
    }

    pub(super) fn cancel_vm_actions_of(&mut self, host: HostId) {
        let now = self.now;
        for run in self.vms.values_mut().filter(|r| r.from == host) {
            if matches!(run.phase, VmPhase::Pending | VmPhase::Failed) {
                run.set(VmPhase::Cancelled, now);
            }
        }
    }

    /// VMs Drover shut down and has not started again, with the host each should start on:
    /// local VMs on their own host, restarted VMs on their destination unless that one already
    /// refused or failed a start (then their own host, which the restore brings back first).
    pub(super) fn vms_stopped_by_us_for(&self, host: HostId) -> Vec<(VmId, HostId)> {
        self.vms
            .iter()
            .filter(|(_, r)| r.from == host && r.phase == VmPhase::Stopped && r.command.is_none())
            .map(|(vm, r)| {
                let destination = match r.to {
                    Some(to) if r.starts_elsewhere() && !r.tried.contains(&to) => to,
                    _ => r.from,
                };
                (*vm, destination)
            })
            .collect()
    }

    pub(super) fn vm_started_after_restore(&mut self, vm: VmId, host: HostId) {
        let now = self.now;
        if let Some(run) = self.vms.get_mut(&vm) {
            let down_since = run.down_since.take().unwrap_or(now);
            run.downtime_ms += now.saturating_sub(down_since);
            run.set(VmPhase::Done, now);
            let spec = &mut self.cluster.vms[vm.index()];
            spec.host = host;
            spec.state = crate::model::VmState::Running;
        }
    }
}

pub(super) fn phase_label(phase: VmPhase) -> &'static str {
    match phase {
        VmPhase::Pending => "pending",
        VmPhase::Migrating => "migration",
        VmPhase::ShuttingDown => "shutdown",
        VmPhase::Stopped => "stopped",
        VmPhase::Starting => "start",
        VmPhase::Done => "done",
        VmPhase::Failed => "failed",
        VmPhase::Cancelled => "cancelled",
    }
}
