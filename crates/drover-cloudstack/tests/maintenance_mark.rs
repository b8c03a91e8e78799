//! The mark a host Disabled before its maintenance carries on the platform (a CloudStack
//! annotation), so that a driver in another process — a run resumed after kill -9 — still
//! reports the host cordoned while in maintenance and disables it again when it leaves, also
//! when the process stopped between CloudStack's cancel (which enables the host) and that.
//! Two drivers opened through the registry against drover-emulator's CloudStack front-end stand
//! for the two processes (each keeps its own in-process set).

use std::collections::BTreeMap;
use std::time::Duration;

use drover_cloudstack::{CloudstackClient, CloudstackConnection};
use drover_conformance::emulated::{
    hosts_and_vms, serve_on_loopback, write_secret, write_world, Served,
};
use drover_driver::Driver;
use drover_drivers::{OpenContext, PrepareContext};

const WORLD: &str = r#"
cluster: {name: marks, target_version: "8.2.1"}
hosts:
  - {name: h1, version: "8.2.0", memory_mib: 16384, cpus: 8, labels: {zone: east}}
  - {name: h2, version: "8.2.0", memory_mib: 16384, cpus: 8, labels: {zone: east}}
vms:
  - {name: web, host: h1, memory_mib: 2048, vcpus: 2}
driver: {kind: simulator, seed: 7}
"#;

struct Platform {
    management: std::sync::Arc<drover_emulator::cloudstack::Management>,
    client: CloudstackClient,
    run_driver: drover_drivers::RunDriver,
    file: drover_schema::inventory::InventoryFile,
    _served: Served,
    _directory: tempfile::TempDir,
}

impl Platform {
    async fn start() -> Platform {
        let directory = tempfile::tempdir().unwrap();
        let world_path = write_world(directory.path(), WORLD).unwrap();
        let world = drover_emulator::world::open(&world_path, Some(500.0)).unwrap();
        let management = drover_emulator::cloudstack::Management::new(
            world.driver,
            world.cluster,
            drover_emulator::cloudstack::Credentials {
                api_key: "mark-key".into(),
                secret_key: "mark-secret".into(),
            },
        );
        let served_management = management.clone();
        let (url, served) = serve_on_loopback(move |listener| {
            drover_emulator::cloudstack::serve(listener, served_management)
        })
        .await
        .unwrap();
        write_secret(directory.path(), "api-key", "mark-key").unwrap();
        write_secret(directory.path(), "secret-key", "mark-secret").unwrap();
        let hosts_and_vms = hosts_and_vms(WORLD);
        let inventory_text = format!(
            "{hosts_and_vms}driver:\n  {{kind: cloudstack, endpoint: \"{url}/client/api\", api_key_file: api-key, secret_key_file: secret-key, poll_ms: 10,\n   request_timeout_secs: 10, job_timeout_secs: 60, upgrade_timeout_secs: 60,\n   commands: {{upgrade: [\"true\"], reboot: [\"true\"]}}}}\n"
        );
        let inventory_path = directory.path().join("inventory.yaml");
        std::fs::write(&inventory_path, &inventory_text).unwrap();
        let file = drover_schema::parse_inventory_file(&inventory_text, "inventory.yaml")
            .expect("the test inventory is valid");
        let prefix = directory.path().join("drover.db");
        let context = PrepareContext {
            inventory_path: &inventory_path,
            files_prefix: &prefix,
            cluster: &file.cluster.name,
            now_ms: 1_000,
            keep_platform_per_cluster: false,
        };
        let run_driver = drover_drivers::prepare(&file.driver, &context, BTreeMap::new())
            .expect("the registry prepares the driver");
        let client = CloudstackClient::new(CloudstackConnection {
            endpoint: format!("{url}/client/api"),
            api_key: "mark-key".into(),
            secret_key: "mark-secret".into(),
            request_timeout: Duration::from_secs(10),
        })
        .unwrap();
        Platform {
            management,
            client,
            run_driver,
            file,
            _served: served,
            _directory: directory,
        }
    }

    /// A driver with a fresh in-process state, as a new Drover process opens it.
    fn new_process(&self) -> std::sync::Arc<dyn Driver> {
        let open = OpenContext {
            cluster: &self.file.cluster,
            clock: self.run_driver.new_clock(),
            read_only: false,
        };
        drover_drivers::open(&self.run_driver, &open).expect("the registry opens the driver")
    }

    async fn host(&self, name: &str) -> serde_json::Value {
        let hosts = self
            .client
            .list(
                "listHosts",
                &[("type", "Routing".into()), ("name", name.into())],
                "host",
            )
            .await
            .unwrap();
        hosts.into_iter().next().unwrap()
    }

    async fn marked(&self) -> Vec<String> {
        let marked = drover_cloudstack::marks::marked_hosts(&self.client)
            .await
            .unwrap();
        let mut names = Vec::new();
        for name in ["h1", "h2"] {
            let host = self.host(name).await;
            if marked.contains(host["id"].as_str().unwrap()) {
                names.push(name.to_string());
            }
        }
        names
    }
}

async fn cordoned(driver: &dyn Driver, host: &str) -> bool {
    let discovered = driver.discover().await.unwrap();
    discovered
        .hosts
        .iter()
        .find(|candidate| candidate.name == host)
        .unwrap()
        .cordoned
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_disabled_before_maintenance_is_disabled_again_by_another_process() {
    let platform = Platform::start().await;
    let first = platform.new_process();
    first.set_allocation("h2", false).await.unwrap();
    first.set_maintenance("h2", true).await.unwrap();
    assert_eq!(platform.host("h2").await["resourcestate"], "Maintenance");
    assert_eq!(platform.marked().await, vec!["h2".to_string()]);
    // Repeated: still one mark.
    first.set_maintenance("h2", true).await.unwrap();
    let annotations = platform
        .client
        .list(
            "listAnnotations",
            &[("entitytype", "HOST".into())],
            "annotation",
        )
        .await
        .unwrap();
    assert_eq!(annotations.len(), 1, "{annotations:?}");
    drop(first);

    // A new process sees the host in maintenance as cordoned, and disables it again on leaving.
    let second = platform.new_process();
    assert!(cordoned(second.as_ref(), "h2").await);
    second.set_maintenance("h2", false).await.unwrap();
    assert_eq!(platform.host("h2").await["resourcestate"], "Disabled");
    assert!(platform.marked().await.is_empty());
    assert!(cordoned(second.as_ref(), "h2").await);

    // Stopped between CloudStack's cancel (which enables the host) and the disable: the next
    // process finds the mark on an Enabled host and disables it.
    second.set_maintenance("h2", true).await.unwrap();
    drop(second);
    let id = platform.host("h2").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    platform
        .client
        .run_job(
            "cancelHostMaintenance",
            &[("id", id)],
            Duration::from_secs(30),
            Duration::from_millis(10),
        )
        .await
        .unwrap();
    assert_eq!(platform.host("h2").await["resourcestate"], "Enabled");
    let third = platform.new_process();
    third.set_maintenance("h2", false).await.unwrap();
    assert_eq!(platform.host("h2").await["resourcestate"], "Disabled");
    assert!(platform.marked().await.is_empty());

    // Drover's uncordon enables it; a host never Disabled gets no mark.
    third.set_allocation("h2", true).await.unwrap();
    assert_eq!(platform.host("h2").await["resourcestate"], "Enabled");
    third.set_maintenance("h2", true).await.unwrap();
    assert!(platform.marked().await.is_empty());
    third.set_maintenance("h2", false).await.unwrap();
    assert_eq!(platform.host("h2").await["resourcestate"], "Enabled");
    let calls = platform.management.calls();
    assert!(
        calls.get("addAnnotation").copied().unwrap_or(0) == 2,
        "{calls:?}"
    );
    assert!(
        calls.get("removeAnnotation").copied().unwrap_or(0) == 2,
        "{calls:?}"
    );
}
