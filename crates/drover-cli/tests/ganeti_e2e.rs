//! End to end against a REAL Ganeti 3.0 cluster (tests/ganeti harness: three nodes in network
//! namespaces, the `fake` hypervisor, RAPI over HTTPS): `drover run` rolls the cluster through the
//! `kind: ganeti` driver (node drained, instances live-migrated by Ganeti jobs, the node-local
//! instance shut down and started again, upgrade and reboot through the harness's commands, the
//! node undrained and made master candidate again); `kill -9` of drover mid-wave then `drover
//! resume` completes; `drover check` asks the nodes through the harness.
//!
//! Built only with the cargo feature `ganeti-e2e` (README's test command does not build it);
//! `.ci/run` starts the harness once and runs `cargo test -p drover-cli --features ganeti-e2e
//! --test ganeti_e2e` with DROVER_GANETI_RAPI set. With the feature but without the variable the
//! tests FAIL saying how to start the harness. The cluster is used as found: each roll targets
//! one more than the newest version a node runs.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NODES: [&str; 3] = ["gnt1.drover.test", "gnt2.drover.test", "gnt3.drover.test"];

/// One cluster on a machine: scenarios run one after another.
static HARNESS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/ganeti/cluster.sh")
        .canonicalize()
        .unwrap()
}

fn harness_says(args: &[&str]) -> String {
    let output = Command::new(harness()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "cluster.sh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn rapi_url() -> String {
    std::env::var("DROVER_GANETI_RAPI").unwrap_or_else(|_| {
        panic!(
            "DROVER_GANETI_RAPI is not set. The ganeti end-to-end tests need a real Ganeti cluster: \
             run (as root) `tests/ganeti/install.sh && tests/ganeti/cluster.sh up`, then \
             `DROVER_GANETI_RAPI=$(tests/ganeti/cluster.sh rapi-url) cargo test -p drover-cli \
             --features ganeti-e2e --test ganeti_e2e` (.ci/run does this)"
        )
    })
}

/// A node's `version=` and `boot_id=` as the harness reports them.
fn facts(node: &str) -> (String, String) {
    let text = harness_says(&["facts", node]);
    let value = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_string()
    };
    (value("version"), value("boot_id"))
}

/// One more than the newest major version a node runs.
fn next_target() -> String {
    let newest = NODES
        .iter()
        .map(|node| {
            let (version, _) = facts(node);
            version.split('.').next().unwrap().parse::<u64>().unwrap()
        })
        .max()
        .unwrap();
    format!("{}.0", newest + 1)
}

fn gnt(args: &[&str]) -> String {
    let mut full = vec!["exec", "1"];
    full.extend_from_slice(args);
    harness_says(&full)
}

struct Roll {
    work: tempfile::TempDir,
    inventory: PathBuf,
    target: String,
    boot_ids: Vec<String>,
    started_epoch_secs: f64,
}

fn roll(extra_upgrade_section: &str) -> Roll {
    let url = rapi_url();
    let target = next_target();
    let work = tempfile::tempdir().unwrap();
    let inventory = work.path().join("inventory.yaml");
    let script = harness().display().to_string();
    let mut text = format!(
        "cluster: {{name: ganeti-e2e, target_version: \"{target}\"}}\n\
         policy: {{max_unavailable: 1, step_timeout_secs: 120, migration_timeout_secs: 300, upgrade_timeout_secs: 300,\n\
         \x20        reboot_timeout_secs: 300, vm_shutdown_timeout_secs: 10, retry_backoff_initial_secs: 1}}\n\
         hosts:\n"
    );
    for node in NODES {
        text.push_str(&format!(
            "  - {{name: {node}, version: \"1.0\", memory_mib: 4096, cpus: 2}}\n"
        ));
    }
    text.push_str(&format!(
        "driver:\n  kind: ganeti\n  url: \"{url}\"\n  username: {user}\n  password_file: \"{password}\"\n  ca_file: \"{ca}\"\n  job_poll_ms: 200\n  job_timeout_secs: 300\n  reboot_timeout_secs: 300\n  upgrade_timeout_secs: 300\n  commands:\n    host_facts: [\"{script}\", facts, \"{{host}}\"]\n    upgrade: [\"{script}\", upgrade, \"{{host}}\", \"{{target}}\"]\n    reboot: [\"{script}\", reboot, \"{{host}}\"]\n{extra_upgrade_section}",
        user = harness_says(&["rapi-user"]),
        password = harness_says(&["password-file"]),
        ca = harness_says(&["ca-file"]),
    ));
    std::fs::write(&inventory, text).unwrap();
    let boot_ids = NODES.iter().map(|node| facts(node).1).collect();
    Roll {
        work,
        inventory,
        target,
        boot_ids,
        started_epoch_secs: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64(),
    }
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

impl Roll {
    fn drover(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_drover"))
            .arg("--state")
            .arg(self.work.path().join("state.db"))
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn inventory(&self) -> &str {
        self.inventory.to_str().unwrap()
    }

    /// Every node at the target with a new boot id; nothing Drover changed is left: no node
    /// drained, no drover tag, every node a master candidate again (all three were); every
    /// instance running, the node-local one on its own node.
    fn check_rolled(&self) {
        for (index, node) in NODES.iter().enumerate() {
            let (version, boot_id) = facts(node);
            assert_eq!(version, self.target, "{node} upgraded");
            assert_ne!(boot_id, self.boot_ids[index], "{node} rebooted");
        }
        let nodes = gnt(&[
            "gnt-node",
            "list",
            "--no-headers",
            "--separator=|",
            "-o",
            "name,drained,master_candidate,tags",
        ]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split('|').collect();
            assert_eq!(fields[1], "N", "not drained: {line}");
            assert_eq!(fields[2], "Y", "master candidate again: {line}");
            assert!(!fields[3].contains("drover:"), "no drover tag left: {line}");
        }
        let instances = gnt(&[
            "gnt-instance",
            "list",
            "--no-headers",
            "--separator=|",
            "-o",
            "name,pnode,status,disk_template",
        ]);
        for line in instances.lines() {
            let fields: Vec<&str> = line.split('|').collect();
            assert_eq!(fields[2], "running", "instance running: {line}");
            if fields[3] == "file" {
                assert_eq!(fields[0], "fl2");
                assert_eq!(
                    fields[1], "gnt2.drover.test",
                    "local instance on its own node"
                );
            }
        }
    }

    /// Ganeti's job count and job time since the roll started (`cluster.sh job-time`).
    fn ganeti_job_time(&self) -> (u64, f64) {
        let text = harness_says(&["job-time", &format!("{}", self.started_epoch_secs.floor())]);
        let mut parts = text.split_whitespace();
        (
            parts.next().unwrap().parse().unwrap(),
            parts.next().unwrap().parse().unwrap(),
        )
    }
}

#[test]
fn drover_run_rolls_the_real_ganeti_cluster() {
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let roll = roll("");
    let started = Instant::now();
    let output = roll.drover(&["run", "-i", roll.inventory(), "-o", "json"]);
    let wall_secs = started.elapsed().as_secs_f64();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    assert_eq!(report["phase"], "completed", "{report}");
    roll.check_rolled();
    let (jobs, job_secs) = roll.ganeti_job_time();
    eprintln!(
        "ganeti e2e: drover run rolled 3 nodes to {} in {wall_secs:.1} s: {} migrations, {} shutdowns, {} restarts; {jobs} Ganeti jobs ran {job_secs:.1} s (the rest is Drover, the commands and polling)",
        roll.target, report["migrations"], report["shutdowns"], report["restarts"]
    );
    let timeline = roll.drover(&["timeline"]);
    assert_eq!(timeline.status.code(), Some(0));
    eprintln!("{}", String::from_utf8_lossy(&timeline.stdout));
}

/// Polls `drover status` until a migration is in flight; describes the moment.
fn wait_for_migration_in_flight(roll: &Roll, run: &str) -> String {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(180) {
        let output = roll.drover(&["status", run, "-o", "json"]);
        if output.status.success() {
            let status = json(&output);
            let migrating: Vec<String> = status["vms"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|vm| vm["phase"] == "migration")
                .map(|vm| vm["vm"].as_str().unwrap_or("?").to_string())
                .collect();
            if !migrating.is_empty() {
                return format!(
                    "after {:.1} s while migrating {}",
                    started.elapsed().as_secs_f64(),
                    migrating.join(", ")
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no migration in flight within 180 s");
}

#[test]
fn kill_nine_mid_wave_then_resume_completes_on_the_real_cluster() {
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let roll = roll("");
    let mut child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("--state")
        .arg(roll.work.path().join("state.db"))
        .args(["run", "-i", roll.inventory(), "--run-id", "crash"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let killed_at = wait_for_migration_in_flight(&roll, "crash");
    // SIGKILL: the Ganeti job in flight goes on without Drover.
    child.kill().unwrap();
    child.wait().unwrap();
    let status = json(&roll.drover(&["status", "crash", "-o", "json"]));
    assert_ne!(
        status["phase"], "completed",
        "killed before the end: {status}"
    );
    let resumed = roll.drover(&["resume", "crash", "-i", roll.inventory(), "-o", "json"]);
    if resumed.status.code() != Some(0) {
        let status = roll.drover(&["status", "crash"]);
        panic!(
            "resume exited {:?}: {}\n{}",
            resumed.status.code(),
            String::from_utf8_lossy(&resumed.stderr),
            String::from_utf8_lossy(&status.stdout)
        );
    }
    assert_eq!(json(&resumed)["phase"], "completed");
    roll.check_rolled();
    eprintln!("ganeti e2e: killed with SIGKILL {killed_at}, resumed to completion");
}

/// `drover check` through the harness: each node's `apt list --upgradable`, asked inside its
/// namespaces (`cluster.sh exec NODE`), is parsed; every node answers without error.
#[test]
fn drover_check_asks_the_ganeti_nodes_through_the_harness() {
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let script = harness().display().to_string();
    let roll = roll(&format!(
        "upgrade:\n  check_command: [\"{script}\", exec, \"{{host}}\", apt, list, --upgradable]\n  check_format: apt\n  watch_packages: [\"*\"]\n"
    ));
    let output = roll.drover(&["check", "-i", roll.inventory(), "-o", "json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let check = json(&output);
    let hosts = check["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{check}");
    for host in hosts {
        assert!(host.get("error").is_none(), "asked without error: {host}");
        assert_eq!(
            host["updates_available"], true,
            "older than the target: {host}"
        );
    }
    eprintln!(
        "drover check on the Ganeti nodes: {} watched package update(s) per node",
        hosts[0]["packages"].as_array().map_or(0, Vec::len)
    );
}
