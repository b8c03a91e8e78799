//! `drover serve`: a daemon that drives runs of any number of clusters (one inventory each)
//! behind a REST API (`/api/v1`), with bearer-token roles, Server-Sent Events, Prometheus
//! metrics, the OpenAPI document and the dashboard. It shares the state file with the CLI:
//! runs started here can be steered by `drover approve` and friends, and the other way round.
//!
//! The CLI's `drover serve` parses the flags and calls [`serve`]; this crate must not know clap,
//! exit codes or the CLI's commands (what it shares with them is `drover_app`'s).
//!
//! Invariants: nothing starts on a bad config (`ServerError::BadConfig`, which the CLI turns
//! into exit 2); no listening on a non-loopback address without tokens; unfinished runs whose
//! driving process is gone are resumed at start through the engine's one start/resume path; on
//! SIGTERM/SIGINT the server stops accepting, stops the run threads (their calls in flight are
//! re-issued on the next start) and returns `Ok` within a bounded time. Every queue is bounded
//! and every wait has a timeout.

mod api;
mod auth;
mod blocking;
mod checks;
mod config;
mod error;
mod launch;
mod metrics;
mod observed;
mod openapi;
mod problem;
mod request_guard;
mod run_thread;
mod runs_manager;
mod shutdown;
#[cfg(feature = "tls")]
mod tls;
mod tracker;
mod views;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use drover_store::RunStore;
use tokio::sync::{watch, Semaphore};

use config::ServeSettings;
pub use config::{token_sha256_hex, Overrides};
pub use error::ServerError;
use metrics::Metrics;
use problem::ApiError;
use runs_manager::RunManager;
use shutdown::{forward_signals, shutdown_requested};

/// How long open connections may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long run threads may take to stop after a shutdown signal.
const RUN_STOP_LIMIT: Duration = Duration::from_secs(5);
/// Worker threads of the API runtime (runs have threads of their own).
const API_WORKER_THREADS: usize = 2;

/// Everything the handlers share.
pub(crate) struct AppState {
    settings: ServeSettings,
    /// The one store of this server, shared by the handlers and the run threads.
    store: Arc<dyn RunStore>,
    manager: RunManager,
    metrics: Arc<Metrics>,
    sse_slots: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
    checks: checks::CheckResults,
    /// Each served cluster as last observed (journal replays, cached).
    observed: observed::ObservedClusters,
    /// `Host` values answered (the bound address is known only once listening).
    allowed_hosts: request_guard::AllowedHosts,
}

impl AppState {
    fn open_store(&self) -> Result<Arc<dyn RunStore>, ApiError> {
        Ok(Arc::clone(&self.store))
    }
}

/// Validates the configuration (flags over environment over file), opens the state file, listens,
/// resumes the unfinished runs of the served clusters, and serves until SIGTERM or SIGINT.
pub fn serve(overrides: &Overrides<'_>, state_path: &Path) -> Result<(), ServerError> {
    let settings = config::resolve(overrides)?;
    let store = drover_app::stores::open_store(state_path)
        .map_err(|error| ServerError::bad_config(error.to_string()))?;
    let listener = std::net::TcpListener::bind(settings.listen).map_err(|error| {
        ServerError::bad_config(format!("cannot listen on {}: {error}", settings.listen))
    })?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(API_WORKER_THREADS)
        .enable_all()
        .build()
        .map_err(ServerError::internal)?
        .block_on(serve_until_stopped(
            settings,
            store,
            drover_app::stores::files_prefix(state_path),
            listener,
        ))
}

async fn serve_until_stopped(
    settings: ServeSettings,
    store: Arc<dyn RunStore>,
    files_prefix: PathBuf,
    listener: std::net::TcpListener,
) -> Result<(), ServerError> {
    let (stop_sender, shutdown) = watch::channel(false);
    let metrics = Arc::new(Metrics::new());
    let allowed_hosts = request_guard::AllowedHosts::new(
        listener.local_addr()?,
        &settings.allowed_hosts,
        !settings.tokens.is_empty(),
    );
    let state = Arc::new(AppState {
        allowed_hosts,
        sse_slots: Arc::new(Semaphore::new(settings.max_sse_clients)),
        manager: RunManager::new(
            Arc::clone(&store),
            files_prefix,
            runs_manager::RunLimits {
                lease_ttl: settings.lease_ttl,
                max_active_runs: settings.max_active_runs,
            },
            Arc::clone(&metrics),
            shutdown.clone(),
        ),
        settings,
        store,
        metrics,
        shutdown: shutdown.clone(),
        checks: checks::CheckResults::default(),
        observed: observed::ObservedClusters::default(),
    });
    state
        .manager
        .resume_unfinished(&state.settings.clusters)
        .await;
    {
        let adopter = Arc::clone(&state);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            adopter
                .manager
                .adopt_orphans_periodically(&adopter.settings.clusters, shutdown)
                .await
        });
    }
    if let Some(interval) = state.settings.check_interval {
        tokio::spawn(checks::check_periodically(Arc::clone(&state), interval));
    }
    let router = app(Arc::clone(&state));
    let address = listener.local_addr()?;
    tokio::spawn(forward_signals(stop_sender));
    let result = listen(&state, listener, address, router, shutdown.clone()).await;
    let manager_state = Arc::clone(&state);
    tokio::task::spawn_blocking(move || manager_state.manager.join_all(RUN_STOP_LIMIT))
        .await
        .map_err(ServerError::internal)?;
    eprintln!("drover serve stopped");
    result
}

async fn listen(
    state: &Arc<AppState>,
    listener: std::net::TcpListener,
    address: SocketAddr,
    router: Router,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServerError> {
    let stopping = {
        let mut shutdown = shutdown.clone();
        async move { shutdown_requested(&mut shutdown).await }
    };
    if let Some(files) = &state.settings.tls {
        return serve_tls(listener, address, files, router, stopping).await;
    }
    eprintln!("listening on http://{address}");
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let server = axum::serve(listener, router).with_graceful_shutdown(stopping);
    let mut deadline = shutdown;
    tokio::select! {
        served = server => served.map_err(ServerError::internal),
        _ = async {
            shutdown_requested(&mut deadline).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            eprintln!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
            Ok(())
        }
    }
}

#[cfg(feature = "tls")]
async fn serve_tls(
    listener: std::net::TcpListener,
    address: SocketAddr,
    files: &config::TlsFiles,
    router: Router,
    stopping: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    eprintln!("listening on https://{address}");
    tls::serve(listener, files, router, stopping, SHUTDOWN_GRACE).await
}

#[cfg(not(feature = "tls"))]
async fn serve_tls(
    _listener: std::net::TcpListener,
    _address: SocketAddr,
    _files: &config::TlsFiles,
    _router: Router,
    _stopping: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Err(ServerError::bad_config(
        "TLS needs a drover built with `--features tls`",
    ))
}

fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/", get(dashboard_index))
        .route("/index.html", get(dashboard_index))
        .route("/app.js", get(dashboard_script))
        .route("/style.css", get(dashboard_style))
        .merge(api::router(Arc::clone(&state)))
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            request_guard::guard_requests,
        ))
        .layer(DefaultBodyLimit::max(request_guard::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            api::observe_requests,
        ))
        .with_state(state)
}

async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document_json(),
    )
}

async fn dashboard_index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("dashboard/index.html"),
    )
}

async fn dashboard_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("dashboard/app.js"),
    )
}

async fn dashboard_style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("dashboard/style.css"),
    )
}

/// Prometheus text (classic, or OpenMetrics when asked); gauges computed now from the store and
/// the active runs.
async fn metrics_text(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let openmetrics = metrics::wants_openmetrics(accept);
    let hosts = hosts_by_cluster_step(&state);
    let mut runs = BTreeMap::new();
    for run in state.open_store()?.runs(None, 1_000_000).await? {
        *runs.entry(run.state).or_insert(0) += 1;
    }
    let text = state.metrics.render(&runs, &hosts);
    Ok(match openmetrics {
        true => (
            [(header::CONTENT_TYPE, metrics::OPENMETRICS_CONTENT_TYPE)],
            text,
        ),
        false => (
            [(header::CONTENT_TYPE, metrics::CLASSIC_TEXT_CONTENT_TYPE)],
            metrics::classic_text(&text),
        ),
    })
}

fn hosts_by_cluster_step(state: &AppState) -> BTreeMap<(String, String), i64> {
    let mut counts = BTreeMap::new();
    for cluster in &state.settings.clusters {
        let active = state
            .manager
            .for_cluster(&cluster.name)
            .filter(|handle| handle.is_live())
            .and_then(|handle| handle.latest_view())
            .filter(|view| !view.finished);
        match active {
            Some(view) => {
                for host in &view.hosts {
                    *counts
                        .entry((cluster.name.clone(), host.step.clone()))
                        .or_insert(0) += 1;
                }
            }
            None => {
                counts.insert(
                    (cluster.name.clone(), "idle".to_string()),
                    cluster.inventory.cluster.hosts.len() as i64,
                );
            }
        }
    }
    counts
}
