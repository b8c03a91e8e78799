//! Durable execution through the real binary: run, status, history, halts answered with retry,
//! skip and abort, approval, kill -9 and resume, and every misuse refused without a change.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod cli_common;

use cli_common::{fake_platform, stderr, testdata, testdata_path, Workspace};

#[test]
fn a_run_completes_and_reports_every_host() {
    let workspace = Workspace::new();
    let output = workspace.drover(&["run", "-i", &testdata("runs/small-pool.yaml"), "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["phase"], "completed");
    let hosts = report["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 5);
    assert!(hosts.iter().all(|h| h["result"] == "upgraded"), "{report}");
    assert_eq!(hosts[0]["host"], "m1", "the master first");
    assert!(report["migrations"].as_u64().unwrap() >= 3);
    assert_eq!(report["shutdowns"], 1, "db-1 has local storage");
    assert_eq!(
        report["restarts"].as_u64().unwrap(),
        1,
        "legacy restarts elsewhere"
    );
    let downtime: Vec<&str> = report["downtime"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["vm"].as_str().unwrap())
        .collect();
    assert!(
        downtime.contains(&"db-1") && downtime.contains(&"legacy"),
        "{downtime:?}"
    );

    let status = workspace.json(&["status", "-o", "json"]);
    assert_eq!(status["phase"], "completed");
    assert!(status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Completed" && c["status"] == true));
    let history = workspace.json(&["history", "-o", "json"]);
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["state"], "completed");

    let timeline = workspace.json(&["timeline", "-o", "json"]);
    let wall_ms = timeline["wall_ms"].as_u64().unwrap();
    assert!(wall_ms > 0, "{timeline}");
    let step = |name: &str| {
        timeline["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no {name} step in {timeline}"))
            .clone()
    };
    let migrate = step("migrate");
    assert_eq!(migrate["calls"], report["migrations"], "{timeline}");
    assert_eq!(step("upgrade")["calls"], 5, "one upgrade per host");
    for row in timeline["steps"].as_array().unwrap() {
        let covered = row["covered_ms"].as_u64().unwrap();
        assert!(
            covered <= row["busy_ms"].as_u64().unwrap() && covered <= wall_ms,
            "{row}"
        );
    }
    let spans = timeline["spans"].as_array().unwrap();
    assert!(
        spans.iter().all(|s| s["result"] == "succeeded"),
        "{timeline}"
    );
    let table = workspace.drover(&["timeline"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("STEP")
            && text.contains("migrate")
            && text.contains("No driver call in flight"),
        "{text}"
    );
}

#[test]
fn a_failed_upgrade_halts_and_retry_finishes_the_run() {
    let workspace = Workspace::new();
    let output = workspace.drover(&["run", "-i", &testdata("runs/upgrade-fails.yaml")]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("drover retry"),
        "{}",
        stderr(&output)
    );
    let status = workspace.json(&["status", "-o", "json"]);
    assert_eq!(status["phase"], "halted");
    let h2 = status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "h2")
        .unwrap()
        .clone();
    assert_eq!(h2["step"], "upgrade-failed");
    assert!(
        h2["last_error"]
            .as_str()
            .unwrap()
            .contains("installer failed"),
        "{h2}"
    );
    // Skipping a host that did not fail is refused and changes nothing.
    let refused = workspace.drover(&["skip", "h1"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("not upgrade-failed"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(workspace.json(&["status", "-o", "json"])["phase"], "halted");
    let retried = workspace.drover(&["retry", "-o", "json"]);
    assert_eq!(retried.status.code(), Some(0), "{}", stderr(&retried));
    let report: serde_json::Value = serde_json::from_slice(&retried.stdout).unwrap();
    assert!(
        report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["result"] == "upgraded"),
        "{report}"
    );
}

#[test]
fn the_compatibility_level_is_raised_after_the_last_host() {
    let workspace = Workspace::new();
    let inventory = testdata("runs/raise-compatibility.yaml");
    let plan = workspace.drover(&["plan", "-i", &inventory]);
    assert!(
        String::from_utf8_lossy(&plan.stdout)
            .contains("After the last host: raise the cluster compatibility level to 2.0"),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    let output = workspace.drover(&["run", "-i", &inventory]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("Cluster compatibility level raised to 2.0"),
        "{table}"
    );
    let status = workspace.json(&["status", "-o", "json"]);
    let completed = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Completed")
        .unwrap()
        .clone();
    assert_eq!(completed["status"], true);
    assert!(
        completed["message"]
            .as_str()
            .unwrap()
            .ends_with("cluster compatibility level raised to 2.0"),
        "{completed}"
    );
    let timeline = workspace.json(&["timeline", "-o", "json"]);
    let spans = timeline["spans"].as_array().unwrap();
    let raise = spans
        .iter()
        .position(|s| s["step"] == "set-compatibility-level")
        .unwrap_or_else(|| panic!("no set-compatibility-level span in {timeline}"));
    assert_eq!(spans[raise]["result"], "succeeded", "{timeline}");
    let last_upgrade = spans.iter().rposition(|s| s["step"] == "upgrade").unwrap();
    assert!(raise > last_upgrade, "raised before the last upgrade");
}

#[test]
fn a_failed_raise_halts_refuses_skip_and_retry_raises_it() {
    let workspace = Workspace::new();
    let output = workspace.drover(&[
        "run",
        "-i",
        &testdata("runs/raise-compatibility-fails.yaml"),
    ]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let status = workspace.json(&["status", "-o", "json"]);
    assert_eq!(status["phase"], "halted");
    let reason = status["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("raising the cluster compatibility level to 2.0 failed: "),
        "{reason}"
    );
    let refused = workspace.drover(&["skip", "h2"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("cannot be skipped"),
        "{}",
        stderr(&refused)
    );
    let retried = workspace.drover(&["retry", "-o", "json"]);
    assert_eq!(retried.status.code(), Some(0), "{}", stderr(&retried));
    let report: serde_json::Value = serde_json::from_slice(&retried.stdout).unwrap();
    assert_eq!(report["phase"], "completed", "{report}");
    assert_eq!(report["compatibility_level_raised"], "2.0", "{report}");
}

#[test]
fn a_host_that_never_returns_is_skipped_or_the_run_aborted() {
    let workspace = Workspace::new();
    let output = workspace.drover(&["run", "-i", &testdata("runs/host-never-returns.yaml")]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let skipped = workspace.drover(&["skip", "h2", "-o", "json"]);
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    let report: serde_json::Value = serde_json::from_slice(&skipped.stdout).unwrap();
    let result = |name: &str| {
        report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == name)
            .unwrap()["result"]
            .clone()
    };
    assert_eq!(result("h2"), "skipped");
    assert_eq!(result("h1"), "upgraded");
    assert_eq!(result("h3"), "upgraded");

    let other = Workspace::new();
    assert_eq!(
        other
            .drover(&["run", "-i", &testdata("runs/host-never-returns.yaml")])
            .status
            .code(),
        Some(5)
    );
    let aborted = other.drover(&["abort", "-o", "json"]);
    assert_eq!(aborted.status.code(), Some(6), "{}", stderr(&aborted));
    let report: serde_json::Value = serde_json::from_slice(&aborted.stdout).unwrap();
    assert_eq!(report["phase"], "aborted");
    // Aborting a finished run is refused.
    assert_eq!(other.drover(&["abort"]).status.code(), Some(2));
}

#[test]
fn approval_gates_the_start() {
    let workspace = Workspace::new();
    let output = workspace.drover(&[
        "run",
        "-i",
        &testdata("runs/approval.yaml"),
        "--run-id",
        "gated-1",
    ]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("drover approve gated-1"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        workspace.json(&["status", "gated-1", "-o", "json"])["phase"],
        "awaiting-approval"
    );
    let approved = workspace.drover(&["approve", "gated-1"]);
    assert_eq!(approved.status.code(), Some(0), "{}", stderr(&approved));
    assert_eq!(
        workspace.json(&["status", "gated-1", "-o", "json"])["phase"],
        "completed"
    );
    let twice = workspace.drover(&["approve", "gated-1"]);
    assert_eq!(twice.status.code(), Some(2), "approving twice is refused");
}

#[test]
fn one_run_per_cluster_and_resume_refuses_a_changed_inventory() {
    let workspace = Workspace::new();
    assert_eq!(
        workspace
            .drover(&["run", "-i", &testdata("runs/upgrade-fails.yaml")])
            .status
            .code(),
        Some(5)
    );
    let second = workspace.drover(&["run", "-i", &testdata("runs/upgrade-fails.yaml")]);
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("locked by unfinished run"),
        "{}",
        stderr(&second)
    );
    let changed = workspace.directory.path().join("changed.yaml");
    let text = std::fs::read_to_string(testdata_path("runs/upgrade-fails.yaml")).unwrap();
    std::fs::write(
        &changed,
        text.replace("max_unavailable: 1", "max_unavailable: 2"),
    )
    .unwrap();
    let resumed = workspace.drover(&["resume", "-i", changed.to_str().unwrap()]);
    assert_eq!(resumed.status.code(), Some(2), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("changed since run"),
        "{}",
        stderr(&resumed)
    );
    assert_eq!(
        workspace.json(&["status", "-o", "json"])["phase"],
        "halted",
        "nothing changed"
    );
}

#[test]
fn corrupt_and_newer_state_files_are_refused_unchanged() {
    let workspace = Workspace::new();
    std::fs::write(
        workspace.state(),
        b"this is not a database, it is a text file of some length",
    )
    .unwrap();
    let before = std::fs::read(workspace.state()).unwrap();
    let output = workspace.drover(&["status"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("state.db"), "{}", stderr(&output));
    assert_eq!(std::fs::read(workspace.state()).unwrap(), before);
}

/// kill -9 in the middle of a wall-clock run, then `drover resume`: the run completes and every
/// host ends upgraded, none left cordoned or in maintenance.
#[test]
fn kill_nine_then_resume_completes_the_run() {
    let workspace = Workspace::new();
    let mut child = workspace
        .command(&[
            "run",
            "-i",
            &testdata("runs/wall-clock.yaml"),
            "--run-id",
            "crash-1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let it get well into the run (each host takes ~0.8 s of wall time at this speed).
    wait_for_journal(&workspace.state(), Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let status = workspace.json(&["status", "crash-1", "-o", "json"]);
    assert_ne!(
        status["phase"], "completed",
        "killed before the end: {status}"
    );
    let resumed = workspace.drover(&[
        "resume",
        "crash-1",
        "-i",
        &testdata("runs/wall-clock.yaml"),
        "-o",
        "json",
    ]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let report: serde_json::Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(report["phase"], "completed");
    assert!(
        report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["result"] == "upgraded"),
        "{report}"
    );
    assert_eq!(report["hosts"].as_array().unwrap().len(), 5);
}

fn wait_for_journal(state: &Path, settle: Duration) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !state.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(settle);
}

#[test]
fn manual_mode_waits_for_the_operator_at_each_upgrade() {
    let workspace = Workspace::new();
    let output = workspace.drover(&[
        "run",
        "-i",
        &testdata("runs/manual-mode.yaml"),
        "--run-id",
        "manual-1",
    ]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("manual upgrade of"),
        "{}",
        stderr(&output)
    );
    for _ in 0..2 {
        let status = workspace.json(&["status", "manual-1", "-o", "json"]);
        let waiting = status["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["step"] == "awaiting-manual-upgrade")
            .unwrap()["host"]
            .as_str()
            .unwrap()
            .to_string();
        // Continuing without installing fails verification; so install first.
        let installed = workspace.drover(&["sim-upgrade", &waiting]);
        assert_eq!(installed.status.code(), Some(0), "{}", stderr(&installed));
        let continued = workspace.drover(&["continue", &waiting]);
        assert!(
            matches!(continued.status.code(), Some(0) | Some(5)),
            "{}",
            stderr(&continued)
        );
    }
    assert_eq!(
        workspace.json(&["status", "manual-1", "-o", "json"])["phase"],
        "completed"
    );
}

/// The command driver through the real binary: the fake platform of shell scripts under
/// crates/drover-command/examples/fake-platform, upgraded end to end by `drover run`.
#[test]
fn the_command_driver_upgrades_a_scripted_platform() {
    let workspace = Workspace::new();
    let text = fake_platform(&workspace.path("platform"));
    let inventory = workspace.directory.path().join("inventory.yaml");
    std::fs::write(&inventory, text).unwrap();
    let output = workspace.drover(&["run", "-i", inventory.to_str().unwrap(), "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["phase"], "completed");
    assert!(
        report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["result"] == "upgraded"),
        "{report}"
    );
    assert!(report["migrations"].as_u64().unwrap() >= 3, "{report}");
}
