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
use drover_app::launch::{self, NewRun, Platform};
use drover_app::AppError;
use drover_core::execution::{CommandKind, Execution, OperatorCommand, Outcome};
use drover_engine::engine::request;
use drover_engine::replay;
use drover_engine::{DriveEnd, Engine, EngineError, EngineEvent, StoredRun};
use drover_schema::inventory::InventoryFile;
use drover_store::RunStore;
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

impl RunStart {
    /// A new run, or an operator's command on a stored one: work that an instance without room
    /// still does before handing the run over. A bare resume or adoption is not.
    pub fn changes_the_run(&self) -> bool {
        match self {
            RunStart::Create(_) => true,
            RunStart::Open { command, .. } => command.is_some(),
        }
    }
}

/// The thread's side of the channels.
pub struct RunIo {
    pub view: watch::Sender<Option<Arc<RunView>>>,
    pub steps: broadcast::Sender<StepChange>,
    pub commands: mpsc::Receiver<RunCommand>,
    pub shutdown: watch::Receiver<bool>,
    pub metrics: Arc<Metrics>,
}

/// Whether the thread drives the run it opens, or leaves it to another instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driving {
    /// Drive the run until it finishes, waits for an operator, or the server stops.
    Here,
    /// This instance has no room (`max_active_runs`): create the run (or apply the operator's
    /// command), then release its lease at once, so that an instance with room adopts it at its
    /// next look for orphans. No driver call but discovery is made here.
    HandOver,
}

/// Starts the thread. `ready` gets the first view once the engine is open (or why it is not).
pub fn spawn(
    start: RunStart,
    driving: Driving,
    store: Arc<dyn RunStore>,
    lease_ttl: Duration,
    files_prefix: PathBuf,
    io: RunIo,
    ready: oneshot::Sender<Result<Arc<RunView>, ApiError>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("drover-run".into())
        .spawn(
            move || match RunTask::open(start, store, lease_ttl, &files_prefix, io) {
                Ok(mut task) if driving == Driving::HandOver => {
                    let _ = ready.send(Ok(task.hand_over()));
                }
                Ok(mut task) => {
                    let _ = ready.send(Ok(task.publish_now()));
                    task.run_until_stopped();
                }
                Err(error) => {
                    let _ = ready.send(Err(error));
                }
            },
        )
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
    engine: Engine,
    platform: Platform,
    clock: drover_engine::Clock,
    /// The server's store: read-only replays and requests while the engine drives.
    reader: Arc<dyn RunStore>,
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

/// Opening the platform failed. A new run on a simulated world saved by an earlier run of a
/// different inventory is the operator's to settle (409), not an internal error.
fn platform_refused(world: Option<&Path>, creating: bool, error: &AppError) -> ApiError {
    match world {
        Some(world) if creating && world.exists() => ApiError::Conflict(format!(
            "{error}; the simulated platform kept in {} does not fit the inventory: remove that file to start it afresh from the inventory",
            world.display()
        )),
        _ => ApiError::Internal(error.to_string()),
    }
}

/// Who created a run through the API, recorded beside its driver (ignored when read back).
fn creator(created_by: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut extra = serde_json::Map::new();
    extra.insert("created_by".into(), created_by.into());
    extra.insert("created_via".into(), "api".into());
    extra
}

impl RunTask {
    fn open(
        start: RunStart,
        store: Arc<dyn RunStore>,
        lease_ttl: Duration,
        files_prefix: &Path,
        io: RunIo,
    ) -> Result<RunTask, ApiError> {
        let wait_runtime = runtime(false)?;
        // The run's record is read once, before its runtime exists (its driver decides it).
        let stored = match &start {
            RunStart::Create(_) => None,
            RunStart::Open { run_id, .. } => {
                Some(wait_runtime.block_on(load(store.as_ref(), run_id))?)
            }
        };
        let run_driver = match (&start, &stored) {
            (RunStart::Create(new), _) => {
                launch::new_run_driver(&new_run(new, files_prefix, String::new())).map_err(
                    |error| ApiError::BadRequest {
                        field: "driver".into(),
                        detail: error.to_string(),
                    },
                )?
            }
            (_, Some(stored)) => {
                launch::recorded_run_driver(&stored.record).map_err(ApiError::internal)?
            }
            (RunStart::Open { .. }, None) => unreachable!("an opened run was read above"),
        };
        launch::prepare_store(store.as_ref(), &run_driver).map_err(ApiError::internal)?;
        let world = run_driver.platform_file().map(Path::to_path_buf);
        let drive_runtime = launch::runtime(&run_driver).map_err(ApiError::internal)?;
        let mut tracker = Tracker::default();
        let (engine, platform) = drive_runtime.block_on(async {
            match (&start, stored) {
                (RunStart::Create(new), _) => {
                    let request = new_run(new, files_prefix, new.run_id.clone());
                    let mut platform = Platform::open_new(run_driver, &new.inventory.cluster)
                        .map_err(|error| platform_refused(world.as_deref(), true, &error))?;
                    platform.lease_ttl = lease_ttl;
                    let engine = platform
                        .start(Arc::clone(&store), &request, creator(&new.created_by))
                        .await?;
                    tracker.observe(engine.execution(), platform.clock.now_ms());
                    Ok::<_, ApiError>((engine, platform))
                }
                (RunStart::Open { .. }, Some(stored)) => {
                    launch::refuse_never_started(store.as_ref(), &stored).await?;
                    let (cluster, _) = stored.started_cluster()?;
                    let mut platform =
                        Platform::open_recorded(run_driver, &cluster, stored.last_at_ms())
                            .map_err(|error| platform_refused(world.as_deref(), false, &error))?;
                    platform.lease_ttl = lease_ttl;
                    // One replay: it opens the engine and builds the run's timeline.
                    let engine = platform
                        .resume(Arc::clone(&store), stored, &mut |execution, at_ms| {
                            tracker.observe(execution, at_ms);
                        })
                        .await?;
                    Ok((engine, platform))
                }
                (RunStart::Open { .. }, None) => unreachable!("an opened run was read above"),
            }
        })?;
        let run_id = engine.run_id().to_string();
        let cluster = engine.execution().cluster().name.clone();
        let clock = platform.clock.clone();
        let publisher = Publisher {
            view: io.view,
            steps: io.steps,
            metrics: io.metrics,
            run_id: run_id.clone(),
            cluster,
            holder: engine.holder().to_string(),
            last_publish: None,
        };
        let mut task = RunTask {
            engine,
            platform,
            clock,
            reader: store,
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

    /// Leaves the run to another instance: the platform saved, the lease released (expired at
    /// once, the lock kept), the view saying nobody drives it. A release that fails only delays
    /// the adoption until the lease's own expiry.
    fn hand_over(&mut self) -> Arc<RunView> {
        self.save_platform();
        let run_id = self.run_id.clone();
        if let Err(error) = self.drive_runtime.block_on(self.engine.release_lease()) {
            eprintln!("run {run_id}: {error}; it is adopted when its lease expires");
        }
        eprintln!(
            "run {run_id} handed over: this instance drives its max_active_runs; an instance with room adopts it"
        );
        let _context = self.drive_runtime.enter();
        let now_ms = self.clock.now_ms();
        self.publisher
            .publish(&self.tracker, self.engine.execution(), now_ms, false)
    }

    fn publish_now(&mut self) -> Arc<RunView> {
        let _context = self.drive_runtime.enter();
        let now_ms = self.clock.now_ms();
        self.publisher
            .publish(&self.tracker, self.engine.execution(), now_ms, true)
    }

    /// Feeds a command to the engine at once (it is not driving); replies with the verdict.
    fn apply_now(&mut self, command: RunCommand) -> bool {
        let RunTask {
            engine,
            drive_runtime,
            ..
        } = self;
        let verdict = match check_action(engine.execution(), &command.command) {
            Err(why) => Err(ApiError::Conflict(why)),
            Ok(()) => drive_runtime
                .block_on(engine.operate(command.command.clone(), &command.by))
                .map_err(ApiError::from),
        };
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
                    // The next process may take the run at once (the journal is the truth).
                    if let Err(error) = self.drive_runtime.block_on(self.engine.release_lease()) {
                        eprintln!("run {run_id}: {error}");
                    }
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
        if let Err(error) = self.platform.persist() {
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
                        Some(command) => hand_to_engine(reader.as_ref(), run_id, clock, command).await,
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
        drive_runtime.block_on(async {
            let mut observer = |execution: &Execution, event: EngineEvent<'_>| {
                publisher.on_event(tracker, execution, &event, clock.now_ms());
            };
            engine.apply_requests(&mut observer).await
        })
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
async fn hand_to_engine(
    reader: &dyn RunStore,
    run_id: &str,
    clock: &drover_engine::Clock,
    command: RunCommand,
) {
    let verdict = async {
        let execution = replay(reader, run_id).await?.execution;
        check_action(&execution, &command.command).map_err(ApiError::Conflict)?;
        request(
            reader,
            run_id,
            &command.command,
            &command.by,
            clock.now_ms(),
        )
        .await?;
        eprintln!(
            "run {run_id}: `{}` by {} handed to the engine",
            command.command.name(),
            command.by
        );
        Ok(())
    }
    .await;
    let _ = command.reply.send(verdict);
}

/// A run and its journal; 404 when there is no such run.
async fn load(store: &dyn RunStore, run_id: &str) -> Result<StoredRun, ApiError> {
    match StoredRun::load(store, run_id).await {
        Err(EngineError::UnknownRun(_)) => Err(ApiError::NotFound(format!("no run {run_id:?}"))),
        other => Ok(other?),
    }
}

/// The launch request of a new run asked for through the API: the simulated platform outlives
/// the run (one world per served cluster, so a second run finds the hosts the first upgraded,
/// as on a real platform), its files beside the state file.
fn new_run<'a>(new: &'a NewRunRequest, files_prefix: &'a Path, run_id: String) -> NewRun<'a> {
    NewRun {
        run_id,
        inventory: &new.inventory,
        inventory_path: &new.inventory_path,
        files_prefix,
        upgrade_recipes: new.upgrade_recipes.clone(),
        keep_platform_per_cluster: true,
    }
}
