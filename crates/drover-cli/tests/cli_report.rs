//! `drover report` and truthful end-of-run messages through the real binary: every VM action
//! kept (a VM restarted twice listed twice), host steps with their times, failures and restores
//! not done; an abort that could not restore says so instead of "everything was restored"; the
//! report of a run that waits (not finished) reads the same journal; and the server's
//! `GET /api/v1/runs/{id}/report` returns the very document `drover report -o json` prints.

mod cli_common;
mod serve_common;

use cli_common::{stderr, stdout, testdata, Workspace};

#[test]
fn the_report_keeps_every_vm_action_and_a_vm_restarted_twice_appears_twice() {
    let workspace = Workspace::new();
    let inventory = testdata("runs/restarted-twice.yaml");
    let run = workspace.drover(&["run", "-i", &inventory, "--run-id", "t1", "-o", "json"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let report = workspace.json(&["report", "t1", "-o", "json"]);
    assert_eq!(report["phase"], "completed");
    let restarts = report["restarts"].as_u64().unwrap();
    let restart_actions: Vec<&serde_json::Value> = report["vm_actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "restart")
        .collect();
    assert_eq!(restart_actions.len() as u64, restarts, "{report}");
    let downtime_of = |vm: &str| {
        report["downtime"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["vm"] == vm)
            .count()
    };
    let twice: Vec<&str> = ["legacy-1", "legacy-2", "legacy-3"]
        .into_iter()
        .filter(|vm| restart_actions.iter().filter(|a| a["vm"] == *vm).count() == 2)
        .collect();
    assert_eq!(twice.len(), 1, "one VM is restarted twice: {report}");
    assert_eq!(
        downtime_of(twice[0]),
        2,
        "both restarts cost downtime: {report}"
    );
    let waves: Vec<u64> = restart_actions
        .iter()
        .filter(|a| a["vm"] == twice[0])
        .map(|a| a["wave"].as_u64().unwrap())
        .collect();
    assert!(waves[0] < waves[1], "{waves:?}");
    assert!(restart_actions.iter().all(|a| a["result"] == "done"));

    let hosts = report["host_steps"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{report}");
    for host in hosts {
        let upgrade = host["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == "upgrade")
            .unwrap_or_else(|| panic!("no upgrade step: {host}"));
        assert!(upgrade["call_ms"].as_u64().unwrap() > 0, "{host}");
    }
    assert_eq!(report["timing"]["simulated"], true);
    assert!(report["timing"]["busy_secs"].as_u64().unwrap() > 0);

    // The end of `run -o json` printed the same document.
    let printed: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(printed, report);

    let table = workspace.drover(&["report", "t1"]);
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = stdout(&table);
    for header in [
        "HOST   RESULT",
        "STEP",
        "TIME IN CALLS",
        "DOWNTIME",
        "(simulated time)",
    ] {
        assert!(text.contains(header), "{header}: {text}");
    }
    let lines_of_twice = text
        .lines()
        .filter(|l| l.contains(twice[0]) && l.contains("restart"))
        .count();
    assert_eq!(lines_of_twice, 2, "{text}");

    let yaml = workspace.drover(&["report", "-o", "yaml"]);
    assert_eq!(yaml.status.code(), Some(0));
    let parsed: serde_json::Value = serde_yaml_ng::from_slice(&yaml.stdout).unwrap();
    assert_eq!(parsed["run"], "t1", "the newest run by default");
}

#[test]
fn an_abort_that_could_not_restore_says_so_and_the_report_lists_it() {
    let workspace = Workspace::new();
    let inventory = testdata("runs/host-never-returns.yaml");
    let run = workspace.drover(&["run", "-i", &inventory, "--run-id", "lost"]);
    assert_eq!(run.status.code(), Some(5), "{}", stderr(&run));
    let aborted = workspace.drover(&["abort", "lost", "-o", "json"]);
    assert_eq!(aborted.status.code(), Some(6), "{}", stderr(&aborted));
    let report: serde_json::Value = serde_json::from_slice(&aborted.stdout).unwrap();
    let not_restored: Vec<&str> = report["restore_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    assert_eq!(not_restored, ["h2"], "{report}");
    let message = stderr(&aborted);
    assert!(
        !message.contains("every host Drover touched was restored"),
        "the message contradicts the report: {message}"
    );
    assert!(message.contains("could not be done on h2"), "{message}");
    let failures = report["failures"].as_array().unwrap();
    assert!(
        failures.iter().any(|f| f["subject"] == "host h2"),
        "{report}"
    );

    let table = stdout(&workspace.drover(&["report", "lost"]));
    assert!(table.contains("RESTORE NOT DONE ON"), "{table}");
    assert!(table.contains("FAILURE"), "{table}");
}

#[test]
fn a_clean_abort_says_every_host_was_restored() {
    let workspace = Workspace::new();
    let inventory = testdata("runs/approval.yaml");
    let run = workspace.drover(&["run", "-i", &inventory, "--run-id", "gate"]);
    assert_eq!(run.status.code(), Some(5), "{}", stderr(&run));
    let aborted = workspace.drover(&["abort", "gate"]);
    assert_eq!(aborted.status.code(), Some(6), "{}", stderr(&aborted));
    assert!(
        stderr(&aborted).contains("every host Drover touched was restored"),
        "{}",
        stderr(&aborted)
    );
    assert!(!stdout(&aborted).contains("RESTORE NOT DONE"));
}

#[test]
fn the_report_of_a_run_that_is_not_finished_reads_its_journal() {
    let workspace = Workspace::new();
    let inventory = testdata("runs/host-never-returns.yaml");
    let run = workspace.drover(&["run", "-i", &inventory, "--run-id", "halted"]);
    assert_eq!(run.status.code(), Some(5), "{}", stderr(&run));
    let report = workspace.json(&["report", "halted", "-o", "json"]);
    assert_eq!(report["phase"], "halted");
    let h2 = report["host_steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "h2")
        .unwrap();
    let upgrade = h2["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "upgrade")
        .unwrap();
    assert!(upgrade["failed"].as_u64().unwrap() >= 1, "{h2}");
    // Nothing was changed by reading it: the run still halts on the same host.
    let status = workspace.json(&["status", "halted", "-o", "json"]);
    assert_eq!(status["phase"], "halted");
}

#[test]
fn the_server_returns_the_same_report_as_the_cli() {
    let text = std::fs::read_to_string(testdata("runs/restarted-twice.yaml")).unwrap();
    let workspace = serve_common::Workspace::new(&[("twice.yaml", &text)], "");
    let run = workspace
        .command()
        .args(["run", "-i"])
        .arg(workspace.path("twice.yaml"))
        .args(["--run-id", "t2", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let cli = workspace
        .command()
        .args(["report", "t2", "-o", "json"])
        .output()
        .unwrap();
    let cli: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    let server = workspace.serve(&[]);
    let (status, api) = serve_common::get(&server, "/api/v1/runs/t2/report");
    assert_eq!(status, 200, "{api}");
    assert_eq!(api, cli);
    assert!(api["vm_actions"].as_array().unwrap().len() >= 4, "{api}");
    // The API document describes that body.
    let (_, openapi) = serve_common::get(&server, "/api/v1/openapi.json");
    let response = &openapi["paths"]["/api/v1/runs/{run}/report"]["get"]["responses"]["200"];
    assert_eq!(
        response["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ReportDocument",
        "{response}"
    );
    let properties = &openapi["components"]["schemas"]["ReportDocument"]["properties"];
    for field in [
        "vm_actions",
        "host_steps",
        "failures",
        "restore_errors",
        "timing",
    ] {
        assert!(properties.get(field).is_some(), "{field} undocumented");
    }
}

/// A pool whose HA and one VM's CD block the roll: with `--resolve` the run turns both off
/// before its first wave and puts HA back at its end (the CD stays ejected).
const SETTINGS_POOL: &str = r#"cluster:
  name: ha-pool
  target_version: "8.4"
  settings:
    - {setting: ha-enabled}
    - {setting: vm-media-inserted, vm: web-01}
hosts:
  - {name: xs01, role: master, version: "8.2", memory_mib: 16384, cpus: 8}
  - {name: xs02, version: "8.2", memory_mib: 16384, cpus: 8}
vms:
  - {name: web-01, host: xs01, memory_mib: 2048, vcpus: 1}
  - {name: web-02, host: xs02, memory_mib: 2048, vcpus: 1}
"#;

#[test]
fn the_settings_a_run_turned_off_are_in_its_report_status_and_run_view() {
    let workspace = serve_common::Workspace::new(&[("ha.yaml", SETTINGS_POOL)], "");
    let drover = |args: &[&str]| workspace.command().args(args).output().unwrap();
    let inventory = workspace.path("ha.yaml").display().to_string();
    let run = drover(&[
        "run",
        "-i",
        &inventory,
        "--resolve",
        "--run-id",
        "s1",
        "-o",
        "json",
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["phase"], "completed", "{report}");
    let settings = report["settings"].as_array().expect("settings listed");
    let entry = |setting: &str| {
        settings
            .iter()
            .find(|s| s["setting"] == setting)
            .unwrap_or_else(|| panic!("{setting} not in {report}"))
    };
    assert_eq!(entry("ha-enabled")["step"], "restored", "{report}");
    assert_eq!(entry("ha-enabled")["restored_at_end"], true);
    let media = entry("vm-media-inserted");
    assert_eq!(media["vm"], "web-01");
    assert_eq!(media["step"], "resolved", "ejected media is not put back");
    assert_eq!(media["restored_at_end"], false);

    let status = drover(&["status", "s1", "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["settings"], report["settings"], "{status}");
    let table = stdout(&drover(&["status", "s1"]));
    assert!(table.contains("PUT BACK AT END"), "{table}");
    assert!(
        table.contains("ha-enabled") && table.contains("restored"),
        "{table}"
    );
    let table = stdout(&drover(&["report", "s1"]));
    assert!(
        table.contains("vm-media-inserted") && table.contains("web-01"),
        "{table}"
    );

    let server = workspace.serve(&[]);
    let (code, view) = serve_common::get(&server, "/api/v1/runs/s1");
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["settings"], report["settings"], "{view}");
    let (_, openapi) = serve_common::get(&server, "/api/v1/openapi.json");
    let run_view = &openapi["components"]["schemas"]["RunView"]["properties"];
    assert!(run_view.get("settings").is_some(), "settings undocumented");
}

#[test]
fn a_run_without_settings_lists_none() {
    let workspace = Workspace::new();
    let inventory = testdata("runs/restarted-twice.yaml");
    let run = workspace.drover(&["run", "-i", &inventory, "--run-id", "n1", "-o", "json"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(report.get("settings").is_none(), "{report}");
    let text = stdout(&workspace.drover(&["status", "n1"]));
    assert!(!text.contains("PUT BACK AT END"), "{text}");
}
