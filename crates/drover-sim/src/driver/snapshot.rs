//! What a test or an invariant checker sees of the simulated platform: hosts, VMs, operations in
//! flight and the history of everything that happened, all by name.
//!
//! Plain data. It knows nothing of how the world computes these, nor of the engine.

use drover_core::{PlatformSetting, Version};
use serde::{Deserialize, Serialize};

/// The simulated platform at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldSnapshot {
    /// Platform time of the snapshot, epoch milliseconds.
    pub now_ms: u64,
    pub hosts: Vec<HostSnapshot>,
    pub vms: Vec<VmSnapshot>,
    pub operations: Vec<OperationSnapshot>,
    pub history: Vec<HistoryEvent>,
    /// The cluster's compatibility level once Drover set it.
    pub compatibility_level: Option<String>,
    /// The blocking settings the platform has, on or off.
    pub settings: Vec<SettingSnapshot>,
}

/// A blocking setting, whether it is on, and how often it was turned off and back on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingSnapshot {
    pub setting: PlatformSetting,
    pub on: bool,
    pub resolves: u32,
    pub restores: u32,
}

impl WorldSnapshot {
    pub fn host(&self, name: &str) -> Option<&HostSnapshot> {
        self.hosts.iter().find(|host| host.name == name)
    }

    pub fn vm(&self, name: &str) -> Option<&VmSnapshot> {
        self.vms.iter().find(|vm| vm.name == name)
    }
}

/// Whether a host answers and takes VMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlatformHostState {
    Up,
    Maintenance,
    /// Down for good: it was down from the start or never came back from a reboot.
    Down,
    Rebooting,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HostSnapshot {
    pub name: String,
    pub version: Version,
    pub boot_id: String,
    pub state: PlatformHostState,
    pub cordoned: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmSnapshot {
    pub name: String,
    /// Where the VM runs, or where it is defined when stopped.
    pub host: String,
    pub running: bool,
}

/// An operation the platform has started and not finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationSnapshot {
    pub id: u64,
    /// "migrate", "shutdown", "start", "upgrade", "reboot", "maintenance", "allocation".
    pub kind: &'static str,
    pub vm: Option<String>,
    /// The host it runs on (for a migration: the source).
    pub host: String,
    /// For a migration: the destination.
    pub destination: Option<String>,
    pub started_at_ms: u64,
    /// `None` for a hung migration.
    pub completes_at_ms: Option<u64>,
}

/// Something that happened on the platform, at platform time `at_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub at_ms: u64,
    pub kind: HistoryEventKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "event")]
pub enum HistoryEventKind {
    VmMigrated {
        vm: String,
        from: String,
        to: String,
        started_at_ms: u64,
    },
    MigrationFailed {
        vm: String,
        from: String,
        to: String,
        started_at_ms: u64,
        reason: String,
    },
    VmStopped {
        vm: String,
        host: String,
        started_at_ms: u64,
        forced: bool,
    },
    VmStarted {
        vm: String,
        host: String,
        started_at_ms: u64,
    },
    /// A running VM died with its host (a reboot with VMs still on it).
    VmLost {
        vm: String,
        host: String,
    },
    MaintenanceChanged {
        host: String,
        in_maintenance: bool,
    },
    AllocationChanged {
        host: String,
        cordoned: bool,
    },
    HostUpgraded {
        host: String,
        from_version: String,
        to_version: String,
        started_at_ms: u64,
    },
    UpgradeFailed {
        host: String,
        started_at_ms: u64,
        reason: String,
    },
    HostRebootStarted {
        host: String,
    },
    HostRebooted {
        host: String,
        boot_id: String,
        started_at_ms: u64,
    },
    RebootIgnored {
        host: String,
        started_at_ms: u64,
    },
    /// The host went down for a reboot and never came back.
    HostLost {
        host: String,
    },
    /// An operation stopped before it completed (superseded, or its host went down).
    OperationCancelled {
        operation: String,
        reason: String,
    },
    CompatibilityLevelSet {
        level: String,
    },
    /// A blocking setting was turned off (`ha-enabled`, `vm-media-inserted on web-01`).
    SettingResolved {
        setting: String,
    },
    SettingRestored {
        setting: String,
    },
}
