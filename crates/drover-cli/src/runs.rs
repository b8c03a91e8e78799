//! `drover run`, `resume`, `status`, `history` and the operator commands (`approve`, `retry`,
//! `skip`, `abort`, `continue`, `pause`, `unpause`): durable execution from the command line.
//!
//! A command that needs to drive a run takes the run's lock and drives it in the foreground until
//! it finishes or needs an operator again. If another live `drover` process drives the run, an
//! operator command is handed to it as a request in the journal instead.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use drover_app::catalog::{recipes_of, resolve_auto_compatibility_level};
use drover_app::launch::{self, NewRun, Platform};
use drover_app::plan::plan_upgrade;
use drover_app::report::{report_document, ReportContext, ReportDocument};
use drover_app::run_id::check_run_id;
use drover_app::runs::{sha256_hex, unused_run_id};
use drover_core::execution::{Execution, OperatorCommand, RunPhase};
use drover_engine::engine::{holder_is_alive, request};
use drover_engine::replay;
use drover_engine::{DriveEnd, Engine, StoredRun};
use drover_store::RunStore;

use crate::exit::Failure;
use crate::inventory_args::select_hosts;
use crate::output::OutputFormat;
use crate::progress::Progress;
use crate::report;
use crate::reviewed_plan;

/// Where the state (journal) lives: `--state`, else `DROVER_STATE`, else `./drover.db`.
#[derive(Args, Clone)]
pub struct StateArgs {
    /// State file (SQLite journal of runs).
    #[arg(
        long = "state",
        env = "DROVER_STATE",
        default_value = "drover.db",
        global = true
    )]
    pub state: PathBuf,
}

#[derive(Args)]
pub struct RunArgs {
    /// Inventory file (YAML; JSON accepted).
    #[arg(short = 'i', long = "inventory", env = "DROVER_INVENTORY")]
    inventory: PathBuf,
    /// Let Drover resolve resolvable precheck failures (shut down VMs that cannot move).
    #[arg(long)]
    resolve: bool,
    /// Upgrade only this host (repeatable); the others stay as they are.
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Upgrade this host even though it already runs the target (it has package updates).
    #[arg(long = "force-host", value_name = "HOST")]
    force_hosts: Vec<String>,
    /// Run id (default: cluster name and start time).
    #[arg(long)]
    run_id: Option<String>,
    /// Execute this reviewed plan (`drover plan -i INVENTORY -o json > FILE`): refused (exit 3)
    /// if the platform changed so that it is no longer the safe plan.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
}

#[derive(Args)]
pub struct RunSelector {
    /// Run id (default: the newest run; for operator commands the newest unfinished run).
    #[arg(value_name = "RUN")]
    pub run_positional: Option<String>,
    /// Run id, as a flag (the same as the positional RUN).
    #[arg(long = "run", value_name = "RUN", conflicts_with = "run_positional")]
    pub run_flag: Option<String>,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Args)]
pub struct ResumeArgs {
    /// Run id (default: the newest unfinished run).
    run: Option<String>,
    /// The inventory the run was started with; refused if it changed since.
    #[arg(short = 'i', long = "inventory")]
    inventory: Option<PathBuf>,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
}

#[derive(Args)]
pub struct HostCommandArgs {
    /// The host.
    pub host: String,
    /// Run id (default: the newest unfinished run).
    #[arg(value_name = "RUN")]
    pub run_positional: Option<String>,
    /// Run id, as a flag (the same as the positional RUN).
    #[arg(long = "run", value_name = "RUN", conflicts_with = "run_positional")]
    pub run_flag: Option<String>,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

impl RunSelector {
    /// The run named positionally or with `--run`.
    pub fn run(&self) -> Option<&str> {
        self.run_positional.as_deref().or(self.run_flag.as_deref())
    }
}

impl HostCommandArgs {
    /// The run named positionally or with `--run`.
    pub fn run(&self) -> Option<&str> {
        self.run_positional.as_deref().or(self.run_flag.as_deref())
    }
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub selector: RunSelector,
    /// Redraw every SECONDS until the run stops (finished, or waiting for an operator).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub watch: Option<u64>,
    /// With --watch: give up after this many seconds even if the run goes on.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 86_400,
        requires = "watch"
    )]
    pub watch_max_secs: u64,
}

#[derive(Args)]
pub struct HistoryArgs {
    /// Only runs of this cluster.
    #[arg(long)]
    cluster: Option<String>,
    /// At most this many runs, newest first.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
}

pub const EXIT_NEEDS_OPERATOR: u8 = 5;
pub const EXIT_ABORTED: u8 = 6;

pub(crate) fn open_store(state: &Path) -> Result<Arc<dyn RunStore>, Failure> {
    Ok(drover_app::stores::open_store(state)?)
}

/// Runs a command's store reads and writes (a networked store is async) on a runtime of its
/// own; commands that drive a run use the run's runtime instead.
pub(crate) fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::internal)?
        .block_on(future)
}

/// `drover run`: plans from the inventory, refuses an unsafe plan, then creates and drives a run.
pub fn run(args: &RunArgs, state: &StateArgs) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&args.inventory).map_err(|error| {
        Failure::bad_input(format!(
            "{}: cannot read the inventory: {error}",
            args.inventory.display()
        ))
    })?;
    let source_name = args.inventory.display().to_string();
    let mut file = drover_schema::inventory::parse_inventory_file(&text, &source_name)
        .map_err(Failure::bad_input)?;
    if args.resolve {
        file.cluster.policy.auto_resolve = true;
    }
    select_hosts(&mut file.cluster, &args.hosts, &args.force_hosts)?;
    if let Some(catalog) = &mut file.upgrade.catalog {
        let directory = args.inventory.parent().unwrap_or(Path::new(""));
        *catalog = directory.join(&*catalog).display().to_string();
    }
    resolve_auto_compatibility_level(&mut file)?;
    let mut planned = plan_upgrade(&file)?;
    planned.add_engine_update_precheck(&file);
    let plan_document = &planned.document;
    let reviewed = match &args.plan {
        Some(path) => {
            let reviewed = reviewed_plan::load(path)?;
            reviewed_plan::check_made_from(&reviewed, plan_document, path, &args.inventory)?;
            Some(reviewed)
        }
        None => None,
    };
    planned.check_safe()?;
    refuse_windows_that_never_open(&file.cluster.policy)?;
    let files_prefix = drover_app::stores::files_prefix(&state.state);
    let new = NewRun {
        run_id: String::new(),
        inventory: &file,
        inventory_path: &args.inventory,
        files_prefix: &files_prefix,
        upgrade_recipes: recipes_of(plan_document, &file.cluster),
        keep_platform_per_cluster: false,
    };
    let run_driver = launch::new_run_driver(&new)?;
    let simulated = run_driver.is_simulated();
    launch::runtime(&run_driver)?.block_on(async {
        let store = open_store(&state.state)?;
        let run_id = new_run_id(
            store.as_ref(),
            args.run_id.as_deref(),
            &file.cluster.name,
            state,
        )
        .await?;
        launch::prepare_store(store.as_ref(), &run_driver)?;
        let platform = Platform::open_new(run_driver, &file.cluster)?;
        let accepted = match &reviewed {
            Some(reviewed) => {
                Some(accept_reviewed(reviewed, &file, platform.driver.as_ref()).await?)
            }
            None => None,
        };
        let mut extra = serde_json::Map::new();
        if let Some(plan) = &accepted {
            extra = reviewed_plan::options_with_plan(extra, plan)?;
        }
        let new = NewRun {
            run_id: run_id.clone(),
            ..new
        };
        let engine = platform
            .start(store, &new, extra)
            .await
            .map_err(engine_failure)?;
        eprintln!(
            "run {run_id} started on the {} driver",
            platform.driver.kind()
        );
        let engine = match &accepted {
            Some(plan) => hold_to_reviewed_plan(engine, plan).await?,
            None => engine,
        };
        let result = drive_to_stop(engine, args.output, simulated).await;
        platform.persist()?;
        result
    })
}

/// The run id asked for (checked: well formed, not taken), or a free one.
async fn new_run_id(
    store: &dyn RunStore,
    asked: Option<&str>,
    cluster: &str,
    state: &StateArgs,
) -> Result<String, Failure> {
    let Some(id) = asked else {
        return Ok(unused_run_id(store, cluster).await?);
    };
    if let Err(why) = check_run_id(id) {
        return Err(Failure::bad_input(format!("--run-id {id:?}: {why}")));
    }
    if store.run(id).await.map_err(Failure::internal)?.is_some() {
        return Err(Failure::bad_input(format!(
            "run {id} already exists in {}",
            state.state.display()
        )));
    }
    Ok(id.to_string())
}

/// A run whose maintenance windows never open could never start a host: said before it
/// starts, with the exit code of an unsafe plan (3), and nothing is written.
fn refuse_windows_that_never_open(policy: &drover_core::Policy) -> Result<(), Failure> {
    let now = drover_engine::clock::wall_now_ms();
    if drover_engine::windows::never_open(&policy.windows, &policy.time_zone, now) {
        return Err(Failure::with_code(
            crate::exit::EXIT_NO_SAFE_PLAN,
            "policy.windows: no maintenance window ever opens, so no host could ever start; fix the windows or remove them",
        ));
    }
    Ok(())
}

/// Discovers the platform, plans it as the run will, and accepts the reviewed plan when the
/// only differences are the VMs that changed on the platform (saying which); refuses otherwise.
async fn accept_reviewed(
    reviewed: &drover_schema::document::PlanDocument,
    file: &drover_schema::inventory::InventoryFile,
    driver: &dyn drover_engine::Driver,
) -> Result<drover_schema::document::PlanDocument, Failure> {
    let limit = std::time::Duration::from_secs(file.cluster.policy.step_timeout_secs);
    let discovered = match tokio::time::timeout(limit, driver.discover()).await {
        Ok(Ok(discovered)) => discovered,
        Ok(Err(error)) => return Err(Failure::internal(format!("discovery failed: {error}"))),
        Err(_) => {
            return Err(Failure::internal(format!(
                "discovery timed out after {} s",
                limit.as_secs()
            )))
        }
    };
    let mut observed = file.clone();
    observed.cluster =
        drover_engine::merge::merge_inventory_with_discovery(&file.cluster, &discovered);
    let fresh = plan_upgrade(&observed)?;
    let accepted = reviewed_plan::accept(reviewed, &fresh, &file.cluster, &observed.cluster)?;
    match accepted.replanned_vms.is_empty() {
        true => eprintln!("the platform matches the reviewed plan: running it as reviewed"),
        false => eprintln!(
            "the platform changed since the plan was reviewed; re-planned only the VMs that changed (the rest runs as reviewed):\n  - {}",
            accepted.replanned_vms.join("\n  - ")
        ),
    }
    Ok(accepted.document)
}

/// The run plans from its own discovery; if the platform changed again in between, its plan
/// is not the accepted one and the run is aborted before any change.
async fn hold_to_reviewed_plan(
    mut engine: Engine,
    accepted: &drover_schema::document::PlanDocument,
) -> Result<Engine, Failure> {
    let execution = engine.execution();
    let planned =
        drover_schema::document::PlanDocument::new(execution.cluster(), execution.initial_plan());
    if reviewed_plan::same_waves(&planned, accepted) {
        return Ok(engine);
    }
    eprintln!(
        "run {}: the platform changed again while the run started; its plan is not the reviewed one: aborting before any change",
        engine.run_id()
    );
    engine
        .operate(OperatorCommand::Abort, &operator_name())
        .await
        .map_err(engine_failure)?;
    Ok(engine)
}

/// Drives until the run stops, then prints the report and maps the stop to an exit code.
async fn drive_to_stop(
    mut engine: Engine,
    output: OutputFormat,
    simulated: bool,
) -> Result<(), Failure> {
    let mut progress = Progress::new(engine.execution(), simulated);
    let end = engine
        .drive(&mut |execution, event| progress.on_event(execution, &event))
        .await
        .map_err(engine_failure)?;
    progress.finish();
    // This process stops driving: the next one (an operator command) may take the run at once.
    engine.release_lease().await.map_err(engine_failure)?;
    let run_id = engine.run_id().to_string();
    let document = end_report(&engine, simulated).await?;
    report::print_report(&document, output)?;
    stop_result(&run_id, engine.execution(), &document, &end)
}

/// The end report, with each host's steps read back from the journal the engine wrote.
async fn end_report(engine: &Engine, simulated: bool) -> Result<ReportDocument, Failure> {
    let entries = engine
        .store()
        .entries(engine.run_id())
        .await
        .map_err(Failure::internal)?;
    let spans = drover_engine::timeline::step_spans(&entries).map_err(Failure::internal)?;
    let context = ReportContext {
        spans: Some(&spans),
        simulated,
    };
    Ok(report_document(
        engine.run_id(),
        engine.execution(),
        &context,
    ))
}

fn stop_result(
    run_id: &str,
    execution: &Execution,
    document: &ReportDocument,
    end: &DriveEnd,
) -> Result<(), Failure> {
    match end {
        DriveEnd::Finished(RunPhase::Completed) => Ok(()),
        DriveEnd::Finished(_) => Err(Failure::with_code(
            EXIT_ABORTED,
            aborted_message(run_id, document),
        )),
        DriveEnd::NeedsOperator(phase) => Err(Failure::with_code(
            EXIT_NEEDS_OPERATOR,
            what_next(run_id, execution, phase),
        )),
    }
}

/// Says that everything was restored only when the report lists no restore left undone.
fn aborted_message(run_id: &str, document: &ReportDocument) -> String {
    if document.restore_errors.is_empty() {
        return format!("run {run_id} was aborted; every host Drover touched was restored");
    }
    let hosts: std::collections::BTreeSet<&str> = document
        .restore_errors
        .iter()
        .map(|e| e.host.as_str())
        .collect();
    format!(
        "run {run_id} was aborted; {} restore(s) could not be done on {} (see the report): restore them by hand",
        document.restore_errors.len(),
        hosts.into_iter().collect::<Vec<_>>().join(", ")
    )
}

/// Tells the operator what the run waits for and which commands move it on.
fn what_next(run_id: &str, execution: &Execution, phase: &RunPhase) -> String {
    let status = execution.status();
    let waiting_manual: Vec<String> = status
        .hosts
        .iter()
        .filter(|h| h.step == drover_core::execution::HostStep::AwaitingManualUpgrade)
        .map(|h| execution.cluster().host(h.host).name.clone())
        .collect();
    match phase {
        RunPhase::AwaitingApproval => format!("run {run_id} waits for approval: review `drover status {run_id}`, then `drover approve {run_id}`"),
        RunPhase::Halted { reason } => format!(
            "run {run_id} halted: {reason}\n  choose: `drover retry {run_id}`, `drover skip HOST {run_id}`, or `drover abort {run_id}`"
        ),
        _ if !waiting_manual.is_empty() => format!(
            "run {run_id} waits for the manual upgrade of {}: run the installer on each, then `drover continue HOST {run_id}`",
            waiting_manual.join(", ")
        ),
        _ if status.paused => format!("run {run_id} is paused: `drover unpause {run_id}` to go on"),
        _ => format!("run {run_id} stopped in phase {}", phase.name()),
    }
}

pub(crate) fn engine_failure(error: drover_engine::EngineError) -> Failure {
    use drover_engine::EngineError as E;
    match error {
        E::Operator(_)
        | E::UnknownRun(_)
        | E::ClusterLocked { .. }
        | E::RunBusy { .. }
        | E::NeverStarted(_) => Failure::bad_input(error),
        E::Store(ref store) if matches!(store, drover_store::StoreError::LockHeld { .. }) => {
            Failure::bad_input(error)
        }
        other => Failure::internal(other),
    }
}

/// The run named, or the newest one (unfinished first when `unfinished_only`).
pub(crate) async fn select_run(
    store: &dyn RunStore,
    run: Option<&str>,
    unfinished_only: bool,
) -> Result<drover_store::RunRecord, Failure> {
    if let Some(id) = run {
        return store
            .run(id)
            .await
            .map_err(Failure::internal)?
            .ok_or_else(|| Failure::bad_input(format!("no run {id:?} in the state file")));
    }
    let runs = store.runs(None, 100).await.map_err(Failure::internal)?;
    runs.into_iter()
        .find(|r| !unfinished_only || !matches!(r.state.as_str(), "completed" | "aborted"))
        .ok_or_else(|| {
            Failure::bad_input(if unfinished_only {
                "no unfinished run in the state file"
            } else {
                "no run in the state file"
            })
        })
}

/// `drover status`: replays the journal read-only and shows where every host is; with
/// `--watch`, again every few seconds until the run stops or `--watch-max-secs` passed.
pub fn status(args: &StatusArgs, state: &StateArgs) -> Result<(), Failure> {
    let Some(interval_secs) = args.watch else {
        return print_status_once(&args.selector, state).map(|_| ());
    };
    let started = std::time::Instant::now();
    let limit = std::time::Duration::from_secs(args.watch_max_secs);
    let interval = std::time::Duration::from_secs(interval_secs);
    let clear_screen = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        if clear_screen {
            // Home and clear, so each redraw replaces the last one.
            print!("\x1b[H\x1b[2J");
        }
        if print_status_once(&args.selector, state)? == Watch::Stopped {
            return Ok(());
        }
        if started.elapsed() + interval > limit {
            eprintln!(
                "status --watch: stopped watching after {}s (--watch-max-secs); the run goes on",
                args.watch_max_secs
            );
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

#[derive(PartialEq, Eq)]
enum Watch {
    GoesOn,
    Stopped,
}

/// Prints the status once; says whether the run still moves (driven by a live process and not
/// waiting for an operator).
fn print_status_once(args: &RunSelector, state: &StateArgs) -> Result<Watch, Failure> {
    let (record, execution, driven_by) = block_on(async {
        let store = open_store(&state.state)?;
        let record = select_run(store.as_ref(), args.run(), false).await?;
        let execution = replay(store.as_ref(), &record.id)
            .await
            .map_err(engine_failure)?
            .execution;
        let driven_by = driver_of(store.as_ref(), &record).await?;
        Ok((record, execution, driven_by))
    })?;
    report::print_status(&record, &execution, driven_by.as_deref(), args.output)?;
    let waits_for_operator = matches!(
        execution.phase(),
        RunPhase::Halted { .. } | RunPhase::AwaitingApproval
    );
    let moving = driven_by.is_some() && !execution.is_finished() && !waits_for_operator;
    Ok(if moving {
        Watch::GoesOn
    } else {
        Watch::Stopped
    })
}

/// The process driving a run now: the holder of its live lease, unless it is a process of
/// this machine that is gone.
async fn driver_of(
    store: &dyn RunStore,
    record: &drover_store::RunRecord,
) -> Result<Option<String>, Failure> {
    let lock = store
        .cluster_lock(&record.cluster)
        .await
        .map_err(Failure::internal)?;
    Ok(lock
        .filter(|l| l.run_id == record.id && l.lease_live && holder_is_alive(&l.holder))
        .map(|l| l.holder))
}

/// `drover history`: the runs in the state file, newest first.
pub fn history(args: &HistoryArgs, state: &StateArgs) -> Result<(), Failure> {
    let runs = block_on(async {
        let store = open_store(&state.state)?;
        store
            .runs(args.cluster.as_deref(), args.limit)
            .await
            .map_err(Failure::internal)
    })?;
    report::print_history(&runs, args.output)
}

/// `drover resume`: continues a run from its journal after a crash or a stop.
pub fn resume(args: &ResumeArgs, state: &StateArgs) -> Result<(), Failure> {
    let stored = block_on(async {
        let store = open_store(&state.state)?;
        let record = select_run(store.as_ref(), args.run.as_deref(), true).await?;
        StoredRun::load(store.as_ref(), &record.id)
            .await
            .map_err(engine_failure)
    })?;
    let record = &stored.record;
    if let Some(path) = &args.inventory {
        let text = std::fs::read_to_string(path).map_err(|error| {
            Failure::bad_input(format!(
                "{}: cannot read the inventory: {error}",
                path.display()
            ))
        })?;
        if sha256_hex(&text) != record.inventory_sha256 {
            return Err(Failure::bad_input(format!(
                "{} changed since run {} started; a run continues with the inventory it started with (start a new run for the new inventory)",
                path.display(),
                record.id
            )));
        }
    }
    drive_existing(state, stored, None, args.output)
}

/// Operator commands: applied here when no other process drives the run, else requested.
pub fn operate(
    command: OperatorCommand,
    run: Option<&str>,
    output: OutputFormat,
    state: &StateArgs,
) -> Result<(), Failure> {
    let stored = block_on(async {
        let store = open_store(&state.state)?;
        let unfinished_only = !matches!(command, OperatorCommand::Approve);
        let record = select_run(store.as_ref(), run, unfinished_only).await?;
        let stored = StoredRun::load(store.as_ref(), &record.id)
            .await
            .map_err(engine_failure)?;
        if matches!(command, OperatorCommand::Abort) && stored.never_started() {
            release_never_started(store.as_ref(), &record).await?;
            return Ok(None);
        }
        let execution = stored
            .replay(&mut |_, _| {})
            .map_err(engine_failure)?
            .execution;
        execution
            .check_operator(&command)
            .map_err(|error| Failure::bad_input(format!("run {}: {error}", record.id)))?;
        if let Some(holder) = driver_of(store.as_ref(), &record).await? {
            let now = drover_engine::clock::wall_now_ms();
            request(store.as_ref(), &record.id, &command, &operator_name(), now)
                .await
                .map_err(engine_failure)?;
            eprintln!(
                "run {} is driven by {holder}: `{}` handed to it",
                record.id,
                command.name()
            );
            return Ok(None);
        }
        Ok(Some(stored))
    })?;
    match stored {
        Some(stored) => drive_existing(state, stored, Some(command), output),
        None => Ok(()),
    }
}

/// A run with no journal at all (an older drover crashed while starting it): marked
/// never-started and its cluster released.
async fn release_never_started(
    store: &dyn RunStore,
    record: &drover_store::RunRecord,
) -> Result<(), Failure> {
    let now = drover_engine::clock::wall_now_ms();
    drover_engine::engine::release_never_started(store, record, now)
        .await
        .map_err(engine_failure)?;
    eprintln!(
        "run {} never started (no journal entry): marked never-started, cluster {} released",
        record.id, record.cluster
    );
    Ok(())
}

fn operator_name() -> String {
    std::env::var("USER").unwrap_or_else(|_| "operator".into())
}

/// Opens a run (replay + reconcile), applies an operator command if given, drives it.
fn drive_existing(
    state: &StateArgs,
    stored: StoredRun,
    command: Option<OperatorCommand>,
    output: OutputFormat,
) -> Result<(), Failure> {
    let run_driver = launch::recorded_run_driver(&stored.record)?;
    let simulated = run_driver.is_simulated();
    let options_json = stored.record.options_json.clone();
    launch::runtime(&run_driver)?.block_on(async {
        let store = open_store(&state.state)?;
        launch::refuse_never_started(store.as_ref(), &stored)
            .await
            .map_err(engine_failure)?;
        launch::prepare_store(store.as_ref(), &run_driver)?;
        let (cluster, _) = stored.started_cluster().map_err(engine_failure)?;
        let platform = Platform::open_recorded(run_driver, &cluster, stored.last_at_ms())?;
        let mut engine = platform
            .resume(store, stored, &mut |_, _| {})
            .await
            .map_err(engine_failure)?;
        check_still_reviewed_plan(&engine, &options_json)?;
        if let Some(command) = command {
            engine
                .operate(command, &operator_name())
                .await
                .map_err(engine_failure)?;
        }
        let result = drive_to_stop(engine, output, simulated).await;
        platform.persist()?;
        result
    })
}

/// A run started with `--plan` must replay to the plan it was started with.
fn check_still_reviewed_plan(engine: &Engine, options_json: &str) -> Result<(), Failure> {
    let Some(accepted) = reviewed_plan::stored_plan(options_json) else {
        return Ok(());
    };
    let execution = engine.execution();
    let replayed =
        drover_schema::document::PlanDocument::new(execution.cluster(), execution.initial_plan());
    if reviewed_plan::same_waves(&replayed, &accepted) {
        return Ok(());
    }
    Err(Failure::no_safe_plan(format!(
        "run {}: its journal replays to another plan than the reviewed one it started with; not continued",
        engine.run_id()
    )))
}

/// `drover sim-upgrade HOST`: on the simulator only, plays the operator who runs the installer
/// by hand on a host waiting for its manual upgrade (`policy.mode: manual`); then `drover
/// continue HOST` lets Drover verify and go on.
pub fn simulated_manual_upgrade(args: &HostCommandArgs, state: &StateArgs) -> Result<(), Failure> {
    let stored = block_on(async {
        let store = open_store(&state.state)?;
        let record = select_run(store.as_ref(), args.run(), true).await?;
        StoredRun::load(store.as_ref(), &record.id)
            .await
            .map_err(engine_failure)
    })?;
    let record = &stored.record;
    let run_driver = launch::recorded_run_driver(record)?;
    if run_driver.kind != "simulator" {
        return Err(Failure::bad_input(format!(
            "run {} does not run on the simulator",
            record.id
        )));
    }
    let (cluster, _) = stored.started_cluster().map_err(engine_failure)?;
    if cluster.host_named(&args.host).is_none() {
        return Err(Failure::bad_input(format!(
            "no host {:?} in run {}",
            args.host, record.id
        )));
    }
    launch::runtime(&run_driver)?.block_on(async {
        let platform = Platform::open_recorded(run_driver, &cluster, stored.last_at_ms())?;
        platform
            .driver
            .upgrade(&args.host, &cluster.target_version)
            .await
            .map_err(|error| {
                Failure::bad_input(format!("the installer on {} failed: {error}", args.host))
            })?;
        platform.persist()?;
        eprintln!(
            "{} now runs {}: `drover continue {} {}` to go on",
            args.host, cluster.target_version, args.host, record.id
        );
        Ok(())
    })
}
