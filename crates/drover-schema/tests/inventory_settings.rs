//! `cluster.settings`: the blocking platform settings an inventory lists (what `drover discover`
//! writes, and what the simulated platform starts with), and every refusal placed at its
//! file:line:col.

use drover_core::{PlatformSetting, SettingKind};
use drover_schema::inventory::{inventory_to_yaml, parse_inventory};

fn inventory(settings: &str) -> String {
    format!(
        r#"cluster:
  name: pool
  target_version: "8.4"
  settings:
{settings}
hosts:
  - {{name: xs01, role: master, version: "8.2", memory_mib: 16384, cpus: 8}}
vms:
  - {{name: web-01, host: xs01, memory_mib: 1024, vcpus: 1}}
"#
    )
}

fn refusal(settings: &str) -> String {
    parse_inventory(&inventory(settings), "pool.yaml")
        .expect_err("the inventory is refused")
        .to_string()
}

#[test]
fn settings_are_read_into_the_cluster_and_written_back() {
    let text = inventory(
        "    - {setting: ha-enabled}\n    - {setting: wlb-enabled}\n    - {setting: vm-media-inserted, vm: web-01}",
    );
    let cluster = parse_inventory(&text, "pool.yaml").unwrap();
    assert_eq!(
        cluster.settings,
        vec![
            PlatformSetting::pool(SettingKind::HaEnabled),
            PlatformSetting::pool(SettingKind::WlbEnabled),
            PlatformSetting::of_vm(SettingKind::VmMediaInserted, "web-01"),
        ]
    );
    let written = inventory_to_yaml(&cluster);
    assert_eq!(parse_inventory(&written, "written.yaml").unwrap(), cluster);
}

#[test]
fn an_inventory_without_settings_has_none() {
    let text = inventory("    []");
    assert!(parse_inventory(&text, "pool.yaml")
        .unwrap()
        .settings
        .is_empty());
}

#[test]
fn an_unknown_setting_is_refused_where_it_is_written() {
    assert_eq!(
        refusal("    - {setting: drs-enabled}"),
        "pool.yaml:5:17: cluster.settings[0].setting: unknown variant `drs-enabled`, expected one of `ha-enabled`, `wlb-enabled`, `vm-media-inserted`"
    );
}

#[test]
fn a_vm_setting_needs_a_known_vm_and_a_pool_setting_takes_none() {
    assert_eq!(
        refusal("    - {setting: vm-media-inserted}"),
        "pool.yaml:5:7: cluster.settings[0]: setting `vm-media-inserted` needs `vm`: the VM it is about"
    );
    assert_eq!(
        refusal("    - {setting: vm-media-inserted, vm: web-09}"),
        "pool.yaml:5:40: cluster.settings[0].vm: unknown VM \"web-09\" (VMs are web-01)"
    );
    assert_eq!(
        refusal("    - {setting: ha-enabled, vm: web-01}"),
        "pool.yaml:5:33: cluster.settings[0].vm: does not apply to setting `ha-enabled`, which is about the whole pool"
    );
}

#[test]
fn a_setting_listed_twice_is_refused() {
    assert_eq!(
        refusal("    - {setting: ha-enabled}\n    - {setting: ha-enabled}"),
        "pool.yaml:6:7: cluster.settings[1]: setting ha-enabled is listed twice"
    );
}
