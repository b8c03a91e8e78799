//! Platform settings that block a roll (HA, WLB, a VM's CD/DVD): resolved before a wave starts
//! and put back when the run ends. A run with such settings is feasible only with
//! `policy.auto_resolve` (the planner's precheck fails otherwise), so reaching a wave means the
//! operator agreed to the change.
//!
//! - Before a wave (the first one, and any later one whose discovery shows a setting on again),
//!   every setting that is on gets a `ResolveSetting` call; no host starts until each succeeded.
//!   A resolve is retried like a step (`max_step_attempts`, capped backoff); then the run halts
//!   naming the precheck, before any host of that wave is touched.
//! - What the driver saved comes back in the outcome (`Observation::SettingResolved`), so the
//!   journal holds it and a replay after `kill -9` knows it; a resolve in flight at the crash is
//!   re-issued by the engine like any intent (drivers answer the same saved text again).
//! - When the run completes (after the last wave and the compatibility raise) or is aborted (with
//!   the hosts' restores), every resolved setting that can be put back gets one `RestoreSetting`
//!   call with its saved text; a failed restore is retried with backoff until
//!   `upgrade_timeout` after its first failure, then reported, never dropped silently. The run
//!   does not end while one is pending. Ejected media is never put back (the precheck says so).
//!
//! This module knows no platform: a setting is a kind and a subject, the saved text is opaque.

use super::{CommandId, CommandKind, Execution, Millis, Observation, Outcome, Purpose, RunPhase};
use crate::model::PlatformSetting;

/// Where one blocking setting stands in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SettingStep {
    /// To be turned off before the next wave (its call in flight or waiting for its backoff).
    Resolving,
    /// Every attempt to turn it off failed: the run is halted on it.
    ResolveFailed,
    /// Off, with what the driver saved to put it back.
    Resolved,
    /// Being put back as the run ends.
    Restoring,
    Restored,
    /// Putting it back failed until the restore deadline: reported.
    RestoreFailed,
}

impl SettingStep {
    pub fn name(self) -> &'static str {
        match self {
            SettingStep::Resolving => "resolving",
            SettingStep::ResolveFailed => "resolve-failed",
            SettingStep::Resolved => "resolved",
            SettingStep::Restoring => "restoring",
            SettingStep::Restored => "restored",
            SettingStep::RestoreFailed => "restore-failed",
        }
    }
}

/// One setting the run changed or is changing.
#[derive(Clone, Debug)]
pub(super) struct SettingRun {
    pub setting: PlatformSetting,
    pub step: SettingStep,
    /// What the driver saved when it turned the setting off (set once resolved).
    pub saved: Option<String>,
    /// Attempts of the current call (resolve or restore).
    pub attempts: u32,
    pub command: Option<CommandId>,
    pub retry_at: Option<Millis>,
    /// A failing restore gives up `upgrade_timeout` after its first failure.
    pub restore_failing_since: Option<Millis>,
    pub last_error: Option<String>,
}

impl SettingRun {
    fn new(setting: PlatformSetting) -> SettingRun {
        SettingRun {
            setting,
            step: SettingStep::Resolving,
            saved: None,
            attempts: 0,
            command: None,
            retry_at: None,
            restore_failing_since: None,
            last_error: None,
        }
    }

    fn ready(&self, now: Millis) -> bool {
        self.command.is_none() && self.retry_at.is_none_or(|t| t <= now)
    }

    /// Resolved and to be put back when the run ends.
    fn restore_due(&self) -> bool {
        // A setting turned off once, on again, and not turned off a second time still has its
        // first saved state to go back to.
        let changed_by_us = self.step == SettingStep::Resolved
            || (self.step == SettingStep::ResolveFailed && self.saved.is_some());
        changed_by_us && self.setting.kind.is_restored()
    }
}

/// One blocking setting as the end report lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingReport {
    pub setting: PlatformSetting,
    pub step: SettingStep,
    /// What the driver saved when it resolved the setting.
    pub saved: Option<String>,
    pub last_error: Option<String>,
}

impl Execution {
    /// Before a wave starts: resolves every blocking setting that is on (as last observed) and
    /// says whether all of them are off, so the wave may start.
    pub(super) fn blocking_settings_resolved(&mut self) -> bool {
        for setting in self.cluster.settings.clone() {
            match self.setting_runs.iter().position(|r| r.setting == setting) {
                None => self.setting_runs.push(SettingRun::new(setting)),
                Some(index) => {
                    // On again after Drover turned it off (someone turned it back on): off
                    // again before the next host; it is put back once, at the end.
                    let run = &mut self.setting_runs[index];
                    if matches!(run.step, SettingStep::Resolved | SettingStep::Restored) {
                        run.step = SettingStep::Resolving;
                        run.attempts = 0;
                        run.retry_at = None;
                    }
                }
            }
        }
        for index in 0..self.setting_runs.len() {
            let run = &self.setting_runs[index];
            if run.step == SettingStep::Resolving && run.ready(self.now) {
                let kind = CommandKind::ResolveSetting {
                    setting: run.setting.clone(),
                };
                self.issue_setting_call(index, kind);
            }
        }
        !self
            .setting_runs
            .iter()
            .any(|r| matches!(r.step, SettingStep::Resolving | SettingStep::ResolveFailed))
    }

    fn issue_setting_call(&mut self, index: usize, kind: CommandKind) {
        let attempt = self.setting_runs[index].attempts + 1;
        let timeout_ms = self.settings.step_timeout_ms;
        let id = self.issue(kind, timeout_ms, attempt, Purpose::Setting { index });
        let run = &mut self.setting_runs[index];
        run.attempts = attempt;
        run.command = Some(id);
        run.retry_at = None;
    }

    /// As the run ends: starts putting back every resolved setting that can be. Returns whether
    /// none is left to put back (so the run may end).
    pub(super) fn restore_blocking_settings(&mut self) -> bool {
        for index in 0..self.setting_runs.len() {
            let run = &mut self.setting_runs[index];
            if run.restore_due() {
                run.step = SettingStep::Restoring;
                run.attempts = 0;
                run.retry_at = None;
            }
        }
        self.advance_setting_restores();
        !self.setting_restores_pending()
    }

    /// Issues every restore whose backoff is over.
    pub(super) fn advance_setting_restores(&mut self) {
        for index in 0..self.setting_runs.len() {
            let run = &self.setting_runs[index];
            if run.step == SettingStep::Restoring && run.ready(self.now) {
                let kind = CommandKind::RestoreSetting {
                    setting: run.setting.clone(),
                    saved: run.saved.clone().unwrap_or_default(),
                };
                self.issue_setting_call(index, kind);
            }
        }
    }

    /// Whether a setting is being put back (its call in flight or waiting for its backoff).
    pub(super) fn setting_restores_pending(&self) -> bool {
        self.setting_runs
            .iter()
            .any(|r| r.step == SettingStep::Restoring)
    }

    pub(super) fn on_setting_outcome(
        &mut self,
        index: usize,
        command: CommandId,
        outcome: Outcome,
    ) {
        let Some(run) = self.setting_runs.get_mut(index) else {
            return;
        };
        if run.command != Some(command) {
            return;
        }
        run.command = None;
        let error = match outcome {
            Outcome::Succeeded(observation) => {
                self.on_setting_succeeded(index, observation);
                return;
            }
            Outcome::Failed { error, .. } => error,
            Outcome::TimedOut => "timed out".to_string(),
        };
        match self.setting_runs[index].step {
            SettingStep::Resolving => self.on_resolve_failed(index, error),
            SettingStep::Restoring => self.on_restore_failed(index, error),
            _ => {}
        }
    }

    fn on_setting_succeeded(&mut self, index: usize, observation: Observation) {
        let run = &mut self.setting_runs[index];
        run.last_error = None;
        run.attempts = 0;
        match run.step {
            SettingStep::Resolving => {
                let saved = match observation {
                    Observation::SettingResolved { saved } => saved,
                    _ => String::new(),
                };
                run.saved = Some(saved);
                run.step = SettingStep::Resolved;
                // Off now: later plans no longer see it (a discovery may show it on again).
                let setting = run.setting.clone();
                self.cluster.settings.retain(|s| *s != setting);
            }
            SettingStep::Restoring => {
                run.step = SettingStep::Restored;
                run.restore_failing_since = None;
            }
            _ => {}
        }
    }

    fn on_resolve_failed(&mut self, index: usize, error: String) {
        let (now, max_attempts) = (self.now, self.settings.max_step_attempts);
        let backoff_ms = self.settings.backoff_ms(self.setting_runs[index].attempts);
        let run = &mut self.setting_runs[index];
        run.last_error = Some(error.clone());
        if run.attempts < max_attempts && self.phase == RunPhase::Running {
            run.retry_at = Some(now + backoff_ms);
            return;
        }
        // Nothing was turned off (the driver said so), so there is nothing to put back.
        run.step = SettingStep::ResolveFailed;
        let (kind, label) = (run.setting.kind.name(), run.setting.label());
        let untouched = if self.waves_started == 0 {
            "; no host was touched"
        } else {
            ""
        };
        self.halt(format!(
            "precheck {kind}: Drover could not resolve {label}: {error}{untouched} (`retry` tries again, `abort` puts back what was resolved)"
        ));
    }

    fn on_restore_failed(&mut self, index: usize, error: String) {
        let (now, give_up_after_ms) = (self.now, self.settings.upgrade_timeout_ms);
        let backoff_ms = self.settings.backoff_ms(self.setting_runs[index].attempts);
        let run = &mut self.setting_runs[index];
        run.last_error = Some(error);
        let since = *run.restore_failing_since.get_or_insert(now);
        if now.saturating_sub(since) < give_up_after_ms {
            run.retry_at = Some(now + backoff_ms);
        } else {
            run.step = SettingStep::RestoreFailed;
        }
    }

    /// Operator retry: a setting that could not be resolved is tried afresh (its run is
    /// forgotten: nothing was changed; the next wave resolves it if it is still on).
    pub(super) fn retry_failed_resolves(&mut self) {
        self.setting_runs
            .retain(|r| r.step != SettingStep::ResolveFailed || r.saved.is_some());
        for run in &mut self.setting_runs {
            if run.step == SettingStep::ResolveFailed {
                run.step = SettingStep::Resolving;
                run.attempts = 0;
                run.retry_at = None;
            }
        }
    }

    pub(super) fn setting_wakeups(&self) -> impl Iterator<Item = Millis> + '_ {
        self.setting_runs.iter().filter_map(|r| r.retry_at)
    }

    pub(super) fn discount_setting_downtime(&mut self, downtime_ms: Millis) {
        for run in &mut self.setting_runs {
            if let Some(since) = run.restore_failing_since.as_mut() {
                *since += downtime_ms;
            }
        }
    }

    /// Every blocking setting the run resolved or tried to, in the order it met them.
    pub fn setting_reports(&self) -> Vec<SettingReport> {
        self.setting_runs
            .iter()
            .map(|run| SettingReport {
                setting: run.setting.clone(),
                step: run.step,
                saved: run.saved.clone(),
                last_error: run.last_error.clone(),
            })
            .collect()
    }
}
