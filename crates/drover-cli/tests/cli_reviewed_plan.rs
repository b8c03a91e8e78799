//! `drover run --plan FILE` through the real binary: the reviewed plan is what runs (waves and
//! every VM action as reviewed, also after the run was stopped and continued), small drift on
//! the platform re-plans only the VMs that changed and says so, unsafe drift is refused with
//! exit 3 and the differences (nothing changed), and a plan of another inventory is bad input.

mod cli_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn testdata(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(relative)
}

struct Workspace {
    directory: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        Workspace {
            directory: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    fn drover(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_drover"))
            .arg("--state")
            .arg(self.path("state.db"))
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("DROVER_STATE")
            .output()
            .unwrap()
    }

    /// `drover plan -i INVENTORY -o json > plan.json`.
    fn review(&self, inventory: &Path) -> PathBuf {
        let output = self.drover(&["plan", "-i", inventory.to_str().unwrap(), "-o", "json"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let plan = self.path("plan.json");
        std::fs::write(&plan, &output.stdout).unwrap();
        plan
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(output)))
}

/// Every action of a plan document as (wave, vm, kind, from, to).
fn planned_actions(plan: &serde_json::Value) -> Vec<(u64, String, String, String, String)> {
    let mut actions = Vec::new();
    for wave in plan["waves"].as_array().unwrap() {
        for action in wave["actions"].as_array().unwrap() {
            actions.push((
                wave["number"].as_u64().unwrap(),
                action["vm"].as_str().unwrap().to_string(),
                action["kind"].as_str().unwrap().to_string(),
                action["from"].as_str().unwrap().to_string(),
                action["to"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    actions
}

/// Every VM action a report says the run did, in the same shape.
fn executed_actions(report: &serde_json::Value) -> Vec<(u64, String, String, String, String)> {
    report["vm_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["wave"].as_u64().unwrap(),
                a["vm"].as_str().unwrap().to_string(),
                a["action"].as_str().unwrap().to_string(),
                a["from"].as_str().unwrap().to_string(),
                a["to"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn sorted<T: Ord>(mut list: Vec<T>) -> Vec<T> {
    list.sort();
    list
}

#[test]
fn the_reviewed_plan_is_what_runs() {
    let workspace = Workspace::new();
    let inventory = testdata("runs/restarted-twice.yaml");
    let plan_path = workspace.review(&inventory);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    let output = workspace.drover(&[
        "run",
        "--plan",
        plan_path.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("running it as reviewed"),
        "{}",
        stderr(&output)
    );
    let report = json(&output);
    // The same waves in the same order, every VM action as reviewed (without --plan the run
    // re-plans after each wave and upgrades h3 before h2 here).
    assert_eq!(
        sorted(executed_actions(&report)),
        sorted(planned_actions(&plan)),
        "{report}"
    );
}

#[test]
fn a_stopped_run_continues_with_the_reviewed_plan() {
    let workspace = Workspace::new();
    let text = std::fs::read_to_string(testdata("runs/restarted-twice.yaml"))
        .unwrap()
        .replace(
            "policy: {max_unavailable: 1}",
            "policy: {max_unavailable: 1, approval: manual}",
        );
    let inventory = workspace.path("gated.yaml");
    std::fs::write(&inventory, text).unwrap();
    let plan_path = workspace.review(&inventory);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    let waiting = workspace.drover(&[
        "run",
        "--plan",
        plan_path.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "--run-id",
        "g1",
    ]);
    assert_eq!(waiting.status.code(), Some(5), "{}", stderr(&waiting));
    // A new process replays the journal and continues: still the reviewed plan.
    let approved = workspace.drover(&["approve", "g1", "-o", "json"]);
    assert_eq!(approved.status.code(), Some(0), "{}", stderr(&approved));
    assert_eq!(
        sorted(executed_actions(&json(&approved))),
        sorted(planned_actions(&plan))
    );
}

/// The command driver's fake platform (shell scripts keeping state in files) and its inventory.
fn fake_platform(workspace: &Workspace) -> (PathBuf, PathBuf) {
    let platform = workspace.path("platform");
    let text = cli_common::fake_platform(&platform);
    let inventory = workspace.path("inventory.yaml");
    std::fs::write(&inventory, text).unwrap();
    (platform, inventory)
}

fn write(path: PathBuf, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("{text}\n")).unwrap();
}

#[test]
fn small_drift_replans_only_the_vms_that_changed_and_says_so() {
    let workspace = Workspace::new();
    let (platform, inventory) = fake_platform(&workspace);
    let plan_path = workspace.review(&inventory);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    // Since the review: web-02 was stopped, web-03 was created on xs02.
    write(platform.join("vms/web-02/state"), "stopped");
    for (file, value) in [
        ("host", "xs02"),
        ("state", "running"),
        ("memory_mib", "1024"),
        ("vcpus", "1"),
    ] {
        write(platform.join("vms/web-03").join(file), value);
    }
    let output = workspace.drover(&[
        "run",
        "--plan",
        plan_path.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("re-planned only the VMs that changed"),
        "{message}"
    );
    let replanned: Vec<&str> = message
        .lines()
        .filter(|l| l.trim_start().starts_with("- vm "))
        .collect();
    assert_eq!(replanned.len(), 2, "{message}");
    assert!(
        replanned[0].contains("web-02") && replanned[0].ends_with("no action"),
        "{message}"
    );
    assert!(replanned[1].contains("web-03: no action →"), "{message}");
    // Every other VM did exactly what was reviewed.
    let unchanged = |actions: Vec<(u64, String, String, String, String)>| {
        sorted(
            actions
                .into_iter()
                .filter(|a| a.1 != "web-02" && a.1 != "web-03")
                .collect(),
        )
    };
    let report = json(&output);
    assert_eq!(
        unchanged(executed_actions(&report)),
        unchanged(planned_actions(&plan)),
        "{report}"
    );
    assert!(executed_actions(&report).iter().any(|a| a.1 == "web-03"));
    assert!(!executed_actions(&report).iter().any(|a| a.1 == "web-02"));
    assert_eq!(report["phase"], "completed");
}

#[test]
fn unsafe_drift_is_refused_with_the_differences_and_nothing_changes() {
    let workspace = Workspace::new();
    let (platform, inventory) = fake_platform(&workspace);
    let plan_path = workspace.review(&inventory);
    // Since the review, someone upgraded xs02 by hand: other waves, other moves.
    write(platform.join("hosts/xs02/version"), "8.2.1");
    let output = workspace.drover(&[
        "run",
        "--plan",
        plan_path.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("no longer the safe one"), "{message}");
    assert!(message.contains("wave 2: compute xs02 →"), "{message}");
    assert!(output.stdout.is_empty());
    let history = workspace.drover(&["history", "-o", "json"]);
    assert_eq!(json(&history), serde_json::json!([]), "no run was created");
    for host in ["xs01", "xs02", "xs03"] {
        let cordoned = std::fs::read_to_string(platform.join("hosts").join(host).join("cordoned"));
        assert_eq!(cordoned.unwrap().trim(), "false", "{host} untouched");
    }
}

#[test]
fn a_plan_of_another_inventory_or_no_plan_at_all_is_bad_input() {
    let workspace = Workspace::new();
    let plan_path = workspace.review(&testdata("runs/small-pool.yaml"));
    let other = testdata("runs/restarted-twice.yaml");
    let output = workspace.drover(&[
        "run",
        "--plan",
        plan_path.to_str().unwrap(),
        "-i",
        other.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is not the plan of"),
        "{}",
        stderr(&output)
    );

    let garbage = workspace.path("garbage.json");
    std::fs::write(&garbage, "{\"cluster\": \"small\", \"waves\": 3}").unwrap();
    let output = workspace.drover(&[
        "run",
        "--plan",
        garbage.to_str().unwrap(),
        "-i",
        other.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("garbage.json:1:"), "{message}");
    assert_eq!(
        json(&workspace.drover(&["history", "-o", "json"])),
        serde_json::json!([])
    );
}

#[test]
fn a_reviewed_plan_with_bad_returns_is_bad_input_naming_the_file_and_the_field() {
    let workspace = Workspace::new();
    let inventory = testdata("plans/15-drbd-pool.yaml");
    let plan_path = workspace.review(&inventory);
    let reviewed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    assert_eq!(reviewed["waves"][0]["returns"][0]["kind"], "migrate");
    let run = |plan: &Path| {
        workspace.drover(&[
            "run",
            "--plan",
            plan.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
        ])
    };

    // A kind the document does not know: refused while reading, with where and which field.
    let mut unknown_kind = reviewed.clone();
    unknown_kind["waves"][0]["returns"][0]["kind"] = "teleport".into();
    let path = workspace.path("unknown-kind.json");
    write(
        path.clone(),
        &serde_json::to_string_pretty(&unknown_kind).unwrap(),
    );
    let output = run(&path);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("unknown-kind.json:") && message.contains("waves[0].returns[0].kind"),
        "{message}"
    );

    // A return the plan of this inventory does not have: refused, saying which VM differs.
    let mut moved_return = reviewed.clone();
    moved_return["waves"][0]["returns"][0]["to"] = "node1".into();
    let path = workspace.path("moved-return.json");
    write(
        path.clone(),
        &serde_json::to_string_pretty(&moved_return).unwrap(),
    );
    let output = run(&path);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("is not the plan of"), "{message}");
    assert!(
        message.contains("vm db-3:") && message.contains("(return)"),
        "{message}"
    );
    assert_eq!(
        json(&workspace.drover(&["history", "-o", "json"])),
        serde_json::json!([])
    );
}
