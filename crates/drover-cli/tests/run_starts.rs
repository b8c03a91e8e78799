//! Starting runs under faults, through the real binary: a start whose discovery fails, a start
//! killed during discovery, simultaneous starts on one cluster, and a legacy run that never wrote
//! its start entry. None of them may leave the cluster locked, and no run may be driven twice.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod cli_common;

use cli_common::{fake_platform, stderr, Workspace};

/// A fake platform (the command driver's example scripts) in a temporary directory, with its
/// inventory rewritten to point there.
struct FakePlatform {
    workspace: Workspace,
    inventory_text: String,
}

impl FakePlatform {
    fn new() -> Self {
        let workspace = Workspace::new();
        let inventory_text = fake_platform(&workspace.path("platform"));
        FakePlatform {
            workspace,
            inventory_text,
        }
    }

    /// Every host back on the old version, every VM where it started.
    fn reset(&self) {
        fake_platform(&self.workspace.path("platform"));
    }

    fn state(&self) -> PathBuf {
        self.workspace.state()
    }

    /// Writes the inventory with its `discover` command replaced (None keeps the original).
    fn inventory(&self, name: &str, discover: Option<&str>) -> PathBuf {
        let mut text = self.inventory_text.clone();
        if let Some(replacement) = discover {
            let line = text
                .lines()
                .find(|line| line.trim_start().starts_with("discover:"))
                .unwrap()
                .to_string();
            text = text.replace(line.trim_start(), &format!("discover: {replacement}"));
        }
        let path = self.workspace.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn command(&self, args: &[&str]) -> Command {
        self.workspace.command(args)
    }

    fn drover(&self, args: &[&str]) -> Output {
        self.workspace.drover(args)
    }

    fn run(&self, inventory: &Path) -> Output {
        self.drover(&["run", "-i", inventory.to_str().unwrap(), "-o", "json"])
    }
}

fn phase(output: &Output) -> String {
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", stderr(output)));
    report["phase"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_start_whose_discovery_fails_leaves_the_cluster_free() {
    let platform = FakePlatform::new();
    let failing = platform.inventory("failing.yaml", Some("[sh, -c, 'exit 7']"));
    let failed = platform.run(&failing);
    assert_ne!(failed.status.code(), Some(0), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("discovery failed"),
        "{}",
        stderr(&failed)
    );
    let history = platform.drover(&["history", "-o", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(
        runs.as_array().map(Vec::len),
        Some(0),
        "a failed start left a run: {runs}"
    );
    let working = platform.inventory("working.yaml", None);
    let completed = platform.run(&working);
    assert_eq!(completed.status.code(), Some(0), "{}", stderr(&completed));
    assert_eq!(phase(&completed), "completed");
}

#[test]
fn a_start_killed_during_discovery_leaves_the_cluster_free() {
    let platform = FakePlatform::new();
    let slow = platform.inventory("slow.yaml", Some("[sh, -c, 'sleep 20']"));
    // Killed while its discovery runs: before its first journal entry.
    let mut child = platform
        .command(&["run", "-i", slow.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let working = platform.inventory("working.yaml", None);
    let completed = platform.run(&working);
    assert_eq!(completed.status.code(), Some(0), "{}", stderr(&completed));
    assert_eq!(phase(&completed), "completed");
}

#[test]
fn of_simultaneous_starts_on_one_cluster_one_runs_and_the_others_are_told_it_is_locked() {
    let platform = FakePlatform::new();
    let inventory = platform.inventory("inventory.yaml", None);
    // Started together, so their default run ids fall in the same second.
    let children: Vec<_> = (0..4)
        .map(|_| {
            platform
                .command(&["run", "-i", inventory.to_str().unwrap(), "-o", "json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect();
    let completed = outputs
        .iter()
        .filter(|output| output.status.code() == Some(0))
        .count();
    assert_eq!(completed, 1, "exactly one start may drive the cluster");
    for refused in outputs.iter().filter(|o| o.status.code() != Some(0)) {
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(refused));
        assert!(
            stderr(refused).contains("is locked by unfinished run"),
            "{}",
            stderr(refused)
        );
    }
    let history = platform.drover(&["history", "-o", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
}

/// What an older drover left when it crashed between creating the run and its start entry: a
/// run record (with the driver options a real start records, taken from a completed run) and
/// its cluster's lock, but no journal.
fn legacy_run_without_start_entry(platform: &FakePlatform, inventory: &Path) {
    let completed = platform.run(inventory);
    assert_eq!(completed.status.code(), Some(0), "{}", stderr(&completed));
    {
        let mut store = drover_store::Store::open(&platform.state()).unwrap();
        let options_json = store.runs(None, 1).unwrap()[0].options_json.clone();
        platform.reset();
        let text = std::fs::read_to_string(inventory).unwrap();
        store
            .create_run(&drover_store::NewRun {
                id: "fake-pool-legacy".into(),
                cluster: "fake-pool".into(),
                inventory_sha256: "0".repeat(64),
                inventory_text: text,
                state: "starting".into(),
                created_at_ms: 1,
                options_json,
            })
            .unwrap();
        // A holder on this machine whose process is gone (pids never reach this value).
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let dead_holder = format!("4194304@{}", hostname.trim());
        store
            .acquire_lock("fake-pool", "fake-pool-legacy", &dead_holder, 1)
            .unwrap();
    }
    let locked = platform.run(inventory);
    assert_eq!(locked.status.code(), Some(2), "{}", stderr(&locked));
}

#[test]
fn a_legacy_run_without_a_start_entry_is_released_by_resume() {
    let platform = FakePlatform::new();
    let inventory = platform.inventory("inventory.yaml", None);
    legacy_run_without_start_entry(&platform, &inventory);
    let resume = platform.drover(&["resume", "fake-pool-legacy"]);
    assert_eq!(resume.status.code(), Some(2), "{}", stderr(&resume));
    assert!(
        stderr(&resume).contains("never started"),
        "{}",
        stderr(&resume)
    );
    let completed = platform.run(&inventory);
    assert_eq!(completed.status.code(), Some(0), "{}", stderr(&completed));
    assert_eq!(phase(&completed), "completed");
}

#[test]
fn a_legacy_run_without_a_start_entry_is_released_by_abort() {
    let platform = FakePlatform::new();
    let inventory = platform.inventory("inventory.yaml", None);
    legacy_run_without_start_entry(&platform, &inventory);
    let abort = platform.drover(&["abort", "fake-pool-legacy"]);
    assert_eq!(abort.status.code(), Some(0), "{}", stderr(&abort));
    assert!(
        stderr(&abort).contains("never started"),
        "{}",
        stderr(&abort)
    );
    let completed = platform.run(&inventory);
    assert_eq!(completed.status.code(), Some(0), "{}", stderr(&completed));
    assert_eq!(phase(&completed), "completed");
}
