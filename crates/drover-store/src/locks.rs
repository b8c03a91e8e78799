//! Per-cluster locks through the synchronous `Store` API: one row per locked cluster naming the
//! run that holds it, so at most one run works on a cluster at a time, across processes sharing
//! the database file. Locks taken here get a fencing token and a lease that never expires: these
//! callers never renew.
//!
//! Cluster names and holders are opaque here; this module must not know how a holder is named
//! (process, host) or when a lock is stale — breaking a stale lock is an operator's decision.

use rusqlite::TransactionBehavior;

use crate::error::{SqliteContext, StoreError};
use crate::lock_rows::{
    insert_lock, lock_released, lock_row_in, next_fencing_token, update_lease,
    LEASE_NEVER_EXPIRES_AT_MS,
};
use crate::records::LockRecord;
use crate::store::Store;

impl Store {
    /// Takes `cluster`'s lock for `run_id`. Fails with `LockHeld` if another run holds it. If
    /// `run_id` already holds it (a restart after a crash), records the new `holder` and keeps
    /// the original `since_ms`: the run has held the cluster all along.
    ///
    /// The lease this grants never expires (this API has no renewal); a new holder gets a new
    /// fencing token, the same holder keeps its token.
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
        match lock_row_in(&transaction, &self.location, cluster)? {
            Some(current) if current.lock.run_id != run_id => return Err(current.lock_held()),
            Some(current) => {
                let fencing_token = if current.lock.holder == holder {
                    current.fencing_token
                } else {
                    next_fencing_token(&transaction, &self.location)?
                };
                update_lease(
                    &transaction,
                    &self.location,
                    &current.lock,
                    holder,
                    fencing_token,
                    LEASE_NEVER_EXPIRES_AT_MS,
                )?;
            }
            None => {
                let lock = LockRecord {
                    cluster: cluster.to_string(),
                    run_id: run_id.to_string(),
                    holder: holder.to_string(),
                    since_ms: since_ms as u64,
                };
                let fencing_token = next_fencing_token(&transaction, &self.location)?;
                insert_lock(
                    &transaction,
                    &self.location,
                    &lock,
                    fencing_token,
                    LEASE_NEVER_EXPIRES_AT_MS,
                )?;
            }
        }
        transaction.commit().during(&self.location, operation)
    }

    /// Takes over the lock `run_id` holds on `cluster` from `previous_holder` (a process that is
    /// gone), or takes the free cluster when `previous_holder` is `None`, for `holder`. A
    /// compare-and-swap: if the lock changed since the caller read it (another process took the
    /// run over first, or another run took the cluster), nothing is written and `LockHeld` names
    /// the current holder, so two processes resuming one run can never both drive it.
    ///
    /// The new holder gets a new fencing token and a lease that never expires.
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
        let current = lock_row_in(&transaction, &self.location, cluster)?;
        let unchanged = match (&current, previous_holder) {
            (None, None) => true,
            (Some(current), Some(previous)) => {
                current.lock.run_id == run_id && current.lock.holder == previous
            }
            _ => false,
        };
        if !unchanged {
            return Err(match current {
                Some(current) => current.lock_held(),
                None => lock_released(cluster),
            });
        }
        let fencing_token = next_fencing_token(&transaction, &self.location)?;
        match current {
            Some(current) => update_lease(
                &transaction,
                &self.location,
                &current.lock,
                holder,
                fencing_token,
                LEASE_NEVER_EXPIRES_AT_MS,
            )?,
            None => {
                let since_ms = self.location.sql_integer("at_ms", at_ms)?;
                let lock = LockRecord {
                    cluster: cluster.to_string(),
                    run_id: run_id.to_string(),
                    holder: holder.to_string(),
                    since_ms: since_ms as u64,
                };
                insert_lock(
                    &transaction,
                    &self.location,
                    &lock,
                    fencing_token,
                    LEASE_NEVER_EXPIRES_AT_MS,
                )?;
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
        Ok(lock_row_in(&self.connection, &self.location, cluster)?.map(|row| row.lock))
    }
}
