//! The inspection of an existing database file before the store writes anything to it.
//!
//! A corrupt file, some other program's database or one written by a newer drover must be left
//! byte-for-byte as found, so everything here only reads. This module must not create or change
//! the schema (that is `schema::initialize`'s job) and must not change any setting stored in the
//! file, such as the journal mode.

use std::fs::File;
use std::io::{ErrorKind, Read};

use rusqlite::Connection;

use crate::error::{Location, SqliteContext, StoreError};
use crate::schema;

/// Every SQLite 3 database file starts with these 16 bytes.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Lines of `quick_check` output kept in a `Corrupt` error; the rest only repeats the damage.
const INTEGRITY_LINES_REPORTED: usize = 3;

/// Whether `path` holds data that `inspect` must vet before anything is written. A missing or
/// empty file holds none: SQLite treats both as a new database. A file that is not SQLite at all
/// is refused here, before SQLite sees it.
pub(crate) fn has_existing_content(location: &Location) -> Result<bool, StoreError> {
    let length_bytes = match std::fs::metadata(&location.path) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(io_error(location, source)),
    };
    if length_bytes == 0 {
        return Ok(false);
    }
    check_header(location)?;
    Ok(true)
}

/// Refuses a database this drover must not write to, using only reads on `connection`.
///
/// This runs on the connection that will later write, not on a separate read-only one: in WAL
/// mode a read-only connection creates `-wal` and `-shm` files that it cannot remove, so a
/// refused file would not be left as found. A read-write connection that has written nothing
/// removes them when it closes and leaves the database file itself untouched.
pub(crate) fn inspect(connection: &Connection, location: &Location) -> Result<(), StoreError> {
    check_integrity(connection, location)?;
    let state = schema::read_state(connection, location)?;
    schema::check_supported(state, location).map(|_| ())
}

/// Recognizes a file that is not SQLite at all without handing it to SQLite.
fn check_header(location: &Location) -> Result<(), StoreError> {
    let mut file = File::open(&location.path).map_err(|source| io_error(location, source))?;
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    file.by_ref()
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)
        .map_err(|source| io_error(location, source))?;
    if header == SQLITE_HEADER {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        path: location.path(),
        detail: "the file does not start with the SQLite header".to_string(),
    })
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
