//! `CommandDriver` with small real commands: which values each step gets, the output contracts,
//! steps without a command, Drover's own cordons, and configuration checked up front.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{argv, config, driver, script_with_args};
use drover_command::{CommandDriver, CommandError};
use drover_core::{HostState, VmState};
use drover_driver::{Driver, DriverError};
use drover_schema::inventory::CommandStep;

/// A command that appends its step name and arguments (one per line) to `log`.
fn logging(log: &Path, step: &str, placeholders: &[&str]) -> Vec<String> {
    let script = format!("printf '%s\\n' \"$*\" >> {}", log.display());
    let mut arguments = vec![step];
    arguments.extend_from_slice(placeholders);
    script_with_args(&script, &arguments)
}

fn failed_text(error: DriverError) -> String {
    match error {
        DriverError::Failed(text) => text,
        other => panic!("expected a plain failure, got {other:?}"),
    }
}

/// Braces are doubled: a single `{` starts a placeholder.
const FACTS_JSON: &str =
    r#"echo '{{"version": "8.2.1", "boot_id": "boot-2", "in_maintenance": true}}'"#;

#[tokio::test]
async fn every_step_gets_its_values() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log");
    let host = ["{host}", "{host.address}", "{cluster}"];
    let commands = [
        (CommandStep::HealthCheck, logging(&log, "health", &host)),
        (CommandStep::Cordon, logging(&log, "cordon", &host)),
        (CommandStep::Uncordon, logging(&log, "uncordon", &host)),
        (CommandStep::EnterMaintenance, logging(&log, "enter", &host)),
        (CommandStep::ExitMaintenance, logging(&log, "exit", &host)),
        (
            CommandStep::Migrate,
            logging(
                &log,
                "migrate",
                &[
                    "{vm}",
                    "{from}",
                    "{to}",
                    "{to.address}",
                    "{host}",
                    "{host.address}",
                ],
            ),
        ),
        (
            CommandStep::ShutdownVm,
            logging(
                &log,
                "shutdown",
                &["{vm}", "{host}", "{graceful_timeout_secs}"],
            ),
        ),
        (
            CommandStep::StartVm,
            logging(&log, "start", &["{vm}", "{host}"]),
        ),
        (
            CommandStep::Upgrade,
            logging(&log, "upgrade", &["{host}", "{target}"]),
        ),
        (
            CommandStep::Reboot,
            logging(&log, "reboot", &["{host}", "{boot_id_before}"]),
        ),
        (
            CommandStep::SetCompatibilityLevel,
            logging(&log, "level", &["{cluster}", "{level}"]),
        ),
    ];
    let mut config = config(&commands);
    config.host_addresses = [
        ("xs01".to_string(), "10.0.0.1".to_string()),
        ("xs02".to_string(), "10.0.0.2".to_string()),
    ]
    .into();
    let driver = CommandDriver::new(config).unwrap();
    driver.health_check("xs01").await.unwrap();
    driver.set_allocation("xs01", false).await.unwrap();
    driver.set_allocation("xs01", true).await.unwrap();
    driver.set_maintenance("xs02", true).await.unwrap();
    driver.set_maintenance("xs02", false).await.unwrap();
    driver.migrate("web 01", "xs01", "xs02").await.unwrap();
    let observed = driver
        .shutdown_vm("web 01", "xs02", Duration::from_millis(90_500))
        .await
        .unwrap();
    assert!(!observed.forced);
    driver.start_vm("web 01", "xs02").await.unwrap();
    driver
        .upgrade("xs01", &"8.2.1".parse().unwrap())
        .await
        .unwrap();
    driver.reboot("xs01", "boot-1").await.unwrap();
    driver
        .set_compatibility_level("pool-a", "4.14")
        .await
        .unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        logged.lines().collect::<Vec<_>>(),
        vec![
            "health xs01 10.0.0.1 pool-a",
            "cordon xs01 10.0.0.1 pool-a",
            "uncordon xs01 10.0.0.1 pool-a",
            "enter xs02 10.0.0.2 pool-a",
            "exit xs02 10.0.0.2 pool-a",
            "migrate web 01 xs01 xs02 10.0.0.2 xs01 10.0.0.1",
            "shutdown web 01 xs02 91",
            "start web 01 xs02",
            "upgrade xs01 8.2.1",
            "reboot xs01 boot-1",
            "level pool-a 4.14",
        ]
    );
}

#[tokio::test]
async fn a_host_without_an_address_is_reached_by_its_name() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log");
    let driver = driver(&[(
        CommandStep::HealthCheck,
        logging(&log, "health", &["{host.address}"]),
    )]);
    driver.health_check("xs02").await.unwrap();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "health xs02\n");
}

#[tokio::test]
async fn host_facts_read_json_and_key_values() {
    let json = driver(&[(CommandStep::HostFacts, argv(&["sh", "-c", FACTS_JSON]))]);
    let facts = json.host_facts("xs01").await.unwrap();
    assert_eq!(facts.version.as_str(), "8.2.1");
    assert_eq!(facts.boot_id, "boot-2");
    assert!(facts.in_maintenance && !facts.cordoned);
    let key_values = driver(&[(
        CommandStep::HostFacts,
        argv(&[
            "printf",
            "version=8.0.0\\nboot_id=b-{host}\\ncordoned=true\\n",
        ]),
    )]);
    let facts = key_values.host_facts("xs02").await.unwrap();
    assert_eq!(facts.version.as_str(), "8.0.0");
    assert_eq!(facts.boot_id, "b-xs02");
    assert!(!facts.in_maintenance && facts.cordoned);
}

#[tokio::test]
async fn malformed_host_facts_are_a_clear_failure() {
    let driver = driver(&[(CommandStep::HostFacts, argv(&["echo", "version: 8.2.1"]))]);
    let message = failed_text(driver.host_facts("xs01").await.unwrap_err());
    assert!(
        message.starts_with(
            "host_facts (host xs01): program \"echo\" printed line 1 is not key=value: \"version: 8.2.1\"; expected JSON {\"version\""
        ),
        "{message}"
    );
    assert!(
        message.ends_with("last lines of stdout:\n  version: 8.2.1"),
        "{message}"
    );
}

#[tokio::test]
async fn a_step_without_a_command_is_not_configured() {
    let driver = driver(&[]);
    let cases = [
        driver.health_check("xs01").await,
        driver.set_maintenance("xs01", true).await,
        driver.migrate("web-01", "xs01", "xs02").await,
        driver.start_vm("web-01", "xs01").await,
        driver.upgrade("xs01", &"8.2.1".parse().unwrap()).await,
        driver.reboot("xs01", "b").await,
        driver.set_compatibility_level("pool-a", "4.14").await,
    ];
    let steps = [
        "health_check",
        "enter_maintenance",
        "migrate",
        "start_vm",
        "upgrade",
        "reboot",
        "set_compatibility_level",
    ];
    for (result, step) in cases.into_iter().zip(steps) {
        assert_eq!(
            result.unwrap_err(),
            DriverError::Failed(format!(
                "step {step} is not configured for the command driver"
            ))
        );
    }
    assert_eq!(
        driver.host_facts("xs01").await.unwrap_err().to_string(),
        "step host_facts is not configured for the command driver"
    );
    let shutdown = driver
        .shutdown_vm("web-01", "xs01", Duration::from_secs(1))
        .await;
    assert!(shutdown.is_err());
}

#[tokio::test]
async fn cordons_without_a_command_are_drovers_own() {
    let driver = driver(&[(CommandStep::HostFacts, argv(&["sh", "-c", FACTS_JSON]))]);
    driver.set_allocation("xs01", false).await.unwrap();
    assert!(driver.host_facts("xs01").await.unwrap().cordoned);
    assert!(!driver.host_facts("xs02").await.unwrap().cordoned);
    let discovered = driver.discover().await.unwrap();
    assert!(discovered.hosts[0].cordoned && !discovered.hosts[1].cordoned);
    driver.set_allocation("xs01", true).await.unwrap();
    assert!(!driver.host_facts("xs01").await.unwrap().cordoned);
}

#[tokio::test]
async fn discovery_without_commands_is_the_inventory() {
    let driver = driver(&[]);
    let discovered = driver.discover().await.unwrap();
    let inventory = common::cluster();
    assert_eq!(discovered.hosts, inventory.hosts);
    assert_eq!(discovered.vms, inventory.vms);
}

#[tokio::test]
async fn discovery_refreshes_hosts_from_their_facts_and_follows_vm_moves() {
    let facts = "case $1 in xs01) echo 'version=8.2.1'; echo 'boot_id=b1'; echo 'in_maintenance=true';; *) echo unreachable >&2; exit 255;; esac";
    let driver = driver(&[
        (CommandStep::HostFacts, script_with_args(facts, &["{host}"])),
        (CommandStep::Migrate, argv(&["true"])),
        (CommandStep::ShutdownVm, argv(&["true"])),
    ]);
    driver.migrate("web-01", "xs01", "xs02").await.unwrap();
    driver
        .shutdown_vm("db-01", "xs02", Duration::from_secs(1))
        .await
        .unwrap();
    let discovered = driver.discover().await.unwrap();
    let xs01 = &discovered.hosts[0];
    assert_eq!(
        (xs01.version.as_str(), xs01.state),
        ("8.2.1", HostState::Maintenance)
    );
    assert_eq!(discovered.hosts[1].state, HostState::Down);
    assert_eq!(discovered.vms[0].host.index(), 1, "web-01 moved to xs02");
    assert_eq!(
        discovered.vms[1].state,
        VmState::Stopped,
        "db-01 was shut down"
    );
}

#[tokio::test]
async fn discovery_fails_when_no_host_answers() {
    let driver = driver(&[(
        CommandStep::HostFacts,
        argv(&["sh", "-c", "echo 'ssh: permission denied' >&2; exit 255"]),
    )]);
    let message = failed_text(driver.discover().await.unwrap_err());
    assert!(
        message.starts_with("host_facts (host xs01): program \"sh\" exited with code 255")
            && message.contains("ssh: permission denied"),
        "{message}"
    );
}

#[tokio::test]
async fn a_discover_command_prints_the_inventory_entries() {
    let document = r#"printf '%s\n' 'hosts:' '  - {{name: xs01, version: "8.2.1", memory_mib: 1024, cpus: 2, cordoned: true}}' 'vms:' '  - {{name: web-01, host: xs01, memory_mib: 512}}'; echo '# cluster' {cluster}"#;
    let driver = driver(&[(CommandStep::Discover, argv(&["sh", "-c", document]))]);
    let discovered = driver.discover().await.unwrap();
    assert_eq!(discovered.hosts.len(), 1);
    assert!(discovered.hosts[0].cordoned);
    assert_eq!(discovered.vms[0].name, "web-01");
    let broken = driver_with_discover("echo 'hosts: nope'");
    let message = failed_text(broken.discover().await.unwrap_err());
    assert!(
        message.starts_with(
            "discover (cluster pool-a): program \"sh\" printed an unreadable document"
        ),
        "{message}"
    );
}

fn driver_with_discover(script: &str) -> CommandDriver {
    driver(&[(CommandStep::Discover, argv(&["sh", "-c", script]))])
}

#[tokio::test]
async fn upgrade_and_reboot_are_skipped_when_facts_show_them_done() {
    let driver = driver(&[
        (CommandStep::HostFacts, argv(&["sh", "-c", FACTS_JSON])),
        (CommandStep::Upgrade, argv(&["false"])),
        (CommandStep::Reboot, argv(&["false"])),
    ]);
    driver
        .upgrade("xs01", &"8.2.1".parse().unwrap())
        .await
        .unwrap();
    driver
        .upgrade("xs01", &"8.2".parse().unwrap())
        .await
        .unwrap();
    assert!(driver
        .upgrade("xs01", &"8.3".parse().unwrap())
        .await
        .is_err());
    driver.reboot("xs01", "boot-1").await.unwrap();
    assert!(driver.reboot("xs01", "boot-2").await.is_err());
}

#[tokio::test]
async fn a_shutdown_may_report_that_it_forced_the_vm_off() {
    let driver = driver(&[(
        CommandStep::ShutdownVm,
        argv(&["printf", "guest ignored ACPI\\nforced=true\\n"]),
    )]);
    let observed = driver
        .shutdown_vm("web-01", "xs01", Duration::from_secs(1))
        .await
        .unwrap();
    assert!(observed.forced);
}

#[tokio::test]
async fn a_shutdown_gets_its_graceful_timeout_on_top_of_its_own() {
    let mut config = config(&[(CommandStep::ShutdownVm, argv(&["sleep", "1.5"]))]);
    config.step_timeouts = [(CommandStep::ShutdownVm, Duration::from_secs(1))].into();
    let driver = CommandDriver::new(config).unwrap();
    driver
        .shutdown_vm("web-01", "xs01", Duration::from_secs(2))
        .await
        .unwrap();
    let error = driver
        .shutdown_vm("web-01", "xs01", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("timed out after 1 s"), "{error}");
}

#[test]
fn every_configured_step_is_checked_when_the_driver_is_built() {
    let error = CommandDriver::new(config(&[
        (CommandStep::HealthCheck, argv(&["true"])),
        (CommandStep::Upgrade, argv(&["dnf", "upgrade", "{vm}"])),
    ]))
    .err()
    .unwrap();
    assert_eq!(
        error.to_string(),
        "command for step upgrade uses placeholder {vm}, which has no value for this step; this step has: {host}, {host.address}, {target}, {hops}, {hotfixes}, {reboots}, {cluster}"
    );
    let mut with_typo = config(&[]);
    with_typo.host_addresses = [("xs09".to_string(), "10.0.0.9".to_string())].into();
    assert!(matches!(
        CommandDriver::new(with_typo).err().unwrap(),
        CommandError::AddressForUnknownHost { .. }
    ));
    let mut zero = config(&[]);
    zero.step_timeouts = [(CommandStep::Migrate, Duration::ZERO)].into();
    assert_eq!(
        CommandDriver::new(zero).err().unwrap().to_string(),
        "the timeout of step migrate is zero"
    );
}

#[test]
fn a_policy_raising_the_compatibility_level_needs_its_command() {
    let mut without = config(&[]);
    without.known.policy.raise_compatibility_level_to = Some("4.14".into());
    assert_eq!(
        CommandDriver::new(without.clone()).err().unwrap().to_string(),
        "policy.raise_compatibility_level_to is \"4.14\" but the command driver has no set_compatibility_level command: add driver.commands.set_compatibility_level (placeholders {level}, {cluster}) or leave the policy key out"
    );
    let mut with = without;
    with.commands.insert(
        CommandStep::SetCompatibilityLevel,
        argv(&["set-level", "{cluster}", "{level}"]),
    );
    assert!(CommandDriver::new(with).is_ok());
    let error = CommandDriver::new(config(&[(
        CommandStep::SetCompatibilityLevel,
        argv(&["set-level", "{host}"]),
    )]))
    .err()
    .unwrap();
    assert_eq!(
        error.to_string(),
        "command for step set_compatibility_level uses placeholder {host}, which has no value for this step; this step has: {level}, {cluster}"
    );
}

#[test]
fn the_driver_names_itself_and_its_steps() {
    let driver = driver(&[(CommandStep::Upgrade, argv(&["true"]))]);
    assert_eq!(driver.kind(), "command");
    assert_eq!(
        driver.configured_steps().collect::<Vec<_>>(),
        vec![CommandStep::Upgrade]
    );
}

#[tokio::test]
async fn a_hostile_vm_name_reaches_the_command_as_data() {
    let directory = tempfile::tempdir().unwrap();
    let canary = directory.path().join("CANARY");
    let received = directory.path().join("received");
    let script = format!("printf '%s' {{vm}} > {}", received.display());
    let driver = driver(&[(CommandStep::StartVm, argv(&["sh", "-c", &script]))]);
    let hostile = format!(
        "web-01\"; touch {} #'\n$(touch {})",
        canary.display(),
        canary.display()
    );
    driver.start_vm(&hostile, "xs01").await.unwrap();
    assert_eq!(std::fs::read_to_string(&received).unwrap(), hostile);
    assert!(!canary.exists());
}

/// The release catalog's path and hotfixes reach the upgrade command; a host forced for its
/// package updates is upgraded although its facts already show the target.
#[tokio::test]
async fn an_upgrade_gets_its_hops_hotfixes_and_reboots() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log");
    let upgrade = logging(
        &log,
        "upgrade",
        &["{host}", "{target}", "{hops}", "{hotfixes}", "{reboots}"],
    );
    let commands = [
        (CommandStep::HostFacts, argv(&["sh", "-c", FACTS_JSON])),
        (CommandStep::Upgrade, upgrade),
    ];
    let mut config = config(&commands);
    config.upgrade_plans = [
        (
            "xs01".to_string(),
            drover_command::HostUpgradePlan {
                hops: vec!["8.3".into(), "9.0".into()],
                hotfixes: vec!["HF-1403".into(), "HF-1420".into()],
                reboots: 2,
                even_at_target: false,
            },
        ),
        (
            "xs02".to_string(),
            drover_command::HostUpgradePlan {
                even_at_target: true,
                ..Default::default()
            },
        ),
    ]
    .into();
    let driver = CommandDriver::new(config).unwrap();
    driver
        .upgrade("xs01", &"9.0".parse().unwrap())
        .await
        .unwrap();
    // xs02 reports 8.2.1 already: upgraded all the same because it was forced.
    driver
        .upgrade("xs02", &"8.2.1".parse().unwrap())
        .await
        .unwrap();
    // A host without a plan at the target is left alone (idempotent).
    driver
        .upgrade("xs03", &"8.2.1".parse().unwrap())
        .await
        .unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        logged.lines().collect::<Vec<_>>(),
        vec![
            "upgrade xs01 9.0 8.3,9.0 HF-1403,HF-1420 2",
            "upgrade xs02 8.2.1 8.2.1  0",
        ]
    );
}
