//! The XAPI front-end: the emulated pool ([`pool::XapiPool`]) served over HTTP on loopback in
//! both of XAPI's encodings, XML-RPC at `/` (the official Python SDK's transport) and JSON-RPC at
//! `/jsonrpc`, plus two endpoints of the emulator's own (not XAPI): the call counter at
//! `GET /emulator/calls`, and `POST /emulator/upgrade` (`{"host", "target"}`), the installer a
//! test's `upgrade` command stands for (XenServer upgrades outside its API).
//!
//! Bounded: request bodies ([`MAX_BODY_BYTES`]), requests in progress at once
//! ([`MAX_REQUESTS_IN_PROGRESS`], a further one is answered 503), sessions and tasks (in `pool`).
//!
//! This module must not know the simulator's internals: it speaks to the pool only.

pub mod pool;
mod refs;
mod vm_objects;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::Semaphore;

use crate::EmulatorError;
pub use pool::{Credentials, XapiPool};

/// The largest request body read; XAPI calls are small.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Requests answered at once; the rest are refused with 503 rather than queued without bound.
pub const MAX_REQUESTS_IN_PROGRESS: usize = 64;

#[derive(Clone)]
struct Served {
    pool: Arc<XapiPool>,
    in_progress: Arc<Semaphore>,
}

/// Which of XAPI's encodings the front-end serves; XML-RPC always (every xapi has it).
#[derive(Clone, Copy, Debug)]
pub struct Encodings {
    /// `/jsonrpc`; without it the path is answered 404, as by a server without JSON-RPC.
    pub json_rpc: bool,
}

impl Default for Encodings {
    fn default() -> Encodings {
        Encodings { json_rpc: true }
    }
}

/// The router serving `pool` in both encodings.
pub fn router(pool: Arc<XapiPool>) -> Router {
    router_with(pool, Encodings::default())
}

/// The router serving `pool` in `encodings`.
pub fn router_with(pool: Arc<XapiPool>, encodings: Encodings) -> Router {
    let served = Served {
        pool,
        in_progress: Arc::new(Semaphore::new(MAX_REQUESTS_IN_PROGRESS)),
    };
    let mut router = Router::new().route("/", post(xml_rpc));
    if encodings.json_rpc {
        router = router.route("/jsonrpc", post(json_rpc));
    }
    router
        .route("/emulator/calls", get(call_counts))
        .route("/emulator/upgrade", post(upgrade))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(served)
}

/// Serves `pool` on `listener` in both encodings until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    pool: Arc<XapiPool>,
) -> Result<(), EmulatorError> {
    serve_encodings(listener, pool, Encodings::default()).await
}

/// Serves `pool` on `listener` in `encodings` until the process ends.
pub async fn serve_encodings(
    listener: tokio::net::TcpListener,
    pool: Arc<XapiPool>,
    encodings: Encodings,
) -> Result<(), EmulatorError> {
    axum::serve(listener, router_with(pool, encodings))
        .await
        .map_err(|source| EmulatorError::Serve(source.to_string()))
}

/// Only loopback: the emulator is a test platform and must never be reachable from elsewhere.
pub fn check_loopback(address: &SocketAddr) -> Result<(), EmulatorError> {
    if address.ip().is_loopback() {
        return Ok(());
    }
    Err(EmulatorError::NotLoopback(*address))
}

fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "too many requests in progress",
    )
        .into_response()
}

async fn xml_rpc(State(served): State<Served>, body: String) -> Response {
    let Ok(_permit) = served.in_progress.try_acquire() else {
        return busy();
    };
    let answer = match wire::decode_xml_call(&body) {
        Ok(call) => served.pool.call(&call.method, call.params).await,
        Err(problem) => Err(vec!["XMLRPC_UNMARSHAL_FAILURE".to_string(), problem]),
    };
    (
        [(header::CONTENT_TYPE, "text/xml")],
        wire::encode_xml_answer(&answer),
    )
        .into_response()
}

async fn json_rpc(State(served): State<Served>, body: String) -> Response {
    let Ok(_permit) = served.in_progress.try_acquire() else {
        return busy();
    };
    let (answer, id) = match wire::decode_json_call(&body) {
        Ok(call) => (
            served.pool.call(&call.method, call.params).await,
            call.json_id,
        ),
        Err(problem) => (
            Err(vec!["JSONRPC_UNMARSHAL_FAILURE".to_string(), problem]),
            None,
        ),
    };
    Json(wire::encode_json_answer(&answer, id.as_ref())).into_response()
}

/// `{"host": NAME, "target": VERSION}`: the installer's work, for a test's `upgrade` command.
async fn upgrade(State(served): State<Served>, Json(request): Json<serde_json::Value>) -> Response {
    let Ok(_permit) = served.in_progress.try_acquire() else {
        return busy();
    };
    let text = |key: &str| {
        request
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    };
    match served.pool.upgrade_host(text("host"), text("target")).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(problem) => (StatusCode::CONFLICT, problem).into_response(),
    }
}

async fn call_counts(State(served): State<Served>) -> Response {
    Json(served.pool.calls_by_method()).into_response()
}
