//! The driver against real libvirtd + QEMU hosts (two at least), e.g. the harness in
//! `tests/libvirt/`:
//!
//! ```text
//! tests/libvirt/hosts.sh up 2
//! DROVER_LIBVIRT_HOSTS=h1=qemu+tcp://10.213.0.11/system,h2=qemu+tcp://10.213.0.12/system \
//! DROVER_LIBVIRT_HARNESS=tests/libvirt \
//!     cargo test -p drover-libvirt --test real_hosts -- --nocapture
//! tests/libvirt/hosts.sh down
//! ```
//!
//! Without `DROVER_LIBVIRT_HOSTS` the test says it was skipped and passes. With
//! `DROVER_LIBVIRT_HARNESS` (the harness directory) it also runs the harness's step scripts as
//! the `host_facts`, `upgrade` and `reboot` commands and reboots the second host, and, when the
//! harness's Linux guest is built (`guest/build.sh`; found in `$DROVER_LIBVIRT_CACHE/guest` or
//! the harness's `.cache/guest`), aborts migrations of a busy Linux guest (at the deadline and
//! when the call is dropped) and shuts it down gracefully.
//!
//! It defines its own guests (`<domain type='qemu'>`, TCG), named after the process id so runs
//! never collide, and removes them from every host at the end, even when it fails. It prints the
//! wall time of each step it measures.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drover_core::{Cluster, HostState, RestartPolicy, VmState};
use drover_driver::{Driver, DriverError};
use drover_libvirt::{LibvirtDriver, LibvirtDriverConfig};
use drover_schema::inventory::{CommandStep, LibvirtHost};
use virt::connect::Connect;

const HOSTS_VARIABLE: &str = "DROVER_LIBVIRT_HOSTS";
const HARNESS_VARIABLE: &str = "DROVER_LIBVIRT_HARNESS";
const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(2);

/// `h1=URI,h2=URI` → `[(h1, URI), (h2, URI)]`.
fn hosts_from(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (name, uri) = entry
                .split_once('=')
                .unwrap_or_else(|| panic!("{HOSTS_VARIABLE}: {entry:?} is not NAME=URI"));
            (name.trim().to_string(), uri.trim().to_string())
        })
        .collect()
}

/// The host part of a URI (`qemu+tcp://10.213.0.11/system` → `10.213.0.11`).
fn address_of(uri: &str) -> String {
    let after_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    after_scheme.split('/').next().unwrap_or("").to_string()
}

fn inventory(hosts: &[(String, String)]) -> Cluster {
    let entries: String = hosts
        .iter()
        .map(|(name, _)| {
            format!("  - {{name: {name}, version: \"1.0\", memory_mib: 8192, cpus: 2}}\n")
        })
        .collect();
    let text = format!("cluster: {{name: real, target_version: \"9.9\"}}\nhosts:\n{entries}");
    drover_schema::parse_inventory(&text, "real.yaml").expect("the generated inventory is valid")
}

fn harness_commands(harness: &Path) -> Vec<(CommandStep, Vec<String>)> {
    let script = |name: &str| harness.join("steps").join(name).display().to_string();
    let argv = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect();
    vec![
        (
            CommandStep::HostFacts,
            argv(&[&script("facts.sh"), "{host}"]),
        ),
        (
            CommandStep::Upgrade,
            argv(&[&script("upgrade.sh"), "{host}", "{target}"]),
        ),
        (
            CommandStep::Reboot,
            argv(&[&script("reboot.sh"), "{host}", "{boot_id_before}"]),
        ),
    ]
}

fn config(
    hosts: &[(String, String)],
    commands: Vec<(CommandStep, Vec<String>)>,
) -> LibvirtDriverConfig {
    let libvirt_hosts = hosts
        .iter()
        .map(|(name, uri)| {
            let host = LibvirtHost {
                uri: uri.clone(),
                address: address_of(uri),
            };
            (name.clone(), host)
        })
        .collect();
    LibvirtDriverConfig {
        hosts: libvirt_hosts,
        commands: commands.into_iter().collect(),
        known: inventory(hosts),
        migration_bandwidth_mib_per_sec: None,
        shared_storage_path_prefixes: Vec::new(),
        marks_file: None,
        upgrade_plans: Default::default(),
        connect_timeout: Duration::from_secs(10),
        call_timeout: Duration::from_secs(30),
        migration_timeout: Duration::from_secs(120),
        step_timeout: Duration::from_secs(60),
        upgrade_timeout: Duration::from_secs(120),
        reboot_timeout: Duration::from_secs(120),
    }
}

/// A no-OS guest: SeaBIOS finds nothing to boot and the guest ignores ACPI shutdown.
fn tiny_guest_xml(name: &str, metadata: &str, devices: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <metadata>{metadata}</metadata>\
         <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>\
         <features><acpi/></features>\
         <cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model></cpu>\
         <clock offset='utc'/>\
         <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>\
         <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>{devices}\
         <serial type='pty'><target port='0'/></serial><memballoon model='none'/></devices></domain>"
    )
}

/// The harness's busybox Linux guest: powers off on ACPI, rewrites `dirty_mib` MiB of its RAM
/// continuously, logs to `serial`.
fn linux_guest_xml(name: &str, guest_directory: &Path, serial: &Path, dirty_mib: u32) -> String {
    let kernel = guest_directory.join("vmlinuz");
    let initrd = guest_directory.join("initramfs.gz");
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{}</kernel><initrd>{}</initrd>\
         <cmdline>console=ttyS0 quiet panic=-1 drover.name={name} dirty={dirty_mib}</cmdline></os>\
         <features><acpi/><tcg><tb-cache unit='MiB'>16</tb-cache></tcg></features>\
         <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>\
         <clock offset='utc'/>\
         <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>\
         <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>\
         <serial type='file'><source path='{}' append='on'/><target port='0'/></serial>\
         <controller type='usb' model='none'/><memballoon model='none'/></devices></domain>",
        kernel.display(),
        initrd.display(),
        serial.display()
    )
}

/// The built Linux guest of the harness, if any.
fn linux_guest_directory(harness: &Path) -> Option<PathBuf> {
    let cache = std::env::var_os("DROVER_LIBVIRT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| harness.join(".cache"));
    let directory = cache.join("guest");
    directory.join("vmlinuz").exists().then_some(directory)
}

fn local_disk_xml(path: &Path) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{}'/><target dev='vda' bus='virtio'/></disk>",
        path.display()
    )
}

fn define_and_start(uri: &str, xml: &str) {
    let connect = Connect::open(Some(uri)).expect("the test host answers");
    let domain = connect
        .define_domain_xml(xml)
        .expect("the test guest is defined");
    domain.create().expect("the test guest starts");
}

/// Whether `vm` is defined on the host and whether it is active.
fn presence(uri: &str, vm: &str) -> Option<bool> {
    let connect = Connect::open(Some(uri)).ok()?;
    let domain = connect.lookup_domain_by_name(vm).ok()?;
    domain.is_active().ok()
}

/// Removes the test's guests from every host and its disk, even when the test fails.
struct Cleanup {
    uris: Vec<String>,
    guests: Vec<String>,
    directory: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for uri in &self.uris {
            let Ok(connect) = Connect::open(Some(uri)) else {
                continue;
            };
            for guest in &self.guests {
                if let Ok(domain) = connect.lookup_domain_by_name(guest) {
                    let _ = domain.destroy();
                    let _ = domain.undefine();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn report(step: &str, started: Instant) {
    println!("real_hosts: {step}: {} ms", started.elapsed().as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_hosts_discover_migrate_refuse_shut_down_and_restart() {
    // RUST_LOG=drover_libvirt=debug shows the driver's progress lines.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let Ok(hosts_text) = std::env::var(HOSTS_VARIABLE) else {
        println!("real_hosts: skipped (set {HOSTS_VARIABLE}=h1=URI,h2=URI to run against real libvirt hosts)");
        return;
    };
    let hosts = hosts_from(&hosts_text);
    assert!(
        hosts.len() >= 2,
        "{HOSTS_VARIABLE} must name two hosts at least"
    );
    let (first, second) = (hosts[0].clone(), hosts[1].clone());
    let harness = std::env::var_os(HARNESS_VARIABLE).map(PathBuf::from);
    let commands = harness.as_deref().map(harness_commands).unwrap_or_default();

    let run = format!("drv-it-{}", std::process::id());
    let (mobile, pinned, busy) = (
        format!("{run}-mobile"),
        format!("{run}-pinned"),
        format!("{run}-busy"),
    );
    let directory = std::env::temp_dir().join(&run);
    std::fs::create_dir_all(&directory).unwrap();
    let _cleanup = Cleanup {
        uris: hosts.iter().map(|(_, uri)| uri.clone()).collect(),
        guests: vec![mobile.clone(), pinned.clone(), busy.clone()],
        directory: directory.clone(),
    };
    let busy_serial = directory.join("busy.serial");
    let linux_guest = harness.as_deref().and_then(linux_guest_directory);
    if let Some(guest_directory) = &linux_guest {
        // Defined first, so it boots while the other steps run; on the second host, so the
        // first can enter maintenance.
        let xml = linux_guest_xml(&busy, guest_directory, &busy_serial, 8);
        define_and_start(&second.1, &xml);
    }
    let disk = directory.join("pinned.raw");
    std::fs::File::create(&disk)
        .and_then(|file| file.set_len(16 * 1024 * 1024))
        .unwrap();
    let metadata = r#"<drover:vm xmlns:drover="https://drover.dev/xmlns/vm/1" restart_policy="always" anti_affinity="web"/>"#;
    define_and_start(&first.1, &tiny_guest_xml(&mobile, metadata, ""));
    define_and_start(
        &first.1,
        &tiny_guest_xml(&pinned, "", &local_disk_xml(&disk)),
    );

    let driver = LibvirtDriver::new(config(&hosts, commands)).expect("the config is valid");
    discover_sees_the_guests(&driver, &mobile, &pinned).await;
    live_migration(&driver, &mobile, &first, &second).await;
    local_disk_migration_is_refused(&driver, &pinned, &first.0, &second.0).await;
    maintenance_waits_for_an_empty_host(&driver, &pinned, &first.0).await;
    forced_shutdown_and_start_elsewhere(&driver, &mobile, &first, &second).await;
    match linux_guest {
        Some(_) => {
            aborted_migrations_leave_the_vm_on_its_source(&hosts, &busy, &second, &first).await;
            graceful_shutdown(&driver, &busy, &first.0, &busy_serial).await;
        }
        None => println!(
            "real_hosts: aborted migrations and graceful shutdown skipped (they need the harness's Linux guest: {HARNESS_VARIABLE} and tests/libvirt/guest/build.sh)"
        ),
    }
    if harness.is_some() {
        reboot_and_upgrade(&driver, &second.0).await;
    }
}

async fn discover_sees_the_guests(driver: &LibvirtDriver, mobile: &str, pinned: &str) {
    let started = Instant::now();
    let discovered = driver.discover().await.expect("discovery works");
    report("discover", started);
    assert!(discovered.hosts.iter().all(|h| h.state == HostState::Up));
    assert!(discovered
        .hosts
        .iter()
        .all(|h| h.memory_mib > 0 && h.cpus > 0));
    let vm = |name: &str| {
        discovered
            .vms
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("{name} discovered"))
            .clone()
    };
    let (mobile, pinned) = (vm(mobile), vm(pinned));
    assert_eq!((mobile.host.index(), mobile.state), (0, VmState::Running));
    assert_eq!(mobile.memory_mib, 64);
    assert!(!mobile.local_storage && mobile.migratable);
    assert_eq!(mobile.restart_policy, RestartPolicy::Always);
    assert_eq!(mobile.anti_affinity.as_deref(), Some("web"));
    assert!(pinned.local_storage);
    assert_eq!(pinned.anti_affinity, None);
}

async fn live_migration(
    driver: &LibvirtDriver,
    vm: &str,
    first: &(String, String),
    second: &(String, String),
) {
    let started = Instant::now();
    driver
        .migrate(vm, &first.0, &second.0)
        .await
        .expect("the live migration succeeds");
    report("live migration of a 64 MiB guest", started);
    assert_eq!(
        presence(&second.1, vm),
        Some(true),
        "runs on the destination"
    );
    assert_eq!(presence(&first.1, vm), None, "undefined on the source");
    let started = Instant::now();
    driver.migrate(vm, &first.0, &second.0).await.unwrap();
    report("repeated migration (observed, nothing done)", started);
}

async fn local_disk_migration_is_refused(driver: &LibvirtDriver, vm: &str, from: &str, to: &str) {
    let started = Instant::now();
    let refused = driver.migrate(vm, from, to).await.unwrap_err();
    report("refused local-disk migration", started);
    assert!(
        matches!(&refused, DriverError::Refused(text) if text.contains("shared storage")),
        "{refused:?}"
    );
}

async fn maintenance_waits_for_an_empty_host(driver: &LibvirtDriver, pinned: &str, host: &str) {
    let refused = driver.set_maintenance(host, true).await.unwrap_err();
    assert!(matches!(&refused, DriverError::Refused(text) if text.contains(pinned)));
    let started = Instant::now();
    let observed = driver
        .shutdown_vm(pinned, host, GRACEFUL_TIMEOUT)
        .await
        .unwrap();
    report(
        "shutdown of a no-OS guest (2 s graceful, then forced)",
        started,
    );
    assert!(observed.forced, "a guest without an OS ignores ACPI");
    let again = driver
        .shutdown_vm(pinned, host, GRACEFUL_TIMEOUT)
        .await
        .unwrap();
    assert!(!again.forced);
    driver.set_maintenance(host, true).await.unwrap();
    assert!(driver.host_facts(host).await.unwrap().in_maintenance);
    driver.set_maintenance(host, false).await.unwrap();
    driver.start_vm(pinned, host).await.unwrap();
}

async fn forced_shutdown_and_start_elsewhere(
    driver: &LibvirtDriver,
    vm: &str,
    first: &(String, String),
    second: &(String, String),
) {
    let observed = driver
        .shutdown_vm(vm, &second.0, GRACEFUL_TIMEOUT)
        .await
        .unwrap();
    assert!(observed.forced);
    let started = Instant::now();
    driver.start_vm(vm, &first.0).await.unwrap();
    report("start on another host (definition moved)", started);
    assert_eq!(presence(&first.1, vm), Some(true));
    assert_eq!(presence(&second.1, vm), None);
    driver.start_vm(vm, &first.0).await.unwrap();
}

/// A busy guest's migration throttled to 1 MiB/s cannot finish in 1 s: the driver aborts it at
/// its deadline, and a guard aborts one whose call is dropped.
async fn aborted_migrations_leave_the_vm_on_its_source(
    hosts: &[(String, String)],
    vm: &str,
    first: &(String, String),
    second: &(String, String),
) {
    let mut slow = config(hosts, Vec::new());
    slow.migration_bandwidth_mib_per_sec = Some(1);
    slow.migration_timeout = Duration::from_secs(1);
    let driver = LibvirtDriver::new(slow).unwrap();
    let started = Instant::now();
    let timed_out = driver.migrate(vm, &first.0, &second.0).await.unwrap_err();
    report("migration aborted at its 1 s deadline", started);
    assert!(
        matches!(&timed_out, DriverError::Failed(text) if text.contains("was aborted")),
        "{timed_out:?}"
    );
    assert_eq!(presence(&first.1, vm), Some(true));
    assert_eq!(presence(&second.1, vm), None);

    let dropped = tokio::time::timeout(
        Duration::from_millis(500),
        driver.migrate(vm, &first.0, &second.0),
    )
    .await;
    assert!(dropped.is_err(), "the throttled migration is still running");
    let settled = wait_for(Duration::from_secs(30), || {
        presence(&first.1, vm) == Some(true) && presence(&second.1, vm).is_none()
    })
    .await;
    assert!(
        settled,
        "the dropped migration was aborted; the VM stays on its source"
    );
    let fast = LibvirtDriver::new(config(hosts, Vec::new())).unwrap();
    let started = Instant::now();
    fast.migrate(vm, &first.0, &second.0)
        .await
        .expect("a migration after the aborted ones succeeds");
    report(
        "live migration of a busy 128 MiB Linux guest (8 MiB dirtied)",
        started,
    );
}

/// The Linux guest powers off on ACPI once it has booted (its first heartbeat).
async fn graceful_shutdown(driver: &LibvirtDriver, vm: &str, host: &str, serial: &Path) {
    let booted = wait_for(Duration::from_secs(60), || {
        std::fs::read_to_string(serial).is_ok_and(|log| log.contains("HB "))
    })
    .await;
    assert!(booted, "the Linux guest printed a heartbeat");
    let started = Instant::now();
    let observed = driver
        .shutdown_vm(vm, host, Duration::from_secs(30))
        .await
        .unwrap();
    report("graceful ACPI shutdown of a Linux guest", started);
    assert!(!observed.forced);
}

async fn wait_for(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        // Give the abort thread time to run before looking.
        tokio::time::sleep(Duration::from_millis(500)).await;
        if condition() {
            return true;
        }
    }
    false
}

async fn reboot_and_upgrade(driver: &LibvirtDriver, host: &str) {
    let before = driver.host_facts(host).await.unwrap();
    let started = Instant::now();
    driver.reboot(host, &before.boot_id).await.unwrap();
    report("reboot through the harness command", started);
    let after = driver.host_facts(host).await.unwrap();
    assert_ne!(after.boot_id, before.boot_id);
    driver.reboot(host, &before.boot_id).await.unwrap();
    driver.health_check(host).await.unwrap();

    let target = format!("{}.1", before.version).parse().unwrap();
    let started = Instant::now();
    driver.upgrade(host, &target).await.unwrap();
    report("upgrade through the harness command", started);
    assert_eq!(driver.host_facts(host).await.unwrap().version, target);
    let discovered = driver.discover().await.unwrap();
    let upgraded = discovered.hosts.iter().find(|h| h.name == host).unwrap();
    assert_eq!(upgraded.version, target);
}
