//! Lock rows in SQL: reading and writing a cluster's lock row with its lease, handing out fencing
//! tokens from the store-wide counter, and the fence check every write under a lease makes inside
//! its own transaction. The building blocks of `locks`, `leases`, `runs`, `journal` and the
//! schema migration.
//!
//! Cluster names and holders are opaque here; this module must not know the `Store` handle, read
//! any clock (expiry is compared with a time the caller passes in), or know how a holder is
//! named or judged alive.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use crate::error::{Location, SqliteContext, StoreError};
use crate::records::{ClusterLock, Lease, LockRecord};

/// The expiry of a lease that never expires: the lease of a lock taken through the synchronous
/// `Store` API, whose callers never renew, so the lock stays theirs until released or broken
/// (`take_over_lock`, `break_lease`) — exactly what a lock meant before leases existed.
pub(crate) const LEASE_NEVER_EXPIRES_AT_MS: u64 = i64::MAX as u64;

/// The `meta` key of the last fencing token handed out. A counter of the whole store, not a
/// column of the lock row, so a token is never reused, even after a cluster's row is deleted
/// (run finished) and re-created by the next run.
const LAST_FENCING_TOKEN_KEY: &str = "last_fencing_token";

const LOCK_COLUMNS: &str = "cluster, run_id, holder, since_ms, fencing_token, lease_expires_at_ms";

/// A lock row as stored: the lock, and the lease's token and expiry (not yet compared with any
/// clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockRow {
    pub(crate) lock: LockRecord,
    pub(crate) fencing_token: u64,
    pub(crate) lease_expires_at_ms: u64,
}

impl LockRow {
    /// Whether the lease is live at `now_ms`: a lease ending at `now_ms` is over, so a released
    /// lease (expiry set to the release time) lets the next holder in at once.
    pub(crate) fn lease_live_at(&self, now_ms: u64) -> bool {
        now_ms < self.lease_expires_at_ms
    }

    pub(crate) fn at(self, now_ms: u64) -> ClusterLock {
        let lease_live = self.lease_live_at(now_ms);
        ClusterLock {
            cluster: self.lock.cluster,
            run_id: self.lock.run_id,
            holder: self.lock.holder,
            since_ms: self.lock.since_ms,
            fencing_token: self.fencing_token,
            lease_expires_at_ms: self.lease_expires_at_ms,
            lease_live,
        }
    }

    pub(crate) fn lease(&self) -> Lease {
        Lease {
            cluster: self.lock.cluster.clone(),
            run_id: self.lock.run_id.clone(),
            holder: self.lock.holder.clone(),
            fencing_token: self.fencing_token,
            expires_at_ms: self.lease_expires_at_ms,
        }
    }

    /// The refusal for a caller that wanted the cluster for another run.
    pub(crate) fn lock_held(self) -> StoreError {
        lock_held(self.lock)
    }
}

/// `cluster`'s lock row as seen on `connection` (inside a transaction when the caller is about
/// to act on it).
pub(crate) fn lock_row_in(
    connection: &Connection,
    location: &Location,
    cluster: &str,
) -> Result<Option<LockRow>, StoreError> {
    connection
        .prepare_cached(&format!(
            "SELECT {LOCK_COLUMNS} FROM locks WHERE cluster = ?1"
        ))
        .and_then(|mut statement| statement.query_row([cluster], read_lock_row).optional())
        .during(location, || format!("reading cluster {cluster}'s lock"))
}

/// Writes a lock row inside `transaction`; the caller checked that the cluster is free.
pub(crate) fn insert_lock(
    transaction: &Transaction<'_>,
    location: &Location,
    lock: &LockRecord,
    fencing_token: u64,
    lease_expires_at_ms: u64,
) -> Result<(), StoreError> {
    let since_ms = location.sql_integer("since_ms", lock.since_ms)?;
    let fencing_token = location.sql_integer("fencing_token", fencing_token)?;
    let lease_expires_at_ms = location.sql_integer("lease_expires_at_ms", lease_expires_at_ms)?;
    transaction
        .execute(
            &format!("INSERT INTO locks ({LOCK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                lock.cluster,
                lock.run_id,
                lock.holder,
                since_ms,
                fencing_token,
                lease_expires_at_ms
            ],
        )
        .map(|_| ())
        .during(location, || {
            format!("locking cluster {} for run {}", lock.cluster, lock.run_id)
        })
}

/// Gives the lease of the lock row `lock` (read in this transaction) to `holder`; the run and
/// `since_ms` stay.
pub(crate) fn update_lease(
    transaction: &Transaction<'_>,
    location: &Location,
    lock: &LockRecord,
    holder: &str,
    fencing_token: u64,
    lease_expires_at_ms: u64,
) -> Result<(), StoreError> {
    let fencing_token = location.sql_integer("fencing_token", fencing_token)?;
    let lease_expires_at_ms = location.sql_integer("lease_expires_at_ms", lease_expires_at_ms)?;
    transaction
        .execute(
            "UPDATE locks SET holder = ?3, fencing_token = ?4, lease_expires_at_ms = ?5 \
             WHERE cluster = ?1 AND run_id = ?2",
            params![
                lock.cluster,
                lock.run_id,
                holder,
                fencing_token,
                lease_expires_at_ms
            ],
        )
        .map(|_| ())
        .during(location, || {
            format!(
                "giving run {}'s lease on cluster {} to {holder}",
                lock.run_id, lock.cluster
            )
        })
}

/// Hands out the next fencing token of the store. The caller holds the write lock (an immediate
/// transaction), so no two callers get the same token and a rolled-back transaction gives its
/// token back unused by anyone.
pub(crate) fn next_fencing_token(
    transaction: &Transaction<'_>,
    location: &Location,
) -> Result<u64, StoreError> {
    let operation = || "handing out a fencing token".to_string();
    let text: Option<String> = transaction
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [LAST_FENCING_TOKEN_KEY],
            |row| row.get(0),
        )
        .optional()
        .during(location, operation)?;
    let last_token: u64 = match text {
        None => 0,
        Some(text) => text.trim().parse().map_err(|_| StoreError::Corrupt {
            path: location.path(),
            detail: format!("meta.{LAST_FENCING_TOKEN_KEY} is {text:?}, not a token"),
        })?,
    };
    let token = last_token + 1;
    // Checked here so a token can never be handed out that the lock row could not store.
    location.sql_integer("fencing_token", token)?;
    transaction
        .execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![LAST_FENCING_TOKEN_KEY, token.to_string()],
        )
        .during(location, operation)?;
    Ok(token)
}

/// Refuses a write to `run_id` on `cluster` made under `fence` unless `fence` is for that run and
/// cluster and `cluster`'s lock row is held by the run with exactly `fence`'s token; returns that
/// row. Run inside the write's own immediate transaction, so no take-over can slip in between the
/// check and the write. Expiry is not checked: a lease that expired but was not taken over is
/// still the current one (the token, not the clock, decides who may write).
pub(crate) fn check_fence(
    transaction: &Transaction<'_>,
    location: &Location,
    fence: &Lease,
    cluster: &str,
    run_id: &str,
) -> Result<LockRow, StoreError> {
    let current = lock_row_in(transaction, location, cluster)?;
    // A lease of one run (or cluster) does not cover writes to another.
    let covers_the_write = fence.cluster == cluster && fence.run_id == run_id;
    match current {
        Some(current)
            if covers_the_write
                && current.lock.run_id == fence.run_id
                && current.fencing_token == fence.fencing_token =>
        {
            Ok(current)
        }
        current => Err(StoreError::Fenced {
            cluster: cluster.to_string(),
            run_id: run_id.to_string(),
            token: fence.fencing_token,
            current_token: current.as_ref().map(|current| current.fencing_token),
            current_holder: current.map(|current| current.lock.holder),
        }),
    }
}

/// Gives every lock row left by a version-1 drover its own fencing token and a lease that never
/// expires (it was taken through the synchronous API, by a holder that never renews), and starts
/// the store's token counter after them. Part of the migration to schema version 2.
pub(crate) fn adopt_version_1_locks(
    transaction: &Transaction<'_>,
    location: &Location,
) -> Result<(), StoreError> {
    let never_expires = location.sql_integer("lease_expires_at_ms", LEASE_NEVER_EXPIRES_AT_MS)?;
    transaction
        .execute(
            "UPDATE locks SET lease_expires_at_ms = ?1, fencing_token = \
             (SELECT count(*) FROM locks AS earlier WHERE earlier.cluster <= locks.cluster)",
            [never_expires],
        )
        .during(location, || {
            "giving version-1 locks their tokens".to_string()
        })?;
    transaction
        .execute(
            "INSERT INTO meta (key, value) SELECT ?1, CAST(count(*) AS TEXT) FROM locks",
            [LAST_FENCING_TOKEN_KEY],
        )
        .map(|_| ())
        .during(location, || {
            "starting the fencing token counter".to_string()
        })
}

/// The refusal naming the run that holds a cluster.
pub(crate) fn lock_held(lock: LockRecord) -> StoreError {
    StoreError::LockHeld {
        cluster: lock.cluster,
        run_id: lock.run_id,
        holder: lock.holder,
        since_ms: lock.since_ms,
    }
}

/// The refusal for a compare-and-swap that expected a lock row which is gone.
pub(crate) fn lock_released(cluster: &str) -> StoreError {
    StoreError::LockHeld {
        cluster: cluster.to_string(),
        run_id: "(none: the lock was released)".to_string(),
        holder: "(none)".to_string(),
        since_ms: 0,
    }
}

fn read_lock_row(row: &Row<'_>) -> rusqlite::Result<LockRow> {
    Ok(LockRow {
        lock: LockRecord {
            cluster: row.get(0)?,
            run_id: row.get(1)?,
            holder: row.get(2)?,
            since_ms: row.get(3)?,
        },
        fencing_token: row.get(4)?,
        lease_expires_at_ms: row.get(5)?,
    })
}
