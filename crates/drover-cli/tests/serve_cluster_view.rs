//! After a completed run, the cluster view shows the platform as the run left it, not the
//! inventory file: every host at the target, a plan with nothing to do, and a second run that
//! upgrades nothing (the simulated platform persists per cluster in the server, as a real one
//! would). It stays so after a restart of the server.

mod serve_common;

use std::time::Duration;

use serde_json::Value;
use serve_common::*;

const RUN_LIMIT: Duration = Duration::from_secs(60);

fn run_to_completion(server: &Server, run_id: &str) -> Value {
    let (status, created) = post(
        server,
        "/api/v1/clusters/open/runs",
        Some(&format!("{{\"run_id\": \"{run_id}\"}}")),
    );
    assert_eq!(status, 202, "{created}");
    let view = wait_for_run(server, run_id, None, RUN_LIMIT, |view| {
        view["finished"] == true
    });
    assert_eq!(view["phase"], "completed", "{view}");
    // Read at once, while the run's thread closes its state-file connections: that used to
    // answer 500 "disk I/O error" before the store stopped dropping the process's locks.
    view
}

fn assert_every_host_at_the_target(server: &Server) {
    let (status, cluster) = get(server, "/api/v1/clusters/open");
    assert_eq!(status, 200, "{cluster}");
    assert_eq!(
        cluster["hosts_by_version"],
        serde_json::json!({"2.0": 3}),
        "{cluster}"
    );
    for host in cluster["hosts_detail"].as_array().unwrap() {
        assert_eq!(host["version"], "2.0", "{host}");
        assert_eq!(host["state"], "up", "{host}");
    }
    let (status, list) = get(server, "/api/v1/clusters");
    assert_eq!(status, 200);
    assert_eq!(
        list["clusters"][0]["hosts_by_version"],
        serde_json::json!({"2.0": 3})
    );
    let (status, host) = get(server, "/api/v1/clusters/open/hosts/n1");
    assert_eq!(status, 200);
    assert_eq!(host["version"], "2.0", "{host}");
}

fn assert_nothing_to_plan(server: &Server) {
    let (status, plan) = post(server, "/api/v1/clusters/open/plans", None);
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["waves"], serde_json::json!([]), "{plan}");
}

fn upgrade_calls(workspace: &Workspace, run_id: &str) -> usize {
    workspace
        .journal(run_id)
        .iter()
        .filter(|payload| payload.contains("\"upgrade\"") || payload.contains("upgrade-host"))
        .count()
}

#[test]
fn after_a_completed_run_the_cluster_shows_the_platform_and_nothing_is_left_to_do() {
    let workspace = Workspace::new(&[("open.yaml", OPEN_POOL)], "");
    let server = workspace.serve(&[]);
    let (_, before) = get(&server, "/api/v1/clusters/open");
    assert_eq!(before["hosts_by_version"], serde_json::json!({"1.0": 3}));
    run_to_completion(&server, "first");
    assert!(
        upgrade_calls(&workspace, "first") > 0,
        "the first run upgraded nothing"
    );
    assert_every_host_at_the_target(&server);
    assert_nothing_to_plan(&server);

    let second = run_to_completion(&server, "second");
    assert_eq!(second["waves"], serde_json::json!([]), "{second}");
    assert_eq!(
        upgrade_calls(&workspace, "second"),
        0,
        "the second run upgraded again"
    );
    assert_every_host_at_the_target(&server);

    drop(server);
    let restarted = workspace.serve(&[]);
    assert_every_host_at_the_target(&restarted);
    assert_nothing_to_plan(&restarted);
}
