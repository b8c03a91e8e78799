//! End to end against a REAL OpenStack Zed control plane (tests/openstack harness: Keystone,
//! Placement, Glance, Nova API/conductor/scheduler and three `nova-compute` services with Nova's
//! fake virt driver): `drover run` rolls the three computes through the `kind: openstack` driver
//! (each compute service disabled with Drover's reason, its servers live-migrated by Nova and
//! followed through their migration records, a soft-anti-affinity server group kept apart, the
//! "upgrade" and "reboot" through the harness's commands, the service enabled again once it
//! reports `up`); `kill -9` of drover mid-wave then `drover resume` completes; a compute that
//! never comes back halts the run, and `drover abort` enables what Drover disabled.
//!
//! Built only with the cargo feature `openstack-e2e` (README's test command does not build it);
//! `.ci/run` starts the control plane once and runs `cargo test -p drover-cli --features
//! openstack-e2e --test openstack_e2e` with the harness's `env`. With the feature but without
//! DROVER_OPENSTACK_AUTH_URL the tests print that they were skipped and pass. The control plane
//! is used as found: each roll targets one more than the newest version a compute runs.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const COMPUTES: [&str; 3] = ["compute-1", "compute-2", "compute-3"];

/// One control plane on a machine: scenarios run one after another.
static HARNESS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/openstack/controlplane.sh")
        .canonicalize()
        .unwrap()
}

fn harness_says(args: &[&str]) -> String {
    let output = Command::new(harness()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "controlplane.sh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn auth_url() -> Option<String> {
    let url = std::env::var("DROVER_OPENSTACK_AUTH_URL").ok();
    if url.is_none() {
        println!(
            "SKIPPED: DROVER_OPENSTACK_AUTH_URL is not set. The openstack end-to-end tests need a \
             real control plane: run (as root) `tests/openstack/install.sh && \
             tests/openstack/controlplane.sh up && eval \"$(tests/openstack/controlplane.sh env)\"`, \
             then `cargo test -p drover-cli --features openstack-e2e --test openstack_e2e` \
             (.ci/run does this)"
        );
    }
    url
}

/// A compute's `version=` and `boot_id=` as the harness reports them.
fn facts(host: &str) -> (String, String) {
    let text = harness_says(&["facts", host]);
    let value = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_string()
    };
    (value("version"), value("boot_id"))
}

fn next_target() -> String {
    let newest = COMPUTES
        .iter()
        .map(|host| {
            let (version, _) = facts(host);
            version.split('.').next().unwrap().parse::<u64>().unwrap()
        })
        .max()
        .unwrap();
    format!("{}.0", newest + 1)
}

/// `HOST STATUS STATE REASON` of every compute service.
fn services() -> Vec<Vec<String>> {
    harness_says(&["services"])
        .lines()
        .map(|line| line.splitn(4, ' ').map(str::to_string).collect())
        .collect()
}

/// `NAME STATUS HOST` of every server.
fn servers() -> Vec<Vec<String>> {
    harness_says(&["servers"])
        .lines()
        .map(|line| line.split(' ').map(str::to_string).collect())
        .collect()
}

/// Every compute running and enabled, servers `spread1`/`spread2` (server group `spread`,
/// `soft-anti-affinity`: Drover keeps them apart) and `app1` booted if missing.
///
/// The group is soft: with a hard `anti-affinity` group, Nova's scheduler here refused
/// migrations to a host the group had left minutes before (its per-host instance view was
/// stale after nova-compute restarts; ServerGroupAntiAffinityFilter returned 0 hosts), and the
/// run halted on that, not on anything Drover did.
fn ready() {
    for index in 1..=COMPUTES.len() {
        let number = index.to_string();
        harness_says(&["back", &number]);
        // `facts` fails for a compute whose nova-compute is not running (Nova itself would go
        // on saying `up` for a minute).
        let running = Command::new(harness())
            .args(["facts", &number])
            .output()
            .unwrap()
            .status
            .success();
        if !running {
            harness_says(&["start-compute", &number]);
        }
    }
    // A halted run leaves computes at different versions; Drover's same-or-newer rule then
    // (rightly) finds no safe plan for some layouts. Level them at the newest.
    let newest = COMPUTES
        .iter()
        .map(|host| facts(host).0)
        .max_by_key(|version| version.split('.').next().unwrap().parse::<u64>().unwrap());
    for index in 1..=COMPUTES.len() {
        harness_says(&[
            "set-version",
            &index.to_string(),
            newest.as_deref().unwrap(),
        ]);
    }
    // A test that failed may have left a run halted with services disabled by Drover.
    for service in services() {
        if service[1] == "disabled" && service[3].starts_with("drover:") {
            harness_says(&["enable", service[0].trim_start_matches("compute-")]);
        }
    }
    // Other tests' setups move servers without regard for the group: keep it apart.
    let now = servers();
    let host_of = |name: &str| now.iter().find(|s| s[0] == name).map(|s| s[2].clone());
    if let (Some(first), Some(second)) = (host_of("spread1"), host_of("spread2")) {
        if first == second {
            let other = COMPUTES.iter().find(|host| **host != first).unwrap();
            harness_says(&["migrate", "spread2", other]);
        }
    }
    let existing: Vec<String> = servers().into_iter().map(|s| s[0].clone()).collect();
    for (name, host, group) in [
        ("spread1", "compute-1", Some("spread")),
        ("spread2", "compute-2", Some("spread")),
        ("app1", "compute-3", None),
    ] {
        if !existing.iter().any(|n| n == name) {
            let mut args = vec!["boot", name, host];
            if let Some(group) = group {
                args.extend([group, "soft-anti-affinity"]);
            }
            harness_says(&args);
        }
    }
}

struct Roll {
    work: tempfile::TempDir,
    inventory: PathBuf,
    target: String,
    boot_ids: Vec<String>,
    started_epoch_secs: u64,
}

fn roll(url: &str) -> Roll {
    ready();
    let target = next_target();
    let work = tempfile::tempdir().unwrap();
    let inventory = work.path().join("inventory.yaml");
    let script = harness().display().to_string();
    let mut text = format!(
        "cluster: {{name: openstack-e2e, target_version: \"{target}\"}}\n\
         policy: {{max_unavailable: 1, step_timeout_secs: 180, migration_timeout_secs: 300, upgrade_timeout_secs: 300,\n\
         \x20        reboot_timeout_secs: 120, vm_shutdown_timeout_secs: 10, retry_backoff_initial_secs: 1}}\n\
         hosts:\n"
    );
    for host in COMPUTES {
        text.push_str(&format!(
            "  - {{name: {host}, version: \"1.0\", memory_mib: 16384, cpus: 8}}\n"
        ));
    }
    text.push_str(&format!(
        "driver:\n  kind: openstack\n  auth_url: \"{url}\"\n  username: admin\n  project: admin\n  password_env: DROVER_OPENSTACK_PASSWORD\n  region: RegionOne\n  allow_block_migration: true\n  poll_ms: 250\n  migration_timeout_secs: 120\n  reboot_timeout_secs: 90\n  upgrade_timeout_secs: 90\n  commands:\n    host_facts: [\"{script}\", facts, \"{{host}}\"]\n    upgrade: [\"{script}\", upgrade, \"{{host}}\", \"{{target}}\"]\n    reboot: [\"{script}\", reboot, \"{{host}}\"]\n"
    ));
    std::fs::write(&inventory, text).unwrap();
    let boot_ids = COMPUTES.iter().map(|host| facts(host).1).collect();
    Roll {
        work,
        inventory,
        target,
        boot_ids,
        started_epoch_secs: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
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

    /// Every compute at the target with a new boot id, its service enabled and `up` with no
    /// reason of Drover's left; every server ACTIVE, `spread1` and `spread2` on different
    /// computes.
    fn check_rolled(&self) {
        for (index, host) in COMPUTES.iter().enumerate() {
            let (version, boot_id) = facts(host);
            assert_eq!(version, self.target, "{host} upgraded");
            assert_ne!(boot_id, self.boot_ids[index], "{host} rebooted");
        }
        for service in services() {
            assert_eq!(service[1], "enabled", "enabled again: {service:?}");
            assert_eq!(service[2], "up", "reporting: {service:?}");
        }
        let servers = servers();
        for server in &servers {
            assert_eq!(server[1], "ACTIVE", "running: {server:?}");
        }
        let host_of = |name: &str| {
            servers
                .iter()
                .find(|s| s[0] == name)
                .map(|s| s[2].clone())
                .unwrap()
        };
        assert_ne!(host_of("spread1"), host_of("spread2"), "anti-affinity kept");
    }
}

#[test]
fn drover_run_rolls_the_real_openstack_computes() {
    let Some(url) = auth_url() else { return };
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let roll = roll(&url);
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
    // Nova's own time for the live migrations of this roll, by its migration records.
    let nova = harness_says(&["migration-time", &roll.started_epoch_secs.to_string()]);
    let mut parts = nova.split_whitespace();
    let (nova_migrations, nova_secs): (u64, f64) = (
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    );
    eprintln!(
        "openstack e2e: drover run rolled 3 computes to {} in {wall_secs:.1} s: {} migrations, {} shutdowns, {} restarts; Nova's records: {nova_migrations} live migrations took {nova_secs:.1} s (the rest is Drover, the host commands, nova-compute restarts and waiting for fresh service reports)",
        roll.target, report["migrations"], report["shutdowns"], report["restarts"]
    );
    let timeline = roll.drover(&["timeline"]);
    assert_eq!(timeline.status.code(), Some(0));
    eprintln!("{}", String::from_utf8_lossy(&timeline.stdout));
}

/// The next incoming live migration of `app1` is refused by its destination's pre-check (the
/// harness's fake driver takes `<state>/faults/refuse-migrate-app1` once; Nova records the
/// migration `error`): `drover run` retries it on another compute and completes the roll.
#[test]
fn a_refused_migration_is_retried_elsewhere_by_drover_run() {
    let Some(url) = auth_url() else { return };
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let roll = roll(&url);
    let state = PathBuf::from(std::env::var("DROVER_OPENSTACK_STATE").unwrap_or_else(|_| {
        harness()
            .parent()
            .unwrap()
            .join(".state")
            .display()
            .to_string()
    }));
    let fault = state.join("faults").join("refuse-migrate-app1");
    std::fs::create_dir_all(fault.parent().unwrap()).unwrap();
    std::fs::write(&fault, "").unwrap();
    let started = Instant::now();
    let output = roll.drover(&["run", "-i", roll.inventory(), "-o", "json"]);
    let wall_secs = started.elapsed().as_secs_f64();
    let fault_left = fault.exists();
    let _ = std::fs::remove_file(&fault);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    assert_eq!(report["phase"], "completed", "{report}");
    assert!(!fault_left, "no migration of app1 reached a pre-check");
    assert!(
        report["migration_attempts_failed"].as_u64().unwrap_or(0) >= 1,
        "the refusal is counted: {report}"
    );
    roll.check_rolled();
    // Nova's records of app1's live migrations, oldest first: the refused one (`error`, to the
    // planned destination) and a completed one to another compute.
    let records = Command::new("openstack")
        .args([
            "server",
            "migration",
            "list",
            "--server",
            "app1",
            "--type",
            "live-migration",
        ])
        .args([
            "-f",
            "value",
            "-c",
            "Id",
            "-c",
            "Dest Compute",
            "-c",
            "Status",
        ])
        .output()
        .unwrap();
    assert!(
        records.status.success(),
        "{}",
        String::from_utf8_lossy(&records.stderr)
    );
    let mut records: Vec<(u64, String, String)> = String::from_utf8_lossy(&records.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [id, destination, status] => Some((
                    id.parse().ok()?,
                    destination.to_string(),
                    status.to_string(),
                )),
                _ => None,
            }
        })
        .collect();
    records.sort();
    let refused = records
        .iter()
        .rposition(|(_, _, status)| status == "error")
        .unwrap_or_else(|| panic!("Nova recorded no refused migration of app1: {records:?}"));
    let landed = records[refused..]
        .iter()
        .find(|(_, _, status)| status == "completed")
        .unwrap_or_else(|| panic!("app1 never moved after its refusal: {records:?}"));
    // Nova leaves the destination of a migration refused in its pre-check unset (`None`), so
    // the refused destination is the one Drover's report names for the failed attempt.
    let refused_destination = report["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|failure| failure["subject"] == "vm app1")
        .filter_map(|failure| failure["error"].as_str())
        .find_map(|error| {
            let after = error.split(" to ").nth(1)?;
            after.split_whitespace().next().map(str::to_string)
        })
        .unwrap_or_else(|| panic!("the report names app1's refused attempt: {report}"));
    assert_ne!(
        refused_destination, landed.1,
        "retried on another compute: {records:?} {report}"
    );
    eprintln!(
        "openstack e2e: app1's migration to {refused_destination} refused by its pre-check (Nova: {} {}), retried to {}; the roll completed in {wall_secs:.1} s ({} migrations, {} failed attempts)",
        records[refused].1, records[refused].2, landed.1, report["migrations"], report["migration_attempts_failed"]
    );
}

/// Polls `drover status` until a migration is in flight; describes the moment.
fn wait_for_migration_in_flight(roll: &Roll, run: &str) -> String {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(240) {
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
    panic!("no migration in flight within 240 s");
}

#[test]
fn kill_nine_mid_wave_then_resume_completes_on_the_real_control_plane() {
    let Some(url) = auth_url() else { return };
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let roll = roll(&url);
    let mut child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("--state")
        .arg(roll.work.path().join("state.db"))
        .args(["run", "-i", roll.inventory(), "--run-id", "crash"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let killed_at = wait_for_migration_in_flight(&roll, "crash");
    // SIGKILL: Nova's live migration in flight goes on without Drover.
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
    eprintln!("openstack e2e: killed with SIGKILL {killed_at}, resumed to completion");
}

/// compute-2's "reboot" stops its nova-compute for good: the run halts (exit 5) once the
/// reboot's bound passes; `drover abort` enables every service Drover disabled (exit 6), and
/// only those.
#[test]
fn a_compute_that_never_comes_back_halts_and_abort_enables_what_drover_disabled() {
    let Some(url) = auth_url() else { return };
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let roll = roll(&url);
    // One attempt per step: the reboot's own bound (the driver's reboot_timeout_secs) is what
    // this test waits for, not the retries a flaky host would deserve.
    let text = std::fs::read_to_string(&roll.inventory).unwrap();
    std::fs::write(
        &roll.inventory,
        text.replace(
            "retry_backoff_initial_secs: 1",
            "retry_backoff_initial_secs: 1, max_step_attempts: 1",
        ),
    )
    .unwrap();
    harness_says(&["never-back", "2"]);
    let started = Instant::now();
    let output = roll.drover(&[
        "run",
        "-i",
        roll.inventory(),
        "--run-id",
        "lost",
        "-o",
        "json",
    ]);
    let halted_after = started.elapsed().as_secs_f64();
    harness_says(&["back", "2"]);
    assert_eq!(
        output.status.code(),
        Some(5),
        "halted: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let disabled_by_drover: Vec<String> = services()
        .into_iter()
        .filter(|s| s[1] == "disabled" && s[3].starts_with("drover:"))
        .map(|s| s[0].clone())
        .collect();
    assert!(
        disabled_by_drover.iter().any(|host| host == "compute-2"),
        "compute-2 was left disabled by Drover at the halt: {:?}",
        services()
    );
    let aborted = roll.drover(&["abort", "lost", "-o", "json"]);
    assert_eq!(
        aborted.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&aborted.stderr)
    );
    for service in services() {
        assert_eq!(service[1], "enabled", "enabled by abort: {service:?}");
    }
    harness_says(&["start-compute", "2"]);
    eprintln!(
        "openstack e2e: compute-2 never came back; the run halted after {halted_after:.1} s and abort enabled {disabled_by_drover:?}"
    );
}
