//! XenServer 8's own update mechanism through the driver, against drover-emulator: without an
//! `upgrade` command the driver upgrades a host with `pool.sync_updates` then
//! `Async.host.apply_updates` (datamodel_pool.ml, datamodel_host.ml), and it reads each host's
//! `latest_synced_updates_applied` for `drover check`: unknown before a sync, then whether the
//! host has what the pool synced.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_driver::Driver;
use drover_xapi::driver::XapiTimings;
use drover_xapi::{XapiClient, XapiConnection, XapiDriver};

const WORLD: &str = r#"
cluster: {name: updates, target_version: "8.4"}
hosts:
  - {name: xs1, role: master, version: "8.2", memory_mib: 16384, cpus: 8}
  - {name: xs2, version: "8.2", memory_mib: 16384, cpus: 8}
  - {name: xs3, version: "8.4", memory_mib: 16384, cpus: 8}
vms:
  - {name: web, host: xs1, memory_mib: 2048, vcpus: 1}
driver: {kind: simulator, seed: 5}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_upgrade_command_the_pool_updates_itself_and_reports_it() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("world.yaml");
    std::fs::write(&path, WORLD).unwrap();
    let world = drover_emulator::world::open(&path, Some(500.0)).unwrap();
    let cluster = world.cluster.clone();
    let pool = drover_emulator::xapi::XapiPool::new(
        world.driver,
        world.cluster,
        drover_emulator::xapi::Credentials {
            username: "root".into(),
            password: "pw".into(),
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(drover_emulator::xapi::serve(listener, pool.clone()));
    let client = XapiClient::new(XapiConnection {
        url,
        username: "root".into(),
        password: "pw".into(),
        ca_file: None,
        insecure: false,
        request_timeout: Duration::from_secs(10),
    })
    .unwrap();
    let timings = XapiTimings {
        migration_timeout: Duration::from_secs(30),
        task_poll: Duration::from_millis(10),
        upgrade_timeout: Duration::from_secs(60),
    };
    let driver = XapiDriver::new(client, timings, &cluster, None);

    let unknown: BTreeMap<String, Option<bool>> = [("xs1", None), ("xs2", None), ("xs3", None)]
        .into_iter()
        .map(|(host, pending)| (host.to_string(), pending))
        .collect();
    assert_eq!(
        driver.updates_pending().await.unwrap(),
        unknown,
        "before any sync"
    );

    driver.set_maintenance("xs2", true).await.unwrap();
    driver
        .upgrade("xs2", &"8.4".parse().unwrap())
        .await
        .expect("sync_updates then apply_updates");
    driver.set_maintenance("xs2", false).await.unwrap();
    let facts = driver.host_facts("xs2").await.unwrap();
    assert_eq!(facts.version.to_string(), "8.4");
    let calls = pool.calls_by_method();
    assert_eq!(calls.get("pool.sync_updates"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("Async.host.apply_updates"), Some(&1), "{calls:?}");

    let after: BTreeMap<String, Option<bool>> = [
        ("xs1", Some(true)),
        ("xs2", Some(false)),
        ("xs3", Some(false)),
    ]
    .into_iter()
    .map(|(host, pending)| (host.to_string(), pending))
    .collect();
    assert_eq!(
        driver.updates_pending().await.unwrap(),
        after,
        "after the sync"
    );
}
