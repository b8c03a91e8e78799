//! Opening a driver the way `drover run` does (the inventory's `driver:` section prepared for a
//! new run by the registry, then opened from what the run would record), and the simulated
//! platform the suite's own tests share.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use drover_driver::Driver;
use drover_drivers::{OpenContext, PrepareContext};

/// The driver of `inventory_text`, keeping any files it needs in `directory`.
pub fn open_through_registry(inventory_text: &str, directory: &Path) -> Arc<dyn Driver> {
    let inventory_path = directory.join("inventory.yaml");
    std::fs::write(&inventory_path, inventory_text).expect("the temporary directory is writable");
    let file = drover_schema::parse_inventory_file(inventory_text, "inventory.yaml")
        .expect("the test inventory is valid");
    let prefix = directory.join("drover.db");
    let context = PrepareContext {
        inventory_path: &inventory_path,
        files_prefix: &prefix,
        cluster: &file.cluster.name,
        now_ms: 1_000,
        keep_platform_per_cluster: false,
    };
    let run_driver = drover_drivers::prepare(&file.driver, &context, BTreeMap::new())
        .expect("the registry prepares the driver");
    let open = OpenContext {
        cluster: &file.cluster,
        clock: run_driver.new_clock(),
        read_only: false,
    };
    drover_drivers::open(&run_driver, &open).expect("the registry opens the driver")
}

/// A small simulated platform and its fixture.
pub mod simulated {
    use std::time::Duration;

    use drover_conformance::{
        CallTimeouts, CompatibilityFixture, Fixture, MigrationFixture, PowerFixture, UpgradeFixture,
    };

    /// h1 runs only `mobile` (migrated to h2, which empties h1 for maintenance and the upgrade);
    /// h3 runs `steady` (stopped and started).
    pub const INVENTORY: &str = r#"
cluster: {name: conformance, target_version: "2.0"}
hosts:
  - {name: h1, role: master, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h3, version: "1.0", memory_mib: 16384, cpus: 8}
vms:
  - {name: mobile, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: steady, host: h3, memory_mib: 2048, vcpus: 2}
driver: {kind: simulator, seed: 7, time_scale: 0}
"#;

    pub fn fixture() -> Fixture {
        Fixture {
            platform: "the simulator through the registry".into(),
            healthy_hosts: vec!["h1".into(), "h2".into(), "h3".into()],
            cordon_host: "h2".into(),
            migration: MigrationFixture {
                vm: "mobile".into(),
                from: "h1".into(),
                to: "h2".into(),
            },
            power: PowerFixture {
                vm: "steady".into(),
                host: "h3".into(),
                graceful_timeout: Duration::from_secs(120),
            },
            maintenance_host: "h1".into(),
            compatibility: CompatibilityFixture {
                cluster: "conformance".into(),
                level: "2.0".into(),
            },
            upgrade: UpgradeFixture {
                host: "h1".into(),
                target: "2.0".parse().unwrap(),
            },
            // Virtual time: the modeled upgrade and reboot take 35 minutes, a repeat none.
            timeouts: CallTimeouts {
                call: Duration::from_secs(10 * 60),
                slow_call: Duration::from_secs(2 * 60 * 60),
                repeated_call: Duration::from_millis(1),
            },
            opt_outs: Vec::new(),
        }
    }
}
