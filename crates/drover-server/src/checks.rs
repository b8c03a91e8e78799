//! Update checks in the server: every `check_interval_hours` (oVirt's
//! `HostPackagesUpdateTimeInHours`) and on `POST /clusters/{c}/checks`, each cluster's hosts are
//! asked what they could update (`drover check`); the last result per cluster gives hosts their
//! `updates_available`. A cluster with an `approval_strategy` (OLM's install plan approval) whose
//! catalog channel offers a release newer than its target gets a run to that release:
//! `automatic` starts it (in the next maintenance window: the engine waits for windows);
//! `manual` creates it waiting for approval.
//!
//! Knows the check document and the run launcher; no HTTP here.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_app::check::{check_document, CheckDocument};
use drover_core::{ApprovalMode, Version};
use serde::Serialize;

use super::config::{ApprovalStrategy, ClusterEntry};
use super::launch::launch;
use super::problem::ApiError;
use super::AppState;

/// The last check of one cluster.
#[derive(Clone, Serialize)]
pub struct CheckRecord {
    pub checked_at_ms: u64,
    #[serde(serialize_with = "shared_document")]
    pub check: Arc<CheckDocument>,
    /// The run an approval strategy created from this check, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_started: Option<String>,
}

fn shared_document<S: serde::Serializer>(
    document: &Arc<CheckDocument>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    document.as_ref().serialize(serializer)
}

/// The last check of every cluster.
#[derive(Default)]
pub struct CheckResults {
    by_cluster: Mutex<BTreeMap<String, CheckRecord>>,
    /// Per cluster, the release an approval strategy already started a run to: one run per
    /// release (while this server lives), whatever the run's end.
    runs_started_to: Mutex<BTreeMap<String, Version>>,
}

impl CheckResults {
    pub fn latest(&self, cluster: &str) -> Option<CheckRecord> {
        self.lock().get(cluster).cloned()
    }

    /// Whether the last check says this host has updates; `None` before any check.
    pub fn updates_available(&self, cluster: &str, host: &str) -> Option<bool> {
        let checks = self.lock();
        let record = checks.get(cluster)?;
        record
            .check
            .hosts
            .iter()
            .find(|h| h.host == host)
            .and_then(|h| h.updates_available)
    }

    /// Claims `version` for a strategy run of `cluster`; false when one was started already.
    fn claim(&self, cluster: &str, version: &Version) -> bool {
        let mut started = self
            .runs_started_to
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if started.get(cluster) == Some(version) {
            return false;
        }
        started.insert(cluster.to_string(), version.clone());
        true
    }

    /// A run that could not be created leaves the release to the next check.
    fn unclaim(&self, cluster: &str) {
        let mut started = self
            .runs_started_to
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        started.remove(cluster);
    }

    fn store(&self, cluster: &str, record: CheckRecord) {
        self.lock().insert(cluster.to_string(), record);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, CheckRecord>> {
        self.by_cluster.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Checks one cluster now (on a blocking thread: the check runs commands), keeps the result,
/// and applies the cluster's approval strategy.
pub async fn check_cluster(
    state: &Arc<AppState>,
    entry: &ClusterEntry,
) -> Result<CheckRecord, ApiError> {
    let inventory = entry.inventory.clone();
    let check = tokio::task::spawn_blocking(move || check_document(&inventory))
        .await
        .map_err(ApiError::internal)?
        .map_err(|error| ApiError::BadRequest {
            field: "upgrade".into(),
            detail: error.to_string(),
        })?;
    let mut record = CheckRecord {
        checked_at_ms: drover_engine::clock::wall_now_ms(),
        check: Arc::new(check),
        run_started: None,
    };
    record.run_started = apply_strategy(state, entry, &record).await;
    state.checks.store(&entry.name, record.clone());
    Ok(record)
}

/// Every cluster, every `interval`, until the server stops.
pub async fn check_periodically(state: Arc<AppState>, interval: Duration) {
    let mut shutdown = state.shutdown.clone();
    loop {
        for entry in state.settings.clusters.clone() {
            if let Err(error) = check_cluster(&state, &entry).await {
                eprintln!("update check of cluster {}: {error:?}", entry.name);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = crate::shutdown::shutdown_requested(&mut shutdown) => return,
        }
    }
}

/// Starts a run to the channel's newer release when the cluster's strategy asks for it and no
/// run is under way. Returns the run's id.
async fn apply_strategy(
    state: &Arc<AppState>,
    entry: &ClusterEntry,
    record: &CheckRecord,
) -> Option<String> {
    let strategy = entry.approval_strategy?;
    let newer: Version = record
        .check
        .newer_release_available
        .as_ref()?
        .parse()
        .ok()?;
    if state
        .manager
        .for_cluster(&entry.name)
        .is_some_and(|h| h.is_live())
        || !state.checks.claim(&entry.name, &newer)
    {
        return None;
    }
    let mut inventory = entry.inventory.clone();
    inventory.cluster.target_version = newer.clone();
    if strategy == ApprovalStrategy::Manual {
        inventory.cluster.policy.approval = ApprovalMode::Manual;
    }
    let who = format!("approval strategy {}", strategy.name());
    match launch(state, &who, entry, inventory, None).await {
        Ok(view) => {
            eprintln!(
                "cluster {}: channel offers {newer}; run {} created ({})",
                entry.name,
                view.id,
                strategy.name()
            );
            Some(view.id.clone())
        }
        Err(error) => {
            eprintln!("cluster {}: no run to {newer}: {error:?}", entry.name);
            state.checks.unclaim(&entry.name);
            None
        }
    }
}
