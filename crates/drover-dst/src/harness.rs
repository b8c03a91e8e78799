//! One deterministic simulation: a seed's scenario run by the real engine on the simulator
//! driver, in virtual time, with the engine crashed (dropped mid-step) and resumed from its
//! journal at random points, an operator answering every halt, and the invariants checked after
//! every engine event. A quarter of the seeds also get store faults (`faulty_store`: failed
//! commits, lost answers, a lease taken over), which the engine must survive like crashes.
//! Everything random comes from the seed.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_core::execution::{HostStep, OperatorCommand, RunPhase};
use drover_engine::{Clock, DriveEnd, Driver, Engine, NewRunSpec};
use drover_sim::driver::{SimDriver, SimDriverConfig};
use drover_store::{ManualClock, RunStore, SqliteStore, Store};
use rand::Rng;
use tokio::sync::Notify;

use crate::faulty_store::{FaultyStore, StoreFaults};
use crate::invariants::Checker;
use crate::scenario::{scenario, Scenario};

/// Engine sessions (crash-resume cycles and operator interventions) allowed per seed.
const MAX_SESSIONS: usize = 60;
/// Crashes injected per seed at most.
const MAX_CRASHES: u32 = 4;
/// Platform epoch for every simulation (2026-01-01), so timestamps read naturally.
const EPOCH_MS: u64 = 1_767_225_600_000;

#[derive(Clone, Debug, Default)]
pub struct SeedSummary {
    pub seed: u64,
    pub hosts: usize,
    pub vms: usize,
    pub faults: usize,
    pub crashes: u32,
    /// Store faults injected (failed commits, lost answers, leases taken over).
    pub store_faults: u64,
    pub operator_actions: Vec<String>,
    pub outcome: String,
    pub events: usize,
    pub feasible: bool,
    /// The run raised the cluster compatibility level after its last host.
    pub compatibility_level_raised: bool,
    /// Returns done (VMs migrated back home after their wave), and returns given up on.
    pub returns: usize,
    pub returns_failed: usize,
}

/// Simulated time a seed may take: far beyond any run the scenarios generate (hours), so a run
/// still going after it is stuck (a wait or retry without a bound), and is reported as such.
const MAX_SIMULATED_MS: u64 = 30 * 24 * 3600 * 1000;

/// Runs one seed with the default wall-time budget; `Err` carries the seed and what broke.
pub fn run_seed(seed: u64) -> Result<SeedSummary, String> {
    run_seed_within(seed, DEFAULT_WALL_LIMIT)
}

/// Wall time one seed may use by default before it counts as a failure (a release build needs
/// a few milliseconds per seed; a debug build under a loaded CI machine is given slack).
pub const DEFAULT_WALL_LIMIT: Duration = Duration::from_secs(20);

/// Runs one seed; a seed that uses more than `wall_limit` of wall time, or more than
/// [`MAX_SIMULATED_MS`] of simulated time, is a failure that names it, never a hang.
pub fn run_seed_within(seed: u64, wall_limit: Duration) -> Result<SeedSummary, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| format!("seed {seed}: runtime: {e}"))?;
    let deadline = Instant::now() + wall_limit;
    let bounded = async {
        // Biased: tokio picks the first branch to poll at random otherwise, and a seed must
        // replay exactly.
        tokio::select! {
            biased;
            result = simulate(seed, deadline) => result,
            _ = tokio::time::sleep(Duration::from_millis(MAX_SIMULATED_MS)) => Err(format!(
                "the run did not finish within {} simulated days",
                MAX_SIMULATED_MS / (24 * 3600 * 1000)
            )),
        }
    };
    runtime
        .block_on(bounded)
        .map_err(|message| format!("seed {seed}: {message}"))
}

async fn simulate(seed: u64, deadline: Instant) -> Result<SeedSummary, String> {
    let Scenario {
        cluster,
        faults,
        random_faults,
        mut rng,
    } = scenario(seed);
    let mut summary = SeedSummary {
        seed,
        hosts: cluster.hosts.len(),
        vms: cluster.vms.len(),
        faults: faults.len(),
        ..SeedSummary::default()
    };
    let plan = drover_core::plan(&cluster);
    summary.feasible = plan.is_feasible();
    if !summary.feasible {
        summary.outcome = "no safe plan".into();
        return Ok(summary);
    }
    let clock = Clock::virtual_from(EPOCH_MS);
    let fault_names: Vec<String> = faults
        .iter()
        .map(|f| {
            format!(
                "{}({})",
                f.kind.name(),
                f.vm.clone().or(f.host.clone()).unwrap_or_default()
            )
        })
        .collect();
    let config = SimDriverConfig {
        seed,
        faults,
        random_faults,
        state_file: None,
        save_only_on_request: false,
    };
    let driver =
        Arc::new(SimDriver::new(&cluster, clock.clone(), config).map_err(|e| e.to_string())?);
    let directory = scratch_directory()?;
    let state = directory.path().join("state.db");
    let checker = RefCell::new(Checker::new(
        &cluster,
        driver.snapshot(),
        plan.summary.max_unavailable as usize,
    ));
    let store = faulty_store(seed, &state)?;
    let spec = NewRunSpec {
        run_id: format!("dst-{seed}"),
        inventory_text: &inventory_text(&cluster),
        inventory_sha256: String::new(),
        cluster: &cluster,
        options_json: "{}".into(),
    };
    let mut engine = Engine::create(
        Arc::clone(&store) as Arc<dyn RunStore>,
        Arc::clone(&driver),
        clock.clone(),
        spec,
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut skipped = BTreeSet::new();
    // Hosts whose upgrade started (their first precheck), across crashes and resumes.
    let hosts_started = RefCell::new(BTreeSet::new());
    for _ in 0..MAX_SESSIONS {
        let crash_after = (summary.crashes < MAX_CRASHES && rng.random_bool(0.4))
            .then(|| rng.random_range(1..120usize));
        let crashed = Notify::new();
        let events = RefCell::new(0usize);
        let failure = RefCell::new(None::<String>);
        let trace = std::env::var_os("DROVER_DST_TRACE").is_some();
        let mut observer = |execution: &drover_core::execution::Execution,
                            event: drover_engine::EngineEvent<'_>| {
            *events.borrow_mut() += 1;
            if trace {
                eprintln!("{}", describe(execution, &event));
            }
            if failure.borrow().is_none() {
                let window_check =
                    check_window(execution, &event, &clock, &mut hosts_started.borrow_mut());
                if let Err(message) = window_check {
                    *failure.borrow_mut() = Some(message);
                } else if let Err(message) = checker.borrow_mut().check_step(&driver.snapshot()) {
                    *failure.borrow_mut() = Some(message);
                } else if Instant::now() > deadline {
                    // A retry loop without a bound shows up as events that never stop.
                    *failure.borrow_mut() = Some(format!(
                        "the seed used more wall time than its limit ({} engine events)",
                        *events.borrow()
                    ));
                }
            }
            if failure.borrow().is_some() {
                crashed.notify_one();
            }
            if Some(*events.borrow()) == crash_after {
                crashed.notify_one();
            }
        };
        let faults_before = store.injected();
        // Biased, so a seed replays exactly: the drive is polled first, and a crash requested
        // by the observer lands when the drive next yields.
        let end = tokio::select! {
            biased;
            end = engine.drive(&mut observer) => match end {
                Ok(end) => Some(end),
                // An injected store fault stops the engine like a crash.
                Err(_) if store.injected() > faults_before => None,
                Err(error) => return Err(format!("engine: {error}")),
            },
            _ = crashed.notified() => None,
        };
        summary.events += *events.borrow();
        if let Some(message) = failure.borrow_mut().take() {
            let snapshot = driver.snapshot();
            let history = history_tail(&snapshot);
            return Err(format!(
                "{message}\n  faults {fault_names:?}, operator {:?}\n  history (last {HISTORY_SHOWN} events):\n    {}",
                summary.operator_actions,
                history.join("\n    ")
            ));
        }
        match end {
            None => {
                summary.crashes += 1;
                engine = reopen(engine, &store, &driver, &clock).await?;
            }
            Some(DriveEnd::Finished(phase)) => {
                summary.outcome = phase.name().into();
                let completed = phase == RunPhase::Completed;
                let snapshot = driver.snapshot();
                let report = engine.execution().report();
                let cluster_view = engine.execution().cluster();
                let unrestorable: BTreeSet<String> = report
                    .restore_errors
                    .iter()
                    .map(|(h, _)| cluster_view.host(*h).name.clone())
                    .collect();
                checker.borrow().check_end(&snapshot, completed, &skipped, &unrestorable).map_err(|message| {
                    let history = history_tail(&snapshot);
                    format!(
                        "{message}\n  faults {fault_names:?}, operator {:?}, outcome {}\n  report {:?}\n  history:\n    {}",
                        summary.operator_actions,
                        phase.name(),
                        engine.execution().report(),
                        history.join("\n    ")
                    )
                })?;
                checker
                    .borrow()
                    .check_settings(&snapshot)
                    .map_err(|message| {
                        format!(
                            "{message}\n  faults {fault_names:?}, operator {:?}, outcome {}",
                            summary.operator_actions,
                            phase.name()
                        )
                    })?;
                checker
                    .borrow()
                    .check_compatibility_level(&snapshot, completed)
                    .map_err(|message| {
                        format!(
                            "{message}\n  faults {fault_names:?}, operator {:?}",
                            summary.operator_actions
                        )
                    })?;
                check_report(&engine, completed)?;
                if report.compatibility_level_raised != snapshot.compatibility_level {
                    return Err(format!(
                        "the report says the compatibility level raised is {:?}, the platform has {:?}",
                        report.compatibility_level_raised, snapshot.compatibility_level
                    ));
                }
                summary.compatibility_level_raised = report.compatibility_level_raised.is_some();
                summary.returns = report.returns;
                summary.returns_failed = report.returns_failed;
                summary.store_faults = store.injected();
                return Ok(summary);
            }
            Some(DriveEnd::NeedsOperator(phase)) => {
                let lost_hosts = checker.borrow().lost_hosts().clone();
                let faults_before = store.injected();
                let action = operate(
                    &mut engine,
                    &phase,
                    &mut rng,
                    &driver,
                    &lost_hosts,
                    &mut skipped,
                )
                .await;
                match action {
                    Ok(action) => summary.operator_actions.push(action),
                    // The operator's command met a store fault: the process stops, and the
                    // next one asks the operator again.
                    Err(_) if store.injected() > faults_before => {
                        engine = reopen(engine, &store, &driver, &clock).await?;
                    }
                    Err(message) => return Err(message),
                }
            }
        }
    }
    Err(format!(
        "the run did not finish within {MAX_SESSIONS} engine sessions (actions {:?})",
        summary.operator_actions
    ))
}

/// No host starts while the maintenance window is closed: a host's first call (its precheck)
/// is made while one of the policy's windows is open, as the calendar says (not the core).
fn check_window(
    execution: &drover_core::execution::Execution,
    event: &drover_engine::EngineEvent<'_>,
    clock: &Clock,
    hosts_started: &mut BTreeSet<drover_core::HostId>,
) -> Result<(), String> {
    let drover_engine::EngineEvent::Calling(command) = event else {
        return Ok(());
    };
    let drover_core::execution::CommandKind::ReadHostFacts { host } = command.kind else {
        return Ok(());
    };
    if execution.host_status(host).step != HostStep::Prechecking || !hosts_started.insert(host) {
        return Ok(());
    }
    let policy = &execution.cluster().policy;
    let now = clock.now_ms();
    if drover_engine::windows::is_open(&policy.windows, &policy.time_zone, now) {
        return Ok(());
    }
    Err(format!(
        "host {} started at {} ms while the maintenance window was closed",
        execution.cluster().host(host).name,
        now - EPOCH_MS
    ))
}

/// Platform events shown with a failure: the last ones (a runaway loop makes millions).
const HISTORY_SHOWN: usize = 80;

fn history_tail(snapshot: &drover_sim::driver::WorldSnapshot) -> Vec<String> {
    let skip = snapshot.history.len().saturating_sub(HISTORY_SHOWN);
    snapshot.history[skip..]
        .iter()
        .map(|e| format!("{}: {:?}", e.at_ms - EPOCH_MS, e.kind))
        .collect()
}

/// The seed's store: its SQLite file on a lease clock the harness moves, with the seed's
/// store faults.
fn faulty_store(seed: u64, state: &std::path::Path) -> Result<Arc<FaultyStore>, String> {
    let sqlite = Store::open(state).map_err(|e| e.to_string())?;
    let lease_clock = Arc::new(ManualClock::new(EPOCH_MS));
    let sqlite = SqliteStore::new(sqlite, lease_clock.clone());
    sqlite.relax_durability().map_err(|e| e.to_string())?;
    let (faults, rng) = StoreFaults::of_seed(seed);
    Ok(Arc::new(FaultyStore::new(sqlite, lease_clock, faults, rng)))
}

/// Tries to resume a crashed engine: a few store faults or a lease another holder took are
/// waited out, anything else is a failure of the seed.
const MAX_REOPEN_ATTEMPTS: usize = 20;

/// A crash: the engine is dropped; a new one opens the same journal.
async fn reopen(
    engine: Engine<SimDriver>,
    store: &Arc<FaultyStore>,
    driver: &Arc<SimDriver>,
    clock: &Clock,
) -> Result<Engine<SimDriver>, String> {
    let run_id = engine.run_id().to_string();
    drop(engine);
    let mut last_error = String::new();
    for _ in 0..MAX_REOPEN_ATTEMPTS {
        let faults_before = store.injected();
        let opened = Engine::open(
            Arc::clone(store) as Arc<dyn RunStore>,
            Arc::clone(driver),
            clock.clone(),
            &run_id,
        )
        .await;
        match opened {
            Ok(engine) => return Ok(engine),
            // Another holder took the lease (a lease-loss fault): it stops renewing, the
            // lease lapses, and this process takes the run over.
            Err(drover_engine::EngineError::RunBusy { holder, .. })
                if holder == crate::faulty_store::THIEF =>
            {
                store.let_leases_lapse();
            }
            Err(error) if store.injected() > faults_before => last_error = error.to_string(),
            Err(error) => return Err(format!("resume after crash: {error}")),
        }
    }
    Err(format!(
        "resume after crash: still failing after {MAX_REOPEN_ATTEMPTS} attempts: {last_error}"
    ))
}

/// The operator: approves, does manual upgrades by hand, and answers halts with retry, skip or
/// abort (a host that never returns is never retried forever).
async fn operate(
    engine: &mut Engine<SimDriver>,
    phase: &RunPhase,
    rng: &mut rand_chacha::ChaCha8Rng,
    driver: &Arc<SimDriver>,
    lost_hosts: &BTreeSet<String>,
    skipped: &mut BTreeSet<String>,
) -> Result<String, String> {
    let status = engine.execution().status();
    let cluster = engine.execution().cluster().clone();
    let command = if *phase == RunPhase::AwaitingApproval {
        OperatorCommand::Approve
    } else if let Some(host) = status
        .hosts
        .iter()
        .find(|h| h.step == HostStep::AwaitingManualUpgrade)
    {
        let name = cluster.host(host.host).name.clone();
        // The operator runs the installer; if it fails they still say continue, and Drover's
        // verification must catch it (wrong version or no reboot).
        let _ = driver.upgrade(&name, &cluster.target_version).await;
        OperatorCommand::Continue { host: name }
    } else if status.paused {
        OperatorCommand::Resume
    } else {
        let failed: Vec<String> = status
            .hosts
            .iter()
            .filter(|h| h.step == HostStep::UpgradeFailed)
            .map(|h| cluster.host(h.host).name.clone())
            .collect();
        let lost = failed.iter().find(|h| lost_hosts.contains(*h));
        // Without a safe plan a retry only helps if the platform changed, which nothing here
        // does: an operator gives up soon (before this, retrying forever left seeds such as
        // 11517 and 25485 unfinished; the engine is right to halt and explain).
        let no_safe_plan =
            matches!(phase, RunPhase::Halted { reason } if reason.starts_with("no safe plan"));
        match (lost, failed.first(), rng.random_range(0..10)) {
            (None, None, 0..=4) if no_safe_plan => OperatorCommand::Abort,
            (Some(host), _, 0..=6) | (None, Some(host), 7..=8) => {
                skipped.insert(host.clone());
                OperatorCommand::Skip { host: host.clone() }
            }
            (Some(_), _, _) | (None, _, 9) => OperatorCommand::Abort,
            _ => OperatorCommand::Retry,
        }
    };
    let name = match &command {
        OperatorCommand::Skip { host } | OperatorCommand::Continue { host } => {
            format!("{} {host}", command.name())
        }
        other => other.name().to_string(),
    };
    engine
        .operate(command, "dst")
        .await
        .map_err(|e| format!("operator {name} refused: {e}"))?;
    Ok(name)
}

/// The run's own report agrees with the platform.
fn check_report(engine: &Engine<SimDriver>, completed: bool) -> Result<(), String> {
    let report = engine.execution().report();
    if completed && !report.hosts_failed.is_empty() {
        return Err(format!(
            "a completed run reports failed hosts: {:?}",
            report.hosts_failed
        ));
    }
    // Every return the report counts is one listed as done; one given up is listed as failed.
    let listed = |phase: &str| {
        report
            .vm_actions
            .iter()
            .filter(|action| action.is_return && action.phase == phase)
            .count()
    };
    if (listed("done"), listed("failed")) != (report.returns, report.returns_failed) {
        return Err(format!(
            "the report counts {} returns ({} given up) but lists {} done ({} failed)",
            report.returns,
            report.returns_failed,
            listed("done"),
            listed("failed")
        ));
    }
    Ok(())
}

fn scratch_directory() -> Result<tempfile::TempDir, String> {
    // A RAM-backed directory keeps fsync cheap: hundreds of seeds, thousands of journal writes.
    let shm = std::path::Path::new("/dev/shm");
    let directory = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    directory.map_err(|e| format!("scratch directory: {e}"))
}

/// The cluster written as an inventory, stored with the run like `drover run` does.
fn inventory_text(cluster: &drover_core::Cluster) -> String {
    drover_schema::inventory::inventory_to_yaml(cluster)
}

/// One line per engine event, for `DROVER_DST_TRACE=1` when a seed needs explaining.
fn describe(
    execution: &drover_core::execution::Execution,
    event: &drover_engine::EngineEvent<'_>,
) -> String {
    let cluster = execution.cluster();
    let name = |command: &drover_core::execution::Command| {
        let host = command
            .kind
            .host()
            .map(|h| cluster.host(h).name.clone())
            .unwrap_or_default();
        let vm = command
            .kind
            .vm()
            .map(|v| cluster.vm(v).name.clone())
            .unwrap_or_default();
        format!("#{} {} {host} {vm}", command.id.0, command.kind.name())
    };
    match event {
        drover_engine::EngineEvent::Calling(command) => format!("call   {}", name(command)),
        drover_engine::EngineEvent::Answered { command, outcome } => {
            format!("answer {} -> {outcome:?}", name(command))
        }
        drover_engine::EngineEvent::Operator(command) => format!("operator {}", command.name()),
        drover_engine::EngineEvent::Phase(RunPhase::Halted { reason }) => {
            format!("phase halted: {reason}")
        }
        drover_engine::EngineEvent::Phase(phase) => format!("phase {}", phase.name()),
    }
}
