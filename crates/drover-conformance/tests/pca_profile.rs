//! The conformance suite against the Oracle Private Cloud Appliance profile of the command driver
//! (`examples/pca/`: Oracle VM Manager CLI for migrations and maintenance mode, `pca-admin update
//! compute-node` for the upgrade), opened through the driver registry from the example's own
//! inventory, its two CLIs and the compute nodes' shell played by the scripted stand-in
//! `tests/pca/standin.py` (their documented outputs: `Status: Success`, the destructive-operation
//! prompt, the node left in maintenance mode after the update's restart). Also: the plan takes one
//! node per wave whatever `max_unavailable` says, a second `pca-admin update compute-node` while
//! one runs is refused by the stand-in as by the appliance, and foreign packages stop the upgrade.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drover_conformance::{
    CallTimeouts, Check, CompatibilityFixture, Fixture, MigrationFixture, OptOut, PowerFixture,
    UpgradeFixture,
};
use drover_core::MaxUnavailable;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The stand-in platform in `directory` (three nodes at 3.4.4; `ovcacn09r1` with a foreign
/// package when `foreign` is set) and the example inventory pointing at its templates.
fn pca_platform(directory: &Path, foreign: bool) -> String {
    let state = directory.join("pca.json");
    let standin = repository().join("tests/pca/standin.py");
    let last = if foreign {
        "ovcacn09r1:3.4.4:nagios-plugins"
    } else {
        "ovcacn09r1"
    };
    let status = std::process::Command::new("python3")
        .arg(&standin)
        .args([
            "init",
            state.to_str().unwrap(),
            "3.4.6",
            "ovcacn07r1",
            "ovcacn08r1",
            last,
        ])
        .args([
            "--",
            "app-01:ovcacn07r1",
            "app-02:ovcacn08r1",
            "scratch-01:ovcacn09r1",
        ])
        .status()
        .expect("python3 runs");
    assert!(status.success(), "standin.py init: {status}");
    // The templates read these (examples/pca/templates/lib.sh); the children inherit them.
    let python = format!("python3 {}", standin.display());
    std::env::set_var("PCA_STANDIN_STATE", &state);
    std::env::set_var("OVMCLI", format!("{python} ovmcli"));
    std::env::set_var("PCA_ADMIN", format!("{python} pca-admin"));
    std::env::set_var(
        "NODE_SHELL",
        format!("{} ", repository().join("tests/pca/node-shell").display()),
    );
    std::fs::read_to_string(repository().join("examples/pca/inventory.yaml"))
        .expect("the example inventory is readable")
        .replace(
            "examples/pca/templates",
            &repository()
                .join("examples/pca/templates")
                .display()
                .to_string(),
        )
}

fn fixture() -> Fixture {
    Fixture {
        platform: "the PCA profile (command driver) on the Oracle VM Manager CLI and pca-admin stand-in".into(),
        healthy_hosts: vec!["ovcacn07r1".into(), "ovcacn08r1".into(), "ovcacn09r1".into()],
        cordon_host: "ovcacn08r1".into(),
        migration: MigrationFixture {
            vm: "app-01".into(),
            from: "ovcacn07r1".into(),
            to: "ovcacn08r1".into(),
        },
        power: PowerFixture {
            vm: "app-02".into(),
            host: "ovcacn08r1".into(),
            graceful_timeout: Duration::from_secs(30),
        },
        maintenance_host: "ovcacn07r1".into(),
        compatibility: CompatibilityFixture {
            cluster: "pca-rack1".into(),
            level: "3.4".into(),
        },
        upgrade: UpgradeFixture {
            host: "ovcacn07r1".into(),
            target: "3.4.6".parse().unwrap(),
        },
        timeouts: CallTimeouts {
            call: Duration::from_secs(30),
            slow_call: Duration::from_secs(60),
            // A repeat runs a template, which runs the stand-in once or twice (Python's start).
            repeated_call: Duration::from_secs(3),
        },
        opt_outs: vec![
            OptOut::new(
                Check::HostFactsOfUnknownHostIsNotFound,
                "the command driver reports every failing command as Failed: an exit code does not say \"no such host\"",
            ),
            OptOut::new(
                Check::MigrateOfUnknownVmIsNotFound,
                "the command driver reports every failing command as Failed: an exit code does not say \"no such VM\"",
            ),
            OptOut::new(
                Check::CompatibilityLevelIsIdempotent,
                "the PCA procedure has no cluster compatibility level step",
            ),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pca_profile_passes_every_check_it_can_and_keeps_one_node_at_a_time() {
    let directory = tempfile::tempdir().unwrap();
    let inventory = pca_platform(directory.path(), false);

    // The plan: one node per wave, whatever max_unavailable says.
    let mut file = drover_schema::parse_inventory_file(&inventory, "inventory.yaml").unwrap();
    assert!(file.cluster.policy.one_host_at_a_time);
    file.cluster.policy.max_unavailable = MaxUnavailable::Count(3);
    let plan = drover_core::planner::plan(&file.cluster);
    assert!(plan.is_feasible(), "{:?}", plan.prechecks);
    assert_eq!(plan.waves.len(), 3);
    assert!(plan.waves.iter().all(|wave| wave.hosts.len() == 1));

    let driver = common::open_through_registry(&inventory, directory.path());
    let started = Instant::now();
    let report = drover_conformance::run_all(driver.as_ref(), &fixture()).await;
    println!(
        "pca profile conformance: {} in {} ms",
        report.summary(),
        started.elapsed().as_millis()
    );
    assert_eq!(report.driver_kind, "command");
    assert_eq!(
        report.passed().len(),
        Check::ALL.len() - 3,
        "{}",
        report.failures()
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(directory.path().join("pca.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["updates"],
        serde_json::json!(["ovcacn07r1"]),
        "one update, not two"
    );
    assert_eq!(
        state["servers"]["ovcacn07r1"]["maintenance"], false,
        "maintenance cleared"
    );

    // The appliance refuses a second update while one runs; the stand-in keeps that.
    let standin = repository().join("tests/pca/standin.py");
    let update = |node: &str| {
        let mut child = std::process::Command::new("python3")
            .arg(&standin)
            .args(["pca-admin", "update", "compute-node", node])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"y\n").unwrap();
        child
    };
    let ovm = |command: &[&str]| {
        let output = std::process::Command::new("python3")
            .arg(&standin)
            .arg("ovmcli")
            .args(command)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    assert!(ovm(&["stop", "Vm", "name=scratch-01"]).contains("Status: Success"));
    assert!(
        ovm(&["edit", "Server", "name=ovcacn09r1", "inMaintenanceMode=Yes"])
            .contains("Status: Success")
    );
    let first = update("ovcacn09r1");
    std::thread::sleep(Duration::from_millis(400));
    let second = update("ovcacn09r1").wait_with_output().unwrap();
    let first = first.wait_with_output().unwrap();
    let texts = [
        String::from_utf8_lossy(&first.stdout).to_string(),
        String::from_utf8_lossy(&second.stdout).to_string(),
    ];
    assert!(
        texts.iter().any(|text| text.contains("Status: Failure")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|text| text.contains("Status: Success")),
        "{texts:?}"
    );

    // In the same test: the templates read process-wide environment variables.
    foreign_packages_stop_the_upgrade_before_pca_admin_runs().await;
}

async fn foreign_packages_stop_the_upgrade_before_pca_admin_runs() {
    let directory = tempfile::tempdir().unwrap();
    let inventory = pca_platform(directory.path(), true);
    let driver = common::open_through_registry(&inventory, directory.path());
    driver
        .migrate("scratch-01", "ovcacn09r1", "ovcacn08r1")
        .await
        .unwrap();
    driver.set_maintenance("ovcacn09r1", true).await.unwrap();
    let refused = driver
        .upgrade("ovcacn09r1", &"3.4.6".parse().unwrap())
        .await
        .expect_err("a foreign package stops the upgrade");
    assert!(refused.to_string().contains("nagios-plugins"), "{refused}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(directory.path().join("pca.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["updates"],
        serde_json::json!([]),
        "pca-admin never ran"
    );
}
