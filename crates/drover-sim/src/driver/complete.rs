//! How each operation ends when its platform time comes: what it changes in the world, what it
//! records in the history, and the outcome its callers read. A reboot (asked for, or ending an
//! upgrade) takes its host down at once; everything else happens at completion.
//!
//! This module knows nothing of callers, waiting or files; it is called by `SimWorld::settle`.

use drover_core::Version;
use drover_driver::DriverError;

use super::faults::{FaultKind, SlowStep};
use super::snapshot::HistoryEventKind;
use super::world::{Completion, Operation, OperationKind, OperationOutcome, Power, SimWorld};

impl SimWorld {
    pub fn complete(&mut self, operation: &Operation, at_ms: u64) -> OperationOutcome {
        let started_at_ms = operation.started_at_ms;
        match operation.kind.clone() {
            OperationKind::Migrate {
                vm,
                from,
                to,
                fails,
            } => self.complete_migration(vm, from, to, fails, started_at_ms, at_ms),
            OperationKind::Shutdown { vm, host, forced } => {
                self.complete_shutdown(vm, host, forced, started_at_ms, at_ms)
            }
            OperationKind::Start { vm, host } => {
                self.complete_start(vm, host, started_at_ms, at_ms)
            }
            OperationKind::Upgrade {
                host,
                target,
                fails,
                reboots,
            } => {
                let decision = UpgradeDecision {
                    fails,
                    reboots,
                    started_at_ms,
                };
                self.complete_upgrade(host, target, decision, at_ms)
            }
            OperationKind::Reboot {
                host,
                ignored,
                never_returns,
            } => self.complete_reboot(host, ignored, never_returns, started_at_ms, at_ms),
            OperationKind::Maintenance { host, enabled } => {
                self.complete_maintenance(host, enabled, at_ms)
            }
            OperationKind::Allocation { host, enabled } => {
                self.complete_allocation(host, enabled, at_ms)
            }
        }
    }

    fn complete_migration(
        &mut self,
        vm: usize,
        from: usize,
        to: usize,
        fails: bool,
        started_at_ms: u64,
        at_ms: u64,
    ) -> OperationOutcome {
        let (vm_name, from_name, to_name) =
            (self.vm_name(vm), self.host_name(from), self.host_name(to));
        let problem = match fails {
            true => Some(format!(
                "the migration of VM {vm_name} from {from_name} to {to_name} failed part-way; it still runs on {from_name}"
            )),
            false => self.migration_landing_problem(vm, from, to),
        };
        let Some(reason) = problem else {
            self.place_vm(vm, to, true);
            let event = HistoryEventKind::VmMigrated {
                vm: vm_name,
                from: from_name,
                to: to_name,
                started_at_ms,
            };
            self.record(at_ms, event);
            return OperationOutcome::Completed(Completion::Done);
        };
        let event = HistoryEventKind::MigrationFailed {
            vm: vm_name,
            from: from_name,
            to: to_name,
            started_at_ms,
            reason: reason.clone(),
        };
        self.record(at_ms, event);
        OperationOutcome::Failed(DriverError::Failed(reason))
    }

    /// Why a migration that ran its course cannot land, if it cannot.
    fn migration_landing_problem(&self, vm: usize, from: usize, to: usize) -> Option<String> {
        let record = &self.state.vms[vm];
        if !record.running || record.host != from {
            return Some(format!(
                "VM {} no longer runs on {}",
                record.name,
                self.host_name(from)
            ));
        }
        self.host_refuses_vms(to)
    }

    fn complete_shutdown(
        &mut self,
        vm: usize,
        host: usize,
        forced: bool,
        started_at_ms: u64,
        at_ms: u64,
    ) -> OperationOutcome {
        let record = &self.state.vms[vm];
        if !record.running || record.host != host {
            return OperationOutcome::Completed(Completion::ShutDown { forced: false });
        }
        self.place_vm(vm, host, false);
        let event = HistoryEventKind::VmStopped {
            vm: self.vm_name(vm),
            host: self.host_name(host),
            started_at_ms,
            forced,
        };
        self.record(at_ms, event);
        OperationOutcome::Completed(Completion::ShutDown { forced })
    }

    fn complete_start(
        &mut self,
        vm: usize,
        host: usize,
        started_at_ms: u64,
        at_ms: u64,
    ) -> OperationOutcome {
        if let Some(reason) = self.host_refuses_vms(host) {
            let message = format!("VM {} could not boot: {reason}", self.vm_name(vm));
            return OperationOutcome::Failed(DriverError::Failed(message));
        }
        self.place_vm(vm, host, true);
        let event = HistoryEventKind::VmStarted {
            vm: self.vm_name(vm),
            host: self.host_name(host),
            started_at_ms,
        };
        self.record(at_ms, event);
        OperationOutcome::Completed(Completion::Done)
    }

    fn complete_upgrade(
        &mut self,
        host: usize,
        target: Version,
        decision: UpgradeDecision,
        at_ms: u64,
    ) -> OperationOutcome {
        let host_name = self.host_name(host);
        let started_at_ms = decision.started_at_ms;
        if decision.fails {
            let reason =
                format!("the installer failed on {host_name}: the version is unchanged and the host stays in maintenance");
            self.record(
                at_ms,
                HistoryEventKind::UpgradeFailed {
                    host: host_name,
                    started_at_ms,
                    reason: reason.clone(),
                },
            );
            return OperationOutcome::Failed(DriverError::Failed(reason));
        }
        let from_version = std::mem::replace(&mut self.state.hosts[host].version, target.clone());
        let event = HistoryEventKind::HostUpgraded {
            host: host_name,
            from_version: from_version.to_string(),
            to_version: target.to_string(),
            started_at_ms,
        };
        self.record(at_ms, event);
        match decision.reboots {
            true => OperationOutcome::Continued(self.start_reboot(host, at_ms)),
            false => OperationOutcome::Completed(Completion::Done),
        }
    }

    fn complete_reboot(
        &mut self,
        host: usize,
        ignored: bool,
        never_returns: bool,
        started_at_ms: u64,
        at_ms: u64,
    ) -> OperationOutcome {
        let host_name = self.host_name(host);
        if ignored {
            self.record(
                at_ms,
                HistoryEventKind::RebootIgnored {
                    host: host_name,
                    started_at_ms,
                },
            );
            return OperationOutcome::Completed(Completion::Done);
        }
        if never_returns {
            self.state.hosts[host].power = Power::Down;
            self.record(
                at_ms,
                HistoryEventKind::HostLost {
                    host: host_name.clone(),
                },
            );
            let detail = "it did not come back after its reboot".to_string();
            return OperationOutcome::Failed(DriverError::Unreachable {
                host: host_name,
                detail,
            });
        }
        let record = &mut self.state.hosts[host];
        record.boot_count += 1;
        record.power = Power::Up;
        let boot_id = self.boot_id(host);
        self.record(
            at_ms,
            HistoryEventKind::HostRebooted {
                host: host_name,
                boot_id,
                started_at_ms,
            },
        );
        OperationOutcome::Completed(Completion::Done)
    }

    fn complete_maintenance(&mut self, host: usize, enabled: bool, at_ms: u64) -> OperationOutcome {
        if enabled {
            // VMs may have been started on it since the request was accepted.
            if let Some(reason) = self.maintenance_entry_problem(host) {
                return OperationOutcome::Failed(DriverError::Refused(reason));
            }
        }
        self.state.hosts[host].in_maintenance = enabled;
        self.record(
            at_ms,
            HistoryEventKind::MaintenanceChanged {
                host: self.host_name(host),
                in_maintenance: enabled,
            },
        );
        OperationOutcome::Completed(Completion::Done)
    }

    fn complete_allocation(&mut self, host: usize, enabled: bool, at_ms: u64) -> OperationOutcome {
        self.state.hosts[host].cordoned = !enabled;
        self.record(
            at_ms,
            HistoryEventKind::AllocationChanged {
                host: self.host_name(host),
                cordoned: !enabled,
            },
        );
        OperationOutcome::Completed(Completion::Done)
    }

    /// Starts a reboot of `host` at `at_ms` (asked for, or as part of an upgrade).
    pub fn start_reboot(&mut self, host: usize, at_ms: u64) -> u64 {
        let (id, mut dice) = self.allocate_operation();
        let slow_factor = self.slow_factor(SlowStep::Reboot, None, &[host]);
        let duration_ms = dice.duration_ms(self.rules.durations.reboot_secs, slow_factor);
        let randomly_lost = dice.chance(self.rules.random_faults.host_never_returns);
        let ignored = self.strikes(FaultKind::RebootIgnored, None, &[host]);
        let never_returns =
            !ignored && (self.strikes(FaultKind::HostNeverReturns, None, &[host]) || randomly_lost);
        if !ignored {
            self.take_host_down(host, at_ms);
        }
        let kind = OperationKind::Reboot {
            host,
            ignored,
            never_returns,
        };
        self.insert_operation(id, kind, at_ms, Some(at_ms + duration_ms));
        id
    }

    /// The host stops answering: its running VMs die and every operation that needs it stops.
    fn take_host_down(&mut self, host: usize, at_ms: u64) {
        self.state.hosts[host].power = Power::Rebooting;
        self.record(
            at_ms,
            HistoryEventKind::HostRebootStarted {
                host: self.host_name(host),
            },
        );
        let victims: Vec<usize> = self.running_vms_on(host).collect();
        for vm in victims {
            self.place_vm(vm, host, false);
            self.record(
                at_ms,
                HistoryEventKind::VmLost {
                    vm: self.vm_name(vm),
                    host: self.host_name(host),
                },
            );
        }
        let stopped: Vec<u64> = self
            .state
            .operations
            .values()
            .filter(|operation| operation.kind.needs_host_up(host))
            .map(|operation| operation.id)
            .collect();
        let reason = format!("host {} went down for a reboot", self.host_name(host));
        for id in stopped {
            self.cancel_operation(id, at_ms, &reason);
        }
    }
}

/// What was decided about an upgrade when it started.
struct UpgradeDecision {
    fails: bool,
    reboots: bool,
    started_at_ms: u64,
}
