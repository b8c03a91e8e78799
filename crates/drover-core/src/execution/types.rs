//! The execution's vocabulary: commands the core asks a driver to carry out, what comes back,
//! what an operator can say, and the observations drivers report. Plain data, no behaviour.

use crate::model::{Host, HostId, PlatformSetting, Vm, VmId};
use crate::version::Version;

/// Milliseconds since the Unix epoch, as the engine's clock says. The core never reads a clock.
pub type Millis = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommandId(pub u64);

/// One driver call the core wants made.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub id: CommandId,
    pub kind: CommandKind,
    /// The engine gives up on the call after this long and reports [`Outcome::TimedOut`].
    pub timeout_ms: u64,
    /// 1 for the first try of this step, 2 for the first retry, …
    pub attempt: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CommandKind {
    Discover,
    ReadHostFacts {
        host: HostId,
    },
    HealthCheck {
        host: HostId,
    },
    Cordon {
        host: HostId,
    },
    Uncordon {
        host: HostId,
    },
    EnterMaintenance {
        host: HostId,
    },
    ExitMaintenance {
        host: HostId,
    },
    Migrate {
        vm: VmId,
        from: HostId,
        to: HostId,
    },
    /// Graceful shutdown, forced off after `graceful_timeout_ms`.
    ShutdownVm {
        vm: VmId,
        host: HostId,
        graceful_timeout_ms: u64,
    },
    StartVm {
        vm: VmId,
        host: HostId,
    },
    /// Save the VM's memory to disk and stop it (XAPI `VM.suspend`); it stays on `host`.
    SuspendVm {
        vm: VmId,
        host: HostId,
    },
    /// Resume a suspended VM on `host` (XAPI `VM.resume_on`).
    ResumeVm {
        vm: VmId,
        host: HostId,
    },
    /// Stop the VM and have the platform offload it, keeping its disk and identity (Nova
    /// `shelve`, then `shelveOffload` where it stays `SHELVED`); `host` is where it ran.
    ShelveVm {
        vm: VmId,
        host: HostId,
    },
    /// Bring a shelved VM back on `host` (Nova `unshelve` naming the host).
    UnshelveVm {
        vm: VmId,
        host: HostId,
    },
    Upgrade {
        host: HostId,
        target: Version,
    },
    /// Reboot unless the boot id already differs from `boot_id_before`.
    Reboot {
        host: HostId,
        boot_id_before: String,
    },
    /// After the last host: set the cluster's compatibility level (succeeds at once when the
    /// cluster already has it).
    SetCompatibilityLevel {
        level: String,
    },
    /// Before the first host: turn a blocking platform setting off (HA, WLB, a VM's media).
    /// Idempotent: a setting already off answers what the driver saved when it turned it off.
    ResolveSetting {
        setting: PlatformSetting,
    },
    /// When the run ends (completed or aborted): put a resolved setting back, with what the
    /// driver saved when it resolved it. Idempotent: a setting already back succeeds at once.
    RestoreSetting {
        setting: PlatformSetting,
        saved: String,
    },
}

impl CommandKind {
    pub fn name(&self) -> &'static str {
        match self {
            CommandKind::Discover => "discover",
            CommandKind::ReadHostFacts { .. } => "read-host-facts",
            CommandKind::HealthCheck { .. } => "health-check",
            CommandKind::Cordon { .. } => "cordon",
            CommandKind::Uncordon { .. } => "uncordon",
            CommandKind::EnterMaintenance { .. } => "enter-maintenance",
            CommandKind::ExitMaintenance { .. } => "exit-maintenance",
            CommandKind::Migrate { .. } => "migrate",
            CommandKind::ShutdownVm { .. } => "shutdown-vm",
            CommandKind::StartVm { .. } => "start-vm",
            CommandKind::SuspendVm { .. } => "suspend-vm",
            CommandKind::ResumeVm { .. } => "resume-vm",
            CommandKind::ShelveVm { .. } => "shelve-vm",
            CommandKind::UnshelveVm { .. } => "unshelve-vm",
            CommandKind::Upgrade { .. } => "upgrade",
            CommandKind::Reboot { .. } => "reboot",
            CommandKind::SetCompatibilityLevel { .. } => "set-compatibility-level",
            CommandKind::ResolveSetting { .. } => "resolve-setting",
            CommandKind::RestoreSetting { .. } => "restore-setting",
        }
    }

    /// The host a command is about (for migrations: the source).
    pub fn host(&self) -> Option<HostId> {
        match self {
            CommandKind::Discover
            | CommandKind::SetCompatibilityLevel { .. }
            | CommandKind::ResolveSetting { .. }
            | CommandKind::RestoreSetting { .. } => None,
            CommandKind::ReadHostFacts { host }
            | CommandKind::HealthCheck { host }
            | CommandKind::Cordon { host }
            | CommandKind::Uncordon { host }
            | CommandKind::EnterMaintenance { host }
            | CommandKind::ExitMaintenance { host }
            | CommandKind::ShutdownVm { host, .. }
            | CommandKind::StartVm { host, .. }
            | CommandKind::SuspendVm { host, .. }
            | CommandKind::ResumeVm { host, .. }
            | CommandKind::ShelveVm { host, .. }
            | CommandKind::UnshelveVm { host, .. }
            | CommandKind::Upgrade { host, .. }
            | CommandKind::Reboot { host, .. } => Some(*host),
            CommandKind::Migrate { from, .. } => Some(*from),
        }
    }

    pub fn vm(&self) -> Option<VmId> {
        match self {
            CommandKind::Migrate { vm, .. }
            | CommandKind::ShutdownVm { vm, .. }
            | CommandKind::StartVm { vm, .. }
            | CommandKind::SuspendVm { vm, .. }
            | CommandKind::ResumeVm { vm, .. }
            | CommandKind::ShelveVm { vm, .. }
            | CommandKind::UnshelveVm { vm, .. } => Some(*vm),
            _ => None,
        }
    }

    /// The platform setting a command is about.
    pub fn setting(&self) -> Option<&PlatformSetting> {
        match self {
            CommandKind::ResolveSetting { setting }
            | CommandKind::RestoreSetting { setting, .. } => Some(setting),
            _ => None,
        }
    }
}

/// What a host reports about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct HostFacts {
    pub version: Version,
    /// Changes at every boot (Linux: /proc/sys/kernel/random/boot_id).
    pub boot_id: String,
    pub in_maintenance: bool,
    /// Allocation disabled: the platform places no new VM there.
    pub cordoned: bool,
}

/// Every host and VM as a driver sees them; `Vm::host` indexes `hosts`.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovered {
    pub hosts: Vec<Host>,
    pub vms: Vec<Vm>,
    /// The blocking settings that are on; `None` from a driver that does not observe settings
    /// (the inventory's stand).
    pub settings: Option<Vec<PlatformSetting>>,
}

/// What a successful call saw.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    Nothing,
    HostFacts(HostFacts),
    Discovered(Discovered),
    /// A VM stopped; `forced` when it ignored the graceful shutdown and was powered off.
    ShutDown {
        forced: bool,
    },
    /// A setting is off; `saved` is what the driver needs to put it back (opaque to Drover,
    /// kept in the journal; empty when there is nothing to put back).
    SettingResolved {
        saved: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Succeeded(Observation),
    /// The call failed; `refused` when the platform refused it outright (another destination may
    /// work, the same one will not).
    Failed {
        error: String,
        refused: bool,
    },
    TimedOut,
}

/// What an operator can say to a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorCommand {
    /// Start a run that waits for approval (`policy.approval: manual`).
    Approve,
    /// Start no new host until resumed; hosts in progress finish.
    Pause,
    Resume,
    /// Try the failed step of every failed host again.
    Retry,
    /// Give up on a failed host: restore what Drover changed on it and go on without it.
    Skip {
        host: String,
    },
    /// Stop: bring every host Drover touched back to service and restart every VM it stopped.
    Abort,
    /// Manual mode: the operator has upgraded this host by hand.
    Continue {
        host: String,
    },
}

impl OperatorCommand {
    pub fn name(&self) -> &'static str {
        match self {
            OperatorCommand::Approve => "approve",
            OperatorCommand::Pause => "pause",
            OperatorCommand::Resume => "resume",
            OperatorCommand::Retry => "retry",
            OperatorCommand::Skip { .. } => "skip",
            OperatorCommand::Abort => "abort",
            OperatorCommand::Continue { .. } => "continue",
        }
    }
}

/// Everything that can happen to a run. Each input comes with the time it happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Outcome {
        command: CommandId,
        outcome: Outcome,
    },
    Operator(OperatorCommand),
    /// A maintenance window opened or closed (the engine evaluates the calendar). While closed,
    /// the engine also says when the next window opens (`None`: no window ever opens), so the
    /// core can ask to be woken then and show what it waits for.
    WindowChanged {
        open: bool,
        next_opening_at: Option<Millis>,
    },
    /// A new process took the run over; the previous one last wrote to the journal at
    /// `previous_process_last_wrote_at`. The time between is not the platform refusing
    /// anything: no Drover process was there to act, so it does not count towards a VM's
    /// pending or unschedulable timeout, nor towards a restore's deadline.
    Resumed {
        previous_process_last_wrote_at: Millis,
    },
    /// Time passed; lets timeouts and backoffs fire.
    Tick,
}
