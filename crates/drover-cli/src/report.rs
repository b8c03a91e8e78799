//! The run documents as the CLI prints them: the end report's tables (the document itself is
//! `drover_app::report`'s), the status (per host: step, since, attempts, last error; per run:
//! conditions; a document built here, `drover status` is its only reader) and the history.
//! Edge types: serde lives here, not in the core.
//!
//! Knows the terminal's tables and `-o`; must not drive a run or build the report document.

use drover_app::launch::platform_now_ms;
use drover_app::report::{is_simulated, setting_entries, ReportDocument, SettingEntry};
use drover_app::time_text::{format_duration_secs, offset, timestamp};
use drover_core::execution::{Execution, RunPhase};
use serde::Serialize;

use crate::exit::Failure;
use crate::output::{print_document, print_table, status_cell, table, OutputFormat};

pub fn print_report(document: &ReportDocument, output: OutputFormat) -> Result<(), Failure> {
    if let Some(format) = output.document() {
        return print_document(document, format);
    }
    let started = match document.timing.simulated {
        true => "simulated time".to_string(),
        false => format!("started {}", document.timing.started_at),
    };
    println!(
        "Run {} of cluster {} to {}: {} after {} ({started})",
        document.run,
        document.cluster,
        document.target_version,
        document.phase,
        format_duration_secs(document.duration_secs)
    );
    println!();
    print_host_results(document);
    print_settings(&document.settings);
    print_host_steps(document);
    print_vm_actions(document);
    print_failures(document);
    print_summary(document);
    Ok(())
}

fn print_host_results(document: &ReportDocument) {
    let mut hosts = table(&["host", "result", "reason"]);
    for host in &document.hosts {
        let result = if host.result == "upgraded" {
            "done"
        } else {
            host.result
        };
        hosts.add_row(vec![
            host.host.as_str().into(),
            status_cell(result),
            host.reason.clone().unwrap_or_default().into(),
        ]);
    }
    print_table(&hosts);
}

/// The blocking platform settings a run turned off, and whether each was put back; nothing when
/// the run met none.
fn print_settings(settings: &[SettingEntry]) {
    if settings.is_empty() {
        return;
    }
    let mut rows = table(&["setting", "vm", "step", "put back at end", "last error"]);
    for entry in settings {
        rows.add_row(vec![
            entry.setting.into(),
            entry.vm.clone().unwrap_or_default().into(),
            status_cell(entry.step),
            if entry.restored_at_end { "yes" } else { "no" }.into(),
            entry.last_error.clone().unwrap_or_default().into(),
        ]);
    }
    print_table(&rows);
}

fn print_host_steps(document: &ReportDocument) {
    if document.host_steps.is_empty() {
        return;
    }
    let mut steps = table(&[
        "host",
        "step",
        "calls",
        "failed",
        "first call",
        "time in calls",
    ]);
    for host in &document.host_steps {
        for (index, step) in host.steps.iter().enumerate() {
            let name = if index == 0 { host.host.as_str() } else { "" };
            steps.add_row(vec![
                name.to_string(),
                step.step.clone(),
                step.calls.to_string(),
                step.failed.to_string(),
                offset(step.started_after_secs),
                format_duration_secs(step.call_ms / 1000),
            ]);
        }
    }
    print_table(&steps);
}

fn print_vm_actions(document: &ReportDocument) {
    if document.vm_actions.is_empty() {
        return;
    }
    let mut actions = table(&["wave", "vm", "action", "from", "to", "result", "downtime"]);
    for action in &document.vm_actions {
        let kind = match action.is_return {
            true => format!("{} (return)", action.action),
            false => action.action.to_string(),
        };
        actions.add_row(vec![
            action.wave.to_string(),
            action.vm.clone(),
            kind,
            action.from.clone(),
            action.to.clone().unwrap_or_else(|| "-".into()),
            action.result.to_string(),
            format_duration_secs(action.downtime_secs),
        ]);
    }
    print_table(&actions);
}

fn print_failures(document: &ReportDocument) {
    if !document.failures.is_empty() {
        let mut failures = table(&["failure", "error"]);
        for failure in &document.failures {
            failures.add_row(vec![failure.subject.clone(), failure.error.clone()]);
        }
        print_table(&failures);
    }
    if !document.restore_errors.is_empty() {
        let mut restores = table(&["restore not done on", "error"]);
        for error in &document.restore_errors {
            restores.add_row(vec![error.host.clone(), error.error.clone()]);
        }
        print_table(&restores);
    }
}

fn print_summary(document: &ReportDocument) {
    println!(
        "{} migration(s) ({} failed attempt(s)), {} restart(s), {} shutdown(s) ({} forced)",
        document.migrations,
        document.migration_attempts_failed,
        document.restarts,
        document.shutdowns,
        document.forced_shutdowns
    );
    if document.suspends + document.shelves > 0 {
        println!(
            "{} suspend(s) (resumed on their own host), {} shelve(s) (unshelved on another host)",
            document.suspends, document.shelves
        );
    }
    if document.returns + document.returns_failed > 0 {
        println!(
            "{} return(s) back to a VM's upgraded home host ({} given up: those VMs stayed where they were)",
            document.returns, document.returns_failed
        );
    }
    if let Some(busy) = document.timing.busy_secs {
        println!(
            "{} of {} with a driver call in flight",
            format_duration_secs(busy),
            format_duration_secs(document.timing.duration_secs)
        );
    }
    if let Some(level) = &document.compatibility_level_raised {
        println!("Cluster compatibility level raised to {level}");
    }
}

#[derive(Serialize)]
pub struct StatusDocument {
    pub run: String,
    pub cluster: String,
    pub phase: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driven_by: Option<String>,
    /// The next wave waits for a maintenance window: "Sun 03:00 (in 4h51m)".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for_window: Option<String>,
    pub conditions: Vec<ConditionEntry>,
    /// Blocking platform settings the run turned off or is turning off (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingEntry>,
    pub hosts: Vec<HostStatusEntry>,
    pub vms: Vec<VmStatusEntry>,
}

#[derive(Serialize)]
pub struct ConditionEntry {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub status: bool,
    pub message: String,
}

#[derive(Serialize)]
pub struct HostStatusEntry {
    pub host: String,
    /// The host's step; `planned` (not started yet) or `not-planned` for hosts the run has not
    /// touched.
    pub step: &'static str,
    /// A date, or for a simulated run an offset from its start (`+1h02m03s`).
    pub since: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Why a host is not planned (`at-target`, `down`, `not-selected`, `newer-than-target`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Serialize)]
pub struct VmStatusEntry {
    pub vm: String,
    pub action: &'static str,
    pub from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub phase: &'static str,
    /// A return: the migration back to the VM's upgraded home host after its wave; absent for
    /// other actions.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_return: bool,
    /// The last failed attempts (at most five), oldest first.
    pub attempts: Vec<VmAttemptEntry>,
}

#[derive(Serialize)]
pub struct VmAttemptEntry {
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    pub error: String,
}

/// A time as the operator reads it: a date, or an offset from the start of a simulated run.
fn shown_time(at: u64, started_at: u64, simulated: bool) -> String {
    match simulated {
        true => offset(at.saturating_sub(started_at) / 1000),
        false => timestamp(at),
    }
}

/// Hosts the run has not started: `planned` when its plan has them in a wave, else
/// `not-planned` with the plan's reason.
fn untouched_hosts(execution: &Execution, listed: &[drover_core::HostId]) -> Vec<HostStatusEntry> {
    let cluster = execution.cluster();
    let plan = execution.initial_plan();
    cluster
        .host_ids()
        .filter(|id| !listed.contains(id))
        .map(|id| {
            let planned = plan.waves.iter().any(|w| w.hosts.contains(&id));
            let skipped = plan.skipped.iter().find(|s| s.host == id);
            HostStatusEntry {
                host: cluster.host(id).name.clone(),
                step: if planned { "planned" } else { "not-planned" },
                since: String::new(),
                attempts: 0,
                wave: None,
                last_error: None,
                note: skipped.map(|s| s.reason.as_str().to_string()),
            }
        })
        .collect()
}

pub fn status_document(
    record: &drover_store::RunRecord,
    execution: &Execution,
    driven_by: Option<&str>,
) -> StatusDocument {
    let status = execution.status();
    let cluster = execution.cluster();
    let name = |h: drover_core::HostId| cluster.host(h).name.clone();
    let simulated = is_simulated(&record.options_json);
    let started_at = execution.started_at();
    let time = |at: u64| shown_time(at, started_at, simulated);
    let listed: Vec<drover_core::HostId> = status.hosts.iter().map(|h| h.host).collect();
    let mut hosts: Vec<HostStatusEntry> = status
        .hosts
        .iter()
        .map(|h| HostStatusEntry {
            host: name(h.host),
            step: h.step.name(),
            since: time(h.since),
            attempts: h.attempts,
            wave: h.wave,
            last_error: h.last_error.clone(),
            note: None,
        })
        .collect();
    hosts.extend(untouched_hosts(execution, &listed));
    StatusDocument {
        run: record.id.clone(),
        cluster: record.cluster.clone(),
        phase: status.phase.name().to_string(),
        reason: match &status.phase {
            RunPhase::Halted { reason } => Some(reason.clone()),
            _ => None,
        },
        driven_by: driven_by.map(str::to_string),
        waiting_for_window: drover_engine::windows::waiting_for_window(
            execution,
            platform_now_ms(record, execution),
        ),
        conditions: status
            .conditions
            .iter()
            .map(|c| ConditionEntry {
                kind: c.kind,
                status: c.status,
                message: c.message.clone(),
            })
            .collect(),
        settings: setting_entries(execution),
        hosts,
        vms: status
            .vms
            .iter()
            .map(|v| VmStatusEntry {
                vm: cluster.vm(v.vm).name.clone(),
                action: v.kind.as_str(),
                from: name(v.from),
                to: v.to.map(name),
                phase: v.phase,
                is_return: v.is_return,
                attempts: v
                    .attempts
                    .iter()
                    .map(|a| VmAttemptEntry {
                        at: time(a.at),
                        destination: a.destination.map(name),
                        error: a.error.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub fn print_status(
    record: &drover_store::RunRecord,
    execution: &Execution,
    driven_by: Option<&str>,
    output: OutputFormat,
) -> Result<(), Failure> {
    let document = status_document(record, execution, driven_by);
    if let Some(format) = output.document() {
        return print_document(&document, format);
    }
    println!(
        "Run {} of cluster {}: {}",
        document.run, document.cluster, document.phase
    );
    if let Some(reason) = &document.reason {
        println!("  {reason}");
    }
    if let Some(holder) = &document.driven_by {
        println!("  driven by {holder}");
    }
    if let Some(window) = &document.waiting_for_window {
        println!("  waiting for window {window}");
    }
    println!();
    let mut conditions = table(&["condition", "status", "message"]);
    for condition in &document.conditions {
        conditions.add_row(vec![
            condition.kind.to_string(),
            condition.status.to_string(),
            condition.message.clone(),
        ]);
    }
    print_table(&conditions);
    print_settings(&document.settings);
    let mut hosts = table(&[
        "host",
        "wave",
        "step",
        "since",
        "attempts",
        "last error / note",
    ]);
    for host in &document.hosts {
        let step = if host.step == "upgrade-failed" {
            "fail"
        } else {
            host.step
        };
        hosts.add_row(vec![
            host.host.as_str().into(),
            host.wave.map_or(String::new(), |w| w.to_string()).into(),
            status_cell(step),
            host.since.as_str().into(),
            host.attempts.to_string().into(),
            host.last_error
                .clone()
                .or_else(|| host.note.clone())
                .unwrap_or_default()
                .into(),
        ]);
    }
    print_table(&hosts);
    let troubled: Vec<&VmStatusEntry> = document
        .vms
        .iter()
        .filter(|v| v.phase != "done" || !v.attempts.is_empty())
        .collect();
    if !troubled.is_empty() {
        let mut vms = table(&[
            "vm",
            "action",
            "from",
            "to",
            "phase",
            "failed attempts",
            "last error",
        ]);
        for vm in troubled {
            let action = match vm.is_return {
                true => format!("{} (return)", vm.action),
                false => vm.action.to_string(),
            };
            vms.add_row(vec![
                vm.vm.clone(),
                action,
                vm.from.clone(),
                vm.to.clone().unwrap_or_default(),
                vm.phase.to_string(),
                vm.attempts.len().to_string(),
                vm.attempts
                    .last()
                    .map(|a| a.error.clone())
                    .unwrap_or_default(),
            ]);
        }
        print_table(&vms);
    }
    Ok(())
}

#[derive(Serialize)]
struct HistoryEntry<'a> {
    run: &'a str,
    cluster: &'a str,
    state: &'a str,
    created_at: String,
    updated_at: String,
}

pub fn print_history(
    runs: &[drover_store::RunRecord],
    output: OutputFormat,
) -> Result<(), Failure> {
    let entries: Vec<HistoryEntry<'_>> = runs
        .iter()
        .map(|r| HistoryEntry {
            run: &r.id,
            cluster: &r.cluster,
            state: &r.state,
            created_at: timestamp(r.created_at_ms),
            updated_at: timestamp(r.updated_at_ms),
        })
        .collect();
    if let Some(format) = output.document() {
        return print_document(&entries, format);
    }
    let mut view = table(&["run", "cluster", "state", "created", "updated"]);
    for entry in &entries {
        view.add_row(vec![
            entry.run.to_string(),
            entry.cluster.to_string(),
            entry.state.to_string(),
            entry.created_at.clone(),
            entry.updated_at.clone(),
        ]);
    }
    print_table(&view);
    Ok(())
}
