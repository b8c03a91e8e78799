//! kill -9 of `drover serve` in the middle of a run, then a new server on the same state file:
//! it resumes the run from the journal (the engine's one start/resume path) and completes it.

mod serve_common;

use std::time::Duration;

use serve_common::*;

/// Slower than the API tests' pools so that the kill lands mid-run.
const SLOW_POOL: &str = r#"
cluster: {name: slow, target_version: "2.0"}
policy: {max_unavailable: 1, upgrade_duration_secs: 1200, reboot_duration_secs: 120}
driver: {kind: simulator, time_scale: 1000}
hosts:
  - {name: w1, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: w2, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: w3, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: w4, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: v1, host: w1, memory_mib: 4096, vcpus: 2}
  - {name: v2, host: w2, memory_mib: 4096, vcpus: 2}
  - {name: v3, host: w3, memory_mib: 4096, vcpus: 2, local_storage: true}
"#;

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
