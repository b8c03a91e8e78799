//! Several processes on one state file, as operators use them: `drover status` beside a
//! `drover serve` that drives a run, and two servers on one file asked to start the same run.
//! Every API read must answer, and one run must be driven by exactly one process.

mod serve_common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serve_common::*;

/// Long enough in wall time (~10 s) for many reads and CLI calls to land mid-run.
const BUSY_POOL: &str = r#"
cluster: {name: busy, target_version: "2.0"}
policy: {max_unavailable: 1, upgrade_duration_secs: 1800, reboot_duration_secs: 300}
driver: {kind: simulator, time_scale: 600}
hosts:
  - {name: b1, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: b2, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: b3, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: b4, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: v1, host: b1, memory_mib: 4096, vcpus: 2}
  - {name: v2, host: b2, memory_mib: 4096, vcpus: 2}
  - {name: v3, host: b3, memory_mib: 4096, vcpus: 2}
"#;

/// Reads the run's view until it finishes, running `drover status` beside every few reads;
/// returns (reads, failed reads, status calls, failed status calls, final view).
fn read_until_finished(
    workspace: &Workspace,
    server: &Server,
    run_id: &str,
) -> (usize, Vec<u16>, usize, Vec<String>, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut reads, mut failed_reads) = (0, Vec::new());
    let (mut status_calls, mut failed_status) = (0, Vec::new());
    let mut status_child = None;
    loop {
        // The list opens the state file for every request (the run's own view is served from
        // memory while it is driven here), which is what used to drop the run's locks.
        let (list_code, _) = get(server, "/api/v1/runs");
        let (code, view) = get(server, &format!("/api/v1/runs/{run_id}"));
        reads += 2;
        failed_reads.extend([list_code, code].into_iter().filter(|code| *code != 200));
        if status_child.is_none() {
            status_child = Some(
                workspace
                    .command()
                    .args(["status", run_id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("drover status"),
            );
        }
        if let Some(output) = status_child
            .take_if(|child| child.try_wait().ok().flatten().is_some())
            .map(|child| child.wait_with_output().expect("status output"))
        {
            status_calls += 1;
            if !output.status.success() {
                failed_status.push(String::from_utf8_lossy(&output.stderr).into_owned());
            }
        }
        if code == 200 && matches!(view["phase"].as_str(), Some("completed" | "aborted")) {
            return (reads, failed_reads, status_calls, failed_status, view);
        }
        assert!(Instant::now() < deadline, "run did not finish: {view}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn status_beside_a_driving_server_breaks_no_read() {
    let workspace = Workspace::new(&[("busy.yaml", BUSY_POOL)], "");
    let server = workspace.serve(&[]);
    let (code, created) = post(
        &server,
        "/api/v1/clusters/busy/runs",
        Some(r#"{"run_id": "r1"}"#),
    );
    assert_eq!(code, 202, "{created}");
    let (reads, failed_reads, status_calls, failed_status, view) =
        read_until_finished(&workspace, &server, "r1");
    eprintln!(
        "{reads} API reads ({} failed), {status_calls} drover status calls ({} failed)",
        failed_reads.len(),
        failed_status.len()
    );
    assert!(status_calls >= 5, "only {status_calls} status calls landed");
    assert_eq!(failed_reads, Vec::<u16>::new(), "{}", server.log());
    assert_eq!(failed_status, Vec::<String>::new());
    assert_eq!(view["phase"], "completed", "{view}");
    assert!(!server.log().contains("disk I/O error"), "{}", server.log());
}

#[test]
fn two_servers_asked_to_start_one_run_start_it_once() {
    let workspace = Workspace::new(&[("busy.yaml", BUSY_POOL)], "");
    let first = workspace.serve(&[]);
    let second = workspace.serve(&[]);
    let body = Some(r#"{"run_id": "same"}"#);
    let (first_answer, second_answer) = std::thread::scope(|scope| {
        let a = scope.spawn(|| post(&first, "/api/v1/clusters/busy/runs", body));
        let b = scope.spawn(|| post(&second, "/api/v1/clusters/busy/runs", body));
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut codes = [first_answer.0, second_answer.0];
    codes.sort();
    assert_eq!(
        codes,
        [202, 409],
        "{first_answer:?} {second_answer:?}\nfirst:\n{}\nsecond:\n{}",
        first.log(),
        second.log()
    );
    let driver = if first_answer.0 == 202 {
        &first
    } else {
        &second
    };
    let done = wait_for_run(
        driver,
        "same",
        None,
        Duration::from_secs(120),
        phase_is("completed"),
    );
    assert_eq!(done["hosts_finished"], 4);
    // One start entry, and every intent written once: no second engine drove the run.
    let connection = rusqlite::Connection::open(workspace.state()).expect("open state");
    let starts: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM journal WHERE run_id = 'same' AND kind = 'start'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(starts, 1);
    let (intents, distinct_intents): (i64, i64) = connection
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT payload_json) FROM journal \
             WHERE run_id = 'same' AND kind = 'intent'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(intents, distinct_intents, "an intent was written twice");
    let (code, _) = get(
        if first_answer.0 == 202 {
            &second
        } else {
            &first
        },
        "/api/v1/runs/same",
    );
    assert_eq!(code, 200, "the other server reads the run");
}
