//! `drover serve` end to end: the real binary on 127.0.0.1, the simulator behind it on a fast
//! wall clock, HTTP in front. Clusters and plans, runs and every operator action (with every
//! refusal), the single-host upgrade, the event stream, metrics, authentication and roles, and
//! configurations refused before anything starts.

mod serve_common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde_json::Value;
use serve_common::*;

const RUN_LIMIT: Duration = Duration::from_secs(60);

fn all_pools() -> Workspace {
    Workspace::new(
        &[
            ("gated.yaml", GATED_POOL),
            ("open.yaml", OPEN_POOL),
            ("flaky.yaml", FLAKY_POOL),
            ("stuck.yaml", STUCK_POOL),
        ],
        "",
    )
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|item| item[key].as_str().unwrap_or_default().to_string())
        .collect()
}

fn host<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["hosts"]
        .as_array()
        .and_then(|hosts| hosts.iter().find(|h| h["name"] == name))
        .unwrap_or_else(|| panic!("no host {name} in {view}"))
}

#[test]
fn clusters_hosts_inventory_and_plans() {
    let workspace = all_pools();
    let server = workspace.serve(&[]);
    let (status, clusters) = get(&server, "/api/v1/clusters");
    assert_eq!(status, 200, "{clusters}");
    assert_eq!(
        names(&clusters["clusters"], "name"),
        ["gated", "open", "flaky", "stuck"]
    );
    let open = &clusters["clusters"][1];
    assert_eq!(open["driver"], "simulator");
    assert_eq!(open["target_version"], "2.0");
    assert_eq!(open["hosts"], 3);
    assert_eq!(open["vms"], 2);
    assert_eq!(open["hosts_by_version"]["1.0"], 3);
    assert_eq!(open["active_run"], Value::Null);

    let (status, detail) = get(&server, "/api/v1/clusters/open");
    assert_eq!(status, 200);
    assert_eq!(names(&detail["hosts_detail"], "name"), ["n1", "n2", "n3"]);
    let (status, n1) = get(&server, "/api/v1/clusters/open/hosts/n1");
    assert_eq!(status, 200);
    assert_eq!(n1["role"], "compute");
    assert_eq!(n1["state"], "up");
    assert_eq!(n1["vms"], 1);
    assert_eq!(n1["labels"]["rack"], "r1");
    assert_eq!(n1["step"], Value::Null);
    assert!(n1.get("updates_available").is_some_and(Value::is_null));
    let (status, hosts) = get(&server, "/api/v1/clusters/open/hosts");
    assert_eq!(status, 200);
    assert_eq!(hosts["hosts"].as_array().map(Vec::len), Some(3));

    let (status, inventory) = get(&server, "/api/v1/clusters/open/inventory");
    assert_eq!(status, 200);
    assert_eq!(inventory["cluster"]["name"], "open");
    assert_eq!(inventory["driver"]["time_scale"], 1000);

    let (status, plan) = post(&server, "/api/v1/clusters/open/plans", None);
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["feasible"], true);
    assert_eq!(plan["waves"].as_array().map(Vec::len), Some(3));
    let (status, plan) = post(
        &server,
        "/api/v1/clusters/open/plans",
        Some(r#"{"max_unavailable": "auto", "hosts": ["n3"]}"#),
    );
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["waves"][0]["hosts"], serde_json::json!(["n3"]));

    for (path, expected) in [
        ("/api/v1/clusters/nope", 404),
        ("/api/v1/clusters/open/hosts/nope", 404),
        ("/api/v1/clusters/nope/hosts", 404),
        ("/api/v1/no-such-route", 404),
    ] {
        let (status, problem) = get(&server, path);
        assert_eq!(status, expected, "{path}: {problem}");
        assert_eq!(problem["status"], expected);
        assert_eq!(problem["instance"], path);
        assert!(problem["type"]
            .as_str()
            .unwrap()
            .starts_with("https://drover.dev/problems/"));
    }
}

#[test]
fn malformed_bodies_are_refused_naming_the_field() {
    let workspace = all_pools();
    let server = workspace.serve(&[]);
    for (path, body, field) in [
        (
            "/api/v1/clusters/open/plans",
            r#"{"max_unavailable": 0}"#,
            "max_unavailable",
        ),
        (
            "/api/v1/clusters/open/plans",
            r#"{"resolve": "yes"}"#,
            "resolve",
        ),
        (
            "/api/v1/clusters/open/runs",
            r#"{"hosts": ["n1", 7]}"#,
            "hosts[1]",
        ),
        (
            "/api/v1/clusters/open/runs",
            r#"{"colour": "red"}"#,
            "colour",
        ),
        (
            "/api/v1/clusters/open/runs",
            r#"{"resolve": tru"#,
            "resolve",
        ),
    ] {
        let (status, problem) = post(&server, path, Some(body));
        assert_eq!(status, 400, "{body}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(field) || problem["errors"][0]["field"] == field,
            "{body}: the problem should name {field}: {problem}"
        );
    }
    // A well-formed name that is not one of the cluster's hosts is a missing resource, as in
    // `/clusters/{c}/hosts/{host}` (the document cannot state the cluster's names).
    let (status, problem) = post(
        &server,
        "/api/v1/clusters/open/runs",
        Some(r#"{"hosts": ["zz"]}"#),
    );
    assert_eq!(status, 404, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("hosts[0]"),
        "{problem}"
    );
    let (status, problem) = post(&server, "/api/v1/clusters/stuck/runs", None);
    assert_eq!(status, 422, "{problem}");
    let prechecks = problem["prechecks"].as_array().expect("prechecks");
    assert!(!prechecks.is_empty());
    assert!(prechecks.iter().all(|check| check["status"] == "fail"));
    let (_, runs) = get(&server, "/api/v1/runs");
    assert_eq!(
        runs["runs"],
        serde_json::json!([]),
        "a refused run leaves nothing behind"
    );
}

#[test]
fn approve_pause_resume_and_the_event_stream() {
    let workspace = all_pools();
    let server = workspace.serve(&[]);
    let response = client()
        .post(server.url("/api/v1/clusters/gated/runs"))
        .header("content-type", "application/json")
        .body(r#"{"run_id": "g1"}"#)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(response.headers()["location"], "/api/v1/runs/g1");
    let created: Value = response.json().unwrap();
    assert_eq!(created["id"], "g1");
    assert_eq!(created["phase"], "awaiting-approval");
    assert_eq!(
        created["actions"],
        serde_json::json!(["approve", "pause", "abort"])
    );
    assert_eq!(names(&created["hosts"], "name"), ["h1", "h2", "h3"]);
    for key in [
        "target_version",
        "phase_reason",
        "paused",
        "window_open",
        "driven_by",
        "started_at_ms",
        "now_ms",
        "conditions",
        "hosts_total",
        "hosts_finished",
        "current_wave",
        "waves",
        "migrations_in_flight",
        "vms_down",
        "vm_actions",
        "timeline",
    ] {
        assert!(created.get(key).is_some(), "RunView lacks {key}: {created}");
    }
    assert!(created["driven_by"]
        .as_str()
        .is_some_and(|h| h.contains('@')));

    let (status, problem) = post(&server, "/api/v1/clusters/gated/runs", None);
    assert_eq!(status, 409, "a second run on a busy cluster: {problem}");
    let (_, cluster) = get(&server, "/api/v1/clusters/gated");
    assert_eq!(cluster["active_run"], "g1");

    let events = std::thread::spawn({
        let url = server.url("/api/v1/runs/g1/events");
        move || read_events(&url)
    });
    std::thread::sleep(Duration::from_millis(300));
    let (status, accepted) = post(&server, "/api/v1/runs/g1/approve", None);
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        accepted,
        serde_json::json!({"accepted": "approve", "run": "g1"})
    );
    let (status, problem) = post(&server, "/api/v1/runs/g1/approve", None);
    assert_eq!(status, 409, "approve twice: {problem}");
    assert_eq!(problem["type"], "https://drover.dev/problems/conflict");

    let (status, _) = post(&server, "/api/v1/runs/g1/pause", None);
    assert_eq!(status, 202);
    wait_for_run(&server, "g1", None, RUN_LIMIT, |view| {
        view["paused"] == true
    });
    let (status, _) = post(&server, "/api/v1/runs/g1/pause", None);
    assert_eq!(status, 409, "pause a paused run");
    let (status, _) = post(&server, "/api/v1/runs/g1/resume", None);
    assert_eq!(status, 202);
    let done = wait_for_run(&server, "g1", None, RUN_LIMIT, phase_is("completed"));
    assert_eq!(done["hosts_finished"], 3);
    assert_eq!(done["actions"], serde_json::json!([]));
    assert!(done["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["step"] == "done" && h["version"] == "2.0"));
    assert!(done["timeline"]
        .as_array()
        .is_some_and(|t| t.len() >= 3 * 5));
    assert!(done["waves"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["finished_at_ms"].is_u64()));

    let (kinds, last_run) = events.join().expect("event reader");
    assert!(kinds.contains(&"run".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"step".to_string()), "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("end"), "{kinds:?}");
    assert_eq!(last_run["phase"], "completed");

    let (status, report) = get(&server, "/api/v1/runs/g1/report");
    assert_eq!(status, 200);
    assert_eq!(report["phase"], "completed");
    assert_eq!(report["hosts"].as_array().map(Vec::len), Some(3));
    for action in ["abort", "retry", "pause"] {
        let (status, problem) = post(&server, &format!("/api/v1/runs/g1/{action}"), None);
        assert_eq!(status, 409, "{action} on a finished run: {problem}");
    }
    let (status, runs) = get(&server, "/api/v1/runs?cluster=gated&limit=5");
    assert_eq!(status, 200);
    assert_eq!(runs["runs"][0]["id"], "g1");
    assert_eq!(runs["runs"][0]["state"], "completed");
    assert!(workspace
        .journal("g1")
        .iter()
        .any(|entry| entry.contains(r#""command":"approve"},"by":"anonymous""#)));

    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains(r#"drover_runs{state="completed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"drover_migrations_total{cluster="gated",result="succeeded"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("drover_step_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"drover_hosts{cluster="open",step="idle"} 3"#),
        "{metrics}"
    );
    assert!(metrics.contains("drover_build_info{version="), "{metrics}");
    assert!(metrics.contains("drover_api_requests_total{"), "{metrics}");
    assert!(!metrics.contains("\"h1\""), "no host names as labels");
}

/// Reads an event stream to its end: the event names in order and the last `run` view.
fn read_events(url: &str) -> (Vec<String>, Value) {
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap()
        .get(url)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut kinds = Vec::new();
    let mut last_run = Value::Null;
    let mut current = String::new();
    for line in BufReader::new(response).lines() {
        let Ok(line) = line else { break };
        if let Some(kind) = line.strip_prefix("event: ") {
            current = kind.to_string();
            kinds.push(current.clone());
        } else if let Some(data) = line.strip_prefix("data: ") {
            if current == "run" {
                last_run = serde_json::from_str(data).unwrap();
            }
        }
        if current == "end" && line.is_empty() {
            break;
        }
    }
    (kinds, last_run)
}

#[test]
fn a_failed_host_halts_the_run_and_host_actions_are_checked() {
    let workspace = all_pools();
    let server = workspace.serve(&[]);
    let (status, created) = post(
        &server,
        "/api/v1/clusters/flaky/runs",
        Some(r#"{"run_id": "f"}"#),
    );
    assert_eq!(status, 202, "{created}");
    let (status, _) = post(&server, "/api/v1/runs/f/retry", None);
    assert_eq!(status, 409, "retry with nothing failed");
    let halted = wait_for_run(&server, "f", None, RUN_LIMIT, phase_is("halted"));
    assert_eq!(host(&halted, "f2")["step"], "upgrade-failed");
    assert_eq!(host(&halted, "f2")["actions"], serde_json::json!(["skip"]));
    assert!(halted["phase_reason"].is_string());
    assert_eq!(
        halted["actions"],
        serde_json::json!(["pause", "retry", "abort"])
    );
    let (status, problem) = post(&server, "/api/v1/runs/f/hosts/f1/skip", None);
    assert_eq!(status, 409, "skip a host that did not fail: {problem}");
    let (status, _) = post(&server, "/api/v1/runs/f/hosts/f2/continue", None);
    assert_eq!(
        status, 409,
        "continue a host not waiting for a manual upgrade"
    );
    let (status, _) = post(&server, "/api/v1/runs/f/hosts/nope/skip", None);
    assert_eq!(status, 404);
    let (status, _) = post(&server, "/api/v1/runs/f/hosts/f2/reboot", None);
    assert_eq!(status, 404);
    let (status, _) = post(&server, "/api/v1/runs/f/retry", None);
    assert_eq!(status, 202);
    let done = wait_for_run(&server, "f", None, RUN_LIMIT, phase_is("completed"));
    assert_eq!(host(&done, "f2")["step"], "done");
    let (_, report) = get(&server, "/api/v1/runs/f/report");
    assert_eq!(
        report["hosts"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    assert!(report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["result"] == "upgraded"));
    let (status, _) = post(&server, "/api/v1/runs/f/retry", None);
    assert_eq!(status, 409, "retry a completed run");
}

#[test]
fn abort_and_unknown_runs() {
    let workspace = all_pools();
    let server = workspace.serve(&[]);
    let (status, _) = post(
        &server,
        "/api/v1/clusters/gated/runs",
        Some(r#"{"run_id": "a"}"#),
    );
    assert_eq!(status, 202);
    let (status, _) = post(
        &server,
        "/api/v1/clusters/open/runs",
        Some(r#"{"run_id": "a"}"#),
    );
    assert_eq!(status, 409, "a run id is used once");
    let (status, accepted) = post(&server, "/api/v1/runs/a/abort", None);
    assert_eq!(status, 202, "{accepted}");
    wait_for_run(&server, "a", None, RUN_LIMIT, phase_is("aborted"));
    let (status, _) = post(&server, "/api/v1/runs/a/abort", None);
    assert_eq!(status, 409, "abort a finished run");
    for (method, path) in [
        ("GET", "/api/v1/runs/nope"),
        ("GET", "/api/v1/runs/nope/report"),
        ("GET", "/api/v1/runs/nope/events"),
        ("POST", "/api/v1/runs/nope/approve"),
        ("POST", "/api/v1/runs/a/explode"),
        ("POST", "/api/v1/clusters/nope/runs"),
        ("POST", "/api/v1/clusters/open/hosts/nope/upgrade"),
    ] {
        let (status, problem) = call(&server, method, path, None, None);
        assert_eq!(status, 404, "{method} {path}: {problem}");
    }
}

#[test]
fn a_single_host_upgrade_touches_only_that_host() {
    let workspace = all_pools();
    let server = workspace.serve(&[]);
    let (status, created) = post(&server, "/api/v1/clusters/open/hosts/n2/upgrade", None);
    assert_eq!(status, 202, "{created}");
    let run_id = created["id"].as_str().unwrap().to_string();
    let done = wait_for_run(&server, &run_id, None, RUN_LIMIT, phase_is("completed"));
    assert_eq!(host(&done, "n2")["step"], "done");
    assert_eq!(host(&done, "n2")["version"], "2.0");
    for other in ["n1", "n3"] {
        assert_eq!(host(&done, other)["step"], "waiting", "{done}");
        assert_eq!(host(&done, other)["version"], "1.0");
    }
    let (_, report) = get(&server, &format!("/api/v1/runs/{run_id}/report"));
    assert_eq!(
        report["hosts"],
        serde_json::json!([{"host": "n2", "result": "upgraded"}])
    );
}

#[test]
fn tokens_roles_and_the_journal_names_the_caller() {
    let hash = |token: &str| {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let tokens = format!(
        "tokens:\n  - {{name: alice, role: operator, sha256: \"{}\"}}\n  - {{name: bob, role: viewer, sha256: \"{}\"}}\n",
        hash("alice-secret"),
        hash("bob-secret")
    );
    let workspace = Workspace::new(&[("gated.yaml", GATED_POOL)], &tokens);
    let server = workspace.serve(&[]);
    let (status, problem) = call(&server, "GET", "/api/v1/clusters", None, None);
    assert_eq!(status, 401, "{problem}");
    let (status, _) = call(&server, "GET", "/api/v1/clusters", Some("wrong"), None);
    assert_eq!(status, 401);
    let (status, who) = call(&server, "GET", "/api/v1/whoami", Some("bob-secret"), None);
    assert_eq!(status, 200);
    assert_eq!(
        who,
        serde_json::json!({"name": "bob", "role": "viewer", "auth_required": true})
    );
    let (status, _) = call(&server, "GET", "/api/v1/clusters", Some("bob-secret"), None);
    assert_eq!(status, 200);
    let (status, problem) = call(
        &server,
        "POST",
        "/api/v1/clusters/gated/runs",
        Some("bob-secret"),
        None,
    );
    assert_eq!(status, 403, "{problem}");
    // Reviewing a plan changes nothing: a viewer may.
    let (status, plan) = call(
        &server,
        "POST",
        "/api/v1/clusters/gated/plans",
        Some("bob-secret"),
        None,
    );
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["cluster"], "gated");
    let (status, _) = call(
        &server,
        "POST",
        "/api/v1/clusters/gated/checks",
        Some("bob-secret"),
        None,
    );
    assert_eq!(
        status, 403,
        "a check runs commands on the hosts: operators only"
    );
    let (status, created) = call(
        &server,
        "POST",
        "/api/v1/clusters/gated/runs",
        Some("alice-secret"),
        Some(r#"{"run_id": "t"}"#),
    );
    assert_eq!(status, 202, "{created}");
    let (status, _) = call(
        &server,
        "POST",
        "/api/v1/runs/t/approve",
        Some("bob-secret"),
        None,
    );
    assert_eq!(status, 403);
    let (status, _) = call(
        &server,
        "POST",
        "/api/v1/runs/t/approve",
        Some("alice-secret"),
        None,
    );
    assert_eq!(status, 202);
    wait_for_run(
        &server,
        "t",
        Some("alice-secret"),
        RUN_LIMIT,
        phase_is("completed"),
    );
    let journal = workspace.journal("t");
    assert!(
        journal
            .iter()
            .any(|e| e.contains(r#""command":"approve"},"by":"alice""#)),
        "{journal:?}"
    );
    // Public: health, metrics, the OpenAPI document and the dashboard.
    for path in [
        "/healthz",
        "/metrics",
        "/api/v1/openapi.json",
        "/",
        "/app.js",
        "/style.css",
    ] {
        let status = client()
            .get(server.url(path))
            .send()
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 200, "{path}");
    }
    // EventSource cannot send headers: the stream takes the token in the query.
    let url = server.url("/api/v1/runs/t/events?access_token=bob-secret");
    let (kinds, last) = read_events(&url);
    assert_eq!(kinds, ["run", "end"]);
    assert_eq!(last["phase"], "completed");
    let status = client()
        .get(server.url("/api/v1/runs/t?access_token=bob-secret"))
        .send()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 401, "only the event stream takes a query token");
}

#[test]
fn bad_configurations_are_refused_before_anything_starts() {
    let workspace = Workspace::new(&[("gated.yaml", GATED_POOL)], "");
    let open = workspace
        .command()
        .args(["serve", "--config"])
        .arg(workspace.path("serve.yaml"))
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(open.status.code(), Some(2));
    let message = String::from_utf8_lossy(&open.stderr);
    assert!(message.contains("without tokens"), "{message}");

    for (config, expected) in [
        (
            "clusters:\n  - inventory: gated.yaml\ncolour: red\n",
            "colour",
        ),
        (
            "clusters:\n  - inventory: missing.yaml\n",
            "clusters[0].inventory",
        ),
        (
            "clusters:\n  - inventory: gated.yaml\n  - inventory: gated.yaml\n",
            "clusters[1].inventory",
        ),
        (
            "clusters:\n  - inventory: bad.yaml\n",
            "clusters[0].inventory",
        ),
        (
            "tokens:\n  - {name: a, role: operator, sha256: abc}\n",
            "tokens[0].sha256",
        ),
        ("tokens:\n  - {name: a, role: admin, sha256: abc}\n", "role"),
        ("listen: nowhere\n", "listen"),
    ] {
        std::fs::write(workspace.path("bad.yaml"), "cluster: {name: x}\nhosts: 7\n").unwrap();
        std::fs::write(workspace.path("bad-serve.yaml"), config).unwrap();
        let output = workspace
            .command()
            .args(["serve", "--config"])
            .arg(workspace.path("bad-serve.yaml"))
            .output()
            .unwrap();
        let message = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{config}: {message}");
        assert!(
            message.contains(expected),
            "{config}: should name {expected}: {message}"
        );
        assert!(
            message.contains("bad-serve.yaml"),
            "{config}: should name the file: {message}"
        );
    }

    let mut hashing = workspace
        .command()
        .args(["serve", "--hash-token"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    hashing
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret\n")
        .unwrap();
    let output = hashing.wait_with_output().unwrap();
    assert!(output.status.success());
    let expected = {
        use sha2::Digest;
        sha2::Sha256::digest(b"s3cret")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), expected);
}
