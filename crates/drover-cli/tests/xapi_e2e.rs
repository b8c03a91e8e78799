//! `drover run -i examples/xapi-pool.yaml` end to end against drover-emulator's XAPI front-end
//! (served by this test process on a free loopback port, the simulator's world at 600× the wall
//! clock): the real `drover` binary opens the `kind: xapi` driver through the registry, discovers
//! the pool over JSON-RPC and rolls it; the example's driver section is pointed at the emulator,
//! its password comes from the environment and its upgrade command posts to the emulator's
//! installer stand-in.

mod cli_common;

use std::time::Instant;

use cli_common::{stderr, Workspace};

const UPGRADE_SCRIPT: &str = "import json, sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=json.dumps(dict(host=sys.argv[2], target=sys.argv[3])).encode(), headers=dict([('Content-Type', 'application/json')])))";

#[test]
fn drover_run_rolls_the_example_xapi_pool_on_the_emulator() {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/xapi-pool.yaml"),
    )
    .unwrap();
    let hosts_and_vms = example.split("\ndriver:").next().unwrap();
    let workspace = Workspace::new();
    let world = workspace.path("world.yaml");
    std::fs::write(
        &world,
        format!("{hosts_and_vms}\ndriver: {{kind: simulator, seed: 7}}\n"),
    )
    .unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, pool) = runtime.block_on(async {
        let opened = drover_emulator::world::open(&world, Some(600.0)).unwrap();
        let pool = drover_emulator::xapi::XapiPool::new(
            opened.driver,
            opened.cluster,
            drover_emulator::xapi::Credentials {
                username: "root".into(),
                password: "e2e-password".into(),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(drover_emulator::xapi::serve(listener, pool.clone()));
        (url, pool)
    });

    let inventory = workspace.path("xapi-pool.yaml");
    std::fs::write(
        &inventory,
        format!(
            "{hosts_and_vms}\ndriver:\n  kind: xapi\n  url: \"{url}\"\n  username: root\n  password_env: DROVER_E2E_XAPI_PASSWORD\n  task_poll_ms: 20\n  commands:\n    upgrade: [python3, -c, \"{UPGRADE_SCRIPT}\", \"{url}/emulator/upgrade\", \"{{host}}\", \"{{target}}\"]\n"
        ),
    )
    .unwrap();

    let started = Instant::now();
    let output = workspace
        .command(&["run", "-i", inventory.to_str().unwrap(), "-o", "json"])
        .env("DROVER_E2E_XAPI_PASSWORD", "e2e-password")
        .output()
        .unwrap();
    let wall_secs = started.elapsed().as_secs_f64();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", stderr(&output)));
    assert_eq!(report["phase"], "completed", "{report}");

    let calls = pool.calls_by_method();
    let migrations = calls.get("Async.VM.pool_migrate").copied().unwrap_or(0);
    let total: u64 = calls.values().sum();
    assert!(migrations >= 1, "{calls:?}");
    eprintln!(
        "xapi e2e: 3 hosts / 4 VMs rolled in {wall_secs:.1} s; report migrations {}; {total} XAPI calls, {migrations} Async.VM.pool_migrate ({:.1} calls per migration, discovery and polling included): {calls:?}",
        report["migrations"],
        total as f64 / migrations as f64
    );
}

/// `drover check -i POOL` on a `kind: xapi` inventory without a check command asks the pool
/// itself: a host at the target is "unknown" until the pool has synced updates
/// (`latest_synced_updates_applied` is `unknown`), then has none; a host below it has updates.
#[test]
fn drover_check_asks_the_pool_for_its_hosts_updates() {
    let workspace = Workspace::new();
    let world = workspace.path("world.yaml");
    let hosts = "cluster: {name: checked, target_version: \"8.4\"}\nhosts:\n  - {name: xs01, role: master, version: \"8.2\", memory_mib: 16384, cpus: 8}\n  - {name: xs02, version: \"8.4\", memory_mib: 16384, cpus: 8}\n";
    std::fs::write(
        &world,
        format!("{hosts}driver: {{kind: simulator, seed: 7}}\n"),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = runtime.block_on(async {
        let opened = drover_emulator::world::open(&world, Some(100.0)).unwrap();
        let pool = drover_emulator::xapi::XapiPool::new(
            opened.driver,
            opened.cluster,
            drover_emulator::xapi::Credentials {
                username: "root".into(),
                password: "check-password".into(),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(drover_emulator::xapi::serve(listener, pool));
        url
    });
    let inventory = workspace.path("pool.yaml");
    std::fs::write(
        &inventory,
        format!("{hosts}driver: {{kind: xapi, url: \"{url}\", username: root, password_env: DROVER_E2E_XAPI_PASSWORD}}\n"),
    )
    .unwrap();
    let check = || {
        let output = workspace
            .command(&["check", "-i", inventory.to_str().unwrap(), "-o", "json"])
            .env("DROVER_E2E_XAPI_PASSWORD", "check-password")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let document: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{error}: {}", stderr(&output)));
        let updates: Vec<(String, serde_json::Value)> = document["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|host| {
                (
                    host["host"].as_str().unwrap().to_string(),
                    host["updates_available"].clone(),
                )
            })
            .collect();
        updates
    };
    let before = check();
    assert_eq!(
        before,
        [
            ("xs01".to_string(), serde_json::json!(true)),
            ("xs02".to_string(), serde_json::Value::Null)
        ],
        "before the pool synced updates"
    );
    // The pool syncs its repository (as XenCenter or `xe pool-sync-updates` would).
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let call = |method: &str, params: serde_json::Value| {
            client
                .post(format!("{url}/jsonrpc"))
                .json(&serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}))
                .send()
        };
        let answer: serde_json::Value = call(
            "session.login_with_password",
            serde_json::json!(["root", "check-password", "2.21", "test"]),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let session = answer["result"].as_str().unwrap().to_string();
        let pools: serde_json::Value = call("pool.get_all", serde_json::json!([session]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pool = pools["result"][0].as_str().unwrap();
        let synced: serde_json::Value = call(
            "pool.sync_updates",
            serde_json::json!([session, pool, false, "", ""]),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert!(synced["result"].is_string(), "{synced}");
    });
    let after = check();
    assert_eq!(
        after,
        [
            ("xs01".to_string(), serde_json::json!(true)),
            ("xs02".to_string(), serde_json::json!(false))
        ],
        "after the sync"
    );
}

/// `drover run` on a pool with a VM on a local disk that asks `unmovable: suspend`: it is
/// suspended through `Async.VM.suspend` (not shut down), its host upgraded, and resumed on that
/// host through `Async.VM.resume_on`, all against the emulator's XAPI front-end.
#[test]
fn drover_run_suspends_and_resumes_a_local_disk_vm_through_xapi() {
    let hosts_and_vms = r#"cluster:
  name: suspend-pool
  target_version: "8.4"
hosts:
  - {name: xs01, role: master, version: "8.2", memory_mib: 65536, cpus: 16}
  - {name: xs02, version: "8.2", memory_mib: 65536, cpus: 16}
vms:
  - {name: web-01, host: xs01, memory_mib: 8192, vcpus: 4}
  - {name: cache-01, host: xs02, memory_mib: 4096, vcpus: 2, local_storage: true, unmovable: suspend}
"#;
    let workspace = Workspace::new();
    let world = workspace.path("world.yaml");
    std::fs::write(
        &world,
        format!("{hosts_and_vms}driver: {{kind: simulator, seed: 7}}\n"),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, pool) = runtime.block_on(async {
        let opened = drover_emulator::world::open(&world, Some(600.0)).unwrap();
        let pool = drover_emulator::xapi::XapiPool::new(
            opened.driver,
            opened.cluster,
            drover_emulator::xapi::Credentials {
                username: "root".into(),
                password: "e2e-password".into(),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(drover_emulator::xapi::serve(listener, pool.clone()));
        (url, pool)
    });
    let inventory = workspace.path("suspend-pool.yaml");
    std::fs::write(
        &inventory,
        format!(
            "{hosts_and_vms}driver:\n  kind: xapi\n  url: \"{url}\"\n  username: root\n  password_env: DROVER_E2E_XAPI_PASSWORD\n  task_poll_ms: 20\n  commands:\n    upgrade: [python3, -c, \"{UPGRADE_SCRIPT}\", \"{url}/emulator/upgrade\", \"{{host}}\", \"{{target}}\"]\n"
        ),
    )
    .unwrap();
    let output = workspace
        .command(&["run", "-i", inventory.to_str().unwrap(), "-o", "json"])
        .env("DROVER_E2E_XAPI_PASSWORD", "e2e-password")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", stderr(&output)));
    assert_eq!(report["phase"], "completed", "{report}");
    assert_eq!(report["suspends"], 1, "{report}");
    assert_eq!(report["shutdowns"], 0, "{report}");
    let calls = pool.calls_by_method();
    assert_eq!(calls.get("Async.VM.suspend").copied(), Some(1), "{calls:?}");
    assert_eq!(
        calls.get("Async.VM.resume_on").copied(),
        Some(1),
        "{calls:?}"
    );
    assert!(!calls.contains_key("Async.VM.clean_shutdown"), "{calls:?}");
    assert!(!calls.contains_key("Async.VM.start_on"), "{calls:?}");
    let downtime = report["downtime"].as_array().unwrap();
    assert!(
        downtime
            .iter()
            .any(|d| d["vm"] == "cache-01" && d["action"] == "suspend"),
        "{report}"
    );
}
