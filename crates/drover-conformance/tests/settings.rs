//! The run-level scenario "prechecks auto-resolved and restored" against the simulator, opened
//! through the driver registry from an inventory whose `cluster.settings` turn HA, WLB and a
//! VM's CD on, in virtual time (a paused runtime).

mod common;

use std::time::Duration;

use drover_conformance::{run_settings_scenario, SettingsScenario};
use drover_core::{PlatformSetting, SettingKind};

const INVENTORY: &str = r#"
cluster:
  name: conformance
  target_version: "2.0"
  settings:
    - {setting: ha-enabled}
    - {setting: wlb-enabled}
    - {setting: vm-media-inserted, vm: mobile}
hosts:
  - {name: h1, role: master, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h3, version: "1.0", memory_mib: 16384, cpus: 8}
vms:
  - {name: mobile, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: steady, host: h3, memory_mib: 2048, vcpus: 2}
driver: {kind: simulator, seed: 7, time_scale: 0}
"#;

#[tokio::test(start_paused = true)]
async fn the_simulator_resolves_the_settings_first_and_puts_them_back() {
    let directory = tempfile::tempdir().unwrap();
    let driver = common::open_through_registry(INVENTORY, directory.path());
    let cluster = drover_schema::parse_inventory(INVENTORY, "inventory.yaml").unwrap();
    let scenario = SettingsScenario {
        cluster,
        call_timeout: Duration::from_secs(4 * 3600),
        run_timeout: Duration::from_secs(24 * 3600),
    };
    let report = run_settings_scenario(driver.as_ref(), scenario)
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(
        report.settings_after,
        vec![
            PlatformSetting::pool(SettingKind::HaEnabled),
            PlatformSetting::pool(SettingKind::WlbEnabled),
        ]
    );
    let resolves = report
        .log
        .iter()
        .filter(|e| e.step == "resolve-setting" && e.outcome.is_none())
        .count();
    assert_eq!(resolves, 3);
}
