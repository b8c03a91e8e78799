//! The engine: a thin loop between the pure core and a driver.
//!
//! Start and resume are one path: [`Engine::open`] loads the run's journal (empty for a new run,
//! whose first entry is then the cluster as discovered), replays every input through a fresh
//! core, and re-issues the commands that were journaled as intents but never answered — safe,
//! because every driver call is idempotent and observes before acting. Then [`Engine::drive`]
//! writes each intent before its driver call and each outcome after it, as inputs, in order.
//!
//! Operator commands from other processes arrive as `request` entries in the journal; the engine
//! polls for them and turns the valid ones into inputs. One run per cluster: a lock in the store.
//! One driving process per run: a lease on that lock, renewed while the engine is open, whose
//! fencing token goes with every write, so an engine whose lease was taken over (it paused, or
//! lost the store for longer than the lease) is refused by the store and stops.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drover_core::execution::{
    Command, CommandId, CommandKind, Execution, Input, OperatorCommand, Outcome, RunPhase,
};
use drover_core::Cluster;
use drover_store::{
    ClusterLock, Lease, NewEntry, NewRun, RunStore, SqliteStore, Store, StoreError,
};
use tokio::sync::mpsc;

use crate::records::{self, KIND_INPUT, KIND_INTENT, KIND_REQUEST, KIND_START};
use crate::stored_run::StoredRun;
use crate::EngineError;
use drover_driver::{Clock, Driver, DriverCall, DriverError};

/// The most driver calls that may be outstanding at once (a bound on the outcome queue too).
const MAX_CALLS_IN_FLIGHT: usize = 1024;

/// The state of a run that was recorded but never wrote its start entry (see `release_unstarted`).
pub const NEVER_STARTED: &str = "never-started";

/// How long (wall time) the engine keeps trying a write the store could not take (busy,
/// restarting, out of reach) before it stops; the waits between tries double up to
/// `STORE_RETRY_MAX_DELAY`.
const STORE_RETRY_LIMIT: Duration = Duration::from_secs(120);
const STORE_RETRY_FIRST_DELAY: Duration = Duration::from_millis(100);
const STORE_RETRY_MAX_DELAY: Duration = Duration::from_secs(5);

/// How often (in wall time) a running engine looks for operator requests from other processes.
const REQUEST_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long a run's lease lasts without renewal (wall time): another process may take the run
/// over this long after its driver stopped renewing (a process on the same machine that is
/// gone is taken over at once). Renewed every third of it.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);

/// A store given to the engine: any `RunStore`, or the SQLite `Store` of a caller that opened
/// one (wrapped as a `SqliteStore`).
pub trait IntoRunStore {
    fn into_run_store(self) -> Arc<dyn RunStore>;
}

impl IntoRunStore for Arc<dyn RunStore> {
    fn into_run_store(self) -> Arc<dyn RunStore> {
        self
    }
}

impl IntoRunStore for Store {
    fn into_run_store(self) -> Arc<dyn RunStore> {
        Arc::new(SqliteStore::from_store(self))
    }
}

impl IntoRunStore for SqliteStore {
    fn into_run_store(self) -> Arc<dyn RunStore> {
        Arc::new(self)
    }
}

/// What the engine saw happen, for progress displays. Borrowed; valid during the callback.
pub enum EngineEvent<'a> {
    /// A driver call is about to be made.
    Calling(&'a Command),
    /// A call came back.
    Answered {
        command: &'a Command,
        outcome: &'a Outcome,
    },
    /// An operator command was applied.
    Operator(&'a OperatorCommand),
    /// The run's phase changed.
    Phase(&'a RunPhase),
}

/// Why `drive` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriveEnd {
    /// Completed or aborted.
    Finished(RunPhase),
    /// Halted, awaiting approval, or waiting for a manual upgrade: an operator must act.
    NeedsOperator(RunPhase),
}

/// Who opens a stored run: the process that created it a moment ago, or one that resumes it
/// (after a crash, a stop, a hand-over or a takeover), for which the time since the journal's
/// last entry was time nobody drove the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opening {
    JustCreated,
    Resumed,
}

/// A run being driven: the store, the driver, the clock and the core's state.
pub struct Engine<D: Driver + ?Sized = dyn Driver> {
    store: Arc<dyn RunStore>,
    /// The run's lease while this engine may drive it; `None` for a finished run (opened to
    /// be read) or after `release_lease`.
    lease: Option<Lease>,
    lease_ttl: Duration,
    /// When the lease was last renewed (wall clock: leases are wall time even in a simulation).
    lease_renewed: std::time::Instant,
    driver: Arc<D>,
    clock: Clock,
    run_id: String,
    holder: String,
    execution: Execution,
    /// Commands issued by the core and not yet answered, with whether their intent is journaled.
    outstanding: BTreeMap<CommandId, (Command, bool)>,
    /// The journal entry up to which operator requests have been looked at. Only the request
    /// poll moves it: a request appended by another process between two of this engine's own
    /// appends must still be seen.
    last_seen_seq: u64,
    /// The sequence number of this engine's last entry the store confirmed: a write retried
    /// after a lost answer looks for itself after it.
    last_own_seq: u64,
    /// When requests were last polled (wall clock), so a steady stream of outcomes cannot
    /// starve the poll.
    last_request_poll: tokio::time::Instant,
    phase_written: String,
}

/// Identifies this process as a lock holder: `pid@hostname`.
pub fn holder_name() -> String {
    let host =
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
    format!("{}@{}", std::process::id(), host.trim())
}

/// Whether the process named by a holder string still runs (same machine only; a holder on
/// another machine is assumed alive).
pub fn holder_is_alive(holder: &str) -> bool {
    let Some((pid, host)) = holder.split_once('@') else {
        return true;
    };
    let this_host = holder_name();
    let this_host = this_host.split_once('@').map_or("", |(_, h)| h);
    if host != this_host {
        return true;
    }
    pid == std::process::id().to_string() || std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Everything needed to create a run.
pub struct NewRunSpec<'a> {
    pub run_id: String,
    /// The inventory as written (kept in the run record so resume can check and re-read it).
    pub inventory_text: &'a str,
    pub inventory_sha256: String,
    /// The inventory's cluster: target, policy, and what the platform may not report itself.
    pub cluster: &'a Cluster,
    pub options_json: String,
}

impl<D: Driver + ?Sized> Engine<D> {
    /// Creates a run: discovers the platform, then records the run, takes the cluster's lock and
    /// writes the cluster as observed as the run's first journal entry in one store transaction.
    /// Then opens it like any other run.
    ///
    /// Discovery comes first and writes nothing, so a discovery that fails, times out or is
    /// killed leaves no trace; the one transaction means a start is either complete and
    /// resumable or absent, and of two simultaneous starts on one cluster the second is refused
    /// as locked (the store checks the lock inside the transaction, even for the same run id).
    pub async fn create(
        store: impl IntoRunStore,
        driver: Arc<D>,
        clock: Clock,
        spec: NewRunSpec<'_>,
    ) -> Result<Self, EngineError> {
        Self::create_leased(store, driver, clock, spec, DEFAULT_LEASE_TTL).await
    }

    /// [`Engine::create`] with the run's lease lasting `lease_ttl` without renewal.
    pub async fn create_leased(
        store: impl IntoRunStore,
        driver: Arc<D>,
        clock: Clock,
        spec: NewRunSpec<'_>,
        lease_ttl: Duration,
    ) -> Result<Self, EngineError> {
        let store = store.into_run_store();
        let holder = holder_name();
        // Refused early and without a platform call when the cluster is visibly taken; the
        // transaction below decides races.
        check_cluster_lock(store.as_ref(), &spec.cluster.name, &spec.run_id).await?;
        let discovered = tokio::time::timeout(
            clock.wall_duration(spec.cluster.policy.step_timeout_secs * 1000),
            driver.discover(),
        )
        .await
        .map_err(|_| EngineError::Driver("discovery timed out".into()))?
        .map_err(|error| EngineError::Driver(format!("discovery failed: {error}")))?;
        let observed = crate::merge::merge_inventory_with_discovery(spec.cluster, &discovered);
        let start = records::start_record(&observed);
        let now = clock.now_ms();
        let new_run = NewRun {
            id: spec.run_id.clone(),
            cluster: spec.cluster.name.clone(),
            inventory_sha256: spec.inventory_sha256.clone(),
            inventory_text: spec.inventory_text.to_string(),
            state: "starting".into(),
            created_at_ms: now,
            options_json: spec.options_json.clone(),
        };
        let start_entry = NewEntry {
            at_ms: now,
            kind: KIND_START.into(),
            payload_json: records::to_json(&start),
        };
        store
            .start_run(&new_run, &holder, lease_ttl, &start_entry)
            .await
            .map_err(|error| match error {
                StoreError::LockHeld {
                    cluster,
                    run_id,
                    holder,
                    ..
                } => EngineError::ClusterLocked {
                    cluster,
                    run_id,
                    holder,
                },
                other => other.into(),
            })?;
        let stored = StoredRun::load(store.as_ref(), &spec.run_id).await?;
        // Opened by the process that created it a moment ago: nobody was away.
        Self::open_stored_as(
            store,
            driver,
            clock,
            stored,
            &mut |_, _| {},
            lease_ttl,
            Opening::JustCreated,
        )
        .await
    }

    /// Opens an existing run: checks the lock, replays the journal, and prepares the commands
    /// that were in flight to be issued again. An unfinished run's lease is taken for this
    /// process: at once when it is free, expired, or held by a process of this machine that is
    /// gone (a compare-and-swap, so of two processes resuming one run only one drives it).
    pub async fn open(
        store: impl IntoRunStore,
        driver: Arc<D>,
        clock: Clock,
        run_id: &str,
    ) -> Result<Self, EngineError> {
        let store = store.into_run_store();
        let stored = StoredRun::load(store.as_ref(), run_id).await?;
        Self::open_stored(
            store,
            driver,
            clock,
            stored,
            &mut |_, _| {},
            DEFAULT_LEASE_TTL,
        )
        .await
    }

    /// [`Engine::open`] of a run already read from the store; `on_replayed` sees the execution
    /// after every replayed input (a server builds the run's timeline from the one replay). The
    /// run's lease lasts `lease_ttl` without renewal.
    pub async fn open_stored(
        store: impl IntoRunStore,
        driver: Arc<D>,
        clock: Clock,
        stored: StoredRun,
        on_replayed: &mut dyn FnMut(&Execution, u64),
        lease_ttl: Duration,
    ) -> Result<Self, EngineError> {
        Self::open_stored_as(
            store,
            driver,
            clock,
            stored,
            on_replayed,
            lease_ttl,
            Opening::Resumed,
        )
        .await
    }

    async fn open_stored_as(
        store: impl IntoRunStore,
        driver: Arc<D>,
        clock: Clock,
        stored: StoredRun,
        on_replayed: &mut dyn FnMut(&Execution, u64),
        lease_ttl: Duration,
        opening: Opening,
    ) -> Result<Self, EngineError> {
        let store = store.into_run_store();
        let holder = holder_name();
        let run_id = stored.id().to_string();
        let run = &stored.record;
        let lock = store.cluster_lock(&run.cluster).await?;
        if let Some(lock) = lock.as_ref().filter(|lock| lock.run_id == run_id) {
            if lock.holder != holder && lock.lease_live && holder_is_alive(&lock.holder) {
                return Err(EngineError::RunBusy {
                    run_id,
                    holder: lock.holder.clone(),
                });
            }
        }
        check_cluster_lock(store.as_ref(), &run.cluster, &run_id).await?;
        if stored.never_started() {
            release_never_started(store.as_ref(), run, clock.now_ms()).await?;
            return Err(EngineError::NeverStarted(run_id));
        }
        let replayed = stored.replay(on_replayed)?;
        let lease = match replayed.execution.is_finished() {
            true => None,
            false => Some(
                take_lease(
                    store.as_ref(),
                    &run.cluster,
                    &run_id,
                    &holder,
                    lock.as_ref(),
                    lease_ttl,
                )
                .await?,
            ),
        };
        let mut engine = Engine {
            store,
            lease,
            lease_ttl,
            lease_renewed: std::time::Instant::now(),
            driver,
            clock,
            run_id,
            holder,
            execution: replayed.execution,
            outstanding: replayed.outstanding,
            last_seen_seq: replayed.last_seq,
            last_own_seq: replayed.last_seq,
            last_request_poll: tokio::time::Instant::now(),
            phase_written: run.state.clone(),
        };
        if opening == Opening::Resumed {
            engine.note_downtime(stored.last_written_at_ms()).await?;
        }
        Ok(engine)
    }

    /// Tells the core how long no process drove the run (from the journal's last entry to
    /// now, as input data: the core reads no clock), so that the downtime of a crashed or
    /// killed process does not expire a VM's pending timeout as if the platform had refused.
    async fn note_downtime(&mut self, last_wrote_at_ms: Option<u64>) -> Result<(), EngineError> {
        let Some(last_wrote_at_ms) = last_wrote_at_ms else {
            return Ok(());
        };
        if self.execution.is_finished() || self.clock.now_ms() <= last_wrote_at_ms {
            return Ok(());
        }
        let input = Input::Resumed {
            previous_process_last_wrote_at: last_wrote_at_ms,
        };
        self.record_input(input, "").await
    }

    pub fn execution(&self) -> &Execution {
        &self.execution
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's store, to read its journal back (the end report's per-step times).
    pub fn store(&self) -> &Arc<dyn RunStore> {
        &self.store
    }

    /// Renews the lease when a third of its time has passed (wall clock). A caller that keeps
    /// the engine open without driving (a server waiting for an operator) calls it regularly.
    pub async fn keep_lease(&mut self) -> Result<(), EngineError> {
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        if self.lease_renewed.elapsed() < self.lease_ttl / 3 {
            return Ok(());
        }
        match self.store.renew_lease(lease, self.lease_ttl).await {
            Ok(renewed) => {
                self.lease = Some(renewed);
                self.lease_renewed = std::time::Instant::now();
                Ok(())
            }
            // Tried again at the next turn of the loop; if the store stays away longer than
            // the lease, another process may take the run over and this one's next write is
            // fenced.
            Err(error) if error.is_transient() => {
                tracing::warn!(run = %self.run_id, %error, "lease renewal failed; trying again");
                Ok(())
            }
            Err(error) => Err(fenced_or_store(error)),
        }
    }

    /// Gives the run's lease up (the process stops driving, e.g. to wait for an operator), so
    /// that the next process may take the run at once. The run keeps its cluster.
    pub async fn release_lease(&mut self) -> Result<(), EngineError> {
        if let Some(lease) = self.lease.take() {
            self.store.release_lease(&lease).await?;
        }
        Ok(())
    }

    /// The lease this engine drives under, if any (for displays: which holder, which token).
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Applies an operator command in this process (no other engine drives the run): checked
    /// against the current state first, so a refused command writes nothing.
    pub async fn operate(&mut self, command: OperatorCommand, by: &str) -> Result<(), EngineError> {
        self.execution.check_operator(&command)?;
        self.feed(Input::Operator(command), by).await?;
        Ok(())
    }

    /// Drives the run until it finishes, or until it needs an operator and no call is in flight.
    pub async fn drive(
        &mut self,
        observer: &mut dyn FnMut(&Execution, EngineEvent<'_>),
    ) -> Result<DriveEnd, EngineError> {
        let (sender, mut receiver) = mpsc::channel::<(CommandId, Outcome)>(MAX_CALLS_IN_FLIGHT);
        // Calls that were in flight when the journal was last written are issued again first.
        let reissue: Vec<Command> = self.outstanding.values().map(|(c, _)| c.clone()).collect();
        for command in reissue {
            self.dispatch(command, &sender, observer).await?;
        }
        loop {
            self.keep_lease().await?;
            self.refresh_window().await?;
            while let Some(command) = self.execution.poll_command() {
                self.outstanding
                    .insert(command.id, (command.clone(), false));
                self.dispatch(command, &sender, observer).await?;
            }
            self.write_phase(observer).await?;
            if self.outstanding.is_empty() {
                if self.execution.is_finished() {
                    self.release_lock().await?;
                    self.lease = None;
                    return Ok(DriveEnd::Finished(self.execution.phase().clone()));
                }
                if self.execution.next_wakeup().is_none() {
                    if self.needs_operator() {
                        return Ok(DriveEnd::NeedsOperator(self.execution.phase().clone()));
                    }
                    if self.execution.is_waiting_for_window() {
                        return Err(EngineError::Stalled(
                            "the run waits for a maintenance window, and none of the policy's windows ever opens".into(),
                        ));
                    }
                    // Nothing in flight, nothing to wait for, nobody to ask: a core bug. Say so
                    // instead of waiting forever.
                    return Err(EngineError::Stalled(format!(
                        "{:?}",
                        self.execution.status()
                    )));
                }
            }
            self.wait_for_something(&mut receiver, observer).await?;
        }
    }

    fn needs_operator(&self) -> bool {
        let status = self.execution.status();
        matches!(
            status.phase,
            RunPhase::Halted { .. } | RunPhase::AwaitingApproval
        ) || status
            .hosts
            .iter()
            .any(|h| h.step == drover_core::execution::HostStep::AwaitingManualUpgrade)
            || status.paused
    }

    async fn wait_for_something(
        &mut self,
        receiver: &mut mpsc::Receiver<(CommandId, Outcome)>,
        observer: &mut dyn FnMut(&Execution, EngineEvent<'_>),
    ) -> Result<(), EngineError> {
        let wakeup = self.execution.next_wakeup();
        // Under virtual time no other process can send requests, so only wakeups matter (and
        // polling every 250 virtual ms would cost thousands of reads per simulated hour).
        let poll = if self.clock.is_virtual() {
            None
        } else {
            Some(REQUEST_POLL_INTERVAL)
        };
        let until_wakeup = wakeup.map(|at| {
            self.clock
                .wall_duration(at.saturating_sub(self.clock.now_ms()))
        });
        let sleep_for = match (until_wakeup, poll) {
            (Some(wake), Some(poll)) => wake.min(poll),
            (Some(wake), None) => wake,
            (None, Some(poll)) => poll,
            (None, None) => Duration::from_secs(365 * 24 * 3600),
        };
        tokio::select! {
            biased;
            answered = receiver.recv() => {
                if let Some((id, outcome)) = answered {
                    self.answer(id, outcome, observer).await?;
                }
                if poll.is_some_and(|interval| self.last_request_poll.elapsed() >= interval) {
                    self.poll_requests(observer).await?;
                }
            }
            _ = tokio::time::sleep(sleep_for) => {
                self.poll_requests(observer).await?;
                if wakeup.is_some_and(|at| at <= self.clock.now_ms()) {
                    self.feed(Input::Tick, "").await?;
                }
            }
        }
        Ok(())
    }

    async fn answer(
        &mut self,
        id: CommandId,
        outcome: Outcome,
        observer: &mut dyn FnMut(&Execution, EngineEvent<'_>),
    ) -> Result<(), EngineError> {
        let Some((command, _)) = self.outstanding.remove(&id) else {
            return Ok(());
        };
        observer(
            &self.execution,
            EngineEvent::Answered {
                command: &command,
                outcome: &outcome,
            },
        );
        self.feed(
            Input::Outcome {
                command: id,
                outcome,
            },
            "",
        )
        .await
    }

    /// Journals an input, then gives it to the core. The window is brought up to date first,
    /// so that an outcome that lets a wave start never starts one in a closed window.
    async fn feed(&mut self, input: Input, by: &str) -> Result<(), EngineError> {
        self.refresh_window().await?;
        self.record_input(input, by).await
    }

    async fn record_input(&mut self, input: Input, by: &str) -> Result<(), EngineError> {
        let now = self.clock.now_ms();
        let record = records::input_record(now, &input, by);
        let entry = NewEntry {
            at_ms: now,
            kind: KIND_INPUT.into(),
            payload_json: records::to_json(&record),
        };
        self.append(&entry).await?;
        self.execution.handle(now, input);
        Ok(())
    }

    /// Journals an entry under the run's lease: refused (and the engine stops) once another
    /// process took the run over.
    ///
    /// A write the store could not take for a while (busy, restarting) is tried again with
    /// capped backoff for up to `STORE_RETRY_LIMIT`. Its answer may have been lost after the
    /// commit, so before each new try the engine looks for its entry after its last confirmed
    /// one: a journal entry is written once, never twice.
    async fn append(&mut self, entry: &NewEntry) -> Result<u64, EngineError> {
        let mut backoff = StoreBackoff::new();
        loop {
            let appended = self
                .store
                .append(&self.run_id, entry, self.lease.as_ref())
                .await;
            let seq = match appended {
                Ok(seq) => seq,
                Err(error) => {
                    if !backoff
                        .wait_after(&self.run_id, "journal write", &error)
                        .await
                    {
                        return Err(fenced_or_store(error));
                    }
                    match self.written_already(entry).await {
                        Some(seq) => seq,
                        None => continue,
                    }
                }
            };
            self.last_own_seq = seq;
            return Ok(seq);
        }
    }

    /// Frees the cluster of a finished run, tried again like a journal write (releasing twice is
    /// harmless).
    async fn release_lock(&self) -> Result<(), EngineError> {
        let cluster = &self.execution.cluster().name;
        let mut backoff = StoreBackoff::new();
        loop {
            let released = self
                .store
                .release_lock(cluster, &self.run_id, self.lease.as_ref())
                .await;
            let Err(error) = released else {
                return Ok(());
            };
            if !backoff
                .wait_after(&self.run_id, "releasing the cluster", &error)
                .await
            {
                return Err(fenced_or_store(error));
            }
        }
    }

    /// Records the run's phase, tried again like a journal write (setting it twice is harmless).
    async fn set_run_state(&self, phase: &str) -> Result<(), EngineError> {
        let mut backoff = StoreBackoff::new();
        loop {
            let now = self.clock.now_ms();
            let written = self
                .store
                .set_run_state(&self.run_id, phase, now, self.lease.as_ref())
                .await;
            let Err(error) = written else {
                return Ok(());
            };
            if !backoff
                .wait_after(&self.run_id, "run state write", &error)
                .await
            {
                return Err(fenced_or_store(error));
            }
        }
    }

    /// The sequence number of `entry` if it is in the journal after this engine's last
    /// confirmed entry (its commit succeeded, its answer was lost); `None` when it is not, or
    /// when the store cannot say yet (the next try then decides).
    async fn written_already(&self, entry: &NewEntry) -> Option<u64> {
        let after = self
            .store
            .entries_after(&self.run_id, self.last_own_seq)
            .await
            .ok()?;
        after
            .iter()
            .find(|written| {
                written.kind == entry.kind
                    && written.at_ms == entry.at_ms
                    && written.payload_json == entry.payload_json
            })
            .map(|written| written.seq)
    }

    /// Journals the intent (once) and starts the driver call on its own task.
    async fn dispatch(
        &mut self,
        command: Command,
        sender: &mpsc::Sender<(CommandId, Outcome)>,
        observer: &mut dyn FnMut(&Execution, EngineEvent<'_>),
    ) -> Result<(), EngineError> {
        let journaled = self.outstanding.get(&command.id).is_some_and(|(_, j)| *j);
        if !journaled {
            let now = self.clock.now_ms();
            let intent = records::intent_record(self.execution.cluster(), &command);
            self.append(&NewEntry {
                at_ms: now,
                kind: KIND_INTENT.into(),
                payload_json: records::to_json(&intent),
            })
            .await?;
            self.outstanding.insert(command.id, (command.clone(), true));
        }
        observer(&self.execution, EngineEvent::Calling(&command));
        let call = DriverCall::new(self.execution.cluster(), &command);
        let driver = Arc::clone(&self.driver);
        let clock = self.clock.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let limit = clock.wall_duration(command.timeout_ms);
            let outcome = match tokio::time::timeout(limit, call.run(driver.as_ref())).await {
                Ok(Ok(observation)) => Outcome::Succeeded(observation),
                Ok(Err(DriverError::Refused(error))) => Outcome::Failed {
                    error,
                    refused: true,
                },
                Ok(Err(error)) => Outcome::Failed {
                    error: error.to_string(),
                    refused: false,
                },
                Err(_) => Outcome::TimedOut,
            };
            // The receiver is gone only when the engine stopped; the journal still has the intent.
            let _ = sender.send((command.id, outcome)).await;
        });
        Ok(())
    }

    /// Applies the operator requests written since the last look, for a caller that keeps the
    /// engine open between drives (a server waiting for an operator). Returns how many applied.
    pub async fn apply_requests(
        &mut self,
        observer: &mut dyn FnMut(&Execution, EngineEvent<'_>),
    ) -> Result<usize, EngineError> {
        self.keep_lease().await?;
        self.poll_requests(observer).await
    }

    /// Operator requests written by other processes since we last looked; returns how many
    /// were valid and applied.
    async fn poll_requests(
        &mut self,
        observer: &mut dyn FnMut(&Execution, EngineEvent<'_>),
    ) -> Result<usize, EngineError> {
        self.last_request_poll = tokio::time::Instant::now();
        let mut applied = 0;
        let entries = match self
            .store
            .entries_after(&self.run_id, self.last_seen_seq)
            .await
        {
            Ok(entries) => entries,
            // A request waits in the journal: the next poll reads it.
            Err(error) if error.is_transient() => {
                tracing::warn!(run = %self.run_id, %error, "reading requests failed; trying again");
                return Ok(0);
            }
            Err(error) => return Err(error.into()),
        };
        for entry in entries {
            self.last_seen_seq = self.last_seen_seq.max(entry.seq);
            if entry.kind != KIND_REQUEST {
                continue;
            }
            let request: records::RequestRecord = records::from_json(&entry.payload_json)?;
            let command = records::operator_from_record(&request.command);
            if self.execution.check_operator(&command).is_ok() {
                observer(&self.execution, EngineEvent::Operator(&command));
                self.feed(Input::Operator(command), &request.by).await?;
                applied += 1;
            }
        }
        Ok(applied)
    }

    /// Maintenance windows: the core only learns whether one is open and, while none is, when
    /// the next opens (so it asks to be woken then); the calendar is here. Told again when the
    /// opening it was given has passed without a window opening (a daylight-saving shift).
    async fn refresh_window(&mut self) -> Result<(), EngineError> {
        let policy = &self.execution.cluster().policy;
        if policy.windows.is_empty() && self.execution.window_open() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let open = crate::windows::is_open(&policy.windows, &policy.time_zone, now);
        let stale_opening = !open
            && self
                .execution
                .next_window_opening_at()
                .is_none_or(|at| at <= now);
        if open != self.execution.window_open() || stale_opening {
            let next_opening_at = match open {
                true => None,
                false => crate::windows::next_opening(&policy.windows, &policy.time_zone, now),
            };
            let unchanged = !open && next_opening_at == self.execution.next_window_opening_at();
            if !unchanged {
                let input = Input::WindowChanged {
                    open,
                    next_opening_at,
                };
                self.record_input(input, "").await?;
            }
        }
        Ok(())
    }

    async fn write_phase(
        &mut self,
        observer: &mut dyn FnMut(&Execution, EngineEvent<'_>),
    ) -> Result<(), EngineError> {
        let phase = self.execution.phase().name();
        if phase != self.phase_written {
            self.set_run_state(phase).await?;
            self.phase_written = phase.to_string();
            observer(&self.execution, EngineEvent::Phase(self.execution.phase()));
        }
        Ok(())
    }

    /// The lock holder name of this engine.
    pub fn holder(&self) -> &str {
        &self.holder
    }
}

/// The waits between tries of a store write the store could not take: doubling from
/// `STORE_RETRY_FIRST_DELAY` to `STORE_RETRY_MAX_DELAY`, `STORE_RETRY_LIMIT` in all.
struct StoreBackoff {
    delay: Duration,
    waited: Duration,
}

impl StoreBackoff {
    fn new() -> StoreBackoff {
        StoreBackoff {
            delay: STORE_RETRY_FIRST_DELAY,
            waited: Duration::ZERO,
        }
    }

    /// Waits before the next try of a write that failed with `error`; `false` (at once) when
    /// trying again cannot help (a refusal, a fenced write) or the time for tries is spent.
    async fn wait_after(&mut self, run_id: &str, what: &str, error: &StoreError) -> bool {
        if !error.is_transient() || self.waited >= STORE_RETRY_LIMIT {
            return false;
        }
        tracing::warn!(run = %run_id, %error, "{what} failed; trying again");
        // Wall time (virtual under a paused runtime): the store's outage is real.
        tokio::time::sleep(self.delay).await;
        self.waited += self.delay;
        self.delay = (self.delay * 2).min(STORE_RETRY_MAX_DELAY);
        true
    }
}

/// A run with no journal at all was recorded by an older drover that crashed between creating
/// the run and writing its start (today's starts are one transaction). It never touched the
/// platform, so its lock is released and it is marked `never-started`: the cluster is free again
/// without editing the state file by hand (`drover resume` or `drover abort` of that run).
pub async fn release_never_started(
    store: &dyn RunStore,
    run: &drover_store::RunRecord,
    now_ms: u64,
) -> Result<(), EngineError> {
    store.release_lock(&run.cluster, &run.id, None).await?;
    store
        .set_run_state(&run.id, NEVER_STARTED, now_ms, None)
        .await?;
    Ok(())
}

/// Refuses to start or open a run while another unfinished run holds the cluster.
async fn check_cluster_lock(
    store: &dyn RunStore,
    cluster: &str,
    run_id: &str,
) -> Result<(), EngineError> {
    match store.cluster_lock(cluster).await? {
        Some(lock) if lock.run_id != run_id => Err(EngineError::ClusterLocked {
            cluster: cluster.to_string(),
            run_id: lock.run_id,
            holder: lock.holder,
        }),
        _ => Ok(()),
    }
}

/// Takes the lease of an unfinished run for `holder`: broken at once when the holder seen is a
/// process of this machine that is gone (compare-and-swap on what was seen), else acquired
/// (free, expired, released, or ours already). Another live holder means the run is busy.
async fn take_lease(
    store: &dyn RunStore,
    cluster: &str,
    run_id: &str,
    holder: &str,
    seen: Option<&ClusterLock>,
    lease_ttl: Duration,
) -> Result<Lease, EngineError> {
    let taken = match seen.filter(|lock| lock.run_id == run_id) {
        Some(lock)
            if lock.lease_live && lock.holder != holder && !holder_is_alive(&lock.holder) =>
        {
            store.break_lease(lock, holder, lease_ttl).await
        }
        _ => {
            store
                .acquire_lease(cluster, run_id, holder, lease_ttl)
                .await
        }
    };
    taken.map_err(|error| match error {
        StoreError::LeaseHeld { holder, .. } | StoreError::LockHeld { holder, .. } => {
            EngineError::RunBusy {
                run_id: run_id.into(),
                holder,
            }
        }
        other => other.into(),
    })
}

/// A store refusal of a superseded lease is the engine's own error: it must stop driving.
fn fenced_or_store(error: StoreError) -> EngineError {
    match error {
        StoreError::Fenced { .. } => EngineError::Fenced(error.to_string()),
        other => other.into(),
    }
}

/// Writes an operator request for the engine that drives the run in another process.
pub async fn request(
    store: &dyn RunStore,
    run_id: &str,
    command: &OperatorCommand,
    by: &str,
    at_ms: u64,
) -> Result<u64, EngineError> {
    let record = records::RequestRecord {
        command: records::operator_record(command),
        by: by.to_string(),
    };
    let entry = NewEntry {
        at_ms,
        kind: KIND_REQUEST.into(),
        payload_json: records::to_json(&record),
    };
    Ok(store.append(run_id, &entry, None).await?)
}

/// Whether a command asks the platform for nothing but facts (for displays).
pub fn is_observation(kind: &CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::Discover | CommandKind::ReadHostFacts { .. } | CommandKind::HealthCheck { .. }
    )
}
