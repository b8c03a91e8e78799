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
