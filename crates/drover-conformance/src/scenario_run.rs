//! Running the run-level scenarios on one platform: each run is started and resumed through
//! drover-app's launch (the one start/resume path of the CLI and the server), stored in a SQLite
//! store of its own, and driven by the engine, with drover-dst's invariants checked on the
//! platform's own state after every engine event and at the end.
//!
//! Each process that drives a run is a runtime of its own on a thread of its own (as the CLI's
//! `launch::runtime`): "kill -9" ends that runtime while a migration is in flight, which drops
//! the engine, its driver and every call in flight without saving anything — what a killed
//! process leaves. The platform outlives it (the emulator serves from the test's runtime, the
//! simulator keeps its world file, a fake platform its files).
//!
//! This module knows the scenarios and how runs are launched; it must not know any particular
//! driver (the fixture stages the platform).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_app::launch::{self, NewRun, Platform};
use drover_core::execution::{CommandKind, Execution, OperatorCommand, Outcome, RunPhase};
use drover_driver::Clock;
use drover_dst::invariants::Checker;
use drover_engine::{DriveEnd, Engine, EngineEvent, StoredRun};
use drover_sim::driver::WorldSnapshot;
use drover_store::{RunStore, SqliteStore};

use crate::scenarios::{world, Scenario, Stage, Staged};

/// How a scenario ended on one platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScenarioVerdict {
    Passed(String),
    Failed(String),
    OptedOut(String),
}

/// One scenario's result and its figures.
#[derive(Clone, Debug)]
pub struct ScenarioOutcome {
    pub scenario: Scenario,
    pub verdict: ScenarioVerdict,
    pub wall: Duration,
    /// Migrations that succeeded, and attempts that did not.
    pub migrations: usize,
    pub migrations_failed: usize,
    /// Restorations done after an abort: uncordons, exits from maintenance and VM starts that
    /// succeeded (a restore the platform keeps refusing is retried, and not counted).
    pub restores: usize,
}

/// Every scenario's outcome on one platform.
#[derive(Clone, Debug)]
pub struct ScenarioReport {
    pub platform: String,
    pub outcomes: Vec<ScenarioOutcome>,
}

impl ScenarioReport {
    pub fn passed(&self) -> Vec<Scenario> {
        self.with(|verdict| matches!(verdict, ScenarioVerdict::Passed(_)))
    }

    pub fn failed(&self) -> Vec<Scenario> {
        self.with(|verdict| matches!(verdict, ScenarioVerdict::Failed(_)))
    }

    pub fn opted_out(&self) -> Vec<Scenario> {
        self.with(|verdict| matches!(verdict, ScenarioVerdict::OptedOut(_)))
    }

    fn with(&self, wanted: impl Fn(&ScenarioVerdict) -> bool) -> Vec<Scenario> {
        self.outcomes
            .iter()
            .filter(|outcome| wanted(&outcome.verdict))
            .map(|outcome| outcome.scenario)
            .collect()
    }

    pub fn summary(&self) -> String {
        format!(
            "{}: {} scenarios passed, {} failed, {} opted out",
            self.platform,
            self.passed().len(),
            self.failed().len(),
            self.opted_out().len()
        )
    }
}

impl std::fmt::Display for ScenarioReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(formatter, "{}", self.summary())?;
        for outcome in &self.outcomes {
            let (word, detail) = match &outcome.verdict {
                ScenarioVerdict::Passed(detail) => ("ok     ", detail),
                ScenarioVerdict::Failed(detail) => ("FAILED ", detail),
                ScenarioVerdict::OptedOut(detail) => ("opt-out", detail),
            };
            writeln!(
                formatter,
                "  {word} {:<38} {:>6} ms  {} migrations ({} failed attempts), {} restores  {detail}",
                outcome.scenario.name(),
                outcome.wall.as_millis(),
                outcome.migrations,
                outcome.migrations_failed,
                outcome.restores
            )?;
        }
        Ok(())
    }
}

/// Runs every scenario on the fixture's platform, prints the report and panics listing every
/// failed scenario; returns the report when none failed.
pub async fn run_scenarios(stage: Arc<dyn Stage>) -> ScenarioReport {
    let mut outcomes = Vec::new();
    for scenario in crate::scenarios::selected_scenarios() {
        outcomes.push(run_scenario(Arc::clone(&stage), scenario).await);
    }
    let report = ScenarioReport {
        platform: stage.platform(),
        outcomes,
    };
    println!("{report}");
    if !report.failed().is_empty() {
        panic!("{}", report);
    }
    report
}

/// Runs one scenario (or reports the fixture's opt-out).
pub async fn run_scenario(stage: Arc<dyn Stage>, scenario: Scenario) -> ScenarioOutcome {
    let started = Instant::now();
    let mut outcome = ScenarioOutcome {
        scenario,
        verdict: ScenarioVerdict::Failed(String::new()),
        wall: Duration::ZERO,
        migrations: 0,
        migrations_failed: 0,
        restores: 0,
    };
    if let Some(reason) = stage.opt_out(scenario) {
        outcome.verdict = match reason.trim().is_empty() {
            true => ScenarioVerdict::Failed(format!("{scenario} is opted out without a reason")),
            false => ScenarioVerdict::OptedOut(reason),
        };
        return outcome;
    }
    let directory = match tempfile::tempdir() {
        Ok(directory) => directory,
        Err(error) => {
            outcome.verdict = ScenarioVerdict::Failed(format!("temporary directory: {error}"));
            return outcome;
        }
    };
    let staged = match stage
        .stage(scenario, &world(scenario), directory.path())
        .await
    {
        Ok(staged) => staged,
        Err(problem) => {
            outcome.verdict = ScenarioVerdict::Failed(format!("staging: {problem}"));
            return outcome;
        }
    };
    let path = directory.path().to_path_buf();
    let driven = tokio::task::spawn_blocking(move || {
        let mut tally = Tally::default();
        let result = drive_scenario(scenario, &staged, &path, &mut tally);
        drop(staged);
        (result, tally)
    })
    .await;
    let (result, tally) = match driven {
        Ok(driven) => driven,
        Err(panic) => (
            Err(format!("the scenario panicked: {panic}")),
            Tally::default(),
        ),
    };
    outcome.wall = started.elapsed();
    outcome.migrations = tally.migrations;
    outcome.migrations_failed = tally.migrations_failed;
    outcome.restores = tally.restores;
    outcome.verdict = match result {
        Ok(detail) => ScenarioVerdict::Passed(detail),
        Err(problem) => ScenarioVerdict::Failed(problem),
    };
    outcome
}

/// What the engine did, from its events: migration attempts per VM (destination, outcome), and
/// the restoring calls after an abort.
#[derive(Default)]
struct Tally {
    migrations: usize,
    migrations_failed: usize,
    restores: usize,
    aborted: bool,
    /// VM name → (destination, succeeded) of each answered migration, in order.
    attempts: BTreeMap<String, Vec<(String, bool)>>,
    /// Failed attempts that were timeouts or cancellations (the engine's or the driver's).
    timed_out: usize,
}

impl Tally {
    fn note(&mut self, execution: &Execution, event: &EngineEvent<'_>) {
        let cluster = execution.cluster();
        match event {
            EngineEvent::Operator(OperatorCommand::Abort) => self.aborted = true,
            EngineEvent::Answered { command, outcome } => {
                let restoring = matches!(
                    command.kind,
                    CommandKind::Uncordon { .. }
                        | CommandKind::ExitMaintenance { .. }
                        | CommandKind::StartVm { .. }
                );
                if self.aborted && restoring && matches!(outcome, Outcome::Succeeded(_)) {
                    self.restores += 1;
                }
                if let CommandKind::Migrate { vm, to, .. } = &command.kind {
                    let succeeded = matches!(outcome, Outcome::Succeeded(_));
                    if succeeded {
                        self.migrations += 1;
                    } else {
                        self.migrations_failed += 1;
                    }
                    let timed_out = match outcome {
                        Outcome::TimedOut => true,
                        Outcome::Failed { error, .. } => {
                            let error = error.to_lowercase();
                            error.contains("timed out")
                                || error.contains("timeout")
                                || error.contains("cancel")
                                || error.contains("still pending")
                        }
                        _ => false,
                    };
                    self.timed_out += usize::from(timed_out);
                    self.attempts
                        .entry(cluster.vm(*vm).name.clone())
                        .or_default()
                        .push((cluster.host(*to).name.clone(), succeeded));
                }
            }
            _ => {}
        }
    }

    /// A VM with a failed migration that the next successful one moved: (VM, the failed
    /// attempt's destination, where it went instead).
    fn moved_after_a_failure(&self) -> Option<(String, String, String)> {
        self.attempts.iter().find_map(|(vm, attempts)| {
            let failed = attempts.iter().position(|(_, succeeded)| !succeeded)?;
            let (landed, _) = attempts[failed..]
                .iter()
                .find(|(_, succeeded)| *succeeded)?;
            Some((vm.clone(), attempts[failed].0.clone(), landed.clone()))
        })
    }
}

/// How one process's drive ended.
enum ProcessEnd {
    Finished(RunPhase),
    NeedsOperator(RunPhase),
    /// Killed while a migration was in flight.
    Killed,
}

const RUN_ID_PREFIX: &str = "scenario";
const OPERATOR: &str = "conformance-scenario";
/// Processes one scenario may take (a start, a kill and a resume, an abort): a bound, not a
/// budget.
const MAX_PROCESSES: usize = 6;

fn drive_scenario(
    scenario: Scenario,
    staged: &Staged,
    directory: &Path,
    tally: &mut Tally,
) -> Result<String, String> {
    let inventory_path = directory.join("inventory.yaml");
    std::fs::write(&inventory_path, &staged.inventory_text)
        .map_err(|error| format!("writing the inventory: {error}"))?;
    let file = drover_schema::parse_inventory_file(&staged.inventory_text, "inventory.yaml")
        .map_err(|error| format!("the staged inventory: {error}"))?;
    let plan = drover_core::plan(&file.cluster);
    if !plan.is_feasible() {
        return Err("the staged platform has no safe plan".into());
    }
    let state_path = directory.join("state.db");
    let run_id = format!("{RUN_ID_PREFIX}-{}", scenario.name());
    let new = NewRun {
        run_id: run_id.clone(),
        inventory: &file,
        inventory_path: &inventory_path,
        files_prefix: &state_path,
        upgrade_recipes: BTreeMap::new(),
        keep_platform_per_cluster: false,
    };
    let run_driver = launch::new_run_driver(&new).map_err(|error| error.to_string())?;
    if run_driver.virtual_time() {
        return Err(
            "the platform runs in virtual time, which lives and dies with the engine's process; give it a time_scale".into(),
        );
    }
    let open_store = || -> Result<Arc<dyn RunStore>, String> {
        let store = SqliteStore::open(&state_path).map_err(|error| error.to_string())?;
        Ok(Arc::new(store))
    };
    let mut checker: Option<Checker> = None;
    let mut kill_pending = scenario == Scenario::KilledMidWaveResumes;
    let mut killed = 0;
    let mut operator: Option<OperatorCommand> = None;
    for process in 0..MAX_PROCESSES {
        let runtime = launch::runtime(&run_driver).map_err(|error| error.to_string())?;
        let kill_this_one = kill_pending;
        let ended = runtime.block_on(async {
            let store = open_store()?;
            launch::prepare_store(store.as_ref(), &run_driver).map_err(|e| e.to_string())?;
            let (platform, mut engine) = if process == 0 {
                let platform = Platform::open_new(run_driver.clone(), &file.cluster)
                    .map_err(|error| error.to_string())?;
                let initial = (staged.observe)(&platform.clock)?;
                checker = Some(Checker::new(
                    &file.cluster,
                    initial,
                    plan.summary.max_unavailable as usize,
                ));
                let engine = platform
                    .start(Arc::clone(&store), &new, serde_json::Map::new())
                    .await
                    .map_err(|error| format!("start: {error}"))?;
                (platform, engine)
            } else {
                let stored = StoredRun::load(store.as_ref(), &run_id)
                    .await
                    .map_err(|error| format!("resume: {error}"))?;
                let recorded = launch::recorded_run_driver(&stored.record)
                    .map_err(|error| error.to_string())?;
                let (cluster, _) = stored
                    .started_cluster()
                    .map_err(|error| error.to_string())?;
                let platform = Platform::open_recorded(recorded, &cluster, stored.last_at_ms())
                    .map_err(|error| error.to_string())?;
                let engine = platform
                    .resume(Arc::clone(&store), stored, &mut |_, _| {})
                    .await
                    .map_err(|error| format!("resume: {error}"))?;
                (platform, engine)
            };
            if let Some(command) = operator.take() {
                engine
                    .operate(command, OPERATOR)
                    .await
                    .map_err(|error| format!("operator: {error}"))?;
                tally.aborted = true;
            }
            let checker = checker.as_mut().ok_or("no checker")?;
            let ended = drive_one_process(
                &mut engine,
                &platform.clock,
                staged,
                checker,
                tally,
                kill_this_one,
            )
            .await?;
            if !matches!(ended, ProcessEnd::Killed) {
                // The operator's process stops driving: the next one may take the run at once.
                engine
                    .release_lease()
                    .await
                    .map_err(|error| format!("releasing the lease: {error}"))?;
                let _ = platform.persist();
            }
            let clock = platform.clock.clone();
            let report = engine.execution().report();
            let cluster = engine.execution().cluster().clone();
            Ok::<_, String>((ended, clock, report, cluster))
        });
        // The process ends here: its runtime, the engine, the driver and every call in flight.
        drop(runtime);
        let (ended, clock, report, cluster) = ended?;
        match ended {
            ProcessEnd::Killed => {
                killed += 1;
                kill_pending = false;
            }
            ProcessEnd::NeedsOperator(RunPhase::Halted { .. })
                if scenario == Scenario::HostNeverReturnsAbortRestores && !tally.aborted =>
            {
                // The operator aborts in a new process (`drover abort RUN`).
                operator = Some(OperatorCommand::Abort);
            }
            ProcessEnd::NeedsOperator(phase) => {
                return Err(format!(
                    "the run stopped for an operator ({}): {:?}",
                    phase.name(),
                    report.hosts_failed
                ));
            }
            ProcessEnd::Finished(phase) => {
                let snapshot = (staged.observe)(&clock)?;
                let completed = phase == RunPhase::Completed;
                let unrestorable: BTreeSet<String> = report
                    .restore_errors
                    .iter()
                    .map(|(host, _)| cluster.host(*host).name.clone())
                    .collect();
                let skipped: BTreeSet<String> = report
                    .hosts_skipped
                    .iter()
                    .map(|(host, _)| cluster.host(*host).name.clone())
                    .collect();
                let checker = checker.as_ref().ok_or("no checker")?;
                checker
                    .check_end(&snapshot, completed, &skipped, &unrestorable)
                    .map_err(|problem| format!("at the end: {problem}"))?;
                let target = &file.cluster.target_version;
                return expect_outcome(scenario, &phase, tally, killed, checker, &snapshot, target);
            }
        }
    }
    Err(format!(
        "the run did not finish within {MAX_PROCESSES} processes"
    ))
}

/// What each scenario must have come to, beyond the invariants.
fn expect_outcome(
    scenario: Scenario,
    phase: &RunPhase,
    tally: &Tally,
    killed: usize,
    checker: &Checker,
    snapshot: &WorldSnapshot,
    target: &drover_core::Version,
) -> Result<String, String> {
    let upgraded = snapshot
        .hosts
        .iter()
        .filter(|host| host.version == *target)
        .count();
    let completed = || -> Result<(), String> {
        match phase {
            RunPhase::Completed => Ok(()),
            other => Err(format!("the run ended {}, not completed", other.name())),
        }
    };
    match scenario {
        Scenario::FullRollingUpgrade => {
            completed()?;
            if tally.migrations == 0 {
                return Err("a rolling upgrade of hosts running VMs migrated none".into());
            }
            Ok(format!("completed; {upgraded} hosts at the target"))
        }
        Scenario::MigrationRefusedRetriedElsewhere => {
            completed()?;
            let (vm, refused, landed) = tally
                .moved_after_a_failure()
                .ok_or("no VM's migration failed and then succeeded")?;
            if refused == landed {
                return Err(format!(
                    "VM {vm} was refused by {refused} and retried on the same host"
                ));
            }
            Ok(format!(
                "completed; VM {vm} refused by {refused}, moved to {landed}"
            ))
        }
        Scenario::MigrationHangsCancelledAtTimeout => {
            completed()?;
            if tally.timed_out == 0 {
                return Err("no migration was given up at its timeout".into());
            }
            let (vm, _, landed) = tally
                .moved_after_a_failure()
                .ok_or("the hung VM never moved afterwards")?;
            Ok(format!(
                "completed; VM {vm}'s hung migration given up, then moved to {landed}"
            ))
        }
        Scenario::HostNeverReturnsAbortRestores => {
            if phase.name() != "aborted" {
                return Err(format!("the run ended {}, not aborted", phase.name()));
            }
            if checker.lost_hosts().is_empty() {
                return Err("no host was lost: the fault was not staged".into());
            }
            Ok(format!(
                "halted, aborted; lost {:?}, {} restorations",
                checker.lost_hosts(),
                tally.restores
            ))
        }
        Scenario::KilledMidWaveResumes => {
            completed()?;
            if killed == 0 {
                return Err("the process was never killed: no migration was in flight".into());
            }
            Ok(format!(
                "killed {killed}× with a migration in flight, resumed, completed"
            ))
        }
    }
}

/// Drives until the run finishes, needs an operator, or (`kill`) a migration is in flight.
async fn drive_one_process(
    engine: &mut Engine,
    clock: &Clock,
    staged: &Staged,
    checker: &mut Checker,
    tally: &mut Tally,
    kill: bool,
) -> Result<ProcessEnd, String> {
    let stop = tokio::sync::Notify::new();
    let mut failure: Option<String> = None;
    let mut kill_now = false;
    let mut observer = |execution: &Execution, event: EngineEvent<'_>| {
        tally.note(execution, &event);
        if failure.is_none() {
            let checked = (staged.observe)(clock).and_then(|snapshot| {
                checker
                    .check_step(&snapshot)
                    .map_err(|problem| format!("during the run: {problem}"))
            });
            if let Err(problem) = checked {
                failure = Some(problem);
                stop.notify_one();
            }
        }
        if kill
            && matches!(
                event,
                EngineEvent::Calling(command) if matches!(command.kind, CommandKind::Migrate { .. })
            )
        {
            kill_now = true;
            stop.notify_one();
        }
    };
    // Biased: the drive is polled first, so a stop asked by the observer lands when the drive
    // next waits — with the migration it just issued in flight.
    let end = tokio::select! {
        biased;
        end = engine.drive(&mut observer) => Some(end),
        _ = stop.notified() => None,
    };
    if let Some(problem) = failure {
        return Err(problem);
    }
    match end {
        None if kill_now => Ok(ProcessEnd::Killed),
        None => Err("the drive stopped without a reason".into()),
        Some(Ok(DriveEnd::Finished(phase))) => Ok(ProcessEnd::Finished(phase)),
        Some(Ok(DriveEnd::NeedsOperator(phase))) => Ok(ProcessEnd::NeedsOperator(phase)),
        Some(Err(error)) => Err(format!("engine: {error}")),
    }
}
