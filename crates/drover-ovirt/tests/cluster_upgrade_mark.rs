//! The `cluster_upgrade` role's marks on the engine, as the ovirt driver sets them: the
//! cluster's `upgrade_in_progress` (`ClusterService.upgrade`, `upgrade_action` start with
//! Drover's `correlation_id`) before the first host, `upgrade_percent_complete` after each
//! upgraded host (`update_progress`), and `finish` at the end — the blocking setting
//! `cluster-upgrade-unmarked`, journaled like the others so an abort or a crash never leaves the
//! mark set. Against drover-emulator's oVirt engine.

use std::sync::Arc;
use std::time::Duration;

use drover_conformance::{run_settings_scenario, SettingsScenario};
use drover_core::{PlatformSetting, SettingKind};
use drover_driver::Driver;
use drover_emulator::ovirt::{ClusterUpgrade, Engine};
use drover_ovirt::{OvirtClient, OvirtConnection, OvirtDriver, OvirtTimings};

const WORLD: &str = r#"
cluster: {name: marked, target_version: "4.6"}
hosts:
  - {name: h1, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h3, version: "4.5", memory_mib: 16384, cpus: 8}
vms:
  - {name: web, host: h1, memory_mib: 4096, vcpus: 2}
policy: {retry_backoff_initial_secs: 1, retry_backoff_max_secs: 2}
driver: {kind: simulator, seed: 7}
"#;

struct Served {
    engine: Arc<Engine>,
    driver: OvirtDriver,
    _directory: tempfile::TempDir,
}

async fn serve(mark: bool) -> Served {
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
        driver: OvirtDriver::new(client, timings, &cluster, None, None)
            .marking_cluster_upgrade(mark),
        _directory: directory,
    }
}

fn mark() -> PlatformSetting {
    PlatformSetting::pool(SettingKind::ClusterUpgradeUnmarked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_is_marked_before_the_first_host_and_finished_after_the_last() {
    let served = serve(true).await;
    assert_eq!(
        served.driver.discover().await.unwrap().settings,
        Some(vec![mark()])
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
        "ovirt cluster upgrade mark: {} calls logged in {} ms",
        report.log.len() / 2,
        report.wall_time.as_millis()
    );
    let after = served.engine.cluster_upgrade();
    assert!(!after.in_progress, "{after:?}");
    assert!(after.correlation_id.starts_with("drover-"), "{after:?}");
    let calls = served.engine.calls();
    let upgrade_actions = calls
        .get("POST /ovirt-engine/api/clusters/{id}/upgrade")
        .copied()
        .unwrap_or(0);
    // start, one update_progress per upgraded host, finish.
    assert_eq!(upgrade_actions, 1 + 3 + 1, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_follows_the_upgraded_hosts_and_a_repeated_resolve_or_restore_changes_nothing() {
    let served = serve(true).await;
    let saved = served.driver.resolve_setting(&mark()).await.unwrap();
    let marked = served.engine.cluster_upgrade();
    assert!(marked.in_progress);
    assert_eq!(marked.percent_complete, 0);
    assert!(saved.contains(&marked.correlation_id), "{saved}");
    // The journal lost the answer (a crash): the repeat reads the same mark back.
    assert_eq!(served.driver.resolve_setting(&mark()).await.unwrap(), saved);
    assert_eq!(
        served.driver.discover().await.unwrap().settings,
        Some(vec![])
    );

    served.driver.set_maintenance("h3", true).await.unwrap();
    served
        .driver
        .upgrade("h3", &"4.6".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(served.engine.cluster_upgrade().percent_complete, 33);

    served
        .driver
        .restore_setting(&mark(), &saved)
        .await
        .unwrap();
    served
        .driver
        .restore_setting(&mark(), &saved)
        .await
        .unwrap();
    assert_eq!(
        served.engine.cluster_upgrade(),
        ClusterUpgrade {
            in_progress: false,
            percent_complete: 0,
            correlation_id: marked.correlation_id.clone(),
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_mark_is_left_and_an_unmarking_driver_reports_nothing() {
    let other = serve(true).await;
    // Someone else's upgrade (another tool's correlation id) is running on the cluster.
    other.driver.resolve_setting(&mark()).await.unwrap();
    let theirs = other.engine.cluster_upgrade();
    let foreign = r#"{"correlation_id":"someone-else"}"#;
    other
        .driver
        .restore_setting(&mark(), foreign)
        .await
        .unwrap();
    assert_eq!(
        other.engine.cluster_upgrade(),
        theirs,
        "a mark that is not the saved one stays"
    );

    let unmarking = serve(false).await;
    assert_eq!(
        unmarking.driver.discover().await.unwrap().settings,
        Some(vec![])
    );
    assert!(!unmarking.engine.cluster_upgrade().in_progress);
}
