//! Opening a second `Store` on a file must not drop the locks of a `Store` already open on it in
//! the same process (as `drover serve` does for every API read while it drives a run).
//!
//! POSIX drops every lock a process holds on a file when any descriptor of that file is closed.
//! Had the store's preflight opened and closed the database file itself, the long-lived
//! connection's shared lock would be gone; a child process closing its own connection would then
//! believe it was the last one, checkpoint, and delete `-wal` and `-shm` under the live
//! connection, whose next writes fail with "disk I/O error" or vanish. The child here is this
//! test binary re-executed, as in `crash_durability.rs`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{new_entry, new_run, open, store_path};
use drover_store::Store;

/// Set (to the store's path) only in the child process.
const CHILD_STORE_PATH_ENV: &str = "DROVER_STORE_LOCKS_CHILD_STORE_PATH";
const CHILD_TEST_NAME: &str = "locks_child_opens_appends_and_closes";
const RUN_ID: &str = "locked-run";
/// Rounds of "open another handle here, let another process open and close one".
const ROUNDS: u64 = 5;

/// The child's side: one short-lived store, as `drover status` beside a server is.
#[test]
fn locks_child_opens_appends_and_closes() {
    let Some(path) = std::env::var_os(CHILD_STORE_PATH_ENV) else {
        return;
    };
    let mut store = Store::open(Path::new(&path)).expect("child opens the store");
    store
        .append(RUN_ID, &new_entry("request", 1, "{}"))
        .expect("child appends");
    let entries = store.entries(RUN_ID).expect("child reads");
    assert!(!entries.is_empty());
}

fn run_child(path: &Path) {
    let status = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            CHILD_TEST_NAME,
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_STORE_PATH_ENV, path)
        .status()
        .expect("start the child");
    assert!(status.success(), "child failed: {status}");
}

#[test]
fn a_second_handle_in_this_process_keeps_the_first_handles_locks() {
    if std::env::var_os(CHILD_STORE_PATH_ENV).is_some() {
        return;
    }
    let (_directory, path) = store_path();
    let mut long_lived = open(&path);
    long_lived
        .create_run(&new_run(RUN_ID, "pool-a", 1))
        .expect("create the run");
    let wal_path = path.with_file_name("drover.db-wal");
    let shm_path = path.with_file_name("drover.db-shm");
    let mut appended_here = 0;
    for round in 0..ROUNDS {
        // A short-lived second handle in this process, then another process's handle.
        drop(open(&path));
        run_child(&path);
        assert!(
            wal_path.exists() && shm_path.exists(),
            "round {round}: the WAL or shared-memory file was removed under a live connection"
        );
        long_lived
            .append(RUN_ID, &new_entry("intent", 10 + round, "{}"))
            .unwrap_or_else(|error| panic!("round {round}: the live handle broke: {error}"));
        appended_here += 1;
    }
    drop(long_lived);
    let entries = open(&path).entries(RUN_ID).expect("read back");
    let intents = entries
        .iter()
        .filter(|entry| entry.kind == "intent")
        .count();
    let requests = entries
        .iter()
        .filter(|entry| entry.kind == "request")
        .count();
    assert_eq!(
        intents, appended_here,
        "appends of the live handle were lost"
    );
    assert_eq!(requests as u64, ROUNDS, "appends of the children were lost");
}
