//! Helpers shared by the integration tests: sample runs and entries, and temporary store files.
//!
//! Test scaffolding only; it must not hide the behaviour under test.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use drover_store::{ManualClock, NewEntry, NewRun, SqliteStore, Store};
use tempfile::TempDir;

/// A run on `cluster` created at `created_at_ms`, with recognizable opaque fields.
pub fn new_run(id: &str, cluster: &str, created_at_ms: u64) -> NewRun {
    NewRun {
        id: id.to_string(),
        cluster: cluster.to_string(),
        inventory_sha256: format!("sha256-of-{id}"),
        inventory_text: format!("cluster: {{name: {cluster}}}\n"),
        state: "planned".to_string(),
        created_at_ms,
        options_json: r#"{"max_unavailable":1}"#.to_string(),
    }
}

pub fn new_entry(kind: &str, at_ms: u64, payload_json: &str) -> NewEntry {
    NewEntry {
        at_ms,
        kind: kind.to_string(),
        payload_json: payload_json.to_string(),
    }
}

/// A fresh directory and the path of a not-yet-existing store file in it. Keep the `TempDir`
/// alive for as long as the file is used.
pub fn store_path() -> (TempDir, PathBuf) {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let path = directory.path().join("drover.db");
    (directory, path)
}

pub fn open(path: &std::path::Path) -> Store {
    Store::open(path).expect("open the store")
}

/// A `SqliteStore` on `path` whose leases follow `clock`; several may share one file and clock,
/// as processes on one machine share the file and the system clock.
pub fn leased(path: &Path, clock: &Arc<ManualClock>) -> SqliteStore {
    SqliteStore::new(
        open(path),
        Arc::clone(clock) as Arc<dyn drover_store::LeaseClock>,
    )
}

/// A hand-moved clock at an arbitrary, realistic wall time.
pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}
