//! The driver trait: the one boundary between Drover and a platform (simulator, libvirt, a
//! command line). Drivers speak host and VM *names*; the engine maps them to the core's ids.
//!
//! Contract for every implementation:
//! - every call is idempotent and observes the real state before acting (a migrate of a VM that
//!   already runs on the destination succeeds at once; a reboot of a host whose boot id already
//!   differs from `boot_id_before` does nothing), so re-issuing an interrupted call after a crash
//!   is always safe;
//! - every call returns within a bounded time of its own; the engine adds its own timeout on top;
//! - failures are values (`DriverError`), never panics.
//!
//! The trait is dyn-compatible (`#[async_trait]`): the driver registry hands out
//! `Arc<dyn Driver>`, so adding a driver adds no enum or macro arm anywhere.
//!
//! This module knows nothing of plans, journals or time.

use std::time::Duration;

use drover_core::{ActionKind, PlatformSetting, Version};

pub use drover_core::execution::{Discovered, HostFacts};

/// The VM actions every driver carries out: live migration, and shutdown then start (on another
/// host or its own). A driver with more lists its own set, which both its `Driver::supports` and
/// its registration (drover-drivers) read, so the two cannot disagree.
pub const BASIC_VM_ACTIONS: &[ActionKind] = &[
    ActionKind::Migrate,
    ActionKind::Restart,
    ActionKind::Shutdown,
];

/// How a VM stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownObserved {
    /// The guest ignored the graceful shutdown and was powered off.
    pub forced: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The platform refused the operation (e.g. "migration without shared storage is unsafe");
    /// trying another destination may help, repeating the same call will not.
    #[error("refused: {0}")]
    Refused(String),
    /// The host did not answer.
    #[error("host {host} unreachable: {detail}")]
    Unreachable { host: String, detail: String },
    /// A host or VM the call names does not exist on the platform.
    #[error("not found: {0}")]
    NotFound(String),
    /// Anything else; the text is what the platform said.
    #[error("{0}")]
    Failed(String),
}

/// A platform. See the module doc for the contract.
#[async_trait::async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Short name for logs and reports ("simulator", "libvirt", "command").
    fn kind(&self) -> &'static str;

    /// Every host and VM with their current state.
    async fn discover(&self) -> Result<Discovered, DriverError>;

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError>;

    /// Whether the host is fit to run VMs (services up, storage reachable).
    async fn health_check(&self, host: &str) -> Result<(), DriverError>;

    /// Cordon (`enabled = false`: no new VM may be placed here) or uncordon a host.
    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError>;

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError>;

    /// Live-migrates a running VM from `from` to `to`.
    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError>;

    /// Gracefully shuts a VM down, powering it off if it is still running after `graceful_timeout`.
    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, DriverError>;

    /// Starts a stopped VM on `host` (defining it there first if the platform needs that).
    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError>;

    /// The VM actions this driver carries out. Every driver migrates, shuts down and starts;
    /// suspend/resume and shelve/unshelve are for platforms that have them (XAPI, Nova), and
    /// a driver that implements them says so here. The registry answers the same before a run
    /// ([`ActionKind`]s a plan may ask of a `kind:`), so a plan asking for more fails its
    /// prechecks instead of a call failing mid-run.
    fn supports(&self, action: ActionKind) -> bool {
        BASIC_VM_ACTIONS.contains(&action)
    }

    /// Saves a running VM's memory to disk and stops it; it stays the host's to resume (XAPI
    /// `VM.suspend`). Idempotent: a VM already suspended succeeds at once. The default refuses.
    async fn suspend_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let _ = host;
        Err(disposition_not_supported(self.kind(), "suspend", vm))
    }

    /// Resumes a suspended VM on `host` (XAPI `VM.resume_on`). Idempotent: a VM already running
    /// there succeeds at once. The default refuses.
    async fn resume_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let _ = host;
        Err(disposition_not_supported(self.kind(), "resume", vm))
    }

    /// Stops a VM and has the platform offload it from `host`, keeping its disk and identity
    /// (Nova `shelve`, then `shelveOffload` if the cloud keeps it `SHELVED`); returns once it
    /// is offloaded. Idempotent: a VM already offloaded succeeds at once. The default refuses.
    async fn shelve_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let _ = host;
        Err(disposition_not_supported(self.kind(), "shelve", vm))
    }

    /// Brings a shelved VM back, running on `host` (Nova `unshelve` naming the host), verified by
    /// reading the VM. Idempotent: a VM already running there succeeds at once. The default
    /// refuses.
    async fn unshelve_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let _ = host;
        Err(disposition_not_supported(self.kind(), "unshelve", vm))
    }

    /// Installs the target version on a host in maintenance. May reboot the host by itself.
    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError>;

    /// Reboots a host unless its boot id already differs from `boot_id_before`; returns once the
    /// host answers again.
    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), DriverError>;

    /// Sets the cluster's compatibility level (after its last host is upgraded); setting the
    /// level the cluster already has succeeds at once.
    async fn set_compatibility_level(&self, cluster: &str, level: &str) -> Result<(), DriverError>;

    /// Turns a blocking platform setting off (HA, WLB, a VM's CD/DVD) and returns what the
    /// driver needs to put it back (opaque to Drover, kept in the journal; empty when there is
    /// nothing to put back). Idempotent: a setting already off answers what was saved when it
    /// was turned off, so a driver keeps that where a new process finds it (on the platform).
    /// The default refuses: a driver that reports no settings is never asked.
    async fn resolve_setting(&self, setting: &PlatformSetting) -> Result<String, DriverError> {
        Err(not_supported(self.kind(), "resolve", setting))
    }

    /// Puts a resolved setting back with what `resolve_setting` saved. Idempotent: a setting
    /// already back succeeds at once.
    async fn restore_setting(
        &self,
        setting: &PlatformSetting,
        saved: &str,
    ) -> Result<(), DriverError> {
        let _ = saved;
        Err(not_supported(self.kind(), "restore", setting))
    }

    /// Writes down what the driver itself keeps between Drover processes (the simulator's
    /// world, when it saves only on request); called when the engine stops driving. A driver
    /// whose platform keeps its own state has nothing to do.
    fn persist(&self) -> Result<(), DriverError> {
        Ok(())
    }
}

/// The error of a VM call a driver does not implement (the plan's prechecks keep such a plan
/// from starting; this is the backstop).
fn disposition_not_supported(kind: &str, verb: &str, vm: &str) -> DriverError {
    DriverError::Refused(format!(
        "cannot {verb} VM {vm}: not supported by the {kind} driver"
    ))
}

/// The error of a settings call a driver does not implement.
fn not_supported(kind: &str, verb: &str, setting: &PlatformSetting) -> DriverError {
    DriverError::Refused(format!(
        "cannot {verb} {}: not supported by the {kind} driver",
        setting.label()
    ))
}
