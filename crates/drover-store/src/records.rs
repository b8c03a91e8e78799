//! The plain values that go into and come out of the store: runs, journal entries and locks.
//!
//! These are data only. They must not know SQL, and they must not interpret their strings:
//! `state`, `kind` and the `*_json` fields belong to the engine.

/// A run to create. `created_at_ms` also becomes the run's first `updated_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub id: String,
    pub cluster: String,
    pub inventory_sha256: String,
    pub inventory_text: String,
    pub state: String,
    pub created_at_ms: u64,
    pub options_json: String,
}

/// A stored run as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: String,
    pub cluster: String,
    pub inventory_sha256: String,
    pub inventory_text: String,
    pub state: String,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub options_json: String,
}

/// A journal entry to append; the store assigns its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub at_ms: u64,
    /// What the entry records, e.g. "input", "intent", "outcome", "operator".
    pub kind: String,
    pub payload_json: String,
}

/// A journal entry as read back. `seq` is 1-based and gap-free within its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub seq: u64,
    pub at_ms: u64,
    pub kind: String,
    pub payload_json: String,
}

/// Which run holds a cluster's lock, which process (`holder`) acquired it for that run, and when
/// the run first acquired it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    pub cluster: String,
    pub run_id: String,
    pub holder: String,
    pub since_ms: u64,
}

/// A cluster's lock row with its lease, as read back through `RunStore::cluster_lock`.
///
/// The lock says which run owns the cluster (until the run finishes); the lease says which
/// holder may write for that run, until when, and under which fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterLock {
    pub cluster: String,
    pub run_id: String,
    pub holder: String,
    pub since_ms: u64,
    /// Grows every time the lease passes to another holder; never reused within a store.
    pub fencing_token: u64,
    /// By the store's clock. A lock taken through the synchronous `Store` API (which never
    /// renews) has a lease that never expires: `i64::MAX` ms, the largest time SQLite stores.
    pub lease_expires_at_ms: u64,
    /// Whether the lease had not expired when the store read it, by the store's own clock, so
    /// that callers never compare their clock with another machine's.
    pub lease_live: bool,
}

impl ClusterLock {
    /// The lock without its lease, as the synchronous API reports it.
    pub fn record(&self) -> LockRecord {
        LockRecord {
            cluster: self.cluster.clone(),
            run_id: self.run_id.clone(),
            holder: self.holder.clone(),
            since_ms: self.since_ms,
        }
    }
}

/// The right of one holder to write for one run, until `expires_at_ms` (store clock) unless
/// renewed. Every fenced write carries it; the store refuses it once another holder took over
/// (a higher `fencing_token`), so a paused or partitioned former holder cannot write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub cluster: String,
    pub run_id: String,
    pub holder: String,
    pub fencing_token: u64,
    pub expires_at_ms: u64,
}
