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
    Guest { name: "web1", host: "h1", memory_mib: 128, kind: "linux", extra: &["--anti-affinity", "web"] },
    Guest { name: "web2", host: "h2", memory_mib: 128, kind: "linux", extra: &["--anti-affinity", "web"] },
    Guest { name: "app1", host: "h1", memory_mib: 128, kind: "linux", extra: &[] },
    Guest { name: "app2", host: "h2", memory_mib: 128, kind: "linux", extra: &[] },
    Guest { name: "app3", host: "h3", memory_mib: 128, kind: "linux", extra: &[] },
    Guest { name: "app4", host: "h3", memory_mib: 128, kind: "linux", extra: &[] },
    Guest { name: "tiny1", host: "h1", memory_mib: 64, kind: "tiny", extra: &[] },
    Guest { name: "tiny2", host: "h1", memory_mib: 64, kind: "tiny", extra: &[] },
    Guest { name: "tiny3", host: "h2", memory_mib: 64, kind: "tiny", extra: &[] },
    Guest { name: "tiny4", host: "h2", memory_mib: 64, kind: "tiny", extra: &[] },
    Guest { name: "tiny5", host: "h3", memory_mib: 64, kind: "tiny", extra: &[] },
    Guest { name: "tiny6", host: "h3", memory_mib: 64, kind: "tiny", extra: &[] },
    Guest { name: "notools", host: "h2", memory_mib: 64, kind: "tiny", extra: &["--not-migratable", "--restart-policy", "always"] },
    Guest { name: "local1", host: "h1", memory_mib: 64, kind: "localdisk", extra: &[] },
    Guest { name: "local2", host: "h2", memory_mib: 64, kind: "localdisk", extra: &[] },
    Guest { name: "local3", host: "h3", memory_mib: 64, kind: "localdisk", extra: &[] },
];

fn inventory(state: &Path) -> String {
    let steps = repository().join("tests/libvirt/steps");
    let step = |script: &str| steps.join(script).display().to_string();
    let mut text = String::from(
        "cluster: {name: libvirt-e2e, target_version: \"2.0\"}\n\
         policy: {max_unavailable: 1, step_timeout_secs: 120, migration_timeout_secs: 300, upgrade_timeout_secs: 300,\n\
         \x20        reboot_timeout_secs: 300, vm_shutdown_timeout_secs: 5, retry_backoff_initial_secs: 1}\n\
         hosts:\n",
    );
    for host in ["h1", "h2", "h3"] {
        text.push_str(&format!("  - {{name: {host}, version: \"1.0\", memory_mib: 1024, cpus: 4}}\n"));
    }
    text.push_str("vms:\n");
    for guest in GUESTS {
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
    let command = |script: &str, args: &str| format!("[sh, {}, {args}]", step(script));
    text.push_str("driver:\n  kind: command\n  commands:\n");
    for (name, script, args) in [
        ("host_facts", "facts.sh", "\"{host}\""),
        ("health_check", "health.sh", "\"{host}\""),
        ("enter_maintenance", "maintenance.sh", "\"{host}\", enter"),
        ("exit_maintenance", "maintenance.sh", "\"{host}\", exit"),
        ("migrate", "migrate.sh", "\"{vm}\", \"{from}\", \"{to}\""),
        ("shutdown_vm", "shutdown.sh", "\"{vm}\", \"{host}\", \"{graceful_timeout_secs}\""),
        ("start_vm", "start.sh", "\"{vm}\", \"{host}\""),
        ("upgrade", "upgrade.sh", "\"{host}\", \"{target}\""),
        ("reboot", "reboot.sh", "\"{host}\", \"{boot_id_before}\""),
    ] {
        text.push_str(&format!("    {name}: {}\n", command(script, args)));
    }
    let _ = state;
    text
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_string()
}

#[test]
fn a_rolling_upgrade_of_real_libvirt_hosts() {
    if std::env::var_os("DROVER_LIBVIRT_E2E").is_none() {
        eprintln!("libvirt end-to-end test not run: set DROVER_LIBVIRT_E2E=1 on a machine with tests/libvirt installed (.ci/run does)");
        return;
    }
    let state = repository().join("tests/libvirt/.state");
    let _ = Command::new(harness("hosts.sh")).arg("down").status();
    let hosts = Hosts;
    let started = Instant::now();
    run(&harness("hosts.sh"), &["up", "3"]);
    for guest in GUESTS {
        let memory = guest.memory_mib.to_string();
        let mut args = vec!["define", guest.name, guest.host, memory.as_str(), "--kind", guest.kind];
        args.extend_from_slice(guest.extra);
        run(&harness("guests.sh"), &args);
    }
    for guest in GUESTS.iter().filter(|g| g.kind == "linux") {
        run(&harness("guests.sh"), &["wait-heartbeat", guest.name, "2", "--timeout", "180"]);
    }
    let setup_secs = started.elapsed().as_secs_f64();
    let boot_ids: Vec<String> = ["h1", "h2", "h3"].iter().map(|h| read(state.join(h).join("boot_id"))).collect();

    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("inventory.yaml");
    std::fs::write(&file, inventory(&state)).unwrap();
    let rolling = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["--state", work.path().join("state.db").to_str().unwrap(), "run", "-i", file.to_str().unwrap(), "-o", "json"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let rolling_secs = rolling.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["phase"], "completed", "{report}");

    for (index, host) in ["h1", "h2", "h3"].iter().enumerate() {
        assert_eq!(read(state.join(host).join("version")), "2.0", "{host} upgraded");
        assert_ne!(read(state.join(host).join("boot_id")), boot_ids[index], "{host} rebooted");
        assert!(!state.join(host).join("maintenance").exists(), "{host} left in maintenance");
    }
    let mut worst_gap = String::new();
    for guest in GUESTS.iter().filter(|g| g.kind == "linux") {
        let check = run(&harness("guests.sh"), &["heartbeat-check", guest.name]);
        worst_gap.push_str(&String::from_utf8_lossy(&check.stdout));
    }
    for guest in GUESTS.iter().filter(|g| g.kind == "localdisk") {
        let place = run(&harness("guests.sh"), &["where", guest.name]);
        assert_eq!(String::from_utf8_lossy(&place.stdout).trim(), guest.host, "{} back on its own host", guest.name);
    }
    eprintln!(
        "libvirt e2e: setup {setup_secs:.1} s, rolling upgrade {rolling_secs:.1} s, {} migrations, {} restarts, {} shutdowns\n{worst_gap}",
        report["migrations"], report["restarts"], report["shutdowns"]
    );
    drop(hosts);
}
