//! The run documents the CLI prints: the end report (hosts upgraded, skipped or failed with
//! reasons; migrations; downtime per VM), the status (per host: step, since, attempts, last
//! error; per run: conditions) and the history. Edge types: serde lives here, not in the core.

use drover_core::execution::{Execution, RunPhase};
use serde::Serialize;

use crate::exit::Failure;
use crate::output::{
    format_duration_secs, print_document, print_table, status_cell, table, OutputFormat,
};

#[derive(Serialize)]
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
    pub downtime: Vec<VmDowntimeEntry>,
    pub restore_errors: Vec<RestoreError>,
    /// The cluster compatibility level the run set after its last host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compatibility_level_raised: Option<String>,
}

#[derive(Serialize)]
pub struct HostResult {
    pub host: String,
    /// upgraded | skipped | failed
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize)]
pub struct VmDowntimeEntry {
    pub vm: String,
    pub host: String,
    pub action: &'static str,
    pub downtime_secs: u64,
}

#[derive(Serialize)]
pub struct RestoreError {
    pub host: String,
    pub error: String,
}

fn timestamp(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64).map_or_else(
        |_| ms.to_string(),
        |t| {
            t.round(jiff::Unit::Second)
                .map_or_else(|_| t.to_string(), |t| t.to_string())
        },
    )
}

pub fn report_document(run_id: &str, execution: &Execution) -> ReportDocument {
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
    }
}

pub fn print_report(
    run_id: &str,
    execution: &Execution,
    output: OutputFormat,
) -> Result<(), Failure> {
    let document = report_document(run_id, execution);
    if let Some(format) = output.document() {
        return print_document(&document, format);
    }
    println!(
        "Run {} of cluster {} to {}: {} after {}",
        document.run,
        document.cluster,
        document.target_version,
        document.phase,
        format_duration_secs(document.duration_secs)
    );
    println!();
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
    if !document.downtime.is_empty() {
        let mut downtime = table(&["vm", "host", "action", "downtime"]);
        for entry in &document.downtime {
            downtime.add_row(vec![
                entry.vm.clone(),
                entry.host.clone(),
                entry.action.to_string(),
                format_duration_secs(entry.downtime_secs),
            ]);
        }
        print_table(&downtime);
    }
    for error in &document.restore_errors {
        println!("could not restore on {}: {}", error.host, error.error);
    }
    println!(
        "{} migration(s) ({} failed attempt(s)), {} restart(s), {} shutdown(s) ({} forced)",
        document.migrations,
        document.migration_attempts_failed,
        document.restarts,
        document.shutdowns,
        document.forced_shutdowns
    );
    if let Some(level) = &document.compatibility_level_raised {
        println!("Cluster compatibility level raised to {level}");
    }
    Ok(())
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
    pub step: &'static str,
    pub since: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Serialize)]
pub struct VmStatusEntry {
    pub vm: String,
    pub action: &'static str,
    pub from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub phase: &'static str,
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

pub fn status_document(
    record: &drover_store::RunRecord,
    execution: &Execution,
    driven_by: Option<&str>,
) -> StatusDocument {
    let status = execution.status();
    let cluster = execution.cluster();
    let name = |h: drover_core::HostId| cluster.host(h).name.clone();
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
            crate::runs::platform_now_ms(record, execution),
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
        hosts: status
            .hosts
            .iter()
            .map(|h| HostStatusEntry {
                host: name(h.host),
                step: h.step.name(),
                since: timestamp(h.since),
                attempts: h.attempts,
                wave: h.wave,
                last_error: h.last_error.clone(),
            })
            .collect(),
        vms: status
            .vms
            .iter()
            .map(|v| VmStatusEntry {
                vm: cluster.vm(v.vm).name.clone(),
                action: v.kind.as_str(),
                from: name(v.from),
                to: v.to.map(name),
                phase: v.phase,
                attempts: v
                    .attempts
                    .iter()
                    .map(|a| VmAttemptEntry {
                        at: timestamp(a.at),
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
    let mut hosts = table(&["host", "wave", "step", "since", "attempts", "last error"]);
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
            host.last_error.clone().unwrap_or_default().into(),
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
            vms.add_row(vec![
                vm.vm.clone(),
                vm.action.to_string(),
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
