//! The run's final step: raising the cluster compatibility level once every host runs the target
//! (oVirt raises it after its last host). It runs after the last wave's discovery, like any step:
//! a timeout, at most `max_step_attempts` tries with capped backoff, then the run halts until
//! `retry` (tries again) or `abort` (finishes without raising; the hosts are already restored).
//! The run completes only once the level is raised.
//!
//! A host that answers and still runs an older version (skipped by an operator, left out of the
//! selection) would not support the new level and be taken out of service, so then the level is
//! left alone and the run completes saying why.

use super::{CommandId, CommandKind, Execution, Millis, Outcome, Purpose, RunPhase};
use crate::model::HostState;

/// Where the raise stands; exists only when the policy asks for one.
#[derive(Clone, Debug)]
pub(super) struct CompatibilityRaise {
    pub level: String,
    /// Tries so far since the run started or since the last operator retry.
    pub attempts: u32,
    pub command: Option<CommandId>,
    pub retry_at: Option<Millis>,
    pub last_error: Option<String>,
    pub raised: bool,
    /// Every attempt failed: the run is halted on the raise.
    pub failed: bool,
}

impl CompatibilityRaise {
    pub fn new(level: String) -> Self {
        CompatibilityRaise {
            level,
            attempts: 0,
            command: None,
            retry_at: None,
            last_error: None,
            raised: false,
            failed: false,
        }
    }
}

impl Execution {
    /// Every wave is done: once nothing is in flight, raise the level if it is due, else the
    /// run is complete.
    pub(super) fn finish_after_last_wave(&mut self) {
        // A restore waiting for its backoff is not done: finishing now would drop it silently.
        if !self.in_flight.is_empty() || self.restores_pending() {
            return;
        }
        if self.restored_since_discovery && self.compatibility.as_ref().is_some_and(|r| !r.raised) {
            // A skipped host brought back after the last discovery may have finished its
            // upgrade meanwhile: whether every host runs the target is observed, not guessed.
            self.discover();
            return;
        }
        if self.compatibility_raise_due() {
            self.issue_compatibility_raise();
        } else if self.restore_blocking_settings() {
            // The settings resolved before the first host are back (or were never changed).
            self.phase = RunPhase::Completed;
        }
    }

    fn compatibility_raise_due(&self) -> bool {
        let requested = self.compatibility.as_ref().is_some_and(|r| !r.raised);
        requested && self.hosts_below_target().is_empty()
    }

    /// Hosts that answer and run an older version than the target, as last observed.
    pub(super) fn hosts_below_target(&self) -> Vec<&str> {
        let target = &self.cluster.target_version;
        self.cluster
            .hosts
            .iter()
            .filter(|host| host.state != HostState::Down && host.version < *target)
            .map(|host| host.name.as_str())
            .collect()
    }

    fn issue_compatibility_raise(&mut self) {
        let now = self.now;
        let Some(raise) = &self.compatibility else {
            return;
        };
        if raise.failed || raise.command.is_some() || raise.retry_at.is_some_and(|t| t > now) {
            return;
        }
        let kind = CommandKind::SetCompatibilityLevel {
            level: raise.level.clone(),
        };
        let attempt = raise.attempts + 1;
        let timeout_ms = self.settings.step_timeout_ms;
        let id = self.issue(kind, timeout_ms, attempt, Purpose::CompatibilityLevel);
        if let Some(raise) = self.compatibility.as_mut() {
            raise.attempts = attempt;
            raise.command = Some(id);
            raise.retry_at = None;
        }
    }

    pub(super) fn on_compatibility_outcome(&mut self, outcome: Outcome) {
        let (now, max_attempts) = (self.now, self.settings.max_step_attempts);
        let Some(raise) = self.compatibility.as_mut() else {
            return;
        };
        raise.command = None;
        let error = match outcome {
            Outcome::Succeeded(_) => {
                raise.raised = true;
                raise.last_error = None;
                return;
            }
            Outcome::Failed { error, .. } => error,
            Outcome::TimedOut => "timed out".to_string(),
        };
        raise.last_error = Some(error.clone());
        if raise.attempts < max_attempts {
            raise.retry_at = Some(now + self.settings.backoff_ms(raise.attempts));
            return;
        }
        raise.failed = true;
        let reason = format!(
            "raising the cluster compatibility level to {} failed: {error}",
            raise.level
        );
        self.halt(reason);
    }

    /// Operator retry of a raise that failed for good: fresh attempts. Returns whether the run
    /// was halted on the raise.
    pub(super) fn retry_compatibility_raise(&mut self) -> bool {
        match self.compatibility.as_mut().filter(|r| r.failed) {
            Some(raise) => {
                raise.failed = false;
                raise.attempts = 0;
                raise.retry_at = None;
                true
            }
            None => false,
        }
    }

    /// The level the raise is for, when the run is halted on it (`skip` has no meaning then).
    pub(super) fn failed_compatibility_level(&self) -> Option<&str> {
        let raise = self.compatibility.as_ref().filter(|r| r.failed)?;
        Some(raise.level.as_str())
    }

    pub(super) fn compatibility_level_raised(&self) -> Option<String> {
        let raise = self.compatibility.as_ref().filter(|r| r.raised)?;
        Some(raise.level.clone())
    }

    pub(super) fn compatibility_retry_at(&self) -> Option<Millis> {
        self.compatibility.as_ref().and_then(|r| r.retry_at)
    }

    /// For the status conditions: what became of the raise, once the last host is behind us.
    pub(super) fn compatibility_message(&self) -> Option<String> {
        let raise = self.compatibility.as_ref()?;
        let level = &raise.level;
        if raise.raised {
            return Some(format!("cluster compatibility level raised to {level}"));
        }
        if self.phase == RunPhase::Completed {
            let below = self.hosts_below_target().join(", ");
            return Some(format!(
                "cluster compatibility level not raised to {level}: hosts below the target: {below}"
            ));
        }
        let attempt = raise.attempts;
        let last_error = match &raise.last_error {
            Some(error) => format!(", last error: {error}"),
            None => String::new(),
        };
        (attempt > 0 && !raise.failed).then(|| {
            format!("raising the cluster compatibility level to {level} (attempt {attempt}{last_error})")
        })
    }
}
