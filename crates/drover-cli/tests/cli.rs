//! The `drover` binary as a user runs it: every exit code, every kind of bad input, the output
//! formats and the conventions (data on stdout, messages on stderr).

use std::path::PathBuf;
use std::process::{Command, Output};

fn testdata(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(relative)
}

fn drover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn run_plan(file: &str, extra: &[&str]) -> Output {
    let path = testdata(file);
    let mut args = vec!["plan", "-i", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    drover(&args)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn feasible_plan_exits_zero_with_a_json_document_on_stdout() {
    let output = run_plan("plans/01-xenserver-pool.yaml", &["-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["cluster"], "pool-xs");
    assert_eq!(document["target_version"], "8.2.1");
    assert_eq!(
        document["waves"][0]["hosts"][0], "xs01",
        "the master goes first"
    );
    for key in [
        "waves",
        "migrations",
        "restarts",
        "shutdowns",
        "migrations_lower_bound",
    ] {
        assert!(document["summary"][key].is_u64(), "summary.{key} missing");
    }
    let action = &document["waves"][0]["actions"][0];
    for key in ["vm", "kind", "from", "to"] {
        assert!(action[key].is_string(), "action.{key} missing in {action}");
    }
}

#[test]
fn shutdown_actions_have_no_destination() {
    let output = run_plan("plans/03-downtime-dispositions.yaml", &["-o", "json"]);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let actions: Vec<&serde_json::Value> = document["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["actions"].as_array().unwrap())
        .collect();
    let shutdown = actions.iter().find(|a| a["kind"] == "shutdown").unwrap();
    assert!(shutdown.get("to").is_none(), "{shutdown}");
    assert_eq!(shutdown["vm"], "oltp-db");
}

#[test]
fn table_view_shows_waves_and_downtime_reasons() {
    let output = run_plan("plans/03-downtime-dispositions.yaml", &[]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("WAVE"), "{text}");
    assert!(text.contains("VMs that will see downtime"), "{text}");
    assert!(text.contains("local storage"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes with NO_COLOR or off a terminal"
    );
}

#[test]
fn yaml_output_parses() {
    let output = run_plan("plans/02-mixed-versions.yaml", &["-o", "yaml"]);
    assert_eq!(output.status.code(), Some(0));
    let document: drover_schema::PlanDocument = serde_yaml_ng::from_slice(&output.stdout).unwrap();
    assert_eq!(document.cluster, "mixed");
}

#[test]
fn no_capacity_exits_three_naming_the_blockers() {
    let output = run_plan("plans/08-no-capacity.yaml", &[]);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(message.contains("a: its VMs need 12288 MiB"), "{message}");
}

#[test]
fn unmovable_vm_exits_three_unless_resolved() {
    let output = run_plan("plans/09-unmovable.yaml", &[]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("pinned"));
    let resolved = run_plan("plans/09-unmovable.yaml", &["--resolve", "-o", "json"]);
    assert_eq!(resolved.status.code(), Some(0), "{}", stderr(&resolved));
    let document: serde_json::Value = serde_json::from_slice(&resolved.stdout).unwrap();
    assert_eq!(document["summary"]["shutdowns"], 1);
}

#[test]
fn max_unavailable_flag_overrides_the_file() {
    let output = run_plan(
        "plans/06-auto-batches.yaml",
        &["--max-unavailable", "1", "-o", "json"],
    );
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["summary"]["max_unavailable"], 1);
    assert_eq!(document["summary"]["waves"], 8);
    let bad = run_plan("plans/06-auto-batches.yaml", &["--max-unavailable", "0"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// `--max-unavailable` and `DROVER_MAX_UNAVAILABLE` take the inventory's forms, percentages too.
#[test]
fn max_unavailable_flag_and_environment_take_a_percentage() {
    let from_flag = run_plan(
        "plans/06-auto-batches.yaml",
        &["--max-unavailable", "25%", "-o", "json"],
    );
    assert_eq!(from_flag.status.code(), Some(0), "{}", stderr(&from_flag));
    let document: serde_json::Value = serde_json::from_slice(&from_flag.stdout).unwrap();
    assert_eq!(document["summary"]["max_unavailable"], 2, "25% of 8 hosts");
    let path = testdata("plans/06-auto-batches.yaml");
    let from_environment = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["plan", "-i", path.to_str().unwrap(), "-o", "json"])
        .env("NO_COLOR", "1")
        .env("DROVER_MAX_UNAVAILABLE", "50%")
        .output()
        .unwrap();
    let document: serde_json::Value = serde_json::from_slice(&from_environment.stdout).unwrap();
    assert_eq!(document["summary"]["max_unavailable"], 4);
    for bad in ["0%", "101%", "x%", "0"] {
        let refused = run_plan("plans/06-auto-batches.yaml", &["--max-unavailable", bad]);
        assert_eq!(refused.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&refused).contains("percentage"),
            "{}",
            stderr(&refused)
        );
    }
}

/// Each bad inventory is refused with exit 2, a message naming the file, line and field, and
/// nothing on stdout.
#[test]
fn bad_inventories_exit_two_naming_file_line_and_field() {
    let cases = [
        ("bad/malformed.yaml", "malformed.yaml:3:"),
        ("bad/malformed.json", "malformed.json:4:"),
        ("bad/unknown-key.yaml", "colour"),
        (
            "bad/unknown-host.yaml",
            "unknown-host.yaml:6:21: vms[1].host",
        ),
        ("bad/duplicate-host.yaml", "duplicate-host.yaml:5:"),
        ("bad/duplicate-vm.yaml", "duplicate-vm.yaml:6:"),
        ("bad/negative-size.yaml", "vms[0].memory_mib"),
        ("bad/over-capacity.yaml", "over capacity"),
        ("bad/bad-version.yaml", "hosts[0].version"),
        ("bad/bad-role.yaml", "hosts[0].role"),
        ("bad/zero-max-unavailable.yaml", "policy.max_unavailable"),
        ("bad/missing-field.yaml", "memory_mib"),
        (
            "bad/unknown-selected-host.yaml",
            "unknown-selected-host.yaml:3:",
        ),
    ];
    for (file, expected) in cases {
        let output = run_plan(file, &[]);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{file}: {message}");
        assert!(
            message.contains(expected),
            "{file}: expected {expected:?} in {message:?}"
        );
        assert!(output.stdout.is_empty(), "{file}: bad input prints no data");
    }
}

#[test]
fn missing_file_and_bad_flags_exit_two() {
    assert_eq!(
        run_plan("plans/does-not-exist.yaml", &[]).status.code(),
        Some(2)
    );
    assert_eq!(drover(&["plan"]).status.code(), Some(2));
    assert_eq!(
        drover(&["plan", "-i", "x", "-o", "xml"]).status.code(),
        Some(2)
    );
}

#[test]
fn simulate_reports_a_timeline_and_is_deterministic() {
    let path = testdata("plans/05-maintenance-and-down.yaml");
    let args = [
        "simulate",
        "-i",
        path.to_str().unwrap(),
        "--seed",
        "7",
        "-o",
        "json",
    ];
    let first = drover(&args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(first.stdout, drover(&args).stdout, "same seed, same report");
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(report["makespan_secs"].as_u64().unwrap() > 0);
    assert_eq!(report["peak_hosts_unavailable"], 2);
    let hosts: Vec<&str> = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert!(!hosts.contains(&"hv3"), "a down host is not upgraded");
    assert!(hosts.contains(&"hv2"), "a host in maintenance is upgraded");
}

#[test]
fn simulate_of_an_infeasible_plan_exits_three() {
    let path = testdata("plans/08-no-capacity.yaml");
    let output = drover(&["simulate", "-i", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn demo_runs_without_arguments_and_ends_with_a_summary() {
    let output = drover(&["demo"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("Plan for cluster pool-a"), "{text}");
    assert!(text.contains("MAKESPAN"), "{text}");
}

#[test]
fn generated_inventories_plan_cleanly() {
    let output = drover(&[
        "generate",
        "--hosts",
        "30",
        "--seed",
        "3",
        "--anti-affinity-groups",
        "4",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let directory = std::env::temp_dir().join(format!("drover-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let file = directory.join("generated.yaml");
    std::fs::write(&file, &output.stdout).unwrap();
    let plan = drover(&["plan", "-i", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    std::fs::remove_dir_all(&directory).unwrap();
}

#[test]
fn bench_quick_prints_ratios() {
    let output = drover(&["bench", "--quick", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let scenarios = document["scenarios"].as_array().unwrap();
    assert!(scenarios.len() >= 6);
    for scenario in scenarios {
        assert!(scenario["migrations_ratio"].as_f64().unwrap() >= 1.0);
        assert_eq!(scenario["move_back_ratio"].as_f64().unwrap(), 2.0);
    }
}

#[test]
fn discover_writes_an_inventory_that_plans() {
    let path = testdata("runs/small-pool.yaml");
    let output = drover(&["discover", "-i", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let directory =
        std::env::temp_dir().join(format!("drover-discover-test-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let file = directory.join("discovered.yaml");
    std::fs::write(&file, &output.stdout).unwrap();
    let plan = drover(&["plan", "-i", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let document: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(document["summary"]["hosts_to_upgrade"], 5);
    std::fs::remove_dir_all(&directory).unwrap();
}
