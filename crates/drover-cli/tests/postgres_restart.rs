//! The database restarted under a running `drover run` (issue 14): the engine tries its writes
//! again with capped backoff, the run completes, and the journal is whole: every sequence number
//! from 1 to the last, and no entry written twice.
//!
//! Restarts the test server of `tests/postgres/server.sh` (`DROVER_TEST_POSTGRES_URL`,
//! `PGPASSWORD`), so .ci/run runs this file on its own. Without the feature it holds no test.

#![cfg(feature = "postgres")]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const POOL: &str = r#"
cluster: {name: restart, target_version: "2.0"}
policy: {max_unavailable: 1, upgrade_duration_secs: 1200, reboot_duration_secs: 120}
driver: {kind: simulator, time_scale: 300}
hosts:
  - {name: w1, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: w2, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: w3, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: v1, host: w1, memory_mib: 4096, vcpus: 2}
  - {name: v2, host: w2, memory_mib: 4096, vcpus: 2}
"#;

fn server_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/postgres/server.sh")
}

fn psql(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        output.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn a_run_goes_on_across_a_database_restart_and_loses_no_entry() {
    let server = std::env::var("DROVER_TEST_POSTGRES_URL")
        .expect("DROVER_TEST_POSTGRES_URL (tests/postgres/server.sh url) and PGPASSWORD");
    let database = format!("drover_restart_{}", std::process::id());
    psql(&server, &format!("CREATE DATABASE {database}"));
    let url = format!("{}/{database}", server.rsplit_once('/').unwrap().0);
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(directory.path().join("pool.yaml"), POOL).unwrap();

    let restarter = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(4));
        let status = Command::new(server_script())
            .args(["restart", "2"])
            .status()
            .expect("restart the server");
        assert!(status.success(), "the test server did not restart");
    });
    let run = Command::new(env!("CARGO_BIN_EXE_drover"))
        .current_dir(directory.path())
        .args(["--state", &url, "run", "-i", "pool.yaml", "-o", "json"])
        .env("NO_COLOR", "1")
        .env_remove("DROVER_STATE")
        .output()
        .expect("run drover");
    restarter.join().unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["phase"], "completed");

    let counts = psql(&url, "SELECT count(*) || ' ' || max(seq) FROM journal");
    let (count, last_seq) = counts.split_once(' ').unwrap();
    assert_eq!(count, last_seq, "the journal has a gap: {counts}");
    let written_twice = psql(
        &url,
        "SELECT count(*) FROM (SELECT kind, at_ms, payload_json FROM journal \
         GROUP BY 1, 2, 3 HAVING count(*) > 1) twice",
    );
    assert_eq!(written_twice, "0", "entries written twice");
}
