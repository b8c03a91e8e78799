//! The CloudStack front-end: the emulated management server ([`management::Management`]) served
//! over HTTP on loopback as the real one serves its API: `GET` or `POST` (form body) to
//! `/client/api` with the parameters `command`, `apiKey`, `signature` (and `signatureVersion=3`
//! with `expires`, as PyPI `cs` sends them), `response=json`; the answer is
//! `application/json; charset=UTF-8` with the HTTP status equal to the error code on an error
//! (exoscale/cs `cs/client.py` `_response_value` raises `CloudStackApiException` for any status
//! but 200). A refused signature is 401 with CloudStack's error body. `GET /emulator/calls` is
//! the emulator's own request counter; `POST /emulator/upgrade` (`{"host", "target",
//! "hotfixes"}`, hotfixes comma-separated) and `POST /emulator/reboot` (`{"host"}`) stand for the
//! hypervisor's own installer and reboot, which CloudStack's API does not drive, for a test's
//! `upgrade` and `reboot` commands; `GET /emulator/hotfixes` lists the hotfixes given per host
//! (none of these is CloudStack).
//!
//! Bounded: request bodies ([`MAX_BODY_BYTES`]), parameters per request
//! ([`MAX_PARAMETERS`]), requests in progress at once ([`MAX_REQUESTS_IN_PROGRESS`], a further
//! one is answered 503), jobs (in `management`).
//!
//! This module must not know the simulator: it speaks to the management server only.

pub mod annotations;
pub mod management;
pub mod signature;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use tokio::sync::Semaphore;

use crate::EmulatorError;
pub use management::{Credentials, Management, Reply};

/// The largest request body read; API calls are small.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Parameters read from one request; the rest are ignored (and so fail the signature).
pub const MAX_PARAMETERS: usize = 256;
/// Requests answered at once; the rest are refused with 503 rather than queued without bound.
pub const MAX_REQUESTS_IN_PROGRESS: usize = 64;
/// Where the API is served, as on a real management server.
pub const API_PATH: &str = "/client/api";

#[derive(Clone)]
struct Served {
    management: Arc<Management>,
    in_progress: Arc<Semaphore>,
}

/// The router serving `management`.
pub fn router(management: Arc<Management>) -> Router {
    let served = Served {
        management,
        in_progress: Arc::new(Semaphore::new(MAX_REQUESTS_IN_PROGRESS)),
    };
    Router::new()
        .route(API_PATH, any(api))
        .route("/client/api/", any(api))
        .route("/emulator/calls", get(call_counts))
        .route("/emulator/upgrade", post(upgrade))
        .route("/emulator/reboot", post(reboot))
        .route("/emulator/hotfixes", get(hotfixes))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(served)
}

/// Serves `management` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    management: Arc<Management>,
) -> Result<(), EmulatorError> {
    axum::serve(listener, router(management))
        .await
        .map_err(|source| EmulatorError::Serve(source.to_string()))
}

/// The decoded parameters of the query and, for a form `POST`, the body (as the servlet's
/// `getParameterMap` merges them).
pub fn parameters_of(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut parameters: Vec<(String, String)> = Vec::new();
    if let Some(query) = query {
        parameters.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if form {
        parameters.extend(form_urlencoded::parse(body).into_owned());
    }
    parameters.truncate(MAX_PARAMETERS);
    parameters
}

async fn api(
    State(served): State<Served>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(_permit) = served.in_progress.try_acquire() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in progress",
        )
            .into_response();
    };
    let parameters = parameters_of(query.as_deref(), &headers, &body);
    let reply = served.management.handle(&parameters).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        reply.body.to_string(),
    )
        .into_response()
}

async fn call_counts(State(served): State<Served>) -> Response {
    Json(served.management.calls()).into_response()
}

fn text_of<'a>(request: &'a serde_json::Value, key: &str) -> &'a str {
    request
        .get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

/// `{"host": NAME, "target": VERSION, "hotfixes": "A,B"}`: the installer's work.
async fn upgrade(State(served): State<Served>, Json(request): Json<serde_json::Value>) -> Response {
    let Ok(_permit) = served.in_progress.try_acquire() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in progress",
        )
            .into_response();
    };
    let hotfixes: Vec<String> = text_of(&request, "hotfixes")
        .split(',')
        .filter(|hotfix| !hotfix.is_empty())
        .map(str::to_string)
        .collect();
    match served
        .management
        .install_on_host(
            text_of(&request, "host"),
            text_of(&request, "target"),
            &hotfixes,
        )
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(problem) => (StatusCode::CONFLICT, problem).into_response(),
    }
}

/// `{"host": NAME}`: the host reboots (answered once it is back).
async fn reboot(State(served): State<Served>, Json(request): Json<serde_json::Value>) -> Response {
    match served
        .management
        .reboot_host(text_of(&request, "host"))
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(problem) => (StatusCode::CONFLICT, problem).into_response(),
    }
}

async fn hotfixes(State(served): State<Served>) -> Response {
    Json(served.management.hotfixes_applied()).into_response()
}
