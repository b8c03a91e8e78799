//! The platform side of each driver call: observe the world first (the idempotency contract:
//! what is already done is answered at once, what is already under way is joined), apply the
//! platform's rules (refusals), then start an operation.
//!
//! This module knows nothing of async code or of waiting: it tells the caller what to wait for.

use drover_core::Version;
use drover_driver::DriverError;

use super::faults::{FaultKind, SlowStep};
use super::snapshot::HistoryEventKind;
use super::world::{
    Completion, OperationKind, SimWorld, ALLOCATION_CHANGE_SECS, MAINTENANCE_CHANGE_SECS,
};

/// A failing migration fails after this fraction of its duration.
const FAILED_MIGRATION_PROGRESS: f64 = 0.6;

/// What a caller does after the platform took its call.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Begun {
    /// The call is answered now.
    Answered(Result<Completion, DriverError>),
    /// The call's answer is the outcome of this operation.
    Waiting(u64),
    /// The host does not answer; the caller learns it after a connection timeout.
    HostSilent(String),
}

impl Begun {
    fn done() -> Begun {
        Begun::Answered(Ok(Completion::Done))
    }

    fn refused(reason: String) -> Begun {
        Begun::Answered(Err(DriverError::Refused(reason)))
    }
}

impl SimWorld {
    pub fn begin_migration(
        &mut self,
        vm: &str,
        from: &str,
        to: &str,
        now_ms: u64,
    ) -> Result<Begun, DriverError> {
        let (vm, from, to) = (
            self.vm_index(vm)?,
            self.host_index(from)?,
            self.host_index(to)?,
        );
        if let Some(begun) = self.observe_migration(vm, to, now_ms) {
            return Ok(begun);
        }
        if let Some(reason) = self.migration_rule_broken(vm, from, to) {
            return Ok(Begun::refused(reason));
        }
        if self.strikes(FaultKind::MigrationRefused, Some(vm), &[from, to]) {
            let reason = format!(
                "the platform refused to migrate VM {} to {}",
                self.vm_name(vm),
                self.host_name(to)
            );
            return Ok(Begun::refused(reason));
        }
        Ok(Begun::Waiting(self.start_migration(vm, from, to, now_ms)))
    }

    /// Joins a migration already heading to `to`, or answers if the VM is there. Any other
    /// migration of the VM in flight is cancelled: it was abandoned by its caller. A hung one is
    /// cancelled even towards `to`, since it will never finish; the new one replaces it.
    fn observe_migration(&mut self, vm: usize, to: usize, now_ms: u64) -> Option<Begun> {
        let in_flight = self
            .operation_where(
                |kind| matches!(kind, OperationKind::Migrate { vm: moving, .. } if *moving == vm),
            )
            .map(|operation| {
                (
                    operation.id,
                    operation.kind.clone(),
                    operation.completes_at_ms.is_some(),
                )
            });
        if let Some((id, kind, progressing)) = in_flight {
            let same_destination =
                matches!(kind, OperationKind::Migrate { to: heading, .. } if heading == to);
            if same_destination && progressing {
                return Some(Begun::Waiting(id));
            }
            let reason = match same_destination {
                true => "it made no progress; a new migration replaces it".to_string(),
                false => format!("superseded by a migration to {}", self.host_name(to)),
            };
            self.cancel_operation(id, now_ms, &reason);
        }
        let record = &self.state.vms[vm];
        (record.running && record.host == to).then(Begun::done)
    }

    /// The platform rule a migration would break, if any (cordoning is not one).
    fn migration_rule_broken(&self, vm: usize, from: usize, to: usize) -> Option<String> {
        let record = &self.state.vms[vm];
        let (source, destination) = (&self.state.hosts[from], &self.state.hosts[to]);
        let vm_name = &record.name;
        if !record.running {
            return Some(format!(
                "VM {vm_name} is not running: only a running VM can be live-migrated"
            ));
        }
        if record.host != from {
            return Some(format!(
                "VM {vm_name} runs on {}, not on {}",
                self.host_name(record.host),
                source.name
            ));
        }
        if record.local_storage {
            return Some(format!(
                "migration without shared storage is unsafe: VM {vm_name} has local disks"
            ));
        }
        if !record.migratable {
            return Some(format!("VM {vm_name} cannot be live-migrated"));
        }
        if let Some(reason) = self.outside_allowed_hosts(vm, to) {
            return Some(reason);
        }
        if let Some(reason) = self.host_refuses_vms(to) {
            return Some(reason);
        }
        if destination.version < source.version {
            return Some(format!(
                "host {} runs {}, older than {} on {}: a VM never migrates to an older version",
                destination.name, destination.version, source.version, source.name
            ));
        }
        let free_mib = destination
            .memory_mib
            .saturating_sub(self.committed_memory_mib(to));
        (free_mib < record.memory_mib).then(|| {
            format!(
                "host {} has {free_mib} MiB free, VM {vm_name} needs {} MiB",
                destination.name, record.memory_mib
            )
        })
    }

    fn start_migration(&mut self, vm: usize, from: usize, to: usize, now_ms: u64) -> u64 {
        let (id, mut dice) = self.allocate_operation();
        let nominal_secs = self
            .rules
            .durations
            .migration_secs(self.state.vms[vm].memory_mib);
        let slow_factor = self.slow_factor(SlowStep::Migrate, Some(vm), &[from, to]);
        let duration_ms = dice.duration_ms(nominal_secs, slow_factor);
        let randomly_fails = dice.chance(self.rules.random_faults.migration_failure);
        let hangs = self.strikes(FaultKind::MigrationHangs, Some(vm), &[from, to]);
        let fails = !hangs
            && (self.strikes(FaultKind::MigrationFails, Some(vm), &[from, to]) || randomly_fails);
        let completes_at_ms = match (hangs, fails) {
            (true, _) => None,
            (false, true) => Some(now_ms + (duration_ms as f64 * FAILED_MIGRATION_PROGRESS) as u64),
            (false, false) => Some(now_ms + duration_ms),
        };
        self.insert_operation(
            id,
            OperationKind::Migrate {
                vm,
                from,
                to,
                fails,
            },
            now_ms,
            completes_at_ms,
        );
        id
    }

    /// A running VM under way elsewhere is first stopped from migrating (its migration is
    /// cancelled, as an operator would abort the job before shutting the guest down).
    pub fn begin_shutdown(
        &mut self,
        vm: &str,
        host: &str,
        graceful_timeout_ms: u64,
        now_ms: u64,
    ) -> Result<Begun, DriverError> {
        let (vm, host) = (self.vm_index(vm)?, self.host_index(host)?);
        let shutting_down = self.operation_id_where(
            |kind| matches!(kind, OperationKind::Shutdown { vm: v, .. } if *v == vm),
        );
        if let Some(id) = shutting_down {
            return Ok(Begun::Waiting(id));
        }
        let record = &self.state.vms[vm];
        if !record.running {
            return Ok(Begun::Answered(Ok(Completion::ShutDown { forced: false })));
        }
        if record.host != host {
            let reason = format!(
                "VM {} runs on {}, not on {}",
                record.name,
                self.host_name(record.host),
                self.host_name(host)
            );
            return Ok(Begun::refused(reason));
        }
        let migrating = self.operation_id_where(
            |kind| matches!(kind, OperationKind::Migrate { vm: v, .. } if *v == vm),
        );
        if let Some(id) = migrating {
            self.cancel_operation(id, now_ms, "cancelled by a shutdown of the VM");
        }
        Ok(Begun::Waiting(self.start_shutdown(
            vm,
            host,
            graceful_timeout_ms,
            now_ms,
        )))
    }

    fn start_shutdown(
        &mut self,
        vm: usize,
        host: usize,
        graceful_timeout_ms: u64,
        now_ms: u64,
    ) -> u64 {
        let (id, mut dice) = self.allocate_operation();
        let slow_factor = self.slow_factor(SlowStep::Shutdown, Some(vm), &[host]);
        let clean_shutdown_ms =
            dice.duration_ms(self.rules.durations.vm_shutdown_secs, slow_factor);
        let randomly_ignored = dice.chance(self.rules.random_faults.shutdown_ignored);
        let ignored =
            self.strikes(FaultKind::ShutdownIgnored, Some(vm), &[host]) || randomly_ignored;
        // A guest that ignores the request, or is still running at the timeout, is powered off then.
        let forced = ignored || clean_shutdown_ms > graceful_timeout_ms;
        let duration_ms = if forced {
            graceful_timeout_ms
        } else {
            clean_shutdown_ms
        };
        self.insert_operation(
            id,
            OperationKind::Shutdown { vm, host, forced },
            now_ms,
            Some(now_ms + duration_ms),
        );
        id
    }

    pub fn begin_start(&mut self, vm: &str, host: &str, now_ms: u64) -> Result<Begun, DriverError> {
        let (vm, host) = (self.vm_index(vm)?, self.host_index(host)?);
        if let Some(begun) = self.observe_start(vm, host) {
            return Ok(begun);
        }
        if !self.host_answers(host) {
            return Ok(Begun::HostSilent(self.host_name(host)));
        }
        if let Some(reason) = self.start_rule_broken(vm, host) {
            return Ok(Begun::refused(reason));
        }
        Ok(Begun::Waiting(self.start_vm(vm, host, now_ms)))
    }

    /// Joins a start already under way on `host`, or answers if the VM runs there.
    fn observe_start(&self, vm: usize, host: usize) -> Option<Begun> {
        let starting = self
            .operation_where(|kind| matches!(kind, OperationKind::Start { vm: v, .. } if *v == vm))
            .map(|operation| (operation.id, operation.kind.host()));
        let vm_name = self.vm_name(vm);
        match starting {
            Some((id, on)) if on == host => return Some(Begun::Waiting(id)),
            Some((_, on)) => {
                return Some(Begun::refused(format!(
                    "VM {vm_name} is being started on {}",
                    self.host_name(on)
                )))
            }
            None => {}
        }
        if self
            .operation_where(
                |kind| matches!(kind, OperationKind::Shutdown { vm: v, .. } if *v == vm),
            )
            .is_some()
        {
            // Not a refusal: once the shutdown is over the same call succeeds.
            let message =
                format!("VM {vm_name} is still shutting down; start it once it has stopped");
            return Some(Begun::Answered(Err(DriverError::Failed(message))));
        }
        let record = &self.state.vms[vm];
        match (record.running, record.host == host) {
            (true, true) => Some(Begun::done()),
            (true, false) => Some(Begun::refused(format!(
                "VM {vm_name} already runs on {}",
                self.host_name(record.host)
            ))),
            (false, _) => None,
        }
    }

    /// A VM the platform restricts to some hosts (a DRBD instance's two nodes) cannot run on
    /// another: the platform refuses, as Ganeti refuses a target node outside the pair.
    fn outside_allowed_hosts(&self, vm: usize, host: usize) -> Option<String> {
        let record = &self.state.vms[vm];
        let allowed = record.allowed_hosts.as_ref()?;
        (!allowed.contains(&host)).then(|| {
            let names: Vec<String> = allowed.iter().map(|index| self.host_name(*index)).collect();
            format!(
                "VM {} may run only on {}, not on {}",
                record.name,
                names.join(", "),
                self.host_name(host)
            )
        })
    }

    fn start_rule_broken(&self, vm: usize, host: usize) -> Option<String> {
        let record = &self.state.vms[vm];
        if let Some(reason) = self.outside_allowed_hosts(vm, host) {
            return Some(reason);
        }
        if let Some(reason) = self.host_refuses_vms(host) {
            return Some(reason);
        }
        if record.local_storage && record.host != host {
            let disks_on = self.host_name(record.host);
            return Some(format!(
                "VM {} has local disks on {disks_on}: it can only start there",
                record.name
            ));
        }
        let destination = &self.state.hosts[host];
        let free_mib = destination
            .memory_mib
            .saturating_sub(self.committed_memory_mib(host));
        (free_mib < record.memory_mib).then(|| {
            format!(
                "host {} has {free_mib} MiB free, VM {} needs {} MiB",
                destination.name, record.name, record.memory_mib
            )
        })
    }

    fn start_vm(&mut self, vm: usize, host: usize, now_ms: u64) -> u64 {
        let (id, mut dice) = self.allocate_operation();
        let slow_factor = self.slow_factor(SlowStep::Start, Some(vm), &[host]);
        let duration_ms = dice.duration_ms(self.rules.durations.vm_boot_secs, slow_factor);
        self.insert_operation(
            id,
            OperationKind::Start { vm, host },
            now_ms,
            Some(now_ms + duration_ms),
        );
        id
    }

    pub fn begin_upgrade(
        &mut self,
        host: &str,
        target: &Version,
        now_ms: u64,
    ) -> Result<Begun, DriverError> {
        let host = self.host_index(host)?;
        if let Some(begun) = self.observe_upgrade(host, target) {
            return Ok(begun);
        }
        if !self.host_answers(host) {
            return Ok(Begun::HostSilent(self.host_name(host)));
        }
        let record = &self.state.hosts[host];
        if record.version == *target {
            return Ok(Begun::done());
        }
        if record.version > *target {
            let reason = format!(
                "host {} runs {}, newer than the target {target}: the platform does not downgrade",
                record.name, record.version
            );
            return Ok(Begun::refused(reason));
        }
        if !record.in_maintenance {
            return Ok(Begun::refused(format!(
                "host {} is not in maintenance: only a host in maintenance is upgraded",
                record.name
            )));
        }
        Ok(Begun::Waiting(self.start_upgrade(host, target, now_ms)))
    }

    /// Joins an upgrade to `target` under way, or the reboot that ends one.
    fn observe_upgrade(&self, host: usize, target: &Version) -> Option<Begun> {
        let upgrading = self
            .operation_where(
                |kind| matches!(kind, OperationKind::Upgrade { host: h, .. } if *h == host),
            )
            .map(|operation| (operation.id, operation.kind.clone()));
        match upgrading {
            Some((
                id,
                OperationKind::Upgrade {
                    target: underway, ..
                },
            )) if underway == *target => {
                return Some(Begun::Waiting(id));
            }
            Some((
                _,
                OperationKind::Upgrade {
                    target: underway, ..
                },
            )) => {
                let reason = format!(
                    "an upgrade of {} to {underway} is in progress",
                    self.host_name(host)
                );
                return Some(Begun::refused(reason));
            }
            _ => {}
        }
        let at_target = self.state.hosts[host].version == *target;
        let rebooting = self.operation_id_where(
            |kind| matches!(kind, OperationKind::Reboot { host: h, .. } if *h == host),
        );
        rebooting.filter(|_| at_target).map(Begun::Waiting)
    }

    fn start_upgrade(&mut self, host: usize, target: &Version, now_ms: u64) -> u64 {
        let (id, mut dice) = self.allocate_operation();
        let slow_factor = self.slow_factor(SlowStep::Upgrade, None, &[host]);
        let duration_ms = dice.duration_ms(self.rules.durations.upgrade_secs, slow_factor);
        let randomly_fails = dice.chance(self.rules.random_faults.upgrade_failure);
        let fails = self.strikes(FaultKind::UpgradeFails, None, &[host]) || randomly_fails;
        let skips_reboot = !fails && self.strikes(FaultKind::UpgradeDoesNotReboot, None, &[host]);
        let kind = OperationKind::Upgrade {
            host,
            target: target.clone(),
            fails,
            reboots: !skips_reboot,
        };
        self.insert_operation(id, kind, now_ms, Some(now_ms + duration_ms));
        id
    }

    pub fn begin_reboot(
        &mut self,
        host: &str,
        boot_id_before: &str,
        now_ms: u64,
    ) -> Result<Begun, DriverError> {
        let host = self.host_index(host)?;
        let rebooting = self.operation_id_where(
            |kind| matches!(kind, OperationKind::Reboot { host: h, .. } if *h == host),
        );
        if let Some(id) = rebooting {
            return Ok(Begun::Waiting(id));
        }
        if !self.host_answers(host) {
            return Ok(Begun::HostSilent(self.host_name(host)));
        }
        if self.boot_id(host) != boot_id_before {
            return Ok(Begun::done());
        }
        if self
            .operation_where(
                |kind| matches!(kind, OperationKind::Upgrade { host: h, .. } if *h == host),
            )
            .is_some()
        {
            let reason = format!(
                "an upgrade of {} is in progress: a reboot now would break it",
                self.host_name(host)
            );
            return Ok(Begun::refused(reason));
        }
        Ok(Begun::Waiting(self.start_reboot(host, now_ms)))
    }

    pub fn begin_maintenance(
        &mut self,
        host: &str,
        enabled: bool,
        now_ms: u64,
    ) -> Result<Begun, DriverError> {
        let host = self.host_index(host)?;
        let kind = OperationKind::Maintenance { host, enabled };
        if let Some(begun) = self.observe_host_setting(&kind, now_ms) {
            return Ok(begun);
        }
        if !self.host_answers(host) {
            return Ok(Begun::HostSilent(self.host_name(host)));
        }
        if self.state.hosts[host].in_maintenance == enabled {
            return Ok(Begun::done());
        }
        let problem = match enabled {
            true => self.maintenance_entry_problem(host),
            false => self.upgrade_in_progress(host),
        };
        if let Some(reason) = problem {
            return Ok(Begun::refused(reason));
        }
        Ok(Begun::Waiting(self.start_host_setting(
            kind,
            MAINTENANCE_CHANGE_SECS,
            now_ms,
        )))
    }

    /// Cordoning is the platform's own bookkeeping: it works even when the host does not answer.
    pub fn begin_allocation(
        &mut self,
        host: &str,
        enabled: bool,
        now_ms: u64,
    ) -> Result<Begun, DriverError> {
        let host = self.host_index(host)?;
        let kind = OperationKind::Allocation { host, enabled };
        if let Some(begun) = self.observe_host_setting(&kind, now_ms) {
            return Ok(begun);
        }
        if self.state.hosts[host].cordoned != enabled {
            return Ok(Begun::done());
        }
        Ok(Begun::Waiting(self.start_host_setting(
            kind,
            ALLOCATION_CHANGE_SECS,
            now_ms,
        )))
    }

    /// Joins the same change of a host setting under way; cancels the opposite one, which the
    /// new request supersedes.
    fn observe_host_setting(&mut self, wanted: &OperationKind, now_ms: u64) -> Option<Begun> {
        let same_setting = |kind: &OperationKind| {
            std::mem::discriminant(kind) == std::mem::discriminant(wanted)
                && kind.host() == wanted.host()
        };
        let (id, kind) = self
            .operation_where(same_setting)
            .map(|operation| (operation.id, operation.kind.clone()))?;
        if kind == *wanted {
            return Some(Begun::Waiting(id));
        }
        let reason = format!("superseded by {}", self.describe(wanted));
        self.cancel_operation(id, now_ms, &reason);
        None
    }

    fn upgrade_in_progress(&self, host: usize) -> Option<String> {
        self.operation_where(
            |kind| matches!(kind, OperationKind::Upgrade { host: h, .. } if *h == host),
        )
        .map(|operation| format!("the {} is in progress", self.describe(&operation.kind)))
    }

    fn start_host_setting(&mut self, kind: OperationKind, nominal_secs: f64, now_ms: u64) -> u64 {
        let (id, mut dice) = self.allocate_operation();
        let slow_factor = self.slow_factor(SlowStep::Maintenance, None, &[kind.host()]);
        let duration_ms = dice.duration_ms(nominal_secs, slow_factor);
        self.insert_operation(id, kind, now_ms, Some(now_ms + duration_ms));
        id
    }

    pub fn host_index(&self, name: &str) -> Result<usize, DriverError> {
        self.index
            .host(name)
            .ok_or_else(|| DriverError::NotFound(format!("host {name}")))
    }

    pub fn vm_index(&self, name: &str) -> Result<usize, DriverError> {
        self.index
            .vm(name)
            .ok_or_else(|| DriverError::NotFound(format!("VM {name}")))
    }

    fn operation_id_where(&self, wanted: impl Fn(&OperationKind) -> bool) -> Option<u64> {
        self.operation_where(wanted).map(|operation| operation.id)
    }
}

impl SimWorld {
    /// Sets the cluster's compatibility level at once; the level it already has is no change
    /// (and no chance for a fault).
    pub fn set_compatibility_level(
        &mut self,
        cluster: &str,
        level: &str,
        now_ms: u64,
    ) -> Result<(), DriverError> {
        if self.state.compatibility_level.as_deref() == Some(level) {
            return Ok(());
        }
        if self.strikes(FaultKind::CompatibilityLevelFails, None, &[]) {
            return Err(DriverError::Failed(format!(
                "the platform failed to set the compatibility level of cluster {cluster} to {level}"
            )));
        }
        self.state.compatibility_level = Some(level.to_string());
        let event = HistoryEventKind::CompatibilityLevelSet {
            level: level.to_string(),
        };
        self.record(now_ms, event);
        Ok(())
    }
}
