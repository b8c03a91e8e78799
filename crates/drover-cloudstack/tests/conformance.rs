//! The conformance suite against the cloudstack driver, opened through the driver registry from
//! a `kind: cloudstack` inventory, signing its requests to drover-emulator's CloudStack front-end
//! served on a free loopback port in this process (the simulator's world at 500× the wall clock,
//! so the platform's minutes take milliseconds). The `upgrade` and `reboot` commands post to the
//! emulator's installer and reboot stand-ins (CloudStack's API does neither). Prints the wall
//! time and the API calls one migrated VM costs.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use drover_conformance::{
    CallTimeouts, Check, CompatibilityFixture, Fixture, MigrationFixture, OptOut, PowerFixture,
    UpgradeFixture,
};
use drover_drivers::{OpenContext, PrepareContext};

/// h1 runs only `mobile` (migrated to h2, which empties h1 for maintenance and the upgrade); h3
/// runs `steady` (stopped and started) and the virtual router `r-9-VM`.
const WORLD: &str = r#"
cluster: {name: conformance, target_version: "8.2.1"}
hosts:
  - {name: h1, version: "8.2.0", memory_mib: 16384, cpus: 8, labels: {zone: east}}
  - {name: h2, version: "8.2.0", memory_mib: 16384, cpus: 8, labels: {zone: east}}
  - {name: h3, version: "8.2.0", memory_mib: 16384, cpus: 8, labels: {zone: east}}
vms:
  - {name: mobile, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: steady, host: h3, memory_mib: 2048, vcpus: 2}
  - {name: r-9-VM, host: h3, memory_mib: 256, vcpus: 1}
driver: {kind: simulator, seed: 7}
"#;

/// Posts `{"host", "target", "hotfixes"}` (or `{"host"}`) to the emulator's stand-in; no braces,
/// which argv templates read as placeholders.
pub const POST_SCRIPT: &str = "import json, sys, urllib.request; keys = sys.argv[2::2]; values = sys.argv[3::2]; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=json.dumps(dict(zip(keys, values))).encode(), headers=dict([('Content-Type', 'application/json')])), timeout=600)";

fn driver_inventory(url: &str) -> String {
    let hosts_and_vms = WORLD.split("driver:").next().unwrap();
    format!(
        "{hosts_and_vms}driver:\n  {{kind: cloudstack, endpoint: \"{url}/client/api\", api_key_file: api-key, secret_key_file: secret-key, poll_ms: 10,\n   request_timeout_secs: 10, job_timeout_secs: 60, upgrade_timeout_secs: 60,\n   commands: {{upgrade: [python3, -c, \"{POST_SCRIPT}\", \"{url}/emulator/upgrade\", host, \"{{host}}\", target, \"{{target}}\", hotfixes, \"{{hotfixes}}\"],\n              reboot: [python3, -c, \"{POST_SCRIPT}\", \"{url}/emulator/reboot\", host, \"{{host}}\"]}}}}\n"
    )
}

fn fixture() -> Fixture {
    Fixture {
        platform: "the cloudstack driver against drover-emulator's CloudStack API (signed, JSON)"
            .into(),
        healthy_hosts: vec!["h1".into(), "h2".into(), "h3".into()],
        cordon_host: "h2".into(),
        migration: MigrationFixture {
            vm: "mobile".into(),
            from: "h1".into(),
            to: "h2".into(),
        },
        power: PowerFixture {
            vm: "steady".into(),
            host: "h3".into(),
            graceful_timeout: Duration::from_secs(30),
        },
        maintenance_host: "h1".into(),
        compatibility: CompatibilityFixture {
            cluster: "conformance".into(),
            level: "8.2".into(),
        },
        upgrade: UpgradeFixture {
            host: "h1".into(),
            target: "8.2.1".parse().unwrap(),
        },
        timeouts: CallTimeouts {
            call: Duration::from_secs(30),
            slow_call: Duration::from_secs(60),
            // A repeat is a few loopback requests.
            repeated_call: Duration::from_millis(500),
        },
        opt_outs: vec![OptOut {
            check: Check::CompatibilityLevelIsIdempotent,
            reason: "CloudStack clusters have no compatibility level".into(),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloudstack_driver_passes_every_check() {
    let directory = tempfile::tempdir().unwrap();
    let world_path = directory.path().join("world.yaml");
    std::fs::write(&world_path, WORLD).unwrap();
    let world = drover_emulator::world::open(&world_path, Some(500.0)).unwrap();
    let management = drover_emulator::cloudstack::Management::new(
        world.driver,
        world.cluster,
        drover_emulator::cloudstack::Credentials {
            api_key: "conformance-key".into(),
            secret_key: "conformance-secret".into(),
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(drover_emulator::cloudstack::serve(
        listener,
        management.clone(),
    ));

    for (file, text) in [
        ("api-key", "conformance-key"),
        ("secret-key", "conformance-secret"),
    ] {
        let mut key = std::fs::File::create(directory.path().join(file)).unwrap();
        writeln!(key, "{text}").unwrap();
    }
    let inventory_text = driver_inventory(&url);
    let inventory_path = directory.path().join("inventory.yaml");
    std::fs::write(&inventory_path, &inventory_text).unwrap();
    let file = drover_schema::parse_inventory_file(&inventory_text, "inventory.yaml")
        .expect("the test inventory is valid");
    let prefix = directory.path().join("drover.db");
    let context = PrepareContext {
        inventory_path: &inventory_path,
        files_prefix: &prefix,
        cluster: &file.cluster.name,
        now_ms: 1_000,
        keep_platform_per_cluster: false,
    };
    let run_driver = drover_drivers::prepare(&file.driver, &context, BTreeMap::new())
        .expect("the registry prepares the driver");
    let open = OpenContext {
        cluster: &file.cluster,
        clock: run_driver.new_clock(),
        read_only: false,
    };
    let driver = drover_drivers::open(&run_driver, &open).expect("the registry opens the driver");

    let started = Instant::now();
    let report = drover_conformance::run_all(driver.as_ref(), &fixture()).await;
    let wall_ms = started.elapsed().as_millis();
    assert_eq!(report.driver_kind, "cloudstack");
    let expected: Vec<Check> = Check::ALL
        .iter()
        .copied()
        .filter(|check| *check != Check::CompatibilityLevelIsIdempotent)
        .collect();
    assert_eq!(report.passed(), expected, "{}", report.failures());
    println!(
        "cloudstack conformance: {} in {wall_ms} ms",
        report.summary()
    );

    // The router is its own class: migratable (migrateSystemVm), restarted by CloudStack.
    let discovered = driver.discover().await.unwrap();
    let router = discovered
        .vms
        .iter()
        .find(|vm| vm.name == "r-9-VM")
        .unwrap();
    assert!(router.migratable);
    assert_eq!(router.restart_policy, drover_core::RestartPolicy::Always);

    // API calls one migration costs, by the emulator's own counter.
    let total = || management.calls().values().sum::<u64>();
    let before = total();
    driver
        .migrate("mobile", "h2", "h1")
        .await
        .expect("mobile moves back to h1");
    let per_migration = total() - before;
    let discovered = driver.discover().await.unwrap();
    let mobile = discovered
        .vms
        .iter()
        .find(|vm| vm.name == "mobile")
        .unwrap();
    assert_eq!(discovered.hosts[mobile.host.index()].name, "h1");
    println!(
        "cloudstack: {per_migration} API calls for one migrated VM (lookups, migrateVirtualMachine, queryAsyncJobResult every 10 ms, the check after)"
    );
    assert!(per_migration >= 4, "lookups, the command and its job");
    let before = total();
    driver
        .migrate("r-9-VM", "h3", "h2")
        .await
        .expect("the router moves with migrateSystemVm");
    assert!(management.calls().get("migrateSystemVm") == Some(&1));
    println!(
        "cloudstack: {} API calls for one migrated router",
        total() - before
    );
}
