//! Knowing what to upgrade, through the real binary: upgrade paths, hotfixes and gates from a
//! release catalog in `drover plan`, refusals of unreachable targets and bad catalogs, `drover
//! check` (update queries parsed from a real apt capture, watch list, outdated events,
//! `--write-inventory`), a forced host planned afterwards, and `drover outdated`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn catalog_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/catalog")
}

/// `drover ARGS` run from testdata/catalog (the check command there is a relative script).
fn drover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .current_dir(catalog_data())
        .env("NO_COLOR", "1")
        .env_remove("DROVER_INVENTORY")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(output)))
}

fn path_of<'a>(plan: &'a serde_json::Value, host: &str) -> &'a serde_json::Value {
    plan["upgrade_paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["host"] == host)
        .unwrap_or_else(|| panic!("no path for {host}: {plan}"))
}

fn texts(value: &serde_json::Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn the_plan_shows_each_hosts_path_hotfixes_and_reboots() {
    let output = drover(&["plan", "-i", "eus-pool.yaml", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = json(&output);
    assert_eq!(plan["feasible"], true);
    // EUS-to-EUS: the 4.12.0 host takes the z-stream jump, then passes through the odd minor.
    let kvm01 = path_of(&plan, "kvm01");
    assert_eq!(
        texts(&kvm01["hops"]),
        ["4.12.30", "4.13.5", "4.14.3", "4.14.9"]
    );
    // 4.12.30 reboots; 4.13.5's reboot is deferred to 4.14.3's; 4.14.9 needs none; the kernel
    // hotfix HF-1420 applied after it needs one more: three reboots, not five.
    assert_eq!(kvm01["reboots"], 3, "{kvm01}");
    let kvm04 = path_of(&plan, "kvm04");
    assert_eq!(texts(&kvm04["hops"]), ["4.14.9"]);
    assert_eq!(
        kvm04["reboots"], 1,
        "4.14.9 needs no reboot, HF-1420 does: {kvm04}"
    );
    // HF-1403 supersedes HF-1402 and HF-1401; HF-1420 rolls up HF-1410 and meets HF-1411's need.
    let hotfixes = texts(&kvm01["hotfixes"]);
    assert!(
        hotfixes.contains(&"HF-1403") && hotfixes.contains(&"HF-1420"),
        "{hotfixes:?}"
    );
    assert!(
        !hotfixes.contains(&"HF-1401") && !hotfixes.contains(&"HF-1410"),
        "never a superseded hotfix: {hotfixes:?}"
    );
    let position = |id: &str| hotfixes.iter().position(|h| *h == id).unwrap();
    assert!(
        position("HF-1420") < position("HF-1411"),
        "prerequisites first: {hotfixes:?}"
    );
    // kvm03 already runs the target and is not forced: no path, not touched.
    assert!(plan["upgrade_paths"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["host"] != "kvm03"));
    assert_eq!(plan["compatibility_level_after"], "4.14");
    let checks: Vec<&str> = plan["prechecks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "pass")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for id in ["upgrade-path", "control-plane", "hotfixes"] {
        assert!(checks.contains(&id), "{id} passes: {checks:?}");
    }

    let table = drover(&["plan", "-i", "eus-pool.yaml"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("4.12.30 → 4.13.5 → 4.14.3 → 4.14.9"),
        "{text}"
    );
    assert!(text.contains("cluster compatibility level 4.14"), "{text}");
}

#[test]
fn an_unreachable_target_is_a_precheck_failure_naming_the_missing_edge() {
    let output = drover(&["plan", "-i", "unreachable-in-eus.yaml"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("upgrade-path"), "{message}");
    assert!(
        message.contains("4.14.10"),
        "names the edge 4.15.1 needs: {message}"
    );
    let run = Command::new(env!("CARGO_BIN_EXE_drover"))
        .current_dir(catalog_data())
        .args([
            "--state",
            "/nonexistent/never-created.db",
            "run",
            "-i",
            "unreachable-in-eus.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(3),
        "run refuses too: {}",
        stderr(&run)
    );
    assert!(!Path::new("/nonexistent/never-created.db").exists());
}

#[test]
fn the_control_plane_gate_stops_a_target_the_manager_is_too_old_for() {
    let output = drover(&["plan", "-i", "old-control-plane.yaml", "-o", "json"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let plan = json(&output);
    assert_eq!(plan["feasible"], false);
    let gate = plan["prechecks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "control-plane")
        .unwrap();
    assert_eq!(gate["status"], "fail", "{gate}");
    let message = gate["message"].as_str().unwrap();
    assert!(
        message.contains("5.3") && message.contains("5.2"),
        "{message}"
    );
    assert!(plan["waves"].as_array().unwrap().is_empty());
}

#[test]
fn a_contradictory_catalog_is_bad_input_naming_the_hotfixes() {
    let output = drover(&["plan", "-i", "bad-catalog-pool.yaml"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("contradictory-catalog.yaml"), "{message}");
    assert!(
        message.contains("HF-1") && message.contains("HF-2"),
        "{message}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn check_finds_watched_updates_and_outdated_hosts() {
    let output = drover(&["check", "-i", "eus-pool.yaml", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let check = json(&output);
    let host = |name: &str| {
        check["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == name)
            .unwrap()
            .clone()
    };
    let kvm03 = host("kvm03");
    assert_eq!(kvm03["updates_available"], true, "{kvm03}");
    let packages: Vec<&str> = kvm03["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // Only watched packages: the user's `bash*` (no kernel or hypervisor package is in the capture).
    assert_eq!(packages, ["bash"], "{kvm03}");
    assert_eq!(
        host("kvm02")["updates_available"],
        true,
        "older than the target"
    );
    assert!(host("kvm02")["packages"].as_array().unwrap().is_empty());
    let outdated: Vec<&str> = check["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "outdated")
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    assert_eq!(outdated, ["kvm01", "kvm02", "kvm04"]);
}

#[test]
fn hosts_with_updates_at_the_target_are_planned_after_check_and_others_are_not() {
    let directory = tempfile::tempdir().unwrap();
    let written = directory.path().join("checked.yaml");
    let output = drover(&[
        "check",
        "-i",
        "eus-pool.yaml",
        "--write-inventory",
        written.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(text.contains("force_hosts"), "{text}");
    assert!(
        text.contains(catalog_data().canonicalize().unwrap().to_str().unwrap())
            || text.contains("testdata/catalog/releases.yaml"),
        "the catalog is named by an absolute path: {text}"
    );
    let plan = json(&drover(&[
        "plan",
        "-i",
        written.to_str().unwrap(),
        "-o",
        "json",
    ]));
    let upgraded: Vec<&str> = plan["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["hosts"].as_array().unwrap())
        .map(|h| h.as_str().unwrap())
        .collect();
    assert!(
        upgraded.contains(&"kvm03"),
        "kvm03 has package updates: {upgraded:?}"
    );
    assert_eq!(upgraded.len(), 4, "{upgraded:?}");
    // Without the check, kvm03 is left alone: no needless evacuation.
    let plain = json(&drover(&["plan", "-i", "eus-pool.yaml", "-o", "json"]));
    let skipped: Vec<&str> = plain["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["host"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["kvm03"]);
}

#[test]
fn outdated_lists_old_hosts_and_the_vms_still_on_them() {
    let output = drover(&["outdated", "-i", "eus-pool.yaml", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let outdated = json(&output);
    let hosts: Vec<&str> = outdated["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["kvm01", "kvm02", "kvm04"]);
    assert_eq!(outdated["hosts"][0]["vms"][0], "db-1");
    let table = drover(&["outdated", "-i", "eus-pool.yaml"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("3 VM(s) still run on outdated hosts"),
        "{text}"
    );
}

/// `drover run` on the command driver's fake platform with a release catalog: each host's
/// upgrade command gets its hops, hotfixes and reboots, and the run completes.
#[test]
fn a_run_tells_each_installer_its_path_and_hotfixes() {
    let directory = tempfile::tempdir().unwrap();
    let work = directory.path();
    let examples =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../drover-command/examples/fake-platform");
    let examples = std::fs::canonicalize(examples).unwrap();
    let platform = work.join("platform");
    let init = Command::new("sh")
        .arg(examples.join("init.sh"))
        .arg(&platform)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));
    std::fs::write(
        work.join("catalog.yaml"),
        "catalog: 1\nproduct: fake\nchannels: [stable]\nreleases:\n\
         \x20 - {version: \"8.0.0\", channels: [stable]}\n\
         \x20 - {version: \"8.1\", channels: [stable], upgrade_from: [\"8.0.*\"], reboot_deferrable: true, compatibility_levels: [\"8.1\"]}\n\
         \x20 - {version: \"8.2.1\", channels: [stable], upgrade_from: [\"8.1\"], compatibility_levels: [\"8.1\", \"8.2\"]}\n\
         hotfixes:\n\
         \x20 - {id: HF-1, applies_to: [\"8.2.1\"], reboot_required: false}\n",
    )
    .unwrap();
    let log = work.join("installer.log");
    let upgrade = format!(
        "upgrade: [sh, -c, 'echo \"$1 $2 $3 $4\" >> {}; exec sh {} {} \"$1\" \"$5\"', sh, \"{{host}}\", \"{{hops}}\", \"{{hotfixes}}\", \"{{reboots}}\", \"{{target}}\"]",
        log.display(),
        examples.join("upgrade.sh").display(),
        platform.display()
    );
    let text = std::fs::read_to_string(examples.join("inventory.yaml"))
        .unwrap()
        .replace(
            "crates/drover-command/examples/fake-platform",
            examples.to_str().unwrap(),
        )
        .replace("/tmp/drover-fake-platform", platform.to_str().unwrap());
    let upgrade_line = text
        .lines()
        .find(|line| line.trim_start().starts_with("upgrade:"))
        .unwrap()
        .to_string();
    let text = text.replace(upgrade_line.trim_start(), &upgrade)
        + "upgrade: {catalog: catalog.yaml, channel: stable}\n";
    let inventory = work.join("inventory.yaml");
    std::fs::write(&inventory, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("--state")
        .arg(work.join("state.db"))
        .args(["run", "-i", inventory.to_str().unwrap(), "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json(&output)["phase"], "completed");
    let logged = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<&str> = logged.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "xs01 8.1,8.2.1 HF-1 1",
            "xs02 8.1,8.2.1 HF-1 1",
            "xs03 8.1,8.2.1 HF-1 1"
        ]
    );
}

/// `raise_compatibility_level_to: auto` is resolved from the catalog when the run starts: the
/// plan's final step names the level, the run raises it, and without a catalog `auto` is refused.
#[test]
fn an_auto_compatibility_level_comes_from_the_catalog() {
    let plan = json(&drover(&[
        "plan",
        "-i",
        "auto-compatibility-level.yaml",
        "-o",
        "json",
    ]));
    assert_eq!(plan["final_compatibility_level"], "4.14", "{plan}");
    let directory = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_drover"))
        .current_dir(catalog_data())
        .arg("--state")
        .arg(directory.path().join("state.db"))
        .args(["run", "-i", "auto-compatibility-level.yaml", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_eq!(json(&run)["compatibility_level_raised"], "4.14");
    let without_catalog = directory.path().join("no-catalog.yaml");
    std::fs::write(
        &without_catalog,
        "cluster: {name: c, target_version: \"2.0\"}\npolicy: {raise_compatibility_level_to: auto}\nhosts:\n  - {name: h1, version: \"1.0\", memory_mib: 4096, cpus: 2}\n  - {name: h2, version: \"1.0\", memory_mib: 4096, cpus: 2}\n",
    )
    .unwrap();
    let refused = drover(&["plan", "-i", without_catalog.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("upgrade.catalog"),
        "{}",
        stderr(&refused)
    );
}

/// `drover ARGS` run from another directory than the inventory's.
fn drover_in(directory: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .current_dir(directory)
        .env("NO_COLOR", "1")
        .env_remove("DROVER_INVENTORY")
        .output()
        .unwrap()
}

#[test]
fn check_command_paths_resolve_against_the_inventory_like_the_catalog() {
    let elsewhere = tempfile::tempdir().unwrap();
    let inventory = catalog_data().join("eus-pool.yaml");
    let output = drover_in(
        elsewhere.path(),
        &["check", "-i", inventory.to_str().unwrap(), "-o", "json"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let check = json(&output);
    let kvm03 = check["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "kvm03")
        .unwrap();
    assert!(kvm03.get("error").is_none(), "{kvm03}");
    assert_eq!(kvm03["updates_available"], true, "{kvm03}");
}

/// An inventory like eus-pool.yaml whose check command is `script` (a file next to it).
fn pool_with_check_script(directory: &Path, script: &str) -> PathBuf {
    let text = std::fs::read_to_string(catalog_data().join("eus-pool.yaml"))
        .unwrap()
        .replace(
            "check_command: [sh, check-updates.sh, \"{host}\"]",
            "check_command: [./check.sh, \"{host}\"]",
        )
        .replace(
            "catalog: releases.yaml",
            &format!(
                "catalog: {}",
                catalog_data().join("releases.yaml").display()
            ),
        );
    let inventory = directory.join("pool.yaml");
    std::fs::write(&inventory, text).unwrap();
    let script_path = directory.join("check.sh");
    std::fs::write(&script_path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    inventory
}

#[test]
fn a_failed_check_is_an_error_for_that_host_and_a_non_zero_exit() {
    let directory = tempfile::tempdir().unwrap();
    let script = "#!/bin/sh\ncase \"$1\" in kvm03) echo 'mirror unreachable' >&2; exit 1 ;; *) echo Listing... ;; esac\n";
    let inventory = pool_with_check_script(directory.path(), script);
    let output = drover(&["check", "-i", inventory.to_str().unwrap(), "-o", "json"]);
    assert_eq!(output.status.code(), Some(7), "{}", stderr(&output));
    assert!(stderr(&output).contains("kvm03"), "{}", stderr(&output));
    let check = json(&output);
    let host = |name: &str| {
        check["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == name)
            .unwrap()
            .clone()
    };
    let kvm03 = host("kvm03");
    assert!(
        kvm03["updates_available"].is_null(),
        "never \"no updates\": {kvm03}"
    );
    assert!(
        kvm03["error"]
            .as_str()
            .unwrap()
            .contains("mirror unreachable"),
        "{kvm03}"
    );
    assert!(host("kvm01").get("error").is_none());

    let table = drover(&["check", "-i", inventory.to_str().unwrap()]);
    assert_eq!(table.status.code(), Some(7));
    let line = String::from_utf8_lossy(&table.stdout)
        .lines()
        .find(|l| l.starts_with("kvm03"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("unknown") && line.contains("check failed"),
        "{line}"
    );
}
