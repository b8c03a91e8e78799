//! Starting a run of a served cluster, whoever asks (`POST /runs`, `POST /hosts/{h}/upgrade`,
//! an approval strategy after an update check): the release catalog's compatibility level, the
//! plan of the cluster as last observed refused when unsafe (422 with the failed prechecks), a
//! free or requested run id, then the run manager starts the run's thread.
//!
//! Knows the API's errors and the run manager; must not know routes or request bodies.

use std::collections::BTreeMap;
use std::sync::Arc;

use drover_app::catalog::{recipes_of, resolve_auto_compatibility_level, UpgradeRecipe};
use drover_app::plan::plan_upgrade;
use drover_app::run_id::check_run_id;
use drover_app::runs::unused_run_id;
use drover_schema::inventory::InventoryFile;

use crate::config::ClusterEntry;
use crate::problem::ApiError;
use crate::run_thread::{NewRunRequest, RunStart};
use crate::views::RunView;
use crate::AppState;

/// Creates and starts a run of `inventory` (the cluster's, with this run's changes) after
/// refusing an unsafe plan; `who` is recorded as its creator.
pub async fn launch(
    state: &Arc<AppState>,
    who: &str,
    entry: &ClusterEntry,
    mut inventory: InventoryFile,
    run_id: Option<String>,
) -> Result<Arc<RunView>, ApiError> {
    resolve_auto_compatibility_level(&mut inventory).map_err(|error| ApiError::BadRequest {
        field: "policy.raise_compatibility_level_to".into(),
        detail: error.to_string(),
    })?;
    // Prechecks and recipes from the cluster as last observed (hosts already at the target
    // need nothing); the run itself starts from its own discovery.
    let upgrade_recipes = refuse_unsafe_plan(&planning_inventory(state, &inventory).await?)?;
    let run_id = choose_run_id(state, &entry.name, run_id).await?;
    let start = RunStart::Create(Box::new(NewRunRequest {
        run_id: run_id.clone(),
        inventory_path: entry.inventory_path.clone(),
        inventory,
        created_by: who.to_string(),
        upgrade_recipes,
    }));
    let view = state.manager.start(&entry.name, &run_id, start).await?;
    eprintln!("run {run_id} of cluster {} started by {who}", entry.name);
    Ok(view)
}

/// `inventory` with the hosts and VMs as last observed.
async fn planning_inventory(
    state: &Arc<AppState>,
    inventory: &InventoryFile,
) -> Result<InventoryFile, ApiError> {
    let store = state.open_store()?;
    let observed = state
        .observed
        .observed(store.as_ref(), &inventory.cluster)
        .await?;
    let mut planning = inventory.clone();
    planning.cluster = observed;
    Ok(planning)
}

/// The plan with what the release catalog adds; 422 with the failed prechecks when it is not
/// safe. Returns what each host's installer is to be told.
fn refuse_unsafe_plan(
    inventory: &InventoryFile,
) -> Result<BTreeMap<String, UpgradeRecipe>, ApiError> {
    let planned = plan_upgrade(inventory).map_err(|error| ApiError::BadRequest {
        field: "upgrade.catalog".into(),
        detail: error.to_string(),
    })?;
    if planned.is_safe() {
        return Ok(recipes_of(&planned.document, &inventory.cluster));
    }
    let failed: Vec<_> = planned
        .blocking_prechecks()
        .into_iter()
        .map(drover_schema::document::PrecheckEntry::new)
        .collect();
    let reasons: Vec<String> = failed
        .iter()
        .map(|check| format!("{}: {}", check.id, check.message))
        .collect();
    Err(ApiError::UnsafePlan {
        detail: format!(
            "no safe plan for cluster {}: {}",
            inventory.cluster.name,
            reasons.join("; ")
        ),
        prechecks: failed
            .iter()
            .map(|check| serde_json::to_value(check).unwrap_or_default())
            .collect(),
    })
}

/// The requested id (refused if taken) or a fresh one; 409 while the cluster is locked.
async fn choose_run_id(
    state: &Arc<AppState>,
    cluster: &str,
    requested: Option<String>,
) -> Result<String, ApiError> {
    let store = state.open_store()?;
    if let Some(lock) = store.cluster_lock(cluster).await? {
        return Err(ApiError::Conflict(format!(
            "cluster {cluster} already has an unfinished run: {} (held by {})",
            lock.run_id, lock.holder
        )));
    }
    match requested {
        Some(id) => {
            if let Err(detail) = check_run_id(&id) {
                return Err(ApiError::BadRequest {
                    field: "run_id".into(),
                    detail,
                });
            }
            if store.run(&id).await?.is_some() {
                return Err(ApiError::Conflict(format!("run {id} already exists")));
            }
            Ok(id)
        }
        None => unused_run_id(store.as_ref(), cluster)
            .await
            .map_err(|error| ApiError::Internal(error.to_string())),
    }
}
