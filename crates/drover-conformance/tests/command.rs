//! The conformance suite against the command driver on the fake platform of
//! `crates/drover-command/examples/fake-platform/` (shell scripts keeping each host's version and
//! boot id in files), opened through the driver registry from that example's own inventory, set
//! up as drover-command's `tests/fake_platform.rs` does.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use drover_conformance::{
    CallTimeouts, Check, CompatibilityFixture, ConformanceError, Fixture, MigrationFixture, OptOut,
    PowerFixture, UpgradeFixture, Verdict,
};

/// The paths the example inventory is written with (relative to the repository root).
const EXAMPLE_DIRECTORY: &str = "crates/drover-command/examples/fake-platform";
const EXAMPLE_STATE: &str = "/tmp/drover-fake-platform";

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../drover-command/examples/fake-platform")
}

/// A fresh platform in `state` (three hosts at 8.0.0, one running VM on each) and the example
/// inventory pointing at it.
fn fake_platform(state: &Path) -> String {
    let status = std::process::Command::new("sh")
        .arg(scripts().join("init.sh"))
        .arg(state)
        .status()
        .expect("sh runs");
    assert!(status.success(), "init.sh: {status}");
    std::fs::read_to_string(scripts().join("inventory.yaml"))
        .expect("the example inventory is readable")
        .replace(EXAMPLE_DIRECTORY, &scripts().display().to_string())
        .replace(EXAMPLE_STATE, &state.display().to_string())
}

/// Every failing command is `DriverError::Failed` (drover-command's `From<CommandError> for
/// DriverError`): an exit code does not say "no such host" or "refused".
const UNTYPED_FAILURES: &str = "the command driver reports every failing command as \
     DriverError::Failed (crates/drover-command/src/error.rs): a script's exit code cannot say \
     that a name does not exist, so the fake platform's \"no host\"/\"no vm\" is not NotFound";

fn fixture() -> Fixture {
    Fixture {
        platform: "the fake platform through the registry".into(),
        healthy_hosts: vec!["xs01".into(), "xs02".into(), "xs03".into()],
        cordon_host: "xs01".into(),
        // web-02 is xs02's only VM: once it is on xs03, xs02 is empty for maintenance and the
        // upgrade.
        migration: MigrationFixture {
            vm: "web-02".into(),
            from: "xs02".into(),
            to: "xs03".into(),
        },
        power: PowerFixture {
            vm: "db-01".into(),
            host: "xs03".into(),
            graceful_timeout: Duration::from_secs(30),
        },
        maintenance_host: "xs02".into(),
        // The fake platform sets a level only when every host supports it: 8.0 while all run
        // 8.0.0 (the suite upgrades one host only).
        compatibility: CompatibilityFixture {
            cluster: "fake-pool".into(),
            level: "8.0".into(),
        },
        upgrade: UpgradeFixture {
            host: "xs02".into(),
            target: "8.2.1".parse().unwrap(),
        },
        // Each script runs in milliseconds; the bounds leave room for a loaded machine.
        timeouts: CallTimeouts {
            call: Duration::from_secs(30),
            slow_call: Duration::from_secs(60),
            repeated_call: Duration::from_secs(10),
        },
        opt_outs: vec![
            OptOut::new(Check::HostFactsOfUnknownHostIsNotFound, UNTYPED_FAILURES),
            OptOut::new(Check::MigrateOfUnknownVmIsNotFound, UNTYPED_FAILURES),
        ],
    }
}

#[tokio::test]
async fn the_command_driver_on_the_fake_platform_passes_every_check_it_can() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().join("platform");
    let inventory = fake_platform(&state);
    let driver = common::open_through_registry(&inventory, directory.path());
    let report = drover_conformance::run_all(driver.as_ref(), &fixture()).await;
    assert_eq!(report.driver_kind, "command");
    assert_eq!(
        report.opted_out(),
        [
            Check::HostFactsOfUnknownHostIsNotFound,
            Check::MigrateOfUnknownVmIsNotFound
        ]
    );
    assert_eq!(report.passed().len(), Check::ALL.len() - 2);
    let boot_id = std::fs::read_to_string(state.join("hosts/xs02/boot_id")).unwrap();
    assert_eq!(boot_id.trim(), "xs02-boot-2", "one reboot, not two");
}

/// Without a `discover` command, discovery is the inventory refreshed by `host_facts`, with VMs
/// where the driver itself put them: the same contract holds.
#[tokio::test]
async fn the_command_driver_without_a_discover_command_passes_the_same_checks() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().join("platform");
    let inventory: String = fake_platform(&state)
        .lines()
        .filter(|line| !line.trim_start().starts_with("discover:"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(!inventory.contains("discover.sh"));
    let driver = common::open_through_registry(&inventory, directory.path());
    let mut fixture = fixture();
    fixture.platform = "the fake platform without a discover command".into();
    let report = drover_conformance::run_all(driver.as_ref(), &fixture).await;
    assert_eq!(report.passed().len(), Check::ALL.len() - 2);
}

/// The opt-outs are still needed: run anyway, both checks fail because the answer is
/// `Failed`, not because of anything else. (When the command driver learns to report
/// NotFound, this test fails and the opt-outs go.)
#[tokio::test]
async fn the_opted_out_checks_fail_for_the_reason_given() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().join("platform");
    let inventory = fake_platform(&state);
    let driver = common::open_through_registry(&inventory, directory.path());
    for check in [
        Check::HostFactsOfUnknownHostIsNotFound,
        Check::MigrateOfUnknownVmIsNotFound,
    ] {
        let outcome = drover_conformance::run_one(check, driver.as_ref(), &fixture()).await;
        assert!(
            matches!(&outcome.verdict, Verdict::Failed(ConformanceError::WrongAnswer { got, .. })
                if got.starts_with("Err(Failed(") && got.contains("fake-platform: no ")),
            "{check}: {outcome:?}"
        );
    }
}
