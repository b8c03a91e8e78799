//! Durable execution as a pure state machine: the per-host workflow and the run around it.
//!
//! Inputs are events with a time ([`Input`]); outputs are driver calls as data ([`Command`]),
//! taken with [`Execution::poll_command`]. The engine journals every input and every command, so
//! replaying the inputs of a run rebuilds exactly the same state: start and resume are one path.
//!
//! Per host: prechecking (facts, boot id) → cordon → evacuate (the wave's migrations, restarts
//! and shutdowns, within concurrency limits and batched eviction) → enter maintenance → upgrade
//! (or wait for the operator in manual mode) → verify (the boot id changed — if not, reboot —
//! and the version is the target) → health check → exit maintenance → uncordon → start the VMs
//! shut down on it. Steps that fail are retried with backoff up to a cap; then the host is
//! `upgrade-failed` and the run halts until `retry`, `skip` or `abort`. When a wave's hosts are
//! done, its returns (`Wave::returns`) bring constrained VMs back home (`returns`); then the
//! cluster is discovered again and re-planned from what was observed. Platform settings that
//! block a roll (HA, WLB, a VM's media) are turned off before a wave starts and put back when
//! the run completes or is aborted (`blocking_settings`).
//!
//! No IO, no clock, no randomness: same inputs, same outputs.

mod blocking_settings;
mod compatibility;
mod hosts;
mod returns;
mod settings;
mod status;
mod types;
mod vms;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::model::{ApprovalMode, Cluster, HostId, HostState, VmId};
use crate::plan::Plan;

pub use blocking_settings::{SettingReport, SettingStep};
pub use hosts::HostStep;
pub use settings::ExecutionSettings;
pub use status::{
    HostStatus, RunCondition, RunReport, RunStatus, VmActionReport, VmAttempt, VmDowntime, VmStatus,
};
pub use types::{
    Command, CommandId, CommandKind, Discovered, HostFacts, Input, Millis, Observation,
    OperatorCommand, Outcome,
};

use blocking_settings::SettingRun;
use compatibility::CompatibilityRaise;
use hosts::HostRun;
use vms::VmRun;

/// Where the run as a whole stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunPhase {
    /// `policy.approval: manual`: the plan waits for `approve`.
    AwaitingApproval,
    Running,
    /// A host failed or no safe plan exists any more; waits for retry, skip or abort.
    Halted {
        reason: String,
    },
    /// Abort asked: in-flight calls finish, then everything Drover changed is restored.
    Aborting,
    Completed,
    Aborted,
}

impl RunPhase {
    pub fn name(&self) -> &'static str {
        match self {
            RunPhase::AwaitingApproval => "awaiting-approval",
            RunPhase::Running => "running",
            RunPhase::Halted { .. } => "halted",
            RunPhase::Aborting => "aborting",
            RunPhase::Completed => "completed",
            RunPhase::Aborted => "aborted",
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self, RunPhase::Completed | RunPhase::Aborted)
    }
}

/// Why a command was issued, so its outcome can be routed back.
#[derive(Clone, Debug, PartialEq)]
enum Purpose {
    Discover,
    HostStep {
        host: HostId,
    },
    Vm {
        vm: VmId,
    },
    /// Restoring what Drover changed (skip, abort); failures are recorded, never halt.
    Restore {
        host: HostId,
        vm: Option<VmId>,
    },
    /// The final step: raising the cluster compatibility level.
    CompatibilityLevel,
    /// Resolving or restoring a blocking platform setting (index into `setting_runs`).
    Setting {
        index: usize,
    },
}

/// Why an operator command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("the run is {phase}; `{command}` does not apply")]
    WrongPhase {
        command: &'static str,
        phase: &'static str,
    },
    #[error("unknown host {0:?}")]
    UnknownHost(String),
    #[error("host {host} is {step}, not upgrade-failed; only a failed host can be skipped")]
    NotFailed { host: String, step: &'static str },
    #[error("host {host} is {step}, not waiting for a manual upgrade")]
    NotAwaitingManualUpgrade { host: String, step: &'static str },
    #[error("the run is halted on raising the cluster compatibility level to {level}, which cannot be skipped: `retry` tries again, `abort` finishes the run without raising it")]
    CompatibilityRaiseNotSkippable { level: String },
}

/// The whole run: the cluster as last observed, the plan, and every host's and VM's progress.
pub struct Execution {
    cluster: Cluster,
    settings: ExecutionSettings,
    initial_plan: Plan,
    current_plan: Plan,
    phase: RunPhase,
    paused: bool,
    window_open: bool,
    /// While the window is closed: when the engine says the next one opens.
    next_window_opening_at: Option<Millis>,
    now: Millis,
    started_at: Millis,
    hosts: Vec<HostRun>,
    vms: BTreeMap<VmId, VmRun>,
    /// Actions of earlier waves that a later action of the same VM replaced in `vms`, oldest
    /// first: the report keeps every action (a VM restarted twice appears twice). At most one
    /// per VM per wave.
    replaced_vm_actions: Vec<(VmId, VmRun)>,
    /// Hosts of the wave in progress, in plan order.
    wave_hosts: Vec<HostId>,
    /// The returns of the wave in progress, as planned (`Wave::returns`), and whether they were
    /// started (once its hosts are all done or skipped).
    wave_returns: Vec<crate::plan::Action>,
    returns_started: bool,
    waves_started: usize,
    awaiting_discovery: bool,
    /// A restore succeeded after the last discovery: what was observed may be out of date.
    restored_since_discovery: bool,
    next_command_id: u64,
    outbox: VecDeque<Command>,
    in_flight: BTreeMap<CommandId, Purpose>,
    /// Live migrations in flight per source host.
    migrating_from: BTreeMap<HostId, u32>,
    /// Restarts started in the current eviction batch, and when that batch began.
    eviction_batch: (Millis, u32),
    counters: status::Counters,
    /// The final raise of the cluster compatibility level, when the policy asks for one.
    compatibility: Option<CompatibilityRaise>,
    /// A plan given at the start (`with_plan`): after each discovery the run keeps to its
    /// remaining waves while the independent checker accepts them on the observed cluster, and
    /// re-plans (dropping it) only when it does not.
    given_plan: Option<Plan>,
    /// Blocking platform settings the run resolved or is resolving, in the order it met them.
    setting_runs: Vec<SettingRun>,
}

impl Execution {
    /// A new run of the plan for `cluster`, observed at `now`. The plan is made here, from the
    /// observation, so that a replay of the journal makes the same one.
    pub fn new(cluster: Cluster, now: Millis) -> Self {
        let plan = crate::planner::plan(&cluster);
        Self::start(cluster, plan, None, now)
    }

    /// A new run of a given plan (an operator reviewed it) for `cluster`, observed at `now`.
    /// The plan is used when the independent checker finds it safe on this cluster; otherwise
    /// the run plans afresh, as `new` does. Replaying the same inputs with the same plan gives
    /// the same run.
    pub fn with_plan(cluster: Cluster, plan: Plan, now: Millis) -> Self {
        if !plan.is_feasible() || !crate::check::check_plan(&cluster, &plan).is_empty() {
            return Self::new(cluster, now);
        }
        Self::start(cluster, plan.clone(), Some(plan), now)
    }

    fn start(cluster: Cluster, plan: Plan, given_plan: Option<Plan>, now: Millis) -> Self {
        let settings = ExecutionSettings::from_policy(&cluster.policy);
        let compatibility = settings
            .raise_compatibility_level_to
            .clone()
            .map(CompatibilityRaise::new);
        let cluster_has_no_windows = cluster.policy.windows.is_empty();
        let hosts = cluster
            .host_ids()
            .map(|id| HostRun::new(cluster.host(id), now))
            .collect();
        let phase = if settings.approval == ApprovalMode::Manual {
            RunPhase::AwaitingApproval
        } else {
            RunPhase::Running
        };
        let mut execution = Execution {
            cluster,
            settings,
            initial_plan: plan.clone(),
            current_plan: plan,
            phase,
            paused: false,
            // With windows in the policy, nothing starts before the engine (which knows the
            // calendar) has said that one is open.
            window_open: cluster_has_no_windows,
            next_window_opening_at: None,
            now,
            started_at: now,
            hosts,
            vms: BTreeMap::new(),
            replaced_vm_actions: Vec::new(),
            wave_hosts: Vec::new(),
            wave_returns: Vec::new(),
            returns_started: false,
            waves_started: 0,
            awaiting_discovery: false,
            restored_since_discovery: false,
            next_command_id: 1,
            outbox: VecDeque::new(),
            in_flight: BTreeMap::new(),
            migrating_from: BTreeMap::new(),
            eviction_batch: (0, 0),
            counters: status::Counters::default(),
            compatibility,
            given_plan,
            setting_runs: Vec::new(),
        };
        if !execution.current_plan.is_feasible() {
            execution.phase = RunPhase::Halted {
                reason: no_safe_plan_reason(&execution.current_plan),
            };
        }
        execution.advance();
        execution
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The plan the run started with (what the operator approved).
    pub fn initial_plan(&self) -> &Plan {
        &self.initial_plan
    }

    /// The time of the last input handled (the run's clock, virtual on the simulator).
    pub fn now(&self) -> Millis {
        self.now
    }

    /// When the run started (its first observation).
    pub fn started_at(&self) -> Millis {
        self.started_at
    }

    pub fn phase(&self) -> &RunPhase {
        &self.phase
    }

    pub fn is_finished(&self) -> bool {
        self.phase.is_finished()
    }

    /// The next driver call to make, if any. Every command returned must later come back as an
    /// [`Input::Outcome`].
    pub fn poll_command(&mut self) -> Option<Command> {
        self.outbox.pop_front()
    }

    /// Commands issued and not yet answered.
    pub fn commands_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// When the run next needs an [`Input::Tick`] even if nothing else happens.
    pub fn next_wakeup(&self) -> Option<Millis> {
        let hosts = self
            .hosts
            .iter()
            .flat_map(|h| [h.retry_at, h.restore_retry_at])
            .flatten();
        let vms = self
            .vms
            .values()
            .flat_map(|v| v.wakeups(&self.settings))
            .flatten();
        let eviction = (self.eviction_batch.1 >= self.settings.batch_eviction_size)
            .then_some(self.eviction_batch.0 + self.settings.batch_eviction_interval_ms);
        let window = if self.window_open {
            None
        } else {
            self.next_window_opening_at
        };
        hosts
            .chain(vms)
            .chain(eviction)
            .chain(window)
            .chain(self.compatibility_retry_at())
            .chain(self.setting_wakeups())
            .filter(|t| *t > self.now)
            .min()
    }

    /// Whether a maintenance window is open, as the engine last said.
    pub fn window_open(&self) -> bool {
        self.window_open
    }

    /// While the window is closed, when the engine said the next one opens.
    pub fn next_window_opening_at(&self) -> Option<Millis> {
        self.next_window_opening_at
    }

    /// Whether the run would start its next wave now but for a closed maintenance window.
    pub fn is_waiting_for_window(&self) -> bool {
        !self.window_open
            && self.phase == RunPhase::Running
            && !self.paused
            && self.wave_hosts.is_empty()
            && !self.awaiting_discovery
    }

    /// Whether an operator command applies now; the engine asks before journaling it, so a
    /// refused command changes nothing.
    pub fn check_operator(&self, command: &OperatorCommand) -> Result<(), OperatorError> {
        let wrong_phase = || OperatorError::WrongPhase {
            command: command.name(),
            phase: self.phase.name(),
        };
        match command {
            OperatorCommand::Approve if self.phase != RunPhase::AwaitingApproval => {
                Err(wrong_phase())
            }
            OperatorCommand::Retry if !matches!(self.phase, RunPhase::Halted { .. }) => {
                Err(wrong_phase())
            }
            OperatorCommand::Pause | OperatorCommand::Resume
                if self.phase.is_finished() || self.phase == RunPhase::Aborting =>
            {
                Err(wrong_phase())
            }
            OperatorCommand::Abort
                if self.phase.is_finished() || self.phase == RunPhase::Aborting =>
            {
                Err(wrong_phase())
            }
            OperatorCommand::Skip { host } => {
                if let Some(level) = self.failed_compatibility_level() {
                    let level = level.to_string();
                    return Err(OperatorError::CompatibilityRaiseNotSkippable { level });
                }
                let id = self.host_id(host)?;
                match self.hosts[id.index()].step {
                    HostStep::UpgradeFailed => Ok(()),
                    step => Err(OperatorError::NotFailed {
                        host: host.clone(),
                        step: step.name(),
                    }),
                }
            }
            OperatorCommand::Continue { host } => {
                let id = self.host_id(host)?;
                match self.hosts[id.index()].step {
                    HostStep::AwaitingManualUpgrade => Ok(()),
                    step => Err(OperatorError::NotAwaitingManualUpgrade {
                        host: host.clone(),
                        step: step.name(),
                    }),
                }
            }
            _ => Ok(()),
        }
    }

    fn host_id(&self, name: &str) -> Result<HostId, OperatorError> {
        self.cluster
            .host_named(name)
            .ok_or_else(|| OperatorError::UnknownHost(name.to_string()))
    }

    /// Feeds one input at time `at` (never earlier than the previous input's time).
    pub fn handle(&mut self, at: Millis, input: Input) {
        self.now = self.now.max(at);
        match input {
            Input::Outcome { command, outcome } => self.on_outcome(command, outcome),
            Input::Operator(command) => {
                if self.check_operator(&command).is_ok() {
                    self.on_operator(command);
                }
            }
            Input::WindowChanged {
                open,
                next_opening_at,
            } => {
                self.window_open = open;
                self.next_window_opening_at = (!open).then_some(next_opening_at).flatten();
            }
            Input::Resumed {
                previous_process_last_wrote_at,
            } => self.discount_downtime(self.now.saturating_sub(previous_process_last_wrote_at)),
            Input::Tick => {}
        }
        self.advance();
    }

    /// Moves the clocks of Drover's own waits forward by the time no process ran, so that
    /// only time Drover was there to act counts against their limits.
    fn discount_downtime(&mut self, downtime_ms: Millis) {
        for run in self.vms.values_mut() {
            run.discount_downtime(downtime_ms);
        }
        for run in &mut self.hosts {
            if let Some(since) = run.restore_failing_since.as_mut() {
                *since += downtime_ms;
            }
        }
        self.discount_setting_downtime(downtime_ms);
    }

    fn issue(
        &mut self,
        kind: CommandKind,
        timeout_ms: u64,
        attempt: u32,
        purpose: Purpose,
    ) -> CommandId {
        let id = CommandId(self.next_command_id);
        self.next_command_id += 1;
        self.in_flight.insert(id, purpose);
        self.outbox.push_back(Command {
            id,
            kind,
            timeout_ms,
            attempt,
        });
        id
    }

    fn on_outcome(&mut self, command: CommandId, outcome: Outcome) {
        let Some(purpose) = self.in_flight.remove(&command) else {
            return;
        };
        match purpose {
            Purpose::Discover => self.on_discovered(outcome),
            Purpose::HostStep { host } => self.on_host_outcome(host, command, outcome),
            Purpose::Vm { vm } => self.on_vm_outcome(vm, command, outcome),
            Purpose::Restore { host, vm } => self.on_restore_outcome(host, vm, outcome),
            Purpose::CompatibilityLevel => self.on_compatibility_outcome(outcome),
            Purpose::Setting { index } => self.on_setting_outcome(index, command, outcome),
        }
    }

    fn on_operator(&mut self, command: OperatorCommand) {
        match command {
            OperatorCommand::Approve => self.phase = RunPhase::Running,
            OperatorCommand::Pause => self.paused = true,
            OperatorCommand::Resume => self.paused = false,
            OperatorCommand::Retry => self.retry_failed(),
            OperatorCommand::Skip { host } => {
                if let Some(id) = self.cluster.host_named(&host) {
                    self.skip_host(id);
                }
            }
            OperatorCommand::Abort => self.phase = RunPhase::Aborting,
            OperatorCommand::Continue { host } => {
                if let Some(id) = self.cluster.host_named(&host) {
                    self.continue_manual(id);
                }
            }
        }
    }

    /// Moves every part of the run forward as far as it can go without new input.
    fn advance(&mut self) {
        self.advance_restores();
        self.advance_setting_restores();
        match self.phase {
            RunPhase::Running => {
                self.advance_wave_hosts();
                self.maybe_finish_wave();
                self.maybe_start_wave();
            }
            RunPhase::Aborting => self.advance_abort(),
            // A halted run lets restores (of skipped hosts) finish but starts nothing new.
            RunPhase::Halted { .. }
            | RunPhase::AwaitingApproval
            | RunPhase::Completed
            | RunPhase::Aborted => {}
        }
    }

    fn maybe_start_wave(&mut self) {
        if !self.wave_hosts.is_empty()
            || self.awaiting_discovery
            || self.paused
            || !self.window_open
        {
            return;
        }
        // A host being restored still counts as unavailable (and a run with a restore pending
        // is not complete).
        if self.phase != RunPhase::Running || self.restores_pending() {
            return;
        }
        let Some(wave) = self.current_plan.waves.first().cloned() else {
            self.finish_after_last_wave();
            return;
        };
        if self.halt_on_skipped_host_left_in_maintenance() {
            return;
        }
        if !self.blocking_settings_resolved() {
            return;
        }
        self.waves_started += 1;
        for action in &wave.actions {
            let run = VmRun::new(action, self.waves_started, self.now);
            if let Some(earlier) = self.vms.insert(action.vm, run) {
                self.replaced_vm_actions.push((action.vm, earlier));
            }
        }
        for host in &wave.hosts {
            self.hosts[host.index()].start(self.waves_started, self.now);
        }
        self.wave_hosts = wave.hosts.clone();
        self.wave_returns = wave.returns.clone();
        self.returns_started = false;
        self.advance_wave_hosts();
    }

    /// A wave is over when each of its hosts is done or skipped; then the cluster is observed
    /// again and re-planned.
    fn maybe_finish_wave(&mut self) {
        if self.wave_hosts.is_empty() {
            return;
        }
        let finished = self.wave_hosts.iter().all(|h| {
            matches!(
                self.hosts[h.index()].step,
                HostStep::Done | HostStep::Skipped
            )
        });
        if !finished {
            return;
        }
        // The wave's returns run before the re-plan: the next wave starts from where they left
        // the VMs.
        if !self.returns_started {
            self.returns_started = true;
            self.start_returns();
        }
        if self.returns_running() {
            return;
        }
        self.finish_returns();
        self.wave_hosts.clear();
        self.discover();
    }

    /// Observes the whole cluster again; the run plans again from the answer.
    fn discover(&mut self) {
        self.awaiting_discovery = true;
        let timeout = self.settings.step_timeout_ms;
        self.issue(CommandKind::Discover, timeout, 1, Purpose::Discover);
    }

    fn on_discovered(&mut self, outcome: Outcome) {
        self.awaiting_discovery = false;
        self.restored_since_discovery = false;
        match outcome {
            Outcome::Succeeded(Observation::Discovered(discovered)) => {
                self.merge_discovery(discovered);
                self.replan();
            }
            Outcome::Succeeded(_) => self.replan(),
            Outcome::Failed { error, .. } => self.halt(format!("discovery failed: {error}")),
            Outcome::TimedOut => self.halt("discovery timed out".into()),
        }
    }

    /// Plans again from the observed cluster. Hosts that failed or were skipped are left out
    /// (and receive no VM); hosts already upgraded are at the target and need nothing.
    fn replan(&mut self) {
        let mut planning = self.cluster.clone();
        for (index, run) in self.hosts.iter().enumerate() {
            if matches!(run.step, HostStep::Skipped | HostStep::UpgradeFailed) {
                planning.hosts[index].state = HostState::Down;
            }
        }
        let plan = match self.rest_of_given_plan(&planning) {
            Some(rest) => rest,
            None => crate::planner::plan(&planning),
        };
        if !plan.is_feasible() {
            let reason = no_safe_plan_reason(&plan);
            self.current_plan = plan;
            self.halt(reason);
            return;
        }
        self.current_plan = plan;
    }

    /// What is left of the given plan, if the checker still finds it safe on what was
    /// observed; else the given plan is dropped for good and the run re-plans.
    fn rest_of_given_plan(&mut self, planning: &Cluster) -> Option<Plan> {
        let given = self.given_plan.as_ref()?;
        let rest_waves = given
            .waves
            .iter()
            .skip(self.waves_started)
            .cloned()
            .collect();
        let fresh = crate::planner::plan(planning);
        let rest = fresh.with_waves(rest_waves);
        if fresh.is_feasible() && crate::check::check_plan(planning, &rest).is_empty() {
            return Some(rest);
        }
        self.given_plan = None;
        None
    }

    /// Whether the run still follows the plan it was given (`with_plan`).
    pub fn follows_given_plan(&self) -> bool {
        self.given_plan.is_some()
    }

    /// Folds a discovery into the run's view, matching hosts and VMs by name. New hosts and VMs
    /// get new ids; ids never change, so journal replays stay valid.
    fn merge_discovery(&mut self, discovered: Discovered) {
        let mut host_ids = Vec::with_capacity(discovered.hosts.len());
        for host in discovered.hosts {
            let id = match self.cluster.host_named(&host.name) {
                Some(id) => {
                    // What the platform says about state; what the inventory says about role,
                    // size and labels (a driver may not know them).
                    let known = &mut self.cluster.hosts[id.index()];
                    known.version = host.version;
                    known.state = host.state;
                    known.cordoned = host.cordoned;
                    id
                }
                None => {
                    self.hosts.push(HostRun::new(&host, self.now));
                    self.cluster.hosts.push(host);
                    HostId(self.cluster.hosts.len() as u32 - 1)
                }
            };
            host_ids.push(id);
        }
        if let Some(settings) = discovered.settings {
            self.cluster.settings = settings;
        }
        let mut seen: BTreeSet<VmId> = BTreeSet::new();
        for mut vm in discovered.vms {
            vm.host = host_ids[vm.host.index()];
            let id = match self.cluster.vms.iter().position(|v| v.name == vm.name) {
                Some(index) => {
                    // Where it runs and whether it runs come from the platform; how it may be
                    // moved (tools, local storage, restart policy, anti-affinity) stays as the
                    // run started with it, inventory overrides included.
                    let known = &mut self.cluster.vms[index];
                    known.host = vm.host;
                    known.state = vm.state;
                    VmId(index as u32)
                }
                None => {
                    self.cluster.vms.push(vm);
                    VmId(self.cluster.vms.len() as u32 - 1)
                }
            };
            seen.insert(id);
        }
        // A VM the platform no longer reports is not running anywhere Drover can see.
        for (index, vm) in self.cluster.vms.iter_mut().enumerate() {
            if !seen.contains(&VmId(index as u32)) {
                vm.state = crate::model::VmState::Stopped;
            }
        }
    }

    fn halt(&mut self, reason: String) {
        if matches!(self.phase, RunPhase::Running | RunPhase::AwaitingApproval) {
            self.phase = RunPhase::Halted { reason };
        }
    }

    fn retry_failed(&mut self) {
        self.phase = RunPhase::Running;
        if self.retry_compatibility_raise() {
            return;
        }
        self.retry_failed_resolves();
        let now = self.now;
        for run in self
            .hosts
            .iter_mut()
            .filter(|h| h.step == HostStep::UpgradeFailed)
        {
            run.retry(now);
        }
        for vm in self.vms.values_mut() {
            vm.retry_after_halt(now);
        }
        self.restore_skipped_hosts_again();
        if self.wave_hosts.is_empty() && !self.awaiting_discovery {
            // Halted between waves (discovery failed or no safe plan): observe and plan again.
            self.discover();
        }
    }
}

fn no_safe_plan_reason(plan: &Plan) -> String {
    let failed: Vec<String> = plan
        .failed_prechecks()
        .map(|c| format!("{}: {}", c.id, c.message))
        .collect();
    format!("no safe plan: {}", failed.join("; "))
}

#[cfg(test)]
mod tests;
