//! The test PostgreSQL: where it is (`DROVER_TEST_POSTGRES_URL`, password in `PGPASSWORD`, as
//! `tests/postgres/server.sh` prints and .ci/run exports), and a fresh database per test so
//! that tests running in parallel never see each other's runs or tokens.
//!
//! Test scaffolding only; it must not hide the behaviour under test.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::NoTls;

const HOW_TO_START: &str = "the PostgreSQL tests need a server: run \
    `tests/postgres/install.sh && tests/postgres/server.sh up` (as root: it runs the server as \
    the postgres user), then `export DROVER_TEST_POSTGRES_URL=$(tests/postgres/server.sh url) \
    PGPASSWORD=$(tests/postgres/server.sh password)` and run `cargo test -p drover-store-postgres` again";

/// The server's URL (without password), or a failure saying how to start one.
pub fn server_url() -> String {
    match std::env::var("DROVER_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("DROVER_TEST_POSTGRES_URL is not set: {HOW_TO_START}"),
    }
}

/// Creates a new, empty database on the test server and returns its URL.
pub fn fresh_database(purpose: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let server = server_url();
    let name = format!(
        "drover_test_{purpose}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base.to_string(), format!("?{query}")),
        None => (server.clone(), String::new()),
    };
    let (prefix, _database) = base.rsplit_once('/').expect("a URL with a database");
    let admin_url = server.clone();
    let statement = format!("CREATE DATABASE {name}");
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async move {
                let mut config: tokio_postgres::Config = admin_url.parse().expect("the server URL");
                if let Ok(password) = std::env::var("PGPASSWORD") {
                    config.password(password);
                }
                let (client, connection) = config.connect(NoTls).await.unwrap_or_else(|error| {
                    panic!("connecting to {admin_url}: {error}; {HOW_TO_START}")
                });
                tokio::spawn(connection);
                client
                    .batch_execute(&statement)
                    .await
                    .unwrap_or_else(|error| panic!("{statement}: {error}"));
            })
    })
    .join()
    .expect("creating the test database");
    format!("{prefix}/{name}{query}")
}
