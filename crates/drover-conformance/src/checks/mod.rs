//! The check functions, one per [`Check`], each taking the driver and the fixture and returning
//! its message or why it failed; [`run_check`] picks the function of a check.
//!
//! This module knows which function is which check, not the order they run in nor opt-outs.

mod host_marks;
mod lifecycle;
mod observation;
mod vms;

use drover_driver::Driver;

pub use host_marks::{
    cordon_is_idempotent_and_discovered, maintenance_is_idempotent_and_discovered,
};
pub use lifecycle::{
    compatibility_level_is_idempotent, upgrade_then_reboot_change_version_and_boot_id_once,
};
pub use observation::{
    discovery_is_consistent, health_check_of_healthy_hosts_is_ok, host_facts_match_discovery,
    host_facts_of_unknown_host_is_not_found,
};
pub use vms::{
    migrate_moves_the_vm_and_repeats_at_once, migrate_of_unknown_vm_is_not_found,
    shutdown_and_start_are_idempotent_and_discovered,
};

use crate::check::Check;
use crate::error::ConformanceError;
use crate::fixture::Fixture;

/// Runs one check's function (whatever the fixture's opt-outs say).
pub async fn run_check(
    check: Check,
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<String, ConformanceError> {
    match check {
        Check::DiscoveryIsConsistent => discovery_is_consistent(driver, fixture).await,
        Check::HostFactsMatchDiscovery => host_facts_match_discovery(driver, fixture).await,
        Check::HostFactsOfUnknownHostIsNotFound => {
            host_facts_of_unknown_host_is_not_found(driver, fixture).await
        }
        Check::HealthCheckOfHealthyHostsIsOk => {
            health_check_of_healthy_hosts_is_ok(driver, fixture).await
        }
        Check::CordonIsIdempotentAndDiscovered => {
            cordon_is_idempotent_and_discovered(driver, fixture).await
        }
        Check::MigrateOfUnknownVmIsNotFound => {
            migrate_of_unknown_vm_is_not_found(driver, fixture).await
        }
        Check::MigrateMovesTheVmAndRepeatsAtOnce => {
            migrate_moves_the_vm_and_repeats_at_once(driver, fixture).await
        }
        Check::ShutdownAndStartAreIdempotentAndDiscovered => {
            shutdown_and_start_are_idempotent_and_discovered(driver, fixture).await
        }
        Check::MaintenanceIsIdempotentAndDiscovered => {
            maintenance_is_idempotent_and_discovered(driver, fixture).await
        }
        Check::CompatibilityLevelIsIdempotent => {
            compatibility_level_is_idempotent(driver, fixture).await
        }
        Check::UpgradeThenRebootChangeVersionAndBootIdOnce => {
            upgrade_then_reboot_change_version_and_boot_id_once(driver, fixture).await
        }
    }
}
