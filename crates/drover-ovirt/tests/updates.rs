//! `drover check`'s question to the engine, against drover-emulator's oVirt engine: each host's
//! `update_available` (`types/Host.java`), pending below the cluster's target, none at it, and an
//! error, never "no updates", for a host the engine cannot check (non_responsive) or does not
//! have; after the engine's own upgrade of a host, its update is gone.

use std::time::Duration;

use drover_driver::Driver;
use drover_ovirt::{OvirtClient, OvirtConnection, OvirtDriver, OvirtTimings};

const WORLD: &str = r#"
cluster: {name: checked, target_version: "4.6"}
hosts:
  - {name: h1, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "4.6", memory_mib: 16384, cpus: 8}
  - {name: h3, version: "4.5", memory_mib: 16384, cpus: 8, state: down}
driver: {kind: simulator, seed: 3}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_update_available_per_host_and_an_error_for_a_host_it_cannot_check() {
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
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(drover_emulator::ovirt::serve(listener, engine));
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
        migration_timeout: Duration::from_secs(30),
        poll: Duration::from_millis(10),
        upgrade_timeout: Duration::from_secs(60),
        upgrade_reboot: true,
    };
    let driver = OvirtDriver::new(client, timings, &cluster, None, None);
    let names: Vec<String> = ["h1", "h2", "h3", "ghost"].map(String::from).to_vec();

    let before = driver.updates_pending(&names).await.unwrap();
    assert_eq!(before["h1"], Ok(true), "{before:?}");
    assert_eq!(before["h2"], Ok(false), "{before:?}");
    let h3 = before["h3"].as_ref().unwrap_err();
    assert!(h3.contains("non_responsive"), "{h3}");
    let ghost = before["ghost"].as_ref().unwrap_err();
    assert!(ghost.contains("no host ghost"), "{ghost}");

    driver.set_maintenance("h1", true).await.unwrap();
    driver
        .upgrade("h1", &"4.6".parse().unwrap())
        .await
        .expect("the engine's upgrade");
    driver.set_maintenance("h1", false).await.unwrap();
    let after = driver.updates_pending(&names).await.unwrap();
    assert_eq!(after["h1"], Ok(false), "{after:?}");
}
