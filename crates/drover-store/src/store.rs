//! The `Store` handle: opening a database file (or an in-memory one for tests) with the
//! durability settings every connection needs.
//!
//! Runs, the journal, locks and leases add their methods to `Store` in their own modules. This
//! module must not know table layouts (`schema`) or what any stored value means.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Location, SqliteContext, StoreError};
use crate::{preflight, schema};

/// How long a statement waits for another connection's write lock before failing with
/// `StoreError::Busy`: far longer than any append transaction of another drover process, short
/// enough that a stuck process is reported instead of hanging the caller.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open drover store: one SQLite connection. Two `Store`s (in one process or two) may share a
/// file; SQLite serializes their writes.
#[derive(Debug)]
pub struct Store {
    pub(crate) connection: Connection,
    pub(crate) location: Location,
}

impl Store {
    /// Opens the store at `path`, creating the file and schema if it is new or empty. An existing
    /// file is inspected before anything is written and left untouched if it is corrupt, not a
    /// drover store, or from a newer drover.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with_busy_timeout(path, BUSY_TIMEOUT)
    }

    pub(crate) fn open_with_busy_timeout(
        path: &Path,
        busy_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let location = Location {
            path: path.to_path_buf(),
            busy_timeout,
        };
        let has_existing_content = preflight::has_existing_content(&location)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)
            .during(&location, || "opening for writing".to_string())?;
        connection
            .busy_timeout(busy_timeout)
            .during(&location, || "setting the busy timeout".to_string())?;
        if has_existing_content {
            preflight::inspect(&connection, &location)?;
        }
        // WAL before the first write, so even the schema's creation is crash-safe and readers
        // (another drover showing status) never block the writer.
        enable_write_ahead_log(&connection, &location)?;
        Store::finish_open(connection, location)
    }

    /// Opens a private, non-durable store in memory, for tests.
    /// Trades power-loss durability for speed: commits survive a killed process (WAL), but the
    /// last ones may be lost if the machine itself crashes. Meant for simulated runs in virtual
    /// time, where thousands of journal writes happen in a second and there is no real platform
    /// to stay consistent with.
    pub fn relax_durability(&mut self) -> Result<(), StoreError> {
        self.connection
            .pragma_update(None, "synchronous", "NORMAL")
            .during(&self.location, || "setting synchronous=NORMAL".to_string())
    }

    pub fn open_in_memory() -> Result<Store, StoreError> {
        let location = Location {
            path: PathBuf::from(":memory:"),
            busy_timeout: BUSY_TIMEOUT,
        };
        let connection =
            Connection::open_in_memory().during(&location, || "opening in memory".to_string())?;
        Store::finish_open(connection, location)
    }

    fn finish_open(mut connection: Connection, location: Location) -> Result<Store, StoreError> {
        enable_integrity_settings(&connection, &location)?;
        schema::initialize(&mut connection, &location)?;
        Ok(Store {
            connection,
            location,
        })
    }
}

/// WAL mode is a property of the file; SQLite can refuse it (e.g. on filesystems without shared
/// memory), and a store without it must not pretend to be durable.
fn enable_write_ahead_log(connection: &Connection, location: &Location) -> Result<(), StoreError> {
    let journal_mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .during(location, || "switching to WAL mode".to_string())?;
    if journal_mode.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    Err(StoreError::WalUnavailable {
        path: location.path(),
        journal_mode,
    })
}

/// Per-connection settings, lost when a connection closes, so set on every open.
fn enable_integrity_settings(
    connection: &Connection,
    location: &Location,
) -> Result<(), StoreError> {
    // FULL syncs the WAL on every commit: a returned `append` survives an OS crash, not only a
    // killed process (NORMAL, WAL's usual setting, may lose the last commits on power loss).
    connection
        .pragma_update(None, "synchronous", "FULL")
        .during(location, || "setting synchronous=FULL".to_string())?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .during(location, || "enabling foreign keys".to_string())
}

#[cfg(test)]
mod tests {
    //! Waiting for other writers: bounded, and long enough to ride out short transactions. These
    //! need a short busy timeout, which only the crate itself can set.

    use std::sync::mpsc;
    use std::thread;
    use std::time::Instant;

    use super::*;
    use crate::records::{NewEntry, NewRun};

    fn sample_run() -> NewRun {
        NewRun {
            id: "run-1".to_string(),
            cluster: "pool-a".to_string(),
            inventory_sha256: "0".repeat(64),
            inventory_text: String::new(),
            state: "running".to_string(),
            created_at_ms: 1,
            options_json: "{}".to_string(),
        }
    }

    fn sample_entry() -> NewEntry {
        NewEntry {
            at_ms: 2,
            kind: "intent".to_string(),
            payload_json: "{}".to_string(),
        }
    }

    /// Holds the file's write lock from another connection, as another drover process would.
    fn hold_write_lock(path: &Path) -> Connection {
        let blocker = Connection::open(path).expect("open a second connection");
        blocker
            .execute_batch("BEGIN IMMEDIATE")
            .expect("take the write lock");
        blocker
    }

    #[test]
    fn a_store_can_move_to_another_thread() {
        // The engine may hand its store to a blocking worker thread.
        fn assert_send<T: Send>() {}
        assert_send::<Store>();
    }

    #[test]
    fn append_gives_up_with_busy_after_the_timeout_and_consumes_no_seq() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("drover.db");
        let busy_timeout = Duration::from_millis(200);
        let mut store = Store::open_with_busy_timeout(&path, busy_timeout).expect("open");
        store.create_run(&sample_run()).expect("create run");

        let blocker = hold_write_lock(&path);
        let started = Instant::now();
        let error = store
            .append("run-1", &sample_entry())
            .expect_err("a held write lock must make append fail");
        let waited = started.elapsed();
        assert!(
            matches!(&error, StoreError::Busy { waited_ms: 200, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("run-1"), "{error}");
        assert!(
            waited >= Duration::from_millis(150) && waited < BUSY_TIMEOUT,
            "waited {waited:?}"
        );

        blocker.execute_batch("ROLLBACK").expect("release the lock");
        assert_eq!(store.append("run-1", &sample_entry()).expect("append"), 1);
    }

    #[test]
    fn append_waits_out_another_writers_short_transaction() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("drover.db");
        let mut store = Store::open(&path).expect("open");
        store.create_run(&sample_run()).expect("create run");

        let (locked_sender, locked_receiver) = mpsc::channel();
        let blocker_path = path.clone();
        let blocker = thread::spawn(move || {
            let connection = hold_write_lock(&blocker_path);
            locked_sender.send(()).expect("signal the lock");
            thread::sleep(Duration::from_millis(300));
            connection
                .execute_batch("COMMIT")
                .expect("release the lock");
        });
        locked_receiver.recv().expect("wait for the lock");

        let started = Instant::now();
        assert_eq!(store.append("run-1", &sample_entry()).expect("append"), 1);
        assert!(started.elapsed() >= Duration::from_millis(200));
        blocker.join().expect("blocker thread");
    }
}
