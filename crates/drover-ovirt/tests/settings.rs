//! The run-level scenario "prechecks auto-resolved and restored" against the ovirt driver and
//! drover-emulator's oVirt engine: the cluster runs `evenly_distributed` with a custom property;
//! the run switches it to `cluster_maintenance` (as the `cluster_upgrade` role does) before the
//! first host, rolls every host through the engine's own upgrade, and puts the policy and its
//! property back. A resolve repeated after a crash answers the same saved text (read back from
//! the event Drover logged before the switch), a restore repeated changes nothing, and a cluster
//! someone else put on the maintenance policy is neither reported nor restored by Drover.

use std::sync::Arc;
use std::time::Duration;

use drover_conformance::{run_settings_scenario, SettingsScenario};
use drover_core::{PlatformSetting, SettingKind};
use drover_driver::Driver;
use drover_emulator::ovirt::Engine;
use drover_ovirt::{OvirtClient, OvirtConnection, OvirtDriver, OvirtTimings};

const WORLD: &str = r#"
cluster: {name: settings, target_version: "4.6"}
hosts:
  - {name: h1, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h3, version: "4.5", memory_mib: 16384, cpus: 8}
vms:
  - {name: web, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: db, host: h3, memory_mib: 2048, vcpus: 2}
policy: {retry_backoff_initial_secs: 1, retry_backoff_max_secs: 2}
driver: {kind: simulator, seed: 7}
"#;

struct Served {
    engine: Arc<Engine>,
    driver: OvirtDriver,
    _directory: tempfile::TempDir,
}

async fn serve() -> Served {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("world.yaml");
    std::fs::write(&path, WORLD).unwrap();
    let world = drover_emulator::world::open(&path, Some(500.0)).unwrap();
    let cluster = world.cluster.clone();
    let engine = Engine::new(
        world.driver,
        world.cluster,
        drover_emulator::ovirt::Credentials {
            username: "admin@internal".into(),
            password: "secret".into(),
        },
        Duration::from_secs(600),
    );
    assert!(engine.set_scheduling_policy("evenly_distributed", &[("HighUtilization", "70")]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(drover_emulator::ovirt::serve(listener, engine.clone()));
    let client = OvirtClient::new(OvirtConnection {
        url,
        username: "admin@internal".into(),
        password: "secret".into(),
        ca_file: None,
        insecure: false,
        request_timeout: Duration::from_secs(10),
    })
    .unwrap();
    let timings = OvirtTimings {
        migration_timeout: Duration::from_secs(60),
        poll: Duration::from_millis(10),
        upgrade_timeout: Duration::from_secs(60),
        upgrade_reboot: true,
    };
    Served {
        engine,
        driver: OvirtDriver::new(client, timings, &cluster, None, None),
        _directory: directory,
    }
}

fn policy(engine: &Engine) -> (String, Vec<(String, String)>) {
    engine.scheduling_policy()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduling_policy_is_switched_to_cluster_maintenance_for_the_roll_and_put_back() {
    let served = serve().await;
    let before = policy(&served.engine);
    let discovered = served.driver.discover().await.unwrap();
    assert_eq!(
        discovered.settings,
        Some(vec![PlatformSetting::pool(SettingKind::SchedulingPolicy)])
    );

    let cluster = drover_schema::parse_inventory(WORLD, "world.yaml").unwrap();
    let scenario = SettingsScenario {
        cluster,
        call_timeout: Duration::from_secs(120),
        run_timeout: Duration::from_secs(600),
    };
    let report = run_settings_scenario(&served.driver, scenario)
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    println!(
        "ovirt settings scenario: {} calls logged in {} ms",
        report.log.len() / 2,
        report.wall_time.as_millis()
    );
    assert_eq!(policy(&served.engine), before);
    let calls = served.engine.calls();
    let count = |key: &str| calls.get(key).copied().unwrap_or(0);
    assert_eq!(count("PUT /ovirt-engine/api/clusters/{id}"), 2, "{calls:?}");
    assert_eq!(count("POST /ovirt-engine/api/events"), 1, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_resolve_answers_the_same_text_and_a_foreign_switch_is_not_drovers() {
    let served = serve().await;
    let setting = PlatformSetting::pool(SettingKind::SchedulingPolicy);
    let saved = served.driver.resolve_setting(&setting).await.unwrap();
    assert!(saved.contains("evenly_distributed"), "{saved}");
    assert!(saved.contains("HighUtilization"), "{saved}");
    assert_eq!(policy(&served.engine).0, "cluster_maintenance");
    // The journal lost the answer (a crash): the repeat reads it back from the engine's events.
    let again = served.driver.resolve_setting(&setting).await.unwrap();
    assert_eq!(again, saved);
    assert_eq!(
        served.driver.discover().await.unwrap().settings,
        Some(vec![])
    );

    served
        .driver
        .restore_setting(&setting, &saved)
        .await
        .unwrap();
    served
        .driver
        .restore_setting(&setting, &saved)
        .await
        .unwrap();
    assert_eq!(
        policy(&served.engine),
        (
            "evenly_distributed".to_string(),
            vec![("HighUtilization".to_string(), "70".to_string())]
        )
    );
    let puts = |engine: &Engine| {
        engine
            .calls()
            .get("PUT /ovirt-engine/api/clusters/{id}")
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(puts(&served.engine), 2);

    // An operator put the cluster on the maintenance policy: nothing to resolve, and what a
    // resolve answers then restores nothing.
    let other = serve().await;
    assert!(other
        .engine
        .set_scheduling_policy("cluster_maintenance", &[]));
    assert_eq!(
        other.driver.discover().await.unwrap().settings,
        Some(vec![])
    );
    let foreign = other.driver.resolve_setting(&setting).await.unwrap();
    assert_eq!(foreign, "{}");
    other
        .driver
        .restore_setting(&setting, &foreign)
        .await
        .unwrap();
    assert_eq!(policy(&other.engine).0, "cluster_maintenance");
    assert_eq!(puts(&other.engine), 0);
}

/// The inventory names the policy the roll switches to (the section's
/// `maintenance_scheduling_policy`): a cluster on `cluster_maintenance` is then not on it, is
/// switched to `power_saving` for the roll and put back on `cluster_maintenance`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_to_switch_to_is_the_one_the_inventory_names() {
    let served = serve().await;
    assert!(served
        .engine
        .set_scheduling_policy("cluster_maintenance", &[]));
    let driver = served.driver.switching_to_policy("power_saving");
    let setting = PlatformSetting::pool(SettingKind::SchedulingPolicy);
    assert_eq!(
        driver.discover().await.unwrap().settings,
        Some(vec![setting.clone()])
    );
    let saved = driver.resolve_setting(&setting).await.unwrap();
    assert!(saved.contains("cluster_maintenance"), "{saved}");
    assert_eq!(policy(&served.engine).0, "power_saving");
    assert_eq!(driver.discover().await.unwrap().settings, Some(vec![]));
    driver.restore_setting(&setting, &saved).await.unwrap();
    assert_eq!(policy(&served.engine).0, "cluster_maintenance");
}
