//! The driver conformance suite (`drover-conformance`) against real libvirtd + QEMU hosts (two
//! at least), e.g. the harness in `tests/libvirt/`, gated like `real_hosts.rs`:
//!
//! ```text
//! tests/libvirt/hosts.sh up 2
//! DROVER_LIBVIRT_HOSTS=h1=qemu+tcp://10.213.0.11/system,h2=qemu+tcp://10.213.0.12/system \
//! DROVER_LIBVIRT_HARNESS=tests/libvirt \
//!     cargo test -p drover-libvirt --test conformance -- --nocapture
//! tests/libvirt/hosts.sh down
//! ```
//!
//! Without `DROVER_LIBVIRT_HOSTS` the test says it was skipped and passes. With
//! `DROVER_LIBVIRT_HARNESS` (the harness directory) the harness's step scripts are the
//! `host_facts`, `upgrade` and `reboot` commands, and the upgrade check runs on the first host;
//! without it that check is opted out (libvirt knows no platform version to install nor a boot
//! id). The compatibility level is always opted out: libvirt has none and the harness has no
//! command for it.
//!
//! It defines two no-OS guests (`<domain type='qemu'>`, TCG), named after the process id so runs
//! never collide: one on the first host (migrated to the second, which empties the first for
//! maintenance and the upgrade), one on the second (shut down, forced after 2 s, and started
//! again). It removes them from every host at the end, even when it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drover_conformance::{
    CallTimeouts, Check, CompatibilityFixture, Fixture, MigrationFixture, OptOut, PowerFixture,
    UpgradeFixture,
};
use drover_core::{Cluster, Version};
use drover_driver::Driver;
use drover_libvirt::{LibvirtDriver, LibvirtDriverConfig};
use drover_schema::inventory::{CommandStep, LibvirtHost};
use virt::connect::Connect;

const HOSTS_VARIABLE: &str = "DROVER_LIBVIRT_HOSTS";
const HARNESS_VARIABLE: &str = "DROVER_LIBVIRT_HARNESS";
const CLUSTER: &str = "real";

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
    let text = format!("cluster: {{name: {CLUSTER}, target_version: \"9.9\"}}\nhosts:\n{entries}");
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
fn tiny_guest_xml(name: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>\
         <features><acpi/></features>\
         <cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model></cpu>\
         <clock offset='utc'/>\
         <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>\
         <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>\
         <serial type='pty'><target port='0'/></serial><memballoon model='none'/></devices></domain>"
    )
}

fn define_and_start(uri: &str, xml: &str) {
    let connect = Connect::open(Some(uri)).expect("the test host answers");
    let domain = connect
        .define_domain_xml(xml)
        .expect("the test guest is defined");
    domain.create().expect("the test guest starts");
}

/// Removes the test's guests from every host, even when the test fails.
struct Cleanup {
    uris: Vec<String>,
    guests: Vec<String>,
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
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_hosts_pass_the_conformance_suite() {
    let Ok(hosts_text) = std::env::var(HOSTS_VARIABLE) else {
        println!("conformance: skipped (set {HOSTS_VARIABLE}=h1=URI,h2=URI to run against real libvirt hosts)");
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

    let run = format!("drv-conf-{}", std::process::id());
    let (mobile, steady) = (format!("{run}-mobile"), format!("{run}-steady"));
    let _cleanup = Cleanup {
        uris: hosts.iter().map(|(_, uri)| uri.clone()).collect(),
        guests: vec![mobile.clone(), steady.clone()],
    };
    define_and_start(&first.1, &tiny_guest_xml(&mobile));
    define_and_start(&second.1, &tiny_guest_xml(&steady));

    let driver = LibvirtDriver::new(config(&hosts, commands)).expect("the config is valid");
    let version_before = driver
        .host_facts(&first.0)
        .await
        .expect("the first host answers")
        .version;
    let mut opt_outs = vec![OptOut::new(
        Check::CompatibilityLevelIsIdempotent,
        "libvirt has no cluster compatibility level, and the harness has no \
         set_compatibility_level command",
    )];
    if harness.is_none() {
        opt_outs.push(OptOut::new(
            Check::UpgradeThenRebootChangeVersionAndBootIdOnce,
            format!(
                "no {HARNESS_VARIABLE}: libvirt knows no platform version to install nor a boot \
                 id; the harness's facts, upgrade and reboot scripts provide them"
            ),
        ));
    }
    let fixture = Fixture {
        platform: format!("{} real libvirt hosts", hosts.len()),
        healthy_hosts: hosts.iter().map(|(name, _)| name.clone()).collect(),
        cordon_host: second.0.clone(),
        migration: MigrationFixture {
            vm: mobile.clone(),
            from: first.0.clone(),
            to: second.0.clone(),
        },
        power: PowerFixture {
            vm: steady.clone(),
            host: second.0.clone(),
            // The no-OS guest ignores ACPI: forced off after this.
            graceful_timeout: Duration::from_secs(2),
        },
        maintenance_host: first.0.clone(),
        compatibility: CompatibilityFixture {
            cluster: CLUSTER.into(),
            level: "1.0".into(),
        },
        upgrade: UpgradeFixture {
            host: first.0.clone(),
            target: next_version(&version_before),
        },
        // The driver's own bounds: connect 10 s + call 30 s; migration, upgrade and reboot
        // 120 s each, plus the commands' own time.
        timeouts: CallTimeouts {
            call: Duration::from_secs(60),
            slow_call: Duration::from_secs(300),
            repeated_call: Duration::from_secs(15),
        },
        opt_outs,
    };
    let report = drover_conformance::run_all(&driver, &fixture).await;
    assert_eq!(report.driver_kind, "libvirt");
    assert_eq!(
        report.passed().len() + report.opted_out().len(),
        Check::ALL.len()
    );
}

/// The version the harness's upgrade installs next: `1.0` → `1.0.1`.
fn next_version(version: &Version) -> Version {
    format!("{version}.1")
        .parse()
        .expect("a version with one more number is a version")
}
