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
