//! The engine's placement rules through the driver, against drover-emulator's oVirt engine: a VM
//! in a positive, enforcing host affinity group (the emulator serves one per inventory VM with
//! `allowed_hosts`) is discovered with those hosts as `allowed_hosts` and the engine refuses a
//! migration elsewhere; a negative, enforcing VM group is anti-affinity; and what the planner
//! makes of them: the pinned VM named by the `unmovable-vms` precheck (the `cluster_upgrade`
//! role's "pinned VMs" safeguard), the constrained VM moved only within its hosts, and the
//! cluster's scheduling policy (the emulator's default `cluster_maintenance` here) not blocking.

use std::time::Duration;

use drover_core::{HostId, VmState};
use drover_driver::{Driver, DriverError};
use drover_ovirt::{OvirtClient, OvirtConnection, OvirtDriver, OvirtTimings};

const WORLD: &str = r#"
cluster: {name: rules, target_version: "4.6"}
policy: {max_unavailable: 1, auto_resolve: true}
hosts:
  - {name: h1, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h3, version: "4.5", memory_mib: 16384, cpus: 8}
  - {name: h4, version: "4.5", memory_mib: 16384, cpus: 8}
vms:
  - {name: licensed, host: h1, memory_mib: 2048, vcpus: 2, allowed_hosts: [h1, h2]}
  - {name: etcd-a, host: h1, memory_mib: 512, vcpus: 1, anti_affinity: etcd}
  - {name: etcd-b, host: h3, memory_mib: 512, vcpus: 1, anti_affinity: etcd}
  - {name: dongle, host: h4, memory_mib: 512, vcpus: 1, migratable: false}
driver: {kind: simulator, seed: 11}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_affinity_becomes_allowed_hosts_and_pinned_vms_a_precheck() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("world.yaml");
    std::fs::write(&path, WORLD).unwrap();
    let world = drover_emulator::world::open(&path, Some(500.0)).unwrap();
    let inventory = world.cluster.clone();
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
    let driver = OvirtDriver::new(client, timings, &inventory, None, None);

    let discovered = driver.discover().await.unwrap();
    let vm = |name: &str| {
        discovered
            .vms
            .iter()
            .find(|vm| vm.name == name)
            .unwrap_or_else(|| panic!("{name}"))
            .clone()
    };
    assert_eq!(
        vm("licensed").allowed_hosts,
        Some(vec![HostId(0), HostId(1)])
    );
    assert_eq!(vm("etcd-a").anti_affinity.as_deref(), Some("etcd"));
    assert_eq!(vm("etcd-b").allowed_hosts, None);
    assert!(!vm("dongle").migratable);
    assert_eq!(discovered.settings, Some(vec![]));

    let refused = driver.migrate("licensed", "h1", "h3").await.unwrap_err();
    assert!(
        matches!(&refused, DriverError::Refused(text) if text.contains("VmToHostsAffinityGroups")),
        "{refused:?}"
    );

    let mut cluster = inventory.clone();
    cluster.hosts = discovered.hosts.clone();
    cluster.vms = discovered.vms.clone();
    cluster.settings = discovered.settings.clone().unwrap_or_default();
    let plan = drover_core::plan(&cluster);
    let precheck = |id: &str| plan.prechecks.iter().find(|check| check.id == id);
    let unmovable = precheck("unmovable-vms").expect("the unmovable-vms precheck");
    assert!(
        unmovable.subjects.contains(&"dongle".to_string()),
        "{unmovable:?}"
    );
    assert!(
        precheck("scheduling-policy").is_none(),
        "{:?}",
        plan.prechecks
    );
    let licensed = cluster
        .vms
        .iter()
        .position(|vm| vm.name == "licensed")
        .unwrap();
    let moves: Vec<HostId> = plan
        .waves
        .iter()
        .flat_map(|wave| &wave.actions)
        .filter(|action| action.vm.index() == licensed)
        .filter_map(|action| action.to)
        .collect();
    assert!(!moves.is_empty(), "{plan:?}");
    assert!(
        moves.iter().all(|to| to.index() < 2),
        "licensed moves only between h1 and h2: {moves:?}"
    );
    assert_eq!(vm("licensed").state, VmState::Running);
}
