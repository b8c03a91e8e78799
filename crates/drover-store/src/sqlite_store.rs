//! `SqliteStore`: the SQLite `Store` behind the `RunStore` trait, with the clock it reads for
//! leases.
//!
//! Lease expiry on SQLite compares times read by the processes of the one machine that shares
//! the file, all from the same system clock. This module must not know table layouts; it only
//! maps the trait onto `Store`'s methods.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{LeaseClock, SystemClock};
use crate::error::StoreError;
use crate::records::{ClusterLock, JournalEntry, Lease, NewEntry, NewRun, RunRecord};
use crate::run_store::RunStore;
use crate::store::Store;

/// A SQLite `Store` shared by the tasks of one process, as a `RunStore`.
///
/// Every call runs inline in its async fn, under a std mutex, without `spawn_blocking`: SQLite
/// calls are short and local (a transaction on a file of this machine, usually well under a
/// millisecond plus one fsync per commit), so blocking the calling tokio worker that long costs
/// less than a hop to a blocking thread per journal write. The exception is a write waiting for
/// another process's write lock, bounded by `BUSY_TIMEOUT`. Several `SqliteStore`s (in one
/// process or several) may share one file.
#[derive(Debug)]
pub struct SqliteStore {
    store: Mutex<Store>,
    clock: Arc<dyn LeaseClock>,
}

impl SqliteStore {
    /// Wraps `store`, reading lease times from `clock`.
    pub fn new(store: Store, clock: Arc<dyn LeaseClock>) -> SqliteStore {
        SqliteStore {
            store: Mutex::new(store),
            clock,
        }
    }

    /// Wraps `store`, reading lease times from the system clock.
    pub fn from_store(store: Store) -> SqliteStore {
        SqliteStore::new(store, Arc::new(SystemClock))
    }

    /// `Store::open`, with the system clock.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Store::open(path).map(SqliteStore::from_store)
    }

    /// `Store::open_in_memory`, with the system clock.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        Store::open_in_memory().map(SqliteStore::from_store)
    }

    /// `Store::relax_durability`.
    pub fn relax_durability(&self) -> Result<(), StoreError> {
        self.locked().relax_durability()
    }

    /// Runs `work` on the synchronous `Store`, for what the trait does not offer.
    pub fn with<R>(&self, work: impl FnOnce(&mut Store) -> R) -> R {
        work(&mut self.locked())
    }

    pub fn into_inner(self) -> Store {
        self.store
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A panic while the mutex was held cannot leave the store half-written: a transaction that
    /// was open is rolled back when it is dropped. So a poisoned mutex is used as is.
    fn locked(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read before the store's mutex and SQLite's write lock are taken, so a wait for either
    /// only makes the time early: a lease then looks live a little longer and a granted one ends
    /// a little sooner, never the other way round.
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

#[async_trait]
impl RunStore for SqliteStore {
    fn relax_durability(&self) -> Result<(), StoreError> {
        SqliteStore::relax_durability(self)
    }

    async fn start_run(
        &self,
        new_run: &NewRun,
        holder: &str,
        lease_ttl: Duration,
        first_entry: &NewEntry,
    ) -> Result<Lease, StoreError> {
        let lease_expires_at_ms = crate::leases::lease_end_ms(self.now_ms(), lease_ttl);
        self.locked()
            .start_run_until(new_run, holder, lease_expires_at_ms, first_entry)
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.locked().run(run_id)
    }

    async fn runs(
        &self,
        cluster: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.locked().runs(cluster, limit)
    }

    async fn entries(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.locked().entries(run_id)
    }

    async fn entries_after(
        &self,
        run_id: &str,
        after_seq: u64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.locked().entries_after(run_id, after_seq)
    }

    async fn append(
        &self,
        run_id: &str,
        entry: &NewEntry,
        fence: Option<&Lease>,
    ) -> Result<u64, StoreError> {
        self.locked().append_fenced(run_id, entry, fence)
    }

    async fn set_run_state(
        &self,
        run_id: &str,
        state: &str,
        updated_at_ms: u64,
        fence: Option<&Lease>,
    ) -> Result<(), StoreError> {
        self.locked()
            .set_run_state_fenced(run_id, state, updated_at_ms, fence)
    }

    async fn cluster_lock(&self, cluster: &str) -> Result<Option<ClusterLock>, StoreError> {
        let now_ms = self.now_ms();
        self.locked().cluster_lock_at(cluster, now_ms)
    }

    async fn acquire_lease(
        &self,
        cluster: &str,
        run_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let now_ms = self.now_ms();
        self.locked()
            .acquire_lease_at(cluster, run_id, holder, now_ms, ttl)
    }

    async fn break_lease(
        &self,
        lease_seen: &ClusterLock,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let now_ms = self.now_ms();
        self.locked()
            .break_lease_at(lease_seen, holder, now_ms, ttl)
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let now_ms = self.now_ms();
        self.locked().renew_lease_at(lease, now_ms, ttl)
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let now_ms = self.now_ms();
        self.locked().release_lease_at(lease, now_ms)
    }

    async fn release_lock(
        &self,
        cluster: &str,
        run_id: &str,
        fence: Option<&Lease>,
    ) -> Result<(), StoreError> {
        self.locked().release_lock_fenced(cluster, run_id, fence)
    }
}
