//! The engine under leases, on the simulator in virtual time with the store's lease clock moved
//! by hand: an engine whose lease another process took over is refused by the store and stops
//! before it calls the platform again (fencing), and a run whose live lease belongs to a
//! process on another machine is not taken until that lease expires.

use std::sync::Arc;
use std::time::Duration;

use drover_core::execution::{Execution, RunPhase};
use drover_core::{Cluster, Host, HostId, HostRole, HostState, Policy, RestartPolicy, Vm, VmState};
use drover_engine::engine::DEFAULT_LEASE_TTL;
use drover_engine::{Clock, Driver, Engine, EngineError, EngineEvent, NewRunSpec};
use drover_sim::driver::{SimDriver, SimDriverConfig};
use drover_store::{ManualClock, RunStore, SqliteStore, Store};

/// 2026-01-01, like the DST harness.
const EPOCH_MS: u64 = 1_767_225_600_000;

fn cluster() -> Cluster {
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
    let vm = |index: usize| Vm {
        name: format!("vm{index}"),
        host: HostId(0),
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
    Cluster {
        settings: Vec::new(),
        name: "leased".into(),
        target_version: "2.0".parse().unwrap(),
        policy: Policy::default(),
        hosts: vec![host("h1"), host("h2"), host("h3")],
        vms: (0..4).map(vm).collect(),
    }
}

struct Setup {
    store: Arc<dyn RunStore>,
    lease_clock: Arc<ManualClock>,
    driver: Arc<SimDriver>,
    clock: Clock,
    _directory: tempfile::TempDir,
}

fn setup(cluster: &Cluster) -> Setup {
    let directory = tempfile::tempdir().unwrap();
    let lease_clock = Arc::new(ManualClock::new(EPOCH_MS));
    let sqlite = Store::open(&directory.path().join("state.db")).unwrap();
    let store: Arc<dyn RunStore> = Arc::new(SqliteStore::new(sqlite, lease_clock.clone()));
    let clock = Clock::virtual_from(EPOCH_MS);
    let config = SimDriverConfig {
        seed: 3,
        faults: Vec::new(),
        random_faults: Default::default(),
        state_file: None,
        save_only_on_request: false,
    };
    let driver = Arc::new(SimDriver::new(cluster, clock.clone(), config).unwrap());
    Setup {
        store,
        lease_clock,
        driver,
        clock,
        _directory: directory,
    }
}

fn spec(cluster: &Cluster) -> NewRunSpec<'_> {
    NewRunSpec {
        run_id: "leased-1".into(),
        inventory_text: "",
        inventory_sha256: String::new(),
        cluster,
        options_json: "{}".into(),
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn an_engine_whose_lease_was_taken_over_stops_before_touching_the_platform() {
    let cluster = cluster();
    let setup = setup(&cluster);
    paused_runtime().block_on(async {
        let mut engine = Engine::create(
            Arc::clone(&setup.store),
            Arc::clone(&setup.driver),
            setup.clock.clone(),
            spec(&cluster),
        )
        .await
        .unwrap();
        let token_before = engine
            .lease()
            .expect("a started run is leased")
            .fencing_token;
        // This process pauses longer than its lease; another instance takes the run over.
        setup
            .lease_clock
            .advance(DEFAULT_LEASE_TTL + Duration::from_secs(1));
        let taken = setup
            .store
            .acquire_lease(
                "leased",
                "leased-1",
                "4242@another-machine",
                DEFAULT_LEASE_TTL,
            )
            .await
            .unwrap();
        assert!(taken.fencing_token > token_before);
        let entries_before = setup.store.entries("leased-1").await.unwrap().len();
        let mut calls = 0;
        let end = engine
            .drive(&mut |_: &Execution, event: EngineEvent<'_>| {
                if matches!(event, EngineEvent::Calling(_)) {
                    calls += 1;
                }
            })
            .await;
        assert!(matches!(end, Err(EngineError::Fenced(_))), "{end:?}");
        assert_eq!(calls, 0, "a fenced engine must not call the platform");
        assert_eq!(
            setup.store.entries("leased-1").await.unwrap().len(),
            entries_before,
            "a fenced engine must not write to the journal"
        );
        let discovered = setup.driver.discover().await.unwrap();
        assert!(discovered.hosts.iter().all(|host| !host.cordoned));
    });
}

#[test]
fn a_live_lease_of_another_machine_is_waited_out_then_taken_over() {
    let cluster = cluster();
    let setup = setup(&cluster);
    paused_runtime().block_on(async {
        let engine = Engine::create(
            Arc::clone(&setup.store),
            Arc::clone(&setup.driver),
            setup.clock.clone(),
            spec(&cluster),
        )
        .await
        .unwrap();
        drop(engine);
        // The run's holder is a process elsewhere (its liveness cannot be seen from here).
        setup.lease_clock.advance(DEFAULT_LEASE_TTL + Duration::from_secs(1));
        let elsewhere = setup
            .store
            .acquire_lease("leased", "leased-1", "77@another-machine", DEFAULT_LEASE_TTL)
            .await
            .unwrap();
        let busy = Engine::open(
            Arc::clone(&setup.store),
            Arc::clone(&setup.driver),
            setup.clock.clone(),
            "leased-1",
        )
        .await;
        assert!(
            matches!(&busy, Err(EngineError::RunBusy { holder, .. }) if holder == "77@another-machine"),
            "{:?}",
            busy.err()
        );
        // That machine stopped renewing: once its lease expired, this process takes the run
        // over with a newer token and completes it.
        setup.lease_clock.advance(DEFAULT_LEASE_TTL + Duration::from_secs(1));
        let mut engine = Engine::open(
            Arc::clone(&setup.store),
            Arc::clone(&setup.driver),
            setup.clock.clone(),
            "leased-1",
        )
        .await
        .unwrap();
        assert!(engine.lease().unwrap().fencing_token > elsewhere.fencing_token);
        let end = engine.drive(&mut |_, _| {}).await.unwrap();
        assert_eq!(end, drover_engine::DriveEnd::Finished(RunPhase::Completed));
        let lock = setup.store.cluster_lock("leased").await.unwrap();
        assert!(lock.is_none(), "a completed run frees its cluster: {lock:?}");
    });
}

#[test]
fn writes_whose_answer_was_lost_are_written_once() {
    use drover_dst::faulty_store::{FaultyStore, StoreFaults};
    use rand::SeedableRng;
    let cluster = cluster();
    let directory = tempfile::tempdir().unwrap();
    let lease_clock = Arc::new(ManualClock::new(EPOCH_MS));
    let sqlite = SqliteStore::new(
        Store::open(&directory.path().join("state.db")).unwrap(),
        lease_clock.clone(),
    );
    // One engine write in five commits but loses its answer; one in ten fails before it.
    let faults = StoreFaults {
        commit_failure: 0.1,
        lost_acknowledgement: 0.2,
        lease_loss: 0.0,
    };
    let rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let store = Arc::new(FaultyStore::new(sqlite, lease_clock, faults, rng));
    let setup = setup(&cluster);
    paused_runtime().block_on(async {
        let mut engine = Engine::create(
            Arc::clone(&store) as Arc<dyn RunStore>,
            Arc::clone(&setup.driver),
            setup.clock.clone(),
            spec(&cluster),
        )
        .await
        .unwrap();
        let end = engine.drive(&mut |_, _| {}).await.unwrap();
        assert_eq!(end, drover_engine::DriveEnd::Finished(RunPhase::Completed));
        assert!(store.injected() >= 10, "only {} faults", store.injected());
        let entries = store.entries("leased-1").await.unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for entry in &entries {
            let key = (entry.kind.clone(), entry.at_ms, entry.payload_json.clone());
            assert!(seen.insert(key), "entry {} was written twice", entry.seq);
        }
    });
}
