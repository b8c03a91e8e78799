//! What a run looks like from outside: per-host steps with attempts and errors, status
//! conditions (OpenShift style: Progressing, Degraded, Paused, Completed), and the end report.

use super::{Execution, HostStep, Millis, RunPhase};
use crate::model::{HostId, VmId};
use crate::plan::ActionKind;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Counters {
    pub migrations: usize,
    pub migrations_failed: usize,
    pub restarts: usize,
    pub shutdowns: usize,
    pub forced_shutdowns: usize,
    pub suspends: usize,
    pub shelves: usize,
    pub returns: usize,
    pub returns_failed: usize,
    pub hosts_upgraded: usize,
    pub hosts_skipped: usize,
    pub abort_restores_issued: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCondition {
    pub kind: &'static str,
    pub status: bool,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HostStatus {
    pub host: HostId,
    pub step: HostStep,
    pub since: Millis,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// 1-based wave the host was upgraded in.
    pub wave: Option<usize>,
    pub restore_errors: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VmAttempt {
    pub at: Millis,
    pub destination: Option<HostId>,
    pub error: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VmStatus {
    pub vm: VmId,
    pub kind: ActionKind,
    pub from: HostId,
    pub to: Option<HostId>,
    /// 1-based wave of the action.
    pub wave: usize,
    pub phase: &'static str,
    /// A return (`Wave::returns`): the migration back home after the wave.
    pub is_return: bool,
    pub attempts: Vec<VmAttempt>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunStatus {
    pub phase: RunPhase,
    pub paused: bool,
    pub window_open: bool,
    /// The next wave waits for a maintenance window: `Some(next opening)`, `Some(None)` when
    /// the engine said no window ever opens.
    pub waiting_for_window: Option<Option<Millis>>,
    pub waves_started: usize,
    pub waves_planned_remaining: usize,
    pub hosts: Vec<HostStatus>,
    /// VM actions of the current and past waves that are not simply done.
    pub vms: Vec<VmStatus>,
    pub conditions: Vec<RunCondition>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmDowntime {
    pub vm: VmId,
    pub host: HostId,
    pub kind: ActionKind,
    pub downtime_ms: u64,
}

/// One VM action of the run, finished or not, as the end report lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmActionReport {
    pub vm: VmId,
    pub kind: ActionKind,
    pub from: HostId,
    pub to: Option<HostId>,
    /// 1-based wave of the action.
    pub wave: usize,
    pub phase: &'static str,
    /// A return (`Wave::returns`): the migration back home after the wave; `failed` means the
    /// VM stayed where it was.
    pub is_return: bool,
    pub downtime_ms: u64,
    /// Failed attempts kept for the operator (the last few).
    pub failed_attempts: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    pub phase: RunPhase,
    pub started_at: Millis,
    pub now: Millis,
    pub hosts_upgraded: Vec<HostId>,
    pub hosts_skipped: Vec<(HostId, String)>,
    pub hosts_failed: Vec<(HostId, String)>,
    pub migrations: usize,
    pub migrations_failed: usize,
    pub restarts: usize,
    pub shutdowns: usize,
    pub forced_shutdowns: usize,
    /// VMs suspended on their host for its upgrade (resumed there after it).
    pub suspends: usize,
    /// VMs shelved and unshelved on another host.
    pub shelves: usize,
    /// Returns that brought a VM back home after its wave (not counted in `migrations`).
    pub returns: usize,
    /// Returns given up on: the VM stayed where it was (running; the run went on).
    pub returns_failed: usize,
    pub downtime: Vec<VmDowntime>,
    /// Every VM action of every started wave, in wave order (a VM that moved twice is listed
    /// twice).
    pub vm_actions: Vec<VmActionReport>,
    /// What a skip or abort could not restore.
    pub restore_errors: Vec<(HostId, String)>,
    /// The cluster compatibility level the run raised after its last host, if it did.
    pub compatibility_level_raised: Option<String>,
    /// The blocking platform settings the run resolved (and put back, or not).
    pub settings: Vec<super::SettingReport>,
}

impl Execution {
    /// One host's progress, cheaply (for progress displays that follow every event).
    pub fn host_status(&self, host: HostId) -> HostStatus {
        let run = &self.hosts[host.index()];
        HostStatus {
            host,
            step: run.step,
            since: run.since,
            attempts: run.attempts,
            last_error: run.last_error.clone(),
            wave: run.wave,
            restore_errors: run.restore_errors.clone(),
        }
    }

    /// The wave in progress: its 1-based number and its hosts (empty between waves).
    pub fn current_wave(&self) -> (usize, &[HostId]) {
        (self.waves_started, &self.wave_hosts)
    }

    /// Hosts the run has upgraded, skipped or failed so far, and how many it plans to upgrade
    /// in all (started + still planned).
    pub fn host_totals(&self) -> (usize, usize) {
        let finished = self
            .hosts
            .iter()
            .filter(|h| matches!(h.step, HostStep::Done | HostStep::Skipped))
            .count();
        let planned: usize = self
            .current_plan
            .waves
            .iter()
            .skip(usize::from(!self.wave_hosts.is_empty()))
            .map(|w| w.hosts.len())
            .sum();
        let started = self.hosts.iter().filter(|h| h.wave.is_some()).count();
        (finished, started + planned)
    }

    /// Every VM action the run started, replaced ones first, then the latest per VM, ordered
    /// by wave (stable, so a VM's actions keep their order).
    fn every_vm_action(&self) -> impl Iterator<Item = (VmId, &super::vms::VmRun)> {
        let mut actions: Vec<(VmId, &super::vms::VmRun)> = self
            .replaced_vm_actions
            .iter()
            .map(|(vm, run)| (*vm, run))
            .chain(self.vms.iter().map(|(vm, run)| (*vm, run)))
            .collect();
        actions.sort_by_key(|(_, run)| run.wave);
        actions.into_iter()
    }

    /// Downtime of one action so far: finished periods plus the one still running.
    fn downtime_so_far(&self, run: &super::vms::VmRun) -> u64 {
        run.downtime_ms
            + run
                .down_since
                .map_or(0, |since| self.now.saturating_sub(since))
    }

    pub fn status(&self) -> RunStatus {
        let hosts = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, run)| run.wave.is_some() || run.step != HostStep::Waiting)
            .map(|(index, run)| HostStatus {
                host: HostId(index as u32),
                step: run.step,
                since: run.since,
                attempts: run.attempts,
                last_error: run.last_error.clone(),
                wave: run.wave,
                restore_errors: run.restore_errors.clone(),
            })
            .collect();
        let vms = self
            .every_vm_action()
            .filter(|(_, run)| run.phase != super::vms::VmPhase::Done || !run.history.is_empty())
            .map(|(vm, run)| VmStatus {
                vm,
                kind: run.kind,
                from: run.from,
                to: run.to,
                wave: run.wave,
                phase: super::vms::phase_label(run.phase),
                is_return: run.is_return(),
                attempts: run
                    .history
                    .iter()
                    .map(|a| VmAttempt {
                        at: a.at,
                        destination: a.destination,
                        error: a.error.clone(),
                    })
                    .collect(),
            })
            .collect();
        RunStatus {
            phase: self.phase.clone(),
            paused: self.paused,
            window_open: self.window_open,
            waiting_for_window: self
                .is_waiting_for_window()
                .then_some(self.next_window_opening_at),
            waves_started: self.waves_started,
            waves_planned_remaining: self
                .current_plan
                .waves
                .len()
                .saturating_sub(usize::from(!self.wave_hosts.is_empty())),
            hosts,
            vms,
            conditions: self.conditions(),
        }
    }

    fn conditions(&self) -> Vec<RunCondition> {
        let degraded_hosts: Vec<&str> = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.step == HostStep::UpgradeFailed)
            .map(|(index, _)| self.cluster.hosts[index].name.as_str())
            .collect();
        let halted = match &self.phase {
            RunPhase::Halted { reason } => Some(reason.clone()),
            _ => None,
        };
        let waiting_for = match (&self.phase, self.paused, self.window_open) {
            (RunPhase::AwaitingApproval, _, _) => Some("waiting for approval".to_string()),
            (_, true, _) => Some("paused by an operator".to_string()),
            (RunPhase::Running, _, false) => Some("outside the maintenance window".to_string()),
            _ => self
                .hosts
                .iter()
                .position(|h| h.step == HostStep::AwaitingManualUpgrade)
                .map(|index| {
                    format!(
                        "waiting for the manual upgrade of {}",
                        self.cluster.hosts[index].name
                    )
                }),
        };
        let condition = |kind, status, message: String| RunCondition {
            kind,
            status,
            message,
        };
        vec![
            condition(
                "Progressing",
                matches!(self.phase, RunPhase::Running | RunPhase::Aborting)
                    && waiting_for.is_none(),
                format!(
                    "{} wave(s) started, {} planned after them",
                    self.waves_started,
                    self.current_plan.waves.len()
                ),
            ),
            condition(
                "Degraded",
                halted.is_some() || !degraded_hosts.is_empty(),
                halted.unwrap_or_else(|| "no host failed".into()),
            ),
            condition(
                "Paused",
                waiting_for.is_some(),
                waiting_for.unwrap_or_default(),
            ),
            condition(
                "Completed",
                self.phase == RunPhase::Completed,
                self.completed_message(),
            ),
        ]
    }

    fn completed_message(&self) -> String {
        let hosts = format!(
            "{} host(s) upgraded, {} skipped",
            self.counters.hosts_upgraded, self.counters.hosts_skipped
        );
        match self.compatibility_message() {
            Some(compatibility) => format!("{hosts}; {compatibility}"),
            None => hosts,
        }
    }

    pub fn report(&self) -> RunReport {
        let mut hosts_upgraded = Vec::new();
        let mut hosts_skipped = Vec::new();
        let mut hosts_failed = Vec::new();
        let mut restore_errors = Vec::new();
        for (index, run) in self.hosts.iter().enumerate() {
            let host = HostId(index as u32);
            let reason = || {
                run.last_error
                    .clone()
                    .unwrap_or_else(|| "skipped by an operator".into())
            };
            match run.step {
                HostStep::Done => hosts_upgraded.push(host),
                HostStep::Skipped => hosts_skipped.push((host, reason())),
                HostStep::UpgradeFailed => hosts_failed.push((host, reason())),
                _ => {}
            }
            restore_errors.extend(run.restore_errors.iter().map(|e| (host, e.clone())));
        }
        let downtime = self
            .every_vm_action()
            .filter(|(_, run)| {
                run.kind.has_downtime() && (run.downtime_ms > 0 || run.down_since.is_some())
            })
            .map(|(vm, run)| VmDowntime {
                vm,
                host: run.from,
                kind: run.kind,
                downtime_ms: self.downtime_so_far(run),
            })
            .collect();
        let vm_actions = self
            .every_vm_action()
            .map(|(vm, run)| VmActionReport {
                vm,
                kind: run.kind,
                from: run.from,
                to: run.to,
                wave: run.wave,
                phase: super::vms::phase_label(run.phase),
                is_return: run.is_return(),
                downtime_ms: self.downtime_so_far(run),
                failed_attempts: run.history.len(),
            })
            .collect();
        RunReport {
            phase: self.phase.clone(),
            started_at: self.started_at,
            now: self.now,
            hosts_upgraded,
            hosts_skipped,
            hosts_failed,
            migrations: self.counters.migrations,
            migrations_failed: self.counters.migrations_failed,
            restarts: self.counters.restarts,
            shutdowns: self.counters.shutdowns,
            forced_shutdowns: self.counters.forced_shutdowns,
            suspends: self.counters.suspends,
            shelves: self.counters.shelves,
            returns: self.counters.returns,
            returns_failed: self.counters.returns_failed,
            downtime,
            vm_actions,
            restore_errors,
            compatibility_level_raised: self.compatibility_level_raised(),
            settings: self.setting_reports(),
        }
    }
}
