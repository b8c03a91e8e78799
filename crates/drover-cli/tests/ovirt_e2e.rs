//! `drover discover` and `drover run -i examples/ovirt-cluster.yaml` end to end against
//! drover-emulator's oVirt engine (served by this test process on a free loopback port, the
//! simulator's world at 600× the wall clock): the real `drover` binary opens the `kind: ovirt`
//! driver through the registry, discovers the cluster over the REST API v4 (JSON), writes it as
//! an inventory, and rolls it: Drover's own migrations, deactivate, the engine's upgrade,
//! activate, and the compatibility level raised at the end. The example's driver section is
//! pointed at the emulator and its password comes from the environment.

mod cli_common;

use std::time::Instant;

use cli_common::{stderr, Workspace};

#[test]
fn drover_discovers_and_rolls_the_example_ovirt_cluster_on_the_emulator() {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ovirt-cluster.yaml"),
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
    let (url, engine) = runtime.block_on(async {
        let opened = drover_emulator::world::open(&world, Some(600.0)).unwrap();
        let engine = drover_emulator::ovirt::Engine::new(
            opened.driver,
            opened.cluster,
            drover_emulator::ovirt::Credentials {
                username: "admin@internal".into(),
                password: "e2e-password".into(),
            },
            std::time::Duration::from_secs(600),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(drover_emulator::ovirt::serve(listener, engine.clone()));
        (url, engine)
    });

    let inventory = workspace.path("ovirt-cluster.yaml");
    std::fs::write(
        &inventory,
        format!(
            "{hosts_and_vms}\ndriver:\n  kind: ovirt\n  url: \"{url}\"\n  username: admin@internal\n  password_env: DROVER_E2E_OVIRT_PASSWORD\n  poll_ms: 20\n"
        ),
    )
    .unwrap();

    let discovered = workspace
        .command(&["discover", "-i", inventory.to_str().unwrap()])
        .env("DROVER_E2E_OVIRT_PASSWORD", "e2e-password")
        .output()
        .unwrap();
    assert_eq!(discovered.status.code(), Some(0), "{}", stderr(&discovered));
    let text = String::from_utf8_lossy(&discovered.stdout);
    for expected in [
        "kvm01",
        "kvm03",
        "web-01",
        "db-01",
        "anti_affinity: web",
        "restart_policy: always",
    ] {
        assert!(
            text.contains(expected),
            "{expected} in the discovered inventory:\n{text}"
        );
    }

    let started = Instant::now();
    let output = workspace
        .command(&["run", "-i", inventory.to_str().unwrap(), "-o", "json"])
        .env("DROVER_E2E_OVIRT_PASSWORD", "e2e-password")
        .output()
        .unwrap();
    let wall_secs = started.elapsed().as_secs_f64();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", stderr(&output)));
    assert_eq!(report["phase"], "completed", "{report}");

    let calls = engine.calls();
    let count = |key: &str| calls.get(key).copied().unwrap_or(0);
    let migrations = count("POST /ovirt-engine/api/vms/{id}/migrate");
    assert!(migrations >= 1, "{calls:?}");
    assert_eq!(
        count("POST /ovirt-engine/api/hosts/{id}/upgrade"),
        3,
        "{calls:?}"
    );
    assert_eq!(
        count("POST /ovirt-engine/api/hosts/{id}/deactivate"),
        3,
        "{calls:?}"
    );
    assert_eq!(count("PUT /ovirt-engine/api/clusters/{id}"), 1, "{calls:?}");
    let total: u64 = calls.values().sum();
    eprintln!(
        "ovirt e2e: 3 hosts / 4 VMs rolled in {wall_secs:.1} s; report migrations {}; {total} engine requests, {migrations} POST migrate ({:.1} requests per migration, discovery and polling included): {calls:?}",
        report["migrations"],
        total as f64 / migrations as f64
    );
}

/// `drover check -i CLUSTER` on a `kind: ovirt` inventory without a check command asks the engine
/// for each host's `update_available`: a host below the target has updates, one at it none, and a
/// host the engine reports non_responsive is an error for that host (its `updates_available` is
/// unknown, never false, and `drover check` exits 7 as for a failed check command).
#[test]
fn drover_check_asks_the_engine_for_its_hosts_update_available() {
    let workspace = Workspace::new();
    let world = workspace.path("world.yaml");
    let hosts = "cluster: {name: checked, target_version: \"4.6\"}\nhosts:\n  - {name: h1, version: \"4.5\", memory_mib: 16384, cpus: 8}\n  - {name: h2, version: \"4.6\", memory_mib: 16384, cpus: 8}\n  - {name: h3, version: \"4.6\", memory_mib: 16384, cpus: 8, state: down}\n";
    std::fs::write(
        &world,
        format!("{hosts}driver: {{kind: simulator, seed: 7}}\n"),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = runtime.block_on(async {
        let opened = drover_emulator::world::open(&world, Some(100.0)).unwrap();
        let engine = drover_emulator::ovirt::Engine::new(
            opened.driver,
            opened.cluster,
            drover_emulator::ovirt::Credentials {
                username: "admin@internal".into(),
                password: "check-password".into(),
            },
            std::time::Duration::from_secs(600),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(drover_emulator::ovirt::serve(listener, engine));
        url
    });
    let inventory = workspace.path("cluster.yaml");
    std::fs::write(
        &inventory,
        format!("{hosts}driver: {{kind: ovirt, url: \"{url}\", username: admin@internal, password_env: DROVER_E2E_OVIRT_PASSWORD}}\n"),
    )
    .unwrap();
    let output = workspace
        .command(&["check", "-i", inventory.to_str().unwrap(), "-o", "json"])
        .env("DROVER_E2E_OVIRT_PASSWORD", "check-password")
        .output()
        .unwrap();
    // Exit 7: the check failed on some host (README's exit codes), here h3.
    assert_eq!(output.status.code(), Some(7), "{}", stderr(&output));
    assert!(stderr(&output).contains("h3"), "{}", stderr(&output));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", stderr(&output)));
    let host = |name: &str| {
        document["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|host| host["host"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {document}"))
    };
    assert_eq!(host("h1")["updates_available"], true, "{document}");
    assert_eq!(host("h2")["updates_available"], false, "{document}");
    let h3 = host("h3");
    assert!(h3["updates_available"].is_null(), "{h3}");
    assert!(
        h3["error"]
            .as_str()
            .is_some_and(|error| error.contains("non_responsive")),
        "{h3}"
    );
}

/// The engine's own pending update (the seed's first requirement), which the REST API cannot
/// tell: `drover check` runs the section's `engine_update_check` (here a fake that exits as
/// `engine-upgrade-check` does: 0 pending, 1 none) and reports the engine in a row of its own;
/// `drover plan` shows it as the warning precheck `engine-update` (the plan stays feasible).
/// Without the command the engine is "not checked", never up to date.
#[test]
fn the_engines_own_update_is_checked_by_its_command_and_warned_of_before_a_run() {
    let workspace = Workspace::new();
    let world = workspace.path("world.yaml");
    let hosts = "cluster: {name: engine, target_version: \"4.6\"}\nhosts:\n  - {name: h1, version: \"4.5\", memory_mib: 16384, cpus: 8}\n  - {name: h2, version: \"4.5\", memory_mib: 16384, cpus: 8}\n";
    std::fs::write(
        &world,
        format!("{hosts}driver: {{kind: simulator, seed: 7}}\n"),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = runtime.block_on(async {
        let opened = drover_emulator::world::open(&world, Some(100.0)).unwrap();
        let engine = drover_emulator::ovirt::Engine::new(
            opened.driver,
            opened.cluster,
            drover_emulator::ovirt::Credentials {
                username: "admin@internal".into(),
                password: "engine-password".into(),
            },
            std::time::Duration::from_secs(600),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(drover_emulator::ovirt::serve(listener, engine));
        url
    });
    let inventory_with = |check: &str| {
        let inventory = workspace.path("cluster.yaml");
        std::fs::write(
            &inventory,
            format!("{hosts}driver: {{kind: ovirt, url: \"{url}\", username: admin@internal, password_env: DROVER_E2E_OVIRT_PASSWORD{check}}}\n"),
        )
        .unwrap();
        inventory.to_str().unwrap().to_string()
    };
    let run = |arguments: &[&str]| {
        workspace
            .command(arguments)
            .env("DROVER_E2E_OVIRT_PASSWORD", "engine-password")
            .output()
            .unwrap()
    };
    let json = |output: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{error}: {}", stderr(output)))
    };

    // A fake engine-upgrade-check that finds an update for cluster `engine`.
    let pending = inventory_with(
        ", engine_update_check: [sh, -c, 'test \"$1\" = engine && exit 0; exit 2', check, \"{cluster}\"]",
    );
    let output = run(&["check", "-i", &pending, "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document = json(&output);
    assert_eq!(document["engine"]["updates_available"], true, "{document}");
    assert_eq!(document["engine"]["status"], "pending", "{document}");
    let table = run(&["check", "-i", &pending]);
    let printed = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(
        printed.contains("the engine has an update pending"),
        "{printed}"
    );
    let plan = run(&["plan", "-i", &pending, "-o", "json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let plan = json(&plan);
    assert_eq!(plan["feasible"], true, "{plan}");
    let engine_update = plan["prechecks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["id"] == "engine-update")
        .cloned()
        .unwrap_or_else(|| panic!("no engine-update precheck in {plan}"));
    assert_eq!(engine_update["status"], "warn", "{engine_update}");

    let up_to_date = inventory_with(", engine_update_check: [sh, -c, 'exit 1']");
    let document = json(&run(&["check", "-i", &up_to_date, "-o", "json"]));
    assert_eq!(document["engine"]["updates_available"], false, "{document}");
    assert_eq!(document["engine"]["status"], "up-to-date", "{document}");

    let unchecked = inventory_with("");
    let document = json(&run(&["check", "-i", &unchecked, "-o", "json"]));
    assert!(
        document["engine"]["updates_available"].is_null(),
        "{document}"
    );
    assert_eq!(document["engine"]["status"], "not-checked", "{document}");
    let plan = json(&run(&["plan", "-i", &unchecked, "-o", "json"]));
    assert!(
        !plan["prechecks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|check| check["id"] == "engine-update"),
        "no command, no precheck: {plan}"
    );

    // The check reaches the engine machine only where an operator looks at a plan: `drover
    // plan` asks once, `drover simulate` (which plans the same inventory) never.
    let asked = workspace.path("asked");
    let counting = inventory_with(&format!(
        ", engine_update_check: [sh, -c, 'echo asked >> \"$1\"; exit 1', check, \"{}\"]",
        asked.display()
    ));
    let simulated = run(&["simulate", "-i", &counting, "-o", "json"]);
    assert_eq!(simulated.status.code(), Some(0), "{}", stderr(&simulated));
    assert!(
        !asked.exists(),
        "drover simulate ran the engine update check"
    );
    let plan = json(&run(&["plan", "-i", &counting, "-o", "json"]));
    assert!(
        plan["prechecks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|check| check["id"] == "engine-update" && check["status"] == "pass"),
        "{plan}"
    );
    assert_eq!(std::fs::read_to_string(&asked).unwrap(), "asked\n");
}
