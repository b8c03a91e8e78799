//! The `driver:` section: left out it is the default simulator; a full simulator section reads
//! into the expected values; libvirt and command sections read by shape; and every bad value is
//! refused with `file:line:column: driver.path: message`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drover_schema::inventory::{
    CommandSection, CommandStep, FaultEntry, FaultName, KubevirtNodeUpdate, LibvirtHost,
    LibvirtSection, RandomFaults, SimulatorSection, StepName, XapiTransport,
};
use drover_schema::{
    load_inventory_file, parse_inventory, parse_inventory_file, DriverSection, InventoryFile,
};

/// A valid inventory without a driver section, 8 lines: the driver starts on line 9.
const INVENTORY: &str = r#"cluster: {name: pool-a, target_version: "8.2.1"}
hosts:
  - {name: xs01, version: "8.0.0", memory_mib: 65536, cpus: 16}
  - {name: xs02, version: "8.0.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: web-01, host: xs01, memory_mib: 8192}
  - {name: web-02, host: xs02, memory_mib: 8192}
  - {name: legacy-01, host: xs02, memory_mib: 4096}
"#;

/// Every simulator key, each fault with the keys it takes.
const FULL_SIMULATOR: &str = r#"driver:
  kind: simulator
  time_scale: 60
  seed: 7
  state_file: sim-world.json
  faults:
    - {fault: migration-fails, vm: web-01, times: 2}
    - {fault: migration-refused, vm: web-02}
    - {fault: migration-hangs, vm: web-02, times: 1}
    - {fault: upgrade-fails, host: xs01}
    - {fault: host-never-returns, host: xs02}
    - {fault: upgrade-does-not-reboot, host: xs01}
    - {fault: reboot-ignored, host: xs02}
    - {fault: shutdown-ignored, vm: legacy-01}
    - {fault: slow, step: upgrade, factor: 3.0}
    - {fault: slow, step: migrate, factor: 0.5, host: xs02}
    - {fault: compatibility-level-fails, times: 2}
  random_faults:
    {migration_failure: 0.05, upgrade_failure: 0.02, shutdown_ignored: 0.1, host_never_returns: 0}
"#;

fn with_driver(driver: &str) -> String {
    format!("{INVENTORY}{driver}")
}

fn read(driver: &str) -> InventoryFile {
    parse_inventory_file(&with_driver(driver), "pool.yaml").expect("the inventory must be read")
}

#[track_caller]
fn assert_refused(driver: &str, expected: &str) {
    let error = parse_inventory_file(&with_driver(driver), "pool.yaml")
        .expect_err("the inventory must be refused");
    assert!(error.is_bad_input());
    assert_eq!(error.to_string(), expected);
}

fn fault(name: FaultName) -> FaultEntry {
    FaultEntry {
        fault: name,
        vm: None,
        host: None,
        times: None,
        step: None,
        factor: None,
    }
}

fn on_vm(name: FaultName, vm: &str, times: Option<u32>) -> FaultEntry {
    FaultEntry {
        vm: Some(vm.to_string()),
        times,
        ..fault(name)
    }
}

fn on_host(name: FaultName, host: &str, times: Option<u32>) -> FaultEntry {
    FaultEntry {
        host: Some(host.to_string()),
        times,
        ..fault(name)
    }
}

fn slow(step: StepName, factor: f64, host: Option<&str>) -> FaultEntry {
    FaultEntry {
        step: Some(step),
        factor: Some(factor),
        host: host.map(str::to_string),
        ..fault(FaultName::Slow)
    }
}

#[test]
fn left_out_driver_is_the_default_simulator() {
    let file = read("");
    assert_eq!(file.driver, DriverSection::default());
    let DriverSection::Simulator(simulator) = &file.driver else {
        panic!("the default driver is the simulator");
    };
    assert_eq!(simulator.time_scale, 0.0);
    assert_eq!(simulator.seed, 1);
    assert_eq!(simulator.state_file, None);
    assert!(simulator.faults.is_empty());
    assert_eq!(simulator.random_faults, RandomFaults::default());
    assert_eq!(read("driver:\n").driver, DriverSection::default());
    assert_eq!(
        read("driver: {kind: simulator}\n").driver,
        DriverSection::default()
    );
}

#[test]
fn the_file_keeps_its_text_and_the_cluster_api_still_works() {
    let text = with_driver(FULL_SIMULATOR);
    let file = parse_inventory_file(&text, "pool.yaml").unwrap();
    assert_eq!(file.source_text, text);
    assert_eq!(parse_inventory(&text, "pool.yaml").unwrap(), file.cluster);
}

#[test]
fn full_simulator_section_reads_into_the_expected_values() {
    use FaultName::*;
    let expected = SimulatorSection {
        time_scale: 60.0,
        seed: 7,
        state_file: Some(PathBuf::from("sim-world.json")),
        faults: vec![
            on_vm(MigrationFails, "web-01", Some(2)),
            on_vm(MigrationRefused, "web-02", None),
            on_vm(MigrationHangs, "web-02", Some(1)),
            on_host(UpgradeFails, "xs01", None),
            on_host(HostNeverReturns, "xs02", None),
            on_host(UpgradeDoesNotReboot, "xs01", None),
            on_host(RebootIgnored, "xs02", None),
            on_vm(ShutdownIgnored, "legacy-01", None),
            slow(StepName::Upgrade, 3.0, None),
            slow(StepName::Migrate, 0.5, Some("xs02")),
            FaultEntry {
                times: Some(2),
                ..fault(CompatibilityLevelFails)
            },
        ],
        random_faults: RandomFaults {
            migration_failure: 0.05,
            upgrade_failure: 0.02,
            shutdown_ignored: 0.1,
            host_never_returns: 0.0,
        },
    };
    assert_eq!(
        read(FULL_SIMULATOR).driver,
        DriverSection::Simulator(expected)
    );
    assert_eq!(on_vm(MigrationFails, "web-01", None).times_or_once(), 1);
}

#[test]
fn kind_may_come_after_other_keys() {
    let driver = "driver:\n  seed: 7\n  time_scale: 2.5\n  kind: simulator\n  faults: []\n";
    let expected = SimulatorSection {
        seed: 7,
        time_scale: 2.5,
        ..SimulatorSection::default()
    };
    assert_eq!(read(driver).driver, DriverSection::Simulator(expected));
}

#[test]
fn the_section_written_back_reads_the_same() {
    let driver = read(FULL_SIMULATOR).driver;
    let written = serde_yaml_ng::to_string(&driver).unwrap();
    assert!(written.starts_with("kind: simulator\n"), "{written}");
    let read_back: DriverSection = serde_yaml_ng::from_str(&written).unwrap();
    assert_eq!(read_back, driver);
    let default_written = serde_yaml_ng::to_string(&DriverSection::default()).unwrap();
    assert_eq!(default_written, "kind: simulator\n");
}

#[test]
fn a_relative_state_file_is_relative_to_the_inventory() {
    let directory = std::env::temp_dir().join(format!("drover-schema-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let inventory_path = directory.join("pool.yaml");
    let state_file_of = |state_file: &str| {
        let text = with_driver(&format!(
            "driver: {{kind: simulator, state_file: {state_file}}}\n"
        ));
        std::fs::write(&inventory_path, text).unwrap();
        match load_inventory_file(&inventory_path).unwrap().driver {
            DriverSection::Simulator(simulator) => simulator.state_file,
            other => panic!("expected the simulator, got {other:?}"),
        }
    };
    assert_eq!(
        state_file_of("world.json"),
        Some(directory.join("world.json"))
    );
    assert_eq!(
        state_file_of("/var/lib/drover/world.json"),
        Some(PathBuf::from("/var/lib/drover/world.json"))
    );
    std::fs::remove_dir_all(&directory).unwrap();
    let error = load_inventory_file(Path::new("/nonexistent/pool.yaml")).unwrap_err();
    assert_eq!(error.line(), None);
}

#[test]
fn libvirt_section_reads_by_shape() {
    let driver = r#"driver:
  kind: libvirt
  hosts:
    xs01: {uri: "qemu+tcp://xs01/system", address: 10.0.0.1}
    xs02: {uri: "qemu+tcp://xs02/system", address: 10.0.0.2}
  commands:
    upgrade: [/usr/local/bin/upgrade-host, --yes]
"#;
    let host = |number: u32| LibvirtHost {
        uri: format!("qemu+tcp://xs0{number}/system"),
        address: format!("10.0.0.{number}"),
    };
    let expected = LibvirtSection {
        hosts: BTreeMap::from([("xs01".to_string(), host(1)), ("xs02".to_string(), host(2))]),
        commands: BTreeMap::from([(
            CommandStep::Upgrade,
            vec![
                "/usr/local/bin/upgrade-host".to_string(),
                "--yes".to_string(),
            ],
        )]),
        migration_bandwidth_mib_per_sec: None,
        shared_storage_path_prefixes: Vec::new(),
        marks_file: None,
    };
    assert_eq!(read(driver).driver, DriverSection::Libvirt(expected));
}

#[test]
fn libvirt_section_reads_storage_bandwidth_and_marks_keys() {
    let driver = "driver:\n  kind: libvirt\n  hosts:\n    xs01: {uri: \"qemu+tcp://xs01/system\", address: xs01}\n  migration_bandwidth_mib_per_sec: 200\n  shared_storage_path_prefixes: [/mnt/nfs, /var/lib/shared]\n  marks_file: marks.json\n";
    let DriverSection::Libvirt(section) = read(driver).driver else {
        panic!("a libvirt section");
    };
    assert_eq!(section.migration_bandwidth_mib_per_sec, Some(200));
    assert_eq!(
        section.shared_storage_path_prefixes,
        vec!["/mnt/nfs".to_string(), "/var/lib/shared".to_string()]
    );
    assert_eq!(section.marks_file.as_deref(), Some("marks.json"));
}

#[test]
fn command_section_reads_every_step() {
    let steps = [
        "discover",
        "host_facts",
        "health_check",
        "cordon",
        "uncordon",
        "enter_maintenance",
        "exit_maintenance",
        "migrate",
        "shutdown_vm",
        "start_vm",
        "upgrade",
        "reboot",
        "set_compatibility_level",
    ];
    let commands: String = steps
        .iter()
        .map(|step| format!("    {step}: [/opt/drover/{step}]\n"))
        .collect();
    let file = read(&format!(
        "driver:\n  kind: command\n  commands:\n{commands}"
    ));
    let DriverSection::Command(CommandSection { commands, .. }) = file.driver else {
        panic!("expected the command driver");
    };
    let names: Vec<&str> = commands.keys().map(|step| step.as_str()).collect();
    assert_eq!(names, steps);
    assert_eq!(commands[&CommandStep::StartVm], ["/opt/drover/start_vm"]);
}

#[test]
fn unknown_driver_kind() {
    assert_refused(
        "driver:\n  kind: vmware\n",
        "pool.yaml:10:9: driver.kind: unknown variant `vmware`, expected one of `simulator`, `libvirt`, `command`, `xapi`, `ovirt`, `ganeti`, `cloudstack`, `kubevirt`, `openstack`",
    );
}

#[test]
fn missing_driver_kind() {
    assert_refused(
        "driver:\n  seed: 3\n",
        "pool.yaml:10:3: driver: missing field `kind` (simulator, libvirt, command, xapi or ovirt)",
    );
}

#[test]
fn unknown_key_inside_driver() {
    assert_refused(
        "driver:\n  kind: simulator\n  sede: 3\n",
        "pool.yaml:11:3: driver: unknown field `sede`, expected one of `time_scale`, `seed`, `state_file`, `faults`, `random_faults`",
    );
    assert_refused(
        "driver:\n  kind: command\n  commands: {upgrade: [x]}\n  faults: []\n",
        "pool.yaml:12:3: driver: unknown field `faults`, expected `commands` or `allow_option_like_values`",
    );
    assert_refused(
        "driver:\n  kind: simulator\n  random_faults: {migration_failures: 0.1}\n",
        "pool.yaml:11:19: driver.random_faults: unknown field `migration_failures`, expected one of `migration_failure`, `upgrade_failure`, `shutdown_ignored`, `host_never_returns`",
    );
}

#[test]
fn driver_that_is_not_a_mapping() {
    assert_refused(
        "driver: simulator\n",
        "pool.yaml:9:9: driver: invalid type: string \"simulator\", expected a driver mapping such as {kind: simulator}",
    );
}

#[test]
fn unknown_fault_name() {
    assert_refused(
        "driver:\n  kind: simulator\n  faults:\n    - {fault: explode, vm: web-01}\n",
        "pool.yaml:12:15: driver.faults[0].fault: unknown variant `explode`, expected one of `migration-fails`, `migration-refused`, `migration-hangs`, `upgrade-fails`, `host-never-returns`, `upgrade-does-not-reboot`, `reboot-ignored`, `shutdown-ignored`, `slow`, `compatibility-level-fails`",
    );
}

#[test]
fn fault_on_unknown_vm_or_host() {
    let driver = FULL_SIMULATOR.replace("vm: web-02, times: 1", "vm: web-09, times: 1");
    assert_refused(
        &driver,
        "pool.yaml:17:36: driver.faults[2].vm: unknown VM \"web-09\" (VMs are web-01, web-02, legacy-01)",
    );
    let driver = FULL_SIMULATOR.replace("factor: 0.5, host: xs02", "factor: 0.5, host: xs9");
    assert_refused(
        &driver,
        "pool.yaml:24:55: driver.faults[9].host: unknown host \"xs9\" (hosts are xs01, xs02)",
    );
}

#[test]
fn fault_missing_or_extra_keys() {
    let cases = [
        (
            "{fault: migration-fails, host: xs01}",
            "pool.yaml:12:38: driver.faults[0].host: does not apply to fault `migration-fails`",
        ),
        (
            "{fault: migration-fails}",
            "pool.yaml:12:7: driver.faults[0]: fault `migration-fails` needs `vm`",
        ),
        (
            "{fault: reboot-ignored, vm: web-01}",
            "pool.yaml:12:35: driver.faults[0].vm: does not apply to fault `reboot-ignored`",
        ),
        (
            "{fault: reboot-ignored, host: xs01, times: 2}",
            "pool.yaml:12:50: driver.faults[0].times: does not apply to fault `reboot-ignored`",
        ),
        (
            "{fault: upgrade-fails, host: xs01, factor: 2}",
            "pool.yaml:12:50: driver.faults[0].factor: does not apply to fault `upgrade-fails`",
        ),
        (
            "{fault: compatibility-level-fails, host: xs01}",
            "pool.yaml:12:48: driver.faults[0].host: does not apply to fault `compatibility-level-fails`",
        ),
        (
            "{fault: slow, factor: 2}",
            "pool.yaml:12:7: driver.faults[0]: fault `slow` needs `step`",
        ),
        (
            "{fault: slow, step: reboot}",
            "pool.yaml:12:7: driver.faults[0]: fault `slow` needs `factor`",
        ),
    ];
    for (fault, expected) in cases {
        assert_refused(
            &format!("driver:\n  kind: simulator\n  faults:\n    - {fault}\n"),
            expected,
        );
    }
}

#[test]
fn fault_bad_values() {
    let cases = [
        (
            "{fault: upgrade-fails, host: xs01, times: 0}",
            "pool.yaml:12:49: driver.faults[0].times: must be at least 1, got 0",
        ),
        (
            "{fault: slow, step: boot, factor: 2}",
            "pool.yaml:12:27: driver.faults[0].step: unknown variant `boot`, expected one of `migrate`, `upgrade`, `reboot`, `shutdown`, `start`, `maintenance`",
        ),
        (
            "{fault: slow, step: start, factor: 0}",
            "pool.yaml:12:42: driver.faults[0].factor: must be a number greater than 0, got 0",
        ),
        (
            "{fault: slow, step: start, factor: -2}",
            "pool.yaml:12:42: driver.faults[0].factor: must be a number greater than 0, got -2",
        ),
    ];
    for (fault, expected) in cases {
        assert_refused(
            &format!("driver:\n  kind: simulator\n  faults:\n    - {fault}\n"),
            expected,
        );
    }
}

#[test]
fn negative_or_infinite_time_scale() {
    assert_refused(
        "driver:\n  kind: simulator\n  time_scale: -1\n",
        "pool.yaml:11:15: driver.time_scale: must be a finite number >= 0 (0 runs in virtual time), got -1",
    );
    assert_refused(
        "driver:\n  kind: simulator\n  time_scale: .inf\n",
        "pool.yaml:11:15: driver.time_scale: must be a finite number >= 0 (0 runs in virtual time), got inf",
    );
}

#[test]
fn probability_out_of_range() {
    assert_refused(
        "driver:\n  kind: simulator\n  random_faults: {upgrade_failure: 1.5}\n",
        "pool.yaml:11:36: driver.random_faults.upgrade_failure: must be a probability between 0 and 1, got 1.5",
    );
    assert_refused(
        "driver:\n  kind: simulator\n  random_faults:\n    host_never_returns: -0.1\n",
        "pool.yaml:12:25: driver.random_faults.host_never_returns: must be a probability between 0 and 1, got -0.1",
    );
}

#[test]
fn bad_commands() {
    assert_refused(
        "driver:\n  kind: command\n  commands:\n    upgrade: []\n",
        "pool.yaml:12:14: driver.commands.upgrade: must list the program and its arguments, such as [/usr/local/bin/upgrade-host]",
    );
    assert_refused(
        "driver:\n  kind: command\n  commands:\n    upgrade: [\"\", --yes]\n",
        "pool.yaml:12:15: driver.commands.upgrade[0]: must not be empty",
    );
    assert_refused(
        "driver:\n  kind: command\n  commands:\n    upgrde: [/bin/true]\n",
        "pool.yaml:12:5: driver.commands: unknown variant `upgrde`, expected one of `discover`, `host_facts`, `health_check`, `cordon`, `uncordon`, `enter_maintenance`, `exit_maintenance`, `migrate`, `shutdown_vm`, `start_vm`, `upgrade`, `reboot`, `set_compatibility_level`",
    );
    assert_refused(
        "driver:\n  kind: command\n  commands: {reboot: [/bin/a], reboot: [/bin/b]}\n",
        "pool.yaml:11:13: driver.commands: duplicate step \"reboot\"",
    );
    assert_refused(
        "driver:\n  kind: command\n  commands: {reboot: /sbin/reboot}\n",
        "pool.yaml:11:22: driver.commands.reboot: invalid type: string \"/sbin/reboot\", expected a sequence",
    );
    assert_refused(
        "driver:\n  kind: command\n",
        "pool.yaml:10:3: driver: missing field `commands`",
    );
}

#[test]
fn bad_libvirt_hosts() {
    assert_refused(
        "driver:\n  kind: libvirt\n  hosts:\n    xs01: {uri: \"qemu+tcp://xs01/system\"}\n",
        "pool.yaml:12:11: driver.hosts.xs01: missing field `address`",
    );
    assert_refused(
        "driver:\n  kind: libvirt\n  hosts:\n    xs01: {uri: \"\", address: xs01}\n",
        "pool.yaml:12:17: driver.hosts.xs01.uri: must not be empty",
    );
    let host = "driver:\n  kind: libvirt\n  hosts:\n    xs01: {uri: \"qemu+tcp://xs01/system\", address: xs01}\n";
    assert_refused(
        &format!("{host}  migration_bandwidth_mib_per_sec: 0\n"),
        "pool.yaml:13:36: driver.migration_bandwidth_mib_per_sec: must be at least 1 (leave it out for no limit)",
    );
    assert_refused(
        &format!("{host}  shared_storage_path_prefixes: [mnt/nfs]\n"),
        "pool.yaml:13:34: driver.shared_storage_path_prefixes[0]: \"mnt/nfs\" is not an absolute path",
    );
}

#[test]
fn errors_keep_their_position_after_kind_and_fall_back_to_driver_before_it() {
    assert_refused(
        "driver:\n  seed: 3\n  kind: simulator\n  time_scale: fast\n",
        "pool.yaml:12:15: driver.time_scale: invalid type: string \"fast\", expected a number such as 4.0",
    );
    assert_refused(
        "driver:\n  time_scale: fast\n  kind: simulator\n",
        "pool.yaml:10:3: driver: invalid type: string \"fast\", expected a number such as 4.0",
    );
}

#[test]
fn the_section_reads_from_json_too() {
    let driver: DriverSection =
        serde_json::from_str(r#"{"seed": 3, "kind": "simulator", "faults": null}"#).unwrap();
    let expected = SimulatorSection {
        seed: 3,
        ..SimulatorSection::default()
    };
    assert_eq!(driver, DriverSection::Simulator(expected));
    let error =
        serde_json::from_str::<DriverSection>(r#"{"kind": "simulator", "sede": 3}"#).unwrap_err();
    assert!(
        error.to_string().starts_with("unknown field `sede`"),
        "{error}"
    );
}

#[test]
fn xapi_section_reads_with_defaults_and_round_trips() {
    let file = read(
        "driver:\n  kind: xapi\n  url: https://xs01.example\n  username: root\n  password_env: XAPI_PASSWORD\n  ca_file: pool-ca.pem\n",
    );
    let DriverSection::Xapi(xapi) = &file.driver else {
        panic!("a xapi section, got {:?}", file.driver);
    };
    assert_eq!(xapi.url, "https://xs01.example");
    assert_eq!(xapi.username, "root");
    assert_eq!(xapi.password_env.as_deref(), Some("XAPI_PASSWORD"));
    assert_eq!(xapi.password_file, None);
    assert_eq!(xapi.ca_file.as_deref(), Some("pool-ca.pem"));
    assert!(!xapi.insecure);
    assert_eq!(
        (
            xapi.request_timeout_secs,
            xapi.migration_timeout_secs,
            xapi.task_poll_ms
        ),
        (30, 3_600, 1_000)
    );
    assert_eq!(file.driver.kind(), "xapi");
    let written = serde_yaml_ng::to_string(&file.driver).unwrap();
    let again = read(&format!(
        "driver:\n{}",
        written
            .lines()
            .map(|line| format!("  {line}\n"))
            .collect::<String>()
    ));
    assert_eq!(again.driver, file.driver);
}

#[test]
fn xapi_transport_is_auto_unless_named() {
    let named = |line: &str| {
        let file = read(&format!(
            "driver:\n  kind: xapi\n  url: https://xs01\n  username: root\n  password_env: A\n{line}"
        ));
        let DriverSection::Xapi(xapi) = file.driver else {
            panic!("a xapi section");
        };
        xapi.transport
    };
    assert_eq!(named(""), XapiTransport::Auto);
    assert_eq!(named("  transport: xmlrpc\n"), XapiTransport::Xmlrpc);
    assert_eq!(named("  transport: jsonrpc\n"), XapiTransport::Jsonrpc);
    assert_refused(
        "driver:\n  kind: xapi\n  url: https://xs01\n  username: root\n  password_env: A\n  transport: soap\n",
        "pool.yaml:14:14: driver.transport: unknown variant `soap`, expected one of `auto`, `jsonrpc`, `xmlrpc`",
    );
}

#[test]
fn xapi_section_refuses_a_password_source_missing_or_doubled_and_bad_values() {
    assert_refused(
        "driver:\n  kind: xapi\n  url: https://xs01\n  username: root\n",
        "pool.yaml:10:3: driver: give exactly one of password_env and password_file (never the password itself)",
    );
    assert_refused(
        "driver:\n  kind: xapi\n  url: https://xs01\n  username: root\n  password_env: A\n  password_file: b\n",
        "pool.yaml:10:3: driver: give exactly one of password_env and password_file (never the password itself)",
    );
    assert_refused(
        "driver:\n  kind: xapi\n  url: xs01\n  username: root\n  password_env: A\n",
        "pool.yaml:11:8: driver.url: \"xs01\" is not an http:// or https:// URL",
    );
    assert_refused(
        "driver:\n  kind: xapi\n  url: https://xs01\n  username: root\n  password_env: A\n  task_poll_ms: 0\n",
        "pool.yaml:14:17: driver.task_poll_ms: must be at least 1",
    );
    assert_refused(
        "driver:\n  kind: xapi\n  url: https://xs01\n  username: root\n  password_env: A\n  commands: {reboot: [reboot-it]}\n",
        "pool.yaml:14:22: driver.commands.reboot: the xapi driver takes only an `upgrade` command (XAPI does every other step)",
    );
    assert_refused(
        "driver:\n  kind: xapi\n  url: https://xs01\n  username: root\n  password: secret\n",
        "pool.yaml:13:3: driver: unknown field `password`, expected one of `url`, `username`, `password_env`, `password_file`, `ca_file`, `insecure`, `transport`, `request_timeout_secs`, `migration_timeout_secs`, `task_poll_ms`, `upgrade_timeout_secs`, `commands`",
    );
}

#[test]
fn ovirt_section_reads_with_defaults_and_round_trips() {
    let file = read(
        "driver:\n  kind: ovirt\n  url: https://engine.example\n  username: admin@internal\n  password_file: engine-password\n  ca_file: engine-ca.pem\n",
    );
    let DriverSection::Ovirt(ovirt) = &file.driver else {
        panic!("an ovirt section, got {:?}", file.driver);
    };
    assert_eq!(ovirt.url, "https://engine.example");
    assert_eq!(ovirt.username, "admin@internal");
    assert_eq!(ovirt.password_file.as_deref(), Some("engine-password"));
    assert_eq!(ovirt.password_env, None);
    assert_eq!(ovirt.ca_file.as_deref(), Some("engine-ca.pem"));
    assert!(!ovirt.insecure);
    assert!(ovirt.upgrade_reboot);
    assert_eq!(ovirt.cluster, None);
    assert_eq!(
        (
            ovirt.request_timeout_secs,
            ovirt.migration_timeout_secs,
            ovirt.poll_ms,
            ovirt.upgrade_timeout_secs
        ),
        (30, 3_600, 500, 7_200)
    );
    assert_eq!(file.driver.kind(), "ovirt");
    let written = serde_yaml_ng::to_string(&file.driver).unwrap();
    assert!(written.contains("kind: ovirt"), "{written}");
}

#[test]
fn ovirt_section_refuses_a_password_source_missing_or_doubled_and_bad_values() {
    assert_refused(
        "driver:\n  kind: ovirt\n  url: https://engine\n  username: admin@internal\n",
        "pool.yaml:10:3: driver: give exactly one of password_env and password_file (never the password itself)",
    );
    assert_refused(
        "driver:\n  kind: ovirt\n  url: engine\n  username: admin@internal\n  password_env: A\n",
        "pool.yaml:11:8: driver.url: \"engine\" is not an http:// or https:// URL",
    );
    assert_refused(
        "driver:\n  kind: ovirt\n  url: https://engine\n  username: admin@internal\n  password_env: A\n  poll_ms: 0\n",
        "pool.yaml:14:12: driver.poll_ms: must be at least 1",
    );
    assert_refused(
        "driver:\n  kind: ovirt\n  url: https://engine\n  username: admin@internal\n  password_env: A\n  commands: {migrate: [m]}\n",
        "pool.yaml:14:23: driver.commands.migrate: the ovirt driver takes only an `upgrade` command (the engine does every other step)",
    );
}

/// The scheduling policy the roll switches to, the upgrade mark and the engine's update check:
/// defaults, an explicit policy round-trips, and a bad value is refused at its file:line:col.
#[test]
fn ovirt_section_names_the_maintenance_policy_and_the_engine_update_check() {
    let base = "driver:\n  kind: ovirt\n  url: https://engine\n  username: admin@internal\n  password_env: A\n";
    let file = read(base);
    let DriverSection::Ovirt(ovirt) = &file.driver else {
        panic!("an ovirt section, got {:?}", file.driver);
    };
    assert_eq!(ovirt.maintenance_scheduling_policy, "cluster_maintenance");
    assert!(ovirt.mark_cluster_upgrade);
    assert!(ovirt.engine_update_check.is_empty());

    let named = read(&format!(
        "{base}  maintenance_scheduling_policy: power_saving\n  mark_cluster_upgrade: false\n  engine_update_check: [ssh, root@engine, engine-upgrade-check, --quiet]\n"
    ));
    let DriverSection::Ovirt(ovirt) = &named.driver else {
        panic!("an ovirt section, got {:?}", named.driver);
    };
    assert_eq!(ovirt.maintenance_scheduling_policy, "power_saving");
    assert!(!ovirt.mark_cluster_upgrade);
    assert_eq!(ovirt.engine_update_check[2], "engine-upgrade-check");
    let written = serde_yaml_ng::to_string(&named.driver).unwrap();
    assert!(
        written.contains("maintenance_scheduling_policy: power_saving"),
        "{written}"
    );
    let reread: DriverSection = serde_yaml_ng::from_str(&written).unwrap();
    assert_eq!(&reread, &named.driver);

    assert_refused(
        &format!("{base}  maintenance_scheduling_policy: \"\"\n"),
        "pool.yaml:14:34: driver.maintenance_scheduling_policy: \"\" is not a scheduling policy name (1 to 128 characters, no control characters), e.g. cluster_maintenance",
    );
    let long = "p".repeat(129);
    let refused = parse_inventory_file(
        &with_driver(&format!("{base}  maintenance_scheduling_policy: {long}\n")),
        "pool.yaml",
    )
    .expect_err("a 129-character policy name is refused");
    assert!(refused.is_bad_input());
    assert!(
        refused
            .to_string()
            .starts_with("pool.yaml:14:34: driver.maintenance_scheduling_policy: "),
        "{refused}"
    );
    assert_refused(
        &format!("{base}  engine_update_check: [\" \", x]\n"),
        "pool.yaml:14:24: driver.engine_update_check: names no program (e.g. [ssh, root@engine, engine-upgrade-check, --quiet])",
    );
}

#[test]
fn ganeti_section_reads_with_defaults_and_round_trips() {
    let file = read(
        "driver:\n  kind: ganeti\n  url: https://cluster.example:5080\n  username: drover\n  password_file: rapi-password\n  ca_file: rapi-ca.pem\n  commands:\n    host_facts: [facts, \"{host}\"]\n    reboot: [reboot-node, \"{host.address}\"]\n",
    );
    let DriverSection::Ganeti(ganeti) = &file.driver else {
        panic!("a ganeti section, got {:?}", file.driver);
    };
    assert_eq!(ganeti.url, "https://cluster.example:5080");
    assert_eq!(ganeti.password_file.as_deref(), Some("rapi-password"));
    assert_eq!(ganeti.password_env, None);
    assert!(!ganeti.insecure);
    assert_eq!(
        (
            ganeti.request_timeout_secs,
            ganeti.job_timeout_secs,
            ganeti.job_poll_ms,
            ganeti.upgrade_timeout_secs,
            ganeti.reboot_timeout_secs
        ),
        (30, 3_600, 500, 7_200, 1_800)
    );
    assert_eq!(ganeti.commands.len(), 2);
    assert_eq!(file.driver.kind(), "ganeti");
    let written = serde_yaml_ng::to_string(&file.driver).unwrap();
    let again = read(&format!(
        "driver:\n{}",
        written
            .lines()
            .map(|line| format!("  {line}\n"))
            .collect::<String>()
    ));
    assert_eq!(again.driver, file.driver);
}

#[test]
fn ganeti_section_refuses_plain_http_a_bad_password_source_and_steps_rapi_does() {
    let base = "driver:\n  kind: ganeti\n  url: https://c:5080\n  username: drover\n";
    assert_refused(
        base,
        "pool.yaml:10:3: driver: give exactly one of password_env and password_file (never the password itself)",
    );
    assert_refused(
        "driver:\n  kind: ganeti\n  url: http://c:5080\n  username: drover\n  password_env: P\n",
        "pool.yaml:11:8: driver.url: \"http://c:5080\" is not an https:// URL (Ganeti's RAPI speaks only HTTPS)",
    );
    assert_refused(
        &format!("{base}  password_env: P\n  job_poll_ms: 0\n"),
        "pool.yaml:14:16: driver.job_poll_ms: must be at least 1",
    );
    assert_refused(
        &format!("{base}  password_env: P\n  commands: {{migrate: [m]}}\n"),
        "pool.yaml:14:23: driver.commands.migrate: the ganeti driver takes only host_facts, health_check, upgrade and reboot commands (RAPI does every other step)",
    );
    assert_refused(
        &format!("{base}  password_env: P\n  commands: {{reboot: [r]}}\n"),
        "pool.yaml:14:22: driver.commands.reboot: a reboot command needs a host_facts command (the boot id says whether the node rebooted)",
    );
}

#[test]
fn ganeti_section_takes_the_cluster_steps_master_failover_and_verify() {
    let file = read(
        "driver:\n  kind: ganeti\n  url: https://c:5080\n  username: drover\n  password_env: P\n  master_failover: [ssh, \"root@{host.address}\", gnt-cluster, master-failover]\n  verify: [ssh, root@c, gnt-cluster, verify]\n",
    );
    let DriverSection::Ganeti(ganeti) = &file.driver else {
        panic!("a ganeti section, got {:?}", file.driver);
    };
    assert_eq!(
        ganeti.master_failover.as_deref().map(|argv| argv.len()),
        Some(4)
    );
    assert_eq!(
        ganeti
            .verify
            .as_deref()
            .and_then(|argv| argv.last())
            .map(String::as_str),
        Some("verify")
    );
    assert_refused(
        "driver:\n  kind: ganeti\n  url: https://c:5080\n  username: drover\n  password_env: P\n  verify: []\n",
        "pool.yaml:14:11: driver.verify: must list the program and its arguments, such as [gnt-cluster, verify]",
    );
}

#[test]
fn kubevirt_section_reads_with_defaults_and_round_trips() {
    let file = read(
        "driver:\n  kind: kubevirt\n  kubeconfig: kubeconfig.yaml\n  context: admin\n  commands:\n    upgrade: [upgrade-node, \"{host}\", \"{target}\"]\n    reboot: [reboot-node, \"{host}\"]\n",
    );
    let DriverSection::Kubevirt(kubevirt) = &file.driver else {
        panic!("a kubevirt section, got {:?}", file.driver);
    };
    assert_eq!(kubevirt.kubeconfig.as_deref(), Some("kubeconfig.yaml"));
    assert_eq!(kubevirt.context.as_deref(), Some("admin"));
    assert_eq!(
        (
            kubevirt.request_timeout_secs,
            kubevirt.migration_timeout_secs,
            kubevirt.batch_eviction_size,
            kubevirt.batch_eviction_interval_secs,
            kubevirt.drain_timeout_secs,
            kubevirt.poll_ms
        ),
        (30, 900, 10, 60, 600, 2_000)
    );
    assert_eq!(kubevirt.commands.len(), 2);
    assert_eq!(file.driver.kind(), "kubevirt");
    let written = serde_yaml_ng::to_string(&file.driver).unwrap();
    let again = read(&format!(
        "driver:\n{}",
        written
            .lines()
            .map(|line| format!("  {line}\n"))
            .collect::<String>()
    ));
    assert_eq!(again.driver, file.driver);
}

#[test]
fn kubevirt_section_refuses_zero_numbers_and_steps_the_api_does() {
    assert_refused(
        "driver:\n  kind: kubevirt\n  batch_eviction_size: 0\n",
        "pool.yaml:11:24: driver.batch_eviction_size: must be at least 1",
    );
    assert_refused(
        "driver:\n  kind: kubevirt\n  commands: {migrate: [m]}\n",
        "pool.yaml:11:23: driver.commands.migrate: the kubevirt driver takes only `upgrade` and `reboot` commands (the Kubernetes API does every other step)",
    );
}

#[test]
fn kubevirt_node_update_reads_commands_by_default_or_a_machine_config_pool() {
    let file = read("driver:\n  kind: kubevirt\n");
    let DriverSection::Kubevirt(kubevirt) = &file.driver else {
        panic!("a kubevirt section, got {:?}", file.driver);
    };
    assert_eq!(kubevirt.node_update, KubevirtNodeUpdate::Commands);
    assert_eq!(kubevirt.machine_config_pool, None);
    let file = read(
        "driver:\n  kind: kubevirt\n  node_update: machine-config-pool\n  machine_config_pool: worker-cnv\n",
    );
    let DriverSection::Kubevirt(kubevirt) = &file.driver else {
        panic!("a kubevirt section, got {:?}", file.driver);
    };
    assert_eq!(kubevirt.node_update, KubevirtNodeUpdate::MachineConfigPool);
    assert_eq!(kubevirt.machine_config_pool.as_deref(), Some("worker-cnv"));
    let written = serde_yaml_ng::to_string(&file.driver).unwrap();
    assert!(
        written.contains("node_update: machine-config-pool"),
        "{written}"
    );
    assert_refused(
        "driver:\n  kind: kubevirt\n  node_update: machine-config-pool\n  machine_config_pool: Worker_1\n",
        "pool.yaml:12:24: driver.machine_config_pool: \"Worker_1\" is not a MachineConfigPool name (lower-case letters, digits, '-' and '.')",
    );
}

#[test]
fn openstack_section_reads_a_cloud_entry_or_fields_with_defaults_and_round_trips() {
    let file = read(
        "driver:\n  kind: openstack\n  cloud: prod\n  clouds_file: clouds.yaml\n  allow_block_migration: true\n  commands:\n    host_facts: [facts, \"{host}\"]\n    reboot: [reboot-host, \"{host.address}\"]\n",
    );
    let DriverSection::Openstack(openstack) = &file.driver else {
        panic!("an openstack section, got {:?}", file.driver);
    };
    assert_eq!(openstack.cloud.as_deref(), Some("prod"));
    assert_eq!(openstack.auth_url, None);
    assert!(openstack.allow_block_migration && !openstack.insecure);
    assert_eq!(
        (
            openstack.request_timeout_secs,
            openstack.migration_timeout_secs,
            openstack.action_timeout_secs,
            openstack.poll_ms,
            openstack.upgrade_timeout_secs,
            openstack.reboot_timeout_secs
        ),
        (30, 1_800, 600, 1_000, 7_200, 1_800)
    );
    assert_eq!(file.driver.kind(), "openstack");
    let written = serde_yaml_ng::to_string(&file.driver).unwrap();
    let again = read(&format!(
        "driver:\n{}",
        written
            .lines()
            .map(|line| format!("  {line}\n"))
            .collect::<String>()
    ));
    assert_eq!(again.driver, file.driver);
    let fields = read(
        "driver:\n  kind: openstack\n  auth_url: https://keystone:5000/v3\n  username: drover\n  project: admin\n  password_env: OS_PASSWORD\n",
    );
    assert_eq!(fields.driver.kind(), "openstack");
}

#[test]
fn openstack_section_refuses_no_keystone_no_secret_and_steps_nova_does() {
    assert_refused(
        "driver:\n  kind: openstack\n  username: drover\n",
        "pool.yaml:10:3: driver: give `cloud` (a clouds.yaml entry) or `auth_url` (Keystone)",
    );
    let base = "driver:\n  kind: openstack\n  auth_url: https://k:5000/v3\n  username: drover\n  project: admin\n";
    assert_refused(
        base,
        "pool.yaml:10:3: driver: give password_env or password_file (the password or the application credential's secret)",
    );
    assert_refused(
        "driver:\n  kind: openstack\n  auth_url: https://k:5000/v3\n  project: admin\n  password_env: P\n",
        "pool.yaml:10:3: driver.username: must not be empty",
    );
    assert_refused(
        &format!("{base}  password_env: P\n  interface: private\n"),
        "pool.yaml:15:14: driver.interface: \"private\" is not public, internal or admin",
    );
    assert_refused(
        &format!("{base}  password_env: P\n  poll_ms: 0\n"),
        "pool.yaml:15:12: driver.poll_ms: must be at least 1",
    );
    assert_refused(
        &format!("{base}  password_env: P\n  commands: {{migrate: [m]}}\n"),
        "pool.yaml:15:23: driver.commands.migrate: the openstack driver takes only host_facts, health_check, upgrade and reboot commands (the Compute API does every other step)",
    );
    assert_refused(
        &format!("{base}  password_env: P\n  commands: {{reboot: [r]}}\n"),
        "pool.yaml:15:22: driver.commands.reboot: a reboot command needs a host_facts command (the boot id says whether the host rebooted)",
    );
}
