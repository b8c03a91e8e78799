//! Two `drover serve` instances sharing one PostgreSQL database (issue 14): when the instance
//! that drives a run is killed, the other takes the run over and completes it; when it is only
//! paused (SIGSTOP) past its lease, the other takes the run over (PostgreSQL ends the paused
//! session's open transaction, `idle_in_transaction_session_timeout`), and the paused instance,
//! once woken, is refused by the store (fenced) and stops driving.
//!
//! Needs the test server of `tests/postgres/server.sh` (`DROVER_TEST_POSTGRES_URL`,
//! `PGPASSWORD`); .ci/run starts it. Without the feature this file holds no test.

#![cfg(feature = "postgres")]

mod serve_common;

use std::process::Command;
use std::time::{Duration, Instant};

use serve_common::failover::*;
use serve_common::*;

/// The store's default query timeout, also the server-side limit of a session left idle in a
/// transaction: a holder paused inside one keeps its row locks that long.
const IDLE_IN_TRANSACTION_SECS: u64 = 10;

fn fresh_database(name: &str) -> String {
    let server = std::env::var("DROVER_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "DROVER_TEST_POSTGRES_URL is not set: run `tests/postgres/install.sh && \
             tests/postgres/server.sh up`, export DROVER_TEST_POSTGRES_URL=$(tests/postgres/server.sh url) \
             and PGPASSWORD=$(tests/postgres/server.sh password)"
        )
    });
    let database = format!("drover_failover_{name}_{}", std::process::id());
    let output = Command::new("psql")
        .arg(&server)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {database}"))
        .output()
        .expect("run psql");
    assert!(
        output.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (prefix, _) = server.rsplit_once('/').expect("a URL with a database");
    format!("{prefix}/{database}")
}

/// `drover --state URL serve` in the workspace's folder (a database has no folder: the
/// simulated platform's file is kept in the current directory, shared by both instances).
fn serve(workspace: &Workspace, url: &str) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drover"));
    command
        .current_dir(workspace.dir.path())
        .args(["--state", url, "serve", "--config"])
        .arg(workspace.path("serve.yaml"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("DROVER_STATE")
        .env_remove("DROVER_SERVE_CONFIG")
        .env_remove("DROVER_LISTEN")
        .env_remove("DROVER_DATA_DIR")
        .env("NO_COLOR", "1");
    Server::start(command, "http")
}

fn workspace() -> Workspace {
    Workspace::new(
        &[("slow.yaml", SLOW_POOL)],
        &format!("lease_ttl_secs: {LEASE_TTL_SECS}\n"),
    )
}

#[test]
fn a_killed_holder_is_taken_over_through_postgresql() {
    let workspace = workspace();
    let url = fresh_database("kill");
    let mut first = serve(&workspace, &url);
    let second = serve(&workspace, &url);
    start_mid_run(&first, &second);
    first.child.kill().expect("kill -9");
    first.child.wait().unwrap();
    let took = wait_until_driven_by(&second, Duration::from_secs(LEASE_TTL_SECS + 5));
    eprintln!("postgres: taken over {took:?} after kill -9");
    assert_completed(&second);
    assert_invariants_kept(workspace.dir.path(), SLOW_POOL);
}

#[test]
fn a_paused_holder_is_fenced_when_it_wakes() {
    let workspace = workspace();
    let url = fresh_database("pause");
    let first = serve(&workspace, &url);
    let second = serve(&workspace, &url);
    start_mid_run(&first, &second);
    let pid = first.child.id().to_string();
    let signal = |name: &str| {
        let status = Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    };
    signal("-STOP");
    let limit = Duration::from_secs(LEASE_TTL_SECS + IDLE_IN_TRANSACTION_SECS + 5);
    let took = wait_until_driven_by(&second, limit);
    eprintln!("postgres: taken over {took:?} after SIGSTOP");
    signal("-CONT");
    let started = Instant::now();
    while !first
        .log()
        .contains("another drover process took this run over")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the woken holder was not fenced:\n{}",
            first.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_completed(&second);
    assert_invariants_kept(workspace.dir.path(), SLOW_POOL);
}
