//! The store conformance suite (`tests/conformance`) on SQLite: every handle a `SqliteStore`
//! on one fresh file, all reading one `ManualClock`, as processes on one machine share the file
//! and the system clock.
//!
//! Test scaffolding only; the cases live in the suite.

#[macro_use]
mod conformance;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drover_store::{LeaseClock, ManualClock, RunStore, SqliteStore, Store};
use tempfile::TempDir;

struct SqliteHarness {
    _directory: TempDir,
    path: PathBuf,
    clock: Arc<ManualClock>,
}

impl SqliteHarness {
    fn new() -> SqliteHarness {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("drover.db");
        SqliteHarness {
            _directory: directory,
            path,
            clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        }
    }
}

impl conformance::Harness for SqliteHarness {
    fn handle(&self) -> Arc<dyn RunStore> {
        let store = Store::open(&self.path).expect("open the store");
        Arc::new(SqliteStore::new(
            store,
            Arc::clone(&self.clock) as Arc<dyn LeaseClock>,
        ))
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

conformance_tests!(SqliteHarness::new());
