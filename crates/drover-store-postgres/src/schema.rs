//! The PostgreSQL layout and its versioned migrations, applied when a store connects: in one
//! transaction, under an advisory lock so that several Drover instances starting at once migrate
//! exactly once, and refusing (changing nothing) a database of a newer version or one that holds
//! Drover's table names without Drover's `meta` table.
//!
//! The layout mirrors the SQLite store's: `runs` (with the per-run journal counter), `journal`
//! (append-only: a trigger refuses UPDATE, DELETE and TRUNCATE), `locks` (a cluster's lock with
//! its lease and fencing token), `meta` (the schema version), and the `fencing_tokens` sequence.
//! This module must not know what runs, entries or locks mean; only their columns.

use drover_store::StoreError;
use tokio_postgres::Client;

use crate::errors::Place;

/// The layout version this build writes and understands: the number of `MIGRATIONS`.
pub const POSTGRES_SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Any fixed number, shared by every Drover build: the transaction-scoped advisory lock that
/// serializes schema setup between instances connecting at once ("drover" in ASCII).
const SCHEMA_ADVISORY_LOCK_KEY: i64 = 0x0000_6472_6f76_6572;

/// `MIGRATIONS[n]` takes the database from version `n` to `n + 1` (version 0: no Drover tables).
/// Append only; never edit a released migration.
const MIGRATIONS: &[&str] = &[
    // 1: the first layout.
    "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    cluster          TEXT NOT NULL,
    inventory_sha256 TEXT NOT NULL,
    inventory_text   TEXT NOT NULL,
    state            TEXT NOT NULL,
    created_at_ms    BIGINT NOT NULL CHECK (created_at_ms >= 0),
    updated_at_ms    BIGINT NOT NULL CHECK (updated_at_ms >= 0),
    options_json     TEXT NOT NULL,
    -- Newest-first listings break ties of created_at_ms by creation order.
    created_order    BIGINT GENERATED ALWAYS AS IDENTITY,
    -- The seq of the run's last journal entry: incremented in the append's own transaction,
    -- under the row's lock, so concurrent appenders get 1, 2, 3, ... with no gap or duplicate.
    last_seq         BIGINT NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);
CREATE INDEX runs_newest_first ON runs (created_at_ms DESC, created_order DESC);
CREATE INDEX runs_by_cluster_newest_first ON runs (cluster, created_at_ms DESC, created_order DESC);

CREATE TABLE journal (
    run_id       TEXT NOT NULL REFERENCES runs (id),
    seq          BIGINT NOT NULL CHECK (seq >= 1),
    at_ms        BIGINT NOT NULL CHECK (at_ms >= 0),
    kind         TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Replay trusts the journal as written; nothing may rewrite history, even by mistake.
CREATE FUNCTION drover_journal_refuses_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the drover journal is append-only';
END;
$$;
CREATE TRIGGER journal_refuses_update_and_delete BEFORE UPDATE OR DELETE ON journal
    FOR EACH ROW EXECUTE FUNCTION drover_journal_refuses_changes();
CREATE TRIGGER journal_refuses_truncate BEFORE TRUNCATE ON journal
    FOR EACH STATEMENT EXECUTE FUNCTION drover_journal_refuses_changes();

-- No foreign key to runs, as on SQLite. Expiry is in ms of the database's clock.
CREATE TABLE locks (
    cluster             TEXT PRIMARY KEY,
    run_id              TEXT NOT NULL,
    holder              TEXT NOT NULL,
    since_ms            BIGINT NOT NULL CHECK (since_ms >= 0),
    fencing_token       BIGINT NOT NULL CHECK (fencing_token >= 1),
    lease_expires_at_ms BIGINT NOT NULL CHECK (lease_expires_at_ms >= 0)
);

-- Store-wide and never reused: a rolled-back grant leaves a gap, never a repeat.
CREATE SEQUENCE fencing_tokens AS BIGINT START WITH 1;
",
];

/// Brings the database to `POSTGRES_SCHEMA_VERSION`, or refuses it without changing anything.
pub(crate) async fn migrate(client: &mut Client, place: &Place) -> Result<(), StoreError> {
    let operation = "setting up the schema";
    let error = |error| place.client_error(operation, error);
    let transaction = client.transaction().await.map_err(error)?;
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&SCHEMA_ADVISORY_LOCK_KEY],
        )
        .await
        .map_err(error)?;
    let found = current_version(&transaction, place).await?;
    if found > POSTGRES_SCHEMA_VERSION {
        // Dropping the transaction rolls it back: nothing was written.
        return Err(StoreError::NewerSchema {
            path: place.url_without_password.clone().into(),
            found,
            supported: POSTGRES_SCHEMA_VERSION,
        });
    }
    for version in found..POSTGRES_SCHEMA_VERSION {
        transaction
            .batch_execute(MIGRATIONS[version as usize])
            .await
            .map_err(|error| {
                place.client_error(
                    &format!("migrating the schema from version {version}"),
                    error,
                )
            })?;
    }
    if found < POSTGRES_SCHEMA_VERSION {
        transaction
            .execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&POSTGRES_SCHEMA_VERSION.to_string()],
            )
            .await
            .map_err(error)?;
    }
    transaction.commit().await.map_err(error)
}

/// 0 for a database without Drover's tables; `ForeignDatabase` for one that has a table named
/// like Drover's but no `meta` (another program's), which is left alone.
async fn current_version(
    transaction: &tokio_postgres::Transaction<'_>,
    place: &Place,
) -> Result<u32, StoreError> {
    let error = |error| place.client_error("reading the schema version", error);
    let row = transaction
        .query_one(
            "SELECT to_regclass('meta') IS NOT NULL, \
                    (to_regclass('runs') IS NOT NULL OR to_regclass('journal') IS NOT NULL \
                     OR to_regclass('locks') IS NOT NULL)",
            &[],
        )
        .await
        .map_err(error)?;
    let (has_meta, has_drover_names): (bool, bool) = (row.get(0), row.get(1));
    if !has_meta {
        if has_drover_names {
            return Err(StoreError::Database {
                url_without_password: place.url_without_password.clone(),
                operation: "checking the schema".to_string(),
                detail: "the database has a table named runs, journal or locks but no meta \
                         table: another program's; refusing to use it (nothing was changed)"
                    .to_string(),
            });
        }
        return Ok(0);
    }
    let text: Option<String> = transaction
        .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .await
        .map_err(error)?
        .map(|row| row.get(0));
    let corrupt = |detail: String| StoreError::Database {
        url_without_password: place.url_without_password.clone(),
        operation: "reading the schema version".to_string(),
        detail: format!("{detail}; refusing to use it (nothing was changed)"),
    };
    let text = text.ok_or_else(|| corrupt("the meta table has no schema_version".to_string()))?;
    text.trim().parse().map_err(|_| {
        corrupt(format!(
            "meta.schema_version is {text:?}, not a version number"
        ))
    })
}
