//! The inspection of an existing database file before the store writes anything to it.
//!
//! A corrupt file, some other program's database or one written by a newer drover must be left
//! byte-for-byte as found, so everything here only reads. This module must not create or change
//! the schema (that is `schema::initialize`'s job) and must not change any setting stored in the
//! file, such as the journal mode.

use std::io::ErrorKind;

use rusqlite::{Connection, ErrorCode};

use crate::error::{Location, SqliteContext, StoreError};
use crate::schema;

/// Lines of `quick_check` output kept in a `Corrupt` error; the rest only repeats the damage.
const INTEGRITY_LINES_REPORTED: usize = 3;

/// Whether `path` holds data that `inspect` must vet before anything is written. A missing or
/// empty file holds none: SQLite treats both as a new database.
///
/// Only `stat` is used here, never `open`: closing any descriptor of a file drops every POSIX
/// lock this process holds on it, including those of another live SQLite connection (a run
/// driven in this process while `drover serve` opens the store for an API read), which lets a
/// second process checkpoint, truncate the WAL and delete `-shm` under it. Whether the content is
/// SQLite at all is asked of SQLite itself in `inspect`, whose VFS shares locks per file.
pub(crate) fn has_existing_content(location: &Location) -> Result<bool, StoreError> {
    let length_bytes = match std::fs::metadata(&location.path) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(io_error(location, source)),
    };
    Ok(length_bytes > 0)
}

/// Refuses a database this drover must not write to, using only reads on `connection`.
///
/// This runs on the connection that will later write, not on a separate read-only one: in WAL
/// mode a read-only connection creates `-wal` and `-shm` files that it cannot remove, so a
/// refused file would not be left as found. A read-write connection that has written nothing
/// removes them when it closes and leaves the database file itself untouched.
pub(crate) fn inspect(connection: &Connection, location: &Location) -> Result<(), StoreError> {
    check_is_sqlite(connection, location)?;
    check_integrity(connection, location)?;
    let state = schema::read_state(connection, location)?;
    schema::check_supported(state, location).map(|_| ())
}

/// Recognizes a file that is not SQLite at all. SQLite reads page 1 (rounding a short file up to
/// one page) and answers `NotADatabase` when the header is not its own; reading takes only a
/// shared lock and creates no side file, so the refused file is left as found.
fn check_is_sqlite(connection: &Connection, location: &Location) -> Result<(), StoreError> {
    match connection.query_row("PRAGMA schema_version", [], |row| row.get::<_, i64>(0)) {
        Ok(_) => Ok(()),
        Err(error) if error.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            Err(StoreError::Corrupt {
                path: location.path(),
                detail: "the file does not start with the SQLite header".to_string(),
            })
        }
        Err(error) => Err(location.sqlite_error("reading the header".to_string(), error)),
    }
}

/// `quick_check` reads every page, so damage is reported at open instead of mid-replay.
fn check_integrity(connection: &Connection, location: &Location) -> Result<(), StoreError> {
    let mut statement = connection
        .prepare("PRAGMA quick_check")
        .during(location, || "checking integrity".to_string())?;
    let findings = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
        .during(location, || "checking integrity".to_string())?;
    if findings.len() == 1 && findings[0] == "ok" {
        return Ok(());
    }
    let reported: Vec<&str> = findings
        .iter()
        .take(INTEGRITY_LINES_REPORTED)
        .map(String::as_str)
        .collect();
    Err(StoreError::Corrupt {
        path: location.path(),
        detail: format!("integrity check failed: {}", reported.join("; ")),
    })
}

fn io_error(location: &Location, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: location.path(),
        source,
    }
}
