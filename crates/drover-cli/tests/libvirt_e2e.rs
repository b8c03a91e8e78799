//! End to end against real libvirtd + QEMU hosts (tests/libvirt harness): `drover run` upgrades
//! three namespaced hypervisor hosts through the command driver (virsh and the harness's own
//! scripts in tests/libvirt/steps), with real live migrations of guests that print a heartbeat.
//!
//! Needs root and the harness installed (`tests/libvirt/install.sh`, `guest/build.sh`); `.ci/run`
//! does both and sets DROVER_LIBVIRT_E2E=1. Without it the test says so and does nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn repository() -> PathBuf {
    std::fs::canonicalize(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap()
}

fn harness(script: &str) -> PathBuf {
    repository().join("tests/libvirt").join(script)
}

fn run(program: &Path, args: &[&str]) -> Output {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Takes the hosts down however the test ends.
struct Hosts;

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = Command::new(harness("hosts.sh")).arg("down").status();
    }
}

struct Guest {
    name: &'static str,
    host: &'static str,
    memory_mib: u64,
    kind: &'static str,
    extra: &'static [&'static str],
}

const GUESTS: &[Guest] = &[
    Guest {
        name: "web1",
        host: "h1",
        memory_mib: 128,
        kind: "linux",
        extra: &["--anti-affinity", "web"],
    },
    Guest {
        name: "web2",
        host: "h2",
        memory_mib: 128,
        kind: "linux",
        extra: &["--anti-affinity", "web"],
    },
    Guest {
        name: "app1",
        host: "h1",
        memory_mib: 128,
        kind: "linux",
        extra: &[],
    },
    Guest {
        name: "app2",
        host: "h2",
        memory_mib: 128,
        kind: "linux",
        extra: &[],
    },
    Guest {
        name: "app3",
        host: "h3",
        memory_mib: 128,
        kind: "linux",
        extra: &[],
    },
    Guest {
        name: "app4",
        host: "h3",
        memory_mib: 128,
        kind: "linux",
        extra: &[],
    },
    Guest {
        name: "app5",
        host: "h1",
        memory_mib: 128,
        kind: "linux",
        extra: &[],
    },
    Guest {
        name: "app6",
        host: "h2",
        memory_mib: 128,
        kind: "linux",
        extra: &[],
    },
    Guest {
        name: "tiny7",
        host: "h3",
        memory_mib: 64,
        kind: "tiny",
        extra: &[],
    },
    Guest {
        name: "tiny8",
        host: "h1",
        memory_mib: 64,
        kind: "tiny",
        extra: &[],
    },
    Guest {
        name: "tiny1",
        host: "h1",
        memory_mib: 64,
        kind: "tiny",
        extra: &[],
    },
    Guest {
        name: "tiny2",
        host: "h1",
        memory_mib: 64,
        kind: "tiny",
        extra: &[],
    },
    Guest {
        name: "tiny3",
        host: "h2",
        memory_mib: 64,
        kind: "tiny",
        extra: &[],
    },
    Guest {
        name: "tiny4",
        host: "h2",
        memory_mib: 64,
        kind: "tiny",
        extra: &[],
    },
    Guest {
        name: "tiny5",
        host: "h3",
        memory_mib: 64,
        kind: "tiny",
        extra: &[],
    },
    Guest {
        name: "tiny6",
        host: "h3",
        memory_mib: 64,
        kind: "tiny",
        extra: &[],
    },
    Guest {
        name: "notools",
        host: "h2",
        memory_mib: 64,
        kind: "tiny",
        extra: &["--not-migratable", "--restart-policy", "always"],
    },
    Guest {
        name: "local1",
        host: "h1",
        memory_mib: 64,
        kind: "localdisk",
        extra: &[],
    },
    Guest {
        name: "local2",
        host: "h2",
        memory_mib: 64,
        kind: "localdisk",
        extra: &[],
    },
    Guest {
        name: "local3",
        host: "h3",
        memory_mib: 64,
        kind: "localdisk",
        extra: &[],
    },
];

fn inventory_for(guests: &[&Guest]) -> String {
    let steps = repository().join("tests/libvirt/steps");
    let step = |script: &str| steps.join(script).display().to_string();
    let mut text = String::from(
        "cluster: {name: libvirt-e2e, target_version: \"2.0\"}\n\
         policy: {max_unavailable: 1, step_timeout_secs: 120, migration_timeout_secs: 300, upgrade_timeout_secs: 300,\n\
         \x20        reboot_timeout_secs: 300, vm_shutdown_timeout_secs: 5, retry_backoff_initial_secs: 1}\n\
         hosts:\n",
    );
    for host in ["h1", "h2", "h3"] {
        text.push_str(&format!(
            "  - {{name: {host}, version: \"1.0\", memory_mib: 1024, cpus: 4}}\n"
        ));
    }
    text.push_str("vms:\n");
    for guest in guests {
        let mut flags = String::new();
        if guest.kind == "localdisk" {
            flags.push_str(", local_storage: true");
        }
        if guest.name == "notools" {
            flags.push_str(", migratable: false, restart_policy: always");
        }
        if guest.extra.contains(&"web") {
            flags.push_str(", anti_affinity: web");
        }
        text.push_str(&format!(
            "  - {{name: {}, host: {}, memory_mib: {}, vcpus: 1{flags}}}\n",
            guest.name, guest.host, guest.memory_mib
        ));
    }
    let command = |script: &str, args: &str| match args {
        "" => format!("[sh, {}]", step(script)),
        _ => format!("[sh, {}, {args}]", step(script)),
    };
    text.push_str("driver:\n  kind: command\n  commands:\n");
    for (name, script, args) in [
        ("discover", "discover.sh", ""),
        ("host_facts", "facts.sh", "\"{host}\""),
        ("health_check", "health.sh", "\"{host}\""),
        ("enter_maintenance", "maintenance.sh", "\"{host}\", enter"),
        ("exit_maintenance", "maintenance.sh", "\"{host}\", exit"),
        ("migrate", "migrate.sh", "\"{vm}\", \"{from}\", \"{to}\""),
        (
            "shutdown_vm",
            "shutdown.sh",
            "\"{vm}\", \"{host}\", \"{graceful_timeout_secs}\"",
        ),
        ("start_vm", "start.sh", "\"{vm}\", \"{host}\""),
        ("upgrade", "upgrade.sh", "\"{host}\", \"{target}\""),
        ("reboot", "reboot.sh", "\"{host}\", \"{boot_id_before}\""),
    ] {
        text.push_str(&format!("    {name}: {}\n", command(script, args)));
    }
    text
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// One harness on a machine: scenarios run one after another.
static HARNESS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn enabled() -> bool {
    if std::env::var_os("DROVER_LIBVIRT_E2E").is_some() {
        return true;
    }
    eprintln!("libvirt end-to-end test not run: set DROVER_LIBVIRT_E2E=1 on a machine with tests/libvirt installed (.ci/run does)");
    false
}

/// Fresh hosts with the guests defined and booted; returns the boot ids before the run.
struct Platform {
    state: PathBuf,
    boot_ids: Vec<String>,
    work: tempfile::TempDir,
    inventory: PathBuf,
    _hosts: Hosts,
}

fn platform(guests: &[&Guest]) -> Platform {
    let state = repository().join("tests/libvirt/.state");
    let _ = Command::new(harness("hosts.sh"))
        .args(["down", "--purge"])
        .status();
    let hosts = Hosts;
    let started = Instant::now();
    run(&harness("hosts.sh"), &["up", "3"]);
    for guest in guests {
        let memory = guest.memory_mib.to_string();
        let mut args = vec![
            "define",
            guest.name,
            guest.host,
            memory.as_str(),
            "--kind",
            guest.kind,
        ];
        args.extend_from_slice(guest.extra);
        run(&harness("guests.sh"), &args);
    }
    for guest in guests.iter().filter(|g| g.kind == "linux") {
        run(
            &harness("guests.sh"),
            &["wait-heartbeat", guest.name, "2", "--timeout", "180"],
        );
    }
    eprintln!("setup: {:.1} s", started.elapsed().as_secs_f64());
    let boot_ids = ["h1", "h2", "h3"]
        .iter()
        .map(|h| read(state.join(h).join("boot_id")))
        .collect();
    let work = tempfile::tempdir().unwrap();
    let inventory = work.path().join("inventory.yaml");
    let chosen: Vec<&Guest> = guests.to_vec();
    std::fs::write(&inventory, inventory_for(&chosen)).unwrap();
    Platform {
        state,
        boot_ids,
        work,
        inventory,
        _hosts: hosts,
    }
}

impl Platform {
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

    fn fault(&self, name: &str) {
        let directory = self.state.join("faults");
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(directory.join(name), "").unwrap();
    }

    /// Every host at 2.0 with a new boot id, none left in maintenance; every linux guest's
    /// heartbeat unbroken; local-disk guests back on their own host. Returns the heartbeat lines.
    fn check_upgraded(&self, guests: &[&Guest]) -> String {
        for (index, host) in ["h1", "h2", "h3"].iter().enumerate() {
            assert_eq!(
                read(self.state.join(host).join("version")),
                "2.0",
                "{host} upgraded"
            );
            assert_ne!(
                read(self.state.join(host).join("boot_id")),
                self.boot_ids[index],
                "{host} rebooted"
            );
            assert!(
                !self.state.join(host).join("maintenance").exists(),
                "{host} left in maintenance"
            );
        }
        let mut heartbeats = String::new();
        for guest in guests.iter().filter(|g| g.kind == "linux") {
            let check = run(&harness("guests.sh"), &["heartbeat-check", guest.name]);
            heartbeats.push_str(&String::from_utf8_lossy(&check.stdout));
        }
        for guest in guests.iter().filter(|g| g.kind == "localdisk") {
            let place = run(&harness("guests.sh"), &["where", guest.name]);
            assert_eq!(
                String::from_utf8_lossy(&place.stdout).trim(),
                guest.host,
                "{} back on its own host",
                guest.name
            );
        }
        heartbeats
    }
}

impl Platform {
    /// `drover run` to completion, then every post-upgrade check; prints the figures.
    fn upgrade_all_and_check(&self, guests: &[&Guest], driver: &str) {
        let rolling = Instant::now();
        let output = self.drover(&["run", "-i", self.inventory(), "-o", "json"]);
        let rolling_secs = rolling.elapsed().as_secs_f64();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report = json(&output);
        assert_eq!(report["phase"], "completed", "{report}");
        let heartbeats = self.check_upgraded(guests);
        eprintln!(
            "libvirt e2e ({driver}): rolling upgrade of 3 hosts / {} guests in {rolling_secs:.1} s: {} migrations, {} restarts, {} shutdowns\n{heartbeats}",
            guests.len(),
            report["migrations"],
            report["restarts"],
            report["shutdowns"]
        );
        let timeline = self.drover(&["timeline"]);
        assert_eq!(timeline.status.code(), Some(0));
        eprintln!("{}", String::from_utf8_lossy(&timeline.stdout));
    }
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)))
}

fn all_guests() -> Vec<&'static Guest> {
    GUESTS.iter().collect()
}

fn few_guests() -> Vec<&'static Guest> {
    GUESTS
        .iter()
        .filter(|g| ["app1", "app3", "tiny3", "local2", "notools"].contains(&g.name))
        .collect()
}

#[test]
fn a_rolling_upgrade_of_real_libvirt_hosts() {
    if !enabled() {
        return;
    }
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let guests = all_guests();
    let platform = platform(&guests);
    platform.upgrade_all_and_check(&guests, "command driver");
}

#[test]
fn kill_nine_mid_wave_then_resume_completes() {
    if !enabled() {
        return;
    }
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let guests = all_guests();
    let platform = platform(&guests);
    let mut child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("--state")
        .arg(platform.work.path().join("state.db"))
        .args(["run", "-i", platform.inventory(), "--run-id", "crash"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // About a third of the run: the second host's evacuation.
    std::thread::sleep(std::time::Duration::from_secs(12));
    child.kill().unwrap();
    child.wait().unwrap();
    let status = json(&platform.drover(&["status", "crash", "-o", "json"]));
    assert_ne!(
        status["phase"], "completed",
        "killed before the end: {status}"
    );
    let resumed = platform.drover(&["resume", "crash", "-i", platform.inventory(), "-o", "json"]);
    if resumed.status.code() != Some(0) {
        let status = platform.drover(&["status", "crash"]);
        panic!(
            "resume exited {:?}: {}\n{}",
            resumed.status.code(),
            String::from_utf8_lossy(&resumed.stderr),
            String::from_utf8_lossy(&status.stdout)
        );
    }
    assert_eq!(json(&resumed)["phase"], "completed");
    let heartbeats = platform.check_upgraded(&guests);
    eprintln!(
        "libvirt e2e: killed with SIGKILL during {}, resumed to completion\n{heartbeats}",
        status["hosts"]
    );
}

#[test]
fn an_aborted_migration_is_retried_on_another_host() {
    if !enabled() {
        return;
    }
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let guests = few_guests();
    let platform = platform(&guests);
    let plan = json(&platform.drover(&["plan", "-i", platform.inventory(), "-o", "json"]));
    let first = plan["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["actions"].as_array().unwrap().clone())
        .find(|a| a["kind"] == "migrate")
        .expect("the plan migrates something");
    platform.fault(&format!(
        "slow-migrate-{}-{}",
        first["vm"].as_str().unwrap(),
        first["to"].as_str().unwrap()
    ));
    let output = platform.drover(&["run", "-i", platform.inventory(), "-o", "json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    assert_eq!(report["phase"], "completed");
    assert!(
        report["migration_attempts_failed"].as_u64().unwrap() >= 1,
        "{report}"
    );
    platform.check_upgraded(&guests);
}

#[test]
fn a_host_that_never_returns_halts_the_run_and_abort_restores_service() {
    if !enabled() {
        return;
    }
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let guests = few_guests();
    let platform = platform(&guests);
    let plan = json(&platform.drover(&["plan", "-i", platform.inventory(), "-o", "json"]));
    let doomed = plan["waves"][1]["hosts"][0].as_str().unwrap().to_string();
    platform.fault(&format!("never-returns-{doomed}"));
    let output = platform.drover(&["run", "-i", platform.inventory()]);
    assert_eq!(
        output.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = json(&platform.drover(&["status", "-o", "json"]));
    let failed: Vec<&serde_json::Value> = status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["step"] == "upgrade-failed")
        .collect();
    assert_eq!(failed.len(), 1, "{status}");
    assert_eq!(failed[0]["host"], doomed.as_str());
    let aborted = platform.drover(&["abort", "-o", "json"]);
    assert_eq!(
        aborted.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&aborted.stderr)
    );
    for host in ["h1", "h2", "h3"].iter().filter(|h| **h != doomed) {
        assert!(
            !platform.state.join(host).join("maintenance").exists(),
            "{host} left in maintenance"
        );
    }
    // Every migrated guest still beats: none was lost with the host.
    for guest in guests.iter().filter(|g| g.kind == "linux") {
        run(&harness("guests.sh"), &["heartbeat-check", guest.name]);
    }
}

/// `drover check` against the real hosts: each host's `apt list --upgradable` (asked inside its
/// namespace) is parsed, every host is reported with updates (1.0 is older than the target) and
/// none with an error.
#[test]
fn drover_check_asks_the_real_hosts_for_updates() {
    if !enabled() {
        return;
    }
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let platform = platform(&[]);
    let steps = repository().join("tests/libvirt/steps");
    let mut text = std::fs::read_to_string(&platform.inventory).unwrap();
    text.push_str(&format!(
        "upgrade:\n  check_command: [sh, {}, \"{{host}}\"]\n  check_format: apt\n  watch_packages: [\"*\"]\n",
        steps.join("check-updates.sh").display()
    ));
    std::fs::write(&platform.inventory, text).unwrap();
    let output = platform.drover(&["check", "-i", platform.inventory(), "-o", "json"]);
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
        assert_eq!(host["updates_available"], true, "{host}");
        assert_eq!(
            host["packages"], hosts[0]["packages"],
            "one machine's packages: {check}"
        );
    }
    eprintln!(
        "drover check on the harness hosts: {} watched package update(s) per host",
        hosts[0]["packages"].as_array().unwrap().len()
    );
}

impl Platform {
    /// Rewrites the inventory for the native libvirt driver (`--features libvirt`): VMs are
    /// discovered and live-migrated with libvirt's API; host facts, upgrade and reboot stay the
    /// harness commands. `policy` replaces keys of the policy line; `driver_keys` are added to
    /// the driver section.
    #[cfg(feature = "libvirt")]
    fn use_libvirt_driver(&self, policy: &[(&str, &str)], driver_keys: &str) {
        let mut text = std::fs::read_to_string(&self.inventory).unwrap();
        for (key, value) in policy {
            let start = text
                .find(&format!("{key}: "))
                .expect("the key is in the policy");
            let end = start + text[start..].find([',', '}']).unwrap();
            text.replace_range(start..end, &format!("{key}: {value}"));
        }
        let steps = repository().join("tests/libvirt/steps");
        let step = |script: &str| steps.join(script).display().to_string();
        let mut libvirt = text[..text.find("driver:").unwrap()].to_string();
        libvirt.push_str("driver:\n  kind: libvirt\n  hosts:\n");
        for (index, host) in ["h1", "h2", "h3"].iter().enumerate() {
            let address = format!("10.213.0.{}", 11 + index);
            libvirt.push_str(&format!(
                "    {host}: {{uri: \"qemu+tcp://{address}/system\", address: \"{address}\"}}\n"
            ));
        }
        libvirt.push_str(driver_keys);
        libvirt.push_str(&format!(
            "  commands:\n    host_facts: [sh, {}, \"{{host}}\"]\n    upgrade: [sh, {}, \"{{host}}\", \"{{target}}\"]\n    reboot: [sh, {}, \"{{host}}\", \"{{boot_id_before}}\"]\n",
            step("facts.sh"),
            step("upgrade.sh"),
            step("reboot.sh")
        ));
        std::fs::write(&self.inventory, libvirt).unwrap();
    }

    /// Drover's own maintenance and cordon marks on libvirt hosts, from its marks file.
    #[cfg(feature = "libvirt")]
    fn libvirt_marks(&self) -> serde_json::Value {
        let path = self
            .work
            .path()
            .join("state.db.libvirt-e2e.libvirt-marks.json");
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|_| "{}".into()))
            .unwrap()
    }
}

/// The same rolling upgrade through the native libvirt driver.
#[cfg(feature = "libvirt")]
#[test]
fn a_rolling_upgrade_through_the_libvirt_driver() {
    if !enabled() {
        return;
    }
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let guests = all_guests();
    let platform = platform(&guests);
    platform.use_libvirt_driver(&[], "");
    platform.upgrade_all_and_check(&guests, "libvirt driver");
    let marks = platform.libvirt_marks();
    for host in ["h1", "h2", "h3"] {
        assert_eq!(marks[host]["cordoned"], false, "{host} uncordoned: {marks}");
        assert_eq!(marks[host]["in_maintenance"], false, "{host}: {marks}");
    }
}

/// `kill -9` of `drover run` in the middle of a migration wave on the libvirt driver, then
/// `drover resume`: the cordon and maintenance marks the killed process set are read back from
/// the marks file, the in-flight migrations are observed and reconciled, and the run completes.
#[cfg(feature = "libvirt")]
#[test]
fn kill_nine_mid_wave_then_resume_through_the_libvirt_driver() {
    if !enabled() {
        return;
    }
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let guests = all_guests();
    let platform = platform(&guests);
    platform.use_libvirt_driver(&[], "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("--state")
        .arg(platform.work.path().join("state.db"))
        .args(["run", "-i", platform.inventory(), "--run-id", "crash"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let killed_at = wait_for_migrations_in_flight(&platform, "crash");
    child.kill().unwrap();
    child.wait().unwrap();
    let marks = platform.libvirt_marks();
    assert!(
        ["h1", "h2", "h3"]
            .iter()
            .any(|h| marks[h]["cordoned"] == true),
        "a host was cordoned when drover was killed: {marks}"
    );
    let resumed = platform.drover(&["resume", "crash", "-o", "json"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(json(&resumed)["phase"], "completed");
    let heartbeats = platform.check_upgraded(&guests);
    eprintln!("libvirt e2e (libvirt driver): killed with SIGKILL {killed_at}, resumed to completion\n{heartbeats}");
}

/// Polls `drover status` until a migration is in flight (at most 120 s); describes the moment.
#[cfg(feature = "libvirt")]
fn wait_for_migrations_in_flight(platform: &Platform, run: &str) -> String {
    let started = Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(120) {
        let output = platform.drover(&["status", run, "-o", "json"]);
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
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no migration in flight within 120 s");
}

/// A bandwidth-limited live migration that cannot finish before `migration_timeout_secs` is
/// aborted by the libvirt driver; its retries elsewhere are aborted too, so the host fails and
/// the run halts as designed; `drover abort` then brings every host back, and the guest whose
/// migrations were aborted never stopped beating on its source host.
#[cfg(feature = "libvirt")]
#[test]
fn a_bandwidth_limited_migration_is_aborted_by_its_timeout_through_the_libvirt_driver() {
    if !enabled() {
        return;
    }
    let _one_at_a_time = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let guests = few_guests();
    let platform = platform(&guests);
    platform.use_libvirt_driver(
        &[
            ("migration_timeout_secs", "6"),
            ("reboot_timeout_secs", "300"),
        ],
        "  migration_bandwidth_mib_per_sec: 1\n",
    );
    let text = std::fs::read_to_string(&platform.inventory).unwrap();
    std::fs::write(
        &platform.inventory,
        text.replace(
            "retry_backoff_initial_secs: 1",
            "retry_backoff_initial_secs: 1, max_step_attempts: 2",
        ),
    )
    .unwrap();
    let output = platform.drover(&["run", "-i", platform.inventory(), "-o", "json"]);
    assert_eq!(
        output.status.code(),
        Some(5),
        "halted: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    assert!(
        report["migration_attempts_failed"].as_u64().unwrap() >= 2,
        "{report}"
    );
    let status = json(&platform.drover(&["status", "-o", "json"]));
    let errors = status.to_string();
    assert!(
        errors.contains("timed out") || errors.contains("timeout"),
        "{status}"
    );
    let aborted = platform.drover(&["abort", "-o", "json"]);
    assert_eq!(
        aborted.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&aborted.stderr)
    );
    let marks = platform.libvirt_marks();
    for host in ["h1", "h2", "h3"] {
        assert_ne!(marks[host]["in_maintenance"], true, "{host}: {marks}");
        assert_ne!(marks[host]["cordoned"], true, "{host}: {marks}");
    }
    for guest in guests.iter().filter(|g| g.kind == "linux") {
        run(&harness("guests.sh"), &["heartbeat-check", guest.name]);
    }
}
