//! The suite itself: a driver with one defect fails the check of that part of the contract and
//! only that one, a hung call and a panicking call become failed checks (the other checks still
//! run and are reported), opt-outs are reported instead of run, and `run_all` panics naming
//! every failed check. The defects are injected into the simulator (a wrapper around the driver
//! the registry opens), which passes every check on its own (tests/simulator.rs).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::simulated;
use drover_conformance::{Check, ConformanceError, OptOut, Report, Verdict};
use drover_core::Version;
use drover_driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved};

/// One way of breaking the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Defect {
    /// Migrating an unknown VM "succeeds".
    UnknownVmMigrates,
    /// Discovery never shows a cordon.
    CordonNotDiscovered,
    /// A repeated cordon fails instead of observing the cordon already there.
    RepeatedCordonFails,
    /// Reboot ignores `boot_id_before` and reboots again.
    RebootIgnoresBootIdBefore,
    /// A second shutdown of a stopped VM reports it forced off.
    RepeatedShutdownForced,
    /// health_check never returns.
    HealthCheckHangs,
    /// set_compatibility_level panics.
    CompatibilityLevelPanics,
}

struct Defective {
    inner: Arc<dyn Driver>,
    defect: Defect,
}

#[async_trait::async_trait]
impl Driver for Defective {
    fn kind(&self) -> &'static str {
        "defective-simulator"
    }

    async fn discover(&self) -> Result<Discovered, DriverError> {
        let mut discovered = self.inner.discover().await?;
        if self.defect == Defect::CordonNotDiscovered {
            for host in &mut discovered.hosts {
                host.cordoned = false;
            }
        }
        Ok(discovered)
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        self.inner.host_facts(host).await
    }

    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        if self.defect == Defect::HealthCheckHangs {
            std::future::pending::<()>().await;
        }
        self.inner.health_check(host).await
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        if self.defect == Defect::RepeatedCordonFails && !enabled {
            let facts = self.inner.host_facts(host).await?;
            if facts.cordoned {
                return Err(DriverError::Failed(format!(
                    "host {host} is already cordoned"
                )));
            }
        }
        self.inner.set_allocation(host, enabled).await
    }

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        self.inner.set_maintenance(host, enabled).await
    }

    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError> {
        if self.defect == Defect::UnknownVmMigrates && vm == drover_conformance::UNKNOWN_VM {
            return Ok(());
        }
        self.inner.migrate(vm, from, to).await
    }

    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, DriverError> {
        let observed = self.inner.shutdown_vm(vm, host, graceful_timeout).await?;
        match self.defect {
            Defect::RepeatedShutdownForced => Ok(ShutdownObserved { forced: true }),
            _ => Ok(observed),
        }
    }

    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        self.inner.start_vm(vm, host).await
    }

    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        self.inner.upgrade(host, target).await
    }

    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), DriverError> {
        if self.defect == Defect::RebootIgnoresBootIdBefore {
            let current = self.inner.host_facts(host).await?.boot_id;
            return self.inner.reboot(host, &current).await;
        }
        self.inner.reboot(host, boot_id_before).await
    }

    async fn set_compatibility_level(&self, cluster: &str, level: &str) -> Result<(), DriverError> {
        if self.defect == Defect::CompatibilityLevelPanics {
            panic!("a defective driver panicked");
        }
        self.inner.set_compatibility_level(cluster, level).await
    }
}

/// The suite's report on the simulated platform with `defect`.
async fn report_with(defect: Defect) -> Report {
    let directory = tempfile::tempdir().unwrap();
    let inner = common::open_through_registry(simulated::INVENTORY, directory.path());
    let driver = Defective { inner, defect };
    drover_conformance::run_suite(&driver, &simulated::fixture()).await
}

fn failure_of(report: &Report, check: Check) -> ConformanceError {
    match &report.outcome(check).expect("the check ran").verdict {
        Verdict::Failed(error) => error.clone(),
        other => panic!("{check} did not fail: {other:?}\n{report}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_unknown_vm_that_migrates_fails_only_its_check() {
    let report = report_with(Defect::UnknownVmMigrates).await;
    assert_eq!(
        report.failed(),
        [Check::MigrateOfUnknownVmIsNotFound],
        "{report}"
    );
    let failure = failure_of(&report, Check::MigrateOfUnknownVmIsNotFound);
    assert!(
        matches!(&failure, ConformanceError::WrongAnswer { got, .. } if got == "Ok(())"),
        "{failure:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cordon_discovery_does_not_show_fails_the_cordon_check() {
    let report = report_with(Defect::CordonNotDiscovered).await;
    assert_eq!(
        report.failed(),
        [Check::CordonIsIdempotentAndDiscovered],
        "{report}"
    );
    let failure = failure_of(&report, Check::CordonIsIdempotentAndDiscovered).to_string();
    assert!(
        failure.contains("discovery says cordoned false"),
        "{failure}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_repeated_cordon_that_fails_is_not_idempotent_and_the_cordon_is_undone() {
    let directory = tempfile::tempdir().unwrap();
    let inner = common::open_through_registry(simulated::INVENTORY, directory.path());
    let driver = Defective {
        inner: inner.clone(),
        defect: Defect::RepeatedCordonFails,
    };
    let fixture = simulated::fixture();
    let check = Check::CordonIsIdempotentAndDiscovered;
    let outcome = drover_conformance::run_one(check, &driver, &fixture).await;
    assert!(
        matches!(&outcome.verdict, Verdict::Failed(ConformanceError::CallFailed { call, .. }) if call == "set_allocation(h2, false) repeated"),
        "{outcome:?}"
    );
    assert!(!inner.host_facts("h2").await.unwrap().cordoned);
}

#[tokio::test(start_paused = true)]
async fn a_reboot_that_ignores_the_old_boot_id_fails_the_upgrade_check() {
    let report = report_with(Defect::RebootIgnoresBootIdBefore).await;
    let check = Check::UpgradeThenRebootChangeVersionAndBootIdOnce;
    assert_eq!(report.failed(), [check], "{report}");
    // The repeat really reboots: it takes the platform's reboot time, far past "at once".
    let failure = failure_of(&report, check).to_string();
    assert!(
        failure.starts_with("reboot(h1, h1-boot-1) repeated did not return within 1 ms"),
        "{failure}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_repeated_shutdown_reported_forced_fails_the_power_check() {
    let report = report_with(Defect::RepeatedShutdownForced).await;
    let check = Check::ShutdownAndStartAreIdempotentAndDiscovered;
    assert_eq!(report.failed(), [check], "{report}");
    assert!(matches!(
        failure_of(&report, check),
        ConformanceError::WrongAnswer { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_hung_call_fails_at_its_timeout_and_the_suite_goes_on() {
    let report = report_with(Defect::HealthCheckHangs).await;
    assert_eq!(
        report.failed(),
        [
            Check::HealthCheckOfHealthyHostsIsOk,
            Check::UpgradeThenRebootChangeVersionAndBootIdOnce
        ],
        "{report}"
    );
    let failure = failure_of(&report, Check::HealthCheckOfHealthyHostsIsOk);
    assert_eq!(
        failure,
        ConformanceError::TimedOut {
            call: "health_check(h1)".into(),
            timeout: simulated::fixture().timeouts.call,
        }
    );
    assert_eq!(report.passed().len(), Check::ALL.len() - 2);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_call_is_a_failed_check_and_the_suite_goes_on() {
    let report = report_with(Defect::CompatibilityLevelPanics).await;
    assert_eq!(
        report.failed(),
        [Check::CompatibilityLevelIsIdempotent],
        "{report}"
    );
    let failure = failure_of(&report, Check::CompatibilityLevelIsIdempotent);
    assert!(
        matches!(&failure, ConformanceError::Panicked { message, .. } if message == "a defective driver panicked"),
        "{failure:?}"
    );
    assert!(report
        .passed()
        .contains(&Check::UpgradeThenRebootChangeVersionAndBootIdOnce));
}

#[tokio::test(start_paused = true)]
async fn an_opted_out_check_is_reported_with_its_reason_and_not_run() {
    let directory = tempfile::tempdir().unwrap();
    let inner = common::open_through_registry(simulated::INVENTORY, directory.path());
    let driver = Defective {
        inner,
        defect: Defect::UnknownVmMigrates,
    };
    let mut fixture = simulated::fixture();
    fixture.opt_outs = vec![OptOut::new(
        Check::MigrateOfUnknownVmIsNotFound,
        "this test's driver migrates anything",
    )];
    let report = drover_conformance::run_all(&driver, &fixture).await;
    assert_eq!(report.opted_out(), [Check::MigrateOfUnknownVmIsNotFound]);
    let outcome = report.outcome(Check::MigrateOfUnknownVmIsNotFound).unwrap();
    assert_eq!(
        outcome.verdict,
        Verdict::OptedOut("this test's driver migrates anything".into())
    );
    assert!(report.to_string().contains(
        "opted out migrate_of_unknown_vm_is_not_found (0 ms): this test's driver migrates anything"
    ));
}

#[tokio::test(start_paused = true)]
async fn an_opt_out_without_a_reason_fails() {
    let directory = tempfile::tempdir().unwrap();
    let driver = common::open_through_registry(simulated::INVENTORY, directory.path());
    let mut fixture = simulated::fixture();
    fixture.opt_outs = vec![OptOut::new(Check::CompatibilityLevelIsIdempotent, " ")];
    let report = drover_conformance::run_suite(driver.as_ref(), &fixture).await;
    assert_eq!(report.failed(), [Check::CompatibilityLevelIsIdempotent]);
    assert!(matches!(
        failure_of(&report, Check::CompatibilityLevelIsIdempotent),
        ConformanceError::Fixture(_)
    ));
}

#[tokio::test(start_paused = true)]
#[should_panic(
    expected = "failed checks:\n  - cordon_is_idempotent_and_discovered: after set_allocation(h2, false) repeated, discovery says cordoned false"
)]
async fn run_all_panics_listing_every_failed_check() {
    let directory = tempfile::tempdir().unwrap();
    let inner = common::open_through_registry(simulated::INVENTORY, directory.path());
    let driver = Defective {
        inner,
        defect: Defect::CordonNotDiscovered,
    };
    drover_conformance::run_all(&driver, &simulated::fixture()).await;
}

#[tokio::test(start_paused = true)]
async fn a_fixture_that_does_not_match_the_platform_fails_with_a_fixture_error() {
    let directory = tempfile::tempdir().unwrap();
    let driver = common::open_through_registry(simulated::INVENTORY, directory.path());
    let mut fixture = simulated::fixture();
    fixture.migration.from = "h3".into();
    let outcome =
        drover_conformance::run_one(Check::DiscoveryIsConsistent, driver.as_ref(), &fixture).await;
    assert!(
        matches!(&outcome.verdict, Verdict::Failed(ConformanceError::Fixture(text)) if text.contains("VM mobile is running on h1, not running on h3")),
        "{outcome:?}"
    );
}
