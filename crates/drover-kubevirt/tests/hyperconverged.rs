//! The HyperConverged gate and setting through the kubevirt driver against drover-emulator's
//! KubeVirt front-end (in this process, over HTTPS with a generated kubeconfig): discovery
//! reports `workload-update-methods` while the methods are not empty; resolving saves and empties
//! them (a repeated resolve answers the same saved text, as after a crash before the journal
//! recorded it); restoring puts them back once; a list someone set during the run is left; and
//! an `Upgradeable` condition set False through the status subresource refuses discovery,
//! naming the condition's reason and message, until it is True again.

use std::time::Duration;

use drover_core::{PlatformSetting, SettingKind};
use drover_driver::{Driver, DriverError};
use drover_kubevirt::hyperconverged::SAVED_METHODS_ANNOTATION;
use drover_kubevirt::{KubevirtConnection, KubevirtDriver, KubevirtSettings};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{json, Value};

const WORLD: &str = r#"
cluster: {name: hco, target_version: "4.16.3"}
hosts:
  - {name: kv1, version: "4.16.2", memory_mib: 16384, cpus: 8}
  - {name: kv2, version: "4.16.2", memory_mib: 16384, cpus: 8}
vms:
  - {name: web, host: kv1, memory_mib: 2048, vcpus: 2}
driver: {kind: simulator, seed: 3}
"#;

const TOKEN: &str = "hco-token";

struct Served {
    control_plane: std::sync::Arc<drover_emulator::kubevirt::ControlPlane>,
    directory: tempfile::TempDir,
}

async fn serve() -> Served {
    let directory = tempfile::tempdir().unwrap();
    let world_path = directory.path().join("world.yaml");
    std::fs::write(&world_path, WORLD).unwrap();
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

fn connection(served: &Served) -> KubevirtConnection {
    KubevirtConnection {
        kubeconfig: Some(served.directory.path().join("kubeconfig")),
        context: None,
    }
}

/// The HyperConverged through a client of its own (the operator's or an administrator's side).
async fn hyperconverged_api(served: &Served) -> Api<DynamicObject> {
    let client = KubevirtDriver::connect(&connection(served), Duration::from_secs(10))
        .await
        .unwrap();
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("hco.kubevirt.io", "v1beta1", "HyperConverged"),
        "hyperconvergeds",
    );
    Api::namespaced_with(client, "openshift-cnv", &resource)
}

fn methods(served: &Served) -> Value {
    served.control_plane.hyperconverged()["spec"]["workloadUpdateStrategy"]["workloadUpdateMethods"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_update_methods_are_saved_emptied_and_restored_once() {
    let served = serve().await;
    let driver = KubevirtDriver::new(connection(&served), KubevirtSettings::default(), None, None);
    let setting = PlatformSetting::pool(SettingKind::WorkloadUpdateMethods);
    let discovered = driver.discover().await.unwrap();
    assert_eq!(discovered.settings, Some(vec![setting.clone()]));

    let saved = driver.resolve_setting(&setting).await.unwrap();
    assert_eq!(methods(&served), json!([]));
    let annotations = served.control_plane.hyperconverged()["metadata"]["annotations"].clone();
    assert_eq!(annotations[SAVED_METHODS_ANNOTATION], json!(saved));
    assert_eq!(
        serde_json::from_str::<Value>(&saved).unwrap(),
        json!({"workloadUpdateMethods": ["LiveMigrate", "Evict"]})
    );
    // Discovery no longer reports it; a repeated resolve answers the same saved text.
    assert_eq!(driver.discover().await.unwrap().settings, Some(vec![]));
    assert_eq!(driver.resolve_setting(&setting).await.unwrap(), saved);

    driver.restore_setting(&setting, &saved).await.unwrap();
    assert_eq!(methods(&served), json!(["LiveMigrate", "Evict"]));
    assert!(
        served.control_plane.hyperconverged()["metadata"]["annotations"][SAVED_METHODS_ANNOTATION]
            .is_null()
    );
    // A repeated restore changes nothing.
    driver.restore_setting(&setting, &saved).await.unwrap();
    assert_eq!(methods(&served), json!(["LiveMigrate", "Evict"]));

    // A list an administrator set during the run stays; only Drover's annotation goes.
    let saved = driver.resolve_setting(&setting).await.unwrap();
    let api = hyperconverged_api(&served).await;
    api.patch(
        "kubevirt-hyperconverged",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"workloadUpdateStrategy": {"workloadUpdateMethods": ["LiveMigrate"]}}})),
    )
    .await
    .unwrap();
    driver.restore_setting(&setting, &saved).await.unwrap();
    assert_eq!(methods(&served), json!(["LiveMigrate"]));
    assert!(
        served.control_plane.hyperconverged()["metadata"]["annotations"][SAVED_METHODS_ANNOTATION]
            .is_null()
    );

    // Other kinds are not KubeVirt's.
    let refused = driver
        .resolve_setting(&PlatformSetting::pool(SettingKind::HaEnabled))
        .await;
    assert!(
        matches!(refused, Err(DriverError::Refused(_))),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgradeable_false_refuses_discovery_naming_its_reason_and_message() {
    let served = serve().await;
    let driver = KubevirtDriver::new(connection(&served), KubevirtSettings::default(), None, None);
    driver.discover().await.expect("Upgradeable is True");
    let api = hyperconverged_api(&served).await;
    let set_upgradeable = |status: &'static str| {
        let conditions: Vec<Value> = served.control_plane.hyperconverged()["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|condition| {
                let mut condition = condition.clone();
                if condition["type"] == "Upgradeable" {
                    condition["status"] = json!(status);
                    condition["reason"] = json!("UpgradeInProgress");
                    condition["message"] = json!("HCO is upgrading to 4.17.0");
                }
                condition
            })
            .collect();
        json!({"status": {"conditions": conditions}})
    };
    api.patch_status(
        "kubevirt-hyperconverged",
        &PatchParams::default(),
        &Patch::Merge(&set_upgradeable("False")),
    )
    .await
    .unwrap();
    match driver.discover().await {
        Err(DriverError::Refused(message)) => {
            assert!(message.contains("not Upgradeable"), "{message}");
            assert!(message.contains("UpgradeInProgress"), "{message}");
            assert!(message.contains("HCO is upgrading to 4.17.0"), "{message}");
        }
        other => panic!("discovery must be refused while not Upgradeable: {other:?}"),
    }
    api.patch_status(
        "kubevirt-hyperconverged",
        &PatchParams::default(),
        &Patch::Merge(&set_upgradeable("True")),
    )
    .await
    .unwrap();
    driver.discover().await.expect("Upgradeable again");
}
