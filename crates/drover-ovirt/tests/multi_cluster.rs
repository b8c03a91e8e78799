//! One emulated engine of two clusters (`drover_emulator::ovirt::router_of`, as
//! `drover-emulator ovirt --inventory A --inventory B` serves it) and one driver per cluster
//! (`cluster:` in the section): each discovers only its cluster's hosts and VMs, migrates and
//! upgrades there, and the engine lists both clusters, every host and one audit log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_driver::Driver;
use drover_ovirt::{OvirtClient, OvirtConnection, OvirtDriver, OvirtTimings};

fn world(name: &str, prefix: &str) -> String {
    format!(
        r#"
cluster: {{name: {name}, target_version: "4.6"}}
hosts:
  - {{name: {prefix}1, version: "4.5", memory_mib: 16384, cpus: 8}}
  - {{name: {prefix}2, version: "4.5", memory_mib: 16384, cpus: 8}}
vms:
  - {{name: {prefix}-web, host: {prefix}1, memory_mib: 2048, vcpus: 2}}
driver: {{kind: simulator, seed: 3}}
"#
    )
}

fn client(url: &str) -> OvirtClient {
    OvirtClient::new(OvirtConnection {
        url: url.to_string(),
        username: "admin@internal".into(),
        password: "secret".into(),
        ca_file: None,
        insecure: false,
        request_timeout: Duration::from_secs(10),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_engine_serves_two_clusters_and_each_driver_sees_its_own() {
    let directory = tempfile::tempdir().unwrap();
    let events = Arc::new(Mutex::new(Default::default()));
    let mut parts = Vec::new();
    let mut inventories = Vec::new();
    for (part, (name, prefix)) in [("alpha", "a"), ("beta", "b")].into_iter().enumerate() {
        let path = directory.path().join(format!("{name}.yaml"));
        std::fs::write(&path, world(name, prefix)).unwrap();
        let opened = drover_emulator::world::open(&path, Some(500.0)).unwrap();
        inventories.push(opened.cluster.clone());
        parts.push(drover_emulator::ovirt::Engine::new_part(
            opened.driver,
            opened.cluster,
            drover_emulator::ovirt::Credentials {
                username: "admin@internal".into(),
                password: "secret".into(),
            },
            Duration::from_secs(600),
            part as u16,
            Arc::clone(&events),
        ));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(drover_emulator::ovirt::serve_parts(listener, parts));
    let timings = OvirtTimings {
        migration_timeout: Duration::from_secs(30),
        poll: Duration::from_millis(10),
        upgrade_timeout: Duration::from_secs(60),
        upgrade_reboot: true,
    };
    let alpha = OvirtDriver::new(client(&url), timings.clone(), &inventories[0], None, None);
    let beta = OvirtDriver::new(
        client(&url),
        timings,
        &inventories[1],
        Some("beta".into()),
        None,
    );

    let seen_alpha = alpha.discover().await.unwrap();
    let seen_beta = beta.discover().await.unwrap();
    let names =
        |hosts: &[drover_core::Host]| hosts.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&seen_alpha.hosts), ["a1", "a2"]);
    assert_eq!(names(&seen_beta.hosts), ["b1", "b2"]);
    assert_eq!(seen_beta.vms.len(), 1);
    assert_eq!(seen_beta.vms[0].name, "b-web");

    beta.migrate("b-web", "b1", "b2").await.unwrap();
    beta.set_maintenance("b1", true).await.unwrap();
    beta.upgrade("b1", &"4.6".parse().unwrap()).await.unwrap();
    beta.set_maintenance("b1", false).await.unwrap();
    assert_eq!(
        beta.host_facts("b1").await.unwrap().version.to_string(),
        "4.6"
    );
    assert_eq!(
        alpha.host_facts("a1").await.unwrap().version.to_string(),
        "4.5"
    );
    let after = alpha.discover().await.unwrap();
    assert_eq!(
        after.vms[0].host,
        drover_core::HostId(0),
        "alpha's VM stayed"
    );

    let engine = client(&url);
    let clusters = engine.get("/clusters").await.unwrap();
    let cluster_names: Vec<&str> = clusters["cluster"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cluster| cluster["name"].as_str().unwrap())
        .collect();
    assert_eq!(cluster_names, ["alpha", "beta"]);
    let hosts = engine.get("/hosts").await.unwrap();
    assert_eq!(hosts["host"].as_array().unwrap().len(), 4);
    let events = engine.get("/events?max=100").await.unwrap();
    let migrated = events["event"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["code"] == "63")
        .count();
    assert_eq!(migrated, 1, "{events}");
}
