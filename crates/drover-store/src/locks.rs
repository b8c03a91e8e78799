//! Per-cluster locks: one row per locked cluster naming the run that holds it, so at most one
//! run works on a cluster at a time, across processes sharing the database file.
//!
//! Cluster names and holders are opaque here; this module must not know how a holder is named
//! (process, host) or when a lock is stale — breaking a stale lock is an operator's decision.

use rusqlite::{params, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::error::{Location, SqliteContext, StoreError};
use crate::records::LockRecord;
use crate::store::Store;

impl Store {
    /// Takes `cluster`'s lock for `run_id`. Fails with `LockHeld` if another run holds it. If
    /// `run_id` already holds it (a restart after a crash), records the new `holder` and keeps
    /// the original `since_ms`: the run has held the cluster all along.
    pub fn acquire_lock(
        &mut self,
        cluster: &str,
        run_id: &str,
        holder: &str,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let since_ms = self.location.sql_integer("at_ms", at_ms)?;
        let operation = || format!("locking cluster {cluster} for run {run_id}");
        // Immediate: the check and the write happen under one write lock, so two processes
        // cannot both see the cluster free and both take it.
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.location, operation)?;
        let current = transaction
            .query_row(
                "SELECT cluster, run_id, holder, since_ms FROM locks WHERE cluster = ?1",
                [cluster],
                read_lock,
            )
            .optional()
            .during(&self.location, operation)?;
        if let Some(current) = current.filter(|current| current.run_id != run_id) {
            return Err(StoreError::LockHeld {
                cluster: current.cluster,
                run_id: current.run_id,
                holder: current.holder,
                since_ms: current.since_ms,
            });
        }
        transaction
            .execute(
                "INSERT INTO locks (cluster, run_id, holder, since_ms) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (cluster) DO UPDATE SET holder = excluded.holder",
                params![cluster, run_id, holder, since_ms],
            )
            .during(&self.location, operation)?;
        transaction.commit().during(&self.location, operation)
    }

    /// Takes over the lock `run_id` holds on `cluster` from `previous_holder` (a process that is
    /// gone), or takes the free cluster when `previous_holder` is `None`, for `holder`. A
    /// compare-and-swap: if the lock changed since the caller read it (another process took the
    /// run over first, or another run took the cluster), nothing is written and `LockHeld` names
    /// the current holder, so two processes resuming one run can never both drive it.
    pub fn take_over_lock(
        &mut self,
        cluster: &str,
        run_id: &str,
        previous_holder: Option<&str>,
        holder: &str,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let operation = || format!("taking over cluster {cluster}'s lock for run {run_id}");
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.location, operation)?;
        let current = lock_in(&transaction, &self.location, cluster)?;
        let unchanged = match (&current, previous_holder) {
            (None, None) => true,
            (Some(current), Some(previous)) => {
                current.run_id == run_id && current.holder == previous
            }
            _ => false,
        };
        if !unchanged {
            let current = current.unwrap_or_else(|| LockRecord {
                cluster: cluster.to_string(),
                run_id: "(none: the lock was released)".to_string(),
                holder: "(none)".to_string(),
                since_ms: 0,
            });
            return Err(StoreError::LockHeld {
                cluster: current.cluster,
                run_id: current.run_id,
                holder: current.holder,
                since_ms: current.since_ms,
            });
        }
        match current {
            Some(_) => transaction
                .execute(
                    "UPDATE locks SET holder = ?3 WHERE cluster = ?1 AND run_id = ?2",
                    params![cluster, run_id, holder],
                )
                .map(|_| ())
                .during(&self.location, operation)?,
            None => {
                let since_ms = self.location.sql_integer("at_ms", at_ms)?;
                let lock = LockRecord {
                    cluster: cluster.to_string(),
                    run_id: run_id.to_string(),
                    holder: holder.to_string(),
                    since_ms: since_ms as u64,
                };
                insert_lock(&transaction, &self.location, &lock)?;
            }
        }
        transaction.commit().during(&self.location, operation)
    }

    /// Releases `cluster`'s lock if `run_id` holds it; otherwise does nothing, so a run can
    /// never release another run's lock.
    pub fn release_lock(&mut self, cluster: &str, run_id: &str) -> Result<(), StoreError> {
        self.connection
            .execute(
                "DELETE FROM locks WHERE cluster = ?1 AND run_id = ?2",
                [cluster, run_id],
            )
            .during(&self.location, || {
                format!("releasing cluster {cluster}'s lock for run {run_id}")
            })
            .map(|_| ())
    }

    /// Who holds `cluster`'s lock, if anyone.
    pub fn lock_holder(&self, cluster: &str) -> Result<Option<LockRecord>, StoreError> {
        self.connection
            .query_row(
                "SELECT cluster, run_id, holder, since_ms FROM locks WHERE cluster = ?1",
                [cluster],
                read_lock,
            )
            .optional()
            .during(&self.location, || {
                format!("reading cluster {cluster}'s lock")
            })
    }
}

/// `cluster`'s lock as seen inside `transaction`.
pub(crate) fn lock_in(
    transaction: &Transaction<'_>,
    location: &Location,
    cluster: &str,
) -> Result<Option<LockRecord>, StoreError> {
    transaction
        .query_row(
            "SELECT cluster, run_id, holder, since_ms FROM locks WHERE cluster = ?1",
            [cluster],
            read_lock,
        )
        .optional()
        .during(location, || format!("reading cluster {cluster}'s lock"))
}

/// Writes a lock row inside `transaction`; the caller checked that the cluster is free.
pub(crate) fn insert_lock(
    transaction: &Transaction<'_>,
    location: &Location,
    lock: &LockRecord,
) -> Result<(), StoreError> {
    let since_ms = location.sql_integer("since_ms", lock.since_ms)?;
    transaction
        .execute(
            "INSERT INTO locks (cluster, run_id, holder, since_ms) VALUES (?1, ?2, ?3, ?4)",
            params![lock.cluster, lock.run_id, lock.holder, since_ms],
        )
        .map(|_| ())
        .during(location, || {
            format!("locking cluster {} for run {}", lock.cluster, lock.run_id)
        })
}

fn read_lock(row: &Row<'_>) -> rusqlite::Result<LockRecord> {
    Ok(LockRecord {
        cluster: row.get(0)?,
        run_id: row.get(1)?,
        holder: row.get(2)?,
        since_ms: row.get(3)?,
    })
}
