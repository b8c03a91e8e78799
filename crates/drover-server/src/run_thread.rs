//! One run, driven on a thread of its own with its own current-thread tokio runtime: paused for
//! virtual time (the simulator's `time_scale: 0`), real otherwise. The server talks to it only
//! through bounded channels (commands in; views and step changes out), which work across
//! runtimes.
//!
//! The run goes through the engine's one start/resume path (`Engine::create` / `Engine::open`,
//! then `drive`). While it drives, an operator command from the API is checked against a
//! read-only replay and handed to the engine as a journal request (the engine polls for them);
//! while it waits for an operator (`DriveEnd::NeedsOperator`), commands from the API are fed
//! to the engine directly, and requests written by a `drover` CLI in another process are polled
//! every 250 ms. On shutdown the drive future is dropped: calls in flight stay journaled as
//! intents without outcomes and are re-issued on the next start (the crash path, by design).
//!
//! This module must not know HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_app::catalog::UpgradeRecipe;
use drover_app::drivers::{open_driver, AnyDriver, DriverChoice};
use drover_app::runs::{relax_for_virtual_time, save_platform, sha256_hex};
use drover_app::AppError;
use drover_core::execution::{CommandKind, Execution, OperatorCommand, Outcome};
use drover_engine::engine::request;
use drover_engine::replay;
use drover_engine::{DriveEnd, Engine, EngineError, EngineEvent, NewRunSpec};
use drover_schema::inventory::InventoryFile;
use drover_store::Store;
use tokio::runtime::Runtime;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::metrics::{Metrics, MigrationResult};
use super::problem::ApiError;
use super::shutdown::shutdown_requested;
use super::tracker::{StepChange, Tracker};
use super::views::{check_action, run_view, RunContext, RunView};

/// How often the published view may change while events stream in (SSE throttles further).
const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// How often a run waiting for an operator looks for requests from other processes.
const REQUEST_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// An operator command for the run, with where to send the verdict.
pub struct RunCommand {
    pub command: OperatorCommand,
    pub by: String,
    pub reply: oneshot::Sender<Result<(), ApiError>>,
}

/// A run to create: the inventory (with the request's policy changes applied) and who asked.
pub struct NewRunRequest {
    pub run_id: String,
    pub inventory_path: PathBuf,
    pub inventory: InventoryFile,
    pub created_by: String,
    /// What each host's installer is told (release catalog paths, forced hosts).
    pub upgrade_recipes: std::collections::BTreeMap<String, UpgradeRecipe>,
}

/// How the thread starts its run.
pub enum RunStart {
    Create(Box<NewRunRequest>),
    /// Resume an existing run (after a restart, or adopted because its driver is gone), and
    /// apply a command first if one is given.
    Open {
        run_id: String,
        command: Option<RunCommand>,
    },
}

/// The thread's side of the channels.
pub struct RunIo {
    pub view: watch::Sender<Option<Arc<RunView>>>,
    pub steps: broadcast::Sender<StepChange>,
    pub commands: mpsc::Receiver<RunCommand>,
    pub shutdown: watch::Receiver<bool>,
    pub metrics: Arc<Metrics>,
}

/// Starts the thread. `ready` gets the first view once the engine is open (or why it is not).
pub fn spawn(
    start: RunStart,
    state_path: PathBuf,
    io: RunIo,
    ready: oneshot::Sender<Result<Arc<RunView>, ApiError>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("drover-run".into())
        .spawn(move || match RunTask::open(start, &state_path, io) {
            Ok(mut task) => {
                let _ = ready.send(Ok(task.publish_now()));
                task.run_until_stopped();
            }
            Err(error) => {
                let _ = ready.send(Err(error));
            }
        })
}

/// Sends views and step changes out, and feeds the metrics.
struct Publisher {
    view: watch::Sender<Option<Arc<RunView>>>,
    steps: broadcast::Sender<StepChange>,
    metrics: Arc<Metrics>,
    run_id: String,
    cluster: String,
    holder: String,
    last_publish: Option<Instant>,
}

impl Publisher {
    fn on_event(
        &mut self,
        tracker: &mut Tracker,
        execution: &Execution,
        event: &EngineEvent<'_>,
        now_ms: u64,
    ) {
        self.count(tracker, event, now_ms);
        for change in tracker.observe(execution, now_ms) {
            // No subscriber is not an error: the stream is for whoever watches.
            let _ = self.steps.send(change);
        }
        let due = self
            .last_publish
            .is_none_or(|at| at.elapsed() >= PUBLISH_INTERVAL);
        if due || matches!(event, EngineEvent::Phase(_)) {
            self.publish(tracker, execution, now_ms, true);
        }
    }

    fn count(&self, tracker: &mut Tracker, event: &EngineEvent<'_>, now_ms: u64) {
        match event {
            EngineEvent::Calling(command) => {
                tracker.call_started(command.id, now_ms);
                if matches!(command.kind, CommandKind::Migrate { .. }) {
                    self.metrics
                        .migration(&self.cluster, MigrationResult::Started);
                }
            }
            EngineEvent::Answered { command, outcome } => {
                if let Some(took_ms) = tracker.call_finished(command.id, now_ms) {
                    self.metrics.step_duration(command.kind.name(), took_ms);
                }
                if matches!(command.kind, CommandKind::Migrate { .. }) {
                    let result = match outcome {
                        Outcome::Succeeded(_) => MigrationResult::Succeeded,
                        _ => MigrationResult::Failed,
                    };
                    self.metrics.migration(&self.cluster, result);
                }
            }
            EngineEvent::Operator(_) | EngineEvent::Phase(_) => {}
        }
    }

    fn publish(
        &mut self,
        tracker: &Tracker,
        execution: &Execution,
        now_ms: u64,
        driven: bool,
    ) -> Arc<RunView> {
        let context = RunContext {
            run_id: &self.run_id,
            driven_by: (driven && !execution.is_finished()).then(|| self.holder.clone()),
            now_ms,
        };
        let view = Arc::new(run_view(&context, execution, tracker));
        self.view.send_replace(Some(Arc::clone(&view)));
        self.last_publish = Some(Instant::now());
        view
    }
}

enum DrivePhaseEnd {
    Ended(DriveEnd),
    Shutdown,
    Failed(EngineError),
}

enum WaitEnd {
    Applied,
    Shutdown,
    Failed(EngineError),
}

struct RunTask {
    engine: Engine<AnyDriver>,
    driver: Arc<AnyDriver>,
    clock: drover_engine::Clock,
    /// A second connection: read-only replays and requests while the engine drives.
    reader: Store,
    run_id: String,
    tracker: Tracker,
    publisher: Publisher,
    commands: mpsc::Receiver<RunCommand>,
    shutdown: watch::Receiver<bool>,
    drive_runtime: Runtime,
    /// A real-time runtime for waiting on an operator: a paused runtime would spin through
    /// its timers while nothing happens.
    wait_runtime: Runtime,
}

fn runtime(paused: bool) -> Result<Runtime, ApiError> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if paused {
        builder.start_paused(true);
    }
    builder.build().map_err(ApiError::internal)
}

fn open_store(state_path: &Path) -> Result<Store, ApiError> {
    Store::open(state_path).map_err(|error| {
        ApiError::Internal(format!("state file {}: {error}", state_path.display()))
    })
}

/// The simulated platform of a served cluster lives in one file per cluster next to the state
/// file (unless the inventory names one), so that the next run finds the platform as the last
/// one left it (hosts upgraded stay upgraded), as a real platform would.
fn keep_simulated_world_per_cluster(
    choice: &mut DriverChoice,
    inventory: &InventoryFile,
    state_path: &Path,
) {
    let drover_schema::inventory::DriverSection::Simulator(simulator) = &inventory.driver else {
        return;
    };
    if simulator.state_file.is_some() {
        return;
    }
    let state_name = state_path.file_name().map_or("drover.db".into(), |name| {
        name.to_string_lossy().into_owned()
    });
    let world = state_path.with_file_name(format!(
        "{state_name}.{}.sim.json",
        file_name_part(&inventory.cluster.name)
    ));
    choice.state_file = Some(std::path::absolute(&world).unwrap_or(world));
}

/// A cluster name as part of a file name: as written when it is safe there, else with unsafe
/// characters replaced and a hash of the name added (so two names never share a file).
fn file_name_part(name: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !name.is_empty() && name.chars().all(safe) && !name.starts_with('.') {
        return name.to_string();
    }
    let replaced: String = name
        .chars()
        .take(64)
        .map(|c| if safe(c) { c } else { '_' })
        .collect();
    format!("{replaced}-{}", &sha256_hex(name)[..12])
}

/// Opening the platform failed. A new run on a simulated world saved by an earlier run of a
/// different inventory is the operator's to settle (409), not an internal error.
fn driver_refused(choice: &DriverChoice, creating: bool, error: &AppError) -> ApiError {
    match (&choice.state_file, creating && choice.kind_name() == "simulator") {
        (Some(world), true) if world.exists() => ApiError::Conflict(format!(
            "{error}; the simulated platform kept in {} does not fit the inventory: remove that file to start it afresh from the inventory",
            world.display()
        )),
        _ => ApiError::Internal(error.to_string()),
    }
}

/// The run's driver options, plus who created it through the API (ignored when read back).
fn options_with_creator(choice: &DriverChoice, created_by: &str) -> String {
    let mut options: serde_json::Value =
        serde_json::from_str(&choice.options_json()).expect("driver options are JSON");
    if let Some(object) = options.as_object_mut() {
        object.insert("created_by".into(), created_by.into());
        object.insert("created_via".into(), "api".into());
    }
    options.to_string()
}

impl RunTask {
    fn open(start: RunStart, state_path: &Path, io: RunIo) -> Result<RunTask, ApiError> {
        let mut store = open_store(state_path)?;
        let reader = open_store(state_path)?;
        let (choice, inventory, run_id, pending) = match &start {
            RunStart::Create(new) => {
                let mut choice = DriverChoice::from_section(
                    &new.inventory.driver,
                    &new.inventory_path,
                    state_path,
                    &new.inventory.cluster.name,
                )
                .map_err(|error| ApiError::BadRequest {
                    field: "driver".into(),
                    detail: error.to_string(),
                })?;
                choice.upgrade_recipes = new.upgrade_recipes.clone();
                keep_simulated_world_per_cluster(&mut choice, &new.inventory, state_path);
                (choice, new.inventory.clone(), new.run_id.clone(), None)
            }
            RunStart::Open { run_id, .. } => {
                let record = reader
                    .run(run_id)?
                    .ok_or_else(|| ApiError::NotFound(format!("no run {run_id:?}")))?;
                let inventory = drover_schema::inventory::parse_inventory_file(
                    &record.inventory_text,
                    "inventory (stored with the run)",
                )
                .map_err(ApiError::internal)?;
                let choice = DriverChoice::from_options(&inventory.driver, &record.options_json)
                    .map_err(ApiError::internal)?;
                (choice, inventory, run_id.clone(), Some(()))
            }
        };
        relax_for_virtual_time(&mut store, &choice).map_err(ApiError::internal)?;
        let drive_runtime = runtime(choice.virtual_time())?;
        let wait_runtime = runtime(false)?;
        let mut tracker = Tracker::default();
        let (engine, driver, clock) = drive_runtime.block_on(async {
            let clock = match pending {
                None => choice.new_clock(),
                Some(()) => {
                    let last_at = reader
                        .entries(&run_id)?
                        .last()
                        .map_or(0, |entry| entry.at_ms);
                    choice.resumed_clock(last_at)
                }
            };
            let driver = Arc::new(
                open_driver(
                    &choice,
                    &inventory.driver,
                    &inventory.cluster,
                    clock.clone(),
                )
                .map_err(|error| driver_refused(&choice, pending.is_none(), &error))?,
            );
            let engine = match &start {
                RunStart::Create(new) => {
                    let spec = NewRunSpec {
                        run_id: run_id.clone(),
                        inventory_text: &inventory.source_text,
                        inventory_sha256: sha256_hex(&inventory.source_text),
                        cluster: &inventory.cluster,
                        options_json: options_with_creator(&choice, &new.created_by),
                    };
                    Engine::create(store, Arc::clone(&driver), clock.clone(), spec).await
                }
                RunStart::Open { .. } => {
                    // One replay: it opens the engine and builds the run's timeline.
                    let stored = drover_engine::StoredRun::load(&reader, &run_id)?;
                    Engine::open_stored(
                        store,
                        Arc::clone(&driver),
                        clock.clone(),
                        stored,
                        &mut |execution, at_ms| {
                            tracker.observe(execution, at_ms);
                        },
                    )
                }
            };
            let engine = engine.inspect_err(|_| {
                let _ = driver.save();
            })?;
            if matches!(start, RunStart::Create(_)) {
                tracker.observe(engine.execution(), clock.now_ms());
            }
            Ok::<_, ApiError>((engine, driver, clock))
        })?;
        let publisher = Publisher {
            view: io.view,
            steps: io.steps,
            metrics: io.metrics,
            run_id: run_id.clone(),
            cluster: inventory.cluster.name.clone(),
            holder: engine.holder().to_string(),
            last_publish: None,
        };
        let mut task = RunTask {
            engine,
            driver,
            clock,
            reader,
            run_id: run_id.clone(),
            tracker,
            publisher,
            commands: io.commands,
            shutdown: io.shutdown,
            drive_runtime,
            wait_runtime,
        };
        if let RunStart::Open {
            command: Some(command),
            ..
        } = start
        {
            task.apply_now(command);
        }
        Ok(task)
    }

    fn publish_now(&mut self) -> Arc<RunView> {
        let _context = self.drive_runtime.enter();
        let now_ms = self.clock.now_ms();
        self.publisher
            .publish(&self.tracker, self.engine.execution(), now_ms, true)
    }

    /// Feeds a command to the engine at once (it is not driving); replies with the verdict.
    fn apply_now(&mut self, command: RunCommand) -> bool {
        let _context = self.drive_runtime.enter();
        let verdict = check_action(self.engine.execution(), &command.command)
            .map_err(ApiError::Conflict)
            .and_then(|()| {
                self.engine
                    .operate(command.command.clone(), &command.by)
                    .map_err(ApiError::from)
            });
        let applied = verdict.is_ok();
        if applied {
            eprintln!(
                "run {}: `{}` by {}",
                self.publisher.run_id,
                command.command.name(),
                command.by
            );
        }
        let _ = command.reply.send(verdict);
        applied
    }

    fn run_until_stopped(&mut self) {
        let run_id = self.run_id.clone();
        loop {
            let end = self.drive_phase();
            self.save_platform();
            self.publish_now();
            match end {
                DrivePhaseEnd::Ended(DriveEnd::Finished(phase)) => {
                    eprintln!("run {run_id} finished: {}", phase.name());
                    return;
                }
                DrivePhaseEnd::Ended(DriveEnd::NeedsOperator(phase)) => {
                    eprintln!("run {run_id} waits for an operator ({})", phase.name());
                    match self.wait_phase() {
                        WaitEnd::Applied => self.publish_now(),
                        WaitEnd::Shutdown => return,
                        WaitEnd::Failed(error) => {
                            eprintln!("run {run_id} stopped: {error}");
                            return;
                        }
                    };
                }
                DrivePhaseEnd::Shutdown => {
                    eprintln!(
                        "run {run_id} interrupted by shutdown: calls in flight stay journaled as intents and are re-issued when the run is resumed"
                    );
                    return;
                }
                DrivePhaseEnd::Failed(error) => {
                    eprintln!("run {run_id} stopped: {error}");
                    return;
                }
            }
        }
    }

    fn save_platform(&self) {
        if let Err(error) = save_platform(&self.driver) {
            eprintln!("run {}: {error}", self.publisher.run_id);
        }
    }

    fn drive_phase(&mut self) -> DrivePhaseEnd {
        let RunTask {
            engine,
            clock,
            reader,
            run_id,
            tracker,
            publisher,
            commands,
            shutdown,
            drive_runtime,
            ..
        } = self;
        drive_runtime.block_on(async {
            let mut observer = |execution: &Execution, event: EngineEvent<'_>| {
                publisher.on_event(tracker, execution, &event, clock.now_ms());
            };
            let drive = engine.drive(&mut observer);
            tokio::pin!(drive);
            let mut commands_open = true;
            loop {
                tokio::select! {
                    end = &mut drive => {
                        return end.map_or_else(DrivePhaseEnd::Failed, DrivePhaseEnd::Ended);
                    }
                    command = commands.recv(), if commands_open => match command {
                        Some(command) => hand_to_engine(reader, run_id, clock, command),
                        None => commands_open = false,
                    },
                    _ = shutdown_requested(shutdown) => return DrivePhaseEnd::Shutdown,
                }
            }
        })
    }

    fn wait_phase(&mut self) -> WaitEnd {
        loop {
            match self.apply_requests() {
                Ok(0) => {}
                Ok(_) => return WaitEnd::Applied,
                Err(error) => return WaitEnd::Failed(error),
            }
            let RunTask {
                commands,
                shutdown,
                wait_runtime,
                ..
            } = self;
            let next = wait_runtime.block_on(async {
                tokio::select! {
                    command = commands.recv() => command.map_or(WaitNext::Closed, WaitNext::Command),
                    _ = tokio::time::sleep(REQUEST_POLL_INTERVAL) => WaitNext::Poll,
                    _ = shutdown_requested(shutdown) => WaitNext::Shutdown,
                }
            });
            match next {
                WaitNext::Command(command) => {
                    if self.apply_now(command) {
                        return WaitEnd::Applied;
                    }
                }
                WaitNext::Poll => {}
                // Nobody can send commands any more (the server is stopping).
                WaitNext::Closed | WaitNext::Shutdown => return WaitEnd::Shutdown,
            }
        }
    }

    /// Requests written by a `drover` CLI (or by the API while the engine drove).
    fn apply_requests(&mut self) -> Result<usize, EngineError> {
        let RunTask {
            engine,
            clock,
            tracker,
            publisher,
            drive_runtime,
            ..
        } = self;
        let _context = drive_runtime.enter();
        let mut observer = |execution: &Execution, event: EngineEvent<'_>| {
            publisher.on_event(tracker, execution, &event, clock.now_ms());
        };
        engine.apply_requests(&mut observer)
    }
}

enum WaitNext {
    Command(RunCommand),
    Poll,
    Closed,
    Shutdown,
}

/// While the engine drives: check the command against a replay of the journal, then write it
/// as a request, which the engine applies at its next poll (and checks again).
fn hand_to_engine(
    reader: &mut Store,
    run_id: &str,
    clock: &drover_engine::Clock,
    command: RunCommand,
) {
    let verdict = (|| {
        let execution = replay(reader, run_id)?.execution;
        check_action(&execution, &command.command).map_err(ApiError::Conflict)?;
        request(
            reader,
            run_id,
            &command.command,
            &command.by,
            clock.now_ms(),
        )?;
        eprintln!(
            "run {run_id}: `{}` by {} handed to the engine",
            command.command.name(),
            command.by
        );
        Ok(())
    })();
    let _ = command.reply.send(verdict);
}
