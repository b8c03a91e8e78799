//! Live migration: peer-to-peer (the source libvirtd talks to the destination's URI itself),
//! live, and for persistent domains `PERSIST_DEST | UNDEFINE_SOURCE`, so the definition moves
//! with the VM; a transient domain stays transient.
//!
//! Observed first: a VM already active on the destination is done; one not on the source is
//! not found; one defined there but not running is refused. A destination Drover put in
//! maintenance is refused. libvirt's "Migration without shared storage is unsafe" is a refusal.
//!
//! The migration runs on a blocking thread while its progress (`virDomainGetJobInfo`; never `job_stats`, see `job_info`) is polled
//! every `PROGRESS_POLL_INTERVAL` and logged. Past the call's own deadline the job is aborted
//! (`virDomainAbortJob`) and the VM stays on the source; if the caller drops the call first (the
//! engine's timeout, a crash of the run), a guard aborts the job from a thread of its own, so no
//! migration outlives the call that started it. A migration that reports an error is checked
//! once more on the destination: if the VM runs there, it arrived.
//!
//! Before it starts, a job the domain still has (an aborted migration unwinding) is waited for,
//! bounded (`JOB_SETTLE_TIMEOUT`), so a retry right after an abort is not refused by libvirtd.
//!
//! This module knows nothing of plans or of which destination is best.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use virt::connect::Connect;
use virt::domain::{Domain, JobStats};

use crate::connection::OpenConnection;
use crate::driver::Inner;
use crate::error::LibvirtError;

const PROGRESS_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// After an abort, how long the migration call may take to return.
const ABORT_SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Before a migration, how long an earlier job of the domain may take to end.
const JOB_SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
const BYTES_PER_MIB: u64 = 1024 * 1024;

/// Whether and how a domain is defined on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DomainPresence {
    pub active: bool,
    pub persistent: bool,
}

impl Inner {
    pub(crate) async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), LibvirtError> {
        self.require_host(from)?;
        self.require_host(to)?;
        if self.presence_on(to, vm).await?.is_some_and(|p| p.active) {
            return Ok(());
        }
        self.refuse_if_in_maintenance(to, vm)?;
        if from == to {
            return Err(LibvirtError::Refused(format!(
                "VM {vm} cannot migrate from {from} to itself"
            )));
        }
        let persistent = self.running_source(vm, from).await?.persistent;
        self.wait_for_no_job(vm, from).await?;
        self.run_migration(vm, from, to, persistent).await
    }

    /// Observes the domain's job before starting a migration: one aborted a moment ago (at its
    /// deadline, or by the guard of a dropped call) may still be unwinding in libvirtd, which
    /// refuses a new migration with "another migration job is already running". Waits, bounded,
    /// until the domain has no active job; one still running then is a refusal.
    async fn wait_for_no_job(&self, vm: &str, from: &str) -> Result<(), LibvirtError> {
        let deadline = Instant::now() + JOB_SETTLE_TIMEOUT;
        loop {
            let (vm_name, host) = (vm.to_string(), from.to_string());
            let active = self
                .connections
                .call(
                    from,
                    "read the domain's job",
                    self.call_timeout,
                    move |connect| {
                        has_active_job(connect, &vm_name).map_err(|e| {
                            LibvirtError::from_libvirt(&host, "read the domain's job", &e)
                        })
                    },
                )
                .await?;
            if !active {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LibvirtError::Refused(format!(
                    "VM {vm} on {from} still has a job running after {} s (an earlier migration?)",
                    JOB_SETTLE_TIMEOUT.as_secs()
                )));
            }
            tracing::debug!(vm, from, "waiting for the domain's earlier job to end");
            tokio::time::sleep(PROGRESS_POLL_INTERVAL).await;
        }
    }

    /// Whether the domain is on `host`; `None` when libvirt there does not know it.
    pub(crate) async fn presence_on(
        &self,
        host: &str,
        vm: &str,
    ) -> Result<Option<DomainPresence>, LibvirtError> {
        let operation = format!("look up domain {vm}");
        let (host_name, vm_name, described) = (host.to_string(), vm.to_string(), operation.clone());
        self.connections
            .call(host, &operation, self.call_timeout, move |connect| {
                presence(connect, &vm_name)
                    .map_err(|e| LibvirtError::from_libvirt(&host_name, &described, &e))
            })
            .await
    }

    async fn running_source(&self, vm: &str, from: &str) -> Result<DomainPresence, LibvirtError> {
        match self.presence_on(from, vm).await? {
            None => Err(LibvirtError::NotFound(format!(
                "VM {vm} is not on host {from}"
            ))),
            Some(presence) if !presence.active => Err(LibvirtError::Refused(format!(
                "VM {vm} is not running on {from}: only a running VM can be live-migrated"
            ))),
            Some(presence) => Ok(presence),
        }
    }

    async fn run_migration(
        &self,
        vm: &str,
        from: &str,
        to: &str,
        persistent: bool,
    ) -> Result<(), LibvirtError> {
        let destination_uri = self.connections.uri_of(to)?.to_string();
        let connection = self.connections.connection(from).await?;
        let started = Instant::now();
        let mut guard = AbortOnDrop::armed(&connection, from, vm);
        let mut migrating =
            self.start_migration(&connection, vm, from, to, destination_uri, persistent);
        let mut progress = ProgressQueries::new(&connection, vm, from, to);
        tracing::info!(vm, from, to, persistent, "live migration started");
        loop {
            tokio::select! {
                joined = &mut migrating => {
                    guard.disarm();
                    return self.migration_ended(joined, vm, from, to, started).await;
                }
                _ = tokio::time::sleep(PROGRESS_POLL_INTERVAL) => {}
            }
            if started.elapsed() >= self.migration_timeout {
                guard.disarm();
                return self
                    .abort_migration(&connection, migrating, vm, from, to, started)
                    .await;
            }
            progress.ask_unless_one_is_pending();
        }
    }

    /// The blocking `virDomainMigrateToURI` call, on a thread of its own.
    fn start_migration(
        &self,
        connection: &Arc<OpenConnection>,
        vm: &str,
        from: &str,
        to: &str,
        destination_uri: String,
        persistent: bool,
    ) -> JoinHandle<Result<(), LibvirtError>> {
        let bandwidth_mib_per_sec = self.migration_bandwidth_mib_per_sec.unwrap_or(0);
        let (connection, vm, from) = (Arc::clone(connection), vm.to_string(), from.to_string());
        let operation = format!("migrate domain {vm} to {to}");
        tokio::task::spawn_blocking(move || {
            let failed = |e: virt::error::Error| LibvirtError::from_libvirt(&from, &operation, &e);
            let domain = connection
                .get()
                .lookup_domain_by_name(&vm)
                .map_err(failed)?;
            domain
                .migrate_to_uri(
                    &destination_uri,
                    migration_flags(persistent),
                    None,
                    bandwidth_mib_per_sec,
                )
                .map_err(failed)
        })
    }

    async fn migration_ended(
        &self,
        joined: Result<Result<(), LibvirtError>, tokio::task::JoinError>,
        vm: &str,
        from: &str,
        to: &str,
        started: Instant,
    ) -> Result<(), LibvirtError> {
        let wall_time_ms = started.elapsed().as_millis() as u64;
        let error = match joined {
            Ok(Ok(())) => {
                tracing::info!(vm, from, to, wall_time_ms, "live migration finished");
                return Ok(());
            }
            Ok(Err(error @ LibvirtError::Refused(_))) => return Err(error),
            Ok(Err(error)) => error,
            Err(join_error) => LibvirtError::Libvirt {
                host: from.to_string(),
                operation: format!("migrate domain {vm} to {to}"),
                detail: format!("the migration call did not complete: {join_error}"),
            },
        };
        // The call can fail after the VM arrived (the source's connection dropped at the end).
        if matches!(self.presence_on(to, vm).await, Ok(Some(p)) if p.active) {
            tracing::info!(vm, from, to, wall_time_ms, %error, "live migration reported an error but the VM runs on the destination");
            return Ok(());
        }
        tracing::warn!(vm, from, to, wall_time_ms, %error, "live migration failed");
        Err(error)
    }

    async fn abort_migration(
        &self,
        connection: &Arc<OpenConnection>,
        migrating: JoinHandle<Result<(), LibvirtError>>,
        vm: &str,
        from: &str,
        to: &str,
        started: Instant,
    ) -> Result<(), LibvirtError> {
        tracing::warn!(
            vm,
            from,
            to,
            limit_secs = self.migration_timeout.as_secs(),
            "live migration past its deadline; aborting"
        );
        let vm_name = vm.to_string();
        let aborting = self.connections.call_on(
            from,
            connection,
            "abort the migration job",
            self.call_timeout,
            move |connect| Ok(abort_migration_job(connect, &vm_name)),
        );
        if let Ok(Err(error)) = aborting.await {
            tracing::debug!(vm, %error, "abort of the migration job failed");
        }
        // The job may have finished just before the abort: then the VM is on the destination.
        if let Ok(joined) = tokio::time::timeout(ABORT_SETTLE_TIMEOUT, migrating).await {
            if self
                .migration_ended(joined, vm, from, to, started)
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(LibvirtError::MigrationTimedOut {
            vm: vm.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            limit_secs: self.migration_timeout.as_secs(),
        })
    }
}

/// Progress queries of one migration, one at a time, each on a blocking thread that logs its own
/// answer: a slow answer (libvirt may hold a query while the migration sets up) never delays the
/// deadline check.
struct ProgressQueries {
    connection: Arc<OpenConnection>,
    vm: String,
    from: String,
    to: String,
    pending: Option<JoinHandle<()>>,
}

impl ProgressQueries {
    fn new(connection: &Arc<OpenConnection>, vm: &str, from: &str, to: &str) -> Self {
        ProgressQueries {
            connection: Arc::clone(connection),
            vm: vm.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            pending: None,
        }
    }

    fn ask_unless_one_is_pending(&mut self) {
        if self
            .pending
            .as_ref()
            .is_some_and(|query| !query.is_finished())
        {
            return;
        }
        let connection = Arc::clone(&self.connection);
        let (vm, from, to) = (self.vm.clone(), self.from.clone(), self.to.clone());
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let stats = connection
                .get()
                .lookup_domain_by_name(&vm)
                // Not `job_stats`: virt 0.5.0 builds a Vec from the null pointer libvirt returns
                // when a job has no statistics (seen while a resumed Drover observed a migration
                // its killed predecessor started), which aborts the process. `job_info` reads a
                // plain struct.
                .and_then(|domain| domain.job_info());
            match stats {
                Ok(stats) => log_job_stats(&vm, &from, &to, &stats),
                Err(error) => tracing::debug!(
                    vm,
                    error = error.message(),
                    "migration progress unavailable"
                ),
            }
        }));
    }
}

fn log_job_stats(vm: &str, from: &str, to: &str, stats: &JobStats) {
    let mib = |bytes: Option<u64>| bytes.map_or(0, |b| b / BYTES_PER_MIB);
    tracing::debug!(
        vm,
        from,
        to,
        elapsed_ms = stats.time_elapsed.unwrap_or(0),
        processed_mib = mib(stats.data_processed),
        remaining_mib = mib(stats.data_remaining),
        total_mib = mib(stats.data_total),
        "live migration progress"
    );
}

/// Live and peer to peer; a persistent domain's definition moves with it.
pub(crate) fn migration_flags(persistent: bool) -> u32 {
    let live_peer_to_peer = virt::sys::VIR_MIGRATE_LIVE | virt::sys::VIR_MIGRATE_PEER2PEER;
    match persistent {
        true => {
            live_peer_to_peer
                | virt::sys::VIR_MIGRATE_PERSIST_DEST
                | virt::sys::VIR_MIGRATE_UNDEFINE_SOURCE
        }
        false => live_peer_to_peer,
    }
}

/// Runs on a blocking thread: whether `vm` is defined on this connection's host, and how.
pub(crate) fn presence(
    connect: &Connect,
    vm: &str,
) -> Result<Option<DomainPresence>, virt::error::Error> {
    let domain = match connect.lookup_domain_by_name(vm) {
        Ok(domain) => domain,
        Err(error) if LibvirtError::is_no_such_domain(&error) => return Ok(None),
        Err(error) => return Err(error),
    };
    Ok(Some(DomainPresence {
        active: domain.is_active()?,
        persistent: domain.is_persistent()?,
    }))
}

/// Runs on a blocking thread: whether the domain has a job in progress
/// (`virDomainGetJobInfo` type `VIR_DOMAIN_JOB_BOUNDED` or `_UNBOUNDED`); a domain that is gone
/// has none.
fn has_active_job(connect: &Connect, vm: &str) -> Result<bool, virt::error::Error> {
    let domain = match connect.lookup_domain_by_name(vm) {
        Ok(domain) => domain,
        Err(error) if LibvirtError::is_no_such_domain(&error) => return Ok(false),
        Err(error) => return Err(error),
    };
    let job_type = domain.job_info()?.r#type;
    Ok(job_type == virt::sys::VIR_DOMAIN_JOB_BOUNDED as i32
        || job_type == virt::sys::VIR_DOMAIN_JOB_UNBOUNDED as i32)
}

/// Runs on a blocking thread. A domain that is gone, or has no job, needs no abort.
fn abort_migration_job(connect: &Connect, vm: &str) -> Result<(), virt::error::Error> {
    match connect.lookup_domain_by_name(vm) {
        Ok(domain) => abort_job(&domain),
        Err(error) if LibvirtError::is_no_such_domain(&error) => Ok(()),
        Err(error) => Err(error),
    }
}

/// `virDomainAbortJob`, which the `virt` crate does not wrap.
fn abort_job(domain: &Domain) -> Result<(), virt::error::Error> {
    // SAFETY: `domain` owns a reference to a valid virDomainPtr for the whole call, and
    // virDomainAbortJob neither keeps nor frees the pointer.
    let status = unsafe { virt::sys::virDomainAbortJob(domain.as_ptr()) };
    match status < 0 {
        true => Err(virt::error::Error::last_error()),
        false => Ok(()),
    }
}

/// Aborts the migration job of `vm` if dropped while armed: a migration never outlives the call
/// that started it.
struct AbortOnDrop {
    armed: Option<(Arc<OpenConnection>, String, String)>,
}

impl AbortOnDrop {
    fn armed(connection: &Arc<OpenConnection>, host: &str, vm: &str) -> Self {
        AbortOnDrop {
            armed: Some((Arc::clone(connection), host.to_string(), vm.to_string())),
        }
    }

    fn disarm(&mut self) {
        self.armed = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some((connection, host, vm)) = self.armed.take() else {
            return;
        };
        tracing::warn!(
            vm,
            host,
            "live migration dropped before it ended; aborting it"
        );
        // On a thread of its own: a drop cannot wait, and libvirt's call blocks.
        let aborting = std::thread::Builder::new()
            .name("libvirt-abort".into())
            .spawn(move || {
                if let Err(error) = abort_migration_job(connection.get(), &vm) {
                    tracing::warn!(vm, host, %error, "abort of a dropped migration failed");
                }
            });
        if let Err(error) = aborting {
            tracing::warn!(%error, "no thread to abort a dropped migration");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistent_domains_move_their_definition() {
        let live = virt::sys::VIR_MIGRATE_LIVE | virt::sys::VIR_MIGRATE_PEER2PEER;
        assert_eq!(migration_flags(false), live);
        assert_eq!(
            migration_flags(true),
            live | virt::sys::VIR_MIGRATE_PERSIST_DEST | virt::sys::VIR_MIGRATE_UNDEFINE_SOURCE
        );
    }
}
