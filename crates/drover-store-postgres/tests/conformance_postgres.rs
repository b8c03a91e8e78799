//! The store conformance suite (drover-store's `tests/conformance`) on PostgreSQL, unchanged:
//! every handle a `PostgresStore` (its own pool and runtime, as another process would have) on
//! one fresh database, all sharing one lease clock offset, which stands in for the passing of
//! time on the database's clock so that no test sleeps.
//!
//! Test scaffolding only; the cases live in the suite.

#[macro_use]
#[path = "../../drover-store/tests/conformance/mod.rs"]
mod conformance;
mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use drover_store::RunStore;
use drover_store_postgres::{PostgresOptions, PostgresStore};

struct PostgresHarness {
    url: String,
    lease_clock_offset_ms: Arc<AtomicI64>,
}

impl PostgresHarness {
    fn new() -> PostgresHarness {
        PostgresHarness {
            url: common::fresh_database("conformance"),
            lease_clock_offset_ms: Arc::new(AtomicI64::new(0)),
        }
    }
}

impl conformance::Harness for PostgresHarness {
    fn handle(&self) -> Arc<dyn RunStore> {
        let options = PostgresOptions {
            pool_size: 2,
            lease_clock_offset_ms: Arc::clone(&self.lease_clock_offset_ms),
            ..PostgresOptions::default()
        };
        Arc::new(
            PostgresStore::connect_with(&self.url, options).expect("connect to the test database"),
        )
    }

    fn advance(&self, by: Duration) {
        let by_ms = i64::try_from(by.as_millis()).expect("a test-sized duration");
        self.lease_clock_offset_ms
            .fetch_add(by_ms, Ordering::Relaxed);
    }
}

conformance_tests!(PostgresHarness::new());
