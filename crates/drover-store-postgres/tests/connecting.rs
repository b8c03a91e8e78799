//! Connecting to PostgreSQL: schema migrations (applied once under concurrent starts, a newer
//! schema refused with nothing changed, the journal append-only in the database itself), and the
//! bad inputs an operator can give (wrong password, unreachable server, no such database, a
//! password in the URL), each a clear message naming the setting and never the password; and
//! the query timeout, which bounds a write stuck behind another session.
//!
//! Against the real test server (see `common`); these tests must not mock the database.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use drover_store::{NewEntry, NewRun, RunStore, StoreError};
use drover_store_postgres::{PostgresStore, POSTGRES_SCHEMA_VERSION};
use tokio_postgres::NoTls;

fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(work)
}

/// Runs `sql` on `url` directly (with PGPASSWORD), as an operator with psql would.
fn psql(url: &str, sql: &str) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let (url, sql) = (url.to_string(), sql.to_string());
    thread::spawn(move || {
        block_on(async move {
            let mut config: tokio_postgres::Config = url.parse().expect("a URL");
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
            let (client, connection) = config.connect(NoTls).await.expect("connect");
            tokio::spawn(connection);
            client
                .simple_query("SELECT 1")
                .await
                .expect("a live connection");
            client.query(sql.as_str(), &[]).await
        })
    })
    .join()
    .expect("the psql thread")
}

fn new_run(id: &str) -> NewRun {
    NewRun {
        id: id.to_string(),
        cluster: "pool-a".to_string(),
        inventory_sha256: "sha".to_string(),
        inventory_text: "cluster: {name: pool-a}\n".to_string(),
        state: "planned".to_string(),
        created_at_ms: 1,
        options_json: "{}".to_string(),
    }
}

fn entry() -> NewEntry {
    NewEntry {
        at_ms: 1,
        kind: "start".to_string(),
        payload_json: "{}".to_string(),
    }
}

#[test]
fn instances_starting_at_once_migrate_the_schema_exactly_once() {
    let url = common::fresh_database("migrate_once");
    let instances = 4;
    let barrier = Arc::new(Barrier::new(instances));
    let handles: Vec<_> = (0..instances)
        .map(|_| {
            let (url, barrier) = (url.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                PostgresStore::connect(&url).map(|_| ())
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("connect thread").expect("connect");
    }
    let rows = psql(&url, "SELECT value FROM meta WHERE key = 'schema_version'").unwrap();
    let versions: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(versions, [POSTGRES_SCHEMA_VERSION.to_string()]);
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let url = common::fresh_database("newer_schema");
    let store = PostgresStore::connect(&url).expect("create the schema");
    block_on(store.start_run(
        &new_run("run-1"),
        "h",
        std::time::Duration::from_secs(10),
        &entry(),
    ))
    .expect("start a run");
    drop(store);
    let newer = POSTGRES_SCHEMA_VERSION + 1;
    psql(
        &url,
        &format!("UPDATE meta SET value = '{newer}' WHERE key = 'schema_version'"),
    )
    .unwrap();
    let error = PostgresStore::connect(&url).expect_err("a newer schema");
    assert!(
        matches!(error, StoreError::NewerSchema { found, supported, .. } if found == newer && supported == POSTGRES_SCHEMA_VERSION),
        "{error:?}"
    );
    assert!(error.to_string().contains("upgrade drover"), "{error}");
    let rows = psql(&url, "SELECT value FROM meta WHERE key = 'schema_version'").unwrap();
    assert_eq!(rows[0].get::<_, String>(0), newer.to_string());
    let rows = psql(&url, "SELECT count(*) FROM journal").unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 1, "the journal is as it was");
}

#[test]
fn the_database_itself_refuses_to_rewrite_the_journal() {
    let url = common::fresh_database("append_only");
    let store = PostgresStore::connect(&url).expect("connect");
    block_on(store.start_run(
        &new_run("run-1"),
        "h",
        std::time::Duration::from_secs(10),
        &entry(),
    ))
    .expect("start a run");
    for sql in [
        "UPDATE journal SET kind = 'forged'",
        "DELETE FROM journal",
        "TRUNCATE journal CASCADE",
    ] {
        let error = psql(&url, sql).expect_err(sql);
        assert!(
            error.to_string().contains("append-only")
                || format!("{error:?}").contains("append-only"),
            "{sql}: {error:?}"
        );
    }
    assert_eq!(block_on(store.entries("run-1")).unwrap().len(), 1);
}

#[test]
fn a_database_of_another_program_is_refused_and_left_untouched() {
    let url = common::fresh_database("foreign");
    psql(&url, "CREATE TABLE runs (name TEXT)").unwrap();
    let error = PostgresStore::connect(&url).expect_err("a foreign database");
    assert!(error.to_string().contains("another program"), "{error}");
    let rows = psql(&url, "SELECT to_regclass('meta') IS NULL").unwrap();
    assert!(rows[0].get::<_, bool>(0), "nothing was created");
}

#[test]
fn a_wrong_password_is_unauthorized_and_never_shown() {
    let url = common::fresh_database("wrong_password");
    // A role whose password is not PGPASSWORD's: PGPASSWORD is then the wrong password for it.
    let role = format!("drover_other_{}", std::process::id());
    psql(
        &url,
        &format!("CREATE ROLE {role} LOGIN PASSWORD 'only-the-dba-knows-this'"),
    )
    .unwrap();
    let as_role = url.replacen("://drover@", &format!("://{role}@"), 1);
    let error = PostgresStore::connect(&as_role).expect_err("a wrong password");
    let message = error.to_string();
    assert!(
        matches!(error, StoreError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(message.contains("--state"), "{message}");
    assert!(message.contains("PGPASSWORD"), "{message}");
    let password = std::env::var("PGPASSWORD").expect("the test server's password");
    assert!(
        !message.contains(&password),
        "the password leaked: {message}"
    );
    assert!(
        !format!("{error:?}").contains(&password),
        "the password leaked: {error:?}"
    );
}

#[test]
fn an_unreachable_server_or_missing_database_is_reported_with_the_setting() {
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = PostgresStore::connect(&format!("postgres://drover@127.0.0.1:{port}/drover"))
        .expect_err("nothing listens");
    assert!(matches!(error, StoreError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().contains("DROVER_STATE"), "{error}");

    let server = common::server_url();
    let (prefix, _) = server.rsplit_once('/').unwrap();
    let error = PostgresStore::connect(&format!("{prefix}/no_such_database_here"))
        .expect_err("no such database");
    assert!(matches!(error, StoreError::Unreachable { .. }), "{error:?}");
    assert!(
        error.to_string().contains("no_such_database_here"),
        "{error}"
    );
}

#[test]
fn a_password_in_the_url_is_refused_before_connecting() {
    let server = common::server_url();
    let with_password = server.replacen("://drover@", "://drover:hunter2@", 1);
    let error = PostgresStore::connect(&with_password).expect_err("a password in the URL");
    assert!(matches!(error, StoreError::InvalidUrl { .. }), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn a_write_stuck_behind_another_session_gives_up_after_the_query_timeout() {
    use std::time::{Duration, Instant};

    use drover_store_postgres::PostgresOptions;

    let url = common::fresh_database("timeout");
    let options = PostgresOptions {
        query_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect_with(&url, options).expect("connect");
    block_on(store.start_run(&new_run("run-1"), "h", Duration::from_secs(10), &entry()))
        .expect("start a run");

    // Another session holds the run's row (an operator's open transaction, a stuck instance).
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder_url = url.clone();
    let holder = thread::spawn(move || {
        block_on(async move {
            let mut config: tokio_postgres::Config = holder_url.parse().unwrap();
            config.password(std::env::var("PGPASSWORD").unwrap());
            let (mut client, connection) = config.connect(NoTls).await.unwrap();
            tokio::spawn(connection);
            let transaction = client.transaction().await.unwrap();
            transaction
                .execute("SELECT 1 FROM runs WHERE id = 'run-1' FOR UPDATE", &[])
                .await
                .unwrap();
            locked_tx.send(()).unwrap();
            tokio::task::spawn_blocking(move || release_rx.recv())
                .await
                .unwrap()
                .ok();
            transaction.rollback().await.unwrap();
        })
    });
    locked_rx.recv().unwrap();
    let started = Instant::now();
    let error = block_on(store.append(
        "run-1",
        &NewEntry {
            at_ms: 2,
            kind: "intent".to_string(),
            payload_json: "{}".to_string(),
        },
        None,
    ))
    .expect_err("the row is held by another session");
    let waited = started.elapsed();
    assert!(matches!(error, StoreError::TimedOut { .. }), "{error:?}");
    assert!(
        waited >= Duration::from_millis(1_500) && waited < Duration::from_secs(10),
        "waited {waited:?}"
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap();

    // Nothing was written, and the store works again once the row is free.
    assert_eq!(block_on(store.entries("run-1")).unwrap().len(), 1);
    let seq = block_on(store.append("run-1", &entry(), None)).expect("append");
    assert_eq!(seq, 2);
}
