//! The run-level scenario "prechecks auto-resolved and restored", for every driver whose
//! platform has blocking settings (HA, WLB, a VM's CD/DVD): a whole rolling upgrade with
//! `policy.auto_resolve`, driven by the core's `Execution` through `DriverCall` exactly as the
//! engine dispatches it (one call at a time here), with a log of every intent and outcome in the
//! order the engine journals them.
//!
//! What it checks, on the platform itself (through the driver's discovery) and on the log:
//! - the run completes;
//! - every setting that was on was resolved before the first call that changes a host or a VM;
//! - every setting Drover puts back was restored exactly once (one successful restore), after
//!   the last such call, and discovery shows it on again; media stays ejected (never restored);
//! - every host ends at the target.
//!
//! This module must not know any particular driver, the engine, stores or inventories.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drover_core::execution::{Execution, Input, Millis, Outcome, RunPhase};
use drover_core::{Cluster, PlatformSetting};
use drover_driver::{Driver, DriverCall};

use crate::error::ConformanceError;

/// What the scenario needs: the cluster to roll (name, target, policy; hosts and VMs as the
/// inventory describes them, overwritten by discovery) and the bounds of each call and the run.
#[derive(Clone, Debug)]
pub struct SettingsScenario {
    pub cluster: Cluster,
    /// A bound on each driver call, on top of the command's own timeout.
    pub call_timeout: Duration,
    /// A bound on the whole run.
    pub run_timeout: Duration,
}

/// One line of the run's log: an intent (`outcome` is `None`) or its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The command's step name (`resolve-setting`, `cordon`, …).
    pub step: &'static str,
    /// The host it is about (for a migration: the source).
    pub host: Option<String>,
    /// The setting it is about, for resolves and restores.
    pub setting: Option<String>,
    /// `None` for the intent; `Some(Ok(()))` or `Some(Err(error))` for the outcome.
    pub outcome: Option<Result<(), String>>,
}

/// What the scenario saw.
#[derive(Clone, Debug)]
pub struct SettingsScenarioReport {
    pub settings_before: Vec<PlatformSetting>,
    pub settings_after: Vec<PlatformSetting>,
    pub log: Vec<LogEntry>,
    pub wall_time: Duration,
}

/// Steps that change a host or a VM: no setting may be on while one runs.
const CHANGING_STEPS: [&str; 9] = [
    "cordon",
    "uncordon",
    "enter-maintenance",
    "exit-maintenance",
    "migrate",
    "shutdown-vm",
    "start-vm",
    "upgrade",
    "reboot",
];

/// The run's clock: the wall clock when the scenario started, moved on by tokio's clock (so a
/// paused runtime, where a simulated platform runs in virtual time, moves it too).
struct RunClock {
    epoch_ms: Millis,
    started: tokio::time::Instant,
}

impl RunClock {
    fn start() -> RunClock {
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as Millis);
        RunClock {
            epoch_ms,
            started: tokio::time::Instant::now(),
        }
    }

    fn now_ms(&self) -> Millis {
        self.epoch_ms + self.started.elapsed().as_millis() as Millis
    }
}

/// Runs the scenario on `driver` and checks what it did.
pub async fn run_settings_scenario(
    driver: &dyn Driver,
    scenario: SettingsScenario,
) -> Result<SettingsScenarioReport, ConformanceError> {
    let clock = RunClock::start();
    let started = tokio::time::Instant::now();
    let discovered = within(scenario.call_timeout, "discover", driver.discover()).await?;
    let settings_before = discovered.settings.clone().unwrap_or_default();
    if settings_before.is_empty() {
        return Err(ConformanceError::Fixture(
            "discovery reports no blocking setting; the scenario needs one on".into(),
        ));
    }
    let mut cluster = scenario.cluster.clone();
    cluster.policy.auto_resolve = true;
    cluster.hosts = discovered.hosts;
    cluster.vms = discovered.vms;
    cluster.settings = settings_before.clone();
    let mut execution = Execution::new(cluster, clock.now_ms());
    let mut log = Vec::new();
    while !execution.is_finished() {
        if started.elapsed() > scenario.run_timeout {
            return Err(ConformanceError::WrongState(format!(
                "the run did not finish within {} s: {:?}",
                scenario.run_timeout.as_secs(),
                execution.phase()
            )));
        }
        let Some(command) = execution.poll_command() else {
            if let RunPhase::Halted { reason } = execution.phase() {
                return Err(ConformanceError::WrongState(format!(
                    "the run halted: {reason}"
                )));
            }
            let wait_ms = execution
                .next_wakeup()
                .map_or(100, |at| at.saturating_sub(clock.now_ms()).min(1_000));
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            execution.handle(clock.now_ms(), Input::Tick);
            continue;
        };
        let step = command.kind.name();
        let setting = command.kind.setting().map(PlatformSetting::label);
        let host = command
            .kind
            .host()
            .map(|id| execution.cluster().host(id).name.clone());
        log.push(LogEntry {
            step,
            host: host.clone(),
            setting: setting.clone(),
            outcome: None,
        });
        let call = DriverCall::new(execution.cluster(), &command);
        let bound = Duration::from_millis(command.timeout_ms).min(scenario.call_timeout);
        let outcome = match tokio::time::timeout(bound, call.run(driver)).await {
            Ok(Ok(observation)) => Outcome::Succeeded(observation),
            Ok(Err(error)) => Outcome::Failed {
                refused: matches!(error, drover_driver::DriverError::Refused(_)),
                error: error.to_string(),
            },
            Err(_) => Outcome::TimedOut,
        };
        log.push(LogEntry {
            step,
            host,
            setting,
            outcome: Some(match &outcome {
                Outcome::Succeeded(_) => Ok(()),
                Outcome::Failed { error, .. } => Err(error.clone()),
                Outcome::TimedOut => Err("timed out".into()),
            }),
        });
        let input = Input::Outcome {
            command: command.id,
            outcome,
        };
        execution.handle(clock.now_ms(), input);
    }
    if execution.phase() != &RunPhase::Completed {
        return Err(ConformanceError::WrongState(format!(
            "the run ended {:?}, not completed",
            execution.phase()
        )));
    }
    let after = within(scenario.call_timeout, "discover", driver.discover()).await?;
    let report = SettingsScenarioReport {
        settings_before,
        settings_after: after.settings.clone().unwrap_or_default(),
        log,
        wall_time: started.elapsed(),
    };
    check_log(&report)?;
    check_platform(&report, &execution, &after.hosts)?;
    Ok(report)
}

async fn within<T>(
    bound: Duration,
    call: &str,
    future: impl std::future::Future<Output = Result<T, drover_driver::DriverError>>,
) -> Result<T, ConformanceError> {
    match tokio::time::timeout(bound, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(ConformanceError::CallFailed {
            call: call.to_string(),
            error,
        }),
        Err(_) => Err(ConformanceError::TimedOut {
            call: call.to_string(),
            timeout: bound,
        }),
    }
}

/// Resolves before the first change, one successful restore per restorable setting after the
/// last change, none for media.
fn check_log(report: &SettingsScenarioReport) -> Result<(), ConformanceError> {
    let log = &report.log;
    let first_change = log.iter().position(|e| CHANGING_STEPS.contains(&e.step));
    let last_change = log.iter().rposition(|e| CHANGING_STEPS.contains(&e.step));
    for setting in &report.settings_before {
        let label = setting.label();
        let about = |entry: &&LogEntry, step: &str| {
            entry.step == step && entry.setting.as_deref() == Some(label.as_str())
        };
        let resolved = log
            .iter()
            .position(|e| about(&e, "resolve-setting") && e.outcome == Some(Ok(())))
            .ok_or_else(|| ConformanceError::WrongState(format!("{label} was never resolved")))?;
        if first_change.is_some_and(|first| first < resolved) {
            return Err(ConformanceError::WrongState(format!(
                "{label} was resolved after the first change of a host or VM"
            )));
        }
        let restores: Vec<usize> = log
            .iter()
            .enumerate()
            .filter(|(_, e)| about(e, "restore-setting") && e.outcome == Some(Ok(())))
            .map(|(index, _)| index)
            .collect();
        let expected = usize::from(setting.kind.is_restored());
        if restores.len() != expected {
            return Err(ConformanceError::WrongState(format!(
                "{label} was restored {} time(s), expected {expected}",
                restores.len()
            )));
        }
        if let (Some(restore), Some(last)) = (restores.first(), last_change) {
            if *restore < last {
                return Err(ConformanceError::WrongState(format!(
                    "{label} was restored before the last change of a host or VM"
                )));
            }
        }
    }
    Ok(())
}

/// The platform shows every restorable setting on again, no ejected media back, and every
/// host at the target.
fn check_platform(
    report: &SettingsScenarioReport,
    execution: &Execution,
    hosts: &[drover_core::Host],
) -> Result<(), ConformanceError> {
    let mut expected: Vec<&PlatformSetting> = report
        .settings_before
        .iter()
        .filter(|s| s.kind.is_restored())
        .collect();
    let mut actual: Vec<&PlatformSetting> = report.settings_after.iter().collect();
    expected.sort();
    actual.sort();
    if expected != actual {
        return Err(ConformanceError::WrongState(format!(
            "after the run the platform reports settings {actual:?}, expected {expected:?}"
        )));
    }
    let target = &execution.cluster().target_version;
    if let Some(host) = hosts.iter().find(|h| h.version != *target) {
        return Err(ConformanceError::WrongState(format!(
            "host {} runs {} after the run, not {target}",
            host.name, host.version
        )));
    }
    let resolved_saved = execution
        .report()
        .settings
        .iter()
        .all(|s| s.saved.is_some());
    if !resolved_saved {
        return Err(ConformanceError::WrongState(
            "a setting has no saved state in the run's report".into(),
        ));
    }
    Ok(())
}
