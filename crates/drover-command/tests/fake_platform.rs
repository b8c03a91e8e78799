//! The fake platform of `examples/fake-platform/`: small shell scripts that keep each host's
//! version and boot id in files. Its inventory is read like any other, the driver is built from
//! it, and the platform is upgraded step by step through the driver, then end to end by the
//! engine. This is also the worked example of the command driver.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drover_command::{run_argv, CommandDriver, CommandDriverConfig, RunLimits};
use drover_core::execution::RunPhase;
use drover_core::HostState;
use drover_engine::{Clock, DriveEnd, Driver, Engine, NewRunSpec};
use drover_schema::inventory::DriverSection;
use drover_store::Store;

const EXAMPLE_DIRECTORY: &str = "crates/drover-command/examples/fake-platform";
const EXAMPLE_STATE: &str = "/tmp/drover-fake-platform";

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fake-platform")
}

/// A fresh platform in `state` and the example inventory pointing at it.
async fn fake_platform(state: &Path) -> String {
    let init = scripts().join("init.sh");
    let argv = [
        "sh".to_string(),
        init.display().to_string(),
        state.display().to_string(),
    ];
    let output = run_argv(&argv, RunLimits::with_timeout(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(output.succeeded(), "{output:?}");
    std::fs::read_to_string(scripts().join("inventory.yaml"))
        .unwrap()
        .replace(EXAMPLE_DIRECTORY, &scripts().display().to_string())
        .replace(EXAMPLE_STATE, &state.display().to_string())
}

fn driver_for(inventory_text: &str) -> CommandDriver {
    let file = drover_schema::parse_inventory_file(inventory_text, "inventory.yaml").unwrap();
    let DriverSection::Command(section) = &file.driver else {
        panic!("the example inventory uses the command driver");
    };
    CommandDriver::new(CommandDriverConfig::from_inventory(&file.cluster, section)).unwrap()
}

fn read(state: &Path, path: &str) -> String {
    std::fs::read_to_string(state.join(path))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test]
async fn every_step_on_the_fake_platform() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path();
    let driver = driver_for(&fake_platform(state).await);
    let target = "8.2.1".parse().unwrap();

    let discovered = driver.discover().await.unwrap();
    assert_eq!((discovered.hosts.len(), discovered.vms.len()), (3, 3));
    let facts = driver.host_facts("xs02").await.unwrap();
    assert_eq!(
        (facts.version.as_str(), facts.boot_id.as_str()),
        ("8.0.0", "xs02-boot-1")
    );

    driver.set_allocation("xs02", false).await.unwrap();
    assert!(driver.host_facts("xs02").await.unwrap().cordoned);
    let refused = driver.set_maintenance("xs02", true).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .ends_with("last lines of stderr:\n  fake-platform: host xs02 still runs: web-02"),
        "{refused}"
    );
    driver.migrate("web-02", "xs02", "xs03").await.unwrap();
    driver.migrate("web-02", "xs02", "xs03").await.unwrap();
    assert_eq!(read(state, "vms/web-02/host"), "xs03");

    driver.set_maintenance("xs02", true).await.unwrap();
    driver.upgrade("xs02", &target).await.unwrap();
    let upgraded = driver.host_facts("xs02").await.unwrap();
    assert_eq!(upgraded.version, target);
    assert_eq!(
        upgraded.boot_id, "xs02-boot-1",
        "the upgrade did not reboot"
    );
    driver.upgrade("xs02", &target).await.unwrap();

    driver.reboot("xs02", "xs02-boot-1").await.unwrap();
    assert_eq!(read(state, "hosts/xs02/boot_id"), "xs02-boot-2");
    driver.reboot("xs02", "xs02-boot-1").await.unwrap();
    assert_eq!(
        read(state, "hosts/xs02/boots"),
        "2",
        "a repeated reboot did nothing"
    );

    driver.health_check("xs02").await.unwrap();
    driver.set_maintenance("xs02", false).await.unwrap();
    driver.set_allocation("xs02", true).await.unwrap();
    let back = driver.host_facts("xs02").await.unwrap();
    assert!(!back.in_maintenance && !back.cordoned);

    let observed = driver
        .shutdown_vm("db-01", "xs03", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(!observed.forced);
    assert_eq!(read(state, "vms/db-01/state"), "stopped");
    driver.start_vm("db-01", "xs02").await.unwrap();
    assert_eq!(read(state, "vms/db-01/host"), "xs02");

    let discovered = driver.discover().await.unwrap();
    let xs02 = discovered.hosts.iter().find(|h| h.name == "xs02").unwrap();
    assert_eq!(
        (xs02.version.as_str(), xs02.state),
        ("8.2.1", HostState::Up)
    );

    let refused = driver
        .set_compatibility_level("fake-pool", "8.2")
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("host xs01 runs 8.0.0"),
        "{refused}"
    );
    for host in ["xs01", "xs03"] {
        std::fs::write(state.join(format!("hosts/{host}/version")), "8.2.1\n").unwrap();
    }
    driver
        .set_compatibility_level("fake-pool", "8.2")
        .await
        .unwrap();
    driver
        .set_compatibility_level("fake-pool", "8.2")
        .await
        .unwrap();
    assert_eq!(read(state, "compatibility_level"), "8.2");
}

#[tokio::test]
async fn the_engine_upgrades_the_fake_platform() {
    let directory = tempfile::tempdir().unwrap();
    let inventory_text = fake_platform(directory.path()).await;
    upgrade_through_the_engine(directory.path(), &inventory_text).await;
}

/// Without a discover command, discovery is the inventory refreshed by host_facts, with VMs
/// where the driver moved them.
#[tokio::test]
async fn the_engine_upgrades_the_fake_platform_without_a_discover_command() {
    let directory = tempfile::tempdir().unwrap();
    let inventory_text: String = fake_platform(directory.path())
        .await
        .lines()
        .filter(|line| !line.trim_start().starts_with("discover:"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(!inventory_text.contains("discover.sh"));
    upgrade_through_the_engine(directory.path(), &inventory_text).await;
}

async fn upgrade_through_the_engine(state: &Path, inventory_text: &str) {
    let cluster = drover_schema::parse_inventory(inventory_text, "inventory.yaml").unwrap();
    let driver = Arc::new(driver_for(inventory_text));
    let spec = NewRunSpec {
        run_id: "fake-1".into(),
        inventory_text,
        inventory_sha256: String::new(),
        cluster: &cluster,
        options_json: "{}".into(),
    };
    let store = Store::open_in_memory().unwrap();
    let mut engine = Engine::create(store, driver, Clock::real(), spec)
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(120), engine.drive(&mut |_, _| {}))
        .await
        .expect("the run finishes")
        .unwrap();
    assert_eq!(end, DriveEnd::Finished(RunPhase::Completed));
    for host in ["xs01", "xs02", "xs03"] {
        assert_eq!(read(state, &format!("hosts/{host}/version")), "8.2.1");
        assert_eq!(read(state, &format!("hosts/{host}/boots")), "2", "{host}");
        assert_eq!(read(state, &format!("hosts/{host}/maintenance")), "false");
        assert_eq!(read(state, &format!("hosts/{host}/cordoned")), "false");
    }
    for vm in ["web-01", "web-02", "db-01"] {
        assert_eq!(read(state, &format!("vms/{vm}/state")), "running", "{vm}");
    }
    assert_eq!(read(state, "compatibility_level"), "8.2");
    let report = engine.execution().report();
    assert_eq!(report.compatibility_level_raised.as_deref(), Some("8.2"));
}
