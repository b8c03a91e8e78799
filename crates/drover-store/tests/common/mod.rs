//! Helpers shared by the integration tests: sample runs and entries, and temporary store files.
//!
//! Test scaffolding only; it must not hide the behaviour under test.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::PathBuf;

use drover_store::{NewEntry, NewRun, Store};
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
