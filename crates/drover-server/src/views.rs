//! The API's documents: clusters, hosts, runs (the contract shared with the dashboard; field
//! names are binding — add, never rename or drop), built from the inventory, the core's
//! execution and the tracker. Serde and OpenAPI schemas live here, not in the core.
//!
//! This module must not know HTTP, the store or threads: it turns state into documents.

use std::collections::BTreeMap;

use drover_core::execution::{Execution, HostStep, OperatorCommand, RunPhase};
use drover_core::{HostRole, HostState};
use drover_schema::inventory::InventoryFile;
use serde::Serialize;
use utoipa::ToSchema;

use super::tracker::Tracker;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClusterSummary {
    pub name: String,
    /// simulator | command | libvirt
    pub driver: String,
    pub target_version: String,
    pub hosts: usize,
    pub vms: usize,
    pub hosts_by_version: BTreeMap<String, usize>,
    pub active_run: Option<String>,
    pub last_run: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClusterDetail {
    #[serde(flatten)]
    pub summary: ClusterSummary,
    pub hosts_detail: Vec<HostView>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClusterList {
    pub clusters: Vec<ClusterSummary>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HostView {
    pub name: String,
    /// master | management | compute
    pub role: String,
    pub version: String,
    pub target_version: String,
    /// up | maintenance | down
    pub state: String,
    pub cordoned: bool,
    pub memory_mib: u64,
    pub cpus: u32,
    pub vms: usize,
    pub labels: BTreeMap<String, String>,
    /// Its step in the cluster's active run; null without one.
    pub step: Option<String>,
    /// Null until an update check ran (no update check exists yet).
    pub updates_available: Option<bool>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HostList {
    pub hosts: Vec<HostView>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RunSummary {
    pub id: String,
    pub cluster: String,
    pub state: String,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunSummary>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConditionView {
    /// Progressing | Degraded | Paused | Completed | Upgradeable
    #[serde(rename = "type")]
    pub kind: String,
    /// "True" | "False"
    pub status: String,
    pub reason: String,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WaveView {
    pub number: usize,
    pub hosts: Vec<String>,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RunHostView {
    pub name: String,
    pub step: String,
    pub since_ms: u64,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub wave: Option<usize>,
    pub version: String,
    /// up | maintenance | down
    pub state: String,
    /// skip | continue, when valid for this host now.
    pub actions: Vec<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MigrationView {
    pub vm: String,
    pub from: String,
    pub to: String,
    pub started_at_ms: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VmDownView {
    pub vm: String,
    pub host: String,
    /// restart | shutdown
    pub kind: String,
    pub since_ms: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VmActionView {
    pub vm: String,
    /// migrate | restart | shutdown
    pub kind: String,
    pub from: String,
    pub to: Option<String>,
    pub wave: usize,
    pub phase: String,
    /// A return: the migration back to the VM's upgraded home host after its wave (`failed`:
    /// the VM stayed where it was, running).
    pub is_return: bool,
    pub attempts: usize,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TimelineView {
    pub host: String,
    pub wave: Option<usize>,
    pub step: String,
    pub from_ms: u64,
    pub to_ms: Option<u64>,
}

/// A run as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RunView {
    pub id: String,
    pub cluster: String,
    pub target_version: String,
    /// awaiting-approval | running | halted | aborting | completed | aborted
    pub phase: String,
    pub phase_reason: Option<String>,
    pub paused: bool,
    pub window_open: bool,
    /// The next wave waits for a maintenance window: when it opens, in the policy's time zone,
    /// and how long until then ("Sun 03:00 (in 4h51m)"); null when the run does not wait.
    pub waiting_for_window: Option<String>,
    /// `pid@host` of the process driving the run, if one does.
    pub driven_by: Option<String>,
    pub started_at_ms: u64,
    pub now_ms: u64,
    pub finished: bool,
    pub conditions: Vec<ConditionView>,
    /// Blocking platform settings (HA, WLB, a VM's inserted CD) the run turned off before its
    /// first wave, and whether each is put back; empty when there were none.
    pub settings: Vec<drover_app::report::SettingEntry>,
    pub hosts_total: usize,
    pub hosts_finished: usize,
    pub current_wave: Option<usize>,
    pub waves: Vec<WaveView>,
    pub hosts: Vec<RunHostView>,
    pub migrations_in_flight: Vec<MigrationView>,
    pub vms_down: Vec<VmDownView>,
    pub vm_actions: Vec<VmActionView>,
    pub timeline: Vec<TimelineView>,
    /// Operator actions valid now (approve, pause, resume, retry, abort).
    pub actions: Vec<String>,
}

/// Who is asking, for `whoami`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    pub name: String,
    /// viewer | operator
    pub role: String,
    pub auth_required: bool,
}

/// The answer to an accepted operator action.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub accepted: String,
    pub run: String,
}

pub fn role_name(role: HostRole) -> &'static str {
    match role {
        HostRole::Master => "master",
        HostRole::Management => "management",
        HostRole::Compute => "compute",
    }
}

pub fn state_name(state: HostState) -> &'static str {
    match state {
        HostState::Up => "up",
        HostState::Maintenance => "maintenance",
        HostState::Down => "down",
    }
}

/// The summary of a served cluster, from its inventory and its runs.
pub fn cluster_summary(
    inventory: &InventoryFile,
    active_run: Option<String>,
    last_run: Option<String>,
) -> ClusterSummary {
    let cluster = &inventory.cluster;
    let mut hosts_by_version = BTreeMap::new();
    for host in &cluster.hosts {
        *hosts_by_version
            .entry(host.version.to_string())
            .or_insert(0) += 1;
    }
    ClusterSummary {
        name: cluster.name.clone(),
        driver: inventory.driver.kind().to_string(),
        target_version: cluster.target_version.to_string(),
        hosts: cluster.hosts.len(),
        vms: cluster.vms.len(),
        hosts_by_version,
        active_run,
        last_run,
    }
}

/// Every host of the inventory; `run` (the active run's view) gives each its step and its
/// version as the run observed it.
pub fn host_views(inventory: &InventoryFile, run: Option<&RunView>) -> Vec<HostView> {
    let cluster = &inventory.cluster;
    cluster
        .host_ids()
        .map(|id| {
            let host = cluster.host(id);
            let in_run = run.and_then(|r| r.hosts.iter().find(|h| h.name == host.name));
            HostView {
                name: host.name.clone(),
                role: role_name(host.role).to_string(),
                version: in_run.map_or_else(|| host.version.to_string(), |h| h.version.clone()),
                target_version: cluster.target_version.to_string(),
                state: in_run
                    .map_or_else(|| state_name(host.state).to_string(), |h| h.state.clone()),
                cordoned: host.cordoned,
                memory_mib: host.memory_mib,
                cpus: host.cpus,
                vms: cluster.vms.iter().filter(|vm| vm.host == id).count(),
                labels: host.labels.clone(),
                step: in_run.map(|h| h.step.clone()),
                updates_available: None,
            }
        })
        .collect()
}

/// Whether an operator action applies now. The core decides (`check_operator`); on top, pausing
/// a paused run or resuming a running one is refused, so that `actions` lists only what
/// changes something.
pub fn check_action(execution: &Execution, command: &OperatorCommand) -> Result<(), String> {
    execution
        .check_operator(command)
        .map_err(|error| error.to_string())?;
    let paused = execution.status().paused;
    match command {
        OperatorCommand::Pause if paused => Err("the run is already paused".into()),
        OperatorCommand::Resume if !paused => Err("the run is not paused".into()),
        _ => Ok(()),
    }
}

/// Everything about the run that is not in the core's state.
pub struct RunContext<'a> {
    pub run_id: &'a str,
    pub driven_by: Option<String>,
    pub now_ms: u64,
}

pub fn run_view(context: &RunContext<'_>, execution: &Execution, tracker: &Tracker) -> RunView {
    let status = execution.status();
    let cluster = execution.cluster();
    let (hosts_finished, hosts_total) = execution.host_totals();
    let (wave_number, wave_hosts) = execution.current_wave();
    RunView {
        id: context.run_id.to_string(),
        cluster: cluster.name.clone(),
        target_version: cluster.target_version.to_string(),
        phase: status.phase.name().to_string(),
        phase_reason: phase_reason(&status),
        paused: status.paused,
        window_open: status.window_open,
        waiting_for_window: drover_engine::windows::waiting_for_window(execution, context.now_ms),
        driven_by: context.driven_by.clone(),
        started_at_ms: execution.report().started_at,
        now_ms: context.now_ms,
        finished: status.phase.is_finished(),
        conditions: conditions(execution, &status),
        settings: drover_app::report::setting_entries(execution),
        hosts_total,
        hosts_finished,
        current_wave: (!wave_hosts.is_empty()).then_some(wave_number),
        waves: waves(execution, tracker),
        hosts: run_hosts(execution),
        migrations_in_flight: migrations_in_flight(execution, &status, tracker),
        vms_down: vms_down(execution, &status, tracker),
        vm_actions: vm_actions(execution, &status),
        timeline: tracker
            .timeline()
            .iter()
            .map(|span| TimelineView {
                host: span.host.clone(),
                wave: span.wave,
                step: span.step.to_string(),
                from_ms: span.from_ms,
                to_ms: span.to_ms,
            })
            .collect(),
        actions: run_actions(execution),
    }
}

fn phase_reason(status: &drover_core::execution::RunStatus) -> Option<String> {
    if let RunPhase::Halted { reason } = &status.phase {
        return Some(reason.clone());
    }
    status
        .conditions
        .iter()
        .find(|c| c.kind == "Paused" && c.status)
        .map(|c| c.message.clone())
}

fn conditions(
    execution: &Execution,
    status: &drover_core::execution::RunStatus,
) -> Vec<ConditionView> {
    let mut views: Vec<ConditionView> = status
        .conditions
        .iter()
        .map(|c| ConditionView {
            kind: c.kind.to_string(),
            status: if c.status { "True" } else { "False" }.to_string(),
            reason: condition_reason(c.kind, c.status).to_string(),
            message: c.message.clone(),
        })
        .collect();
    let feasible = execution.initial_plan().is_feasible();
    views.push(ConditionView {
        kind: "Upgradeable".into(),
        status: if feasible { "True" } else { "False" }.into(),
        reason: if feasible { "PlanIsSafe" } else { "NoSafePlan" }.into(),
        message: if feasible {
            "the plan passed every precheck".into()
        } else {
            "a precheck failed when the run was planned".into()
        },
    });
    views
}

fn condition_reason(kind: &str, status: bool) -> &'static str {
    match (kind, status) {
        ("Progressing", true) => "HostsInProgress",
        ("Progressing", false) => "NotProgressing",
        ("Degraded", true) => "HostFailed",
        ("Paused", true) => "WaitingForOperator",
        ("Completed", true) => "AllHostsFinished",
        ("Completed", false) => "NotFinished",
        _ => "AsExpected",
    }
}

fn run_actions(execution: &Execution) -> Vec<String> {
    [
        OperatorCommand::Approve,
        OperatorCommand::Pause,
        OperatorCommand::Resume,
        OperatorCommand::Retry,
        OperatorCommand::Abort,
    ]
    .iter()
    .filter(|command| check_action(execution, command).is_ok())
    .map(|command| command.name().to_string())
    .collect()
}

/// While Drover has a host in maintenance, the run says so even before the next discovery.
fn host_state_in_run(execution: &Execution, id: drover_core::HostId, step: HostStep) -> String {
    let in_maintenance = matches!(
        step,
        HostStep::Upgrading
            | HostStep::AwaitingManualUpgrade
            | HostStep::Verifying
            | HostStep::Rebooting
            | HostStep::HealthChecking
            | HostStep::ExitingMaintenance
    );
    if in_maintenance {
        "maintenance".into()
    } else {
        state_name(execution.cluster().host(id).state).into()
    }
}

fn run_hosts(execution: &Execution) -> Vec<RunHostView> {
    let cluster = execution.cluster();
    cluster
        .host_ids()
        .map(|id| {
            let host = cluster.host(id);
            let status = execution.host_status(id);
            let version = if status.step == HostStep::Done {
                cluster.target_version.to_string()
            } else {
                host.version.to_string()
            };
            let actions = [
                OperatorCommand::Skip {
                    host: host.name.clone(),
                },
                OperatorCommand::Continue {
                    host: host.name.clone(),
                },
            ]
            .iter()
            .filter(|command| !execution.is_finished() && check_action(execution, command).is_ok())
            .map(|command| command.name().to_string())
            .collect();
            RunHostView {
                name: host.name.clone(),
                step: status.step.name().to_string(),
                since_ms: status.since,
                attempts: status.attempts,
                last_error: status.last_error.clone(),
                wave: status.wave,
                version,
                state: host_state_in_run(execution, id, status.step),
                actions,
            }
        })
        .collect()
}

fn waves(execution: &Execution, tracker: &Tracker) -> Vec<WaveView> {
    let cluster = execution.cluster();
    let (started, _) = execution.current_wave();
    let mut views: Vec<WaveView> = (1..=started)
        .map(|number| {
            let hosts: Vec<String> = cluster
                .host_ids()
                .filter(|id| execution.host_status(*id).wave == Some(number))
                .map(|id| cluster.host(id).name.clone())
                .collect();
            let spans: Vec<_> = tracker
                .timeline()
                .iter()
                .filter(|span| span.wave == Some(number))
                .collect();
            let all_closed = !spans.is_empty() && spans.iter().all(|s| s.to_ms.is_some());
            let finished = hosts.iter().all(|name| {
                cluster.host_named(name).is_some_and(|id| {
                    matches!(
                        execution.host_status(id).step,
                        HostStep::Done | HostStep::Skipped
                    )
                })
            });
            WaveView {
                number,
                hosts,
                started_at_ms: spans.iter().map(|s| s.from_ms).min(),
                finished_at_ms: (finished && all_closed)
                    .then(|| spans.iter().filter_map(|s| s.to_ms).max())
                    .flatten(),
            }
        })
        .collect();
    views.extend(planned_waves(execution, started));
    views
}

/// Waves not started yet: the plan's later waves, with only hosts no wave has taken.
fn planned_waves(execution: &Execution, started: usize) -> Vec<WaveView> {
    if execution.is_finished() {
        return Vec::new();
    }
    let cluster = execution.cluster();
    let mut number = started;
    execution
        .initial_plan()
        .waves
        .iter()
        .skip(started)
        .filter_map(|wave| {
            let hosts: Vec<String> = wave
                .hosts
                .iter()
                .filter(|id| execution.host_status(**id).wave.is_none())
                .map(|id| cluster.host(*id).name.clone())
                .collect();
            (!hosts.is_empty()).then(|| {
                number += 1;
                WaveView {
                    number,
                    hosts,
                    started_at_ms: None,
                    finished_at_ms: None,
                }
            })
        })
        .collect()
}

fn migrations_in_flight(
    execution: &Execution,
    status: &drover_core::execution::RunStatus,
    tracker: &Tracker,
) -> Vec<MigrationView> {
    let cluster = execution.cluster();
    status
        .vms
        .iter()
        .filter(|vm| vm.phase == "migration")
        .filter_map(|vm| {
            Some(MigrationView {
                vm: cluster.vm(vm.vm).name.clone(),
                from: cluster.host(vm.from).name.clone(),
                to: cluster.host(vm.to?).name.clone(),
                started_at_ms: tracker
                    .vm_phase_since(vm.vm)
                    .unwrap_or(status_now(execution)),
            })
        })
        .collect()
}

fn vms_down(
    execution: &Execution,
    status: &drover_core::execution::RunStatus,
    tracker: &Tracker,
) -> Vec<VmDownView> {
    let cluster = execution.cluster();
    status
        .vms
        .iter()
        .filter(|vm| matches!(vm.phase, "stopped" | "start"))
        .map(|vm| VmDownView {
            vm: cluster.vm(vm.vm).name.clone(),
            host: cluster.host(vm.from).name.clone(),
            kind: vm.kind.as_str().to_string(),
            since_ms: tracker
                .vm_phase_since(vm.vm)
                .unwrap_or(status_now(execution)),
        })
        .collect()
}

fn status_now(execution: &Execution) -> u64 {
    execution.report().now
}

fn vm_actions(
    execution: &Execution,
    status: &drover_core::execution::RunStatus,
) -> Vec<VmActionView> {
    let cluster = execution.cluster();
    status
        .vms
        .iter()
        .map(|vm| VmActionView {
            vm: cluster.vm(vm.vm).name.clone(),
            kind: vm.kind.as_str().to_string(),
            from: cluster.host(vm.from).name.clone(),
            to: vm.to.map(|to| cluster.host(to).name.clone()),
            wave: vm.wave,
            phase: vm.phase.to_string(),
            is_return: vm.is_return,
            attempts: vm.attempts.len(),
            last_error: vm.attempts.last().map(|a| a.error.clone()),
        })
        .collect()
}
