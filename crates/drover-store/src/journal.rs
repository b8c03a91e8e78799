//! The journal: an append-only, per-run sequence of opaque entries, numbered 1, 2, 3, … with no
//! gaps, each durable once `append` returns.
//!
//! Entry kinds and payloads are opaque here; this module must not know what an intent or an
//! outcome is, nor how the engine replays them.

use rusqlite::{params, Row, Transaction, TransactionBehavior};

use crate::error::{Location, SqliteContext, StoreError};
use crate::lock_rows::check_fence;
use crate::records::{JournalEntry, Lease, NewEntry};
use crate::store::Store;

impl Store {
    /// Appends an entry to a run's journal and returns its sequence number (1 for the first).
    /// One transaction: the next number is read and the entry written under one write lock, so
    /// concurrent appenders cannot take the same number or leave a gap. Fails with `UnknownRun`
    /// if there is no such run.
    pub fn append(&mut self, run_id: &str, entry: &NewEntry) -> Result<u64, StoreError> {
        self.append_fenced(run_id, entry, None)
    }

    /// `append`, refused with `Fenced` (in the same transaction, so nothing is written) when
    /// `fence` is a lease that is no longer its cluster's current one.
    pub(crate) fn append_fenced(
        &mut self,
        run_id: &str,
        entry: &NewEntry,
        fence: Option<&Lease>,
    ) -> Result<u64, StoreError> {
        let operation = || format!("appending a {} entry to run {run_id}", entry.kind);
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.location, operation)?;
        require_run(&transaction, &self.location, run_id)?;
        if let Some(fence) = fence {
            check_fence(&transaction, &self.location, fence, &fence.cluster, run_id)?;
        }
        let seq = insert_entry(&transaction, &self.location, run_id, entry)?;
        // With synchronous=FULL the commit returns only after the WAL is on disk.
        transaction.commit().during(&self.location, operation)?;
        Ok(seq)
    }

    /// A run's whole journal in sequence order; empty for a run with no entries or no run.
    pub fn entries(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT seq, at_ms, kind, payload_json FROM journal \
                 WHERE run_id = ?1 ORDER BY seq",
            )
            .and_then(|mut statement| statement.query_map([run_id], read_entry)?.collect())
            .during(&self.location, || {
                format!("reading the journal of run {run_id}")
            })
    }

    /// The entries of a run with a seq greater than `after_seq`, in seq order: what was
    /// appended since a reader last looked (an engine polling for operator requests).
    pub fn entries_after(
        &self,
        run_id: &str,
        after_seq: u64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        self.connection
            .prepare_cached(
                "SELECT seq, at_ms, kind, payload_json FROM journal \
                 WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .and_then(|mut statement| {
                statement
                    .query_map(rusqlite::params![run_id, after], read_entry)?
                    .collect()
            })
            .during(&self.location, || {
                format!("reading the journal of run {run_id} after entry {after_seq}")
            })
    }
}

/// Writes `entry` as the run's next entry inside `transaction` and returns its seq. The caller
/// holds the write lock (an immediate transaction), so the number is neither shared nor skipped.
pub(crate) fn insert_entry(
    transaction: &Transaction<'_>,
    location: &Location,
    run_id: &str,
    entry: &NewEntry,
) -> Result<u64, StoreError> {
    let at_ms = location.sql_integer("at_ms", entry.at_ms)?;
    let operation = || format!("appending a {} entry to run {run_id}", entry.kind);
    let seq: u64 = transaction
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM journal WHERE run_id = ?1")
        .and_then(|mut statement| statement.query_row([run_id], |row| row.get(0)))
        .during(location, operation)?;
    let seq_integer = location.sql_integer("seq", seq)?;
    transaction
        .prepare_cached(
            "INSERT INTO journal (run_id, seq, at_ms, kind, payload_json) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                run_id,
                seq_integer,
                at_ms,
                entry.kind,
                entry.payload_json
            ])
        })
        .during(location, operation)?;
    Ok(seq)
}

/// Checked explicitly, not left to the foreign key, so the error names the run.
pub(crate) fn require_run(
    transaction: &Transaction<'_>,
    location: &Location,
    run_id: &str,
) -> Result<(), StoreError> {
    let exists: bool = transaction
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1)")
        .and_then(|mut statement| statement.query_row([run_id], |row| row.get(0)))
        .during(location, || format!("looking up run {run_id}"))?;
    if exists {
        return Ok(());
    }
    Err(StoreError::UnknownRun {
        path: location.path(),
        run_id: run_id.to_string(),
    })
}

fn read_entry(row: &Row<'_>) -> rusqlite::Result<JournalEntry> {
    Ok(JournalEntry {
        seq: row.get(0)?,
        at_ms: row.get(1)?,
        kind: row.get(2)?,
        payload_json: row.get(3)?,
    })
}
