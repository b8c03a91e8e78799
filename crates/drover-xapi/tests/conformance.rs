//! The conformance suite against the xapi driver, opened through the driver registry from a
//! `kind: xapi` inventory, talking to drover-emulator's XAPI front-end served on a free loopback
//! port in this process (the simulator's world at 500× the wall clock, so the platform's minutes
//! take milliseconds): over JSON-RPC, over XML-RPC (`transport: xmlrpc`), and with `transport:
//! auto` against a server without JSON-RPC (it falls back to XML-RPC). Prints the emulator's XAPI
//! calls per migrated VM.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use drover_conformance::{
    CallTimeouts, Check, CompatibilityFixture, Fixture, MigrationFixture, OptOut, PowerFixture,
    UpgradeFixture,
};
use drover_drivers::{OpenContext, PrepareContext};

/// h1 runs only `mobile` (migrated to h2, which empties h1 for maintenance); h3 runs `steady`
/// (stopped and started).
const WORLD: &str = r#"
cluster: {name: conformance, target_version: "2.0"}
hosts:
  - {name: h1, role: master, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h3, version: "1.0", memory_mib: 16384, cpus: 8}
vms:
  - {name: mobile, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: steady, host: h3, memory_mib: 2048, vcpus: 2}
driver: {kind: simulator, seed: 7}
"#;

/// The `upgrade` command: asks the emulator's installer stand-in (`POST /emulator/upgrade`) to
/// install the target; no braces, which argv templates read as placeholders.
const UPGRADE_SCRIPT: &str = "import json, sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=json.dumps(dict(host=sys.argv[2], target=sys.argv[3])).encode(), headers=dict([('Content-Type', 'application/json')])))";

fn driver_inventory(url: &str) -> String {
    driver_inventory_over(url, "auto")
}

fn driver_inventory_over(url: &str, transport: &str) -> String {
    let hosts_and_vms = WORLD.split("driver:").next().unwrap();
    format!(
        "{hosts_and_vms}driver:\n  {{kind: xapi, url: \"{url}\", username: root, password_file: password, task_poll_ms: 10, transport: {transport},\n   request_timeout_secs: 10, migration_timeout_secs: 60, upgrade_timeout_secs: 60,\n   commands: {{upgrade: [python3, -c, \"{UPGRADE_SCRIPT}\", \"{url}/emulator/upgrade\", \"{{host}}\", \"{{target}}\"]}}}}\n"
    )
}

fn fixture() -> Fixture {
    Fixture {
        platform: "the xapi driver against drover-emulator's XAPI (JSON-RPC)".into(),
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
            level: "2.0".into(),
        },
        upgrade: UpgradeFixture {
            host: "h1".into(),
            target: "2.0".parse().unwrap(),
        },
        timeouts: CallTimeouts {
            call: Duration::from_secs(30),
            slow_call: Duration::from_secs(60),
            // A repeat is a few loopback requests.
            repeated_call: Duration::from_millis(500),
        },
        opt_outs: vec![OptOut::new(
            Check::CompatibilityLevelIsIdempotent,
            "XAPI pools have no compatibility level; the driver refuses to pretend it set one",
        )],
    }
}

/// The emulated pool, served in `encodings`, and the driver the registry opens for it from an
/// inventory with `transport`.
async fn emulated_pool_and_driver(
    directory: &std::path::Path,
    encodings: drover_emulator::xapi::Encodings,
    transport: &str,
) -> (
    std::sync::Arc<drover_emulator::xapi::XapiPool>,
    std::sync::Arc<dyn drover_driver::Driver>,
) {
    let world_path = directory.join("world.yaml");
    std::fs::write(&world_path, WORLD).unwrap();
    let world = drover_emulator::world::open(&world_path, Some(500.0)).unwrap();
    let pool = drover_emulator::xapi::XapiPool::new(
        world.driver,
        world.cluster,
        drover_emulator::xapi::Credentials {
            username: "root".into(),
            password: "conformance-password".into(),
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(drover_emulator::xapi::serve_encodings(
        listener,
        pool.clone(),
        encodings,
    ));

    let mut password = std::fs::File::create(directory.join("password")).unwrap();
    writeln!(password, "conformance-password").unwrap();
    let inventory_text = if transport == "auto" {
        driver_inventory(&url)
    } else {
        driver_inventory_over(&url, transport)
    };
    let inventory_path = directory.join("inventory.yaml");
    std::fs::write(&inventory_path, &inventory_text).unwrap();
    let file = drover_schema::parse_inventory_file(&inventory_text, "inventory.yaml")
        .expect("the test inventory is valid");
    let prefix = directory.join("drover.db");
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
    (pool, driver)
}

/// Every check the fixture does not opt out of passes over XML-RPC: with `transport: xmlrpc`, and
/// with `auto` against a server that answers `/jsonrpc` with 404.
async fn passes_over_xml_rpc(transport: &str) {
    let directory = tempfile::tempdir().unwrap();
    let without_json_rpc = drover_emulator::xapi::Encodings { json_rpc: false };
    let (pool, driver) =
        emulated_pool_and_driver(directory.path(), without_json_rpc, transport).await;
    let started = Instant::now();
    let report = drover_conformance::run_all(driver.as_ref(), &fixture()).await;
    let expected: Vec<Check> = Check::ALL
        .iter()
        .copied()
        .filter(|check| fixture().opt_out(*check).is_none())
        .collect();
    assert_eq!(report.passed(), expected, "{}", report.failures());
    println!(
        "xapi conformance over XML-RPC (transport: {transport}): {} in {} ms",
        report.summary(),
        started.elapsed().as_millis()
    );
    let calls = pool.calls_by_method();
    assert!(
        calls.get("Async.VM.pool_migrate").copied().unwrap_or(0) >= 1,
        "the migration went through the XML-RPC front-end: {calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_xapi_driver_passes_over_xml_rpc() {
    passes_over_xml_rpc("xmlrpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_auto_falls_back_to_xml_rpc_on_a_server_without_json_rpc() {
    passes_over_xml_rpc("auto").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_jsonrpc_fails_on_a_server_without_json_rpc_saying_so() {
    let directory = tempfile::tempdir().unwrap();
    let without_json_rpc = drover_emulator::xapi::Encodings { json_rpc: false };
    let (_pool, driver) =
        emulated_pool_and_driver(directory.path(), without_json_rpc, "jsonrpc").await;
    let error = driver.discover().await.expect_err("no JSON-RPC to speak");
    assert!(error.to_string().contains("no JSON-RPC here"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_xapi_driver_passes_every_check_it_does_not_opt_out_of() {
    let directory = tempfile::tempdir().unwrap();
    let (pool, driver) = emulated_pool_and_driver(
        directory.path(),
        drover_emulator::xapi::Encodings::default(),
        "jsonrpc",
    )
    .await;

    let started = Instant::now();
    let report = drover_conformance::run_all(driver.as_ref(), &fixture()).await;
    let wall_ms = started.elapsed().as_millis();
    assert_eq!(report.driver_kind, "xapi");
    let expected: Vec<Check> = Check::ALL
        .iter()
        .copied()
        .filter(|check| fixture().opt_out(*check).is_none())
        .collect();
    assert_eq!(report.passed(), expected, "{}", report.failures());
    println!("xapi conformance: {} in {wall_ms} ms", report.summary());

    // XAPI calls one migration costs, by the emulator's own counter.
    let total = || pool.calls_by_method().values().sum::<u64>();
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
    println!("xapi: {per_migration} XAPI calls for one migrated VM (login reused, task polled every 10 ms)");
    assert!(
        per_migration >= 5,
        "lookups, Async.VM.pool_migrate, task polling and task.destroy"
    );
}
