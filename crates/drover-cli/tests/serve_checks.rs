//! Update checks in `drover serve`: the periodic check gives hosts `updates_available`, and a
//! cluster with `approval_strategy: manual` whose catalog channel offers a newer release gets a
//! run to it that waits for approval (OLM's manual install plan approval); approved, it upgrades
//! every host to the new release.

mod serve_common;

use std::time::{Duration, Instant};

use serve_common::{get, phase_is, post, wait_for_run, Workspace};

const RUN_LIMIT: Duration = Duration::from_secs(60);

const CATALOG: &str = r#"catalog: 1
product: example-hypervisor
channels: [stable]
releases:
  - {version: "4.14.9", channels: [stable], compatibility_levels: ["4.14"]}
  - {version: "4.15.1", channels: [stable], upgrade_from: ["4.14.*"], requires_control_plane: "5.3", compatibility_levels: ["4.14", "4.15"]}
"#;

const POOL: &str = r#"cluster: {name: eus, target_version: "4.14.9"}
policy: {max_unavailable: 1}
upgrade: {catalog: releases.yaml, channel: stable, control_plane_version: "5.3"}
hosts:
  - {name: k1, version: "4.14.9", memory_mib: 16384, cpus: 8}
  - {name: k2, version: "4.14.9", memory_mib: 16384, cpus: 8}
  - {name: k3, version: "4.14.9", memory_mib: 16384, cpus: 8}
vms:
  - {name: a, host: k1, memory_mib: 2048}
  - {name: b, host: k2, memory_mib: 2048}
driver: {kind: simulator, time_scale: 600}
"#;

#[test]
fn a_newer_release_in_the_channel_creates_a_run_that_waits_for_approval() {
    let config = "check_interval_hours: 1\n";
    let workspace = Workspace::new(&[("eus.yaml", POOL)], config);
    std::fs::write(workspace.path("releases.yaml"), CATALOG).unwrap();
    std::fs::write(
        workspace.path("serve.yaml"),
        "clusters:\n  - {inventory: eus.yaml, approval_strategy: manual}\ncheck_interval_hours: 1\n",
    )
    .unwrap();
    let server = workspace.serve(&[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let check = loop {
        let (status, check) = get(&server, "/api/v1/clusters/eus/checks");
        if status == 200 && check["run_started"].is_string() {
            break check;
        }
        assert!(
            Instant::now() < deadline,
            "no check with a run: {check}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        check["check"]["newer_release_available"], "4.15.1",
        "{check}"
    );
    let (_, host) = get(&server, "/api/v1/clusters/eus/hosts/k1");
    assert_eq!(
        host["updates_available"], false,
        "checked, nothing to update at 4.14.9: {host}"
    );
    let run_id = check["run_started"].as_str().unwrap().to_string();
    let waiting = wait_for_run(
        &server,
        &run_id,
        None,
        RUN_LIMIT,
        phase_is("awaiting-approval"),
    );
    assert_eq!(waiting["target_version"], "4.15.1", "{waiting}");
    let (status, answer) = post(&server, &format!("/api/v1/runs/{run_id}/approve"), None);
    assert_eq!(status, 202, "{answer}");
    let done = wait_for_run(&server, &run_id, None, RUN_LIMIT, phase_is("completed"));
    for host in done["hosts"].as_array().unwrap() {
        assert_eq!(host["version"], "4.15.1", "{done}");
    }
    // Checked again: 4.15.1 already had its run, so no second one is created.
    let (status, again) = post(&server, "/api/v1/clusters/eus/checks", None);
    assert_eq!(status, 200, "{again}");
    assert!(again.get("run_started").is_none(), "{again}");
    let (_, runs) = get(&server, "/api/v1/runs");
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
}

#[test]
fn a_check_on_request_without_a_strategy_starts_nothing() {
    let workspace = Workspace::new(&[("eus.yaml", POOL)], "");
    std::fs::write(workspace.path("releases.yaml"), CATALOG).unwrap();
    let server = workspace.serve(&[]);
    let (status, problem) = get(&server, "/api/v1/clusters/eus/checks");
    assert_eq!(status, 404, "not checked yet: {problem}");
    let (_, host) = get(&server, "/api/v1/clusters/eus/hosts/k1");
    assert!(host["updates_available"].is_null(), "{host}");
    let (status, check) = post(&server, "/api/v1/clusters/eus/checks", None);
    assert_eq!(status, 200, "{check}");
    assert_eq!(check["check"]["newer_release_available"], "4.15.1");
    assert!(check.get("run_started").is_none(), "{check}");
    let (_, runs) = get(&server, "/api/v1/runs");
    assert!(runs["runs"].as_array().unwrap().is_empty(), "{runs}");
}
