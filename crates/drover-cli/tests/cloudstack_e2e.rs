//! `drover discover` and `drover run -i examples/cloudstack-zone.yaml` end to end against
//! drover-emulator's CloudStack API (served by this test process on a free loopback port, the
//! simulator's world at 600× the wall clock): the real `drover` binary opens the `kind:
//! cloudstack` driver through the registry, discovers both zones over the signed API, and rolls
//! them: allocation disabled, VMs with tools migrated, the router migrated with migrateSystemVm,
//! the VM without tools stopped and started on another host, maintenance, the catalog's minimal
//! hotfix set through the `upgrade` command (never a superseded hotfix), the reboot command,
//! maintenance cancelled, allocation re-enabled. Then a generated 2-zone / 40-host zone pair is
//! rolled the same way for the wall-time figure. The example's driver section is pointed at the
//! emulator, its keys come from the environment, its commands post to the emulator's installer
//! and reboot stand-ins.

mod cli_common;

use std::sync::Arc;
use std::time::Instant;

use cli_common::{stderr, Workspace};
use drover_emulator::cloudstack::Management;

const POST_SCRIPT: &str = "import json, sys, urllib.request; keys = sys.argv[2::2]; values = sys.argv[3::2]; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=json.dumps(dict(zip(keys, values))).encode(), headers=dict([('Content-Type', 'application/json')])), timeout=600)";

fn example(relative: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(relative),
    )
    .unwrap()
}

/// Serves `hosts_and_vms` (with a simulator section) on a loopback port; the API's URL base.
fn serve(
    runtime: &tokio::runtime::Runtime,
    workspace: &Workspace,
    hosts_and_vms: &str,
    time_scale: f64,
) -> (String, Arc<Management>) {
    let world = workspace.path("world.yaml");
    std::fs::write(
        &world,
        format!("{hosts_and_vms}\ndriver: {{kind: simulator, seed: 7}}\n"),
    )
    .unwrap();
    runtime.block_on(async {
        let opened = drover_emulator::world::open(&world, Some(time_scale)).unwrap();
        let management = Management::new(
            opened.driver,
            opened.cluster,
            drover_emulator::cloudstack::Credentials {
                api_key: "e2e-key".into(),
                secret_key: "e2e-secret".into(),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(drover_emulator::cloudstack::serve(
            listener,
            management.clone(),
        ));
        (url, management)
    })
}

fn driver_section(url: &str) -> String {
    format!(
        "driver:\n  kind: cloudstack\n  endpoint: \"{url}/client/api\"\n  api_key_env: DROVER_E2E_CS_KEY\n  secret_key_env: DROVER_E2E_CS_SECRET\n  poll_ms: 20\n  job_timeout_secs: 120\n  commands:\n    upgrade: [python3, -c, \"{POST_SCRIPT}\", \"{url}/emulator/upgrade\", host, \"{{host}}\", target, \"{{target}}\", hotfixes, \"{{hotfixes}}\"]\n    reboot: [python3, -c, \"{POST_SCRIPT}\", \"{url}/emulator/reboot\", host, \"{{host}}\"]\n"
    )
}

fn drover(workspace: &Workspace, args: &[&str]) -> std::process::Output {
    workspace
        .command(args)
        .env("DROVER_E2E_CS_KEY", "e2e-key")
        .env("DROVER_E2E_CS_SECRET", "e2e-secret")
        .output()
        .unwrap()
}

#[test]
fn drover_discovers_and_rolls_the_example_cloudstack_zones_on_the_emulator() {
    let example_text = example("cloudstack-zone.yaml");
    let head = example_text.split("\ndriver:").next().unwrap();
    let hosts_and_vms = head
        .split("\nhosts:")
        .nth(1)
        .map(|rest| {
            format!("cluster: {{name: cloudstack-zones, target_version: \"8.2.1\"}}\nhosts:{rest}")
        })
        .unwrap();
    let workspace = Workspace::new();
    std::fs::create_dir_all(workspace.path("cloudstack")).unwrap();
    std::fs::write(
        workspace.path("cloudstack/xenserver-hotfixes.yaml"),
        example("cloudstack/xenserver-hotfixes.yaml"),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, management) = serve(&runtime, &workspace, &hosts_and_vms, 600.0);

    let inventory = workspace.path("cloudstack-zone.yaml");
    std::fs::write(&inventory, format!("{head}\n{}", driver_section(&url))).unwrap();

    let discovered = drover(&workspace, &["discover", "-i", inventory.to_str().unwrap()]);
    assert_eq!(discovered.status.code(), Some(0), "{}", stderr(&discovered));
    let text = String::from_utf8_lossy(&discovered.stdout);
    for expected in [
        "xs-east-1",
        "xs-west-3",
        "r-4-VM",
        "s-1-VM",
        "legacy-app",
        "anti_affinity: web",
        "restart_policy: always",
        "zone: west",
    ] {
        assert!(
            text.contains(expected),
            "{expected} in the discovered inventory:\n{text}"
        );
    }

    let started = Instant::now();
    let output = drover(
        &workspace,
        &["run", "-i", inventory.to_str().unwrap(), "-o", "json"],
    );
    let wall_secs = started.elapsed().as_secs_f64();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", stderr(&output)));
    assert_eq!(report["phase"], "completed", "{report}");

    let calls = management.calls();
    let count = |key: &str| calls.get(key).copied().unwrap_or(0);
    assert_eq!(count("prepareHostForMaintenance"), 6, "{calls:?}");
    assert_eq!(count("cancelHostMaintenance"), 6, "{calls:?}");
    assert!(count("migrateSystemVm") >= 3, "{calls:?}");
    assert!(count("stopVirtualMachine") >= 1, "{calls:?}");
    assert!(count("startVirtualMachine") >= 1, "{calls:?}");
    assert_eq!(count("unauthorized"), 0, "{calls:?}");
    // Every host got the catalog's minimal set: the last of the chain and the driver update.
    let hotfixes = management.hotfixes_applied();
    assert_eq!(hotfixes.len(), 6, "{hotfixes:?}");
    for applied in hotfixes.values() {
        assert_eq!(applied, &["XS82E003".to_string(), "XS82E010".to_string()]);
    }
    // Every host is back Enabled at the target (Drover restored what it disabled).
    let snapshot = management.snapshot();
    assert!(snapshot
        .hosts
        .iter()
        .all(|host| !host.cordoned && host.version.to_string() == "8.2.1"));
    let migrations = count("migrateVirtualMachine") + count("migrateSystemVm");
    let total: u64 = calls.values().sum();
    eprintln!(
        "cloudstack e2e: 2 zones / 6 hosts / 8 VMs rolled in {wall_secs:.1} s; report migrations {}; {total} API calls, {migrations} migrate commands ({:.1} calls per migration, discovery and job polling included): {calls:?}",
        report["migrations"],
        total as f64 / migrations.max(1) as f64
    );
}

#[test]
fn drover_rolls_two_zones_of_twenty_hosts_on_the_emulator() {
    let mut hosts_and_vms =
        String::from("cluster: {name: cloudstack-40, target_version: \"8.2.1\"}\npolicy: {max_unavailable: 2}\nhosts:\n");
    for zone in ["east", "west"] {
        for index in 1..=20 {
            hosts_and_vms.push_str(&format!(
                "  - {{name: {zone}-{index:02}, version: \"8.2.0\", memory_mib: 65536, cpus: 16, labels: {{zone: {zone}}}}}\n"
            ));
        }
    }
    hosts_and_vms.push_str("vms:\n");
    for zone in ["east", "west"] {
        for index in 1..=20 {
            hosts_and_vms.push_str(&format!(
                "  - {{name: {zone}-vm-{index:02}, host: {zone}-{index:02}, memory_mib: 8192, vcpus: 2}}\n"
            ));
        }
    }
    hosts_and_vms.push_str("  - {name: r-1-VM, host: east-01, memory_mib: 256, vcpus: 1}\n");
    hosts_and_vms.push_str("  - {name: r-2-VM, host: west-01, memory_mib: 256, vcpus: 1}\n");
    let workspace = Workspace::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, management) = serve(&runtime, &workspace, &hosts_and_vms, 3000.0);
    let inventory = workspace.path("cloudstack-40.yaml");
    std::fs::write(
        &inventory,
        format!("{hosts_and_vms}{}", driver_section(&url)),
    )
    .unwrap();

    let started = Instant::now();
    let output = drover(
        &workspace,
        &["run", "-i", inventory.to_str().unwrap(), "-o", "json"],
    );
    let wall_secs = started.elapsed().as_secs_f64();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", stderr(&output)));
    assert_eq!(report["phase"], "completed", "{report}");
    let calls = management.calls();
    let count = |key: &str| calls.get(key).copied().unwrap_or(0);
    assert_eq!(count("prepareHostForMaintenance"), 40, "{calls:?}");
    assert!(management
        .snapshot()
        .hosts
        .iter()
        .all(|host| !host.cordoned && host.version.to_string() == "8.2.1"));
    let migrations = count("migrateVirtualMachine") + count("migrateSystemVm");
    let total: u64 = calls.values().sum();
    eprintln!(
        "cloudstack e2e: 2 zones / 40 hosts / 42 VMs rolled in {wall_secs:.1} s (max_unavailable 2, platform at 3000× the wall clock); {total} API calls, {migrations} migrate commands ({:.1} calls per migration, everything included)",
        total as f64 / migrations.max(1) as f64
    );
}
