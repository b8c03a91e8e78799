//! A pool of one (a standalone server, which XenServer's wizard upgrades too) through the real
//! binary: refused with a resolvable precheck that names the host and its VMs, planned and run
//! with `--resolve` by shutting the VMs down and starting them again after the upgrade.

use std::process::{Command, Output};

/// One host, a migratable VM, a VM that restarts elsewhere, a local-storage VM and a stopped one.
const STANDALONE: &str = r#"cluster: {name: standalone, target_version: "8.2.1"}
hosts:
  - {name: xs01, role: master, version: "8.0.0", memory_mib: 131072, cpus: 32}
vms:
  - {name: web-01, host: xs01, memory_mib: 8192, vcpus: 4}
  - {name: db-01, host: xs01, memory_mib: 32768, vcpus: 8, restart_policy: always, migratable: false}
  - {name: scratch, host: xs01, memory_mib: 4096, local_storage: true}
  - {name: old-test, host: xs01, memory_mib: 2048, state: stopped}
"#;

struct Workspace {
    directory: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("standalone.yaml"), STANDALONE).unwrap();
        Workspace { directory }
    }

    fn drover(&self, args: &[&str]) -> Output {
        let inventory = self.directory.path().join("standalone.yaml");
        Command::new(env!("CARGO_BIN_EXE_drover"))
            .arg("--state")
            .arg(self.directory.path().join("state.db"))
            .args(args)
            .arg("-i")
            .arg(inventory)
            .env("NO_COLOR", "1")
            .env_remove("DROVER_STATE")
            .output()
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&output.stdout), text(&output.stderr)))
}

#[test]
fn a_pool_of_one_is_refused_without_resolve_and_names_what_would_stop() {
    let workspace = Workspace::new();
    let output = workspace.drover(&["plan", "-o", "json"]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    let plan = json(&output);
    let failed: Vec<&serde_json::Value> = plan["prechecks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{plan}");
    assert_eq!(failed[0]["id"], "pool-of-one");
    assert_eq!(failed[0]["resolvable"], true);
    assert_eq!(
        failed[0]["subjects"],
        serde_json::json!(["xs01", "web-01", "db-01"])
    );
    assert!(
        failed[0]["message"].as_str().unwrap().contains("--resolve"),
        "{plan}"
    );
}

#[test]
fn a_pool_of_one_is_planned_with_resolve_by_shutting_its_vms_down() {
    let workspace = Workspace::new();
    let output = workspace.drover(&["plan", "--resolve", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let plan = json(&output);
    assert_eq!(plan["summary"]["waves"], 1);
    assert_eq!(plan["summary"]["shutdowns"], 3);
    assert_eq!(plan["summary"]["migrations"], 0);
    let downtime = plan["downtime"].as_array().unwrap();
    let pool_of_one_reasons = downtime
        .iter()
        .filter(|d| d["reason"].as_str().unwrap().starts_with("pool of one"))
        .count();
    assert_eq!(pool_of_one_reasons, 2, "{plan}");
    assert!(plan["prechecks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == "pool-of-one" && c["status"] == "warn"));
    // The table an operator reads says it too.
    let table = workspace.drover(&["plan", "--resolve"]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table.stderr));
    assert!(
        text(&table.stdout).contains("pool of one"),
        "{}",
        text(&table.stdout)
    );
}

#[test]
fn a_pool_of_one_runs_with_resolve_and_starts_its_vms_again() {
    let workspace = Workspace::new();
    let output = workspace.drover(&["run", "--resolve", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report = json(&output);
    assert_eq!(report["phase"], "completed", "{report}");
    let hosts = report["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["result"], "upgraded", "{report}");
    assert_eq!(report["shutdowns"], 3, "{report}");
    assert_eq!(report["migrations"], 0, "{report}");
    // The platform says every VM that ran is running again, on the upgraded host.
    let discovered = workspace.drover(&["discover", "-o", "yaml"]);
    assert_eq!(
        discovered.status.code(),
        Some(0),
        "{}",
        text(&discovered.stderr)
    );
    let inventory = text(&discovered.stdout);
    assert!(inventory.contains("version: 8.2.1"), "{inventory}");
    assert!(inventory.contains("old-test"), "{inventory}");
    assert_eq!(
        inventory.matches("state: stopped").count(),
        1,
        "only old-test stays stopped: {inventory}"
    );
}
