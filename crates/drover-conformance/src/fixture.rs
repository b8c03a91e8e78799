//! The description of the platform under test: which host and VM each check may use, the target
//! version, how long a call may take, and what the driver cannot do (opt-outs, each with its
//! reason, printed by every report).
//!
//! Plain data: this module must not know drivers or how checks run.

use std::time::Duration;

use drover_core::Version;

use crate::check::Check;

/// A VM name no platform under test has: `[a-z0-9-]` only, so every driver can take it as an
/// argument (the fake platform's scripts refuse other characters before they look).
pub const UNKNOWN_VM: &str = "drover-conformance-no-such-vm";
/// A host name no platform under test has.
pub const UNKNOWN_HOST: &str = "drover-conformance-no-such-host";

/// The platform under test as the checks need it. Names are the platform's own.
///
/// `run_all` runs the checks in [`Check::ALL`]'s order on one platform, so later checks see what
/// earlier ones left: the migration leaves `migration.vm` on `migration.to`, and the maintenance
/// and upgrade checks need their host to run no VM by then (the migration's source works when
/// that VM was its only running one). Cordon and maintenance are undone by the checks that set
/// them; the upgraded host stays upgraded.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// What is under test, for the report ("simulator through the registry").
    pub platform: String,
    /// Hosts that are up, uncordoned, out of maintenance and healthy when the suite starts.
    pub healthy_hosts: Vec<String>,
    /// A healthy host the cordon check cordons and uncordons.
    pub cordon_host: String,
    pub migration: MigrationFixture,
    pub power: PowerFixture,
    /// A host that runs no VM when the maintenance check starts; it ends out of maintenance.
    pub maintenance_host: String,
    pub compatibility: CompatibilityFixture,
    pub upgrade: UpgradeFixture,
    pub timeouts: CallTimeouts,
    /// Checks the driver cannot pass, each with its reason; never run, always reported.
    pub opt_outs: Vec<OptOut>,
}

/// A running, migratable VM and a host that can take it.
#[derive(Clone, Debug)]
pub struct MigrationFixture {
    pub vm: String,
    /// Where the VM runs when the suite starts.
    pub from: String,
    /// A healthy host with room for it; the VM stays there.
    pub to: String,
}

/// A running VM the power check stops and starts again on the same host.
#[derive(Clone, Debug)]
pub struct PowerFixture {
    pub vm: String,
    /// Where the VM runs when the power check starts (after the migration check).
    pub host: String,
    /// The graceful timeout given to the first shutdown; a guest that ignores it is forced off.
    pub graceful_timeout: Duration,
}

/// The cluster and a level the platform accepts while no host is upgraded yet.
#[derive(Clone, Debug)]
pub struct CompatibilityFixture {
    pub cluster: String,
    pub level: String,
}

/// A host that may be put in maintenance, upgraded and rebooted, and the version to install.
#[derive(Clone, Debug)]
pub struct UpgradeFixture {
    /// Runs no VM when the upgrade check starts; ends out of maintenance, at `target`.
    pub host: String,
    /// Newer than the host's version when the suite starts.
    pub target: Version,
}

/// How long each call may take before its check fails (a tokio timeout around every call, in
/// the runtime's time: virtual under a paused runtime).
#[derive(Clone, Copy, Debug)]
pub struct CallTimeouts {
    /// discover, host_facts, health_check, set_allocation, set_maintenance, start_vm,
    /// set_compatibility_level.
    pub call: Duration,
    /// migrate, upgrade, reboot, and shutdown_vm (which gets its graceful timeout on top).
    pub slow_call: Duration,
    /// A call whose work is already done, which must observe that and return "at once".
    pub repeated_call: Duration,
}

/// A check the driver does not run, and why (a platform without the feature, or a driver gap
/// that is reported rather than hidden).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptOut {
    pub check: Check,
    pub reason: String,
}

impl OptOut {
    pub fn new(check: Check, reason: impl Into<String>) -> OptOut {
        OptOut {
            check,
            reason: reason.into(),
        }
    }
}

impl Fixture {
    /// The opt-out of `check`, if the fixture has one.
    pub fn opt_out(&self, check: Check) -> Option<&OptOut> {
        self.opt_outs.iter().find(|opt_out| opt_out.check == check)
    }
}
