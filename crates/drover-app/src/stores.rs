//! Opening the store a `--state` value names: the one place that knows which stores exist.
//! Today a path is an SQLite file (the embedded default); adding a store adds its scheme here.
//!
//! This module must not know what runs or journals hold.

use std::path::Path;
use std::sync::Arc;

use drover_store::{RunStore, SqliteStore};

use crate::error::AppError;

/// Opens the store at `state` (an SQLite file, created if missing). A store that cannot be
/// used (corrupt, foreign, newer schema) is bad input: the file is left untouched.
pub fn open_store(state: &Path) -> Result<Arc<dyn RunStore>, AppError> {
    SqliteStore::open(state)
        .map(|store| Arc::new(store) as Arc<dyn RunStore>)
        .map_err(|error| AppError::bad_input(format!("state file {}: {error}", state.display())))
}

/// Where drivers keep the files their `driver:` section places nowhere (the simulated platform,
/// libvirt's marks), as a prefix (`PREFIX.CLUSTER.…`): beside an SQLite state file; for a store
/// named by a URL (a database server), `DROVER_DATA_DIR` or else the working directory, with
/// the prefix `drover`.
pub fn files_prefix(state: &Path) -> std::path::PathBuf {
    let is_url = state.to_str().is_some_and(|text| text.contains("://"));
    if !is_url {
        return state.to_path_buf();
    }
    let directory = std::env::var_os("DROVER_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    directory.join("drover")
}
