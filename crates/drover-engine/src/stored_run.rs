//! A run as stored: its record and its whole journal, read once, and the one replay of that
//! journal through a fresh core. Every reader of a run (the engine resuming it, `drover status`,
//! the server's views and timelines, reports) goes through [`StoredRun`], so a run is replayed
//! the same way everywhere and never re-reads its inventory: the start entry carries the
//! cluster as observed and the complete policy the run started with.
//!
//! This module knows the journal records and the core; it must not know drivers, clocks or who
//! is asking.

use std::collections::BTreeMap;

use drover_core::execution::{Command, CommandId, Execution, Input};
use drover_core::Cluster;
use drover_store::{JournalEntry, RunRecord, RunStore};

use crate::records::{self, KIND_INPUT, KIND_INTENT, KIND_START};
use crate::EngineError;

/// A run's record and journal, as read from the store in one go.
#[derive(Clone, Debug)]
pub struct StoredRun {
    pub record: RunRecord,
    pub entries: Vec<JournalEntry>,
}

/// A run rebuilt from its journal.
pub struct Replayed {
    pub execution: Execution,
    /// Commands the core issued during the replay that got no outcome, with whether their
    /// intent was journaled (the engine issues them again: every driver call is idempotent).
    pub outstanding: BTreeMap<CommandId, (Command, bool)>,
    /// The last entry's sequence number.
    pub last_seq: u64,
    /// Platform time of the last entry.
    pub last_at_ms: u64,
}

impl StoredRun {
    /// Reads a run and its journal; `UnknownRun` when there is no such run.
    pub async fn load(store: &dyn RunStore, run_id: &str) -> Result<StoredRun, EngineError> {
        let record = store
            .run(run_id)
            .await?
            .ok_or_else(|| EngineError::UnknownRun(run_id.to_string()))?;
        let entries = store.entries(run_id).await?;
        Ok(StoredRun { record, entries })
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// A run with no journal at all: an older drover crashed between creating the run and
    /// writing its start (today's starts are one transaction).
    pub fn never_started(&self) -> bool {
        self.entries.is_empty()
    }

    /// Platform time of the journal's last entry (0 for an empty journal).
    pub fn last_at_ms(&self) -> u64 {
        self.entries.last().map_or(0, |entry| entry.at_ms)
    }

    /// When the journal's last entry was written, the start entry included: a run created and
    /// then left (handed over to another instance, or its process killed before its first call)
    /// was not driven from then on either. `None` for an empty journal.
    pub fn last_written_at_ms(&self) -> Option<u64> {
        self.entries.iter().map(|entry| entry.at_ms).max()
    }

    /// The cluster the run started from (hosts and VMs as observed, the policy it started
    /// with) and when it started.
    pub fn started_cluster(&self) -> Result<(Cluster, u64), EngineError> {
        let run_id = self.id();
        let first = self.entries.first().ok_or_else(|| {
            EngineError::Journal(format!(
                "run {run_id} has no start entry: it never started; `drover abort {run_id}` releases its cluster"
            ))
        })?;
        if first.kind != KIND_START {
            return Err(EngineError::Journal(format!(
                "run {run_id} starts with a {:?} entry",
                first.kind
            )));
        }
        let start: records::StartRecord = records::from_json(&first.payload_json)?;
        let policy = match &start.policy {
            Some(section) => {
                drover_schema::inventory::policy_from_record(section, "the run's start entry")
                    .map_err(|error| EngineError::Journal(format!("run {run_id}: {error}")))?
            }
            None => self.policy_of_stored_inventory()?,
        };
        Ok((records::cluster_from_start(&start, policy)?, first.at_ms))
    }

    /// Runs started by a drover older than the start entry's policy recorded only the inventory
    /// text; their policy is read from it (with `drover_app::launch::recorded_run_driver`, the only reads of a stored inventory, both
    /// only for runs of older drovers).
    fn policy_of_stored_inventory(&self) -> Result<drover_core::Policy, EngineError> {
        drover_schema::inventory::parse_inventory_file(
            &self.record.inventory_text,
            "inventory (stored with the run)",
        )
        .map(|file| file.cluster.policy)
        .map_err(|error| {
            EngineError::Journal(format!(
                "the run's stored inventory no longer parses: {error}"
            ))
        })
    }

    /// The core as the run started it: with the reviewed plan it was started with (`drover run
    /// --plan`), else planning from the observed cluster.
    fn start_execution(&self) -> Result<Execution, EngineError> {
        let (cluster, at_ms) = self.started_cluster()?;
        Ok(match self.reviewed_plan(&cluster)? {
            Some(plan) => Execution::with_plan(cluster, plan, at_ms),
            None => Execution::new(cluster, at_ms),
        })
    }

    /// The plan a run was started with by `drover run --plan` (its options' `reviewed_plan`, a
    /// plan document), in terms of the run's first observed cluster.
    fn reviewed_plan(&self, cluster: &Cluster) -> Result<Option<drover_core::Plan>, EngineError> {
        let run_id = self.id();
        let options: serde_json::Value = match serde_json::from_str(&self.record.options_json) {
            Ok(options) => options,
            Err(_) => return Ok(None),
        };
        let Some(document) = options.get("reviewed_plan") else {
            return Ok(None);
        };
        let document: drover_schema::document::PlanDocument =
            serde_json::from_value(document.clone()).map_err(|error| {
                EngineError::Journal(format!(
                    "run {run_id}: its reviewed plan does not parse: {error}"
                ))
            })?;
        let waves = document.waves_on(cluster).map_err(|error| {
            EngineError::Journal(format!("run {run_id}: its reviewed plan: {error}"))
        })?;
        Ok(Some(drover_core::plan(cluster).with_waves(waves)))
    }

    /// Rebuilds the run's state from its journal. `on_input` sees the execution after its start
    /// and after every input, with the input's time (a timeline is built this way).
    pub fn replay(
        &self,
        on_input: &mut dyn FnMut(&Execution, u64),
    ) -> Result<Replayed, EngineError> {
        let run_id = self.id();
        let mut execution = self.start_execution()?;
        let first = &self.entries[0];
        let mut outstanding = BTreeMap::new();
        let mut last_seq = first.seq;
        drain(&mut execution, &mut outstanding);
        on_input(&execution, first.at_ms);
        for entry in &self.entries[1..] {
            last_seq = entry.seq;
            match entry.kind.as_str() {
                KIND_INPUT => {
                    let record: records::InputRecord = records::from_json(&entry.payload_json)?;
                    let input = records::input_from_record(&record)?;
                    if let Input::Outcome { command, .. } = &input {
                        outstanding.remove(command);
                    }
                    execution.handle(record.at_ms, input);
                    drain(&mut execution, &mut outstanding);
                    on_input(&execution, record.at_ms);
                }
                KIND_INTENT => {
                    let intent: records::IntentRecord = records::from_json(&entry.payload_json)?;
                    match outstanding.get_mut(&CommandId(intent.command)) {
                        Some((_, journaled)) => *journaled = true,
                        None => return Err(EngineError::Journal(format!(
                            "run {run_id}: entry {} is an intent for command {} that the replay did not issue (journal diverged)",
                            entry.seq, intent.command
                        ))),
                    }
                }
                _ => {}
            }
        }
        Ok(Replayed {
            execution,
            outstanding,
            last_seq,
            last_at_ms: self.last_at_ms(),
        })
    }
}

fn drain(execution: &mut Execution, outstanding: &mut BTreeMap<CommandId, (Command, bool)>) {
    while let Some(command) = execution.poll_command() {
        outstanding.insert(command.id, (command, false));
    }
}

/// Replays a run read from the store: its state now (read-only).
pub async fn replay(store: &dyn RunStore, run_id: &str) -> Result<Replayed, EngineError> {
    StoredRun::load(store, run_id).await?.replay(&mut |_, _| {})
}
