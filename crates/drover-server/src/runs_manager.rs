//! The runs this server drives: at most one per served cluster and `max_active_runs` in all,
//! each on its own thread (`run_thread`). An instance without room still creates a new run (or
//! applies an operator's command to an undriven one) and then hands it over: it releases the
//! lease at once and an instance with room adopts the run at its next look for orphans (the
//! fleet spreads through the store; no instance needs to know the others' addresses). Starts new runs, resumes unfinished ones at startup
//! and, every third of the lease time, adopts a moving run whose holder stopped renewing its
//! lease (another instance died: start = resume, from the journal), adopts a run whose driver
//! died when an operator acts on it, and routes operator commands to the thread that drives the
//! run. Runs waiting for an operator are left where they are until one acts.
//!
//! Every queue is bounded and every wait has a timeout. This module must not know HTTP.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_core::execution::OperatorCommand;
use drover_engine::engine::holder_is_alive;
use drover_store::RunStore;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::config::ClusterEntry;
use super::metrics::Metrics;
use super::problem::ApiError;
use super::run_thread::{self, Driving, RunCommand, RunIo, RunStart};
use super::tracker::StepChange;
use super::views::RunView;

/// Commands queued for one run before senders are told to wait (each answered in milliseconds).
const COMMAND_QUEUE_CAPACITY: usize = 16;
/// Step changes kept for slow event-stream readers (older ones are dropped for them).
const STEP_QUEUE_CAPACITY: usize = 1024;
/// How long starting a run (discovery included) may take before the API gives up waiting.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an operator command may wait for the run's verdict.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// A run driven by this server.
pub struct RunHandle {
    pub run_id: String,
    pub view: watch::Receiver<Option<Arc<RunView>>>,
    pub steps: broadcast::Sender<StepChange>,
    commands: mpsc::Sender<RunCommand>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl RunHandle {
    /// Whether its thread still drives (or waits on) the run.
    pub fn is_live(&self) -> bool {
        self.thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .is_some_and(|thread| !thread.is_finished())
    }

    pub fn latest_view(&self) -> Option<Arc<RunView>> {
        self.view.borrow().clone()
    }

    /// An unfinished run whose thread is alive: the cluster is busy.
    fn is_busy(&self) -> bool {
        self.is_live() && self.latest_view().is_none_or(|view| !view.finished)
    }
}

pub struct RunManager {
    store: Arc<dyn RunStore>,
    /// How long this instance's leases last without renewal.
    lease_ttl: Duration,
    /// The most runs this instance drives at once.
    max_active_runs: usize,
    /// Where drivers keep the files their section places nowhere (the simulated platform).
    files_prefix: PathBuf,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    /// The newest run driven here, per cluster.
    by_cluster: Mutex<BTreeMap<String, Arc<RunHandle>>>,
}

impl RunManager {
    pub fn new(
        store: Arc<dyn RunStore>,
        files_prefix: PathBuf,
        limits: RunLimits,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        RunManager {
            store,
            lease_ttl: limits.lease_ttl,
            max_active_runs: limits.max_active_runs,
            files_prefix,
            metrics,
            shutdown,
            by_cluster: Mutex::new(BTreeMap::new()),
        }
    }

    fn handles(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<RunHandle>>> {
        self.by_cluster
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn for_cluster(&self, cluster: &str) -> Option<Arc<RunHandle>> {
        self.handles().get(cluster).cloned()
    }

    pub fn for_run(&self, run_id: &str) -> Option<Arc<RunHandle>> {
        self.handles()
            .values()
            .find(|handle| handle.run_id == run_id)
            .cloned()
    }

    /// Whether this instance drives `max_active_runs` runs already (it adopts no more).
    fn is_full(&self) -> bool {
        busy_runs(&self.handles()) >= self.max_active_runs
    }

    pub fn all(&self) -> Vec<Arc<RunHandle>> {
        self.handles().values().cloned().collect()
    }

    /// Starts a thread for a run of `cluster` and waits until its engine is open.
    pub async fn start(
        &self,
        cluster: &str,
        run_id: &str,
        start: RunStart,
    ) -> Result<Arc<RunView>, ApiError> {
        let (ready_sender, ready) = oneshot::channel();
        let handle = {
            let mut handles = self.handles();
            if let Some(current) = handles.get(cluster).filter(|h| h.is_busy()) {
                return Err(ApiError::Conflict(format!(
                    "cluster {cluster} already has an unfinished run: {}",
                    current.run_id
                )));
            }
            let driving = busy_runs(&handles);
            let driving = if driving < self.max_active_runs {
                Driving::Here
            } else if start.changes_the_run() {
                // A new run, or an operator's command: done here, driven by whoever has room.
                Driving::HandOver
            } else {
                return Err(ApiError::Conflict(format!(
                    "this instance already drives {driving} run(s), its max_active_runs; another instance with room can take run {run_id}"
                )));
            };
            let (view_sender, view) = watch::channel(None);
            let (steps, _) = broadcast::channel(STEP_QUEUE_CAPACITY);
            let (command_sender, commands) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
            let io = RunIo {
                view: view_sender,
                steps: steps.clone(),
                commands,
                shutdown: self.shutdown.clone(),
                metrics: Arc::clone(&self.metrics),
            };
            let thread = run_thread::spawn(
                start,
                driving,
                Arc::clone(&self.store),
                self.lease_ttl,
                self.files_prefix.clone(),
                io,
                ready_sender,
            )
            .map_err(ApiError::internal)?;
            let handle = Arc::new(RunHandle {
                run_id: run_id.to_string(),
                view,
                steps,
                commands: command_sender,
                thread: Mutex::new(Some(thread)),
            });
            handles.insert(cluster.to_string(), Arc::clone(&handle));
            handle
        };
        let outcome = tokio::time::timeout(START_TIMEOUT, ready).await;
        let result = match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ApiError::Internal(format!(
                "run {run_id}: its thread stopped before opening"
            ))),
            Err(_) => Err(ApiError::Internal(format!(
                "run {run_id}: not open after {START_TIMEOUT:?}"
            ))),
        };
        if result.is_err() {
            let mut handles = self.handles();
            if handles
                .get(cluster)
                .is_some_and(|h| Arc::ptr_eq(h, &handle))
            {
                handles.remove(cluster);
            }
        }
        result
    }

    /// Sends an operator command to the thread driving the run and waits for its verdict.
    pub async fn operate(
        &self,
        handle: &RunHandle,
        command: OperatorCommand,
        by: &str,
    ) -> Result<(), ApiError> {
        let (reply, verdict) = oneshot::channel();
        let message = RunCommand {
            command,
            by: by.to_string(),
            reply,
        };
        tokio::time::timeout(COMMAND_TIMEOUT, handle.commands.send(message))
            .await
            .map_err(|_| ApiError::Internal(format!("run {}: command queue full", handle.run_id)))?
            .map_err(|_| {
                ApiError::Conflict(format!("run {} is no longer driven here", handle.run_id))
            })?;
        match tokio::time::timeout(COMMAND_TIMEOUT, verdict).await {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(_)) => Err(ApiError::Conflict(format!(
                "run {} stopped before answering",
                handle.run_id
            ))),
            Err(_) => Err(ApiError::Internal(format!(
                "run {}: no answer within {COMMAND_TIMEOUT:?}",
                handle.run_id
            ))),
        }
    }

    /// Adopts a run nobody drives (its process is gone) and applies a command to it first.
    pub async fn adopt_with_command(
        &self,
        cluster: &str,
        run_id: &str,
        command: OperatorCommand,
        by: &str,
    ) -> Result<(), ApiError> {
        let (reply, verdict) = oneshot::channel();
        let start = RunStart::Open {
            run_id: run_id.to_string(),
            command: Some(RunCommand {
                command,
                by: by.to_string(),
                reply,
            }),
        };
        self.start(cluster, run_id, start).await?;
        tokio::time::timeout(COMMAND_TIMEOUT, verdict)
            .await
            .map_err(|_| ApiError::Internal(format!("run {run_id}: no answer")))?
            .map_err(|_| ApiError::Internal(format!("run {run_id}: its thread stopped")))?
    }

    /// At startup: resumes the newest unfinished run of each served cluster whose driving
    /// process is gone. A run driven by another live process is left to it.
    pub async fn resume_unfinished(&self, clusters: &[ClusterEntry]) {
        for cluster in clusters {
            match self.resumable_run(&cluster.name).await {
                Ok(Some(run_id)) => {
                    let start = RunStart::Open {
                        run_id: run_id.clone(),
                        command: None,
                    };
                    match self.start(&cluster.name, &run_id, start).await {
                        Ok(view) => eprintln!(
                            "resumed run {run_id} of cluster {} from its journal ({})",
                            cluster.name, view.phase
                        ),
                        Err(error) => eprintln!(
                            "could not resume run {run_id} of cluster {}: {}",
                            cluster.name,
                            error.problem().detail
                        ),
                    }
                }
                Ok(None) => {}
                Err(error) => eprintln!("cluster {}: {}", cluster.name, error.problem().detail),
            }
        }
    }

    async fn resumable_run(&self, cluster: &str) -> Result<Option<String>, ApiError> {
        let store = self.store.as_ref();
        let lock = store.cluster_lock(cluster).await?;
        if let Some(lock) = &lock {
            if lock.lease_live && holder_is_alive(&lock.holder) && !is_this_process(&lock.holder) {
                eprintln!(
                    "cluster {cluster}: run {} is driven by {}; leaving it to that process",
                    lock.run_id, lock.holder
                );
                return Ok(None);
            }
            return Ok(Some(lock.run_id.clone()));
        }
        let unfinished = store
            .runs(Some(cluster), 100)
            .await?
            .into_iter()
            .find(|run| !is_finished_state(&run.state));
        Ok(unfinished.map(|run| run.id))
    }

    /// Every third of the lease time until shutdown: adopts the moving runs of served clusters
    /// whose holder stopped renewing its lease (an instance that died or hung), so that a run
    /// goes on within the lease time plus one period of its holder's death.
    pub async fn adopt_orphans_periodically(
        &self,
        clusters: &[ClusterEntry],
        mut shutdown: watch::Receiver<bool>,
    ) {
        let period = (self.lease_ttl / 3).max(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = crate::shutdown::shutdown_requested(&mut shutdown) => return,
            }
            for cluster in clusters {
                self.adopt_orphan(cluster).await;
            }
        }
    }

    async fn adopt_orphan(&self, cluster: &ClusterEntry) {
        if self.for_cluster(&cluster.name).is_some_and(|h| h.is_busy()) || self.is_full() {
            return;
        }
        let orphan = match self.orphaned_run(&cluster.name).await {
            Ok(Some(run_id)) => run_id,
            Ok(None) => return,
            Err(error) => {
                eprintln!("cluster {}: {}", cluster.name, error.problem().detail);
                return;
            }
        };
        let start = RunStart::Open {
            run_id: orphan.clone(),
            command: None,
        };
        match self.start(&cluster.name, &orphan, start).await {
            Ok(view) => eprintln!(
                "took over run {orphan} of cluster {}: its holder stopped renewing its lease ({})",
                cluster.name, view.phase
            ),
            // Another instance may have taken it first: the lease decides, nothing to undo.
            Err(error) => eprintln!(
                "could not take over run {orphan} of cluster {}: {}",
                cluster.name,
                error.problem().detail
            ),
        }
    }

    /// The run of `cluster` that should be moving but whose lease nobody holds: its state is
    /// one the engine drives through (not waiting for an operator) and its lease expired or
    /// its holder is a process of this machine that is gone.
    async fn orphaned_run(&self, cluster: &str) -> Result<Option<String>, ApiError> {
        let Some(lock) = self.store.cluster_lock(cluster).await? else {
            return Ok(None);
        };
        if lock.lease_live && holder_is_alive(&lock.holder) {
            return Ok(None);
        }
        let Some(run) = self.store.run(&lock.run_id).await? else {
            return Ok(None);
        };
        Ok(is_moving_state(&run.state).then_some(run.id))
    }

    /// Waits (bounded) for every run thread to stop after shutdown was signalled.
    pub fn join_all(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        for handle in self.all() {
            let thread = handle
                .thread
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
            let Some(thread) = thread else { continue };
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                eprintln!(
                    "run {} did not stop in time; leaving it to the journal",
                    handle.run_id
                );
            }
        }
    }
}

/// How many of the handles still drive (or wait on) an unfinished run: what `max_active_runs`
/// bounds.
fn busy_runs(handles: &BTreeMap<String, Arc<RunHandle>>) -> usize {
    handles.values().filter(|h| h.is_busy()).count()
}

/// How long this instance's leases last and how many runs it drives at once.
pub struct RunLimits {
    pub lease_ttl: Duration,
    pub max_active_runs: usize,
}

/// Run states in which the engine drives a run on (the others wait for an operator or are
/// over).
fn is_moving_state(state: &str) -> bool {
    matches!(state, "starting" | "running" | "aborting")
}

/// Run states the engine writes when a run is over.
pub fn is_finished_state(state: &str) -> bool {
    matches!(state, "completed" | "aborted")
}

pub fn is_this_process(holder: &str) -> bool {
    holder == drover_engine::engine::holder_name()
}
