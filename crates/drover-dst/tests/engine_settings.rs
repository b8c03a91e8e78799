//! Blocking platform settings through the real engine and journal, on the simulator in virtual
//! time: a process killed between resolving HA/WLB and restoring them is resumed and restores
//! each once; a resolve in flight when the process dies is issued again (the simulator answers
//! the same saved text, here after a first call that never returned); a resolve the platform keeps refusing halts the run before any host,
//! naming the precheck, and `abort` then changes nothing.

use std::sync::Arc;

use drover_core::execution::{OperatorCommand, RunPhase};
use drover_core::{
    Cluster, Host, HostId, HostRole, HostState, PlatformSetting, Policy, RestartPolicy,
    SettingKind, Version, Vm, VmState,
};
use drover_engine::records::{from_json, IntentRecord};
use drover_engine::{
    Clock, Discovered, DriveEnd, Driver, DriverError, Engine, EngineEvent, HostFacts, NewRunSpec,
    ShutdownObserved,
};
use drover_sim::driver::{Fault, FaultKind, HistoryEventKind, SimDriver, SimDriverConfig};
use drover_store::Store;
use tokio::sync::Notify;

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
    Cluster {
        name: "settings".into(),
        target_version: "2.0".parse().unwrap(),
        policy: Policy {
            auto_resolve: true,
            max_step_attempts: 2,
            ..Policy::default()
        },
        hosts: vec![host("h1"), host("h2"), host("h3")],
        vms: vec![vm(0, 0), vm(1, 1)],
        settings: vec![
            PlatformSetting::pool(SettingKind::HaEnabled),
            PlatformSetting::pool(SettingKind::WlbEnabled),
            PlatformSetting::of_vm(SettingKind::VmMediaInserted, "vm1"),
        ],
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

struct Setup {
    cluster: Cluster,
    driver: Arc<SimDriver>,
    clock: Clock,
    state: std::path::PathBuf,
    _directory: tempfile::TempDir,
}

fn setup(faults: Vec<Fault>) -> Setup {
    let cluster = cluster();
    let clock = Clock::virtual_from(EPOCH_MS);
    let config = SimDriverConfig {
        seed: 7,
        faults,
        random_faults: Default::default(),
        state_file: None,
        save_only_on_request: false,
    };
    let driver = Arc::new(SimDriver::new(&cluster, clock.clone(), config).unwrap());
    let directory = tempfile::tempdir().unwrap();
    Setup {
        state: directory.path().join("state.db"),
        cluster,
        driver,
        clock,
        _directory: directory,
    }
}

async fn create(setup: &Setup) -> Engine<SimDriver> {
    let spec = NewRunSpec {
        run_id: "settings".into(),
        inventory_text: &drover_schema::inventory::inventory_to_yaml(&setup.cluster),
        inventory_sha256: String::new(),
        cluster: &setup.cluster,
        options_json: "{}".into(),
    };
    let store = Store::open(&setup.state).unwrap();
    Engine::create(store, Arc::clone(&setup.driver), setup.clock.clone(), spec)
        .await
        .unwrap()
}

/// Drives until the engine is about to make a call of `step`, then drops it (a `kill -9`).
async fn kill_at(mut engine: Engine<SimDriver>, step: &str) {
    let killed = Notify::new();
    let mut observer = |_: &drover_core::execution::Execution, event: EngineEvent<'_>| {
        if let EngineEvent::Calling(command) = event {
            if command.kind.name() == step {
                killed.notify_one();
            }
        }
    };
    tokio::select! {
        biased;
        _ = killed.notified() => {}
        end = engine.drive(&mut observer) => panic!("the run ended before {step}: {end:?}"),
    }
}

/// Resumes the run and drives it to its end.
async fn resume_to_the_end(setup: &Setup) -> (DriveEnd, Engine<SimDriver>) {
    let store = Store::open(&setup.state).unwrap();
    let mut engine = Engine::open(
        store,
        Arc::clone(&setup.driver),
        setup.clock.clone(),
        "settings",
    )
    .await
    .unwrap();
    let end = engine.drive(&mut |_, _| {}).await.unwrap();
    (end, engine)
}

/// (resolves, restores, on) of a setting on the platform.
fn platform_setting(setup: &Setup, setting: &PlatformSetting) -> (u32, u32, bool) {
    let snapshot = setup.driver.snapshot();
    let state = snapshot
        .settings
        .iter()
        .find(|s| s.setting == *setting)
        .expect("the platform has the setting");
    (state.resolves, state.restores, state.on)
}

/// The steps of the run's journaled intents, in order.
fn journaled_steps(setup: &Setup) -> Vec<String> {
    let store = Store::open(&setup.state).unwrap();
    store
        .entries("settings")
        .unwrap()
        .into_iter()
        .filter(|entry| entry.kind == "intent")
        .map(|entry| {
            let intent: IntentRecord = from_json(&entry.payload_json).unwrap();
            let setting = intent.setting.map(|s| format!(" {s}"));
            format!("{}{}", intent.step, setting.unwrap_or_default())
        })
        .collect()
}

#[test]
fn a_run_killed_between_resolve_and_restore_restores_each_setting_once() {
    runtime().block_on(async {
        let setup = setup(Vec::new());
        let engine = create(&setup).await;
        kill_at(engine, "cordon").await;
        let ha = PlatformSetting::pool(SettingKind::HaEnabled);
        assert_eq!(
            platform_setting(&setup, &ha),
            (1, 0, false),
            "HA off when killed"
        );
        let (end, engine) = resume_to_the_end(&setup).await;
        assert_eq!(end, DriveEnd::Finished(RunPhase::Completed));
        assert_eq!(platform_setting(&setup, &ha), (1, 1, true));
        let wlb = PlatformSetting::pool(SettingKind::WlbEnabled);
        assert_eq!(platform_setting(&setup, &wlb), (1, 1, true));
        let media = PlatformSetting::of_vm(SettingKind::VmMediaInserted, "vm1");
        assert_eq!(
            platform_setting(&setup, &media),
            (1, 0, false),
            "media stays ejected"
        );
        let steps = journaled_steps(&setup);
        let position = |step: &str| steps.iter().position(|s| s == step).unwrap();
        let last_host_step = steps
            .iter()
            .rposition(|s| s.starts_with("uncordon"))
            .unwrap();
        assert!(
            position("resolve-setting ha-enabled") < position("cordon"),
            "{steps:?}"
        );
        assert!(
            position("restore-setting ha-enabled") > last_host_step,
            "{steps:?}"
        );
        let restores = steps
            .iter()
            .filter(|s| s.starts_with("restore-setting"))
            .count();
        assert_eq!(restores, 2, "{steps:?}");
        let report = engine.execution().report();
        assert_eq!(
            report.settings[0].saved.as_deref(),
            Some("simulated ha-enabled configuration 1")
        );
    });
}

/// The simulator, except that the first resolve never returns (and never reaches the
/// platform): the call is in flight when the process is killed.
struct FirstResolveHangs {
    platform: Arc<SimDriver>,
    hung: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Driver for FirstResolveHangs {
    fn kind(&self) -> &'static str {
        "simulator"
    }
    async fn discover(&self) -> Result<Discovered, DriverError> {
        self.platform.discover().await
    }
    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        self.platform.host_facts(host).await
    }
    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        self.platform.health_check(host).await
    }
    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        self.platform.set_allocation(host, enabled).await
    }
    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        self.platform.set_maintenance(host, enabled).await
    }
    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError> {
        self.platform.migrate(vm, from, to).await
    }
    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: std::time::Duration,
    ) -> Result<ShutdownObserved, DriverError> {
        self.platform.shutdown_vm(vm, host, graceful_timeout).await
    }
    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        self.platform.start_vm(vm, host).await
    }
    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        self.platform.upgrade(host, target).await
    }
    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), DriverError> {
        self.platform.reboot(host, boot_id_before).await
    }
    async fn set_compatibility_level(&self, cluster: &str, level: &str) -> Result<(), DriverError> {
        self.platform.set_compatibility_level(cluster, level).await
    }
    async fn resolve_setting(&self, setting: &PlatformSetting) -> Result<String, DriverError> {
        if !self.hung.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.platform.resolve_setting(setting).await
    }
    async fn restore_setting(
        &self,
        setting: &PlatformSetting,
        saved: &str,
    ) -> Result<(), DriverError> {
        self.platform.restore_setting(setting, saved).await
    }
}

#[test]
fn a_resolve_in_flight_when_the_process_dies_is_issued_again() {
    runtime().block_on(async {
        let setup = setup(Vec::new());
        let hanging = Arc::new(FirstResolveHangs {
            platform: Arc::clone(&setup.driver),
            hung: std::sync::atomic::AtomicBool::new(false),
        });
        let spec = NewRunSpec {
            run_id: "settings".into(),
            inventory_text: &drover_schema::inventory::inventory_to_yaml(&setup.cluster),
            inventory_sha256: String::new(),
            cluster: &setup.cluster,
            options_json: "{}".into(),
        };
        let store = Store::open(&setup.state).unwrap();
        let mut engine = Engine::create(store, hanging, setup.clock.clone(), spec)
            .await
            .unwrap();
        // Killed once the other resolves are answered and the first still hangs.
        let killed = Notify::new();
        let mut answered = 0;
        let mut observer = |_: &drover_core::execution::Execution, event: EngineEvent<'_>| {
            if let EngineEvent::Answered { command, .. } = event {
                if command.kind.name() == "resolve-setting" {
                    answered += 1;
                    if answered == 2 {
                        killed.notify_one();
                    }
                }
            }
        };
        tokio::select! {
            biased;
            _ = killed.notified() => {}
            end = engine.drive(&mut observer) => panic!("the run ended with a resolve hung: {end:?}"),
        }
        drop(engine);
        let ha = PlatformSetting::pool(SettingKind::HaEnabled);
        assert_eq!(platform_setting(&setup, &ha), (0, 0, true), "HA untouched when killed");
        // A minute with no Drover process: the resume is journaled (`resumed`).
        tokio::time::advance(std::time::Duration::from_secs(60)).await;
        let (end, _) = resume_to_the_end(&setup).await;
        assert_eq!(end, DriveEnd::Finished(RunPhase::Completed));
        let ha = PlatformSetting::pool(SettingKind::HaEnabled);
        assert_eq!(platform_setting(&setup, &ha), (1, 1, true));
        // The intent was journaled before the kill and answered only after the resume: the
        // resumed process issued it again (the same command, so the same intent).
        let store = Store::open(&setup.state).unwrap();
        let entries = store.entries("settings").unwrap();
        let intent = entries
            .iter()
            .find(|entry| {
                entry.kind == "intent"
                    && from_json::<IntentRecord>(&entry.payload_json)
                        .unwrap()
                        .setting
                        .as_deref()
                        == Some("ha-enabled")
            })
            .unwrap();
        let command = from_json::<IntentRecord>(&intent.payload_json)
            .unwrap()
            .command;
        let resumed = entries
            .iter()
            .find(|entry| entry.payload_json.contains("\"input\":\"resumed\""))
            .expect("the journal records the resume");
        let answered = entries
            .iter()
            .find(|entry| {
                entry.payload_json.contains("\"input\":\"outcome\"")
                    && entry
                        .payload_json
                        .contains(&format!("\"command\":{command},"))
            })
            .expect("the resolve was answered");
        assert!(intent.seq < resumed.seq && resumed.seq < answered.seq);
        assert!(answered
            .payload_json
            .contains("simulated ha-enabled configuration 1"));
    });
}

#[test]
fn a_refused_resolve_halts_before_any_host_naming_the_precheck() {
    runtime().block_on(async {
        let setup = setup(vec![Fault::new(FaultKind::SettingResolveFails)]);
        let mut engine = create(&setup).await;
        let end = engine.drive(&mut |_, _| {}).await.unwrap();
        let DriveEnd::NeedsOperator(RunPhase::Halted { reason }) = end else {
            panic!("not halted: {end:?}");
        };
        assert!(reason.starts_with("precheck ha-enabled:"), "{reason}");
        assert!(reason.contains("no host was touched"), "{reason}");
        let history = setup.driver.snapshot().history;
        assert!(
            history.iter().all(|event| !matches!(
                event.kind,
                HistoryEventKind::AllocationChanged { .. }
                    | HistoryEventKind::MaintenanceChanged { .. }
                    | HistoryEventKind::VmMigrated { .. }
            )),
            "{history:?}"
        );
        engine
            .operate(OperatorCommand::Abort, "test")
            .await
            .unwrap();
        let end = engine.drive(&mut |_, _| {}).await.unwrap();
        assert_eq!(end, DriveEnd::Finished(RunPhase::Aborted));
        let ha = PlatformSetting::pool(SettingKind::HaEnabled);
        assert_eq!(platform_setting(&setup, &ha), (0, 0, true), "never changed");
        assert!(!journaled_steps(&setup)
            .iter()
            .any(|s| s.starts_with("restore-setting")));
    });
}

#[test]
fn the_journal_names_the_resolve_commands() {
    // The journal's intents are what `drover timeline` and the report read: one per setting.
    runtime().block_on(async {
        let setup = setup(Vec::new());
        let mut engine = create(&setup).await;
        let end = engine.drive(&mut |_, _| {}).await.unwrap();
        assert_eq!(end, DriveEnd::Finished(RunPhase::Completed));
        let steps = journaled_steps(&setup);
        let resolves: Vec<&String> = steps
            .iter()
            .filter(|s| s.starts_with("resolve-setting"))
            .collect();
        assert_eq!(
            resolves,
            vec![
                "resolve-setting ha-enabled",
                "resolve-setting wlb-enabled",
                "resolve-setting vm-media-inserted on vm1"
            ]
        );
    });
}
