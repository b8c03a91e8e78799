//! The run-level scenario "prechecks auto-resolved and restored" against the xapi driver, opened
//! through the driver registry, talking JSON-RPC to drover-emulator's XAPI front-end on a free
//! loopback port (the simulator's world at 500× the wall clock): HA, WLB and a VM's CD are on;
//! the run disables HA and WLB and ejects the CD before the master, upgrades every host master
//! first, and enables HA again with its heartbeat SR and configuration, and WLB.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use drover_conformance::{run_settings_scenario, SettingsScenario};
use drover_driver::Driver;
use drover_drivers::{OpenContext, PrepareContext};
use drover_emulator::xapi::XapiPool;

const WORLD: &str = r#"
cluster:
  name: settings
  target_version: "2.0"
  settings:
    - {setting: ha-enabled}
    - {setting: wlb-enabled}
    - {setting: vm-media-inserted, vm: mobile}
hosts:
  - {name: h1, role: master, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h3, version: "1.0", memory_mib: 16384, cpus: 8}
vms:
  - {name: mobile, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: steady, host: h3, memory_mib: 2048, vcpus: 2}
policy: {retry_backoff_initial_secs: 1, retry_backoff_max_secs: 2}
driver: {kind: simulator, seed: 7}
"#;

/// The `upgrade` command: the emulator's installer stand-in (`POST /emulator/upgrade`).
const UPGRADE_SCRIPT: &str = "import json, sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=json.dumps(dict(host=sys.argv[2], target=sys.argv[3])).encode(), headers=dict([('Content-Type', 'application/json')])))";

struct Served {
    pool: Arc<XapiPool>,
    driver: Arc<dyn Driver>,
    _directory: tempfile::TempDir,
}

async fn serve_and_open() -> Served {
    let directory = tempfile::tempdir().unwrap();
    let world_path = directory.path().join("world.yaml");
    std::fs::write(&world_path, WORLD).unwrap();
    let world = drover_emulator::world::open(&world_path, Some(500.0)).unwrap();
    let pool = XapiPool::new(
        world.driver,
        world.cluster,
        drover_emulator::xapi::Credentials {
            username: "root".into(),
            password: "settings-password".into(),
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(drover_emulator::xapi::serve(listener, pool.clone()));
    let mut password = std::fs::File::create(directory.path().join("password")).unwrap();
    writeln!(password, "settings-password").unwrap();
    let world_part = WORLD.split("driver:").next().unwrap();
    let inventory_text = format!(
        "{world_part}driver:\n  {{kind: xapi, url: \"{url}\", username: root, password_file: password, task_poll_ms: 10,\n   request_timeout_secs: 10, migration_timeout_secs: 60, upgrade_timeout_secs: 60,\n   commands: {{upgrade: [python3, -c, \"{UPGRADE_SCRIPT}\", \"{url}/emulator/upgrade\", \"{{host}}\", \"{{target}}\"]}}}}\n"
    );
    let inventory_path = directory.path().join("inventory.yaml");
    std::fs::write(&inventory_path, &inventory_text).unwrap();
    let file = drover_schema::parse_inventory_file(&inventory_text, "inventory.yaml").unwrap();
    let prefix = directory.path().join("drover.db");
    let context = PrepareContext {
        inventory_path: &inventory_path,
        files_prefix: &prefix,
        cluster: &file.cluster.name,
        now_ms: 1_000,
        keep_platform_per_cluster: false,
    };
    let run_driver = drover_drivers::prepare(&file.driver, &context, BTreeMap::new()).unwrap();
    let open = OpenContext {
        cluster: &file.cluster,
        clock: run_driver.new_clock(),
        read_only: false,
    };
    let driver = drover_drivers::open(&run_driver, &open).unwrap();
    Served {
        pool,
        driver,
        _directory: directory,
    }
}

/// The pool record as the emulator answers it over JSON-RPC.
async fn pool_record(served: &Served) -> serde_json::Map<String, serde_json::Value> {
    let answer = served
        .pool
        .call(
            "session.login_with_password",
            vec![
                drover_emulator::xapi::wire::XapiValue::string("root"),
                drover_emulator::xapi::wire::XapiValue::string("settings-password"),
            ],
        )
        .await
        .unwrap();
    let session = answer.as_str().unwrap().to_string();
    let records = served
        .pool
        .call(
            "pool.get_all_records",
            vec![drover_emulator::xapi::wire::XapiValue::string(session)],
        )
        .await
        .unwrap()
        .to_json();
    let (_, record) = records.as_object().unwrap().iter().next().unwrap();
    record.as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_xapi_driver_resolves_ha_wlb_and_the_cd_first_and_puts_ha_and_wlb_back() {
    let served = serve_and_open().await;
    let before = pool_record(&served).await;
    assert_eq!(before["ha_enabled"], true);
    assert_eq!(before["wlb_enabled"], true);
    let discovered = served.driver.discover().await.unwrap();
    assert_eq!(discovered.settings.as_ref().map(Vec::len), Some(3));

    let cluster = drover_schema::parse_inventory(WORLD, "world.yaml").unwrap();
    let scenario = SettingsScenario {
        cluster,
        call_timeout: Duration::from_secs(120),
        run_timeout: Duration::from_secs(600),
    };
    let report = run_settings_scenario(served.driver.as_ref(), scenario)
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    println!(
        "xapi settings scenario: {} calls logged in {} ms",
        report.log.len() / 2,
        report.wall_time.as_millis()
    );

    // HA is back with the heartbeat SR (its statefile), configuration and failures to
    // tolerate it had; WLB is back; the CD stays ejected.
    let after = pool_record(&served).await;
    for field in [
        "ha_enabled",
        "ha_statefiles",
        "ha_configuration",
        "ha_host_failures_to_tolerate",
        "wlb_enabled",
        "master",
    ] {
        assert_eq!(after[field], before[field], "pool.{field}");
    }
    let calls = served.pool.calls_by_method();
    let count = |method: &str| calls.get(method).copied().unwrap_or(0);
    assert_eq!(count("pool.disable_ha"), 1);
    assert_eq!(count("pool.enable_ha"), 1);
    assert_eq!(count("VBD.eject"), 1);
    assert_eq!(count("pool.set_wlb_enabled"), 2);
    assert_eq!(count("pool.designate_new_master"), 0);

    // The master is upgraded first: the first host Drover changes is h1, and h1 enters
    // maintenance only as the step right before its own upgrade, before any other host's.
    let changes: Vec<(&str, &str)> = report
        .log
        .iter()
        .filter(|e| e.outcome.is_none())
        .filter_map(|e| Some((e.step, e.host.as_deref()?)))
        .filter(|(step, _)| *step != "read-host-facts" && *step != "health-check")
        .collect();
    assert_eq!(
        changes.first().map(|(_, host)| *host),
        Some("h1"),
        "{changes:?}"
    );
    let master_maintenance = changes
        .iter()
        .position(|change| *change == ("enter-maintenance", "h1"))
        .expect("the master enters maintenance");
    assert_eq!(
        changes[master_maintenance + 1],
        ("upgrade", "h1"),
        "{changes:?}"
    );
    let first_other_host = changes.iter().position(|(_, host)| *host != "h1").unwrap();
    assert!(master_maintenance < first_other_host, "{changes:?}");
}
