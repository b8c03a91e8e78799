//! `drover --state postgres://…` through the real binary (built with `--features postgres`):
//! a simulated run recorded in a real PostgreSQL database, then `status`, `history` and `report`
//! read back from it; and the bad inputs (a password in the URL, a wrong password, an unreachable
//! server) each refused with exit 2 and a message naming `--state`, nothing written.
//!
//! Needs the test server of `tests/postgres/server.sh` (`DROVER_TEST_POSTGRES_URL`,
//! `PGPASSWORD`); .ci/run starts it. Without the feature this file holds no test.

#![cfg(feature = "postgres")]

use std::process::{Command, Output};

mod cli_common;

use cli_common::{stderr, testdata};

fn server_url() -> String {
    std::env::var("DROVER_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "DROVER_TEST_POSTGRES_URL is not set: run `tests/postgres/install.sh && \
             tests/postgres/server.sh up`, export DROVER_TEST_POSTGRES_URL=$(tests/postgres/server.sh url) \
             and PGPASSWORD=$(tests/postgres/server.sh password), then run this test again"
        )
    })
}

/// A new database on the test server (through psql, as an operator would make one).
fn fresh_database(name: &str) -> String {
    let server = server_url();
    let database = format!("drover_cli_{name}_{}", std::process::id());
    let output = Command::new("psql")
        .arg(&server)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {database}"))
        .output()
        .expect("run psql");
    assert!(output.status.success(), "psql: {}", stderr(&output));
    let (prefix, _) = server.rsplit_once('/').expect("a URL with a database");
    format!("{prefix}/{database}")
}

/// Runs drover in this test binary's own temporary directory: a database has no folder, so files
/// kept beside the store (the simulated platform's state) go to the current directory.
fn drover(state: &str, args: &[&str]) -> Output {
    static DIRECTORY: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let directory = DIRECTORY.get_or_init(|| tempfile::tempdir().expect("a temporary directory"));
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .current_dir(directory.path())
        .arg("--state")
        .arg(state)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DROVER_STATE")
        .output()
        .expect("run drover")
}

fn json(state: &str, args: &[&str]) -> serde_json::Value {
    let output = drover(state, args);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{args:?}: {error}: {}", stderr(&output)))
}

#[test]
fn a_simulated_run_is_recorded_in_postgres_and_read_back() {
    let state = fresh_database("run");
    let output = drover(
        &state,
        &["run", "-i", &testdata("runs/small-pool.yaml"), "-o", "json"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["phase"], "completed");
    assert_eq!(report["hosts"].as_array().unwrap().len(), 5);

    let status = json(&state, &["status", "-o", "json"]);
    assert_eq!(status["phase"], "completed");
    let history = json(&state, &["history", "-o", "json"]);
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["state"], "completed");
    let reread = json(&state, &["report", "-o", "json"]);
    assert_eq!(reread["phase"], "completed");
    assert_eq!(reread["hosts"], report["hosts"]);
}

#[test]
fn bad_postgres_state_values_exit_2_naming_the_setting() {
    let server = server_url();
    let (prefix, _) = server.rsplit_once('/').unwrap();
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        (
            server.replacen("://drover@", "://drover:hunter2@", 1),
            "PGPASSWORD",
        ),
        (
            format!("postgres://drover@127.0.0.1:{free_port}/drover"),
            "unreachable",
        ),
        (format!("{prefix}/no_such_database_here"), "unreachable"),
        ("postgres://no-user-here".to_string(), "--state"),
    ];
    for (state, expected) in cases {
        let output = drover(&state, &["history", "-o", "json"]);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{state}: {message}");
        assert!(message.contains("--state"), "{state}: {message}");
        assert!(message.contains(expected), "{state}: {message}");
        assert!(
            !message.contains("hunter2"),
            "the password leaked: {message}"
        );
    }
    // A wrong password: PGPASSWORD overridden for this process only.
    let output = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("--state")
        .arg(&server)
        .args(["history", "-o", "json"])
        .env("PGPASSWORD", "not-the-password-xyzzy")
        .env_remove("DROVER_STATE")
        .output()
        .unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(!message.contains("xyzzy"), "the password leaked: {message}");
}

#[test]
fn state_migrate_copies_an_sqlite_file_into_postgresql() {
    let sqlite = tempfile::tempdir().unwrap();
    let sqlite_state = sqlite.path().join("state.db");
    let sqlite_state = sqlite_state.to_str().unwrap();
    let run = drover(
        sqlite_state,
        &["run", "-i", &testdata("runs/small-pool.yaml"), "-o", "json"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let url = fresh_database("migrate");
    let migrate = drover(
        sqlite_state,
        &["state", "migrate", "--from", sqlite_state, "--to", &url],
    );
    assert_eq!(migrate.status.code(), Some(0), "{}", stderr(&migrate));
    for args in [vec!["history", "-o", "json"], vec!["report", "-o", "json"]] {
        assert_eq!(
            json(sqlite_state, &args),
            json(&url, &args),
            "{args:?} differs after the migration"
        );
    }
    let again = drover(
        sqlite_state,
        &["state", "migrate", "--from", sqlite_state, "--to", &url],
    );
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
}
