//! Opening the store a `--state` value names: the one place that knows which stores exist.
//! A path is an SQLite file (the embedded default); `postgres://` or `postgresql://` is a
//! PostgreSQL database (with the cargo feature `postgres`). Adding a store adds its scheme here.
//!
//! This module must not know what runs or journals hold.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use drover_store::{RunStore, SqliteStore};

use crate::error::AppError;

/// Opens the store `state` names: a PostgreSQL URL, or an SQLite file (created if missing). A
/// store that cannot be used (bad URL, unreachable, wrong password, corrupt, foreign, newer
/// schema) is bad input, and nothing is written to it.
pub fn open_store(state: &Path) -> Result<Arc<dyn RunStore>, AppError> {
    if let Some(url) = state.to_str().filter(|state| is_postgres_url(state)) {
        return open_postgres(url);
    }
    SqliteStore::open(state)
        .map(|store| Arc::new(store) as Arc<dyn RunStore>)
        .map_err(|error| AppError::bad_input(format!("state file {}: {error}", state.display())))
}

/// Where drivers keep the files their `driver:` section places nowhere (a simulated platform's
/// state, libvirt's marks), as a prefix (`PREFIX.CLUSTER.…`): beside an SQLite file; for a
/// database, which has no folder, `drover-postgres-DB` in `$DROVER_DATA_DIR`, else in the current
/// directory (one machine's files: a networked store does not hold them).
pub fn files_prefix(state: &Path) -> PathBuf {
    let Some(url) = state.to_str().filter(|state| is_postgres_url(state)) else {
        return state.to_path_buf();
    };
    let database = url
        .split('?')
        .next()
        .and_then(|base| base.rsplit('/').next())
        .unwrap_or("drover");
    let name: String = database
        .chars()
        .map(|character| match character {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => character,
            _ => '_',
        })
        .collect();
    let directory = std::env::var_os("DROVER_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    directory.join(format!("drover-postgres-{name}"))
}

/// Kept even without the feature, so that a URL is never taken for an SQLite file name.
fn is_postgres_url(state: &str) -> bool {
    state.starts_with("postgres://") || state.starts_with("postgresql://")
}

#[cfg(feature = "postgres")]
fn open_postgres(url: &str) -> Result<Arc<dyn RunStore>, AppError> {
    drover_store_postgres::PostgresStore::connect(url)
        .map(|store| Arc::new(store) as Arc<dyn RunStore>)
        .map_err(|error| AppError::bad_input(error.to_string()))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_url: &str) -> Result<Arc<dyn RunStore>, AppError> {
    Err(AppError::bad_input(
        "--state / DROVER_STATE names a PostgreSQL database, but this drover was built without \
         PostgreSQL support: build it with `--features postgres`"
            .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_kept_beside_a_file_and_in_the_data_directory_for_a_database() {
        assert_eq!(
            files_prefix(Path::new("/var/lib/drover/drover.db")),
            PathBuf::from("/var/lib/drover/drover.db")
        );
        // Never a path made of the URL (`postgres:/host:5432/db.CLUSTER.sim.json`).
        let prefix = files_prefix(Path::new(
            "postgres://drover@db.example:5432/fleet?sslmode=disable",
        ));
        assert_eq!(prefix.file_name().unwrap(), "drover-postgres-fleet");
        assert!(!prefix.to_string_lossy().contains("://"), "{prefix:?}");
    }
}
