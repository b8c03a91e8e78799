//! `RunStore`, what any Drover store provides to the engine, whatever it is built on (SQLite on
//! one machine, a database server shared by several machines): runs, the journal, and per-cluster
//! locks whose leases carry fencing tokens.
//!
//! The contract, for every implementation:
//! - one run per cluster: the lock row names the run that owns the cluster until the run is
//!   finished (`release_lock`), across every process and machine sharing the store;
//! - one holder per run at a time: the lease names it, until an expiry read and compared by the
//!   store's own clock only (callers never compare clocks across machines; `lease_live`);
//! - fencing: every lease has a token, handed out by the store, strictly increasing over the
//!   whole store and never reused; a write made under a lease (`append`, `set_run_state`,
//!   `release_lock`, `renew_lease`) is checked in the same transaction as the write and refused
//!   with `StoreError::Fenced` once the token is not the cluster's current one, so a paused or
//!   partitioned former holder can never record anything after another instance took over;
//! - the journal is append-only with 1-based, gap-free sequence numbers per run, under
//!   concurrent writers.
//!
//! This module must not know SQL, any particular store, or how holders are named and judged
//! alive; implementations must not block the async runtime for long (a networked store awaits
//! its I/O).

use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::records::{ClusterLock, JournalEntry, Lease, NewEntry, NewRun, RunRecord};

/// A Drover store. Dyn-compatible: the engine holds an `Arc<dyn RunStore>`.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Starts a run in one transaction: refuses with `LockHeld` if any run (this id included)
    /// holds the cluster, with `RunExists` if the id is taken; otherwise records the run, locks
    /// its cluster, writes `first_entry` as entry 1, and grants `holder` the run's lease for
    /// `lease_ttl` with a new fencing token. All or nothing.
    async fn start_run(
        &self,
        new_run: &NewRun,
        holder: &str,
        lease_ttl: Duration,
        first_entry: &NewEntry,
    ) -> Result<Lease, StoreError>;

    /// The run with this id, if any.
    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Up to `limit` runs, newest first, of one cluster or of all.
    async fn runs(&self, cluster: Option<&str>, limit: usize)
        -> Result<Vec<RunRecord>, StoreError>;

    /// A run's whole journal in sequence order; empty for no run.
    async fn entries(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError>;

    /// The entries of a run with a seq greater than `after_seq`, in seq order.
    async fn entries_after(
        &self,
        run_id: &str,
        after_seq: u64,
    ) -> Result<Vec<JournalEntry>, StoreError>;

    /// Appends an entry and returns its seq. `fence: None` is a write from outside any lease (an
    /// operator's request from another process) and is accepted for any existing run;
    /// `Some(lease)` is refused with `Fenced`, writing nothing, unless the cluster's lock is
    /// held by `lease.run_id` with exactly `lease.fencing_token`.
    async fn append(
        &self,
        run_id: &str,
        entry: &NewEntry,
        fence: Option<&Lease>,
    ) -> Result<u64, StoreError>;

    /// Sets a run's state and `updated_at_ms` (`UnknownRun` if there is no such run), with the
    /// same fencing rule as `append`.
    async fn set_run_state(
        &self,
        run_id: &str,
        state: &str,
        updated_at_ms: u64,
        fence: Option<&Lease>,
    ) -> Result<(), StoreError>;

    /// `cluster`'s lock and lease, with `lease_live` computed by the store's clock now.
    async fn cluster_lock(&self, cluster: &str) -> Result<Option<ClusterLock>, StoreError>;

    /// Grants `holder` the lease of `run_id`, which must hold `cluster`'s lock (`LockHeld`
    /// naming the run that does, `UnknownRun` if there is no such run; a free cluster is taken
    /// for the run). Granted when the current lease has expired or was released (new token), or
    /// is already `holder`'s (same token, extended); refused with `LeaseHeld` while another
    /// holder's lease is live.
    async fn acquire_lease(
        &self,
        cluster: &str,
        run_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError>;

    /// Takes over the lease `lease_seen` for `holder` even though it may not have expired, for a
    /// caller with proof that its holder is dead. A compare-and-swap: succeeds (with a new
    /// token) only while the lock still has exactly `lease_seen`'s run, holder and token;
    /// otherwise `LeaseHeld` or `LockHeld` names the current holder.
    async fn break_lease(
        &self,
        lease_seen: &ClusterLock,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError>;

    /// Extends `lease` by `ttl` from now if its token is still current (even if it expired and
    /// nobody took it); `Fenced` if it was superseded.
    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError>;

    /// Ends `lease` now so another holder may take the run at once; the run keeps its cluster
    /// (a run waiting for an operator still owns it). Does nothing if the lease was superseded.
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError>;

    /// Frees `cluster` from `run_id` (the run is finished or never started); never releases
    /// another run's lock. With a fence, refused with `Fenced` unless the fence is current.
    async fn release_lock(
        &self,
        cluster: &str,
        run_id: &str,
        fence: Option<&Lease>,
    ) -> Result<(), StoreError>;

    /// Trades power-loss durability for speed, for runs in virtual time (thousands of journal
    /// writes a second, no real platform to stay consistent with); commits must still survive
    /// a killed process. A store that cannot relax keeps its durability: the default.
    fn relax_durability(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
