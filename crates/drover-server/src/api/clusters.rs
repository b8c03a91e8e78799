//! Cluster endpoints: the served clusters, their hosts and inventory, and plans.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use drover_app::catalog::resolve_auto_compatibility_level;
use drover_app::plan::plan_upgrade;
use drover_core::MaxUnavailable;
use drover_schema::document::PlanDocument;
use drover_schema::inventory::InventoryFile;
use serde::Deserialize;
use utoipa::ToSchema;

use super::ApiBody;
use crate::config::ClusterEntry;
use crate::problem::{ApiError, Problem};
use crate::runs_manager::is_finished_state;
use crate::views::{
    cluster_summary, host_views, ClusterDetail, ClusterList, ClusterSummary, HostList, HostView,
    RunView,
};
use crate::AppState;

/// `max_unavailable`: a number of hosts, a percentage of them (`"10%"`) or `"auto"` (its schema is
/// written in `openapi`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MaxUnavailableBody {
    /// A JSON number: `2.0` is the integer 2 to JSON Schema, so it is accepted as such.
    Count(serde_json::Number),
    Word(String),
}

/// Body of `POST /clusters/{cluster}/plans` (every field optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    #[schema(value_type = Option<Object>)]
    pub max_unavailable: Option<MaxUnavailableBody>,
    pub resolve: Option<bool>,
    /// Plan only these hosts (names of the cluster's hosts; another name is a 404).
    pub hosts: Option<Vec<String>>,
}

pub fn find_cluster<'a>(state: &'a AppState, name: &str) -> Result<&'a ClusterEntry, ApiError> {
    state
        .settings
        .clusters
        .iter()
        .find(|cluster| cluster.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no cluster {name:?} is served here")))
}

/// A served cluster as the views show it: its active (unfinished) and newest run, and the
/// served inventory with the cluster as last observed (`observed`), read with one store
/// connection.
struct ClusterNow {
    active_run: Option<String>,
    last_run: Option<String>,
    inventory: InventoryFile,
    active_view: Option<Arc<RunView>>,
}

async fn cluster_now(
    state: &Arc<AppState>,
    cluster: &ClusterEntry,
) -> Result<ClusterNow, ApiError> {
    let active_view = active_view(state, cluster);
    let replay = active_view.is_none();
    let store = state.open_store()?;
    let runs = store.runs(Some(&cluster.name), 50).await?;
    let active_run = runs
        .iter()
        .find(|run| !is_finished_state(&run.state))
        .map(|run| run.id.clone());
    let last_run = runs.first().map(|run| run.id.clone());
    let written = &cluster.inventory.cluster;
    // While a run is driven here its journal changes all the time: its view gives the hosts'
    // progress on top of the last observation read.
    let observed = match replay {
        true => state.observed.observed(store.as_ref(), written).await?,
        false => state.observed.observed_without_replay(written),
    };
    let mut inventory = cluster.inventory.clone();
    inventory.cluster = observed;
    Ok(ClusterNow {
        active_run,
        last_run,
        inventory,
        active_view,
    })
}

/// The served inventory with the cluster as last observed: what plans start from, so that a
/// finished upgrade is not proposed again.
pub async fn observed_inventory(
    state: &Arc<AppState>,
    cluster: &ClusterEntry,
) -> Result<InventoryFile, ApiError> {
    Ok(cluster_now(state, cluster).await?.inventory)
}

/// The view of the cluster's unfinished run driven here, if there is one.
fn active_view(state: &AppState, cluster: &ClusterEntry) -> Option<Arc<RunView>> {
    state
        .manager
        .for_cluster(&cluster.name)
        .filter(|handle| handle.is_live())
        .and_then(|handle| handle.latest_view())
        .filter(|view| !view.finished)
}

fn summary(now: &ClusterNow, hosts: &[HostView]) -> ClusterSummary {
    let mut summary = cluster_summary(&now.inventory, now.active_run.clone(), now.last_run.clone());
    // The hosts' versions as shown (a run in progress included).
    summary.hosts_by_version.clear();
    for host in hosts {
        *summary
            .hosts_by_version
            .entry(host.version.clone())
            .or_insert(0) += 1;
    }
    summary
}

fn hosts_of(state: &AppState, cluster: &ClusterEntry, now: &ClusterNow) -> Vec<HostView> {
    let mut views = host_views(&now.inventory, now.active_view.as_deref());
    for view in &mut views {
        view.updates_available = state.checks.updates_available(&cluster.name, &view.name);
    }
    views
}

/// Summary and hosts of a served cluster.
async fn cluster_views(
    state: &Arc<AppState>,
    cluster: &ClusterEntry,
) -> Result<(ClusterSummary, Vec<HostView>), ApiError> {
    let now = cluster_now(state, cluster).await?;
    let hosts = hosts_of(state, cluster, &now);
    Ok((summary(&now, &hosts), hosts))
}

/// The last update check of a cluster: per host the watched packages with updates and
/// `updates_available`, `outdated` events, a newer release in the catalog's channel, and the run
/// an approval strategy started from it.
#[utoipa::path(operation_id = "getCheck", get, path = "/api/v1/clusters/{cluster}/checks", tag = "clusters",
    params(("cluster" = String, Path)),
    responses((status = 200, description = "the last check (what `drover check -o json` prints, with checked_at_ms)", body = Object),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn last_check(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<crate::checks::CheckRecord>, ApiError> {
    let cluster = find_cluster(&state, &name)?;
    state.checks.latest(&cluster.name).map(Json).ok_or_else(|| {
        ApiError::NotFound(format!(
            "cluster {name} was not checked yet: POST /api/v1/clusters/{name}/checks"
        ))
    })
}

/// Checks the cluster's hosts for updates now (and applies its approval strategy).
#[utoipa::path(operation_id = "checkCluster", post, path = "/api/v1/clusters/{cluster}/checks", tag = "clusters",
    params(("cluster" = String, Path)),
    responses((status = 200, description = "the check", body = Object),
        (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn check_now(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<crate::checks::CheckRecord>, ApiError> {
    let cluster = find_cluster(&state, &name)?.clone();
    crate::checks::check_cluster(&state, &cluster)
        .await
        .map(Json)
}

/// Every served cluster.
#[utoipa::path(operation_id = "listClusters", get, path = "/api/v1/clusters", tag = "clusters",
    responses((status = 200, body = ClusterList)), security(("bearer" = [])))]
pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<ClusterList>, ApiError> {
    let mut clusters = Vec::new();
    for cluster in &state.settings.clusters {
        clusters.push(cluster_views(&state, cluster).await?.0);
    }
    Ok(Json(ClusterList { clusters }))
}

/// One cluster with its hosts.
#[utoipa::path(operation_id = "getCluster", get, path = "/api/v1/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path)),
    responses((status = 200, body = ClusterDetail), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn detail(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ClusterDetail>, ApiError> {
    let cluster = find_cluster(&state, &name)?;
    let (summary, hosts_detail) = cluster_views(&state, cluster).await?;
    Ok(Json(ClusterDetail {
        summary,
        hosts_detail,
    }))
}

/// The inventory document as JSON (the same keys as the YAML file).
#[utoipa::path(operation_id = "getInventory", get, path = "/api/v1/clusters/{cluster}/inventory", tag = "clusters",
    params(("cluster" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn inventory(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let cluster = find_cluster(&state, &name)?;
    serde_yaml_ng::from_str(&cluster.inventory.source_text)
        .map(Json)
        .map_err(ApiError::internal)
}

/// The hosts of a cluster.
#[utoipa::path(operation_id = "listHosts", get, path = "/api/v1/clusters/{cluster}/hosts", tag = "clusters",
    params(("cluster" = String, Path)),
    responses((status = 200, body = HostList), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn hosts(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<HostList>, ApiError> {
    let cluster = find_cluster(&state, &name)?;
    Ok(Json(HostList {
        hosts: cluster_views(&state, cluster).await?.1,
    }))
}

/// One host.
#[utoipa::path(operation_id = "getHost", get, path = "/api/v1/clusters/{cluster}/hosts/{host}", tag = "clusters",
    params(("cluster" = String, Path), ("host" = String, Path)),
    responses((status = 200, body = HostView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn host(
    State(state): State<Arc<AppState>>,
    Path((name, host)): Path<(String, String)>,
) -> Result<Json<HostView>, ApiError> {
    let cluster = find_cluster(&state, &name)?;
    cluster_views(&state, cluster)
        .await?
        .1
        .into_iter()
        .find(|view| view.name == host)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no host {host:?} in cluster {name}")))
}

/// Checks a host selection against the cluster (400 naming the entry).
pub fn host_selection(
    cluster: &drover_core::Cluster,
    hosts: &[String],
) -> Result<Option<BTreeSet<String>>, ApiError> {
    if hosts.is_empty() {
        return Ok(None);
    }
    for (index, name) in hosts.iter().enumerate() {
        // A name that could be a host but is not one of this cluster's is a missing resource
        // (as in `/clusters/{c}/hosts/{host}`), not a malformed request.
        if cluster.host_named(name).is_none() {
            return Err(ApiError::NotFound(format!(
                "hosts[{index}]: no host {name:?} in cluster {}",
                cluster.name
            )));
        }
    }
    Ok(Some(hosts.iter().cloned().collect()))
}

fn max_unavailable(body: &MaxUnavailableBody) -> Result<MaxUnavailable, ApiError> {
    match body {
        MaxUnavailableBody::Count(number) => whole_count(number).map(MaxUnavailable::Count),
        MaxUnavailableBody::Word(word) if word == "auto" => Ok(MaxUnavailable::Auto),
        MaxUnavailableBody::Word(word) => word
            .strip_suffix('%')
            .and_then(|percent| percent.parse::<u32>().ok())
            .filter(|percent| (1..=100).contains(percent))
            .map(MaxUnavailable::Percent)
            .ok_or_else(max_unavailable_refused),
    }
}

fn max_unavailable_refused() -> ApiError {
    ApiError::BadRequest {
        field: "max_unavailable".into(),
        detail: "expected a whole number >= 1, a percentage from \"1%\" to \"100%\", or \"auto\""
            .into(),
    }
}

/// A whole number of hosts from 1 to `u32::MAX` (`3` or `3.0`).
fn whole_count(number: &serde_json::Number) -> Result<u32, ApiError> {
    let count = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|value| value.fract() == 0.0 && *value >= 0.0 && *value <= u32::MAX as f64)
            .map(|value| value as u64)
    });
    match count.and_then(|count| u32::try_from(count).ok()) {
        Some(count) if count >= 1 => Ok(count),
        _ => Err(ApiError::BadRequest {
            field: "max_unavailable".into(),
            detail: "expected a whole number >= 1 or \"auto\"".into(),
        }),
    }
}

/// Plans the cluster's upgrade: exactly what `drover plan -o json` prints.
#[utoipa::path(operation_id = "planCluster", post, path = "/api/v1/clusters/{cluster}/plans", tag = "clusters",
    params(("cluster" = String, Path)), request_body(content = PlanBody),
    responses((status = 200, description = "the plan document", body = Object),
        (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn plan(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    ApiBody(body): ApiBody<PlanBody>,
) -> Result<Json<PlanDocument>, ApiError> {
    let mut inventory = observed_inventory(&state, find_cluster(&state, &name)?).await?;
    let cluster = &mut inventory.cluster;
    if let Some(value) = &body.max_unavailable {
        cluster.policy.max_unavailable = max_unavailable(value)?;
    }
    if body.resolve == Some(true) {
        cluster.policy.auto_resolve = true;
    }
    if let Some(selection) = host_selection(cluster, body.hosts.as_deref().unwrap_or(&[]))? {
        cluster.policy.only_hosts = Some(selection);
    }
    resolve_auto_compatibility_level(&mut inventory).map_err(|error| ApiError::BadRequest {
        field: "policy.raise_compatibility_level_to".into(),
        detail: error.to_string(),
    })?;
    let mut planned = plan_upgrade(&inventory).map_err(|error| ApiError::BadRequest {
        field: "upgrade.catalog".into(),
        detail: error.to_string(),
    })?;
    // The engine's update check runs a command (ssh, up to the step timeout): off the async
    // workers, so a slow engine machine never stalls the other requests.
    let document = tokio::task::spawn_blocking(move || {
        planned.add_engine_update_precheck(&inventory);
        planned.document
    })
    .await
    .map_err(|error| ApiError::Internal(format!("the engine update check failed: {error}")))?;
    Ok(Json(document))
}
