//! The database layout (tables, indexes, triggers) and schema versioning through the `meta`
//! table: creating the layout in a new file, migrating files of an older version in place, and
//! refusing files this drover cannot safely use.
//!
//! This module must not know what runs, entries or locks mean; it only knows their columns (the
//! values a migration gives existing lock rows are decided by `lock_rows`).

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::error::{Location, SqliteContext, StoreError};
use crate::lock_rows;

/// The layout version this build writes and understands. Raise it, with a migration from the
/// previous version in `migrate`, whenever the layout changes.
pub const SCHEMA_VERSION: u32 = 2;

/// The first layout any drover wrote; older version numbers were never written.
const FIRST_SCHEMA_VERSION: u32 = 1;

/// Version 1. STRICT tables reject values of the wrong type instead of silently storing them;
/// the CHECKs keep timestamps representable as `u64` when read back.
const LAYOUT_V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE runs (
    id               TEXT PRIMARY KEY NOT NULL,
    cluster          TEXT NOT NULL,
    inventory_sha256 TEXT NOT NULL,
    inventory_text   TEXT NOT NULL,
    state            TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL CHECK (created_at_ms >= 0),
    updated_at_ms    INTEGER NOT NULL CHECK (updated_at_ms >= 0),
    options_json     TEXT NOT NULL
) STRICT;
CREATE INDEX runs_newest_first ON runs (created_at_ms DESC);
CREATE INDEX runs_by_cluster_newest_first ON runs (cluster, created_at_ms DESC);

CREATE TABLE journal (
    run_id       TEXT NOT NULL REFERENCES runs (id),
    seq          INTEGER NOT NULL CHECK (seq >= 1),
    at_ms        INTEGER NOT NULL CHECK (at_ms >= 0),
    kind         TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT, WITHOUT ROWID;

-- Replay trusts the journal as written; nothing may rewrite history, even by mistake.
CREATE TRIGGER journal_refuses_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'the drover journal is append-only'); END;
CREATE TRIGGER journal_refuses_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'the drover journal is append-only'); END;

-- No foreign key to runs: the engine may take the lock before or after creating its run.
CREATE TABLE locks (
    cluster  TEXT PRIMARY KEY NOT NULL,
    run_id   TEXT NOT NULL,
    holder   TEXT NOT NULL,
    since_ms INTEGER NOT NULL CHECK (since_ms >= 0)
) STRICT;
";

/// Version 2: each lock row carries its run's lease, the holder's fencing token and the lease's
/// expiry (store clock). The token counter itself is a `meta` row, written by
/// `lock_rows::adopt_version_1_locks`.
const MIGRATION_V1_TO_V2: &str = "
ALTER TABLE locks ADD COLUMN fencing_token INTEGER NOT NULL DEFAULT 0
    CHECK (fencing_token >= 0);
ALTER TABLE locks ADD COLUMN lease_expires_at_ms INTEGER NOT NULL DEFAULT 0
    CHECK (lease_expires_at_ms >= 0);
";

/// What a database file holds, as far as versioning is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemaState {
    /// No tables at all: a new database.
    Empty,
    /// Tables, but no `meta`: some other program's database.
    Foreign,
    /// A drover store of this schema version.
    Version(u32),
}

/// Reads the schema state without writing anything.
pub(crate) fn read_state(
    connection: &Connection,
    location: &Location,
) -> Result<SchemaState, StoreError> {
    let user_table_count: u64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            [],
            |row| row.get(0),
        )
        .during(location, || "reading the schema".to_string())?;
    if user_table_count == 0 {
        return Ok(SchemaState::Empty);
    }
    let has_meta: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')",
            [],
            |row| row.get(0),
        )
        .during(location, || "looking for the meta table".to_string())?;
    if !has_meta {
        return Ok(SchemaState::Foreign);
    }
    read_version(connection, location).map(SchemaState::Version)
}

fn read_version(connection: &Connection, location: &Location) -> Result<u32, StoreError> {
    let text: Option<String> = connection
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .during(location, || "reading meta.schema_version".to_string())?;
    let corrupt = |detail: String| StoreError::Corrupt {
        path: location.path(),
        detail,
    };
    let text = text.ok_or_else(|| corrupt("the meta table has no schema_version".to_string()))?;
    text.trim().parse().map_err(|_| {
        corrupt(format!(
            "meta.schema_version is {text:?}, not a version number"
        ))
    })
}

/// What opening a database has to do to its layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setup {
    /// A new database: create the layout.
    Create,
    /// An older drover's store: migrate it, in place, from this version.
    Migrate { from: u32 },
    /// Already this build's layout.
    Nothing,
}

/// Refuses what this build cannot use, and says what the rest can need.
pub(crate) fn check_supported(
    state: SchemaState,
    location: &Location,
) -> Result<Setup, StoreError> {
    match state {
        SchemaState::Empty => Ok(Setup::Create),
        SchemaState::Foreign => Err(StoreError::ForeignDatabase {
            path: location.path(),
        }),
        SchemaState::Version(found) if found > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            path: location.path(),
            found,
            supported: SCHEMA_VERSION,
        }),
        SchemaState::Version(SCHEMA_VERSION) => Ok(Setup::Nothing),
        SchemaState::Version(found) if found >= FIRST_SCHEMA_VERSION => {
            Ok(Setup::Migrate { from: found })
        }
        SchemaState::Version(found) => Err(StoreError::Corrupt {
            path: location.path(),
            detail: format!("schema_version {found} was never written by any drover"),
        }),
    }
}

/// Creates the layout in an empty database, migrates an older one, or checks the version of a
/// current one. The check is repeated inside the write transaction because another process may
/// have created or migrated the database since the read-only preflight looked at it. All of it
/// is one transaction: a failed or killed migration leaves the file at its old version.
pub(crate) fn initialize(
    connection: &mut Connection,
    location: &Location,
) -> Result<(), StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .during(location, || "starting schema setup".to_string())?;
    let state = read_state(&transaction, location)?;
    match check_supported(state, location)? {
        Setup::Nothing => {}
        // A new file is created at the first version and migrated like any older file, so a
        // new store and a migrated one have the same layout by construction.
        Setup::Create => {
            transaction
                .execute_batch(LAYOUT_V1)
                .during(location, || "creating the schema".to_string())?;
            transaction
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [FIRST_SCHEMA_VERSION.to_string()],
                )
                .during(location, || "recording the schema version".to_string())?;
            migrate(&transaction, location, FIRST_SCHEMA_VERSION)?;
        }
        Setup::Migrate { from } => migrate(&transaction, location, from)?,
    }
    transaction
        .commit()
        .during(location, || "committing schema setup".to_string())
}

/// Brings the layout from version `from` to `SCHEMA_VERSION`, one version at a time, inside the
/// caller's transaction.
fn migrate(
    transaction: &Transaction<'_>,
    location: &Location,
    from: u32,
) -> Result<(), StoreError> {
    for version in from..SCHEMA_VERSION {
        match version {
            1 => {
                transaction
                    .execute_batch(MIGRATION_V1_TO_V2)
                    .during(location, || {
                        "migrating the schema from version 1".to_string()
                    })?;
                lock_rows::adopt_version_1_locks(transaction, location)?;
            }
            other => unreachable!("no migration from schema version {other}"),
        }
        transaction
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                [(version + 1).to_string()],
            )
            .during(location, || "recording the schema version".to_string())?;
    }
    Ok(())
}
