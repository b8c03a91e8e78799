//! The driver against libvirt's in-process `test` driver: each host is a `test:///FILE` URI, a
//! private fake hypervisor whose domains are declared in FILE. No libvirtd, no QEMU; libvirt's
//! test driver cannot migrate and shuts domains off at once, so live migration and forced
//! power-off are covered by `real_hosts.rs` instead.

use std::path::Path;
use std::time::Duration;

use drover_core::{Cluster, HostRole, HostState, RestartPolicy, VmState};
use drover_driver::{Driver, DriverError};
use drover_libvirt::{LibvirtDriver, LibvirtDriverConfig, LibvirtError, BOOT_ID_UNAVAILABLE};
use drover_schema::inventory::{CommandStep, LibvirtHost};

const INVENTORY: &str = r#"
cluster: {name: lab, target_version: "2.0"}
hosts:
  - {name: h1, role: master, version: "1.0", memory_mib: 4096, cpus: 2, labels: {rack: a}}
  - {name: h2, version: "1.0", memory_mib: 4096, cpus: 2}
vms:
  - {name: db1, host: h1, memory_mib: 256, anti_affinity: db}
"#;

const DROVER_NAMESPACE: &str = r#"xmlns:drover="https://drover.dev/xmlns/vm/1""#;

fn cluster() -> Cluster {
    drover_schema::parse_inventory(INVENTORY, "lab.yaml").expect("the test inventory is valid")
}

/// A test-driver domain; `running: false` declares it shut off.
fn domain(name: &str, memory_mib: u64, running: bool, metadata: &str, devices: &str) -> String {
    let shut_off = match running {
        true => "",
        false => "<test:runstate>5</test:runstate>",
    };
    format!(
        "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\
         <name>{name}</name><memory unit='MiB'>{memory_mib}</memory><vcpu>2</vcpu>\
         <os><type>hvm</type></os><metadata>{metadata}</metadata>\
         <devices>{devices}</devices>{shut_off}</domain>"
    )
}

fn local_disk(path: &str) -> String {
    format!("<disk type='file' device='disk'><source file='{path}'/><target dev='vda'/></disk>")
}

fn rbd_disk() -> String {
    "<disk type='network' device='disk'><source protocol='rbd' name='pool/img'/><target dev='vda'/></disk>".into()
}

/// Writes a host file with 8 GiB, 4 CPUs and `domains`; returns its URI.
fn host_file(directory: &Path, host: &str, domains: &[String]) -> String {
    let path = directory.join(format!("{host}.xml"));
    let node = format!(
        "<node><cpu><mhz>2000</mhz><model>test</model><active>4</active><nodes>1</nodes>\
         <sockets>1</sockets><cores>4</cores><threads>1</threads></cpu>\
         <memory>8388608</memory>{}</node>",
        domains.concat()
    );
    std::fs::write(&path, node).expect("the temporary directory is writable");
    format!("test://{}", path.display())
}

fn config(uris: &[(&str, String)], commands: &[(CommandStep, Vec<String>)]) -> LibvirtDriverConfig {
    let hosts = uris
        .iter()
        .map(|(name, uri)| {
            let host = LibvirtHost {
                uri: uri.clone(),
                address: name.to_string(),
            };
            (name.to_string(), host)
        })
        .collect();
    LibvirtDriverConfig {
        hosts,
        commands: commands.iter().cloned().collect(),
        known: cluster(),
        migration_bandwidth_mib_per_sec: None,
        shared_storage_path_prefixes: Vec::new(),
        marks_file: None,
        upgrade_plans: Default::default(),
        connect_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(5),
        migration_timeout: Duration::from_secs(30),
        step_timeout: Duration::from_secs(5),
        upgrade_timeout: Duration::from_secs(10),
        reboot_timeout: Duration::from_secs(10),
    }
}

/// Two hosts: h1 runs web1 (local disk, metadata) and db1 (listed in the inventory, metadata the
/// inventory overrides); h2 holds cache1 (network disk, shut off).
fn two_hosts(directory: &Path) -> LibvirtDriver {
    let web1_metadata =
        format!(r#"<drover:vm {DROVER_NAMESPACE} restart_policy="always" anti_affinity="web"/>"#);
    let db1_metadata = format!(r#"<drover:vm {DROVER_NAMESPACE} migratable="false"/>"#);
    let h1 = host_file(
        directory,
        "h1",
        &[
            domain(
                "web1",
                128,
                true,
                &web1_metadata,
                &local_disk("/var/lib/web1.img"),
            ),
            domain("db1", 256, true, &db1_metadata, ""),
        ],
    );
    let h2 = host_file(
        directory,
        "h2",
        &[domain("cache1", 64, false, "", &rbd_disk())],
    );
    LibvirtDriver::new(config(&[("h1", h1), ("h2", h2)], &[])).expect("the config is valid")
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| part.to_string()).collect()
}

#[tokio::test]
async fn discovers_hosts_and_domains_with_metadata_and_overrides() {
    let directory = tempfile::tempdir().unwrap();
    let driver = two_hosts(directory.path());
    let discovered = driver.discover().await.unwrap();

    let hosts: Vec<(&str, HostRole, HostState, u64, u32)> = discovered
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.role, h.state, h.memory_mib, h.cpus))
        .collect();
    assert_eq!(
        hosts,
        vec![
            ("h1", HostRole::Master, HostState::Up, 8192, 4),
            ("h2", HostRole::Compute, HostState::Up, 8192, 4)
        ]
    );
    assert_eq!(discovered.hosts[0].labels["rack"], "a");
    assert_eq!(discovered.hosts[0].version.parts().len(), 3);

    let vm = |name: &str| discovered.vms.iter().find(|v| v.name == name).unwrap();
    let web1 = vm("web1");
    assert_eq!(web1.host.index(), 0);
    assert_eq!((web1.memory_mib, web1.vcpus), (128, 2));
    assert_eq!(web1.state, VmState::Running);
    assert!(web1.local_storage && web1.migratable);
    assert_eq!(web1.restart_policy, RestartPolicy::Always);
    assert_eq!(web1.anti_affinity.as_deref(), Some("web"));

    let db1 = vm("db1");
    assert!(db1.migratable, "the inventory entry wins over the metadata");
    assert_eq!(db1.anti_affinity.as_deref(), Some("db"));
    assert!(!db1.local_storage, "no disks: not local");

    let cache1 = vm("cache1");
    assert_eq!(cache1.host.index(), 1);
    assert_eq!(cache1.state, VmState::Stopped);
    assert!(!cache1.local_storage, "a network disk is shared");
    assert_eq!(discovered.vms.len(), 3);
}

#[tokio::test]
async fn host_facts_without_a_command_are_libvirts_version_and_drovers_marks() {
    let directory = tempfile::tempdir().unwrap();
    let driver = two_hosts(directory.path());
    let facts = driver.host_facts("h2").await.unwrap();
    assert_eq!(facts.boot_id, BOOT_ID_UNAVAILABLE);
    assert!(!facts.cordoned && !facts.in_maintenance);

    driver.set_allocation("h2", false).await.unwrap();
    assert!(driver.host_facts("h2").await.unwrap().cordoned);
    let discovered = driver.discover().await.unwrap();
    assert!(discovered.hosts[1].cordoned && !discovered.hosts[0].cordoned);
    driver.set_allocation("h2", true).await.unwrap();
    assert!(!driver.host_facts("h2").await.unwrap().cordoned);
    driver.health_check("h1").await.unwrap();
}

#[tokio::test]
async fn maintenance_is_refused_while_domains_run_and_blocks_placements() {
    let directory = tempfile::tempdir().unwrap();
    let driver = two_hosts(directory.path());
    let refused = driver.set_maintenance("h1", true).await.unwrap_err();
    assert_eq!(
        refused,
        DriverError::Refused("host h1 still runs VMs: db1, web1".into())
    );
    assert!(!driver.host_facts("h1").await.unwrap().in_maintenance);

    driver.set_maintenance("h2", true).await.unwrap();
    driver.set_maintenance("h2", true).await.unwrap();
    assert!(driver.host_facts("h2").await.unwrap().in_maintenance);
    let discovered = driver.discover().await.unwrap();
    assert_eq!(discovered.hosts[1].state, HostState::Maintenance);
    let start = driver.start_vm("cache1", "h2").await.unwrap_err();
    assert!(matches!(start, DriverError::Refused(text) if text.contains("in maintenance")));
    let migrate = driver.migrate("web1", "h1", "h2").await.unwrap_err();
    assert!(matches!(migrate, DriverError::Refused(text) if text.contains("in maintenance")));

    driver.set_maintenance("h2", false).await.unwrap();
    driver.start_vm("cache1", "h2").await.unwrap();
}

#[tokio::test]
async fn shutdown_is_idempotent_and_names_missing_vms() {
    let directory = tempfile::tempdir().unwrap();
    let driver = two_hosts(directory.path());
    let graceful = Duration::from_secs(2);
    let observed = driver.shutdown_vm("web1", "h1", graceful).await.unwrap();
    assert!(!observed.forced, "the test driver stops at once");
    let again = driver.shutdown_vm("web1", "h1", graceful).await.unwrap();
    assert!(!again.forced);
    assert_eq!(
        driver
            .shutdown_vm("web1", "h2", graceful)
            .await
            .unwrap_err(),
        DriverError::NotFound("VM web1 is not on host h2".into())
    );
    let discovered = driver.discover().await.unwrap();
    let web1 = discovered.vms.iter().find(|v| v.name == "web1").unwrap();
    assert_eq!(web1.state, VmState::Stopped);
}

#[tokio::test]
async fn start_moves_a_shared_storage_definition_but_not_a_local_one() {
    let directory = tempfile::tempdir().unwrap();
    let driver = two_hosts(directory.path());

    driver.start_vm("cache1", "h1").await.unwrap();
    driver.start_vm("cache1", "h1").await.unwrap();
    let discovered = driver.discover().await.unwrap();
    let on_h1: Vec<&str> = discovered
        .vms
        .iter()
        .filter(|v| v.host.index() == 0)
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(on_h1, vec!["cache1", "db1", "web1"]);
    let cache1 = discovered.vms.iter().find(|v| v.name == "cache1").unwrap();
    assert_eq!(cache1.state, VmState::Running);

    driver
        .shutdown_vm("web1", "h1", Duration::from_secs(1))
        .await
        .unwrap();
    let local = driver.start_vm("web1", "h2").await.unwrap_err();
    assert_eq!(
        local,
        DriverError::Refused("VM web1 has local disks on h1 (vda): it can only start there".into())
    );
    driver.start_vm("web1", "h1").await.unwrap();

    let running_elsewhere = driver.start_vm("db1", "h2").await.unwrap_err();
    assert_eq!(
        running_elsewhere,
        DriverError::Refused("VM db1 already runs on h1".into())
    );
    let missing = driver.start_vm("ghost", "h2").await.unwrap_err();
    assert_eq!(
        missing,
        DriverError::NotFound("VM ghost is defined on no host".into())
    );
}

#[tokio::test]
async fn migrate_observes_before_it_acts() {
    let directory = tempfile::tempdir().unwrap();
    let driver = two_hosts(directory.path());
    driver.start_vm("cache1", "h2").await.unwrap();
    // Already running on the destination: done without a migration.
    driver.migrate("cache1", "h1", "h2").await.unwrap();
    assert_eq!(
        driver.migrate("ghost", "h1", "h2").await.unwrap_err(),
        DriverError::NotFound("VM ghost is not on host h1".into())
    );
    driver
        .shutdown_vm("web1", "h1", Duration::from_secs(1))
        .await
        .unwrap();
    let stopped = driver.migrate("web1", "h1", "h2").await.unwrap_err();
    assert!(matches!(stopped, DriverError::Refused(text) if text.contains("not running on h1")));
    assert_eq!(
        driver.migrate("web1", "h1", "h9").await.unwrap_err(),
        DriverError::NotFound("host h9".into())
    );
}

#[tokio::test]
async fn an_unreachable_host_is_down_and_all_unreachable_is_an_error() {
    let directory = tempfile::tempdir().unwrap();
    let h1 = host_file(directory.path(), "h1", &[domain("web1", 64, true, "", "")]);
    let missing = format!("test://{}/absent.xml", directory.path().display());
    let driver = LibvirtDriver::new(config(&[("h1", h1), ("h2", missing.clone())], &[])).unwrap();
    let discovered = driver.discover().await.unwrap();
    assert_eq!(discovered.hosts[0].state, HostState::Up);
    assert_eq!(discovered.hosts[1].state, HostState::Down);
    assert_eq!(
        discovered.hosts[1].memory_mib, 4096,
        "the inventory's numbers"
    );
    assert!(matches!(
        driver.health_check("h2").await.unwrap_err(),
        DriverError::Unreachable { host, .. } if host == "h2"
    ));

    let nothing_answers =
        LibvirtDriver::new(config(&[("h1", missing.clone()), ("h2", missing)], &[])).unwrap();
    assert!(matches!(
        nothing_answers.discover().await.unwrap_err(),
        DriverError::Unreachable { .. }
    ));
}

#[tokio::test]
async fn bad_metadata_fails_discovery_unless_the_inventory_lists_the_vm() {
    let directory = tempfile::tempdir().unwrap();
    let typo = format!(r#"<drover:vm {DROVER_NAMESPACE} migrateable="false"/>"#);
    let listed = host_file(
        directory.path(),
        "h1",
        &[domain("db1", 64, true, &typo, "")],
    );
    let h2 = host_file(directory.path(), "h2", &[]);
    let driver = LibvirtDriver::new(config(&[("h1", listed), ("h2", h2.clone())], &[])).unwrap();
    assert!(driver.discover().await.unwrap().vms[0].migratable);

    let unlisted = host_file(
        directory.path(),
        "h1b",
        &[domain("web9", 64, true, &typo, "")],
    );
    let driver = LibvirtDriver::new(config(&[("h1", unlisted), ("h2", h2)], &[])).unwrap();
    let DriverError::Failed(message) = driver.discover().await.unwrap_err() else {
        panic!("bad metadata is a plain failure");
    };
    assert!(
        message.starts_with(
            "VM web9 on host h1: Drover metadata has unknown attribute \"migrateable\""
        ),
        "{message}"
    );
}

/// Host facts read from `DIR/facts-HOST`; the upgrade and reboot commands rewrite it and count
/// their runs in `DIR/runs-HOST`.
fn host_step_commands(directory: &Path) -> Vec<(CommandStep, Vec<String>)> {
    let dir = directory.display();
    let facts = format!("{dir}/facts-{{host}}");
    let count = format!("echo run >> {dir}/runs-{{host}}");
    vec![
        (
            CommandStep::HostFacts,
            argv(&["sh", "-c", &format!("cat {facts}")]),
        ),
        (
            CommandStep::Upgrade,
            argv(&[
                "sh",
                "-c",
                &format!("{count}; sed -i s/^version=.*/version={{target}}/ {facts}"),
            ]),
        ),
        (
            CommandStep::Reboot,
            argv(&[
                "sh",
                "-c",
                &format!("{count}; sed -i s/^boot_id=.*/boot_id=second/ {facts}"),
            ]),
        ),
        (
            CommandStep::HealthCheck,
            argv(&["sh", "-c", &format!("test -e {dir}/healthy-{{host}}")]),
        ),
    ]
}

fn runs(directory: &Path, host: &str) -> usize {
    std::fs::read_to_string(directory.join(format!("runs-{host}")))
        .map_or(0, |text| text.lines().count())
}

#[tokio::test]
async fn host_steps_run_the_configured_commands_and_skip_what_is_done() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path();
    let h1 = host_file(path, "h1", &[]);
    let h2 = host_file(path, "h2", &[]);
    std::fs::write(path.join("facts-h1"), "version=1.0\nboot_id=first\n").unwrap();
    let driver =
        LibvirtDriver::new(config(&[("h1", h1), ("h2", h2)], &host_step_commands(path))).unwrap();

    let facts = driver.host_facts("h1").await.unwrap();
    assert_eq!(
        (facts.version.as_str(), facts.boot_id.as_str()),
        ("1.0", "first")
    );
    let discovered = driver.discover().await.unwrap();
    assert_eq!(discovered.hosts[0].version.as_str(), "1.0");
    assert_eq!(
        discovered.hosts[1].state,
        HostState::Down,
        "h2 has no facts"
    );

    let target = "2.0".parse().unwrap();
    driver.upgrade("h1", &target).await.unwrap();
    driver.upgrade("h1", &target).await.unwrap();
    assert_eq!(runs(path, "h1"), 1, "the second upgrade saw the target");
    assert_eq!(
        driver.host_facts("h1").await.unwrap().version.as_str(),
        "2.0"
    );

    driver.reboot("h1", "first").await.unwrap();
    driver.reboot("h1", "first").await.unwrap();
    assert_eq!(runs(path, "h1"), 2, "the second reboot saw the new boot id");
    assert_eq!(driver.host_facts("h1").await.unwrap().boot_id, "second");

    assert!(matches!(
        driver.health_check("h1").await,
        Err(DriverError::Failed(_))
    ));
    std::fs::write(path.join("healthy-h1"), "").unwrap();
    driver.health_check("h1").await.unwrap();
}

#[tokio::test]
async fn a_reboot_that_changes_nothing_times_out() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path();
    let h1 = host_file(path, "h1", &[]);
    std::fs::write(path.join("facts-h1"), "version=1.0\nboot_id=first\n").unwrap();
    let mut commands = host_step_commands(path);
    commands.retain(|(step, _)| *step != CommandStep::Reboot);
    commands.push((CommandStep::Reboot, argv(&["true"])));
    let mut config = config(&[("h1", h1)], &commands);
    config.known.hosts.truncate(1);
    config.reboot_timeout = Duration::from_secs(2);
    let driver = LibvirtDriver::new(config).unwrap();
    let DriverError::Failed(message) = driver.reboot("h1", "first").await.unwrap_err() else {
        panic!("a reboot that never happens is a failure");
    };
    assert!(
        message.starts_with("host h1 did not come back with a new boot id within 2 s"),
        "{message}"
    );
}

#[tokio::test]
async fn without_commands_upgrade_and_reboot_are_not_configured() {
    let directory = tempfile::tempdir().unwrap();
    let driver = two_hosts(directory.path());
    let target = "2.0".parse().unwrap();
    assert_eq!(
        driver.upgrade("h1", &target).await.unwrap_err(),
        DriverError::Failed(
            "upgrade is not configured for the libvirt driver: add driver.commands.upgrade".into()
        )
    );
    assert!(matches!(
        driver.reboot("h1", "x").await.unwrap_err(),
        DriverError::Failed(text) if text.starts_with("reboot is not configured")
    ));
}

#[test]
fn bad_configs_are_refused_when_the_driver_is_built() {
    let uri = || "test:///default".to_string();
    let both = || [("h1", uri()), ("h2", uri())];
    let refusal = |config: LibvirtDriverConfig| LibvirtDriver::new(config).err().unwrap();

    let migrate_command = config(&both(), &[(CommandStep::Migrate, argv(&["virsh"]))]);
    assert_eq!(
        refusal(migrate_command),
        LibvirtError::StepNotCommandable {
            step: "migrate".into()
        }
    );
    let reboot_alone = config(&both(), &[(CommandStep::Reboot, argv(&["reboot-host"]))]);
    assert_eq!(refusal(reboot_alone), LibvirtError::RebootWithoutHostFacts);
    let mut raise_without_command = config(&both(), &[]);
    raise_without_command
        .known
        .policy
        .raise_compatibility_level_to = Some("4.14".into());
    assert_eq!(
        refusal(raise_without_command),
        LibvirtError::CompatibilityLevelWithoutCommand {
            level: "4.14".into()
        }
    );
    let bad_placeholder = config(
        &both(),
        &[(CommandStep::HostFacts, argv(&["facts", "{vm}"]))],
    );
    assert!(matches!(refusal(bad_placeholder), LibvirtError::Command(_)));
    assert_eq!(
        refusal(config(&[("h1", uri())], &[])),
        LibvirtError::HostWithoutUri { host: "h2".into() }
    );
    let mut no_hosts = config(&[], &[]);
    no_hosts.known.hosts.clear();
    assert_eq!(refusal(no_hosts), LibvirtError::NoHosts);
    let mut zero = config(&both(), &[]);
    zero.call_timeout = Duration::ZERO;
    assert_eq!(
        refusal(zero),
        LibvirtError::ZeroTimeout {
            what: "call timeout"
        }
    );
}

#[tokio::test]
async fn a_definition_left_behind_is_reported_once_and_never_started_twice() {
    let directory = tempfile::tempdir().unwrap();
    let h1 = host_file(directory.path(), "h1", &[domain("app1", 64, true, "", "")]);
    let h2 = host_file(directory.path(), "h2", &[domain("app1", 64, false, "", "")]);
    let driver = LibvirtDriver::new(config(&[("h1", h1), ("h2", h2)], &[])).unwrap();

    let discovered = driver.discover().await.unwrap();
    assert_eq!(discovered.vms.len(), 1);
    assert_eq!(discovered.vms[0].host.index(), 0);
    assert_eq!(discovered.vms[0].state, VmState::Running);

    assert_eq!(
        driver.start_vm("app1", "h2").await.unwrap_err(),
        DriverError::Refused("VM app1 already runs on h1".into())
    );
}
