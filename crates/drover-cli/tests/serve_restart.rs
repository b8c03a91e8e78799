//! kill -9 of `drover serve` in the middle of a run, then a new server on the same state file:
//! it resumes the run from the journal (the engine's one start/resume path) and completes it.

mod serve_common;

use std::time::Duration;

use serve_common::failover::SLOW_POOL;
use serve_common::*;

#[test]
fn a_killed_server_resumes_its_run_on_restart() {
    let workspace = Workspace::new(&[("slow.yaml", SLOW_POOL)], "");
    let mut first = workspace.serve(&[]);
    let (status, created) = post(
        &first,
        "/api/v1/clusters/slow/runs",
        Some(r#"{"run_id": "k"}"#),
    );
    assert_eq!(status, 202, "{created}");
    // Kill once some host is in the middle of its steps and the run is not over.
    let mid_run = wait_for_run(&first, "k", None, Duration::from_secs(60), |view| {
        view["hosts_finished"].as_u64().is_some_and(|n| n >= 1)
            && view["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| !matches!(h["step"].as_str(), Some("waiting" | "done")))
    });
    assert_eq!(mid_run["phase"], "running");
    first.child.kill().expect("kill -9");
    first.child.wait().unwrap();

    let second = workspace.serve(&[]);
    let done = wait_for_run(
        &second,
        "k",
        None,
        Duration::from_secs(90),
        phase_is("completed"),
    );
    assert_eq!(done["hosts_finished"], 4);
    assert!(done["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["step"] == "done" && h["version"] == "2.0"));
    assert!(second.log().contains("resumed run k"), "{}", second.log());
    let (_, report) = get(&second, "/api/v1/runs/k/report");
    assert_eq!(report["phase"], "completed");
    assert_eq!(report["restore_errors"], serde_json::json!([]));
    // Both processes' work is in one journal: the run started in the first and ended in the
    // second, with the timeline spanning both.
    assert!(done["timeline"]
        .as_array()
        .is_some_and(|t| t.len() >= 4 * 5));
}
