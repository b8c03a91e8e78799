//! API errors: one typed enum, rendered as RFC 9457 `application/problem+json`. The request path
//! (`instance`) is filled in by the API's outer middleware, which knows the URI.
//!
//! This module knows HTTP status codes and the problem shape; it must not know the engine.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Why an API call failed.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// No token, or a token that matches none configured.
    Unauthorized(String),
    /// A viewer token on a mutating call.
    Forbidden(String),
    /// Unknown cluster, run, host or route.
    NotFound(String),
    /// The body does not parse or a field is invalid.
    BadRequest {
        field: String,
        detail: String,
    },
    /// The action does not apply in the run's or cluster's current state.
    Conflict(String),
    /// The plan is not safe: the failed prechecks are attached.
    UnsafePlan {
        detail: String,
        prechecks: Vec<serde_json::Value>,
    },
    /// Too many event streams are open.
    TooManyStreams(String),
    /// A `Host` this server does not answer to (DNS rebinding).
    MisdirectedHost(String),
    /// An `Origin` other than the server's own (a cross-site request from a web page).
    ForeignOrigin(String),
    /// A request body that is not `application/json`.
    UnsupportedMediaType(String),
    /// A request body over the limit.
    PayloadTooLarge(String),
    /// The platform did not answer (discovery at run creation).
    Driver(String),
    Internal(String),
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `https://drover.dev/problems/<slug>`
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request path; set on every error the API returns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// For 400: which fields are wrong.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For 422: the prechecks that failed (plan document entries).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub prechecks: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field, e.g. `hosts[0]`.
    pub field: String,
    pub message: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::UnsafePlan { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyStreams(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::ForeignOrigin(_) => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Driver(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::Unauthorized(_) => ("unauthorized", "Authentication required"),
            ApiError::Forbidden(_) => ("forbidden", "Not allowed for this role"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::BadRequest { .. } => ("bad-request", "Malformed request"),
            ApiError::Conflict(_) => ("conflict", "Not valid in the current state"),
            ApiError::UnsafePlan { .. } => ("unsafe-plan", "No safe plan"),
            ApiError::TooManyStreams(_) => ("too-many-streams", "Too many event streams"),
            ApiError::MisdirectedHost(_) => ("misdirected-host", "Host not served here"),
            ApiError::ForeignOrigin(_) => ("foreign-origin", "Cross-site request refused"),
            ApiError::UnsupportedMediaType(_) => {
                ("unsupported-media-type", "Request body must be JSON")
            }
            ApiError::PayloadTooLarge(_) => ("payload-too-large", "Request body too large"),
            ApiError::Driver(_) => ("driver-error", "The platform did not answer"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Unauthorized(d)
            | ApiError::Forbidden(d)
            | ApiError::NotFound(d)
            | ApiError::Conflict(d)
            | ApiError::TooManyStreams(d)
            | ApiError::MisdirectedHost(d)
            | ApiError::ForeignOrigin(d)
            | ApiError::UnsupportedMediaType(d)
            | ApiError::PayloadTooLarge(d)
            | ApiError::Driver(d)
            | ApiError::Internal(d) => d.clone(),
            ApiError::BadRequest { field, detail } => format!("{field}: {detail}"),
            ApiError::UnsafePlan { detail, .. } => detail.clone(),
        }
    }

    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        Problem {
            kind: format!("https://drover.dev/problems/{slug}"),
            title: title.to_string(),
            status: self.status().as_u16(),
            detail: self.detail(),
            instance: None,
            errors: match self {
                ApiError::BadRequest { field, detail } => vec![FieldError {
                    field: field.clone(),
                    message: detail.clone(),
                }],
                _ => Vec::new(),
            },
            prechecks: match self {
                ApiError::UnsafePlan { prechecks, .. } => prechecks.clone(),
                _ => Vec::new(),
            },
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        ApiError::Internal(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).expect("a problem is plain data");
        let mut response = (self.status(), body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if matches!(self, ApiError::Unauthorized(_)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"drover\""),
            );
        }
        response
    }
}

impl From<drover_store::StoreError> for ApiError {
    fn from(error: drover_store::StoreError) -> Self {
        match error {
            drover_store::StoreError::LockHeld { .. } => ApiError::Conflict(error.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<drover_engine::EngineError> for ApiError {
    fn from(error: drover_engine::EngineError) -> Self {
        use drover_engine::EngineError as E;
        match error {
            E::Operator(_) | E::RunBusy { .. } | E::ClusterLocked { .. } | E::NeverStarted(_) => {
                ApiError::Conflict(error.to_string())
            }
            E::UnknownRun(id) => ApiError::NotFound(format!("no run {id:?}")),
            E::Store(store) => store.into(),
            E::Driver(detail) => ApiError::Driver(detail),
            other => ApiError::internal(other),
        }
    }
}
