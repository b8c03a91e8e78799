//! `node_update: machine-config-pool` through the kubevirt driver against drover-emulator's
//! KubeVirt front-end and its emulated Machine Config Operator (in this process, over HTTPS
//! with a generated kubeconfig):
//! - discovery reports `machine-config-pool-unpaused` while the worker pool is not paused;
//!   resolving pauses it (a repeated resolve answers the same saved text), restoring unpauses it
//!   once, and a pool someone else paused is theirs (nothing saved, nothing unpaused);
//! - an emptied node's upgrade moves it into Drover's pool, where the operator updates it: its
//!   boot id changes exactly once, it reports the target, and it is back in the worker pool
//!   (label gone) while the worker pool stays paused; upgrading it again changes nothing;
//! - a new driver (a new process after a kill) finds the update in progress and follows it
//!   without starting another;
//! - a node the operator reports Degraded fails the step naming the node's reason and the pool's
//!   condition; the retry (the fault struck once) updates it.

use std::str::FromStr;
use std::time::Duration;

use drover_core::{PlatformSetting, SettingKind, Version};
use drover_driver::{Driver, DriverError};
use drover_kubevirt::machineconfig::{
    DROVER_POOL, DROVER_POOL_LABEL, PAUSED_BY_DROVER_ANNOTATION, STATE_ANNOTATION,
};
use drover_kubevirt::{KubevirtConnection, KubevirtDriver, KubevirtSettings};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::json;

const TOKEN: &str = "mcp-token";

fn world(faults: &str) -> String {
    format!(
        r#"
cluster: {{name: mcp, target_version: "4.16.3"}}
hosts:
  - {{name: kv1, version: "4.16.2", memory_mib: 16384, cpus: 8}}
  - {{name: kv2, version: "4.16.2", memory_mib: 16384, cpus: 8}}
  - {{name: kv3, version: "4.16.2", memory_mib: 16384, cpus: 8}}
vms:
  - {{name: web, host: kv1, memory_mib: 2048, vcpus: 2}}
driver: {{kind: simulator, seed: 5{faults}}}
"#
    )
}

struct Served {
    control_plane: std::sync::Arc<drover_emulator::kubevirt::ControlPlane>,
    directory: tempfile::TempDir,
}

async fn serve(world: &str) -> Served {
    let directory = tempfile::tempdir().unwrap();
    let world_path = directory.path().join("world.yaml");
    std::fs::write(&world_path, world).unwrap();
    let opened = drover_emulator::world::open(&world_path, Some(500.0)).unwrap();
    let control_plane = drover_emulator::kubevirt::ControlPlane::new(
        opened.driver,
        opened.cluster,
        opened.time_scale,
    );
    let (certificate, key) = drover_emulator::kubevirt::self_signed_certificate().unwrap();
    let ca_path = directory.path().join("ca.pem");
    std::fs::write(&ca_path, &certificate).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let served = control_plane.clone();
    tokio::spawn(async move {
        drover_emulator::kubevirt::serve(listener, served, TOKEN.to_string(), &certificate, &key)
            .await
    });
    std::fs::write(
        directory.path().join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulated\n  cluster: {{server: \"{url}\", certificate-authority: \"{}\"}}\nusers:\n- name: drover\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: emulated\n  context: {{cluster: emulated, user: drover}}\ncurrent-context: emulated\n",
            ca_path.display()
        ),
    )
    .unwrap();
    Served {
        control_plane,
        directory,
    }
}

fn driver(served: &Served) -> KubevirtDriver {
    KubevirtDriver::new(
        KubevirtConnection {
            kubeconfig: Some(served.directory.path().join("kubeconfig")),
            context: None,
        },
        KubevirtSettings {
            poll_interval: Duration::from_millis(20),
            upgrade_timeout: Duration::from_secs(120),
            machine_config_pool: Some("worker".into()),
            ..KubevirtSettings::default()
        },
        None,
        None,
    )
}

fn target() -> Version {
    Version::from_str("4.16.3").unwrap()
}

fn setting() -> PlatformSetting {
    PlatformSetting::pool(SettingKind::MachineConfigPoolUnpaused)
}

fn worker_paused(served: &Served) -> bool {
    served.control_plane.machine_config_pool("worker").unwrap()["spec"]["paused"] == json!(true)
}

fn boot_id(served: &Served, node: &str) -> String {
    served
        .control_plane
        .snapshot()
        .host(node)
        .unwrap()
        .boot_id
        .clone()
}

async fn node_json(served: &Served, driver: &KubevirtDriver, node: &str) -> serde_json::Value {
    let _ = driver.health_check(node).await;
    served.control_plane.store().get("nodes", "", node).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_pool_is_paused_and_restored_and_an_emptied_node_is_updated_once() {
    let served = serve(&world("")).await;
    let driver = driver(&served);
    let settings = driver.discover().await.unwrap().settings.unwrap();
    assert!(settings.contains(&setting()), "{settings:?}");

    let saved = driver.resolve_setting(&setting()).await.unwrap();
    assert!(!saved.is_empty());
    assert!(worker_paused(&served));
    let settings = driver.discover().await.unwrap().settings.unwrap();
    assert!(!settings.contains(&setting()), "{settings:?}");
    assert_eq!(driver.resolve_setting(&setting()).await.unwrap(), saved);

    let before = boot_id(&served, "kv2");
    driver.set_allocation("kv2", false).await.unwrap();
    driver.upgrade("kv2", &target()).await.unwrap();
    let facts = driver.host_facts("kv2").await.unwrap();
    assert_eq!(facts.version, target());
    assert_ne!(facts.boot_id, before);
    assert_eq!(
        served.control_plane.machine_config_reboots().get("kv2"),
        Some(&1)
    );
    let node = node_json(&served, &driver, "kv2").await;
    assert!(node["metadata"]["labels"][DROVER_POOL_LABEL].is_null());
    assert_eq!(node["metadata"]["annotations"][STATE_ANNOTATION], "Done");
    assert!(worker_paused(&served), "the worker pool stays paused");
    let pool = served
        .control_plane
        .machine_config_pool(DROVER_POOL)
        .unwrap();
    assert_eq!(pool["spec"]["maxUnavailable"], "100%");
    // Already at the target: nothing moves, nothing reboots.
    driver.upgrade("kv2", &target()).await.unwrap();
    assert_eq!(
        served.control_plane.machine_config_reboots().get("kv2"),
        Some(&1)
    );
    assert_eq!(
        served.control_plane.machine_config_reboots().get("kv3"),
        None,
        "kv3 stays in the paused worker pool"
    );

    driver.restore_setting(&setting(), &saved).await.unwrap();
    assert!(!worker_paused(&served));
    let pool = served.control_plane.machine_config_pool("worker").unwrap();
    assert!(pool["metadata"]["annotations"][PAUSED_BY_DROVER_ANNOTATION].is_null());
    driver.restore_setting(&setting(), &saved).await.unwrap();
    assert!(!worker_paused(&served));

    // A pool someone else paused is theirs: nothing saved, so nothing unpaused.
    let client = KubevirtDriver::connect(
        &KubevirtConnection {
            kubeconfig: Some(served.directory.path().join("kubeconfig")),
            context: None,
        },
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let pools: Api<DynamicObject> = Api::all_with(
        client,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(
                "machineconfiguration.openshift.io",
                "v1",
                "MachineConfigPool",
            ),
            "machineconfigpools",
        ),
    );
    pools
        .patch(
            "worker",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    assert_eq!(driver.resolve_setting(&setting()).await.unwrap(), "");
    driver.restore_setting(&setting(), "").await.unwrap();
    assert!(worker_paused(&served));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_follows_the_update_in_progress_instead_of_starting_another() {
    let served = serve(&world("")).await;
    let first = driver(&served);
    first.resolve_setting(&setting()).await.unwrap();
    let before = boot_id(&served, "kv3");
    first.set_allocation("kv3", false).await.unwrap();
    let killed = tokio::spawn(async move { first.upgrade("kv3", &target()).await });
    // The process dies while the operator works on the node.
    let observer = driver(&served);
    let mut working = false;
    for _ in 0..500 {
        let node = node_json(&served, &observer, "kv3").await;
        if node["metadata"]["annotations"][STATE_ANNOTATION] == "Working" {
            working = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    killed.abort();
    assert!(working, "the update started");
    let second = driver(&served);
    second.upgrade("kv3", &target()).await.unwrap();
    let facts = second.host_facts("kv3").await.unwrap();
    assert_eq!(facts.version, target());
    assert_ne!(facts.boot_id, before);
    assert_eq!(
        served.control_plane.machine_config_reboots().get("kv3"),
        Some(&1),
        "one update, one reboot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_node_fails_the_step_naming_the_pool_and_the_retry_updates_it() {
    let served = serve(&world(
        ", faults: [{fault: upgrade-fails, host: kv2, times: 1}]",
    ))
    .await;
    let driver = driver(&served);
    driver.resolve_setting(&setting()).await.unwrap();
    driver.set_allocation("kv2", false).await.unwrap();
    match driver.upgrade("kv2", &target()).await {
        Err(DriverError::Failed(message)) => {
            assert!(message.contains("Degraded"), "{message}");
            assert!(message.contains(DROVER_POOL), "{message}");
            assert!(
                message.contains("failed to update the OS of node kv2"),
                "{message}"
            );
        }
        other => panic!("a Degraded node fails the step: {other:?}"),
    }
    let node = node_json(&served, &driver, "kv2").await;
    assert!(
        node["metadata"]["labels"][DROVER_POOL_LABEL].is_null(),
        "back in the worker pool"
    );
    // The engine's retry moves it in again; the fault struck once.
    driver.upgrade("kv2", &target()).await.unwrap();
    assert_eq!(driver.host_facts("kv2").await.unwrap().version, target());
    assert_eq!(
        served.control_plane.machine_config_reboots().get("kv2"),
        Some(&1)
    );
}
