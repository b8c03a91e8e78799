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

/// A pool at its release whose catalog lists three hotfixes: HF-2 supersedes HF-1, HF-3
/// requires HF-2; xs2 has HF-1 installed already.
const CATALOG: &str = r#"
catalog: 1
product: xenserver
channels: [stable]
releases:
  - {version: "8.2", channels: [stable], upgrade_from: []}
hotfixes:
  - {id: HF-1, applies_to: ["8.2"]}
  - {id: HF-2, applies_to: ["8.2"], supersedes: [HF-1], reboot_required: true}
  - {id: HF-3, applies_to: ["8.2"], requires: [HF-2]}
"#;

const HOTFIX_WORLD: &str = r#"
cluster: {name: hotfixes, target_version: "8.2"}
hosts:
  - {name: xs1, role: master, version: "8.2", memory_mib: 16384, cpus: 8}
  - {name: xs2, version: "8.2", memory_mib: 16384, cpus: 8}
vms:
  - {name: web, host: xs1, memory_mib: 2048, vcpus: 1}
upgrade:
  catalog: catalog.yaml
  installed_hotfixes: {xs2: [HF-1]}
driver: {kind: simulator, seed: 5}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_hotfixes_are_applied_through_pool_update_once_each_in_order() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("world.yaml");
    std::fs::write(&path, HOTFIX_WORLD).unwrap();
    std::fs::write(directory.path().join("catalog.yaml"), CATALOG).unwrap();
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
    let uploaded = drover_emulator::xapi::pool::updates::uploaded_updates(&path).unwrap();
    assert_eq!(uploaded.len(), 3, "{uploaded:?}");
    pool.introduce_updates(uploaded);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(drover_emulator::xapi::serve(listener, pool.clone()));
    let client = XapiClient::new(XapiConnection {
        url: url.clone(),
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
    // The plan's minimal set (what drover-catalog selects: HF-1 is superseded), per host.
    let sets: BTreeMap<String, Vec<String>> = ["xs1", "xs2"]
        .into_iter()
        .map(|host| {
            (
                host.to_string(),
                vec!["HF-2".to_string(), "HF-3".to_string()],
            )
        })
        .collect();
    let driver = XapiDriver::new(client, timings.clone(), &cluster, None).with_hotfixes(sets);

    // Uploaded but not applied anywhere: `drover check` sees both hosts lacking updates.
    let pending = driver.updates_pending().await.unwrap();
    assert_eq!(pending.get("xs1"), Some(&Some(true)), "{pending:?}");
    assert_eq!(pending.get("xs2"), Some(&Some(true)), "{pending:?}");

    let target = "8.2".parse().unwrap();
    driver
        .upgrade("xs2", &target)
        .await
        .expect("hotfixes on xs2");
    let applied = pool.applied_updates();
    assert_eq!(
        applied.get("xs2"),
        Some(&vec!["HF-1".to_string(), "HF-2".into(), "HF-3".into()]),
        "{applied:?}"
    );
    assert_eq!(applied.get("xs1"), None, "xs1 untouched: {applied:?}");
    let calls = pool.calls_by_method();
    assert_eq!(calls.get("Async.pool_update.apply"), Some(&2), "{calls:?}");
    assert_eq!(
        calls.get("pool.sync_updates"),
        None,
        "at the release: no sync"
    );

    // Again (a retried or resumed step): nothing left to apply, no call.
    driver.upgrade("xs2", &target).await.expect("idempotent");
    let calls = pool.calls_by_method();
    assert_eq!(calls.get("Async.pool_update.apply"), Some(&2), "{calls:?}");

    // A hotfix the pool does not have is a failed step naming it.
    let client = XapiClient::new(XapiConnection {
        url: url.clone(),
        username: "root".into(),
        password: "pw".into(),
        ca_file: None,
        insecure: false,
        request_timeout: Duration::from_secs(10),
    })
    .unwrap();
    let missing = BTreeMap::from([("xs1".to_string(), vec!["HF-9".to_string()])]);
    let driver = XapiDriver::new(client, timings, &cluster, None).with_hotfixes(missing);
    let refused = driver.upgrade("xs1", &target).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("hotfix HF-9 is not uploaded to the pool"),
        "{refused}"
    );
}
