//! The simulated platform behind the `Driver` trait, in virtual time (a paused tokio runtime):
//! modeled durations, idempotent calls, the platform's refusals, every fault kind, work that
//! survives its dropped caller, persistence across processes, seeded randomness.

mod common;

use std::time::Duration;

use common::{cluster, host, vm};
use drover_core::{Cluster, HostState, VmState};
use drover_driver::{Clock, Driver, DriverError, ShutdownObserved};
use drover_sim::driver::{HistoryEventKind, PlatformHostState};
use drover_sim::{Fault, FaultKind, RandomFaults, SimDriver, SimDriverConfig, SimError, SlowStep};

/// 5 s of overhead + 4096 MiB at 1000 MiB/s (the default policy).
const VM_1_MIGRATION_MS: u64 = 9_096;
/// 5 s of overhead + 2048 MiB at 1000 MiB/s.
const VM_2_MIGRATION_MS: u64 = 7_048;
const UPGRADE_MS: u64 = 30 * 60 * 1000;
const REBOOT_MS: u64 = 5 * 60 * 1000;
const SILENCE_MS: u64 = drover_sim::driver::HOST_SILENCE_DETECTION_MS;

/// a, b, e: version 1.0; c: 2.0; d: 1.0 in maintenance. 16 GiB each.
fn platform() -> Cluster {
    let mut hosts = vec![
        host("a", "1.0", 16_384),
        host("b", "1.0", 16_384),
        host("c", "2.0", 16_384),
        host("d", "1.0", 16_384),
        host("e", "1.0", 16_384),
    ];
    hosts[3].state = HostState::Maintenance;
    let mut vms = vec![
        vm("vm-1", 0, 4_096),
        vm("vm-2", 0, 2_048),
        vm("vm-3", 1, 1_024),
        vm("vm-4", 1, 1_024),
        vm("vm-5", 1, 1_024),
        vm("vm-6", 2, 1_024),
        vm("vm-7", 4, 12_000),
    ];
    vms[2].state = VmState::Stopped;
    vms[3].local_storage = true;
    vms[4].migratable = false;
    cluster(hosts, vms)
}

fn simulator(config: SimDriverConfig) -> (SimDriver, Clock) {
    let clock = Clock::virtual_from(0);
    let driver = SimDriver::new(&platform(), clock.clone(), config).expect("a valid configuration");
    (driver, clock)
}

fn with_faults(faults: Vec<Fault>) -> SimDriverConfig {
    SimDriverConfig {
        faults,
        ..SimDriverConfig::default()
    }
}

fn vm_host(driver: &SimDriver, vm: &str) -> String {
    driver
        .snapshot()
        .vm(vm)
        .expect("the VM exists")
        .host
        .clone()
}

fn boot_id(driver: &SimDriver, host: &str) -> String {
    driver
        .snapshot()
        .host(host)
        .expect("the host exists")
        .boot_id
        .clone()
}

fn is_refused(result: Result<(), DriverError>) -> bool {
    matches!(result, Err(DriverError::Refused(_)))
}

/// Moves host a's VMs to b and puts a in maintenance.
async fn empty_into_maintenance(driver: &SimDriver) {
    driver.migrate("vm-1", "a", "b").await.unwrap();
    driver.migrate("vm-2", "a", "b").await.unwrap();
    driver.set_maintenance("a", true).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_migration_moves_the_vm_and_takes_the_modeled_time() {
    let (driver, clock) = simulator(SimDriverConfig::default());
    driver.migrate("vm-1", "a", "b").await.unwrap();
    assert_eq!(clock.now_ms(), VM_1_MIGRATION_MS);
    let snapshot = driver.snapshot();
    assert_eq!(snapshot.vm("vm-1").unwrap().host, "b");
    assert!(snapshot.vm("vm-1").unwrap().running);
    assert!(snapshot.operations.is_empty());
    let migrated = snapshot
        .history
        .iter()
        .find(|event| matches!(event.kind, HistoryEventKind::VmMigrated { .. }));
    let migrated = migrated.expect("the migration is in the history");
    assert_eq!(migrated.at_ms, VM_1_MIGRATION_MS);
    assert!(
        matches!(&migrated.kind, HistoryEventKind::VmMigrated { started_at_ms: 0, from, to, .. } if from == "a" && to == "b")
    );
}

#[tokio::test(start_paused = true)]
async fn repeated_calls_observe_before_acting() {
    let (driver, clock) = simulator(SimDriverConfig::default());
    let (first, second) = tokio::join!(
        driver.migrate("vm-1", "a", "b"),
        driver.migrate("vm-1", "a", "b")
    );
    assert_eq!((first, second), (Ok(()), Ok(())));
    assert_eq!(
        clock.now_ms(),
        VM_1_MIGRATION_MS,
        "the second call joined the first migration"
    );
    let before = clock.now_ms();
    driver.migrate("vm-1", "a", "b").await.unwrap();
    let stopped = driver
        .shutdown_vm("vm-3", "b", Duration::from_secs(120))
        .await;
    assert_eq!(stopped, Ok(ShutdownObserved { forced: false }));
    driver.start_vm("vm-1", "b").await.unwrap();
    driver.set_maintenance("d", true).await.unwrap();
    driver.set_maintenance("a", false).await.unwrap();
    driver.set_allocation("a", true).await.unwrap();
    driver.upgrade("c", &"2.0".parse().unwrap()).await.unwrap();
    driver.reboot("a", "an-older-boot-id").await.unwrap();
    assert_eq!(clock.now_ms(), before, "every repeat is answered at once");
    let migrations = driver
        .snapshot()
        .history
        .iter()
        .filter(|e| matches!(e.kind, HistoryEventKind::VmMigrated { .. }))
        .count();
    assert_eq!(migrations, 1);
}

#[tokio::test(start_paused = true)]
async fn the_platform_refuses_what_a_hypervisor_would_refuse() {
    let (driver, _clock) = simulator(SimDriverConfig::default());
    assert!(
        is_refused(driver.migrate("vm-3", "b", "a").await),
        "a stopped VM"
    );
    let local = driver.migrate("vm-4", "b", "a").await;
    assert!(
        matches!(&local, Err(DriverError::Refused(reason)) if reason.contains("migration without shared storage is unsafe"))
    );
    assert!(
        is_refused(driver.migrate("vm-5", "b", "a").await),
        "not migratable"
    );
    assert!(
        is_refused(driver.migrate("vm-1", "a", "d").await),
        "destination in maintenance"
    );
    assert!(
        is_refused(driver.migrate("vm-6", "c", "a").await),
        "destination older than the source"
    );
    assert!(
        is_refused(driver.migrate("vm-7", "e", "a").await),
        "not enough free memory"
    );
    assert!(
        is_refused(driver.migrate("vm-1", "b", "c").await),
        "the VM is not on the source"
    );
    let busy = driver.set_maintenance("a", true).await;
    assert!(
        matches!(&busy, Err(DriverError::Refused(reason)) if reason.contains("host still runs VMs: vm-1, vm-2"))
    );
    assert!(
        is_refused(driver.upgrade("a", &"2.0".parse().unwrap()).await),
        "not in maintenance"
    );
    assert!(
        is_refused(driver.start_vm("vm-3", "d").await),
        "start on a host in maintenance"
    );
    assert!(matches!(
        driver.migrate("vm-99", "a", "b").await,
        Err(DriverError::NotFound(_))
    ));
    assert!(matches!(
        driver.host_facts("zz").await,
        Err(DriverError::NotFound(_))
    ));
    driver.set_allocation("b", false).await.unwrap();
    driver
        .migrate("vm-1", "a", "b")
        .await
        .expect("cordoning is for the planner; the platform still migrates");
}

#[tokio::test(start_paused = true)]
async fn a_vm_restricted_to_some_hosts_is_refused_anywhere_else() {
    let mut cluster = platform();
    // vm-1 may run only on a and e (a DRBD instance's two nodes); vm-3 (stopped) only on b.
    cluster.vms[0].allowed_hosts = Some(vec![drover_core::HostId(0), drover_core::HostId(4)]);
    cluster.vms[2].allowed_hosts = Some(vec![drover_core::HostId(1)]);
    let driver = SimDriver::new(&cluster, Clock::virtual_from(0), SimDriverConfig::default())
        .expect("a valid configuration");
    let refused = driver.migrate("vm-1", "a", "b").await;
    assert!(
        matches!(&refused, Err(DriverError::Refused(reason)) if reason == "VM vm-1 may run only on a, e, not on b"),
        "{refused:?}"
    );
    assert_eq!(vm_host(&driver, "vm-1"), "a", "nothing moved");
    driver
        .migrate("vm-1", "a", "e")
        .await
        .expect("to its other allowed host");
    assert_eq!(vm_host(&driver, "vm-1"), "e");
    assert!(
        is_refused(driver.start_vm("vm-3", "a").await),
        "a start outside the allowed hosts"
    );
    driver
        .start_vm("vm-3", "b")
        .await
        .expect("a start on its allowed host");
}

#[tokio::test(start_paused = true)]
async fn an_upgrade_installs_the_target_and_reboots_the_host() {
    let (driver, clock) = simulator(SimDriverConfig::default());
    empty_into_maintenance(&driver).await;
    let boot_before = boot_id(&driver, "a");
    let started_ms = clock.now_ms();
    driver.upgrade("a", &"2.0".parse().unwrap()).await.unwrap();
    assert_eq!(
        clock.now_ms() - started_ms,
        UPGRADE_MS + REBOOT_MS,
        "the call returns once the host answers"
    );
    let facts = driver.host_facts("a").await.unwrap();
    assert_eq!(facts.version, "2.0".parse().unwrap());
    assert_ne!(facts.boot_id, boot_before);
    assert!(facts.in_maintenance);
    let after_upgrade_ms = clock.now_ms();
    driver.reboot("a", &boot_before).await.unwrap();
    assert_eq!(
        clock.now_ms(),
        after_upgrade_ms,
        "the boot id already changed: nothing to do"
    );
    driver.set_maintenance("a", false).await.unwrap();
    driver.migrate("vm-1", "b", "a").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_rebooting_host_does_not_answer_and_loses_its_running_vms() {
    let (driver, clock) = simulator(SimDriverConfig::default());
    let boot_before = boot_id(&driver, "a");
    let reboot = tokio::spawn({
        let driver = driver.clone();
        async move { driver.reboot("a", &boot_before).await }
    });
    clock.sleep_ms(1_000).await;
    assert_eq!(
        driver.snapshot().host("a").unwrap().state,
        PlatformHostState::Rebooting
    );
    let asked_ms = clock.now_ms();
    assert!(matches!(
        driver.host_facts("a").await,
        Err(DriverError::Unreachable { .. })
    ));
    assert_eq!(
        clock.now_ms() - asked_ms,
        SILENCE_MS,
        "silence is noticed after the connection timeout"
    );
    assert!(matches!(
        driver.health_check("a").await,
        Err(DriverError::Unreachable { .. })
    ));
    reboot.await.unwrap().unwrap();
    assert_eq!(clock.now_ms(), REBOOT_MS);
    let snapshot = driver.snapshot();
    let lost: Vec<&str> = snapshot
        .history
        .iter()
        .filter_map(|event| match &event.kind {
            HistoryEventKind::VmLost { vm, .. } => Some(vm.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(lost, ["vm-1", "vm-2"]);
    assert!(!snapshot.vm("vm-1").unwrap().running);
    driver.health_check("a").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn discovery_reports_hosts_and_vms_as_the_platform_has_them() {
    let (driver, _clock) = simulator(SimDriverConfig::default());
    driver.set_allocation("b", false).await.unwrap();
    driver.migrate("vm-1", "a", "b").await.unwrap();
    let discovered = driver.discover().await.unwrap();
    assert_eq!(discovered.hosts.len(), 5);
    assert!(discovered.hosts[1].cordoned);
    assert_eq!(discovered.hosts[3].state, HostState::Maintenance);
    assert_eq!(discovered.vms[0].host.index(), 1);
    assert_eq!(discovered.vms[2].state, VmState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn migration_fails_the_first_times_then_succeeds() {
    let (driver, clock) = simulator(with_faults(vec![Fault::new(FaultKind::MigrationFails)
        .on_vm("vm-1")
        .times(1)]));
    let failed = driver.migrate("vm-1", "a", "b").await;
    assert!(matches!(failed, Err(DriverError::Failed(_))));
    assert!(clock.now_ms() < VM_1_MIGRATION_MS, "it fails part-way");
    assert_eq!(vm_host(&driver, "vm-1"), "a");
    driver.migrate("vm-1", "a", "b").await.unwrap();
    assert_eq!(vm_host(&driver, "vm-1"), "b");
}

#[tokio::test(start_paused = true)]
async fn migration_refused_fault_refuses_every_time() {
    let (driver, _clock) = simulator(with_faults(vec![
        Fault::new(FaultKind::MigrationRefused).on_vm("vm-1")
    ]));
    assert!(is_refused(driver.migrate("vm-1", "a", "b").await));
    assert!(is_refused(driver.migrate("vm-1", "a", "e").await));
    driver.migrate("vm-2", "a", "b").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_hung_migration_is_cancelled_by_a_migration_elsewhere() {
    let (driver, clock) = simulator(with_faults(vec![Fault::new(FaultKind::MigrationHangs)
        .on_vm("vm-1")
        .times(1)]));
    let timed_out =
        tokio::time::timeout(Duration::from_secs(900), driver.migrate("vm-1", "a", "b")).await;
    assert!(
        timed_out.is_err(),
        "the engine's timeout drops the hung call"
    );
    let snapshot = driver.snapshot();
    assert_eq!(snapshot.operations.len(), 1);
    assert_eq!(snapshot.operations[0].completes_at_ms, None);
    assert_eq!(snapshot.vm("vm-1").unwrap().host, "a");
    let retried_ms = clock.now_ms();
    driver.migrate("vm-1", "a", "e").await.unwrap();
    assert_eq!(clock.now_ms() - retried_ms, VM_1_MIGRATION_MS);
    let snapshot = driver.snapshot();
    assert_eq!(snapshot.vm("vm-1").unwrap().host, "e");
    assert!(snapshot.operations.is_empty());
    assert!(snapshot
        .history
        .iter()
        .any(|event| matches!(event.kind, HistoryEventKind::OperationCancelled { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_hung_migration_is_replaced_by_a_new_one_to_the_same_host() {
    let (driver, _clock) = simulator(with_faults(vec![Fault::new(FaultKind::MigrationHangs)
        .on_vm("vm-1")
        .times(1)]));
    let timed_out =
        tokio::time::timeout(Duration::from_secs(900), driver.migrate("vm-1", "a", "b")).await;
    assert!(timed_out.is_err());
    driver.migrate("vm-1", "a", "b").await.unwrap();
    assert_eq!(vm_host(&driver, "vm-1"), "b");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_migrate_still_completes_on_the_platform() {
    let (driver, clock) = simulator(SimDriverConfig::default());
    let call = tokio::spawn({
        let driver = driver.clone();
        async move { driver.migrate("vm-1", "a", "b").await }
    });
    clock.sleep_ms(1_000).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(vm_host(&driver, "vm-1"), "a", "still migrating");
    clock.sleep_ms(VM_1_MIGRATION_MS).await;
    let snapshot = driver.snapshot();
    assert_eq!(snapshot.vm("vm-1").unwrap().host, "b");
    let finished_at = snapshot
        .history
        .iter()
        .find(|e| matches!(e.kind, HistoryEventKind::VmMigrated { .. }))
        .unwrap()
        .at_ms;
    assert_eq!(
        finished_at, VM_1_MIGRATION_MS,
        "completed at its platform time, not when observed"
    );
}

#[tokio::test(start_paused = true)]
async fn upgrade_fails_leaves_the_version_and_maintenance() {
    let (driver, clock) = simulator(with_faults(vec![Fault::new(FaultKind::UpgradeFails)
        .on_host("a")
        .times(1)]));
    empty_into_maintenance(&driver).await;
    let started_ms = clock.now_ms();
    assert!(matches!(
        driver.upgrade("a", &"2.0".parse().unwrap()).await,
        Err(DriverError::Failed(_))
    ));
    assert_eq!(
        clock.now_ms() - started_ms,
        UPGRADE_MS,
        "it fails after the installer ran"
    );
    let facts = driver.host_facts("a").await.unwrap();
    assert_eq!(facts.version, "1.0".parse().unwrap());
    assert!(facts.in_maintenance);
    driver
        .upgrade("a", &"2.0".parse().unwrap())
        .await
        .expect("only the first upgrade fails");
}

#[tokio::test(start_paused = true)]
async fn a_host_that_never_returns_stays_unreachable() {
    let (driver, clock) = simulator(with_faults(vec![
        Fault::new(FaultKind::HostNeverReturns).on_host("a")
    ]));
    empty_into_maintenance(&driver).await;
    let boot_before = boot_id(&driver, "a");
    let lost = driver.upgrade("a", &"2.0".parse().unwrap()).await;
    assert!(matches!(lost, Err(DriverError::Unreachable { .. })));
    clock.sleep_ms(3_600_000).await;
    let asked_ms = clock.now_ms();
    assert!(matches!(
        driver.host_facts("a").await,
        Err(DriverError::Unreachable { .. })
    ));
    assert!(matches!(
        driver.reboot("a", &boot_before).await,
        Err(DriverError::Unreachable { .. })
    ));
    assert_eq!(
        clock.now_ms() - asked_ms,
        2 * SILENCE_MS,
        "each call fails after a short delay"
    );
    assert_eq!(
        driver.snapshot().host("a").unwrap().state,
        PlatformHostState::Down
    );
    assert_eq!(
        driver.discover().await.unwrap().hosts[0].state,
        HostState::Down
    );
}

#[tokio::test(start_paused = true)]
async fn an_upgrade_that_does_not_reboot_keeps_the_boot_id() {
    let (driver, clock) = simulator(with_faults(vec![Fault::new(
        FaultKind::UpgradeDoesNotReboot,
    )]));
    empty_into_maintenance(&driver).await;
    let boot_before = boot_id(&driver, "a");
    let started_ms = clock.now_ms();
    driver.upgrade("a", &"2.0".parse().unwrap()).await.unwrap();
    assert_eq!(clock.now_ms() - started_ms, UPGRADE_MS);
    let facts = driver.host_facts("a").await.unwrap();
    assert_eq!(
        (facts.version, facts.boot_id.clone()),
        ("2.0".parse().unwrap(), boot_before.clone())
    );
    driver.reboot("a", &boot_before).await.unwrap();
    assert_ne!(
        boot_id(&driver, "a"),
        boot_before,
        "the reboot Drover asks for then happens"
    );
}

#[tokio::test(start_paused = true)]
async fn an_ignored_reboot_keeps_the_boot_id() {
    let (driver, clock) = simulator(with_faults(vec![
        Fault::new(FaultKind::RebootIgnored).on_host("b")
    ]));
    let boot_before = boot_id(&driver, "b");
    driver.reboot("b", &boot_before).await.unwrap();
    assert_eq!(clock.now_ms(), REBOOT_MS);
    assert_eq!(boot_id(&driver, "b"), boot_before);
    assert!(
        driver.snapshot().vm("vm-4").unwrap().running,
        "the host never went down"
    );
}

#[tokio::test(start_paused = true)]
async fn an_ignored_shutdown_is_forced_after_the_graceful_timeout() {
    let (driver, clock) = simulator(with_faults(vec![
        Fault::new(FaultKind::ShutdownIgnored).on_vm("vm-1")
    ]));
    let observed = driver
        .shutdown_vm("vm-1", "a", Duration::from_secs(120))
        .await
        .unwrap();
    assert!(observed.forced);
    assert_eq!(clock.now_ms(), 120_000);
    let observed = driver
        .shutdown_vm("vm-2", "a", Duration::from_secs(120))
        .await
        .unwrap();
    assert!(!observed.forced);
    assert_eq!(
        clock.now_ms(),
        180_000,
        "a clean shutdown takes vm_shutdown_secs"
    );
    assert!(!driver.snapshot().vm("vm-1").unwrap().running);
}

#[tokio::test(start_paused = true)]
async fn slow_multiplies_the_step_on_one_host() {
    let (driver, clock) = simulator(with_faults(vec![
        Fault::slow(SlowStep::Migrate, 3.0).on_host("e")
    ]));
    driver.migrate("vm-1", "a", "e").await.unwrap();
    assert_eq!(clock.now_ms(), 3 * VM_1_MIGRATION_MS);
    driver.migrate("vm-2", "a", "b").await.unwrap();
    assert_eq!(clock.now_ms(), 3 * VM_1_MIGRATION_MS + VM_2_MIGRATION_MS);
}

#[tokio::test(start_paused = true)]
async fn an_operation_in_flight_survives_a_restart_through_the_state_file() {
    let directory = tempfile::tempdir().unwrap();
    let config = SimDriverConfig {
        state_file: Some(directory.path().join("platform.json")),
        ..SimDriverConfig::default()
    };
    let clock = Clock::virtual_from(0);
    let first = SimDriver::new(&platform(), clock.clone(), config.clone()).unwrap();
    first.set_allocation("a", false).await.unwrap();
    let call = tokio::spawn({
        let first = first.clone();
        async move { first.migrate("vm-1", "a", "b").await }
    });
    clock.sleep_ms(1_000).await;
    call.abort();
    drop(first);

    let resumed_clock = Clock::virtual_from(clock.now_ms());
    let resumed = SimDriver::new(&platform(), resumed_clock.clone(), config).unwrap();
    let snapshot = resumed.snapshot();
    assert!(snapshot.host("a").unwrap().cordoned);
    assert_eq!(snapshot.operations.len(), 1);
    assert_eq!(snapshot.operations[0].kind, "migrate");
    resumed_clock.sleep_ms(VM_1_MIGRATION_MS).await;
    let snapshot = resumed.snapshot();
    assert_eq!(snapshot.vm("vm-1").unwrap().host, "b");
    let finished = snapshot
        .history
        .iter()
        .find(|e| matches!(e.kind, HistoryEventKind::VmMigrated { .. }))
        .unwrap();
    assert!(
        matches!(finished.kind, HistoryEventKind::VmMigrated { started_at_ms, .. } if started_at_ms == 2_000)
    );
    assert_eq!(
        finished.at_ms,
        2_000 + VM_1_MIGRATION_MS,
        "it completed at its platform time"
    );
}

#[tokio::test(start_paused = true)]
async fn an_upgrade_interrupted_by_a_restart_finishes_with_its_reboot() {
    let directory = tempfile::tempdir().unwrap();
    let config = SimDriverConfig {
        state_file: Some(directory.path().join("platform.json")),
        ..SimDriverConfig::default()
    };
    let clock = Clock::virtual_from(0);
    let first = SimDriver::new(&platform(), clock.clone(), config.clone()).unwrap();
    empty_into_maintenance(&first).await;
    let boot_before = boot_id(&first, "a");
    let upgrade_started_ms = clock.now_ms();
    let call = tokio::spawn({
        let first = first.clone();
        async move { first.upgrade("a", &"2.0".parse().unwrap()).await }
    });
    clock.sleep_ms(60_000).await;
    call.abort();
    drop(first);

    let resumed_clock = Clock::virtual_from(clock.now_ms());
    let resumed = SimDriver::new(&platform(), resumed_clock.clone(), config).unwrap();
    resumed
        .upgrade("a", &"2.0".parse().unwrap())
        .await
        .expect("joins the upgrade under way");
    assert_eq!(
        resumed_clock.now_ms() - upgrade_started_ms,
        UPGRADE_MS + REBOOT_MS
    );
    let facts = resumed.host_facts("a").await.unwrap();
    assert_eq!(facts.version, "2.0".parse().unwrap());
    assert_ne!(facts.boot_id, boot_before);
}

#[tokio::test(start_paused = true)]
async fn a_state_file_of_another_cluster_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let config = SimDriverConfig {
        state_file: Some(directory.path().join("platform.json")),
        ..SimDriverConfig::default()
    };
    SimDriver::new(&platform(), Clock::virtual_from(0), config.clone()).unwrap();
    let mut other = platform();
    other.hosts[0].name = "renamed".into();
    let refused = SimDriver::new(&other, Clock::virtual_from(0), config).err();
    assert!(matches!(refused, Some(SimError::StateFile { .. })));
}

#[tokio::test(start_paused = true)]
async fn the_compatibility_level_fails_as_often_as_asked_then_is_set_and_kept() {
    let directory = tempfile::tempdir().unwrap();
    let config = SimDriverConfig {
        state_file: Some(directory.path().join("platform.json")),
        faults: vec![Fault::new(FaultKind::CompatibilityLevelFails).times(2)],
        ..SimDriverConfig::default()
    };
    let clock = Clock::virtual_from(0);
    let first = SimDriver::new(&platform(), clock.clone(), config.clone()).unwrap();
    for _ in 0..2 {
        let failed = first.set_compatibility_level("test", "4.14").await;
        assert!(
            matches!(&failed, Err(DriverError::Failed(text)) if text.contains("to 4.14")),
            "{failed:?}"
        );
    }
    assert_eq!(first.snapshot().compatibility_level, None);
    first.set_compatibility_level("test", "4.14").await.unwrap();
    drop(first);

    let resumed = SimDriver::new(&platform(), clock.clone(), config).unwrap();
    assert_eq!(
        resumed.snapshot().compatibility_level.as_deref(),
        Some("4.14")
    );
    resumed
        .set_compatibility_level("test", "4.14")
        .await
        .expect("the level the cluster has is no change");
    let sets = resumed
        .snapshot()
        .history
        .iter()
        .filter(|e| matches!(e.kind, HistoryEventKind::CompatibilityLevelSet { .. }))
        .count();
    assert_eq!(sets, 1);
    assert!(matches!(
        resumed.set_compatibility_level("other", "4.14").await,
        Err(DriverError::NotFound(_))
    ));
}

#[test]
fn faults_naming_nothing_are_refused() {
    let unknown_vm = with_faults(vec![Fault::new(FaultKind::MigrationFails).on_vm("nope")]);
    let slow_without_factor = with_faults(vec![Fault::new(FaultKind::Slow)]);
    let impossible = SimDriverConfig {
        random_faults: RandomFaults {
            migration_failure: 1.5,
            ..RandomFaults::default()
        },
        ..SimDriverConfig::default()
    };
    for config in [unknown_vm, slow_without_factor, impossible] {
        let refused = SimDriver::new(&platform(), Clock::real(), config).err();
        assert!(
            matches!(refused, Some(SimError::InvalidDriverConfig { .. })),
            "{refused:?}"
        );
    }
}

/// Migrates vm-1 back and forth between a and b with random failures.
async fn random_migrations(seed: u64) -> (Vec<bool>, Vec<drover_sim::driver::HistoryEvent>) {
    let random_faults = RandomFaults {
        migration_failure: 0.5,
        ..RandomFaults::default()
    };
    let (driver, _clock) = simulator(SimDriverConfig {
        seed,
        random_faults,
        ..SimDriverConfig::default()
    });
    let mut succeeded = Vec::new();
    for _ in 0..16 {
        let (from, to) = if vm_host(&driver, "vm-1") == "a" {
            ("a", "b")
        } else {
            ("b", "a")
        };
        succeeded.push(driver.migrate("vm-1", from, to).await.is_ok());
    }
    (succeeded, driver.snapshot().history)
}

#[tokio::test(start_paused = true)]
async fn random_faults_are_deterministic_for_a_seed() {
    let (outcomes, history) = random_migrations(7).await;
    assert!(
        outcomes.contains(&true) && outcomes.contains(&false),
        "{outcomes:?}"
    );
    assert_eq!(
        random_migrations(7).await,
        (outcomes.clone(), history.clone())
    );
    assert_ne!(
        random_migrations(8).await.1,
        history,
        "another seed, another run"
    );
}
