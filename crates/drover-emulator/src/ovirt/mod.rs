//! The oVirt / OLVM front-end: the emulated engine ([`engine::Engine`]) served over HTTP on
//! loopback as the real engine serves it: the SSO's password grant at
//! `POST /ovirt-engine/sso/oauth/token` (form `grant_type=password`, `scope=ovirt-app-api`,
//! `username`, `password`; JSON answer with `access_token`, or the SSO's `error_code`/`error`),
//! `POST /ovirt-engine/services/sso-logout` (what `Connection.close()` calls), and the REST API
//! v4 under `/ovirt-engine/api` with `Authorization: Bearer TOKEN` (401 without a live token, so
//! a client logs in again) and `Version: 4`, in XML by default and JSON for
//! `Accept: application/json` (`ovirtsdk4/__init__.py` of PyPI `ovirt-engine-sdk-python` 4.6.3
//! shows the headers and the SSO exchange). `GET /emulator/calls` is the emulator's own request
//! counter (not oVirt).
//!
//! Bounded: request bodies ([`MAX_BODY_BYTES`]), requests in progress at once
//! ([`MAX_REQUESTS_IN_PROGRESS`], a further one is answered 503), tokens and jobs (in `engine`).
//!
//! This module must not know the simulator: it speaks to the engine only.

pub mod engine;
pub mod events;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Form, Json, Router};
use tokio::sync::Semaphore;

use crate::EmulatorError;
pub use engine::{ClusterUpgrade, Credentials, Engine, CORDON_TAG};

/// The largest request body read; actions and updates are small.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Requests answered at once; the rest are refused with 503 rather than queued without bound.
pub const MAX_REQUESTS_IN_PROGRESS: usize = 64;

#[derive(Clone)]
struct Served {
    /// The front part: the SSO, the request counter, the audit log and the engine-wide objects.
    engine: Arc<Engine>,
    /// Every cluster of the engine (the front one first).
    parts: Vec<Arc<Engine>>,
    in_progress: Arc<Semaphore>,
}

/// The router serving `engine`.
pub fn router(engine: Arc<Engine>) -> Router {
    router_of(vec![engine])
}

/// The router serving one engine of several clusters: `parts[i]` was made with
/// [`Engine::new_part`] numbered `i`, all with one audit log. A request about an object goes to
/// the part its id names; a collection (`/hosts`, `/vms`, `/clusters`, `/storagedomains`,
/// `/jobs`) is every part's, in part order; the rest (the SSO, the API root, scheduling
/// policies, events, the request counter) is the first part's.
///
/// # Panics
/// When `parts` is empty.
pub fn router_of(parts: Vec<Arc<Engine>>) -> Router {
    let served = Served {
        engine: Arc::clone(&parts[0]),
        parts,
        in_progress: Arc::new(Semaphore::new(MAX_REQUESTS_IN_PROGRESS)),
    };
    Router::new()
        .route("/ovirt-engine/sso/oauth/token", post(token))
        .route("/ovirt-engine/services/sso-logout", post(logout))
        .route("/ovirt-engine/api", any(api_root))
        .route("/ovirt-engine/api/", any(api_root))
        .route("/ovirt-engine/api/{*rest}", any(api))
        .route("/emulator/calls", get(call_counts))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(served)
}

/// Serves `engine` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
) -> Result<(), EmulatorError> {
    serve_parts(listener, vec![engine]).await
}

/// Serves one engine of several clusters (see [`router_of`]) on `listener`.
pub async fn serve_parts(
    listener: tokio::net::TcpListener,
    parts: Vec<Arc<Engine>>,
) -> Result<(), EmulatorError> {
    axum::serve(listener, router_of(parts))
        .await
        .map_err(|source| EmulatorError::Serve(source.to_string()))
}

/// Collections every part contributes to.
const MERGED_COLLECTIONS: [&str; 5] = ["hosts", "vms", "clusters", "storagedomains", "jobs"];

/// Answers a request through the part it is about, or every part for a collection.
async fn dispatch(
    served: &Served,
    method: &str,
    segments: &[&str],
    query: &HashMap<String, String>,
    body: Option<wire::Node>,
) -> engine::Answer {
    if served.parts.len() == 1 {
        return served.engine.handle(method, segments, query, body).await;
    }
    if let Some(part) = segments
        .get(1)
        .and_then(|id| engine::part_of(id))
        .and_then(|part| served.parts.get(usize::from(part)))
    {
        return part.handle(method, segments, query, body).await;
    }
    match (method, segments) {
        ("GET", [collection]) if MERGED_COLLECTIONS.contains(collection) => {
            let mut merged: Option<wire::Node> = None;
            for part in &served.parts {
                let (status, document) = part.handle(method, segments, query, body.clone()).await;
                let Some(wire::Node::List { tag, item, items }) = document else {
                    return (status, document);
                };
                if status != 200 {
                    return (status, Some(wire::Node::List { tag, item, items }));
                }
                merged = Some(match merged {
                    Some(wire::Node::List {
                        tag,
                        item,
                        items: mut all,
                    }) => {
                        all.extend(items);
                        wire::Node::List {
                            tag,
                            item,
                            items: all,
                        }
                    }
                    _ => wire::Node::List { tag, item, items },
                });
            }
            (200, merged)
        }
        _ => served.engine.handle(method, segments, query, body).await,
    }
}

fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "too many requests in progress",
    )
        .into_response()
}

async fn token(
    State(served): State<Served>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Ok(_permit) = served.in_progress.try_acquire() else {
        return busy();
    };
    served
        .engine
        .count_call("POST", "/ovirt-engine/sso/oauth/token");
    let (status, answer) = served.engine.grant(&form);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(answer),
    )
        .into_response()
}

async fn logout(
    State(served): State<Served>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(token) = form.get("token") {
        served.engine.revoke(token);
    }
    Json(serde_json::json!({})).into_response()
}

async fn api_root(
    State(served): State<Served>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    answer(served, method, headers, String::new(), query, body).await
}

async fn api(
    State(served): State<Served>,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    answer(served, method, headers, rest, query, body).await
}

async fn answer(
    served: Served,
    method: Method,
    headers: HeaderMap,
    rest: String,
    query: HashMap<String, String>,
    body: String,
) -> Response {
    let Ok(_permit) = served.in_progress.try_acquire() else {
        return busy();
    };
    let path = format!("{}/{rest}", engine::API);
    served
        .engine
        .count_call(method.as_str(), path.trim_end_matches('/'));
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    };
    let json = header_text("accept").contains("application/json");
    let token = header_text("authorization")
        .strip_prefix("Bearer ")
        .unwrap_or("");
    if !served.engine.token_is_valid(token) {
        // The SDK answers a 401 by asking the SSO for a new token and sending the request again.
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response();
    }
    let version = header_text("version");
    let (status, document) = if !version.is_empty() && version != "4" {
        engine::fault(
            400,
            "Operation Failed",
            &format!("Version {version} of the API is not supported: this engine serves version 4"),
        )
    } else {
        let root = match method.as_str() {
            "PUT" => "cluster",
            _ => "action",
        };
        match (method.as_str(), wire::read_body(&body, root)) {
            ("POST" | "PUT", Err(problem)) => engine::fault(
                400,
                "Operation Failed",
                &format!("Cannot read the request body: {problem}"),
            ),
            (_, read) => {
                let segments: Vec<&str> = rest.split('/').filter(|part| !part.is_empty()).collect();
                dispatch(&served, method.as_str(), &segments, &query, read.ok()).await
            }
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match document {
        None => status.into_response(),
        Some(document) if json => (status, Json(document.to_json())).into_response(),
        Some(document) => (
            status,
            [(header::CONTENT_TYPE, "application/xml;charset=UTF-8")],
            document.to_xml(),
        )
            .into_response(),
    }
}

async fn call_counts(State(served): State<Served>) -> Response {
    Json(served.engine.calls()).into_response()
}
