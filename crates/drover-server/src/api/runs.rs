//! Run endpoints: create (whole cluster or one host), list, view, report, and the operator
//! actions. A run driven by this server gets its commands through the run manager; a run
//! driven by another live `drover` process gets a journal request; a run nobody drives any
//! more is adopted (resumed here) with the command applied first.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use drover_app::report::{stored_report, ReportDocument};
use drover_core::execution::OperatorCommand;
use drover_engine::engine::{holder_is_alive, request};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::clusters::{find_cluster, host_selection};
use super::ApiBody;
use crate::auth::Caller;
use crate::blocking::blocking;
use crate::launch::launch;
use crate::problem::{ApiError, Problem};
use crate::runs_manager::{is_finished_state, is_this_process};
use crate::tracker::replay_with_timeline;
use crate::views::{check_action, run_view, Accepted, RunContext, RunList, RunSummary, RunView};
use crate::AppState;

/// Body of `POST /clusters/{cluster}/runs` (every field optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRunBody {
    /// Let Drover resolve resolvable precheck failures.
    pub resolve: Option<bool>,
    /// Upgrade only these hosts (names of the cluster's hosts; another name is a 404).
    pub hosts: Option<Vec<String>>,
    /// Default: the cluster name and the start time.
    pub run_id: Option<String>,
}

/// Body of `POST /clusters/{cluster}/hosts/{host}/upgrade` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeHostBody {
    pub resolve: Option<bool>,
    /// Default: the cluster name and the start time.
    pub run_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    /// Only runs of this cluster.
    #[param(nullable = false)]
    pub cluster: Option<String>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub limit: Option<u32>,
}

/// An operator action on a run (documentation only: the handler matches the path text).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RunActionName {
    Approve,
    Pause,
    Resume,
    Retry,
    Abort,
}

/// An operator action on a host of a run (documentation only).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum HostActionName {
    Skip,
    Continue,
}

/// Starts a run of a cluster (all its hosts, or `hosts` only).
#[utoipa::path(operation_id = "createRun", post, path = "/api/v1/clusters/{cluster}/runs", tag = "runs",
    params(("cluster" = String, Path)), request_body(content = CreateRunBody),
    responses((status = 202, body = RunView, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(cluster): Path<String>,
    ApiBody(body): ApiBody<CreateRunBody>,
) -> Result<impl IntoResponse, ApiError> {
    let hosts = body.hosts.unwrap_or_default();
    start_run(
        &state,
        &caller,
        &cluster,
        body.resolve == Some(true),
        &hosts,
        body.run_id,
    )
    .await
}

/// Upgrades one host: maintenance, migrations, upgrade, then back to its original state.
#[utoipa::path(operation_id = "upgradeHost", post, path = "/api/v1/clusters/{cluster}/hosts/{host}/upgrade", tag = "runs",
    params(("cluster" = String, Path), ("host" = String, Path)),
    request_body(content = UpgradeHostBody),
    responses((status = 202, body = RunView, headers(("Location" = String))),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn upgrade_host(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((cluster, host)): Path<(String, String)>,
    ApiBody(body): ApiBody<UpgradeHostBody>,
) -> Result<impl IntoResponse, ApiError> {
    let entry = find_cluster(&state, &cluster)?;
    if entry.inventory.cluster.host_named(&host).is_none() {
        return Err(ApiError::NotFound(format!(
            "no host {host:?} in cluster {cluster}"
        )));
    }
    start_run(
        &state,
        &caller,
        &cluster,
        body.resolve == Some(true),
        &[host],
        body.run_id,
    )
    .await
}

async fn start_run(
    state: &Arc<AppState>,
    caller: &Caller,
    cluster_name: &str,
    resolve: bool,
    hosts: &[String],
    run_id: Option<String>,
) -> Result<(StatusCode, [(header::HeaderName, String); 1], Json<RunView>), ApiError> {
    let entry = find_cluster(state, cluster_name)?;
    let mut inventory = entry.inventory.clone();
    if resolve {
        inventory.cluster.policy.auto_resolve = true;
    }
    if let Some(selection) = host_selection(&inventory.cluster, hosts)? {
        inventory.cluster.policy.only_hosts = Some(selection);
    }
    let view = launch(state, &caller.name, entry, inventory, run_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, run_location(&view.id))],
        Json((*view).clone()),
    ))
}

/// `/api/v1/runs/{id}`, with the id percent-encoded: a generated id carries the cluster name,
/// which may hold characters a header or a path cannot.
fn run_location(run_id: &str) -> String {
    let mut location = String::from("/api/v1/runs/");
    for byte in run_id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'~') {
            location.push(byte as char);
        } else {
            location.push_str(&format!("%{byte:02X}"));
        }
    }
    location
}

/// The runs in the state file, newest first.
#[utoipa::path(operation_id = "listRuns", get, path = "/api/v1/runs", tag = "runs", params(RunListQuery),
    responses((status = 200, body = RunList)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    query: Result<Query<RunListQuery>, QueryRejection>,
) -> Result<Json<RunList>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest {
        field: "query".into(),
        detail: rejection.body_text(),
    })?;
    let limit = match query.limit.unwrap_or(50) {
        limit @ 1..=1000 => limit as usize,
        other => {
            return Err(ApiError::BadRequest {
                field: "limit".into(),
                detail: format!("{other} is outside 1..=1000"),
            })
        }
    };
    let runs = state
        .open_store()?
        .runs(query.cluster.as_deref(), limit)
        .await?;
    Ok(Json(RunList {
        runs: runs
            .into_iter()
            .map(|run| RunSummary {
                id: run.id,
                cluster: run.cluster,
                state: run.state,
                created_at_ms: run.created_at_ms,
                updated_at_ms: run.updated_at_ms,
            })
            .collect(),
    }))
}

/// Where a run stands (any run in the state file, whoever drives it).
#[utoipa::path(operation_id = "getRun", get, path = "/api/v1/runs/{run}", tag = "runs", params(("run" = String, Path)),
    responses((status = 200, body = RunView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn view(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    current_view(&state, &run_id)
        .await
        .map(|view| Json((*view).clone()))
}

/// The live view of a run driven here, else a read-only replay of its journal.
pub async fn current_view(state: &Arc<AppState>, run_id: &str) -> Result<Arc<RunView>, ApiError> {
    if let Some(view) = state
        .manager
        .for_run(run_id)
        .filter(|handle| handle.is_live())
        .and_then(|handle| handle.latest_view())
    {
        return Ok(view);
    }
    replayed_view(state, run_id).await.map(Arc::new)
}

async fn replayed_view(state: &AppState, run_id: &str) -> Result<RunView, ApiError> {
    let store = state.open_store()?;
    let stored = load_run(store.as_ref(), run_id).await?;
    let driven_by = store
        .cluster_lock(&stored.record.cluster)
        .await?
        .filter(|lock| lock.run_id == run_id && lock.lease_live && holder_is_alive(&lock.holder))
        .map(|lock| lock.holder);
    // The replay is CPU work: off the API's async workers.
    let replayed = blocking(move || Ok(replay_with_timeline(&stored)?)).await?;
    let context = RunContext {
        run_id,
        driven_by,
        now_ms: replayed.last_at_ms,
    };
    Ok(run_view(&context, &replayed.execution, &replayed.tracker))
}

/// The run's report (what `drover report RUN -o json` prints): hosts with their steps and
/// durations, every VM action with its downtime, failures, restores not done, timing. Read
/// from the journal: finished runs, running ones and runs another process drives.
#[utoipa::path(operation_id = "getRunReport", get, path = "/api/v1/runs/{run}/report", tag = "runs",
    params(("run" = String, Path)),
    responses((status = 200, description = "the report document", body = ReportDocument),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
) -> Result<Json<ReportDocument>, ApiError> {
    let stored = load_run(state.open_store()?.as_ref(), &run_id).await?;
    blocking(move || Ok(Json(stored_report(&stored)?))).await
}

/// A run and its journal; 404 when there is no such run.
async fn load_run(
    store: &dyn drover_store::RunStore,
    run_id: &str,
) -> Result<drover_engine::StoredRun, ApiError> {
    match drover_engine::StoredRun::load(store, run_id).await {
        Err(drover_engine::EngineError::UnknownRun(_)) => {
            Err(ApiError::NotFound(format!("no run {run_id:?}")))
        }
        other => Ok(other?),
    }
}

/// An operator action on a run: approve | pause | resume | retry | abort.
#[utoipa::path(operation_id = "runAction", post, path = "/api/v1/runs/{run}/{action}", tag = "runs",
    params(("run" = String, Path), ("action" = RunActionName, Path)),
    responses((status = 202, body = Accepted), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn run_action(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((run_id, action)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let command = match action.as_str() {
        "approve" => OperatorCommand::Approve,
        "pause" => OperatorCommand::Pause,
        "resume" => OperatorCommand::Resume,
        "retry" => OperatorCommand::Retry,
        "abort" => OperatorCommand::Abort,
        other => return Err(ApiError::NotFound(format!("no run action {other:?}"))),
    };
    operate(&state, &caller, &run_id, command).await
}

/// An operator action on one host of a run: skip (a failed host) | continue (a manual upgrade).
#[utoipa::path(operation_id = "hostAction", post, path = "/api/v1/runs/{run}/hosts/{host}/{action}", tag = "runs",
    params(("run" = String, Path), ("host" = String, Path), ("action" = HostActionName, Path)),
    responses((status = 202, body = Accepted), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn host_action(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((run_id, host, action)): Path<(String, String, String)>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let command = match action.as_str() {
        "skip" => OperatorCommand::Skip { host: host.clone() },
        "continue" => OperatorCommand::Continue { host: host.clone() },
        other => return Err(ApiError::NotFound(format!("no host action {other:?}"))),
    };
    let stored = load_run(state.open_store()?.as_ref(), &run_id).await?;
    let (cluster, _) = stored.started_cluster()?;
    if cluster.host_named(&host).is_none() {
        return Err(ApiError::NotFound(format!(
            "no host {host:?} in run {run_id}"
        )));
    }
    operate(&state, &caller, &run_id, command).await
}

/// Where the command goes, decided from the journal when the run is not driven here.
enum Route {
    HandedToOtherProcess,
    Adopt { cluster: String },
}

async fn operate(
    state: &Arc<AppState>,
    caller: &Caller,
    run_id: &str,
    command: OperatorCommand,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let accepted = Json(Accepted {
        accepted: command.name().to_string(),
        run: run_id.to_string(),
    });
    if let Some(handle) = state.manager.for_run(run_id).filter(|h| h.is_live()) {
        state
            .manager
            .operate(&handle, command, &caller.name)
            .await?;
        return Ok((StatusCode::ACCEPTED, accepted));
    }
    let route = route_elsewhere(state, run_id, &command, &caller.name).await?;
    match route {
        Route::HandedToOtherProcess => Ok((StatusCode::ACCEPTED, accepted)),
        Route::Adopt { cluster } => {
            find_cluster(state, &cluster).map_err(|_| {
                ApiError::Conflict(format!(
                    "run {run_id} belongs to cluster {cluster}, which this server does not serve; use `drover resume {run_id}`"
                ))
            })?;
            state
                .manager
                .adopt_with_command(&cluster, run_id, command, &caller.name)
                .await?;
            Ok((StatusCode::ACCEPTED, accepted))
        }
    }
}

/// For a run not driven here: checks the command on a replay; hands it to the live process
/// that drives the run as a journal request, or says the run must be adopted.
async fn route_elsewhere(
    state: &AppState,
    run_id: &str,
    command: &OperatorCommand,
    by: &str,
) -> Result<Route, ApiError> {
    let store = state.open_store()?;
    let stored = load_run(store.as_ref(), run_id).await?;
    let execution = stored.replay(&mut |_, _| {})?.execution;
    let record = stored.record;
    check_action(&execution, command)
        .map_err(|why| ApiError::Conflict(format!("run {run_id}: {why}")))?;
    if is_finished_state(&record.state) || execution.is_finished() {
        return Err(ApiError::Conflict(format!(
            "run {run_id} is {}",
            execution.phase().name()
        )));
    }
    let live_holder = store.cluster_lock(&record.cluster).await?.filter(|lock| {
        lock.run_id == run_id
            && lock.lease_live
            && holder_is_alive(&lock.holder)
            && !is_this_process(&lock.holder)
    });
    if let Some(lock) = live_holder {
        let now = drover_engine::clock::wall_now_ms();
        request(store.as_ref(), run_id, command, by, now).await?;
        eprintln!(
            "run {run_id} is driven by {}: `{}` by {by} handed to it",
            lock.holder,
            command.name()
        );
        return Ok(Route::HandedToOtherProcess);
    }
    Ok(Route::Adopt {
        cluster: record.cluster,
    })
}
