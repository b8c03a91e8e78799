//! The ovirt driver against drover-emulator's oVirt engine, for what the conformance suite does
//! not cover: discovery of pinned, highly available, anti-affine and local-storage VMs; a token that expires
//! (401, a new SSO grant, the request again); a host that still runs VMs is not deactivated (the
//! engine's evacuation never overrides Drover's plan); a hung migration cancelled at the timeout;
//! an upgrade that ends in `install_failed` is a failed step that a retry completes; a refused
//! compatibility level; a wrong password.

use std::time::Duration;

use drover_core::{RestartPolicy, VmState};
use drover_driver::{Driver, DriverError};
use drover_ovirt::{OvirtClient, OvirtConnection, OvirtDriver, OvirtTimings};

const WORLD: &str = r#"
cluster: {name: behaviour, target_version: "4.6"}
hosts:
  - {name: h1, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h3, version: "4.5", memory_mib: 16384, cpus: 8}
vms:
  - {name: web, host: h1, memory_mib: 2048, vcpus: 2, restart_policy: always}
  - {name: license, host: h2, memory_mib: 1024, vcpus: 1, migratable: false}
  - {name: stuck, host: h2, memory_mib: 1024, vcpus: 1}
  - {name: etcd-a, host: h1, memory_mib: 512, vcpus: 1, anti_affinity: etcd}
  - {name: etcd-b, host: h2, memory_mib: 512, vcpus: 1, anti_affinity: etcd}
  - {name: scratch, host: h1, memory_mib: 512, vcpus: 1, local_storage: true}
driver:
  kind: simulator
  seed: 7
  faults:
    - {fault: migration-hangs, vm: stuck}
    - {fault: upgrade-fails, host: h3, times: 1}
"#;

struct Served {
    url: String,
    engine: std::sync::Arc<drover_emulator::ovirt::Engine>,
    _directory: tempfile::TempDir,
}

async fn serve(token_ttl: Duration) -> Served {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("world.yaml");
    std::fs::write(&path, WORLD).unwrap();
    let world = drover_emulator::world::open(&path, Some(500.0)).unwrap();
    let engine = drover_emulator::ovirt::Engine::new(
        world.driver,
        world.cluster,
        drover_emulator::ovirt::Credentials {
            username: "admin@internal".into(),
            password: "secret".into(),
        },
        token_ttl,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ovirt-engine/api", listener.local_addr().unwrap());
    tokio::spawn(drover_emulator::ovirt::serve(listener, engine.clone()));
    Served {
        url,
        engine,
        _directory: directory,
    }
}

fn driver(url: &str, password: &str, migration_timeout: Duration) -> OvirtDriver {
    let client = OvirtClient::new(OvirtConnection {
        url: url.to_string(),
        username: "admin@internal".into(),
        password: password.into(),
        ca_file: None,
        insecure: false,
        request_timeout: Duration::from_secs(10),
    })
    .unwrap();
    let cluster = drover_schema::parse_inventory_file(WORLD, "world.yaml")
        .unwrap()
        .cluster;
    OvirtDriver::new(
        client,
        OvirtTimings {
            migration_timeout,
            poll: Duration::from_millis(10),
            upgrade_timeout: Duration::from_secs(60),
            upgrade_reboot: true,
        },
        &cluster,
        None,
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reads_pinning_high_availability_and_anti_affinity() {
    let served = serve(Duration::from_secs(600)).await;
    let driver = driver(&served.url, "secret", Duration::from_secs(30));
    let discovered = driver.discover().await.unwrap();
    let vm = |name: &str| discovered.vms.iter().find(|vm| vm.name == name).unwrap();
    assert_eq!(discovered.hosts.len(), 3);
    assert_eq!(discovered.hosts[0].memory_mib, 16384);
    assert_eq!(discovered.hosts[0].cpus, 8);
    assert_eq!(vm("web").restart_policy, RestartPolicy::Always);
    assert!(vm("web").migratable);
    assert!(!vm("license").migratable, "pinned in placement_policy");
    assert_eq!(vm("license").restart_policy, RestartPolicy::Manual);
    assert_eq!(vm("etcd-a").anti_affinity.as_deref(), Some("etcd"));
    assert_eq!(vm("etcd-b").anti_affinity.as_deref(), Some("etcd"));
    assert_eq!(vm("web").anti_affinity, None);
    assert_eq!(vm("web").memory_mib, 2048);
    assert!(
        vm("scratch").local_storage,
        "its disk is on a localfs domain"
    );
    assert!(
        vm("scratch").migratable,
        "not pinned: only its disk keeps it"
    );
    assert!(!vm("web").local_storage);
    assert_eq!(vm("web").vcpus, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_granted_again_and_a_wrong_password_is_a_failure() {
    let served = serve(Duration::from_millis(200)).await;
    let driver = driver(&served.url, "secret", Duration::from_secs(30));
    driver.health_check("h1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    driver.health_check("h1").await.unwrap();
    let grants = served.engine.calls()["POST /ovirt-engine/sso/oauth/token"];
    assert_eq!(grants, 2, "one grant, then one more after the 401");

    let wrong = driver_with_password(&served.url, "wrong");
    let error = wrong.health_check("h1").await.unwrap_err();
    assert!(
        matches!(&error, DriverError::Failed(message) if message.contains("access_denied")),
        "{error:?}"
    );
}

fn driver_with_password(url: &str, password: &str) -> OvirtDriver {
    driver(url, password, Duration::from_secs(30))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_vms_is_not_deactivated_and_a_hung_migration_is_cancelled() {
    let served = serve(Duration::from_secs(600)).await;
    let driver = driver(&served.url, "secret", Duration::from_millis(500));
    let refused = driver.set_maintenance("h1", true).await.unwrap_err();
    assert!(
        matches!(&refused, DriverError::Refused(message) if message.contains("still runs") && message.contains("web")),
        "{refused:?}"
    );
    let facts = driver.host_facts("h1").await.unwrap();
    assert!(!facts.in_maintenance, "the engine never started evacuating");

    let hung = driver.migrate("stuck", "h2", "h3").await.unwrap_err();
    assert!(
        matches!(&hung, DriverError::Failed(message) if message.contains("cancelmigration")),
        "{hung:?}"
    );
    assert_eq!(
        served.engine.calls()["POST /ovirt-engine/api/vms/{id}/cancelmigration"],
        1
    );
    let discovered = driver.discover().await.unwrap();
    let stuck = discovered.vms.iter().find(|vm| vm.name == "stuck").unwrap();
    assert_eq!(stuck.state, VmState::Running);
    assert_eq!(discovered.hosts[stuck.host.index()].name, "h2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_failed_is_a_failed_step_that_a_retry_completes() {
    let served = serve(Duration::from_secs(600)).await;
    let driver = driver(&served.url, "secret", Duration::from_secs(30));
    driver.set_maintenance("h3", true).await.unwrap();
    let target = "4.6".parse().unwrap();
    let failed = driver.upgrade("h3", &target).await.unwrap_err();
    assert!(
        matches!(&failed, DriverError::Failed(message) if message.contains("install_failed")),
        "{failed:?}"
    );
    let facts = driver.host_facts("h3").await.unwrap();
    assert!(
        facts.in_maintenance,
        "install_failed keeps the host out of service"
    );
    assert_eq!(facts.version.to_string(), "4.5");
    driver.upgrade("h3", &target).await.unwrap();
    assert_eq!(driver.host_facts("h3").await.unwrap().version, target);
    driver.set_maintenance("h3", false).await.unwrap();
    driver.health_check("h3").await.unwrap();

    let refused = driver
        .set_compatibility_level("behaviour", "4.6")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, DriverError::Refused(message) if message.contains("Compatibility Version")),
        "{refused:?}"
    );
}
