//! Schema version 2 (leases): a version-1 file is migrated in place on open, in one transaction,
//! keeping every run, entry and lock; a file of a newer version is refused untouched.
//!
//! Version-1 files are written here by hand with rusqlite, from the version-1 layout as drover
//! wrote it (crates/drover-store/src/schema.rs, `LAYOUT_V1`, at commit 6bfa33d), so these tests
//! do not depend on the store's own code to produce the old layout.

mod common;

use std::fs;
use std::path::Path;

use common::{leased, manual_clock, new_entry, new_run, open, store_path};
use drover_store::{RunStore, SqliteStore, Store, StoreError, SCHEMA_VERSION};
use rusqlite::Connection;

/// The version-1 layout, verbatim.
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

CREATE TRIGGER journal_refuses_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'the drover journal is append-only'); END;
CREATE TRIGGER journal_refuses_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'the drover journal is append-only'); END;

CREATE TABLE locks (
    cluster  TEXT PRIMARY KEY NOT NULL,
    run_id   TEXT NOT NULL,
    holder   TEXT NOT NULL,
    since_ms INTEGER NOT NULL CHECK (since_ms >= 0)
) STRICT;
";

/// A version-1 store as a drover of that version left it: two runs (one locking its cluster, one
/// finished), a journal, WAL mode.
fn write_version_1_file(path: &Path, extra_sql: &str) {
    let connection = Connection::open(path).unwrap();
    let journal_mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal_mode, "wal");
    connection.execute_batch(LAYOUT_V1).unwrap();
    connection.execute_batch(extra_sql).unwrap();
    connection
        .execute_batch(
            "INSERT INTO meta (key, value) VALUES ('schema_version', '1');
             INSERT INTO runs VALUES ('run-old', 'pool-a', 'sha-old', 'cluster: {name: pool-a}', \
                                      'completed', 100, 200, '{}');
             INSERT INTO runs VALUES ('run-live', 'pool-a', 'sha-live', 'cluster: {name: pool-a}', \
                                      'running', 300, 400, '{\"max_unavailable\":1}');
             INSERT INTO journal VALUES ('run-live', 1, 300, 'start', '{\"hosts\":2}');
             INSERT INTO journal VALUES ('run-live', 2, 310, 'intent', '{\"id\":1}');
             INSERT INTO journal VALUES ('run-live', 3, 320, 'outcome', '{\"id\":1}');
             INSERT INTO locks (cluster, run_id, holder, since_ms) VALUES ('pool-a', 'run-live', '4242@old-host', 300);
             INSERT INTO locks (cluster, run_id, holder, since_ms) VALUES ('pool-c', 'run-elsewhere', '77@old-host', 50);",
        )
        .unwrap();
}

fn raw_schema_version(path: &Path) -> String {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

fn lock_columns(path: &Path) -> Vec<String> {
    let connection = Connection::open(path).unwrap();
    let mut statement = connection
        .prepare("SELECT name FROM pragma_table_info('locks') ORDER BY cid")
        .unwrap();
    let names = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    names
}

#[tokio::test]
async fn a_version_1_file_is_migrated_in_place_and_keeps_its_data() {
    let (_directory, path) = store_path();
    write_version_1_file(&path, "");
    assert_eq!(SCHEMA_VERSION, 2);

    let clock = manual_clock();
    let store = leased(&path, &clock);
    assert_eq!(raw_schema_version(&path), "2");
    assert_eq!(
        lock_columns(&path),
        [
            "cluster",
            "run_id",
            "holder",
            "since_ms",
            "fencing_token",
            "lease_expires_at_ms"
        ]
    );

    let live = store.run("run-live").await.unwrap().expect("run kept");
    assert_eq!(
        (
            live.state.as_str(),
            live.created_at_ms,
            live.updated_at_ms,
            live.options_json.as_str()
        ),
        ("running", 300, 400, r#"{"max_unavailable":1}"#)
    );
    assert_eq!(store.runs(None, 10).await.unwrap().len(), 2);
    let entries = store.entries("run-live").await.unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|entry| (entry.seq, entry.at_ms, entry.kind.as_str()))
            .collect::<Vec<_>>(),
        [(1, 300, "start"), (2, 310, "intent"), (3, 320, "outcome")]
    );
    assert_eq!(entries[0].payload_json, r#"{"hosts":2}"#);

    // The old locks are held as before, by a holder that never renews: distinct tokens, and a
    // lease that does not expire by itself.
    let pool_a = store
        .cluster_lock("pool-a")
        .await
        .unwrap()
        .expect("lock kept");
    let pool_c = store
        .cluster_lock("pool-c")
        .await
        .unwrap()
        .expect("lock kept");
    assert_eq!(
        (
            pool_a.run_id.as_str(),
            pool_a.holder.as_str(),
            pool_a.since_ms
        ),
        ("run-live", "4242@old-host", 300)
    );
    assert!(pool_a.lease_live && pool_c.lease_live);
    assert!(pool_a.fencing_token >= 1 && pool_c.fencing_token >= 1);
    assert_ne!(pool_a.fencing_token, pool_c.fencing_token);

    // Writing goes on: the journal's numbering, and tokens above the migrated ones.
    assert_eq!(
        store
            .append("run-live", &new_entry("request", 330, "{}"), None)
            .await
            .unwrap(),
        4
    );
    let taken_over = store
        .break_lease(&pool_a, "5@new-host", std::time::Duration::from_secs(10))
        .await
        .expect("the old holder is known dead");
    assert!(taken_over.fencing_token > pool_a.fencing_token.max(pool_c.fencing_token));
    drop(store);

    // Opening again migrates nothing twice.
    let reopened = leased(&path, &clock);
    assert_eq!(raw_schema_version(&path), "2");
    let lock = reopened.cluster_lock("pool-a").await.unwrap().unwrap();
    assert_eq!(
        (lock.holder.as_str(), lock.fencing_token),
        ("5@new-host", taken_over.fencing_token)
    );
    assert_eq!(reopened.entries("run-live").await.unwrap().len(), 4);
}

#[test]
fn a_migration_that_fails_leaves_the_file_at_version_1() {
    let (_directory, path) = store_path();
    // A version-1 file that already has one of the new columns: the second ALTER fails after
    // the first succeeded, and the whole migration must be undone.
    write_version_1_file(
        &path,
        "ALTER TABLE locks ADD COLUMN lease_expires_at_ms INTEGER NOT NULL DEFAULT 0;",
    );
    let error = Store::open(&path).expect_err("the migration cannot complete");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    assert_eq!(raw_schema_version(&path), "1");
    assert!(
        !lock_columns(&path).contains(&"fencing_token".to_string()),
        "half a migration was kept: {:?}",
        lock_columns(&path)
    );
    let connection = Connection::open(&path).unwrap();
    let token_counter: u64 = connection
        .query_row(
            "SELECT count(*) FROM meta WHERE key <> 'schema_version'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(token_counter, 0);
}

#[test]
fn a_file_of_a_newer_version_is_refused_and_left_byte_for_byte_untouched() {
    let (_directory, path) = store_path();
    {
        let mut store = open(&path);
        store.create_run(&new_run("run-1", "pool-a", 1)).unwrap();
        store
            .append("run-1", &new_entry("intent", 2, "{}"))
            .unwrap();
    }
    let newer_version = SCHEMA_VERSION + 1;
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [newer_version.to_string()],
        )
        .unwrap();
    let bytes_before = fs::read(&path).unwrap();

    let error = SqliteStore::open(&path).expect_err("a newer store is refused");
    assert!(
        matches!(error, StoreError::NewerSchema { found, supported, .. } if found == newer_version && supported == SCHEMA_VERSION),
        "{error:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), bytes_before, "the file changed");
    assert!(!path.with_file_name("drover.db-wal").exists());
    assert!(!path.with_file_name("drover.db-shm").exists());
    assert_eq!(raw_schema_version(&path), newer_version.to_string());
}
