//! Valid inventories read into the core model with the documented defaults, YAML and JSON alike,
//! and a cluster written back with `inventory_to_yaml` reads to an equal cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drover_core::{
    ApprovalMode, Cluster, Host, HostId, HostRole, HostShare, HostState, MaintenanceWindow,
    MaxUnavailable, Policy, RestartPolicy, UpgradeMode, Version, Vm, VmState,
};
use drover_schema::{inventory_to_yaml, load_inventory, parse_inventory};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn version(text: &str) -> Version {
    text.parse().unwrap()
}

const MINIMAL: &str = r#"
cluster: {name: lab, target_version: "2.0"}
hosts:
  - {name: h1, version: "1.0", memory_mib: 4096, cpus: 4}
vms:
  - {name: v1, host: h1, memory_mib: 512}
"#;

#[test]
fn left_out_fields_take_their_defaults() {
    let cluster = parse_inventory(MINIMAL, "minimal.yaml").unwrap();
    assert_eq!(cluster.policy, Policy::default());
    let host = &cluster.hosts[0];
    assert_eq!(host.role, HostRole::Compute);
    assert_eq!(host.state, HostState::Up);
    assert!(!host.cordoned);
    assert!(host.labels.is_empty());
    let vm = &cluster.vms[0];
    assert_eq!(vm.host, HostId(0));
    assert_eq!(vm.vcpus, 1);
    assert_eq!(vm.state, VmState::Running);
    assert!(vm.migratable);
    assert!(!vm.local_storage);
    assert_eq!(vm.restart_policy, RestartPolicy::Manual);
    assert_eq!(vm.anti_affinity, None);
}

#[test]
fn vms_may_be_left_out() {
    let text = "cluster: {name: lab, target_version: \"2\"}\nhosts:\n  - {name: h1, version: \"1\", memory_mib: 1, cpus: 1}\n";
    let cluster = parse_inventory(text, "lab.yaml").unwrap();
    assert!(cluster.vms.is_empty());
}

#[test]
fn empty_sections_read_as_left_out() {
    let text = "cluster: {name: lab, target_version: \"2\"}\npolicy:\nhosts:\n  - {name: h1, version: \"1\", memory_mib: 1, cpus: 1, labels: }\nvms:\n";
    let cluster = parse_inventory(text, "lab.yaml").unwrap();
    assert_eq!(cluster.policy, Policy::default());
    assert!(cluster.hosts[0].labels.is_empty());
    assert!(cluster.vms.is_empty());
}

#[test]
fn example_file_reads_into_the_core_model() {
    let cluster = load_inventory(&fixture("pool.yaml")).unwrap();
    assert_eq!(cluster.name, "pool-a");
    assert_eq!(cluster.target_version, version("8.2.1"));
    let expected_policy = Policy {
        max_unavailable: MaxUnavailable::Auto,
        cpu_overcommit: 2.5,
        auto_resolve: true,
        migration_bandwidth_mib_per_sec: 1250,
        ..Policy::default()
    };
    assert_eq!(cluster.policy, expected_policy);
    let roles: Vec<_> = cluster.hosts.iter().map(|host| host.role).collect();
    use HostRole::*;
    assert_eq!(roles, [Master, Compute, Compute, Management]);
    let states: Vec<_> = cluster.hosts.iter().map(|host| host.state).collect();
    use HostState::*;
    assert_eq!(states, [Up, Up, Maintenance, Down]);
    assert_eq!(cluster.hosts[0].labels["rack"], "r1");
    let vm_hosts: Vec<_> = cluster.vms.iter().map(|vm| vm.host.0).collect();
    assert_eq!(vm_hosts, [0, 1, 1, 1, 0]);
    assert_eq!(cluster.vms[0].restart_policy, RestartPolicy::Always);
    assert_eq!(cluster.vms[0].anti_affinity.as_deref(), Some("web"));
    assert!(cluster.vms[2].local_storage);
    assert!(!cluster.vms[3].migratable);
    assert_eq!(cluster.vms[4].state, VmState::Stopped);
}

const EXECUTION_POLICY: &str = r#"
cluster: {name: lab, target_version: "2.0"}
policy:
  mode: manual
  approval: manual
  max_step_attempts: 5
  retry_backoff_initial_secs: 10
  retry_backoff_max_secs: 600
  step_timeout_secs: 60
  migration_timeout_secs: 1800
  upgrade_timeout_secs: 5400
  reboot_timeout_secs: 900
  vm_shutdown_timeout_secs: 90
  unschedulable_timeout_secs: 240
  pending_timeout_secs: 600
  batch_eviction_size: 4
  batch_eviction_interval_secs: 30
  windows: ["Sat 22:00-06:00", "mon-FRI 01:00-05:00", "Sat,Sun 00:00-24:00"]
  time_zone: Europe/Paris
hosts:
  - {name: h1, version: "1.0", memory_mib: 4096, cpus: 4, cordoned: true}
  - {name: h2, version: "1.0", memory_mib: 4096, cpus: 4, cordoned: false}
"#;

#[test]
fn execution_policy_reads_into_the_core_model() {
    let cluster = parse_inventory(EXECUTION_POLICY, "lab.yaml").unwrap();
    let window = |days: &[u8], start_minute: u16, end_minute: u16| MaintenanceWindow {
        days: days.to_vec(),
        start_minute,
        end_minute,
    };
    let expected_policy = Policy {
        mode: UpgradeMode::Manual,
        approval: ApprovalMode::Manual,
        max_step_attempts: 5,
        retry_backoff_initial_secs: 10,
        retry_backoff_max_secs: 600,
        step_timeout_secs: 60,
        migration_timeout_secs: 1800,
        upgrade_timeout_secs: 5400,
        reboot_timeout_secs: 900,
        vm_shutdown_timeout_secs: 90,
        unschedulable_timeout_secs: 240,
        pending_timeout_secs: 600,
        batch_eviction_size: 4,
        batch_eviction_interval_secs: 30,
        windows: vec![
            window(&[5], 22 * 60, 6 * 60),
            window(&[0, 1, 2, 3, 4], 60, 5 * 60),
            window(&[5, 6], 0, 24 * 60),
        ],
        time_zone: "Europe/Paris".to_string(),
        ..Policy::default()
    };
    assert_eq!(cluster.policy, expected_policy);
    let cordoned: Vec<bool> = cluster.hosts.iter().map(|host| host.cordoned).collect();
    assert_eq!(cordoned, [true, false]);
}

#[test]
fn windows_are_written_back_as_text() {
    let cluster = parse_inventory(EXECUTION_POLICY, "lab.yaml").unwrap();
    let written = inventory_to_yaml(&cluster);
    assert!(
        written.contains(
            "  windows:\n  - Sat 22:00-06:00\n  - Mon-Fri 01:00-05:00\n  - Sat,Sun 00:00-24:00\n  time_zone: Europe/Paris\n"
        ),
        "{written}"
    );
    assert!(written.contains("  cordoned: true\n"), "{written}");
    assert!(!written.contains("cordoned: false"), "{written}");
    assert_eq!(parse_inventory(&written, "written.yaml").unwrap(), cluster);
}

#[test]
fn json_reads_like_yaml() {
    let from_yaml = load_inventory(&fixture("pool.yaml")).unwrap();
    let from_json = load_inventory(&fixture("pool.json")).unwrap();
    assert_eq!(from_json, from_yaml);
}

#[test]
fn unquoted_versions_keep_their_written_text() {
    let text = "cluster: {name: lab, target_version: 8.10}\nhosts:\n  - {name: h1, version: 8, memory_mib: 1, cpus: 1}\n";
    let cluster = parse_inventory(text, "lab.yaml").unwrap();
    assert_eq!(cluster.target_version.as_str(), "8.10");
    assert!(cluster.target_version > version("8.9"));
    assert_eq!(cluster.hosts[0].version.as_str(), "8");
}

#[test]
fn example_file_round_trips() {
    let cluster = load_inventory(&fixture("pool.yaml")).unwrap();
    let written = inventory_to_yaml(&cluster);
    assert_eq!(parse_inventory(&written, "written.yaml").unwrap(), cluster);
    insta::assert_snapshot!("pool_written_back", written);
}

#[test]
fn every_non_default_value_round_trips() {
    let cluster = cluster_with_no_defaults();
    let written = inventory_to_yaml(&cluster);
    assert_eq!(parse_inventory(&written, "written.yaml").unwrap(), cluster);
}

#[test]
fn defaults_are_left_out_when_writing() {
    let cluster = parse_inventory(MINIMAL, "minimal.yaml").unwrap();
    insta::assert_snapshot!("minimal_written_back", inventory_to_yaml(&cluster));
}

/// Every field away from its default, with texts YAML would read as other types if unquoted.
fn cluster_with_no_defaults() -> Cluster {
    let policy = Policy {
        max_unavailable: MaxUnavailable::Count(3),
        one_host_at_a_time: true,
        cpu_overcommit: 1.25,
        auto_resolve: true,
        upgrade_duration_secs: 1,
        reboot_duration_secs: 2,
        migration_bandwidth_mib_per_sec: 3,
        migration_overhead_secs: 4,
        max_concurrent_migrations_per_host: 5,
        max_concurrent_migrations_per_cluster: 6,
        vm_shutdown_secs: 7,
        vm_boot_secs: 8,
        mode: UpgradeMode::Manual,
        approval: ApprovalMode::Manual,
        max_step_attempts: 9,
        retry_backoff_initial_secs: 10,
        retry_backoff_max_secs: 11,
        step_timeout_secs: 12,
        migration_timeout_secs: 13,
        upgrade_timeout_secs: 14,
        reboot_timeout_secs: 15,
        vm_shutdown_timeout_secs: 16,
        unschedulable_timeout_secs: 17,
        pending_timeout_secs: 18,
        batch_eviction_size: 19,
        batch_eviction_interval_secs: 0,
        windows: vec![
            MaintenanceWindow {
                days: vec![5],
                start_minute: 22 * 60,
                end_minute: 6 * 60,
            },
            MaintenanceWindow {
                days: vec![0, 2, 3, 4, 6],
                start_minute: 0,
                end_minute: 24 * 60,
            },
        ],
        time_zone: "America/Argentina/Buenos_Aires".to_string(),
        only_hosts: Some(["true".to_string()].into()),
        force_hosts: ["true".to_string()].into(),
        raise_compatibility_level_to: Some("4.10".to_string()),
        max_unavailable_auto_ceiling: HostShare::Percent(35),
        host_memory_reserve_mib: 20,
        host_memory_max_fill_percent: 21,
    };
    let host = Host {
        name: "true".to_string(),
        role: HostRole::Management,
        version: version("8.10"),
        memory_mib: 1 << 40,
        cpus: 512,
        state: HostState::Maintenance,
        cordoned: true,
        labels: BTreeMap::from([("zone: a".to_string(), "123".to_string())]),
    };
    let vm = Vm {
        name: "null".to_string(),
        host: HostId(0),
        memory_mib: 1024,
        vcpus: 2,
        state: VmState::Stopped,
        migratable: false,
        local_storage: true,
        unmovable: None,
        restart_policy: RestartPolicy::Always,
        anti_affinity: Some("~".to_string()),
        allowed_hosts: None,
    };
    Cluster {
        settings: Vec::new(),
        name: "0x10".to_string(),
        target_version: version("10"),
        policy,
        hosts: vec![host],
        vms: vec![vm],
    }
}
