//! The engine and time, on the simulator in virtual time: process downtime is not platform
//! refusal (a run killed while VMs wait for their turn and resumed long after goes on instead of
//! failing them with "still pending after the pending timeout", issue 11 item 8), and a run
//! outside its maintenance window starts no host until the window opens, then wakes up and
//! completes (issue 19 item 1). The same holds for a run created and left before its first call
//! (an instance without room hands it over, or its process dies at once, issue 14).

use std::sync::Arc;
use std::time::Duration;

use drover_core::execution::{CommandKind, RunPhase};
use drover_core::{Cluster, Host, HostId, HostRole, HostState, Policy, RestartPolicy, Vm, VmState};
use drover_engine::{Clock, DriveEnd, Engine, EngineEvent, NewRunSpec};
use drover_sim::driver::{SimDriver, SimDriverConfig};
use drover_store::Store;
use tokio::sync::Notify;

/// 2026-01-01, like the DST harness.
const EPOCH_MS: u64 = 1_767_225_600_000;

fn cluster() -> Cluster {
    cluster_of(6)
}

fn cluster_of(vm_count: usize) -> Cluster {
    let host = |name: &str| Host {
        name: name.into(),
        role: HostRole::Compute,
        version: "1.0".parse().unwrap(),
        memory_mib: 65_536,
        cpus: 16,
        state: HostState::Up,
        cordoned: false,
        labels: Default::default(),
    };
    let vm = |index: usize, host: u32| Vm {
        name: format!("vm{index}"),
        host: HostId(host),
        memory_mib: 2048,
        vcpus: 1,
        state: VmState::Running,
        migratable: true,
        local_storage: false,
        unmovable: None,
        restart_policy: RestartPolicy::Manual,
        anti_affinity: None,
        allowed_hosts: None,
    };
    // One migration at a time per host: the other VMs of the host wait, pending.
    let policy = Policy {
        max_concurrent_migrations_per_host: 1,
        pending_timeout_secs: 900,
        ..Policy::default()
    };
    Cluster {
        settings: Vec::new(),
        name: "downtime".into(),
        target_version: "2.0".parse().unwrap(),
        policy,
        hosts: vec![host("h1"), host("h2"), host("h3")],
        vms: (0..vm_count).map(|index| vm(index, 0)).collect(),
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// The simulated platform of `cluster`, in memory, with nominal durations and no faults.
fn sim_driver(cluster: &Cluster, clock: &Clock) -> Arc<SimDriver> {
    let config = SimDriverConfig {
        seed: 7,
        faults: Vec::new(),
        random_faults: Default::default(),
        state_file: None,
        save_only_on_request: false,
    };
    Arc::new(SimDriver::new(cluster, clock.clone(), config).unwrap())
}

/// Creates run `run_id` of `cluster` in the SQLite file `state`, driven by `driver`.
async fn create_run(
    cluster: &Cluster,
    driver: &Arc<SimDriver>,
    clock: &Clock,
    state: &std::path::Path,
    run_id: &str,
) -> Engine<SimDriver> {
    let spec = NewRunSpec {
        run_id: run_id.into(),
        inventory_text: &drover_schema::inventory::inventory_to_yaml(cluster),
        inventory_sha256: String::new(),
        cluster,
        options_json: "{}".into(),
    };
    let store = Store::open(state).unwrap();
    Engine::create(store, Arc::clone(driver), clock.clone(), spec)
        .await
        .unwrap()
}

#[test]
fn a_run_resumed_after_a_long_downtime_does_not_fail_its_pending_vms() {
    paused_runtime().block_on(async {
        let cluster = cluster();
        let clock = Clock::virtual_from(EPOCH_MS);
        let driver = sim_driver(&cluster, &clock);
        let directory = tempfile::tempdir().unwrap();
        let state = directory.path().join("state.db");
        let mut engine = create_run(&cluster, &driver, &clock, &state, "downtime").await;
        // Kill the process right after its first migration starts: the host's other VMs
        // are pending behind it.
        let killed = Notify::new();
        let mut observer = |_: &drover_core::execution::Execution, event: EngineEvent<'_>| {
            if let EngineEvent::Calling(command) = event {
                if matches!(command.kind, CommandKind::Migrate { .. }) {
                    killed.notify_one();
                }
            }
        };
        tokio::select! {
            end = engine.drive(&mut observer) => panic!("the run ended before a migration: {end:?}"),
            _ = killed.notified() => {}
        }
        let pending = engine
            .execution()
            .status()
            .vms
            .iter()
            .filter(|vm| vm.phase == "pending")
            .count();
        assert!(
            pending > 0,
            "no VM was pending when the process died: {:?}",
            engine.execution().status()
        );
        drop(engine);
        // An hour with no Drover process (the pending timeout is 15 minutes).
        tokio::time::advance(Duration::from_secs(3600)).await;
        let store = Store::open(&state).unwrap();
        let mut engine = Engine::open(store, driver, clock, "downtime")
            .await
            .unwrap();
        let end = engine.drive(&mut |_, _| {}).await.unwrap();
        assert_eq!(
            end,
            DriveEnd::Finished(RunPhase::Completed),
            "{:?}",
            engine.execution().status()
        );
    });
}

#[test]
fn a_run_created_and_left_before_its_first_call_is_resumed_without_failing_its_vms() {
    paused_runtime().block_on(async {
        // VMs on local storage on every host: the first wave's shutdowns wait from its start.
        let mut cluster = cluster();
        for (index, vm) in cluster.vms.iter_mut().enumerate() {
            vm.host = HostId((index % 3) as u32);
            vm.local_storage = true;
        }
        let clock = Clock::virtual_from(EPOCH_MS);
        let driver = sim_driver(&cluster, &clock);
        let directory = tempfile::tempdir().unwrap();
        let state = directory.path().join("state.db");
        let engine = create_run(&cluster, &driver, &clock, &state, "downtime").await;
        assert_eq!(engine.execution().status().waves_started, 1);
        drop(engine);
        tokio::time::advance(Duration::from_secs(3600)).await;
        let store = Store::open(&state).unwrap();
        let mut engine = Engine::open(store, driver, clock, "downtime")
            .await
            .unwrap();
        let end = engine.drive(&mut |_, _| {}).await.unwrap();
        assert_eq!(
            end,
            DriveEnd::Finished(RunPhase::Completed),
            "{:?}",
            engine.execution().status()
        );
    });
}

#[test]
fn a_run_outside_its_window_starts_nothing_until_it_opens_then_completes() {
    paused_runtime().block_on(async {
        let mut cluster = cluster_of(2);
        // 2026-01-01 is a Thursday; the only window is Sunday 03:00-04:00 UTC.
        cluster.policy.windows = vec![drover_core::MaintenanceWindow {
            days: vec![6],
            start_minute: 3 * 60,
            end_minute: 4 * 60,
        }];
        let opening_ms = EPOCH_MS + (3 * 24 + 3) * 3600 * 1000;
        let clock = Clock::virtual_from(EPOCH_MS);
        let driver = sim_driver(&cluster, &clock);
        let directory = tempfile::tempdir().unwrap();
        let spec = NewRunSpec {
            run_id: "windowed".into(),
            inventory_text: &drover_schema::inventory::inventory_to_yaml(&cluster),
            inventory_sha256: String::new(),
            cluster: &cluster,
            options_json: "{}".into(),
        };
        let store = Store::open(&directory.path().join("state.db")).unwrap();
        let mut engine = Engine::create(store, driver, clock.clone(), spec)
            .await
            .unwrap();
        let mut first_host_call_at = None;
        let mut observer = |_: &drover_core::execution::Execution, event: EngineEvent<'_>| {
            if let EngineEvent::Calling(command) = event {
                if command.kind.host().is_some() && first_host_call_at.is_none() {
                    first_host_call_at = Some(clock.now_ms());
                }
            }
        };
        let end = engine.drive(&mut observer).await.unwrap();
        assert_eq!(end, DriveEnd::Finished(RunPhase::Completed));
        let started = first_host_call_at.expect("a host was upgraded");
        assert!(
            (opening_ms..opening_ms + 3_600_000).contains(&started),
            "the first host started {} min after the window opened",
            (started as i64 - opening_ms as i64) / 60_000
        );
    });
}

/// The after-the-fact check (`drover_dst::check_recorded_run`) accepts the history of a good run
/// and names the instant a tampered history breaks a rule: it is a check, not a formality.
#[test]
fn the_recorded_history_of_a_run_is_checked_instant_by_instant() {
    paused_runtime().block_on(async {
        let cluster = cluster();
        let clock = Clock::virtual_from(EPOCH_MS);
        let driver = sim_driver(&cluster, &clock);
        let initial = driver.snapshot();
        let directory = tempfile::tempdir().unwrap();
        let mut engine = create_run(
            &cluster,
            &driver,
            &clock,
            &directory.path().join("state.db"),
            "recorded",
        )
        .await;
        let end = engine.drive(&mut |_, _| {}).await.unwrap();
        assert_eq!(end, DriveEnd::Finished(RunPhase::Completed));
        let last = driver.snapshot();
        let nothing = std::collections::BTreeSet::new();
        let run_end = drover_dst::RunEnd {
            completed: true,
            skipped: &nothing,
            unrestorable: &nothing,
        };
        drover_dst::check_recorded_run(&cluster, &initial, &last, 1, &run_end).expect("a good run");

        // Every host into maintenance at once: two more than max_unavailable allows.
        let mut tampered = last.clone();
        let at_ms = tampered.history[0].at_ms;
        for host in ["h1", "h2", "h3"] {
            tampered.history.insert(
                0,
                drover_sim::driver::HistoryEvent {
                    at_ms,
                    kind: drover_sim::driver::HistoryEventKind::MaintenanceChanged {
                        host: host.into(),
                        in_maintenance: true,
                    },
                },
            );
        }
        let error = drover_dst::check_recorded_run(&cluster, &initial, &tampered, 1, &run_end)
            .expect_err("three hosts down at once");
        assert!(error.contains("hosts unavailable at once"), "{error}");
    });
}
