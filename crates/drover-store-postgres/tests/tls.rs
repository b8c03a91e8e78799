//! TLS to the real test server (`tests/postgres/server.sh` offers TLS with a certificate for
//! `localhost` only, signed by its own CA; role `drover_tls` may log in over TLS only): each
//! `sslmode` connects the way libpq's does, the server itself says whether Drover's sessions are
//! encrypted (`pg_stat_ssl`), and every refusal names the setting to correct.

mod common;

use std::process::Command;

use std::time::Duration;

use drover_store::{NewEntry, NewRun, RunStore, StoreError};
use drover_store_postgres::PostgresStore;
use tokio_postgres::NoTls;

fn server_script(argument: &str) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/postgres/server.sh"
    );
    let output = Command::new("bash")
        .args([script, argument])
        .output()
        .expect("run tests/postgres/server.sh");
    assert!(output.status.success(), "server.sh {argument}: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// `url` (a fresh database) with its host replaced and `query` appended.
fn with(url: &str, host: &str, user: &str, query: &str) -> String {
    let (_, rest) = url.split_once('@').expect("user@host");
    let (_, path) = rest.split_once(':').expect("host:port");
    format!("postgres://{user}@{host}:{path}?{query}")
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

fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(work)
}

/// Whether every session of the store (application `drover`) on `database` is encrypted, as
/// the server sees it; asked over a separate plain connection.
fn drover_sessions_encrypted(server_url: &str, database: &str) -> Vec<bool> {
    let (server_url, database) = (server_url.to_string(), database.to_string());
    std::thread::spawn(move || {
        block_on(async move {
            let mut config: tokio_postgres::Config = server_url.parse().expect("a URL");
            config.password(std::env::var("PGPASSWORD").unwrap_or_default());
            let (client, connection) = config.connect(NoTls).await.expect("connect");
            tokio::spawn(connection);
            client
                .query(
                    "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                     WHERE a.datname = $1 AND a.application_name = 'drover'",
                    &[&database],
                )
                .await
                .expect("pg_stat_ssl")
                .iter()
                .map(|row| row.get::<_, bool>(0))
                .collect()
        })
    })
    .join()
    .unwrap()
}

fn database_of(url: &str) -> String {
    let base = url.split('?').next().unwrap();
    base.rsplit('/').next().unwrap().to_string()
}

/// Connects and writes a run, so at least one pooled session exists.
fn connect_and_write(url: &str) -> Result<PostgresStore, StoreError> {
    let store = PostgresStore::connect(url)?;
    let first_entry = NewEntry {
        at_ms: 1,
        kind: "start".to_string(),
        payload_json: "{}".to_string(),
    };
    block_on(store.start_run(&new_run("r1"), "h", Duration::from_secs(10), &first_entry))?;
    Ok(store)
}

#[test]
fn verify_full_with_the_ca_connects_encrypted_to_the_name_on_the_certificate() {
    let fresh = common::fresh_database("tls_full");
    let ca = server_script("ca");
    let url = with(
        &fresh,
        "localhost",
        "drover",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let store = connect_and_write(&url).expect("verify-full against the test CA");
    let encrypted = drover_sessions_encrypted(&common::server_url(), &database_of(&fresh));
    assert!(
        !encrypted.is_empty() && encrypted.iter().all(|&ssl| ssl),
        "{encrypted:?}"
    );
    drop(store);
}

#[test]
fn verify_full_refuses_a_host_name_the_certificate_does_not_carry_and_verify_ca_accepts_it() {
    let fresh = common::fresh_database("tls_name");
    let ca = server_script("ca");
    let full = with(
        &fresh,
        "127.0.0.1",
        "drover",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let error = PostgresStore::connect(&full).expect_err("127.0.0.1 is not on the certificate");
    assert!(matches!(error, StoreError::TlsRefused { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("sslrootcert"), "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");
    let chain_only = with(
        &fresh,
        "127.0.0.1",
        "drover",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    );
    connect_and_write(&chain_only).expect("verify-ca checks the chain, not the name");
}

#[test]
fn a_certificate_signed_by_another_ca_is_refused_and_nothing_is_written() {
    let fresh = common::fresh_database("tls_other_ca");
    let other = server_script("other-ca");
    let url = with(
        &fresh,
        "localhost",
        "drover",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    );
    let error = PostgresStore::connect(&url).expect_err("an untrusted CA");
    assert!(matches!(error, StoreError::TlsRefused { .. }), "{error:?}");
    assert!(
        !error.is_transient(),
        "a setting to correct, not a fault to retry"
    );
    // Nothing was created: the schema was never applied.
    let tables = std::thread::spawn(move || {
        block_on(async move {
            let mut config: tokio_postgres::Config = fresh.parse().unwrap();
            config.password(std::env::var("PGPASSWORD").unwrap_or_default());
            let (client, connection) = config.connect(NoTls).await.unwrap();
            tokio::spawn(connection);
            client
                .query(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                    &[],
                )
                .await
                .unwrap()[0]
                .get::<_, i64>(0)
        })
    })
    .join()
    .unwrap();
    assert_eq!(tables, 0);
}

#[test]
fn disable_is_plain_and_prefer_is_encrypted_when_the_server_offers_it() {
    let plain = common::fresh_database("tls_disable");
    let url = with(&plain, "127.0.0.1", "drover", "sslmode=disable");
    let _plain_store = connect_and_write(&url).expect("sslmode=disable");
    let sessions = drover_sessions_encrypted(&common::server_url(), &database_of(&plain));
    assert!(
        !sessions.is_empty() && sessions.iter().all(|&ssl| !ssl),
        "{sessions:?}"
    );

    let preferred = common::fresh_database("tls_prefer");
    let url = with(
        &preferred,
        "127.0.0.1",
        "drover",
        "application_name=ignored",
    );
    let _preferred_store = connect_and_write(&url).expect("libpq's default, prefer");
    let sessions = drover_sessions_encrypted(&common::server_url(), &database_of(&preferred));
    assert!(
        !sessions.is_empty() && sessions.iter().all(|&ssl| ssl),
        "{sessions:?}"
    );
}

#[test]
fn a_role_the_server_admits_over_tls_only_connects_with_require_and_not_without_tls() {
    let fresh = common::fresh_database("tls_only_role");
    let required = with(&fresh, "127.0.0.1", "drover_tls", "sslmode=require");
    connect_and_write(&required).expect("drover_tls over TLS");
    let plain = with(&fresh, "127.0.0.1", "drover_tls", "sslmode=disable");
    let error = PostgresStore::connect(&plain).expect_err("drover_tls without TLS");
    let message = error.to_string();
    assert!(message.contains("no encryption"), "{message}");
    let password = std::env::var("PGPASSWORD").unwrap_or_default();
    assert!(
        password.is_empty() || !message.contains(&password),
        "{message}"
    );
}
