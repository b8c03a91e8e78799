//! The names of the conformance checks, the order `run_all` runs them in, and what each one
//! asks of a driver (the text docs/adding-a-driver.md lists).
//!
//! Plain names only: this module must not know drivers, fixtures or how a check is carried out.

use std::fmt;

/// One check of the driver contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    DiscoveryIsConsistent,
    HostFactsMatchDiscovery,
    HostFactsOfUnknownHostIsNotFound,
    HealthCheckOfHealthyHostsIsOk,
    CordonIsIdempotentAndDiscovered,
    MigrateOfUnknownVmIsNotFound,
    MigrateMovesTheVmAndRepeatsAtOnce,
    ShutdownAndStartAreIdempotentAndDiscovered,
    MaintenanceIsIdempotentAndDiscovered,
    CompatibilityLevelIsIdempotent,
    UpgradeThenRebootChangeVersionAndBootIdOnce,
}

impl Check {
    /// Every check, in the order `run_all` runs them: observation first (nothing changed yet),
    /// then the changes, the migration before maintenance (it may empty the host that maintenance
    /// needs) and the compatibility level before the upgrade (a platform may accept a level only
    /// while every host runs the same version).
    pub const ALL: [Check; 11] = [
        Check::DiscoveryIsConsistent,
        Check::HostFactsMatchDiscovery,
        Check::HostFactsOfUnknownHostIsNotFound,
        Check::HealthCheckOfHealthyHostsIsOk,
        Check::CordonIsIdempotentAndDiscovered,
        Check::MigrateOfUnknownVmIsNotFound,
        Check::MigrateMovesTheVmAndRepeatsAtOnce,
        Check::ShutdownAndStartAreIdempotentAndDiscovered,
        Check::MaintenanceIsIdempotentAndDiscovered,
        Check::CompatibilityLevelIsIdempotent,
        Check::UpgradeThenRebootChangeVersionAndBootIdOnce,
    ];

    /// The check's name in reports (also the name of its function in `checks`).
    pub fn name(self) -> &'static str {
        match self {
            Check::DiscoveryIsConsistent => "discovery_is_consistent",
            Check::HostFactsMatchDiscovery => "host_facts_match_discovery",
            Check::HostFactsOfUnknownHostIsNotFound => "host_facts_of_unknown_host_is_not_found",
            Check::HealthCheckOfHealthyHostsIsOk => "health_check_of_healthy_hosts_is_ok",
            Check::CordonIsIdempotentAndDiscovered => "cordon_is_idempotent_and_discovered",
            Check::MigrateOfUnknownVmIsNotFound => "migrate_of_unknown_vm_is_not_found",
            Check::MigrateMovesTheVmAndRepeatsAtOnce => "migrate_moves_the_vm_and_repeats_at_once",
            Check::ShutdownAndStartAreIdempotentAndDiscovered => {
                "shutdown_and_start_are_idempotent_and_discovered"
            }
            Check::MaintenanceIsIdempotentAndDiscovered => {
                "maintenance_is_idempotent_and_discovered"
            }
            Check::CompatibilityLevelIsIdempotent => "compatibility_level_is_idempotent",
            Check::UpgradeThenRebootChangeVersionAndBootIdOnce => {
                "upgrade_then_reboot_change_version_and_boot_id_once"
            }
        }
    }

    /// What the check asks of a driver, in one sentence.
    pub fn asks(self) -> &'static str {
        match self {
            Check::DiscoveryIsConsistent => {
                "discovery lists unique host and VM names, every VM on a discovered host, and the \
                 hosts and VMs the fixture names where it says they are"
            }
            Check::HostFactsMatchDiscovery => {
                "host_facts of every host that answers reports the version, maintenance and cordon \
                 that discovery reports"
            }
            Check::HostFactsOfUnknownHostIsNotFound => {
                "host_facts of a host the platform does not have is DriverError::NotFound"
            }
            Check::HealthCheckOfHealthyHostsIsOk => {
                "health_check of every healthy host of the fixture is Ok"
            }
            Check::CordonIsIdempotentAndDiscovered => {
                "cordon twice and uncordon twice succeed, the repeats at once, and host_facts and \
                 discovery show each state"
            }
            Check::MigrateOfUnknownVmIsNotFound => {
                "migrating a VM the platform does not have is DriverError::NotFound (or Refused), \
                 never Ok"
            }
            Check::MigrateMovesTheVmAndRepeatsAtOnce => {
                "migrate moves the running VM (discovery shows it running on the destination) and \
                 the same migrate again succeeds at once"
            }
            Check::ShutdownAndStartAreIdempotentAndDiscovered => {
                "shutdown stops the VM (discovery shows it stopped), a second shutdown succeeds at \
                 once without forcing, start runs it again on its host and a second start succeeds \
                 at once"
            }
            Check::MaintenanceIsIdempotentAndDiscovered => {
                "entering maintenance twice and leaving it twice succeed, the repeats at once, and \
                 host_facts and discovery show each state"
            }
            Check::CompatibilityLevelIsIdempotent => {
                "setting the compatibility level succeeds, and setting the level the cluster \
                 already has succeeds at once"
            }
            Check::UpgradeThenRebootChangeVersionAndBootIdOnce => {
                "upgrade of a host in maintenance then reboot with the old boot id leave it at the \
                 target version (host_facts and discovery) with a new boot id; upgrade and reboot \
                 with the old boot id again do nothing, at once"
            }
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.name())
    }
}
