//! A store that fails on purpose: the SQLite store of a seed, wrapped so that the engine's own
//! writes (the appends and state changes it makes under its lease) sometimes fail before they
//! are written (a failed commit), sometimes after (the commit is durable but its answer is lost),
//! and sometimes find that another process took the run's lease over (the store's lease clock is
//! moved past the lease and a "thief" holder acquires it). Everything comes from the seed.
//!
//! The engine must treat each like a crash: nothing it did not journal may have happened, and a
//! resume from the journal goes on as if nothing had. This module knows the store trait and the
//! seed's random numbers; it must not know the engine or the platform.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use drover_store::{
    ClusterLock, JournalEntry, Lease, ManualClock, NewEntry, NewRun, RunRecord, RunStore,
    SqliteStore, StoreError,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The holder that takes a lease over in a lease-loss fault.
pub const THIEF: &str = "4242@another-machine";

/// How often each kind of fault strikes one of the engine's writes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StoreFaults {
    pub commit_failure: f64,
    pub lost_acknowledgement: f64,
    pub lease_loss: f64,
}

impl StoreFaults {
    /// A quarter of the seeds get store faults (their own random numbers, so that the other
    /// random choices of a seed stay what they were).
    pub fn of_seed(seed: u64) -> (StoreFaults, ChaCha8Rng) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5707_e5f4_u64.rotate_left(32));
        let faults = match rng.random_bool(0.25) {
            true => StoreFaults {
                commit_failure: 0.004,
                lost_acknowledgement: 0.002,
                lease_loss: 0.002,
            },
            false => StoreFaults::default(),
        };
        (faults, rng)
    }

    pub fn any(&self) -> bool {
        *self != StoreFaults::default()
    }
}

enum Strike {
    None,
    BeforeCommit,
    AfterCommit,
    LeaseLost,
}

pub struct FaultyStore {
    inner: SqliteStore,
    lease_clock: Arc<ManualClock>,
    faults: StoreFaults,
    rng: Mutex<ChaCha8Rng>,
    injected: AtomicU64,
}

impl FaultyStore {
    pub fn new(
        inner: SqliteStore,
        lease_clock: Arc<ManualClock>,
        faults: StoreFaults,
        rng: ChaCha8Rng,
    ) -> FaultyStore {
        FaultyStore {
            inner,
            lease_clock,
            faults,
            rng: Mutex::new(rng),
            injected: AtomicU64::new(0),
        }
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Lets any lease lapse (the thief's, after a lease loss), as time passing would.
    pub fn let_leases_lapse(&self) {
        self.lease_clock
            .advance(drover_engine::engine::DEFAULT_LEASE_TTL + Duration::from_secs(1));
    }

    fn strike(&self, fenced: bool) -> Strike {
        if !fenced || !self.faults.any() {
            return Strike::None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let roll: f64 = rng.random();
        let faults = self.faults;
        let strike = if roll < faults.commit_failure {
            Strike::BeforeCommit
        } else if roll < faults.commit_failure + faults.lost_acknowledgement {
            Strike::AfterCommit
        } else if roll < faults.commit_failure + faults.lost_acknowledgement + faults.lease_loss {
            Strike::LeaseLost
        } else {
            Strike::None
        };
        if !matches!(strike, Strike::None) {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        strike
    }

    fn injected_failure(operation: &str) -> StoreError {
        StoreError::Busy {
            path: PathBuf::from("(injected by drover-dst)"),
            operation: operation.to_string(),
            waited_ms: 0,
        }
    }

    /// Another holder takes the run's lease: the lease lapses, the thief acquires it.
    async fn steal(&self, lease: &Lease) -> Result<(), StoreError> {
        self.let_leases_lapse();
        let ttl = drover_engine::engine::DEFAULT_LEASE_TTL;
        self.inner
            .acquire_lease(&lease.cluster, &lease.run_id, THIEF, ttl)
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl RunStore for FaultyStore {
    async fn start_run(
        &self,
        new_run: &NewRun,
        holder: &str,
        lease_ttl: Duration,
        first_entry: &NewEntry,
    ) -> Result<Lease, StoreError> {
        self.inner
            .start_run(new_run, holder, lease_ttl, first_entry)
            .await
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.inner.run(run_id).await
    }

    async fn runs(
        &self,
        cluster: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.runs(cluster, limit).await
    }

    async fn entries(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.entries(run_id).await
    }

    async fn entries_after(
        &self,
        run_id: &str,
        after_seq: u64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.entries_after(run_id, after_seq).await
    }

    async fn append(
        &self,
        run_id: &str,
        entry: &NewEntry,
        fence: Option<&Lease>,
    ) -> Result<u64, StoreError> {
        match (self.strike(fence.is_some()), fence) {
            (Strike::BeforeCommit, _) => Err(Self::injected_failure("append")),
            (Strike::AfterCommit, _) => {
                self.inner.append(run_id, entry, fence).await?;
                Err(Self::injected_failure("append (answer lost)"))
            }
            (Strike::LeaseLost, Some(lease)) => {
                self.steal(lease).await?;
                self.inner.append(run_id, entry, fence).await
            }
            _ => self.inner.append(run_id, entry, fence).await,
        }
    }

    async fn set_run_state(
        &self,
        run_id: &str,
        state: &str,
        updated_at_ms: u64,
        fence: Option<&Lease>,
    ) -> Result<(), StoreError> {
        match (self.strike(fence.is_some()), fence) {
            (Strike::BeforeCommit, _) => Err(Self::injected_failure("set_run_state")),
            (Strike::AfterCommit, _) => {
                self.inner
                    .set_run_state(run_id, state, updated_at_ms, fence)
                    .await?;
                Err(Self::injected_failure("set_run_state (answer lost)"))
            }
            (Strike::LeaseLost, Some(lease)) => {
                self.steal(lease).await?;
                self.inner
                    .set_run_state(run_id, state, updated_at_ms, fence)
                    .await
            }
            _ => {
                self.inner
                    .set_run_state(run_id, state, updated_at_ms, fence)
                    .await
            }
        }
    }

    async fn cluster_lock(&self, cluster: &str) -> Result<Option<ClusterLock>, StoreError> {
        self.inner.cluster_lock(cluster).await
    }

    async fn acquire_lease(
        &self,
        cluster: &str,
        run_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.inner.acquire_lease(cluster, run_id, holder, ttl).await
    }

    async fn break_lease(
        &self,
        lease_seen: &ClusterLock,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.inner.break_lease(lease_seen, holder, ttl).await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        self.inner.renew_lease(lease, ttl).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.inner.release_lease(lease).await
    }

    async fn release_lock(
        &self,
        cluster: &str,
        run_id: &str,
        fence: Option<&Lease>,
    ) -> Result<(), StoreError> {
        self.inner.release_lock(cluster, run_id, fence).await
    }

    fn relax_durability(&self) -> Result<(), StoreError> {
        RunStore::relax_durability(&self.inner)
    }
}
