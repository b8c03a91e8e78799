//! The plan document: a [`Plan`] rendered with names instead of ids, for JSON and YAML output.
//!
//! The field names and string values here are a contract with the plan's readers (scripts, the
//! CLI's `--json`, other crates reading plans back), so they change only deliberately. This
//! module knows the plan and cluster model but not how plans are made, and writes no files.
//!
//! Serialize with [`to_json`] / [`to_yaml`]; read back with `serde_json::from_str::<PlanDocument>`
//! or `serde_yaml_ng::from_str::<PlanDocument>` directly, and turn its waves back into the core's
//! (names into ids of a cluster) with [`PlanDocument::waves_on`] (`drover run --plan`).

use drover_core::{
    Action, ActionKind, CheckStatus, Cluster, HostId, Plan, Precheck, SkipReason, SkippedHost,
    Summary, Unmovable, Wave, WaveKind,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanDocument {
    pub cluster: String,
    pub target_version: String,
    /// No precheck failed; an infeasible plan has no waves.
    pub feasible: bool,
    pub prechecks: Vec<PrecheckEntry>,
    pub waves: Vec<WaveEntry>,
    pub skipped: Vec<SkippedEntry>,
    pub summary: SummaryEntry,
    /// One entry per action that stops a VM's guest (restart or shutdown), in plan order.
    pub downtime: Vec<DowntimeEntry>,
    /// The final step after the last host: the cluster compatibility level Drover sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_compatibility_level: Option<String>,
    /// From the release catalog (`upgrade.catalog`): each upgraded host's path and hotfixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upgrade_paths: Vec<UpgradePathEntry>,
    /// From the release catalog: the highest cluster compatibility level every host supports
    /// once the plan is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility_level_after: Option<String>,
}

/// One host's way to the target in one maintenance window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpgradePathEntry {
    pub host: String,
    pub from: String,
    /// Releases installed in order; the last is the target.
    pub hops: Vec<String>,
    /// Reboots in the window (hops whose reboot can be deferred share one).
    pub reboots: u32,
    /// Hotfixes applied after the last hop, prerequisites first.
    pub hotfixes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrecheckEntry {
    pub id: String,
    pub status: CheckStatusName,
    pub message: String,
    pub resolvable: bool,
    pub subjects: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaveEntry {
    /// 1-based position of the wave in the plan.
    pub number: usize,
    pub kind: WaveKindName,
    pub hosts: Vec<String>,
    pub actions: Vec<ActionEntry>,
    /// Live migrations back home once the wave's hosts are upgraded (`Wave::returns`: each a
    /// `migrate` from where the VM waited to the wave host it left). Left out when empty, so
    /// documents of plans without returns stay as they were and still read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returns: Vec<ActionEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionEntry {
    pub vm: String,
    pub kind: ActionKindName,
    pub from: String,
    /// Absent for a shutdown, which brings the VM back on `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedEntry {
    pub host: String,
    pub reason: SkipReasonName,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryEntry {
    pub waves: usize,
    pub hosts_to_upgrade: usize,
    pub migrations: usize,
    pub restarts: usize,
    pub shutdowns: usize,
    /// Left out when zero, so documents of plans without suspends or shelves stay as they were.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suspends: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shelves: usize,
    /// Returns (live migrations back home after a wave), not counted in `migrations`; left out
    /// when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub returns: usize,
    pub migrations_lower_bound: usize,
    pub waves_lower_bound: usize,
    pub max_unavailable: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DowntimeEntry {
    pub vm: String,
    /// The host whose upgrade causes the downtime.
    pub host: String,
    pub kind: ActionKindName,
    /// Why the VM cannot simply live-migrate, for the operator.
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatusName {
    Pass,
    Warn,
    Fail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaveKindName {
    Master,
    Management,
    Compute,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKindName {
    Migrate,
    Restart,
    Shutdown,
    Suspend,
    Shelve,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReasonName {
    Down,
    AtTarget,
    NewerThanTarget,
    NotSelected,
}

impl PlanDocument {
    /// The document for `plan`, which must have been made for `cluster` (ids index its lists).
    pub fn new(cluster: &Cluster, plan: &Plan) -> PlanDocument {
        PlanDocument {
            cluster: cluster.name.clone(),
            target_version: cluster.target_version.to_string(),
            feasible: plan.is_feasible(),
            prechecks: plan.prechecks.iter().map(PrecheckEntry::new).collect(),
            waves: plan
                .waves
                .iter()
                .enumerate()
                .map(|(index, wave)| WaveEntry::new(cluster, index + 1, wave))
                .collect(),
            skipped: plan
                .skipped
                .iter()
                .map(|skipped| SkippedEntry::new(cluster, skipped))
                .collect(),
            summary: SummaryEntry::from(&plan.summary),
            downtime: plan
                .actions()
                .filter(|action| action.kind.has_downtime())
                .map(|action| DowntimeEntry::new(cluster, action))
                .collect(),
            final_compatibility_level: plan.final_compatibility_level.clone(),
            upgrade_paths: Vec::new(),
            compatibility_level_after: None,
        }
    }
}

impl PlanDocument {
    /// The document's waves in the core's terms, for `cluster` (names looked up there). Fails
    /// naming the first host or VM the cluster does not have; says nothing of safety (that is
    /// `drover_core::check::check_plan`'s job).
    pub fn waves_on(&self, cluster: &Cluster) -> Result<Vec<Wave>, String> {
        let vm_ids: std::collections::HashMap<&str, drover_core::VmId> = cluster
            .vms
            .iter()
            .enumerate()
            .map(|(index, vm)| (vm.name.as_str(), drover_core::VmId(index as u32)))
            .collect();
        let host = |name: &str| {
            cluster
                .host_named(name)
                .ok_or_else(|| format!("host {name} is not in cluster {}", cluster.name))
        };
        let vm = |name: &str| {
            vm_ids
                .get(name)
                .copied()
                .ok_or_else(|| format!("VM {name} is not in cluster {}", cluster.name))
        };
        let action = |a: &ActionEntry| -> Result<Action, String> {
            Ok(Action {
                vm: vm(&a.vm)?,
                kind: a.kind.into(),
                from: host(&a.from)?,
                to: a.to.as_deref().map(host).transpose()?,
            })
        };
        self.waves
            .iter()
            .map(|wave| {
                Ok(Wave {
                    kind: wave.kind.into(),
                    hosts: wave
                        .hosts
                        .iter()
                        .map(|h| host(h))
                        .collect::<Result<_, _>>()?,
                    actions: wave.actions.iter().map(action).collect::<Result<_, _>>()?,
                    returns: wave.returns.iter().map(action).collect::<Result<_, _>>()?,
                })
            })
            .collect()
    }
}

/// Pretty-printed JSON, without a trailing newline.
pub fn to_json(document: &PlanDocument) -> String {
    serde_json::to_string_pretty(document)
        .expect("a plan document holds only strings, numbers, booleans and lists")
}

/// YAML, ending with a newline.
pub fn to_yaml(document: &PlanDocument) -> String {
    serde_yaml_ng::to_string(document)
        .expect("a plan document holds only strings, numbers, booleans and lists")
}

fn host_name(cluster: &Cluster, host: HostId) -> String {
    cluster.host(host).name.clone()
}

impl PrecheckEntry {
    /// The document form of a precheck.
    pub fn new(precheck: &Precheck) -> PrecheckEntry {
        PrecheckEntry {
            id: precheck.id.to_string(),
            status: precheck.status.into(),
            message: precheck.message.clone(),
            resolvable: precheck.resolvable,
            subjects: precheck.subjects.clone(),
        }
    }
}

impl WaveEntry {
    fn new(cluster: &Cluster, number: usize, wave: &Wave) -> WaveEntry {
        WaveEntry {
            number,
            kind: wave.kind.into(),
            hosts: wave
                .hosts
                .iter()
                .map(|host| host_name(cluster, *host))
                .collect(),
            actions: wave
                .actions
                .iter()
                .map(|action| ActionEntry::new(cluster, action))
                .collect(),
            returns: wave
                .returns
                .iter()
                .map(|action| ActionEntry::new(cluster, action))
                .collect(),
        }
    }
}

impl ActionEntry {
    fn new(cluster: &Cluster, action: &Action) -> ActionEntry {
        ActionEntry {
            vm: cluster.vm(action.vm).name.clone(),
            kind: action.kind.into(),
            from: host_name(cluster, action.from),
            to: action.to.map(|to| host_name(cluster, to)),
        }
    }
}

impl SkippedEntry {
    fn new(cluster: &Cluster, skipped: &SkippedHost) -> SkippedEntry {
        SkippedEntry {
            host: host_name(cluster, skipped.host),
            reason: skipped.reason.into(),
        }
    }
}

impl From<&Summary> for SummaryEntry {
    fn from(summary: &Summary) -> SummaryEntry {
        SummaryEntry {
            waves: summary.waves,
            hosts_to_upgrade: summary.hosts_to_upgrade,
            migrations: summary.migrations,
            restarts: summary.restarts,
            shutdowns: summary.shutdowns,
            suspends: summary.suspends,
            shelves: summary.shelves,
            returns: summary.returns,
            migrations_lower_bound: summary.migrations_lower_bound,
            waves_lower_bound: summary.waves_lower_bound,
            max_unavailable: summary.max_unavailable,
        }
    }
}

impl DowntimeEntry {
    fn new(cluster: &Cluster, action: &Action) -> DowntimeEntry {
        let host = host_name(cluster, action.from);
        DowntimeEntry {
            vm: cluster.vm(action.vm).name.clone(),
            reason: downtime_reason(cluster, action, &host),
            host,
            kind: action.kind.into(),
        }
    }
}

/// Mirrors the planner's choice (`drover_core::planner::disposition`) in the operator's words.
fn downtime_reason(cluster: &Cluster, action: &Action, host: &str) -> String {
    match action.kind {
        ActionKind::Restart if cluster.vm(action.vm).unmovable == Some(Unmovable::Restart) => {
            let destination = action
                .to
                .map_or_else(|| "another host".to_string(), |to| host_name(cluster, to));
            format!("cannot live-migrate; unmovable: restart: restarted on {destination}")
        }
        ActionKind::Shutdown if cluster.vm(action.vm).unmovable == Some(Unmovable::Shutdown) => {
            format!("cannot live-migrate; unmovable: shutdown: shut down for {host}'s upgrade, started again on it")
        }
        ActionKind::Restart => {
            let destination = action
                .to
                .map_or_else(|| "another host".to_string(), |to| host_name(cluster, to));
            format!("cannot live-migrate; restart_policy always: restarted on {destination}")
        }
        ActionKind::Shutdown if cluster.vm(action.vm).local_storage => {
            format!("local storage: shut down for {host}'s upgrade, started again on it")
        }
        ActionKind::Shutdown if drover_core::planner::is_pool_of_one(cluster) => format!(
            "pool of one: no other host to go to: shut down for {host}'s upgrade, started again \
             on it (auto_resolve)"
        ),
        ActionKind::Shutdown => format!(
            "cannot live-migrate or restart elsewhere: shut down for {host}'s upgrade (auto_resolve)"
        ),
        ActionKind::Migrate => format!("live-migrated away from {host}: no downtime"),
        ActionKind::Suspend => format!(
            "cannot live-migrate; unmovable: suspend: memory saved to disk, resumed on {host} after \
             its upgrade (no boot)"
        ),
        ActionKind::Shelve => {
            let destination = action
                .to
                .map_or_else(|| "another host".to_string(), |to| host_name(cluster, to));
            format!("cannot live-migrate; unmovable: shelve: shelved, unshelved on {destination}")
        }
    }
}

impl From<CheckStatus> for CheckStatusName {
    fn from(status: CheckStatus) -> CheckStatusName {
        match status {
            CheckStatus::Pass => CheckStatusName::Pass,
            CheckStatus::Warn => CheckStatusName::Warn,
            CheckStatus::Fail => CheckStatusName::Fail,
        }
    }
}

impl From<WaveKind> for WaveKindName {
    fn from(kind: WaveKind) -> WaveKindName {
        match kind {
            WaveKind::Master => WaveKindName::Master,
            WaveKind::Management => WaveKindName::Management,
            WaveKind::Compute => WaveKindName::Compute,
        }
    }
}

impl From<WaveKindName> for WaveKind {
    fn from(kind: WaveKindName) -> WaveKind {
        match kind {
            WaveKindName::Master => WaveKind::Master,
            WaveKindName::Management => WaveKind::Management,
            WaveKindName::Compute => WaveKind::Compute,
        }
    }
}

impl From<ActionKindName> for ActionKind {
    fn from(kind: ActionKindName) -> ActionKind {
        match kind {
            ActionKindName::Migrate => ActionKind::Migrate,
            ActionKindName::Restart => ActionKind::Restart,
            ActionKindName::Shutdown => ActionKind::Shutdown,
            ActionKindName::Suspend => ActionKind::Suspend,
            ActionKindName::Shelve => ActionKind::Shelve,
        }
    }
}

impl From<ActionKind> for ActionKindName {
    fn from(kind: ActionKind) -> ActionKindName {
        match kind {
            ActionKind::Migrate => ActionKindName::Migrate,
            ActionKind::Restart => ActionKindName::Restart,
            ActionKind::Shutdown => ActionKindName::Shutdown,
            ActionKind::Suspend => ActionKindName::Suspend,
            ActionKind::Shelve => ActionKindName::Shelve,
        }
    }
}

impl From<SkipReason> for SkipReasonName {
    fn from(reason: SkipReason) -> SkipReasonName {
        match reason {
            SkipReason::Down => SkipReasonName::Down,
            SkipReason::AtTarget => SkipReasonName::AtTarget,
            SkipReason::NewerThanTarget => SkipReasonName::NewerThanTarget,
            SkipReason::NotSelected => SkipReasonName::NotSelected,
        }
    }
}
