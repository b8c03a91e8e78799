//! Opening store files: new and empty files, durability settings, and the files that must be
//! refused without being modified (newer schema, garbage, damage, someone else's database).
//!
//! These tests reach into the SQLite file with rusqlite directly, to prepare bad files and to
//! check settings; they must not depend on the store's table layout beyond `meta`.

mod common;

use std::fs;
use std::path::Path;

use common::{new_entry, new_run, open, store_path};
use drover_store::{Store, StoreError, SCHEMA_VERSION};
use rusqlite::Connection;

/// The names in the store's directory, to show a refused open left no side files behind.
fn directory_listing(path: &Path) -> Vec<String> {
    let directory = path.parent().expect("store path has a parent");
    let mut names: Vec<String> = fs::read_dir(directory)
        .expect("list the directory")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Opens `path`, expects a refusal, and checks that the file and its directory are unchanged.
fn refuse_without_modifying(path: &Path) -> StoreError {
    let bytes_before = fs::read(path).expect("read the file before opening");
    let listing_before = directory_listing(path);
    let error = Store::open(path).expect_err("the store must refuse this file");
    assert_eq!(
        fs::read(path).unwrap(),
        bytes_before,
        "file changed by a refused open"
    );
    assert_eq!(
        directory_listing(path),
        listing_before,
        "side files left by a refused open"
    );
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "path missing from: {message}"
    );
    error
}

#[test]
fn a_new_file_is_created_in_wal_mode_with_the_current_schema_version() {
    let (_directory, path) = store_path();
    drop(open(&path));

    let connection = Connection::open(&path).unwrap();
    let journal_mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal_mode, "wal");
    let version: String = connection
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION.to_string());
}

#[test]
fn an_empty_file_opens_as_a_new_store() {
    let (_directory, path) = store_path();
    fs::write(&path, b"").unwrap();
    let mut store = open(&path);
    store.create_run(&new_run("run-1", "pool-a", 1)).unwrap();
    assert_eq!(
        store.append("run-1", &new_entry("input", 1, "{}")).unwrap(),
        1
    );
}

#[test]
fn a_store_from_a_newer_drover_is_refused_and_left_unchanged() {
    let (_directory, path) = store_path();
    {
        let mut store = open(&path);
        store.create_run(&new_run("run-1", "pool-a", 1)).unwrap();
    }
    let newer_version = SCHEMA_VERSION + 1;
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [newer_version.to_string()],
        )
        .unwrap();

    let error = refuse_without_modifying(&path);
    match &error {
        StoreError::NewerSchema {
            found, supported, ..
        } => assert_eq!((*found, *supported), (newer_version, SCHEMA_VERSION)),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("created by a newer drover; upgrade drover"),
        "{message}"
    );
}

#[test]
fn a_file_of_garbage_is_refused_as_corrupt_and_left_unchanged() {
    let (_directory, path) = store_path();
    let garbage: Vec<u8> = (0..8_192u32).map(|index| (index * 7 + 13) as u8).collect();
    fs::write(&path, garbage).unwrap();

    let error = refuse_without_modifying(&path);
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
}

#[test]
fn a_text_file_shorter_than_the_header_is_refused_as_corrupt() {
    let (_directory, path) = store_path();
    fs::write(&path, b"cluster: pool-a\n").unwrap();
    let error = refuse_without_modifying(&path);
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
}

#[test]
fn a_database_with_damaged_pages_is_refused_as_corrupt_and_left_unchanged() {
    let (_directory, path) = store_path();
    {
        let mut store = open(&path);
        store.create_run(&new_run("run-1", "pool-a", 1)).unwrap();
        for step in 0..50 {
            store
                .append("run-1", &new_entry("intent", step, &"x".repeat(500)))
                .unwrap();
        }
    }
    // Keep the 100-byte header intact so only SQLite itself can notice the damage.
    let mut bytes = fs::read(&path).unwrap();
    let damaged_range = 100..bytes.len().min(16_384);
    for byte in &mut bytes[damaged_range] {
        *byte = 0xA5;
    }
    fs::write(&path, bytes).unwrap();

    let error = refuse_without_modifying(&path);
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
}

#[test]
fn another_programs_sqlite_database_is_refused_and_left_unchanged() {
    let (_directory, path) = store_path();
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup');")
        .unwrap();

    let error = refuse_without_modifying(&path);
    assert!(
        matches!(error, StoreError::ForeignDatabase { .. }),
        "{error:?}"
    );
}

#[test]
fn a_path_in_a_missing_directory_fails_naming_the_path() {
    let (_directory, path) = store_path();
    let path = path.parent().unwrap().join("missing").join("drover.db");
    let error = Store::open(&path).unwrap_err();
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[test]
fn the_journal_refuses_updates_and_deletes_even_through_raw_sql() {
    let (_directory, path) = store_path();
    {
        let mut store = open(&path);
        store.create_run(&new_run("run-1", "pool-a", 1)).unwrap();
        store
            .append("run-1", &new_entry("intent", 1, "{}"))
            .unwrap();
    }
    let connection = Connection::open(&path).unwrap();
    let update = connection.execute("UPDATE journal SET payload_json = '[]'", []);
    let delete = connection.execute("DELETE FROM journal", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    drop(connection);
    assert_eq!(open(&path).entries("run-1").unwrap().len(), 1);
}
