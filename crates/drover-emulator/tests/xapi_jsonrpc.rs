//! The XAPI front-end over JSON-RPC (`/jsonrpc`), served in-process on a loopback port: login,
//! records, an async migration followed through its task, a cancelled hung migration, XAPI error
//! codes, and the bounds (body size, parameter counts).

use std::io::Write;
use std::time::{Duration, Instant};

use drover_emulator::{world, xapi};
use serde_json::{json, Value};

const INVENTORY: &str = r#"
cluster: {name: jsonrpc, target_version: "8.4"}
hosts:
  - {name: xs1, role: master, version: "8.2", memory_mib: 16384, cpus: 8}
  - {name: xs2, version: "8.2", memory_mib: 16384, cpus: 8}
vms:
  - {name: web, host: xs1, memory_mib: 4096, vcpus: 2}
  - {name: stuck, host: xs1, memory_mib: 1024, vcpus: 1}
driver:
  kind: simulator
  seed: 7
  faults:
    - {fault: migration-hangs, vm: stuck}
"#;

struct Emulator {
    url: String,
    client: reqwest::Client,
    next_id: std::sync::atomic::AtomicU64,
}

impl Emulator {
    async fn start() -> Emulator {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(INVENTORY.as_bytes()).unwrap();
        let opened = world::open(file.path(), Some(200.0)).expect("the inventory opens");
        let pool = xapi::XapiPool::new(
            opened.driver,
            opened.cluster,
            xapi::Credentials {
                username: "root".into(),
                password: "secret".into(),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(xapi::serve(listener, pool));
        Emulator {
            url,
            client: reqwest::Client::new(),
            next_id: Default::default(),
        }
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
        let answer: Value = self
            .client
            .post(format!("{}/jsonrpc", self.url))
            .json(&request)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["id"], json!(id), "the id is echoed");
        answer
    }

    async fn ok(&self, method: &str, params: Value) -> Value {
        let answer = self.call(method, params).await;
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    async fn error(&self, method: &str, params: Value) -> Vec<String> {
        let answer = self.call(method, params).await;
        let error = &answer["error"];
        assert_eq!(error["code"], json!(1), "{method}: {answer}");
        let mut description = vec![error["message"].as_str().unwrap().to_string()];
        for item in error["data"].as_array().unwrap() {
            description.push(item.as_str().unwrap().to_string());
        }
        description
    }
}

fn ref_named(records: &Value, name: &str) -> String {
    records
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, record)| record["name_label"] == json!(name))
        .map(|(reference, _)| reference.clone())
        .unwrap_or_else(|| panic!("no record named {name}"))
}

async fn wait_finished(emulator: &Emulator, session: &str, task: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let record = emulator.ok("task.get_record", json!([session, task])).await;
        if record["status"] != json!("pending") || Instant::now() > deadline {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_rpc_login_records_async_migration_and_errors() {
    let emulator = Emulator::start().await;
    assert_eq!(
        emulator
            .error("session.login_with_password", json!(["root", "wrong"]))
            .await,
        vec!["SESSION_AUTHENTICATION_FAILED"]
    );
    let session = emulator
        .ok(
            "session.login_with_password",
            json!(["root", "secret", "2.21", "test"]),
        )
        .await;
    let session = session.as_str().unwrap().to_string();
    assert!(session.starts_with("OpaqueRef:"));
    assert_eq!(
        emulator
            .error("host.get_all", json!(["OpaqueRef:nope"]))
            .await,
        vec!["SESSION_INVALID", "OpaqueRef:nope"]
    );

    let hosts = emulator.ok("host.get_all_records", json!([session])).await;
    let (xs1, xs2) = (ref_named(&hosts, "xs1"), ref_named(&hosts, "xs2"));
    assert_eq!(
        hosts[&xs1]["software_version"]["product_version"],
        json!("8.2")
    );
    assert!(hosts[&xs1]["other_config"]["boot_time"].is_string());
    let vms = emulator.ok("VM.get_all_records", json!([session])).await;
    let (web, stuck) = (ref_named(&vms, "web"), ref_named(&vms, "stuck"));
    assert_eq!(vms[&web]["resident_on"], json!(xs1));
    assert_eq!(
        vms[&web]["memory_static_max"],
        json!(4096_u64 * 1024 * 1024)
    );

    let task = emulator
        .ok("Async.VM.pool_migrate", json!([session, web, xs2, {}]))
        .await;
    let record = wait_finished(&emulator, &session, task.as_str().unwrap()).await;
    assert_eq!(record["status"], json!("success"), "{record}");
    assert_eq!(
        emulator
            .ok("VM.get_resident_on", json!([session, web]))
            .await,
        json!(xs2)
    );

    // A hung migration stays pending until cancelled; its task then says TASK_CANCELLED.
    let task = emulator
        .ok("Async.VM.pool_migrate", json!([session, stuck, xs2, {}]))
        .await;
    let task = task.as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        emulator.ok("task.get_status", json!([session, task])).await,
        json!("pending")
    );
    emulator.ok("task.cancel", json!([session, task])).await;
    let record = emulator.ok("task.get_record", json!([session, task])).await;
    assert_eq!(record["status"], json!("cancelled"));
    assert_eq!(record["error_info"], json!(["TASK_CANCELLED", task]));

    emulator.ok("host.disable", json!([session, xs1])).await;
    assert_eq!(
        emulator.ok("host.get_enabled", json!([session, xs1])).await,
        json!(false)
    );
    assert_eq!(
        emulator
            .error("VM.pool_migrate", json!([session, web, xs1, {}]))
            .await,
        vec!["HOST_DISABLED".to_string(), xs1.clone()]
    );
    assert_eq!(
        emulator.error("host.reboot", json!([session, xs2])).await,
        vec!["HOST_NOT_DISABLED"]
    );
    assert_eq!(
        emulator.error("VM.clean_shutdown", json!([session])).await,
        vec![
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            "VM.clean_shutdown",
            "2",
            "1"
        ]
    );
    assert_eq!(
        emulator.error("VM.no_such_call", json!([session])).await,
        vec!["MESSAGE_METHOD_UNKNOWN", "VM.no_such_call"]
    );

    let too_big = "x".repeat(xapi::MAX_BODY_BYTES + 1);
    let status = emulator
        .client
        .post(format!("{}/jsonrpc", emulator.url))
        .body(too_big)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::PAYLOAD_TOO_LARGE);

    let counts: Value = emulator
        .client
        .get(format!("{}/emulator/calls", emulator.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["Async.VM.pool_migrate"], json!(2));
}
