//! The crate's one error type: configuration mistakes found when the driver is built, and what
//! went wrong in a call (libvirt's own errors classified, commands' failures, timeouts). Its text
//! lands in Drover's journal and end report, so every message names the host, the VM and the
//! operation in the operator's terms.
//!
//! This module knows nothing of connections or of how calls are made; it only classifies.

use std::time::Duration;

use drover_command::CommandError;
use drover_driver::DriverError;

/// libvirt's words when it refuses to live-migrate a domain whose disks are not shared.
const UNSAFE_MIGRATION_TEXT: &str = "without shared storage is unsafe";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LibvirtError {
    /// The driver was given no host at all.
    #[error("the libvirt driver has no hosts: list them under driver.hosts")]
    NoHosts,

    /// An inventory host the driver has no way to reach.
    #[error("host {host:?} is in the inventory but not under driver.hosts: give it a uri and an address")]
    HostWithoutUri { host: String },

    /// A command for a step the driver does through libvirt itself.
    #[error("driver.commands.{step}: the libvirt driver does this step through libvirt; only host_facts, health_check, upgrade, reboot and set_compatibility_level can be commands")]
    StepNotCommandable { step: String },

    /// A reboot is confirmed by a new boot id, which only a `host_facts` command can report.
    #[error("driver.commands.reboot needs driver.commands.host_facts: a reboot is confirmed by a new boot id, which libvirt does not report")]
    RebootWithoutHostFacts,

    /// The policy raises the cluster compatibility level, which libvirt knows nothing of.
    #[error("policy.raise_compatibility_level_to is {level:?} but libvirt has no cluster compatibility level: add driver.commands.set_compatibility_level (placeholders {{level}}, {{cluster}}) or leave the policy key out")]
    CompatibilityLevelWithoutCommand { level: String },

    /// A zero timeout would fail every call at once.
    #[error("the libvirt driver's {what} is zero")]
    ZeroTimeout { what: &'static str },

    /// Drover's cordon/maintenance marks could not be read or written.
    #[error("marks file {path}: {detail}")]
    MarksFile { path: String, detail: String },

    /// A host name the driver does not know.
    #[error("host {0:?} is not one of the libvirt driver's hosts")]
    UnknownHost(String),

    /// The host's libvirt did not answer (connection refused or lost, or no answer in time).
    #[error("host {host} unreachable: {detail}")]
    Unreachable { host: String, detail: String },

    /// libvirt (or the driver, on libvirt's behalf) refused the operation; repeating it will not
    /// help, another destination may.
    #[error("{0}")]
    Refused(String),

    /// A VM the call names is not where the call says.
    #[error("{0}")]
    NotFound(String),

    /// libvirt answered with an error.
    #[error("host {host}: {operation}: {detail}")]
    Libvirt {
        host: String,
        operation: String,
        detail: String,
    },

    /// A live migration ran past the call's own deadline and was aborted.
    #[error("migration of VM {vm} from {from} to {to} did not finish within {limit_secs} s and was aborted (the VM stays on {from})")]
    MigrationTimedOut {
        vm: String,
        from: String,
        to: String,
        limit_secs: u64,
    },

    /// A step that has no command (upgrade, reboot, set_compatibility_level).
    #[error("{step} is not configured for the libvirt driver: add driver.commands.{step}")]
    NotConfigured { step: String },

    /// A reboot or upgrade command returned but the host did not come back in time.
    #[error(
        "host {host} did not come back {expectation} within {limit_secs} s; last seen: {last_seen}"
    )]
    HostDidNotComeBack {
        host: String,
        expectation: String,
        limit_secs: u64,
        last_seen: String,
    },

    /// A domain's XML or Drover metadata that cannot be read.
    #[error("VM {vm} on host {host}: {problem}")]
    BadDomain {
        vm: String,
        host: String,
        problem: String,
    },

    /// A command template is wrong, or a command failed.
    #[error(transparent)]
    Command(#[from] CommandError),
}

impl LibvirtError {
    /// Classifies an error libvirt returned for `operation` on `host`.
    pub(crate) fn from_libvirt(host: &str, operation: &str, error: &virt::error::Error) -> Self {
        use virt::error::ErrorNumber;
        if error.code().is(ErrorNumber::MigrateUnsafe) || says_unsafe_migration(error.message()) {
            return LibvirtError::Refused(format!("host {host}: {operation}: {}", error.message()));
        }
        LibvirtError::Libvirt {
            host: host.to_string(),
            operation: operation.to_string(),
            detail: error.message().to_string(),
        }
    }

    /// The error of a call that got no answer within `limit`.
    pub(crate) fn no_answer(host: &str, operation: &str, limit: Duration) -> Self {
        LibvirtError::Unreachable {
            host: host.to_string(),
            detail: format!("no answer to {operation} within {} ms", limit.as_millis()),
        }
    }

    /// Whether libvirt said the domain does not exist.
    pub(crate) fn is_no_such_domain(error: &virt::error::Error) -> bool {
        error.code().is(virt::error::ErrorNumber::NoDomain)
    }
}

/// Whether libvirt's message is its refusal to migrate without shared storage.
fn says_unsafe_migration(message: &str) -> bool {
    message.contains(UNSAFE_MIGRATION_TEXT)
}

impl From<LibvirtError> for DriverError {
    fn from(error: LibvirtError) -> Self {
        match error {
            LibvirtError::Unreachable { host, detail } => DriverError::Unreachable { host, detail },
            LibvirtError::Refused(text) => DriverError::Refused(text),
            LibvirtError::NotFound(text) => DriverError::NotFound(text),
            LibvirtError::UnknownHost(host) => DriverError::NotFound(format!("host {host}")),
            other => DriverError::Failed(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unsafe_migration_message_is_recognised() {
        assert!(says_unsafe_migration(
            "Unsafe migration: Migration without shared storage is unsafe"
        ));
        assert!(!says_unsafe_migration(
            "operation failed: job 'migration out' failed"
        ));
    }

    #[test]
    fn driver_errors_keep_their_kind() {
        let unreachable = LibvirtError::no_answer("h1", "list domains", Duration::from_secs(2));
        assert_eq!(
            DriverError::from(unreachable),
            DriverError::Unreachable {
                host: "h1".into(),
                detail: "no answer to list domains within 2000 ms".into()
            }
        );
        let refused = LibvirtError::Refused("no".into());
        assert_eq!(
            DriverError::from(refused),
            DriverError::Refused("no".into())
        );
        let unknown = LibvirtError::UnknownHost("h9".into());
        assert_eq!(
            DriverError::from(unknown),
            DriverError::NotFound("host h9".into())
        );
        let timed_out = LibvirtError::MigrationTimedOut {
            vm: "web1".into(),
            from: "h1".into(),
            to: "h2".into(),
            limit_secs: 5,
        };
        assert!(
            matches!(DriverError::from(timed_out), DriverError::Failed(text) if text.contains("within 5 s and was aborted"))
        );
    }
}
