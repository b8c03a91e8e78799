//! The client's session handling against drover-emulator's XAPI: a session the server forgot
//! (`SESSION_INVALID`) is replaced by a new login, and a pool member that is not the master
//! (`HOST_IS_SLAVE [master address]`) sends the client to the master; a migration still pending
//! at the driver's timeout is cancelled with `task.cancel`, and a refusal keeps XAPI's code.

use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use drover_core::Cluster;
use drover_driver::Driver;
use drover_xapi::driver::XapiTimings;
use drover_xapi::{XapiClient, XapiConnection, XapiDriver};
use serde_json::{json, Value};

const WORLD: &str = r#"
cluster: {name: sessions, target_version: "2.0"}
hosts:
  - {name: h1, role: master, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: small, version: "1.0", memory_mib: 2048, cpus: 2}
vms:
  - {name: web, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: stuck, host: h1, memory_mib: 1024, vcpus: 1}
driver:
  kind: simulator
  seed: 7
  faults:
    - {fault: migration-hangs, vm: stuck}
"#;

/// Serves an emulated pool; answers its address (`127.0.0.1:PORT`) and the cluster.
async fn emulator(directory: &std::path::Path) -> (String, Cluster) {
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
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(drover_emulator::xapi::serve(listener, pool));
    (address, cluster)
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
        migration_timeout: Duration::from_millis(500),
        task_poll: Duration::from_millis(10),
        upgrade_timeout: Duration::from_secs(30),
    };
    XapiDriver::new(client, timings, cluster, None)
}

async fn jsonrpc(address: &str, method: &str, params: Value) -> Value {
    reqwest::Client::new()
        .post(format!("http://{address}/jsonrpc"))
        .json(&json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_session_is_replaced_by_a_new_login() {
    let directory = tempfile::tempdir().unwrap();
    let (address, cluster) = emulator(directory.path()).await;
    let driver = driver(&format!("http://{address}"), &cluster);
    driver.discover().await.expect("first discovery logs in");
    let logins_before = driver.calls_made();
    // The emulator keeps 256 sessions: 256 other logins make it forget the driver's.
    for _ in 0..256 {
        let answer = jsonrpc(
            &address,
            "session.login_with_password",
            json!(["root", "pw"]),
        )
        .await;
        assert!(answer["result"].is_string(), "{answer}");
    }
    let facts = driver
        .host_facts("h1")
        .await
        .expect("the driver logs in again");
    assert_eq!(facts.version.to_string(), "1.0");
    // host.get_by_name_label (SESSION_INVALID), login, and the calls again.
    assert!(driver.calls_made() - logins_before >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_member_sends_the_client_to_the_master() {
    let directory = tempfile::tempdir().unwrap();
    let (master_address, cluster) = emulator(directory.path()).await;
    // A member answers every call as xapi does on a supporter.
    let master = master_address.clone();
    let member = Router::new().route(
        "/jsonrpc",
        post(move |Json(request): Json<Value>| {
            let master = master.clone();
            async move {
                Json(json!({"jsonrpc": "2.0", "id": request["id"],
                    "error": {"code": 1, "message": "HOST_IS_SLAVE", "data": [master]}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let member_address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, member).await });

    let driver = driver(&format!("http://{member_address}"), &cluster);
    let discovered = driver
        .discover()
        .await
        .expect("discovery through the master");
    let names: Vec<&str> = discovered
        .hosts
        .iter()
        .map(|host| host.name.as_str())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    driver.set_allocation("h2", false).await.unwrap();
    assert!(driver.host_facts("h2").await.unwrap().cordoned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_migration_is_cancelled_at_the_timeout_and_a_refusal_keeps_its_code() {
    let directory = tempfile::tempdir().unwrap();
    let (address, cluster) = emulator(directory.path()).await;
    let driver = driver(&format!("http://{address}"), &cluster);
    let error = driver.migrate("stuck", "h1", "h2").await.unwrap_err();
    assert!(
        matches!(&error, drover_driver::DriverError::Failed(text) if text.contains("cancelled (task.cancel)")),
        "{error}"
    );
    let discovered = driver.discover().await.unwrap();
    let stuck = discovered.vms.iter().find(|vm| vm.name == "stuck").unwrap();
    assert_eq!(discovered.hosts[stuck.host.index()].name, "h1");
    // `small` has 2 GiB; web needs 4.
    let error = driver.migrate("web", "h1", "small").await.unwrap_err();
    assert!(
        matches!(&error, drover_driver::DriverError::Refused(text) if text.contains("HOST_NOT_ENOUGH_FREE_MEMORY")),
        "{error}"
    );
}
