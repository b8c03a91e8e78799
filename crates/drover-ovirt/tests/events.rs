//! The engine's audit log (`/events`, `types/Event.java`) in a failed step's detail, against
//! drover-emulator's oVirt engine: an upgrade that ends in `install_failed` carries the engine's
//! error event about that host logged since the step began (`from` the index read before it),
//! and nothing older; the events read back with the model's fields.

use std::time::Duration;

use drover_driver::{Driver, DriverError};
use drover_ovirt::{OvirtClient, OvirtConnection, OvirtDriver, OvirtTimings};

const WORLD: &str = r#"
cluster: {name: events, target_version: "4.6"}
hosts:
  - {name: h1, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "4.5", memory_mib: 16384, cpus: 8}
vms:
  - {name: web, host: h1, memory_mib: 2048, vcpus: 2}
driver:
  kind: simulator
  seed: 7
  faults:
    - {fault: upgrade-fails, host: h2, times: 2}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upgrade_carries_the_engines_events_about_its_host_since_the_step_began() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("world.yaml");
    std::fs::write(&path, WORLD).unwrap();
    let world = drover_emulator::world::open(&path, Some(500.0)).unwrap();
    let cluster = world.cluster.clone();
    let engine = drover_emulator::ovirt::Engine::new(
        world.driver,
        world.cluster,
        drover_emulator::ovirt::Credentials {
            username: "admin@internal".into(),
            password: "secret".into(),
        },
        Duration::from_secs(600),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(drover_emulator::ovirt::serve(listener, engine.clone()));
    let client = OvirtClient::new(OvirtConnection {
        url: base.clone(),
        username: "admin@internal".into(),
        password: "secret".into(),
        ca_file: None,
        insecure: false,
        request_timeout: Duration::from_secs(10),
    })
    .unwrap();
    let timings = OvirtTimings {
        migration_timeout: Duration::from_secs(30),
        poll: Duration::from_millis(10),
        upgrade_timeout: Duration::from_secs(60),
        upgrade_reboot: true,
    };
    let driver = OvirtDriver::new(client, timings, &cluster, None, None);
    let target = "4.6".parse().unwrap();

    driver.set_maintenance("h2", true).await.unwrap();
    let first = driver.upgrade("h2", &target).await.unwrap_err();
    let DriverError::Failed(first) = first else {
        panic!("{first:?}")
    };
    assert!(first.contains("install_failed"), "{first}");
    assert!(first.contains("the engine's events"), "{first}");
    assert!(first.contains("code 841"), "{first}");
    assert_eq!(first.matches("code 841").count(), 1, "{first}");
    // The retry's detail names its own failure only, not the first one's.
    let second = driver.upgrade("h2", &target).await.unwrap_err();
    let DriverError::Failed(second) = second else {
        panic!("{second:?}")
    };
    assert_eq!(second.matches("code 841").count(), 1, "{second}");
    driver.upgrade("h2", &target).await.unwrap();

    // The log as the model writes it: index, code, severity, time, description, origin and the
    // host and cluster links; newest first; `from` and `max` bound it.
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/ovirt-engine/sso/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("scope", "ovirt-app-api"),
            ("username", "admin@internal"),
            ("password", "secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/ovirt-engine/api/events?max=50"))
        .header("Accept", "application/json")
        .header("Version", "4")
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = events["event"].as_array().unwrap().clone();
    let failures: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| event["code"] == "841")
        .collect();
    assert_eq!(failures.len(), 2, "{events:?}");
    for field in [
        "index",
        "severity",
        "time",
        "description",
        "origin",
        "custom_id",
    ] {
        assert!(
            failures[0].get(field).is_some(),
            "{field} in {:?}",
            failures[0]
        );
    }
    assert_eq!(failures[0]["severity"], "error");
    assert!(failures[0]["host"]["id"].is_string());
    let indexes: Vec<u64> = events
        .iter()
        .map(|event| event["index"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        indexes.windows(2).all(|pair| pair[0] > pair[1]),
        "{indexes:?}"
    );
}
