//! The conformance suite against the ovirt driver, opened through the driver registry from a
//! `kind: ovirt` inventory, talking JSON to drover-emulator's oVirt front-end served on a free
//! loopback port in this process (the simulator's world at 500× the wall clock, so the
//! platform's minutes take milliseconds). The upgrade is the engine's own (`upgradecheck`,
//! `upgrade`). Prints the wall time and the engine requests one migrated VM costs.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use drover_conformance::{
    CallTimeouts, Check, CompatibilityFixture, Fixture, MigrationFixture, PowerFixture,
    UpgradeFixture,
};
use drover_drivers::{OpenContext, PrepareContext};

/// h1 runs only `mobile` (migrated to h2, which empties h1 for maintenance and the upgrade); h3
/// runs `steady` (stopped and started).
const WORLD: &str = r#"
cluster: {name: conformance, target_version: "4.6"}
hosts:
  - {name: h1, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h3, version: "4.5", memory_mib: 16384, cpus: 8}
vms:
  - {name: mobile, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: steady, host: h3, memory_mib: 2048, vcpus: 2}
driver: {kind: simulator, seed: 7}
"#;

fn driver_inventory(url: &str) -> String {
    let hosts_and_vms = WORLD.split("driver:").next().unwrap();
    format!(
        "{hosts_and_vms}driver:\n  {{kind: ovirt, url: \"{url}\", username: admin@internal, password_file: password, poll_ms: 10,\n   request_timeout_secs: 10, migration_timeout_secs: 60, upgrade_timeout_secs: 60}}\n"
    )
}

fn fixture() -> Fixture {
    Fixture {
        platform: "the ovirt driver against drover-emulator's oVirt engine (REST API v4, JSON)"
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
            level: "4.5".into(),
        },
        upgrade: UpgradeFixture {
            host: "h1".into(),
            target: "4.6".parse().unwrap(),
        },
        timeouts: CallTimeouts {
            call: Duration::from_secs(30),
            slow_call: Duration::from_secs(60),
            // A repeat is a few loopback requests.
            repeated_call: Duration::from_millis(500),
        },
        opt_outs: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ovirt_driver_passes_every_check() {
    let directory = tempfile::tempdir().unwrap();
    let world_path = directory.path().join("world.yaml");
    std::fs::write(&world_path, WORLD).unwrap();
    let world = drover_emulator::world::open(&world_path, Some(500.0)).unwrap();
    let engine = drover_emulator::ovirt::Engine::new(
        world.driver,
        world.cluster,
        drover_emulator::ovirt::Credentials {
            username: "admin@internal".into(),
            password: "conformance-password".into(),
        },
        Duration::from_secs(600),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(drover_emulator::ovirt::serve(listener, engine.clone()));

    let mut password = std::fs::File::create(directory.path().join("password")).unwrap();
    writeln!(password, "conformance-password").unwrap();
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
    assert_eq!(report.driver_kind, "ovirt");
    assert_eq!(
        report.passed(),
        Check::ALL.to_vec(),
        "{}",
        report.failures()
    );
    println!("ovirt conformance: {} in {wall_ms} ms", report.summary());

    // Engine requests one migration costs, by the emulator's own counter.
    let total = || engine.calls().values().sum::<u64>();
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
    println!("ovirt: {per_migration} engine requests for one migrated VM (token reused, VM polled every 10 ms)");
    assert!(
        per_migration >= 4,
        "lookups, POST migrate and the VM's status polled"
    );
}
