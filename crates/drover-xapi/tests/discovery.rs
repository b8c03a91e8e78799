//! Discovery through drover-emulator's XAPI reads back what the inventory says of each guest:
//! `local_storage` from VBD → VDI → SR `shared`, `migratable` from `allowed_operations` and
//! `VM_guest_metrics.PV_drivers_detected`, `restart_policy` from `ha_restart_priority`, and the
//! anti-affinity group from `VM_group.placement`. A guest on local storage is refused a live
//! migration with `VM_REQUIRES_SR`, one without PV drivers with `VM_LACKS_FEATURE`.

use std::time::Duration;

use drover_core::{Cluster, RestartPolicy, VmState};
use drover_driver::Driver;
use drover_xapi::driver::XapiTimings;
use drover_xapi::{XapiClient, XapiConnection, XapiDriver};

const WORLD: &str = r#"
cluster: {name: discovery, target_version: "8.4"}
hosts:
  - {name: xs1, role: master, version: "8.2", memory_mib: 65536, cpus: 16}
  - {name: xs2, version: "8.2", memory_mib: 65536, cpus: 16}
  - {name: xs3, version: "8.2", memory_mib: 65536, cpus: 16}
vms:
  - {name: web, host: xs1, memory_mib: 4096, vcpus: 2}
  - {name: scratch, host: xs1, memory_mib: 2048, local_storage: true}
  - {name: legacy, host: xs2, memory_mib: 1024, migratable: false, restart_policy: always}
  - {name: etcd-1, host: xs2, memory_mib: 2048, anti_affinity: etcd}
  - {name: etcd-2, host: xs3, memory_mib: 2048, anti_affinity: etcd}
  - {name: parked, host: xs3, memory_mib: 1024, state: stopped, local_storage: true}
driver: {kind: simulator, seed: 3}
"#;

async fn emulated_pool(directory: &std::path::Path) -> (String, Cluster) {
    let path = directory.join("world.yaml");
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
    tokio::spawn(drover_emulator::xapi::serve(listener, pool));
    (url, cluster)
}

fn driver(url: &str, cluster: &Cluster) -> XapiDriver {
    let client = XapiClient::new(XapiConnection {
        url: url.to_string(),
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
        upgrade_timeout: Duration::from_secs(30),
    };
    XapiDriver::new(client, timings, cluster, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reads_what_the_inventory_says_of_each_guest() {
    let directory = tempfile::tempdir().unwrap();
    let (url, cluster) = emulated_pool(directory.path()).await;
    let driver = driver(&url, &cluster);
    let discovered = driver.discover().await.expect("discovery");
    assert_eq!(discovered.vms.len(), cluster.vms.len());
    for expected in &cluster.vms {
        let seen = discovered
            .vms
            .iter()
            .find(|vm| vm.name == expected.name)
            .unwrap_or_else(|| panic!("{} is discovered", expected.name));
        assert_eq!(
            (
                seen.local_storage,
                seen.restart_policy,
                seen.anti_affinity.as_deref(),
                seen.state
            ),
            (
                expected.local_storage,
                expected.restart_policy,
                expected.anti_affinity.as_deref(),
                expected.state
            ),
            "{}",
            expected.name
        );
        // A stopped VM is not held back by live-migration checks (see discovery's doc).
        let expected_migratable = expected.migratable || expected.state == VmState::Stopped;
        assert_eq!(seen.migratable, expected_migratable, "{}", expected.name);
        assert_eq!(
            discovered.hosts[seen.host.index()].name,
            cluster.hosts[expected.host.index()].name,
            "{} is where the inventory put it",
            expected.name
        );
    }
    let legacy = discovered
        .vms
        .iter()
        .find(|vm| vm.name == "legacy")
        .unwrap();
    assert_eq!(legacy.restart_policy, RestartPolicy::Always);
    assert!(!legacy.migratable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_migration_refusals_keep_xapis_codes() {
    let directory = tempfile::tempdir().unwrap();
    let (url, cluster) = emulated_pool(directory.path()).await;
    let driver = driver(&url, &cluster);
    let local = driver
        .migrate("scratch", "xs1", "xs2")
        .await
        .expect_err("a VM on local storage cannot move live");
    assert!(local.to_string().contains("VM_REQUIRES_SR"), "{local}");
    let no_drivers = driver
        .migrate("legacy", "xs2", "xs1")
        .await
        .expect_err("a VM without PV drivers cannot move live");
    assert!(
        no_drivers.to_string().contains("VM_LACKS_FEATURE"),
        "{no_drivers}"
    );
}
