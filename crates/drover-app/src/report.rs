//! The run report as a document: hosts upgraded, skipped or failed with reasons; every VM action
//! with its downtime; failures; restores not done; and, read from the journal, each host's steps
//! with their durations and the run's timing. `drover report`, the end of `run`/`resume`/operator
//! commands and the server's `GET /runs/{id}/report` return the same document. Edge types:
//! serde lives here, not in the core.
//!
//! Builds documents only: this module must not print them or know how a front end shows them.

use drover_core::execution::Execution;
use drover_engine::timeline::StepSpan;
use serde::Serialize;

use crate::time_text::timestamp;

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportDocument {
    pub run: String,
    pub cluster: String,
    pub target_version: String,
    pub phase: String,
    pub started_at: String,
    pub duration_secs: u64,
    pub hosts: Vec<HostResult>,
    pub migrations: usize,
    pub migration_attempts_failed: usize,
    pub restarts: usize,
    pub shutdowns: usize,
    pub forced_shutdowns: usize,
    /// VMs suspended for their host's upgrade and resumed on it; absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suspends: usize,
    /// VMs shelved and unshelved on another host; absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shelves: usize,
    /// Returns done (live migrations back to a VM's upgraded home host after its wave; not in
    /// `migrations`); absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub returns: usize,
    /// Returns given up on: those VMs stayed where they were; absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub returns_failed: usize,
    pub downtime: Vec<VmDowntimeEntry>,
    /// Restores (exit maintenance, uncordon, start a VM) a skip or an abort could not do.
    pub restore_errors: Vec<RestoreError>,
    /// The cluster compatibility level the run set after its last host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compatibility_level_raised: Option<String>,
    /// The blocking platform settings the run turned off before its first wave (HA, WLB, a
    /// VM's inserted CD) and whether each was put back; absent when there were none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingEntry>,
    /// Every VM action of every started wave, in wave order: a VM moved twice appears twice.
    pub vm_actions: Vec<VmActionEntry>,
    /// What went wrong: failed or skipped hosts, VM actions with failed attempts.
    pub failures: Vec<FailureEntry>,
    /// Per host, the driver calls of each step with their durations (from the journal; empty
    /// when the journal was not read).
    pub host_steps: Vec<HostStepsEntry>,
    pub timing: TimingEntry,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostResult {
    pub host: String,
    /// upgraded | skipped | failed
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VmDowntimeEntry {
    pub vm: String,
    pub host: String,
    pub action: &'static str,
    pub downtime_secs: u64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestoreError {
    pub host: String,
    pub error: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VmActionEntry {
    pub vm: String,
    /// migrate | restart | shutdown
    pub action: &'static str,
    pub from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub wave: usize,
    /// done | pending | migration | shutdown | stopped | start | failed | cancelled
    pub result: &'static str,
    /// A return: the migration back to the VM's upgraded home host after its wave (`failed`:
    /// the VM stayed where it was, running). Absent for other actions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_return: bool,
    pub downtime_secs: u64,
    pub failed_attempts: usize,
}

/// One blocking platform setting of a run, as every front end shows it (report, status, API,
/// dashboard).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettingEntry {
    /// `ha-enabled`, `wlb-enabled` or `vm-media-inserted`.
    pub setting: &'static str,
    /// The VM a VM's setting is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
    /// resolving | resolve-failed | resolved | restoring | restored | restore-failed
    pub step: &'static str,
    /// Whether the run puts it back at its end (ejected media is not inserted again).
    pub restored_at_end: bool,
    /// What the driver saved to put it back (e.g. HA's configuration), as journaled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The run's blocking settings, in the order it met them.
pub fn setting_entries(execution: &Execution) -> Vec<SettingEntry> {
    execution
        .setting_reports()
        .into_iter()
        .map(|report| SettingEntry {
            setting: report.setting.kind.name(),
            vm: report.setting.vm,
            step: report.step.name(),
            restored_at_end: report.setting.kind.is_restored(),
            saved: report.saved,
            last_error: report.last_error,
        })
        .collect()
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailureEntry {
    /// `host NAME` or `vm NAME`
    pub subject: String,
    pub error: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostStepsEntry {
    pub host: String,
    pub steps: Vec<HostStepEntry>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostStepEntry {
    /// The driver step: `enter-maintenance`, `upgrade`, `reboot`, `migrate`…
    pub step: String,
    pub calls: usize,
    pub failed: usize,
    /// Seconds from the run's start to the step's first call.
    pub started_after_secs: u64,
    /// Summed time of its calls, in milliseconds (a call in flight counts up to now).
    pub call_ms: u64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimingEntry {
    pub started_at: String,
    /// Seconds from the start to the last event the run saw.
    pub duration_secs: u64,
    /// Seconds during which at least one driver call was in flight (from the journal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_secs: Option<u64>,
    /// A simulated run in virtual time: its clock is not the wall clock, so times are shown as
    /// offsets from the start.
    pub simulated: bool,
}

/// What the report knows beyond the execution: the journal's spans, whether time is simulated.
#[derive(Default)]
pub struct ReportContext<'a> {
    pub spans: Option<&'a [StepSpan]>,
    pub simulated: bool,
}

pub fn report_document(
    run_id: &str,
    execution: &Execution,
    context: &ReportContext<'_>,
) -> ReportDocument {
    let cluster = execution.cluster();
    let report = execution.report();
    let name = |h: drover_core::HostId| cluster.host(h).name.clone();
    let mut hosts: Vec<HostResult> = report
        .hosts_upgraded
        .iter()
        .map(|h| HostResult {
            host: name(*h),
            result: "upgraded",
            reason: None,
        })
        .collect();
    hosts.extend(report.hosts_skipped.iter().map(|(h, r)| HostResult {
        host: name(*h),
        result: "skipped",
        reason: Some(r.clone()),
    }));
    hosts.extend(report.hosts_failed.iter().map(|(h, r)| HostResult {
        host: name(*h),
        result: "failed",
        reason: Some(r.clone()),
    }));
    ReportDocument {
        run: run_id.to_string(),
        cluster: cluster.name.clone(),
        target_version: cluster.target_version.to_string(),
        phase: report.phase.name().to_string(),
        started_at: timestamp(report.started_at),
        duration_secs: report.now.saturating_sub(report.started_at) / 1000,
        hosts,
        migrations: report.migrations,
        migration_attempts_failed: report.migrations_failed,
        restarts: report.restarts,
        shutdowns: report.shutdowns,
        forced_shutdowns: report.forced_shutdowns,
        suspends: report.suspends,
        shelves: report.shelves,
        returns: report.returns,
        returns_failed: report.returns_failed,
        downtime: report
            .downtime
            .iter()
            .map(|d| VmDowntimeEntry {
                vm: cluster.vm(d.vm).name.clone(),
                host: name(d.host),
                action: d.kind.as_str(),
                downtime_secs: d.downtime_ms / 1000,
            })
            .collect(),
        restore_errors: report
            .restore_errors
            .iter()
            .map(|(h, e)| RestoreError {
                host: name(*h),
                error: e.clone(),
            })
            .collect(),
        compatibility_level_raised: report.compatibility_level_raised.clone(),
        settings: setting_entries(execution),
        vm_actions: report
            .vm_actions
            .iter()
            .map(|a| VmActionEntry {
                vm: cluster.vm(a.vm).name.clone(),
                action: a.kind.as_str(),
                from: name(a.from),
                to: a.to.map(name),
                wave: a.wave,
                result: a.phase,
                is_return: a.is_return,
                downtime_secs: a.downtime_ms / 1000,
                failed_attempts: a.failed_attempts,
            })
            .collect(),
        failures: failures(execution, &report),
        host_steps: context
            .spans
            .map(|spans| host_steps(spans, report.started_at, report.now))
            .unwrap_or_default(),
        timing: TimingEntry {
            started_at: timestamp(report.started_at),
            duration_secs: report.now.saturating_sub(report.started_at) / 1000,
            busy_secs: context.spans.map(|spans| busy_ms(spans, report.now) / 1000),
            simulated: context.simulated,
        },
    }
}

/// Failed and skipped hosts with their reasons, then every VM action's last failed attempt.
fn failures(
    execution: &Execution,
    report: &drover_core::execution::RunReport,
) -> Vec<FailureEntry> {
    let cluster = execution.cluster();
    let hosts = report
        .hosts_failed
        .iter()
        .chain(&report.hosts_skipped)
        .map(|(host, reason)| FailureEntry {
            subject: format!("host {}", cluster.host(*host).name),
            error: reason.clone(),
        });
    let vms = execution.status().vms.into_iter().filter_map(|vm| {
        let last = vm.attempts.last()?;
        let what = if vm.is_return { " (return)" } else { "" };
        Some(FailureEntry {
            subject: format!("vm {}{what}", cluster.vm(vm.vm).name),
            error: format!(
                "{} ({} failed attempt(s) kept)",
                last.error,
                vm.attempts.len()
            ),
        })
    });
    hosts.chain(vms).collect()
}

/// Per host (in order of its first call), per step (in order of its first call): calls,
/// failures, when it started after the run's start and how long it took.
fn host_steps(spans: &[StepSpan], started_at: u64, now: u64) -> Vec<HostStepsEntry> {
    let mut hosts: Vec<HostStepsEntry> = Vec::new();
    for span in spans {
        let Some(host) = &span.host else { continue };
        let index = match hosts.iter().position(|h| &h.host == host) {
            Some(index) => index,
            None => {
                hosts.push(HostStepsEntry {
                    host: host.clone(),
                    steps: Vec::new(),
                });
                hosts.len() - 1
            }
        };
        add_span(&mut hosts[index].steps, span, started_at, now);
    }
    hosts
}

fn add_span(steps: &mut Vec<HostStepEntry>, span: &StepSpan, started_at: u64, now: u64) {
    let end = span.ended_ms.unwrap_or(now).max(span.started_ms);
    let failed = usize::from(matches!(span.result, Some("failed" | "timed-out")));
    let start_secs = span.started_ms.saturating_sub(started_at) / 1000;
    match steps.iter_mut().find(|s| s.step == span.step) {
        Some(step) => {
            step.calls += 1;
            step.failed += failed;
            step.call_ms += end - span.started_ms;
        }
        None => steps.push(HostStepEntry {
            step: span.step.clone(),
            calls: 1,
            failed,
            started_after_secs: start_secs,
            call_ms: end - span.started_ms,
        }),
    }
}

fn busy_ms(spans: &[StepSpan], now: u64) -> u64 {
    let mut intervals: Vec<(u64, u64)> = spans
        .iter()
        .map(|s| (s.started_ms, s.ended_ms.unwrap_or(now).max(s.started_ms)))
        .collect();
    drover_engine::timeline::covered_ms(&mut intervals)
}

/// The report of a stored run, finished or not, driven here or by another process: a
/// read-only replay of its journal plus the journal's spans.
pub fn stored_report(
    stored: &drover_engine::StoredRun,
) -> Result<ReportDocument, drover_engine::EngineError> {
    let execution = stored.replay(&mut |_, _| {})?.execution;
    let spans = drover_engine::timeline::step_spans(&stored.entries)?;
    let record = &stored.record;
    let context = ReportContext {
        spans: Some(&spans),
        simulated: is_simulated(&record.options_json),
    };
    Ok(report_document(&record.id, &execution, &context))
}

/// A run on the simulator whose clock is not the wall clock (virtual or scaled time): its
/// dates are not real dates.
pub fn is_simulated(options_json: &str) -> bool {
    let Ok(options) = serde_json::from_str::<serde_json::Value>(options_json) else {
        return false;
    };
    options["kind"] == "simulator" && options["time_scale"].as_f64() != Some(1.0)
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}
