//! `drover state migrate`: copies every run and its journal from one store to another (the
//! embedded SQLite file to a shared database, or back), through the `RunStore` trait only, so it
//! works between any two stores. Leases and locks are not copied: an unfinished run takes its
//! cluster's lock again when it is resumed from the target.
//!
//! Refuses a target that already holds runs (it never overwrites). Each run is written with the
//! store's own start transaction and then appended entry by entry, so its sequence numbers come
//! out as in the source (journals are gap-free from 1); then every run is read back from both
//! stores and compared by count and checksum. Must not know what entries mean.

use std::time::Duration;

use drover_store::{JournalEntry, NewEntry, NewRun, RunRecord, RunStore};

use crate::error::AppError;

/// Who holds the target's lease while a run is copied (released right after).
const MIGRATION_HOLDER: &str = "drover-state-migrate";
/// Runs read at most (a bound, far beyond any fleet's history).
const MAX_RUNS: usize = 1_000_000;

/// What was copied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    pub runs: usize,
    pub entries: usize,
    /// Runs without any journal entry (an older drover crashed while starting them): nothing to
    /// copy, and the target's start transaction needs a first entry.
    pub skipped_never_started: Vec<String>,
}

/// Copies every run of `from` into the empty `to`, then verifies both hold the same journals.
pub async fn migrate(from: &dyn RunStore, to: &dyn RunStore) -> Result<Migrated, AppError> {
    let existing = to.runs(None, 1).await.map_err(AppError::bad_input)?;
    if let Some(run) = existing.first() {
        return Err(AppError::bad_input(format!(
            "--to already holds runs (e.g. {}); state migrate never overwrites: give an empty store",
            run.id
        )));
    }
    let mut runs = from
        .runs(None, MAX_RUNS)
        .await
        .map_err(AppError::internal)?;
    // Oldest first, so that the target lists them in the same order.
    runs.reverse();
    let mut migrated = Migrated::default();
    for run in &runs {
        let entries = from.entries(&run.id).await.map_err(AppError::internal)?;
        if entries.is_empty() {
            migrated.skipped_never_started.push(run.id.clone());
            continue;
        }
        copy_run(to, run, &entries).await?;
        migrated.runs += 1;
        migrated.entries += entries.len();
    }
    verify(from, to, &runs, &migrated.skipped_never_started).await?;
    Ok(migrated)
}

async fn copy_run(
    to: &dyn RunStore,
    run: &RunRecord,
    entries: &[JournalEntry],
) -> Result<(), AppError> {
    let new_run = NewRun {
        id: run.id.clone(),
        cluster: run.cluster.clone(),
        inventory_sha256: run.inventory_sha256.clone(),
        inventory_text: run.inventory_text.clone(),
        state: run.state.clone(),
        created_at_ms: run.created_at_ms,
        options_json: run.options_json.clone(),
    };
    let failed = |error: drover_store::StoreError| {
        AppError::internal(format!("copying run {}: {error}", run.id))
    };
    let lease = to
        .start_run(
            &new_run,
            MIGRATION_HOLDER,
            Duration::from_secs(60),
            &new_entry(&entries[0]),
        )
        .await
        .map_err(failed)?;
    for entry in &entries[1..] {
        let seq = to
            .append(&run.id, &new_entry(entry), Some(&lease))
            .await
            .map_err(failed)?;
        if seq != entry.seq {
            return Err(AppError::internal(format!(
                "copying run {}: entry {} came out as {seq} in the target",
                run.id, entry.seq
            )));
        }
    }
    to.set_run_state(&run.id, &run.state, run.updated_at_ms, Some(&lease))
        .await
        .map_err(failed)?;
    to.release_lock(&run.cluster, &run.id, Some(&lease))
        .await
        .map_err(failed)
}

fn new_entry(entry: &JournalEntry) -> NewEntry {
    NewEntry {
        at_ms: entry.at_ms,
        kind: entry.kind.clone(),
        payload_json: entry.payload_json.clone(),
    }
}

/// Reads every copied run back from both stores: the same record and the same journal (count
/// and SHA-256 of every entry's seq, time, kind and payload).
async fn verify(
    from: &dyn RunStore,
    to: &dyn RunStore,
    runs: &[RunRecord],
    skipped: &[String],
) -> Result<(), AppError> {
    for run in runs.iter().filter(|run| !skipped.contains(&run.id)) {
        let copied = to
            .run(&run.id)
            .await
            .map_err(AppError::internal)?
            .ok_or_else(|| {
                AppError::internal(format!("run {} is missing in the target", run.id))
            })?;
        if copied != *run {
            return Err(AppError::internal(format!(
                "run {}: its record differs in the target",
                run.id
            )));
        }
        let source = from.entries(&run.id).await.map_err(AppError::internal)?;
        let target = to.entries(&run.id).await.map_err(AppError::internal)?;
        if source.len() != target.len() || checksum(&source) != checksum(&target) {
            return Err(AppError::internal(format!(
                "run {}: {} entries in the source, {} in the target, or their checksums differ",
                run.id,
                source.len(),
                target.len()
            )));
        }
    }
    Ok(())
}

/// The hex SHA-256 of a journal.
pub fn checksum(entries: &[JournalEntry]) -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for entry in entries {
        digest.update(entry.seq.to_be_bytes());
        digest.update(entry.at_ms.to_be_bytes());
        digest.update(entry.kind.as_bytes());
        digest.update([0]);
        digest.update(entry.payload_json.as_bytes());
        digest.update([0]);
    }
    digest
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
