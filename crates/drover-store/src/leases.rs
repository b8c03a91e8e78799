//! Leases on runs: which holder may write for the run that owns a cluster, until when, and under
//! which fencing token. Acquiring, breaking (a compare-and-swap take-over from a dead holder),
//! renewing and releasing a lease, and reading a cluster's lock with its lease.
//!
//! Every function takes the current time from its caller (`SqliteStore` reads its clock), so this
//! module must not read a clock; it must not know how holders are named or how a caller decides
//! that a holder is dead.

use std::time::Duration;

use rusqlite::{params, TransactionBehavior};

use crate::error::{duration_ms, SqliteContext, StoreError};
use crate::journal::require_run;
use crate::lock_rows::{
    check_fence, insert_lock, lock_released, lock_row_in, next_fencing_token, update_lease,
    LockRow, LEASE_NEVER_EXPIRES_AT_MS,
};
use crate::records::{ClusterLock, Lease, LockRecord};
use crate::store::Store;

/// When a lease granted at `now_ms` for `ttl` ends; capped at "never" so it fits the column.
pub(crate) fn lease_end_ms(now_ms: u64, ttl: Duration) -> u64 {
    now_ms
        .saturating_add(duration_ms(ttl))
        .min(LEASE_NEVER_EXPIRES_AT_MS)
}

/// The refusal for a caller that wants a lease another holder has (live, or taken since the
/// caller looked).
fn lease_held(current: &LockRow, now_ms: u64) -> StoreError {
    StoreError::LeaseHeld {
        cluster: current.lock.cluster.clone(),
        run_id: current.lock.run_id.clone(),
        holder: current.lock.holder.clone(),
        expires_in_ms: current.lease_expires_at_ms.saturating_sub(now_ms),
    }
}

impl Store {
    /// `cluster`'s lock and lease, with `lease_live` as of `now_ms`.
    pub(crate) fn cluster_lock_at(
        &self,
        cluster: &str,
        now_ms: u64,
    ) -> Result<Option<ClusterLock>, StoreError> {
        Ok(lock_row_in(&self.connection, &self.location, cluster)?.map(|row| row.at(now_ms)))
    }

    /// Grants `holder` the lease of `run_id` on `cluster` until `now_ms + ttl`. The run must
    /// exist (`UnknownRun`) and hold the cluster (`LockHeld` naming the run that does); a free
    /// cluster is taken for it (a run resumed after its lock was released by hand). The same
    /// holder keeps its token; another holder gets a new token, but only once the current lease
    /// has expired or been released (`LeaseHeld` before that).
    pub(crate) fn acquire_lease_at(
        &mut self,
        cluster: &str,
        run_id: &str,
        holder: &str,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let expires_at_ms = lease_end_ms(now_ms, ttl);
        let operation = || format!("acquiring run {run_id}'s lease on cluster {cluster}");
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.location, operation)?;
        require_run(&transaction, &self.location, run_id)?;
        let (lock, fencing_token) = match lock_row_in(&transaction, &self.location, cluster)? {
            None => {
                let lock = LockRecord {
                    cluster: cluster.to_string(),
                    run_id: run_id.to_string(),
                    holder: holder.to_string(),
                    since_ms: now_ms,
                };
                let fencing_token = next_fencing_token(&transaction, &self.location)?;
                insert_lock(
                    &transaction,
                    &self.location,
                    &lock,
                    fencing_token,
                    expires_at_ms,
                )?;
                (lock, fencing_token)
            }
            Some(current) if current.lock.run_id != run_id => return Err(current.lock_held()),
            Some(current) if current.lock.holder != holder && current.lease_live_at(now_ms) => {
                return Err(lease_held(&current, now_ms));
            }
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
                    expires_at_ms,
                )?;
                (current.lock, fencing_token)
            }
        };
        transaction.commit().during(&self.location, operation)?;
        Ok(Lease {
            cluster: lock.cluster,
            run_id: lock.run_id,
            holder: holder.to_string(),
            fencing_token,
            expires_at_ms,
        })
    }

    /// Takes the lease `lease_seen` over for `holder`, live or not, with a new token: a
    /// compare-and-swap that succeeds only while the row still has exactly the run, holder and
    /// token the caller saw, so of two breakers that saw the same dead holder exactly one wins.
    pub(crate) fn break_lease_at(
        &mut self,
        lease_seen: &ClusterLock,
        holder: &str,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let cluster = lease_seen.cluster.as_str();
        let expires_at_ms = lease_end_ms(now_ms, ttl);
        let operation = || {
            format!(
                "breaking {}'s lease of run {} on cluster {cluster}",
                lease_seen.holder, lease_seen.run_id
            )
        };
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.location, operation)?;
        let current = match lock_row_in(&transaction, &self.location, cluster)? {
            None => return Err(lock_released(cluster)),
            Some(current) if current.lock.run_id != lease_seen.run_id => {
                return Err(current.lock_held())
            }
            Some(current)
                if current.lock.holder != lease_seen.holder
                    || current.fencing_token != lease_seen.fencing_token =>
            {
                return Err(lease_held(&current, now_ms));
            }
            Some(current) => current,
        };
        let fencing_token = next_fencing_token(&transaction, &self.location)?;
        update_lease(
            &transaction,
            &self.location,
            &current.lock,
            holder,
            fencing_token,
            expires_at_ms,
        )?;
        transaction.commit().during(&self.location, operation)?;
        Ok(Lease {
            cluster: current.lock.cluster,
            run_id: current.lock.run_id,
            holder: holder.to_string(),
            fencing_token,
            expires_at_ms,
        })
    }

    /// Extends `lease` to `now_ms + ttl` if its token is still the cluster's current one, even if
    /// it expired meanwhile (nobody took it); `Fenced` if another holder took over or the lock
    /// was released.
    pub(crate) fn renew_lease_at(
        &mut self,
        lease: &Lease,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let expires_at_ms = lease_end_ms(now_ms, ttl);
        let operation = || {
            format!(
                "renewing run {}'s lease on cluster {}",
                lease.run_id, lease.cluster
            )
        };
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.location, operation)?;
        let current = check_fence(
            &transaction,
            &self.location,
            lease,
            &lease.cluster,
            &lease.run_id,
        )?;
        update_lease(
            &transaction,
            &self.location,
            &current.lock,
            &current.lock.holder,
            current.fencing_token,
            expires_at_ms,
        )?;
        transaction.commit().during(&self.location, operation)?;
        Ok(Lease {
            expires_at_ms,
            ..current.lease()
        })
    }

    /// Ends `lease` at `now_ms` (unless it already ended) so another holder may take the run at
    /// once; the run keeps the cluster's lock. Does nothing if the lease was superseded.
    pub(crate) fn release_lease_at(
        &mut self,
        lease: &Lease,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let now_ms = self.location.sql_integer("now_ms", now_ms)?;
        let token = self
            .location
            .sql_integer("fencing_token", lease.fencing_token)?;
        self.connection
            .execute(
                "UPDATE locks SET lease_expires_at_ms = MIN(lease_expires_at_ms, ?4) \
                 WHERE cluster = ?1 AND run_id = ?2 AND fencing_token = ?3",
                params![lease.cluster, lease.run_id, token, now_ms],
            )
            .map(|_| ())
            .during(&self.location, || {
                format!(
                    "releasing run {}'s lease on cluster {}",
                    lease.run_id, lease.cluster
                )
            })
    }

    /// `release_lock`, refused with `Fenced` when `fence` is no longer the cluster's current
    /// lease of `run_id` (so a superseded holder cannot free a cluster its successor drives).
    pub(crate) fn release_lock_fenced(
        &mut self,
        cluster: &str,
        run_id: &str,
        fence: Option<&Lease>,
    ) -> Result<(), StoreError> {
        let Some(fence) = fence else {
            return self.release_lock(cluster, run_id);
        };
        let operation = || format!("releasing cluster {cluster}'s lock for run {run_id}");
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.location, operation)?;
        check_fence(&transaction, &self.location, fence, cluster, run_id)?;
        transaction
            .execute(
                "DELETE FROM locks WHERE cluster = ?1 AND run_id = ?2",
                [cluster, run_id],
            )
            .during(&self.location, operation)?;
        transaction.commit().during(&self.location, operation)
    }
}
