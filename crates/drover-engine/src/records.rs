//! Journal records: the serde forms of what the engine writes to the store — the cluster a run
//! started from, every input given to the core, every command before it is carried out, and
//! operator requests. These are edge types; the core's own types carry no serde.
//!
//! Records are versioned by the store's schema version; a field is never renamed in place.

use std::collections::BTreeMap;

use drover_core::execution::{
    Command, CommandId, CommandKind, Discovered, HostFacts, Input, Observation, OperatorCommand,
    Outcome,
};
use drover_core::{
    Cluster, Host, HostId, HostRole, HostState, PlatformSetting, RestartPolicy, SettingKind,
    Unmovable, Version, Vm, VmId, VmState,
};
use serde::{Deserialize, Serialize};

/// Journal entry kinds.
pub const KIND_START: &str = "start";
pub const KIND_INPUT: &str = "input";
pub const KIND_INTENT: &str = "intent";
pub const KIND_REQUEST: &str = "request";

/// The first entry of every run: the cluster as observed when the run started.
#[derive(Serialize, Deserialize)]
pub struct StartRecord {
    pub cluster_name: String,
    pub target_version: String,
    pub hosts: Vec<HostRecord>,
    pub vms: Vec<VmRecord>,
    /// Policy set for this run on top of the inventory (`--resolve`, a host selection): replay
    /// must plan with exactly the policy the run started with.
    #[serde(default)]
    pub auto_resolve: bool,
    #[serde(default)]
    pub only_hosts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub force_hosts: Vec<String>,
    /// Created waiting for approval although the inventory approves automatically (a server's
    /// manual approval strategy).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval_manual: bool,
    /// The level the run raises the cluster to at its end, as resolved when it started
    /// (`auto` in the inventory is resolved from the release catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raise_compatibility_level_to: Option<String>,
    /// The complete policy the run started with (every setting, defaults included), so replay
    /// never reads the inventory again; absent in runs started by older drovers, whose policy
    /// comes from their stored inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<drover_schema::inventory::PolicySection>,
    /// Blocking platform settings that were on (absent when none were, and in older journals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingRecord>,
}

/// A blocking platform setting: its kind as named in inventories, and the VM it is about.
#[derive(Clone, Serialize, Deserialize)]
pub struct SettingRecord {
    pub setting: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct HostRecord {
    pub name: String,
    pub role: String,
    pub version: String,
    pub memory_mib: u64,
    pub cpus: u32,
    pub state: String,
    pub cordoned: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct VmRecord {
    pub name: String,
    pub host: u32,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub running: bool,
    pub migratable: bool,
    pub local_storage: bool,
    pub restart_always: bool,
    /// `unmovable:` by name (shutdown, suspend, shelve, restart); absent when the VM has none,
    /// and in records written before the key existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmovable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<String>,
    /// Host indices, as `host`; absent in records written before host constraints existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<u32>>,
}

#[derive(Serialize, Deserialize)]
pub struct InputRecord {
    pub at_ms: u64,
    #[serde(flatten)]
    pub input: InputBody,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "kebab-case")]
pub enum InputBody {
    Outcome {
        command: u64,
        outcome: OutcomeRecord,
    },
    Operator {
        command: OperatorRecord,
        by: String,
    },
    Window {
        open: bool,
        /// While closed: when the next window opens (absent in journals written before it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_opening_at_ms: Option<u64>,
    },
    Resumed {
        previous_process_last_wrote_at_ms: u64,
    },
    Tick,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum OutcomeRecord {
    Succeeded { observation: ObservationRecord },
    Failed { error: String, refused: bool },
    TimedOut,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "seen", rename_all = "kebab-case")]
pub enum ObservationRecord {
    Nothing,
    HostFacts {
        version: String,
        boot_id: String,
        in_maintenance: bool,
        cordoned: bool,
    },
    Discovered {
        hosts: Vec<HostRecord>,
        vms: Vec<VmRecord>,
        /// Absent: the driver does not observe settings (and in older journals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settings: Option<Vec<SettingRecord>>,
    },
    ShutDown {
        forced: bool,
    },
    /// What the driver saved when it turned a blocking setting off (needed to put it back).
    SettingResolved {
        saved: String,
    },
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, Debug)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum OperatorRecord {
    Approve,
    Pause,
    Resume,
    Retry,
    Skip { host: String },
    Abort,
    Continue { host: String },
}

/// A command written before the driver is called.
#[derive(Serialize, Deserialize)]
pub struct IntentRecord {
    pub command: u64,
    pub step: String,
    pub attempt: u32,
    pub timeout_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The blocking setting a resolve or restore is about (`ha-enabled`, `vm-media-inserted on
    /// web-01`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<String>,
}

/// An operator command asked by another process while an engine runs the journal.
#[derive(Serialize, Deserialize)]
pub struct RequestRecord {
    pub command: OperatorRecord,
    pub by: String,
}

/// A record that does not decode: the journal was written by something else or is damaged.
#[derive(Debug, thiserror::Error)]
#[error("journal record is not valid: {0}")]
pub struct RecordError(pub String);

fn bad(message: impl std::fmt::Display) -> RecordError {
    RecordError(message.to_string())
}

pub fn host_record(host: &Host) -> HostRecord {
    HostRecord {
        name: host.name.clone(),
        role: match host.role {
            HostRole::Master => "master",
            HostRole::Management => "management",
            HostRole::Compute => "compute",
        }
        .into(),
        version: host.version.to_string(),
        memory_mib: host.memory_mib,
        cpus: host.cpus,
        state: match host.state {
            HostState::Up => "up",
            HostState::Maintenance => "maintenance",
            HostState::Down => "down",
        }
        .into(),
        cordoned: host.cordoned,
        labels: host.labels.clone(),
    }
}

pub fn host_from_record(record: &HostRecord) -> Result<Host, RecordError> {
    Ok(Host {
        name: record.name.clone(),
        role: match record.role.as_str() {
            "master" => HostRole::Master,
            "management" => HostRole::Management,
            "compute" => HostRole::Compute,
            other => return Err(bad(format!("host role {other:?}"))),
        },
        version: record.version.parse().map_err(bad)?,
        memory_mib: record.memory_mib,
        cpus: record.cpus,
        state: match record.state.as_str() {
            "up" => HostState::Up,
            "maintenance" => HostState::Maintenance,
            "down" => HostState::Down,
            other => return Err(bad(format!("host state {other:?}"))),
        },
        cordoned: record.cordoned,
        labels: record.labels.clone(),
    })
}

pub fn vm_record(vm: &Vm) -> VmRecord {
    VmRecord {
        name: vm.name.clone(),
        host: vm.host.0,
        memory_mib: vm.memory_mib,
        vcpus: vm.vcpus,
        running: vm.is_running(),
        migratable: vm.migratable,
        local_storage: vm.local_storage,
        restart_always: vm.restart_policy == RestartPolicy::Always,
        unmovable: vm.unmovable.map(|choice| choice.as_str().to_string()),
        anti_affinity: vm.anti_affinity.clone(),
        allowed_hosts: vm
            .allowed_hosts
            .as_ref()
            .map(|allowed| allowed.iter().map(|host| host.0).collect()),
    }
}

pub fn vm_from_record(record: &VmRecord) -> Vm {
    Vm {
        name: record.name.clone(),
        host: HostId(record.host),
        memory_mib: record.memory_mib,
        vcpus: record.vcpus,
        state: if record.running {
            VmState::Running
        } else {
            VmState::Stopped
        },
        migratable: record.migratable,
        local_storage: record.local_storage,
        unmovable: record.unmovable.as_deref().and_then(unmovable_named),
        restart_policy: if record.restart_always {
            RestartPolicy::Always
        } else {
            RestartPolicy::Manual
        },
        anti_affinity: record.anti_affinity.clone(),
        allowed_hosts: record
            .allowed_hosts
            .as_ref()
            .map(|allowed| allowed.iter().copied().map(HostId).collect()),
    }
}

fn unmovable_named(name: &str) -> Option<Unmovable> {
    [
        Unmovable::Shutdown,
        Unmovable::Suspend,
        Unmovable::Shelve,
        Unmovable::Restart,
    ]
    .into_iter()
    .find(|choice| choice.as_str() == name)
}

pub fn setting_record(setting: &PlatformSetting) -> SettingRecord {
    SettingRecord {
        setting: setting.kind.name().to_string(),
        vm: setting.vm.clone(),
    }
}

pub fn setting_from_record(record: &SettingRecord) -> Result<PlatformSetting, RecordError> {
    let kind = SettingKind::from_name(&record.setting)
        .ok_or_else(|| bad(format!("platform setting {:?}", record.setting)))?;
    Ok(PlatformSetting {
        kind,
        vm: record.vm.clone(),
    })
}

pub fn start_record(cluster: &Cluster) -> StartRecord {
    StartRecord {
        cluster_name: cluster.name.clone(),
        target_version: cluster.target_version.to_string(),
        hosts: cluster.hosts.iter().map(host_record).collect(),
        vms: cluster.vms.iter().map(vm_record).collect(),
        auto_resolve: cluster.policy.auto_resolve,
        force_hosts: cluster.policy.force_hosts.iter().cloned().collect(),
        approval_manual: cluster.policy.approval == drover_core::ApprovalMode::Manual,
        raise_compatibility_level_to: cluster.policy.raise_compatibility_level_to.clone(),
        only_hosts: cluster
            .policy
            .only_hosts
            .as_ref()
            .map(|names| names.iter().cloned().collect()),
        policy: Some(drover_schema::inventory::PolicySection::complete(
            &cluster.policy,
        )),
        settings: cluster.settings.iter().map(setting_record).collect(),
    }
}

/// The cluster a run started from: hosts and VMs from the journal, `policy` as the run
/// recorded it (the settings given on top of the inventory are applied again: runs of older
/// drovers recorded only those).
pub fn cluster_from_start(
    record: &StartRecord,
    mut policy: drover_core::Policy,
) -> Result<Cluster, RecordError> {
    policy.auto_resolve |= record.auto_resolve;
    policy
        .force_hosts
        .extend(record.force_hosts.iter().cloned());
    if record.approval_manual {
        policy.approval = drover_core::ApprovalMode::Manual;
    }
    if record.raise_compatibility_level_to.is_some() {
        policy.raise_compatibility_level_to = record.raise_compatibility_level_to.clone();
    }
    if let Some(names) = &record.only_hosts {
        policy.only_hosts = Some(names.iter().cloned().collect());
    }
    let hosts = record
        .hosts
        .iter()
        .map(host_from_record)
        .collect::<Result<Vec<_>, _>>()?;
    let vms: Vec<Vm> = record.vms.iter().map(vm_from_record).collect();
    if vms.iter().any(|vm| vm.host.index() >= hosts.len()) {
        return Err(bad("a VM refers to a host index beyond the host list"));
    }
    let settings = record
        .settings
        .iter()
        .map(setting_from_record)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Cluster {
        name: record.cluster_name.clone(),
        target_version: record.target_version.parse::<Version>().map_err(bad)?,
        policy,
        hosts,
        vms,
        settings,
    })
}

pub fn operator_record(command: &OperatorCommand) -> OperatorRecord {
    match command {
        OperatorCommand::Approve => OperatorRecord::Approve,
        OperatorCommand::Pause => OperatorRecord::Pause,
        OperatorCommand::Resume => OperatorRecord::Resume,
        OperatorCommand::Retry => OperatorRecord::Retry,
        OperatorCommand::Skip { host } => OperatorRecord::Skip { host: host.clone() },
        OperatorCommand::Abort => OperatorRecord::Abort,
        OperatorCommand::Continue { host } => OperatorRecord::Continue { host: host.clone() },
    }
}

pub fn operator_from_record(record: &OperatorRecord) -> OperatorCommand {
    match record {
        OperatorRecord::Approve => OperatorCommand::Approve,
        OperatorRecord::Pause => OperatorCommand::Pause,
        OperatorRecord::Resume => OperatorCommand::Resume,
        OperatorRecord::Retry => OperatorCommand::Retry,
        OperatorRecord::Skip { host } => OperatorCommand::Skip { host: host.clone() },
        OperatorRecord::Abort => OperatorCommand::Abort,
        OperatorRecord::Continue { host } => OperatorCommand::Continue { host: host.clone() },
    }
}

fn observation_record(observation: &Observation) -> ObservationRecord {
    match observation {
        Observation::Nothing => ObservationRecord::Nothing,
        Observation::HostFacts(facts) => ObservationRecord::HostFacts {
            version: facts.version.to_string(),
            boot_id: facts.boot_id.clone(),
            in_maintenance: facts.in_maintenance,
            cordoned: facts.cordoned,
        },
        Observation::Discovered(found) => ObservationRecord::Discovered {
            hosts: found.hosts.iter().map(host_record).collect(),
            vms: found.vms.iter().map(vm_record).collect(),
            settings: found
                .settings
                .as_ref()
                .map(|settings| settings.iter().map(setting_record).collect()),
        },
        Observation::ShutDown { forced } => ObservationRecord::ShutDown { forced: *forced },
        Observation::SettingResolved { saved } => ObservationRecord::SettingResolved {
            saved: saved.clone(),
        },
    }
}

fn observation_from_record(record: &ObservationRecord) -> Result<Observation, RecordError> {
    Ok(match record {
        ObservationRecord::Nothing => Observation::Nothing,
        ObservationRecord::HostFacts {
            version,
            boot_id,
            in_maintenance,
            cordoned,
        } => Observation::HostFacts(HostFacts {
            version: version.parse().map_err(bad)?,
            boot_id: boot_id.clone(),
            in_maintenance: *in_maintenance,
            cordoned: *cordoned,
        }),
        ObservationRecord::Discovered {
            hosts,
            vms,
            settings,
        } => Observation::Discovered(Discovered {
            hosts: hosts
                .iter()
                .map(host_from_record)
                .collect::<Result<_, _>>()?,
            vms: vms.iter().map(vm_from_record).collect(),
            settings: match settings {
                Some(settings) => Some(
                    settings
                        .iter()
                        .map(setting_from_record)
                        .collect::<Result<_, _>>()?,
                ),
                None => None,
            },
        }),
        ObservationRecord::ShutDown { forced } => Observation::ShutDown { forced: *forced },
        ObservationRecord::SettingResolved { saved } => Observation::SettingResolved {
            saved: saved.clone(),
        },
    })
}

pub fn input_record(at_ms: u64, input: &Input, by: &str) -> InputRecord {
    let body = match input {
        Input::Outcome { command, outcome } => InputBody::Outcome {
            command: command.0,
            outcome: match outcome {
                Outcome::Succeeded(observation) => OutcomeRecord::Succeeded {
                    observation: observation_record(observation),
                },
                Outcome::Failed { error, refused } => OutcomeRecord::Failed {
                    error: error.clone(),
                    refused: *refused,
                },
                Outcome::TimedOut => OutcomeRecord::TimedOut,
            },
        },
        Input::Operator(command) => InputBody::Operator {
            command: operator_record(command),
            by: by.to_string(),
        },
        Input::WindowChanged {
            open,
            next_opening_at,
        } => InputBody::Window {
            open: *open,
            next_opening_at_ms: *next_opening_at,
        },
        Input::Resumed {
            previous_process_last_wrote_at,
        } => InputBody::Resumed {
            previous_process_last_wrote_at_ms: *previous_process_last_wrote_at,
        },
        Input::Tick => InputBody::Tick,
    };
    InputRecord { at_ms, input: body }
}

pub fn input_from_record(record: &InputRecord) -> Result<Input, RecordError> {
    Ok(match &record.input {
        InputBody::Outcome { command, outcome } => Input::Outcome {
            command: CommandId(*command),
            outcome: match outcome {
                OutcomeRecord::Succeeded { observation } => {
                    Outcome::Succeeded(observation_from_record(observation)?)
                }
                OutcomeRecord::Failed { error, refused } => Outcome::Failed {
                    error: error.clone(),
                    refused: *refused,
                },
                OutcomeRecord::TimedOut => Outcome::TimedOut,
            },
        },
        InputBody::Operator { command, .. } => Input::Operator(operator_from_record(command)),
        InputBody::Window {
            open,
            next_opening_at_ms,
        } => Input::WindowChanged {
            open: *open,
            next_opening_at: *next_opening_at_ms,
        },
        InputBody::Resumed {
            previous_process_last_wrote_at_ms,
        } => Input::Resumed {
            previous_process_last_wrote_at: *previous_process_last_wrote_at_ms,
        },
        InputBody::Tick => Input::Tick,
    })
}

pub fn intent_record(cluster: &Cluster, command: &Command) -> IntentRecord {
    let host_name = |id: HostId| cluster.hosts.get(id.index()).map(|h| h.name.clone());
    let vm_name = |id: VmId| cluster.vms.get(id.index()).map(|v| v.name.clone());
    let to = match &command.kind {
        CommandKind::Migrate { to, .. } => host_name(*to),
        _ => None,
    };
    IntentRecord {
        command: command.id.0,
        step: command.kind.name().to_string(),
        attempt: command.attempt,
        timeout_ms: command.timeout_ms,
        host: command.kind.host().and_then(host_name),
        vm: command.kind.vm().and_then(vm_name),
        to,
        setting: command.kind.setting().map(PlatformSetting::label),
    }
}

pub fn to_json<T: Serialize>(record: &T) -> String {
    serde_json::to_string(record).expect("journal records hold only strings, numbers and booleans")
}

pub fn from_json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, RecordError> {
    serde_json::from_str(text).map_err(bad)
}
