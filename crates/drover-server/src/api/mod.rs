//! The REST API under `/api/v1`: routing, the request body extractor (400 names the field),
//! and the outer middleware that counts requests and stamps `instance` on problem bodies.
//! Handlers live in `clusters`, `runs` and `events`.
//!
//! This module knows HTTP and the API contract; the engine is reached only through the run
//! manager and read-only replays of the journal.

pub mod clusters;
pub mod events;
pub mod runs;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;

use super::auth::{self, Caller};
use super::problem::{ApiError, PROBLEM_CONTENT_TYPE};
use super::views::WhoAmI;
use super::AppState;

/// The largest problem body re-read to stamp its `instance`.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// A JSON body whose errors name the field (an empty body is `{}`: every field is optional).
pub struct ApiBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    return crate::request_guard::too_large();
                }
                ApiError::BadRequest {
                    field: "body".into(),
                    detail: rejection.body_text(),
                }
            })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        // Every body is an object; serde would also take a struct's fields from an array.
        if text.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::BadRequest {
                field: "body".into(),
                detail: "expected a JSON object".into(),
            });
        }
        let mut deserializer = serde_json::Deserializer::from_slice(text);
        serde_path_to_error::deserialize(&mut deserializer)
            .map(ApiBody)
            .map_err(|error| {
                let path = error.path().to_string();
                ApiError::BadRequest {
                    field: if path == "." { "body".into() } else { path },
                    detail: error.into_inner().to_string(),
                }
            })
    }
}

pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/clusters", get(clusters::list))
        .route("/api/v1/clusters/{cluster}", get(clusters::detail))
        .route(
            "/api/v1/clusters/{cluster}/inventory",
            get(clusters::inventory),
        )
        .route("/api/v1/clusters/{cluster}/hosts", get(clusters::hosts))
        .route(
            "/api/v1/clusters/{cluster}/hosts/{host}",
            get(clusters::host),
        )
        .route(
            "/api/v1/clusters/{cluster}/hosts/{host}/upgrade",
            post(runs::upgrade_host),
        )
        .route("/api/v1/clusters/{cluster}/plans", post(clusters::plan))
        .route(
            "/api/v1/clusters/{cluster}/checks",
            get(clusters::last_check).post(clusters::check_now),
        )
        .route("/api/v1/clusters/{cluster}/runs", post(runs::create))
        .route("/api/v1/runs", get(runs::list))
        .route("/api/v1/runs/{run}", get(runs::view))
        .route("/api/v1/runs/{run}/report", get(runs::report))
        .route("/api/v1/runs/{run}/events", get(events::stream))
        .route("/api/v1/runs/{run}/{action}", post(runs::run_action))
        .route(
            "/api/v1/runs/{run}/hosts/{host}/{action}",
            post(runs::host_action),
        )
        .route_layer(middleware::from_fn_with_state(state, auth::require_caller))
}

/// Who the token belongs to.
#[utoipa::path(operation_id = "whoami", get, path = "/api/v1/whoami", tag = "auth",
    responses((status = 200, body = WhoAmI), (status = 401, body = super::problem::Problem)),
    security(("bearer" = [])))]
pub async fn whoami(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Json<WhoAmI> {
    Json(WhoAmI {
        name: caller.name,
        role: caller.role.name().to_string(),
        auth_required: !state.settings.tokens.is_empty(),
    })
}

/// Unknown routes answer with a problem too.
pub async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// Counts every request by route template and status; puts the path in problem bodies.
pub async fn observe_requests(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let response = next.run(request).await;
    state
        .metrics
        .api_request(&method, &route, response.status().as_u16());
    stamp_instance(response, &path).await
}

async fn stamp_instance(response: Response, path: &str) -> Response {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == PROBLEM_CONTENT_TYPE.as_bytes());
    if !is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PROBLEM_BYTES).await else {
        return ApiError::Internal("problem body too large".into()).into_response();
    };
    let mut problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if let Some(object) = problem.as_object_mut() {
        object.insert("instance".into(), path.into());
    }
    let body = serde_json::to_vec(&problem).unwrap_or_else(|_| bytes.to_vec());
    Response::from_parts(parts, axum::body::Body::from(body))
}
