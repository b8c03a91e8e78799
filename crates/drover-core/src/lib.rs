//! Drover's pure core: the cluster model, prechecks, the planner and an independent plan checker.
//!
//! Invariants: no IO, no clock, no threads, no async, no randomness. Every function here is a
//! deterministic function of its arguments, so plans can be reviewed, snapshot-tested and replayed.
//! This crate knows no file format (serialization lives in `drover-schema`) and no platform.

pub mod check;
pub mod execution;
pub mod model;
pub mod plan;
pub mod planner;
pub mod version;

pub use model::{
    ApprovalMode, Cluster, Host, HostId, HostRole, HostShare, HostState, MaintenanceWindow,
    MaxUnavailable, PlatformSetting, Policy, RestartPolicy, SettingKind, Unmovable, UpgradeMode,
    Vm, VmId, VmState,
};
pub use plan::{
    Action, ActionKind, CheckStatus, Plan, Precheck, SkipReason, SkippedHost, Summary, Wave,
    WaveKind,
};
pub use planner::plan;
pub use version::{Version, VersionParseError};
