//! The per-host workflow: which step a host is at, which driver call each step makes, and how
//! outcomes move it on, retry it with backoff, or fail it. Also the restores of skip and abort.

use super::{CommandKind, Execution, Millis, Observation, Outcome, Purpose, RunPhase};
use crate::model::{Host, HostId, HostState, UpgradeMode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostStep {
    /// Not in a wave yet (or not part of the upgrade at all).
    Waiting,
    /// Reading version and boot id before touching anything.
    Prechecking,
    Cordoning,
    Evacuating,
    EnteringMaintenance,
    Upgrading,
    /// Manual mode: the operator runs the installer, then `drover continue HOST`.
    AwaitingManualUpgrade,
    /// Reading version and boot id after the upgrade.
    Verifying,
    /// The upgrade did not reboot the host, so Drover reboots it (Oracle PCA).
    Rebooting,
    HealthChecking,
    ExitingMaintenance,
    Uncordoning,
    /// Starting the VMs that were shut down on this host for its upgrade.
    StartingVms,
    Done,
    UpgradeFailed,
    Skipped,
}

impl HostStep {
    pub fn name(self) -> &'static str {
        match self {
            HostStep::Waiting => "waiting",
            HostStep::Prechecking => "prechecking",
            HostStep::Cordoning => "cordoning",
            HostStep::Evacuating => "evacuating",
            HostStep::EnteringMaintenance => "entering-maintenance",
            HostStep::Upgrading => "upgrading",
            HostStep::AwaitingManualUpgrade => "awaiting-manual-upgrade",
            HostStep::Verifying => "verifying",
            HostStep::Rebooting => "rebooting",
            HostStep::HealthChecking => "health-checking",
            HostStep::ExitingMaintenance => "exiting-maintenance",
            HostStep::Uncordoning => "uncordoning",
            HostStep::StartingVms => "starting-vms",
            HostStep::Done => "done",
            HostStep::UpgradeFailed => "upgrade-failed",
            HostStep::Skipped => "skipped",
        }
    }

    /// Whether the host is out of service because of the run.
    pub fn is_unavailable(self) -> bool {
        !matches!(self, HostStep::Waiting | HostStep::Done | HostStep::Skipped)
    }
}

/// One host's progress and what Drover changed on it (so that it restores only that).
#[derive(Clone, Debug)]
pub(super) struct HostRun {
    pub step: HostStep,
    pub since: Millis,
    /// Attempts of the current step so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub retry_at: Option<Millis>,
    pub command: Option<super::CommandId>,
    pub wave: Option<usize>,
    pub failed_step: Option<HostStep>,
    pub was_in_maintenance: bool,
    pub was_cordoned: bool,
    pub cordoned_by_us: bool,
    pub maintenance_by_us: bool,
    pub boot_id_before: Option<String>,
    pub rebooted_by_us: bool,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    /// Restores still to do for this host (skip/abort), in order, and their failures.
    pub restore_queue: std::collections::VecDeque<(CommandKind, Option<super::VmId>)>,
    /// The restore call in flight for this host, if any.
    pub restore_in_flight: Option<(CommandKind, Option<super::VmId>)>,
    /// A refused restore is tried again (the platform may still be finishing an upgrade) until
    /// `upgrade_timeout` after its first failure.
    pub restore_retry_at: Option<Millis>,
    pub restore_failing_since: Option<Millis>,
    pub restore_attempts: u32,
    pub restore_errors: Vec<String>,
}

impl HostRun {
    pub fn new(host: &Host, now: Millis) -> Self {
        HostRun {
            step: HostStep::Waiting,
            since: now,
            attempts: 0,
            last_error: None,
            retry_at: None,
            command: None,
            wave: None,
            failed_step: None,
            was_in_maintenance: host.state == HostState::Maintenance,
            was_cordoned: host.cordoned,
            cordoned_by_us: false,
            maintenance_by_us: false,
            boot_id_before: None,
            rebooted_by_us: false,
            started_at: None,
            finished_at: None,
            restore_queue: std::collections::VecDeque::new(),
            restore_in_flight: None,
            restore_retry_at: None,
            restore_failing_since: None,
            restore_attempts: 0,
            restore_errors: Vec::new(),
        }
    }

    pub fn start(&mut self, wave: usize, now: Millis) {
        self.wave = Some(wave);
        self.started_at = Some(now);
        self.enter(HostStep::Prechecking, now);
    }

    pub fn enter(&mut self, step: HostStep, now: Millis) {
        self.step = step;
        self.since = now;
        self.attempts = 0;
        self.retry_at = None;
        self.command = None;
    }

    /// Operator retry of a failed host: back to the step that failed, with fresh attempts.
    pub fn retry(&mut self, now: Millis) {
        let step = self.failed_step.take().unwrap_or(HostStep::Prechecking);
        self.enter(step, now);
    }
}

impl Execution {
    /// Issues the next call of every host of the current wave that is ready for one.
    pub(super) fn advance_wave_hosts(&mut self) {
        for host in self.wave_hosts.clone() {
            self.advance_host(host);
        }
        self.advance_vms();
    }

    fn advance_host(&mut self, host: HostId) {
        let run = &self.hosts[host.index()];
        if run.command.is_some() || run.retry_at.is_some_and(|t| t > self.now) {
            return;
        }
        let step = run.step;
        match step {
            HostStep::Evacuating => self.maybe_finish_evacuation(host),
            HostStep::Waiting
            | HostStep::AwaitingManualUpgrade
            | HostStep::Done
            | HostStep::UpgradeFailed
            | HostStep::Skipped => {}
            _ => self.issue_step(host, step),
        }
    }

    /// The call a step makes, or `None` when the step has nothing to do and is passed through.
    fn step_command(&self, host: HostId, step: HostStep) -> Option<(CommandKind, u64)> {
        let run = &self.hosts[host.index()];
        let quick = self.settings.step_timeout_ms;
        match step {
            HostStep::Prechecking | HostStep::Verifying => {
                Some((CommandKind::ReadHostFacts { host }, quick))
            }
            HostStep::Cordoning => {
                (!run.was_cordoned).then_some((CommandKind::Cordon { host }, quick))
            }
            HostStep::EnteringMaintenance => {
                (!run.was_in_maintenance).then_some((CommandKind::EnterMaintenance { host }, quick))
            }
            HostStep::Upgrading => Some((
                CommandKind::Upgrade {
                    host,
                    target: self.cluster.target_version.clone(),
                },
                self.settings.upgrade_timeout_ms,
            )),
            HostStep::Rebooting => Some((
                CommandKind::Reboot {
                    host,
                    boot_id_before: run.boot_id_before.clone().unwrap_or_default(),
                },
                self.settings.reboot_timeout_ms,
            )),
            HostStep::HealthChecking => Some((CommandKind::HealthCheck { host }, quick)),
            HostStep::ExitingMaintenance => run
                .maintenance_by_us
                .then_some((CommandKind::ExitMaintenance { host }, quick)),
            HostStep::Uncordoning => run
                .cordoned_by_us
                .then_some((CommandKind::Uncordon { host }, quick)),
            HostStep::StartingVms => None,
            _ => None,
        }
    }

    fn issue_step(&mut self, host: HostId, step: HostStep) {
        if step == HostStep::StartingVms {
            self.start_parked_vms(host);
            return;
        }
        if step == HostStep::Upgrading && self.settings.mode == UpgradeMode::Manual {
            let now = self.now;
            self.hosts[host.index()].enter(HostStep::AwaitingManualUpgrade, now);
            return;
        }
        match self.step_command(host, step) {
            Some((kind, timeout_ms)) => {
                let attempt = self.hosts[host.index()].attempts + 1;
                let id = self.issue(kind, timeout_ms, attempt, Purpose::HostStep { host });
                let run = &mut self.hosts[host.index()];
                run.attempts = attempt;
                run.command = Some(id);
            }
            None => self.next_step(host, step),
        }
    }

    /// Moves a host to the step after `step`.
    pub(super) fn next_step(&mut self, host: HostId, step: HostStep) {
        let following = match step {
            HostStep::Prechecking => HostStep::Cordoning,
            HostStep::Cordoning => HostStep::Evacuating,
            HostStep::Evacuating => HostStep::EnteringMaintenance,
            HostStep::EnteringMaintenance => HostStep::Upgrading,
            HostStep::Upgrading | HostStep::AwaitingManualUpgrade | HostStep::Rebooting => {
                HostStep::Verifying
            }
            HostStep::Verifying => HostStep::HealthChecking,
            HostStep::HealthChecking => HostStep::ExitingMaintenance,
            HostStep::ExitingMaintenance => HostStep::Uncordoning,
            HostStep::Uncordoning => HostStep::StartingVms,
            HostStep::StartingVms => HostStep::Done,
            other => other,
        };
        let now = self.now;
        let run = &mut self.hosts[host.index()];
        run.enter(following, now);
        if following == HostStep::Done {
            run.finished_at = Some(now);
            self.counters.hosts_upgraded += 1;
        }
        self.advance_host(host);
    }

    pub(super) fn on_host_outcome(
        &mut self,
        host: HostId,
        command: super::CommandId,
        outcome: Outcome,
    ) {
        let run = &mut self.hosts[host.index()];
        if run.command != Some(command) {
            return;
        }
        run.command = None;
        let step = run.step;
        match outcome {
            Outcome::Succeeded(observation) => self.on_step_succeeded(host, step, observation),
            Outcome::Failed { error, .. } => {
                self.on_step_failed(host, format!("{}: {error}", step.name()))
            }
            Outcome::TimedOut => self.on_step_failed(host, format!("{}: timed out", step.name())),
        }
    }

    fn on_step_succeeded(&mut self, host: HostId, step: HostStep, observation: Observation) {
        match (step, observation) {
            (HostStep::Prechecking, Observation::HostFacts(facts)) => {
                let run = &mut self.hosts[host.index()];
                run.boot_id_before = Some(facts.boot_id);
                run.was_in_maintenance = facts.in_maintenance;
                run.was_cordoned = facts.cordoned;
            }
            (HostStep::Verifying, Observation::HostFacts(facts))
                if !self.verify_upgrade(host, &facts) =>
            {
                return
            }
            (HostStep::Cordoning, _) => self.hosts[host.index()].cordoned_by_us = true,
            (HostStep::EnteringMaintenance, _) => self.hosts[host.index()].maintenance_by_us = true,
            (HostStep::ExitingMaintenance, _) => self.hosts[host.index()].maintenance_by_us = false,
            (HostStep::Uncordoning, _) => self.hosts[host.index()].cordoned_by_us = false,
            (HostStep::Rebooting, _) => self.hosts[host.index()].rebooted_by_us = true,
            _ => {}
        }
        self.next_step(host, step);
    }

    /// Checks that the host rebooted and runs the target. Returns whether the step is done;
    /// otherwise it has moved the host to reboot or failed it.
    fn verify_upgrade(&mut self, host: HostId, facts: &super::HostFacts) -> bool {
        let now = self.now;
        let target = self.cluster.target_version.clone();
        let run = &mut self.hosts[host.index()];
        let same_boot = run.boot_id_before.as_deref() == Some(facts.boot_id.as_str());
        if same_boot && !run.rebooted_by_us {
            run.enter(HostStep::Rebooting, now);
            self.advance_host(host);
            return false;
        }
        if same_boot {
            self.fail_host(
                host,
                HostStep::Rebooting,
                "the host did not reboot: its boot id is unchanged".into(),
            );
            return false;
        }
        if facts.version != target {
            let message = format!(
                "the host runs {} after its upgrade, not the target {target}",
                facts.version
            );
            self.fail_host(host, HostStep::Upgrading, message);
            return false;
        }
        self.cluster.hosts[host.index()].version = facts.version.clone();
        true
    }

    fn on_step_failed(&mut self, host: HostId, error: String) {
        let run = &mut self.hosts[host.index()];
        run.last_error = Some(error.clone());
        if run.attempts < self.settings.max_step_attempts {
            run.retry_at = Some(self.now + self.settings.backoff_ms(run.attempts));
            return;
        }
        let step = run.step;
        self.fail_host(host, step, error);
    }

    /// Marks a host upgrade-failed at `step` and halts the run.
    pub(super) fn fail_host(&mut self, host: HostId, step: HostStep, error: String) {
        let now = self.now;
        let run = &mut self.hosts[host.index()];
        let attempts = run.attempts;
        run.enter(HostStep::UpgradeFailed, now);
        run.attempts = attempts;
        run.failed_step = Some(step);
        run.last_error = Some(error.clone());
        let name = self.cluster.host(host).name.clone();
        self.halt(format!("host {name} failed at {}: {error}", step.name()));
    }

    pub(super) fn continue_manual(&mut self, host: HostId) {
        self.next_step(host, HostStep::AwaitingManualUpgrade);
    }

    /// Skip: the host leaves the run; what Drover changed on it is restored, best effort.
    pub(super) fn skip_host(&mut self, host: HostId) {
        let now = self.now;
        self.hosts[host.index()].enter(HostStep::Skipped, now);
        self.counters.hosts_skipped += 1;
        self.cancel_vm_actions_of(host);
        self.restore_host(host);
        if !self.hosts.iter().any(|h| h.step == HostStep::UpgradeFailed) {
            self.phase = RunPhase::Running;
        }
    }

    /// Queues the calls that undo Drover's changes on one host, in the order they must happen:
    /// exit maintenance, uncordon, then start the VMs it shut down (a host in maintenance starts
    /// no VM), and issues the first.
    fn restore_host(&mut self, host: HostId) {
        let (in_maintenance, cordoned) = {
            let run = &self.hosts[host.index()];
            (run.maintenance_by_us, run.cordoned_by_us)
        };
        let mut queue = std::collections::VecDeque::new();
        if in_maintenance {
            queue.push_back((CommandKind::ExitMaintenance { host }, None));
        }
        if cordoned {
            queue.push_back((CommandKind::Uncordon { host }, None));
        }
        for (vm, start_on) in self.vms_stopped_by_us_for(host) {
            // Resumed, unshelved or started, as Drover stopped it.
            let bring_back = self.vms[&vm].bring_back_command(vm, start_on);
            queue.push_back((bring_back, Some(vm)));
        }
        self.hosts[host.index()].restore_queue.extend(queue);
        self.issue_next_restore(host);
    }

    /// Whether a restore is queued (perhaps waiting for its backoff) or in flight.
    pub(super) fn restores_pending(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| !h.restore_queue.is_empty() || h.restore_in_flight.is_some())
            || self.setting_restores_pending()
    }

    /// Before a new wave: a skipped host that Drover left in maintenance (its restores gave up,
    /// as the restore errors report) counts against `max_unavailable` like any host being
    /// upgraded, so the run halts and says so (`retry` tries the restores again, `abort` ends
    /// the run). A host that no longer answers is down, not out of service because of Drover,
    /// and does not hold the run. Returns whether it halted.
    pub(super) fn halt_on_skipped_host_left_in_maintenance(&mut self) -> bool {
        let left_in_maintenance = self.hosts.iter().enumerate().find(|(index, run)| {
            run.step == HostStep::Skipped
                && run.maintenance_by_us
                && self.cluster.hosts[*index].state != HostState::Down
        });
        let Some((index, run)) = left_in_maintenance else {
            return false;
        };
        let name = self.cluster.hosts[index].name.clone();
        let error = run.restore_errors.last().cloned().unwrap_or_default();
        self.halt(format!(
            "host {name} was skipped but is still in maintenance (Drover could not bring it back: {error}); it counts as unavailable, so no new host starts: bring it back and `retry`, or `abort`"
        ));
        true
    }

    /// Operator retry: skipped hosts whose restores gave up get them queued again.
    pub(super) fn restore_skipped_hosts_again(&mut self) {
        for index in 0..self.hosts.len() {
            let run = &self.hosts[index];
            let idle = run.restore_queue.is_empty() && run.restore_in_flight.is_none();
            if run.step == HostStep::Skipped && idle {
                self.restore_host(HostId(index as u32));
            }
        }
    }

    /// Issues the next queued restore of every host whose backoff is over.
    pub(super) fn advance_restores(&mut self) {
        for index in 0..self.hosts.len() {
            if !self.hosts[index].restore_queue.is_empty() {
                self.issue_next_restore(HostId(index as u32));
            }
        }
    }

    fn issue_next_restore(&mut self, host: HostId) {
        let run = &self.hosts[host.index()];
        if run.restore_in_flight.is_some() || run.restore_retry_at.is_some_and(|t| t > self.now) {
            return;
        }
        let Some((kind, vm)) = self.hosts[host.index()].restore_queue.pop_front() else {
            return;
        };
        let timeout = match kind {
            CommandKind::StartVm { .. }
            | CommandKind::ResumeVm { .. }
            | CommandKind::UnshelveVm { .. } => self.bring_back_timeout_ms(&kind),
            _ => self.settings.step_timeout_ms,
        };
        let run = &mut self.hosts[host.index()];
        run.restore_in_flight = Some((kind.clone(), vm));
        run.restore_retry_at = None;
        run.restore_attempts += 1;
        let attempt = run.restore_attempts;
        self.issue(kind, timeout, attempt, Purpose::Restore { host, vm });
    }

    pub(super) fn on_restore_outcome(
        &mut self,
        host: HostId,
        vm: Option<super::VmId>,
        outcome: Outcome,
    ) {
        let now = self.now;
        let give_up_after = self.settings.upgrade_timeout_ms;
        let backoff = self
            .settings
            .backoff_ms(self.hosts[host.index()].restore_attempts);
        let run = &mut self.hosts[host.index()];
        let undone = run.restore_in_flight.take();
        let error = match outcome {
            Outcome::Succeeded(_) => {
                self.restored_since_discovery = true;
                let run = &mut self.hosts[host.index()];
                run.restore_failing_since = None;
                run.restore_attempts = 0;
                match (&undone, vm) {
                    (
                        Some((
                            CommandKind::StartVm { host: on, .. }
                            | CommandKind::ResumeVm { host: on, .. }
                            | CommandKind::UnshelveVm { host: on, .. },
                            _,
                        )),
                        Some(vm),
                    ) => self.vm_started_after_restore(vm, *on),
                    (Some((CommandKind::ExitMaintenance { .. }, _)), None) => {
                        run.maintenance_by_us = false
                    }
                    (Some((CommandKind::Uncordon { .. }, _)), None) => run.cordoned_by_us = false,
                    _ => {}
                }
                None
            }
            Outcome::Failed { error, .. } => Some(error),
            Outcome::TimedOut => Some("restore timed out".to_string()),
        };
        if let (Some(error), Some(call)) = (error, undone) {
            let run = &mut self.hosts[host.index()];
            let since = *run.restore_failing_since.get_or_insert(now);
            if now.saturating_sub(since) < give_up_after {
                run.restore_queue.push_front(call);
                run.restore_retry_at = Some(now + backoff);
            } else {
                run.restore_errors.push(error);
                run.restore_failing_since = None;
                run.restore_attempts = 0;
            }
        }
        self.issue_next_restore(host);
        if self.phase == RunPhase::Aborting {
            self.advance_abort();
        }
    }

    /// Abort: once no call is in flight, restore every host Drover touched; when those restores
    /// are answered, put back the platform settings Drover resolved; then the run is aborted.
    pub(super) fn advance_abort(&mut self) {
        let restores_started = self.counters.abort_restores_issued;
        if !restores_started {
            if self.in_flight.is_empty() {
                self.counters.abort_restores_issued = true;
                let touched: Vec<HostId> = (0..self.hosts.len() as u32)
                    .map(HostId)
                    .filter(|h| {
                        let run = &self.hosts[h.index()];
                        run.maintenance_by_us
                            || run.cordoned_by_us
                            || !self.vms_stopped_by_us_for(*h).is_empty()
                    })
                    .collect();
                for host in touched {
                    self.restore_host(host);
                }
            }
            if !self.counters.abort_restores_issued {
                return;
            }
        }
        let restores_left = self.hosts.iter().any(|h| !h.restore_queue.is_empty());
        // The platform's settings (HA, WLB) go back once the hosts are back: HA turned on
        // while a host is still in maintenance would plan around a pool that is not whole.
        if self.in_flight.is_empty() && !restores_left && self.restore_blocking_settings() {
            // A raise in flight when the abort came cannot be undone: once it succeeded, every
            // host was upgraded and the level raised, so the run did complete.
            self.phase = match self.compatibility_level_raised() {
                Some(_) => RunPhase::Completed,
                None => RunPhase::Aborted,
            };
        }
    }
}
