//! Runs: creating them, reading them back (one, or the newest first) and updating their state.
//!
//! A run's `state` and `options_json` are opaque here; this module must not know the engine's
//! state machine or option names.

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use crate::error::{Location, SqliteContext, StoreError};
use crate::journal::insert_entry;
use crate::lock_rows::{
    check_fence, insert_lock, lock_row_in, next_fencing_token, LEASE_NEVER_EXPIRES_AT_MS,
};
use crate::records::{Lease, LockRecord, NewEntry, NewRun, RunRecord};
use crate::store::Store;

const RUN_COLUMNS: &str = "id, cluster, inventory_sha256, inventory_text, state, \
                           created_at_ms, updated_at_ms, options_json";

impl Store {
    /// Records a new run. Fails with `RunExists` if the id is taken, leaving that run as it was.
    pub fn create_run(&mut self, new_run: &NewRun) -> Result<(), StoreError> {
        let operation = || format!("creating run {}", new_run.id);
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.location, operation)?;
        insert_run(&transaction, &self.location, new_run)?;
        transaction.commit().during(&self.location, operation)
    }

    /// Starts a run in one transaction: refuses with `LockHeld` if any run (this id included)
    /// holds the cluster, with `RunExists` if the id is taken; otherwise records the run, locks
    /// its cluster for `holder` and writes `first_entry` as entry 1. All or nothing: a process
    /// killed or failing at any point leaves either a complete, resumable run or no trace, never
    /// a locked cluster with a run that has no journal; and of two processes starting runs on
    /// one cluster at the same moment (even with the same id) exactly one succeeds.
    ///
    /// `holder` gets a new fencing token and a lease that never expires (this API never renews).
    pub fn start_run(
        &mut self,
        new_run: &NewRun,
        holder: &str,
        first_entry: &NewEntry,
    ) -> Result<(), StoreError> {
        self.start_run_until(new_run, holder, LEASE_NEVER_EXPIRES_AT_MS, first_entry)
            .map(|_| ())
    }

    /// `start_run`, with a lease for `holder` that ends at `lease_expires_at_ms`; returns the
    /// lease.
    pub(crate) fn start_run_until(
        &mut self,
        new_run: &NewRun,
        holder: &str,
        lease_expires_at_ms: u64,
        first_entry: &NewEntry,
    ) -> Result<Lease, StoreError> {
        let operation = || format!("starting run {}", new_run.id);
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.location, operation)?;
        if let Some(current) = lock_row_in(&transaction, &self.location, &new_run.cluster)? {
            return Err(current.lock_held());
        }
        insert_run(&transaction, &self.location, new_run)?;
        let lock = LockRecord {
            cluster: new_run.cluster.clone(),
            run_id: new_run.id.clone(),
            holder: holder.to_string(),
            since_ms: new_run.created_at_ms,
        };
        let fencing_token = next_fencing_token(&transaction, &self.location)?;
        insert_lock(
            &transaction,
            &self.location,
            &lock,
            fencing_token,
            lease_expires_at_ms,
        )?;
        insert_entry(&transaction, &self.location, &new_run.id, first_entry)?;
        transaction.commit().during(&self.location, operation)?;
        Ok(Lease {
            cluster: lock.cluster,
            run_id: lock.run_id,
            holder: lock.holder,
            fencing_token,
            expires_at_ms: lease_expires_at_ms,
        })
    }

    /// The run with this id, if any.
    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.connection
            .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
            .and_then(|mut statement| statement.query_row([run_id], read_run).optional())
            .during(&self.location, || format!("reading run {run_id}"))
    }

    /// Up to `limit` runs, newest first (by `created_at_ms`, then by creation order), of one
    /// cluster or of all. A `limit` of 0 returns no runs.
    pub fn runs(&self, cluster: Option<&str>, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        // More rows than SQLite could ever hold means "all of them".
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // `?1 IS NULL` lets one statement serve both the filtered and the unfiltered listing.
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE ?1 IS NULL OR cluster = ?1 \
             ORDER BY created_at_ms DESC, rowid DESC LIMIT ?2"
        );
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut statement| {
                statement
                    .query_map(params![cluster, limit], read_run)?
                    .collect()
            })
            .during(&self.location, || match cluster {
                Some(cluster) => format!("listing runs of cluster {cluster}"),
                None => "listing runs".to_string(),
            })
    }

    /// Sets a run's state and `updated_at_ms`. Fails with `UnknownRun` if there is no such run.
    pub fn set_run_state(
        &mut self,
        run_id: &str,
        state: &str,
        updated_at_ms: u64,
    ) -> Result<(), StoreError> {
        self.set_run_state_fenced(run_id, state, updated_at_ms, None)
    }

    /// `set_run_state`, refused with `Fenced` (in the same transaction) when `fence` is a lease
    /// that is no longer its cluster's current one.
    pub(crate) fn set_run_state_fenced(
        &mut self,
        run_id: &str,
        state: &str,
        updated_at_ms: u64,
        fence: Option<&Lease>,
    ) -> Result<(), StoreError> {
        let updated_at_ms = self.location.sql_integer("updated_at_ms", updated_at_ms)?;
        let operation = || format!("setting the state of run {run_id} to {state}");
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.location, operation)?;
        if let Some(fence) = fence {
            check_fence(&transaction, &self.location, fence, &fence.cluster, run_id)?;
        }
        let updated_count = transaction
            .execute(
                "UPDATE runs SET state = ?2, updated_at_ms = ?3 WHERE id = ?1",
                params![run_id, state, updated_at_ms],
            )
            .during(&self.location, operation)?;
        if updated_count == 0 {
            return Err(StoreError::UnknownRun {
                path: self.location.path(),
                run_id: run_id.to_string(),
            });
        }
        transaction.commit().during(&self.location, operation)
    }
}

/// Inserts `new_run` inside `transaction`; `RunExists` if the id is taken.
fn insert_run(
    transaction: &rusqlite::Transaction<'_>,
    location: &Location,
    new_run: &NewRun,
) -> Result<(), StoreError> {
    let created_at_ms = location.sql_integer("created_at_ms", new_run.created_at_ms)?;
    let inserted_count = transaction
        .execute(
            "INSERT INTO runs (id, cluster, inventory_sha256, inventory_text, state, \
                               created_at_ms, updated_at_ms, options_json) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) \
             ON CONFLICT (id) DO NOTHING",
            params![
                new_run.id,
                new_run.cluster,
                new_run.inventory_sha256,
                new_run.inventory_text,
                new_run.state,
                created_at_ms,
                new_run.options_json,
            ],
        )
        .during(location, || format!("creating run {}", new_run.id))?;
    if inserted_count == 0 {
        return Err(StoreError::RunExists {
            path: location.path(),
            run_id: new_run.id.clone(),
        });
    }
    Ok(())
}

fn read_run(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        cluster: row.get(1)?,
        inventory_sha256: row.get(2)?,
        inventory_text: row.get(3)?,
        state: row.get(4)?,
        created_at_ms: row.get(5)?,
        updated_at_ms: row.get(6)?,
        options_json: row.get(7)?,
    })
}
