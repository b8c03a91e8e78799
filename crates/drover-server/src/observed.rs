//! The cluster as it was last observed, for the cluster views and for planning: the served
//! inventory with each host's version, state and cordon and each VM's host and state taken from
//! the newest run's journal (its last discovery, and hosts it verified at the target). Without a
//! run, the inventory file is all there is. A replay is cached per cluster until the run's
//! journal changes, so reads do not replay a finished run again.
//!
//! This module must not know HTTP; it reads the store and replays journals (read-only).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use drover_core::execution::{Execution, HostStep};
use drover_core::Cluster;
use drover_store::RunStore;

use super::problem::ApiError;

/// How many of a cluster's newest runs are tried when the newest cannot be replayed (a start
/// that failed before its first entry).
const RUNS_TRIED: usize = 5;

/// The observation a run left, keyed by the journal state it was read from.
struct CachedObservation {
    run_id: String,
    updated_at_ms: u64,
    observed: Arc<Cluster>,
}

/// Per served cluster, the last observation read from a journal.
#[derive(Default)]
pub struct ObservedClusters {
    cache: Mutex<BTreeMap<String, CachedObservation>>,
}

impl ObservedClusters {
    /// The inventory's cluster with what the newest replayable run of it observed.
    pub async fn observed(
        &self,
        store: &dyn RunStore,
        inventory: &Cluster,
    ) -> Result<Cluster, ApiError> {
        match self.last_observation(store, &inventory.name).await? {
            Some(observed) => Ok(overlay(inventory, &observed)),
            None => Ok(inventory.clone()),
        }
    }

    /// The inventory's cluster with the last observation read, without reading the store.
    pub fn observed_without_replay(&self, inventory: &Cluster) -> Cluster {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(&inventory.name) {
            Some(entry) => overlay(inventory, &entry.observed),
            None => inventory.clone(),
        }
    }

    async fn last_observation(
        &self,
        store: &dyn RunStore,
        cluster: &str,
    ) -> Result<Option<Arc<Cluster>>, ApiError> {
        for run in store.runs(Some(cluster), RUNS_TRIED).await? {
            if let Some(cached) = self.cached(cluster, &run.id, run.updated_at_ms) {
                return Ok(Some(cached));
            }
            match drover_engine::replay(store, &run.id).await {
                Ok(replayed) => {
                    let execution = replayed.execution;
                    let observed = Arc::new(observed_by(&execution));
                    self.remember(cluster, &run.id, run.updated_at_ms, &observed);
                    return Ok(Some(observed));
                }
                // A run without a start entry observed nothing: look at the one before.
                Err(_) => continue,
            }
        }
        Ok(None)
    }

    fn cached(&self, cluster: &str, run_id: &str, updated_at_ms: u64) -> Option<Arc<Cluster>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(cluster)
            .filter(|entry| entry.run_id == run_id && entry.updated_at_ms == updated_at_ms)
            .map(|entry| Arc::clone(&entry.observed))
    }

    fn remember(&self, cluster: &str, run_id: &str, updated_at_ms: u64, observed: &Arc<Cluster>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(
            cluster.to_string(),
            CachedObservation {
                run_id: run_id.to_string(),
                updated_at_ms,
                observed: Arc::clone(observed),
            },
        );
    }
}

/// The run's view of the cluster: its last discovery, and the target version on every host it
/// verified there (verification reads the version, so that is observed too).
fn observed_by(execution: &Execution) -> Cluster {
    let mut cluster = execution.cluster().clone();
    let target = cluster.target_version.clone();
    for id in execution.cluster().host_ids() {
        if execution.host_status(id).step == HostStep::Done {
            cluster.hosts[id.index()].version = target.clone();
        }
    }
    cluster
}

/// The inventory with the observed facts of the hosts and VMs both know (by name); what only
/// the inventory knows (roles, sizes, labels, new entries) stays as written.
fn overlay(inventory: &Cluster, observed: &Cluster) -> Cluster {
    let mut cluster = inventory.clone();
    for host in &mut cluster.hosts {
        if let Some(id) = observed.host_named(&host.name) {
            let seen = observed.host(id);
            host.version = seen.version.clone();
            host.state = seen.state;
            host.cordoned = seen.cordoned;
        }
    }
    let seen_vms: HashMap<&str, &drover_core::Vm> = observed
        .vms
        .iter()
        .map(|vm| (vm.name.as_str(), vm))
        .collect();
    let host_ids: HashMap<String, drover_core::HostId> = cluster
        .host_ids()
        .map(|id| (cluster.host(id).name.clone(), id))
        .collect();
    for vm in &mut cluster.vms {
        let Some(seen) = seen_vms.get(vm.name.as_str()) else {
            continue;
        };
        if let Some(host) = host_ids.get(&observed.host(seen.host).name) {
            vm.host = *host;
            vm.state = seen.state;
        }
    }
    cluster
}
