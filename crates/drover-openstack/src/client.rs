//! One HTTP client for a cloud: reqwest with rustls, the cloud's CA (`ca_file`) or, only when
//! asked, no certificate check at all (`insecure`, logged as a warning when the client is
//! built). A Keystone token is fetched on first use, sent as `X-Auth-Token`, renewed at 80 % of
//! its lifetime and, once, when an API answers 401 (a token revoked or expired early). Nova and
//! Placement endpoints come from the token's catalog.
//!
//! The compute microversion is negotiated once from Nova's version document (`GET /v2.1/`,
//! `version.version` is the highest the cloud offers, api-ref `versions.inc`): Drover uses the
//! highest it knows ([`MAX_COMPUTE_MINOR`], Zed's 2.93) that the cloud offers, and refuses a
//! cloud below [`MIN_COMPUTE_MINOR`]. It is sent as `OpenStack-API-Version: compute 2.N` (and the
//! older `X-OpenStack-Nova-API-Version`, read by Nova before 2.27).
//!
//! This module must not know Drover's driver contract, hosts or servers: it only sends
//! requests, keeps the token and counts requests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::auth::{endpoint, issued_token, KeystoneAuth};
use crate::OpenstackError;

/// The highest compute microversion Drover knows the answers of: 2.93 (Zed). Above 2.88
/// `os-hypervisors` has no capacity fields (Placement gives them, api-ref `os-hypervisors.inc`).
pub const MAX_COMPUTE_MINOR: u32 = 93;
/// The lowest Drover works with: 2.60 (Queens) — `PUT /os-services/{id}` (2.53), cold migration
/// to a named host (2.56), `os-migrations` newest first (2.59).
pub const MIN_COMPUTE_MINOR: u32 = 60;

/// How to reach a cloud.
#[derive(Clone, Debug)]
pub struct Connection {
    pub auth: KeystoneAuth,
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
    pub request_timeout: Duration,
}

struct Session {
    token: String,
    renew_at: Instant,
    compute_url: String,
    placement_url: String,
}

/// One cloud; requests may run concurrently.
pub struct OpenstackClient {
    http: reqwest::Client,
    auth: KeystoneAuth,
    session: Mutex<Option<Session>>,
    compute_minor: Mutex<Option<u32>>,
    /// Every request sent (Keystone's included), for the "API calls per migrated server" figure.
    requests_sent: AtomicU64,
    tokens_issued: AtomicU64,
}

/// The text of an OpenStack error body: Nova's `{"badRequest": {"message": …}}`, Keystone's
/// `{"error": {"message": …}}`, Placement's `{"errors": [{"detail": …}]}`, else the raw text.
pub fn error_message(text: &str) -> String {
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return text.chars().take(300).collect();
    };
    if let Some(errors) = body.get("errors").and_then(Value::as_array) {
        let details: Vec<&str> = errors
            .iter()
            .filter_map(|e| e.get("detail").and_then(Value::as_str))
            .collect();
        if !details.is_empty() {
            return details.join("; ");
        }
    }
    body.as_object()
        .into_iter()
        .flat_map(|object| object.values())
        .find_map(|value| value.get("message").and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| text.chars().take(300).collect())
}

/// The minor version of a `2.N` microversion text.
pub fn compute_minor(text: &str) -> Option<u32> {
    text.strip_prefix("2.")?.parse().ok()
}

/// The microversion to use with a cloud whose version document says `max` (`version.version`;
/// empty when the cloud has no microversions).
pub fn negotiate(max: &str) -> Result<u32, OpenstackError> {
    let offered = compute_minor(max).unwrap_or(0);
    if offered < MIN_COMPUTE_MINOR {
        return Err(OpenstackError::Config(format!(
            "Nova offers compute microversions up to {max:?}; Drover needs 2.{MIN_COMPUTE_MINOR} or newer"
        )));
    }
    Ok(offered.min(MAX_COMPUTE_MINOR))
}

impl OpenstackClient {
    pub fn new(connection: Connection) -> Result<OpenstackClient, OpenstackError> {
        let mut builder = reqwest::Client::builder().timeout(connection.request_timeout);
        if let Some(path) = &connection.ca_file {
            let pem = std::fs::read(path).map_err(|error| {
                OpenstackError::Config(format!("cannot read ca_file {}: {error}", path.display()))
            })?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|error| {
                OpenstackError::Config(format!("ca_file {}: {error}", path.display()))
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        if connection.insecure {
            tracing::warn!(
                auth_url = %connection.auth.auth_url,
                "openstack driver: `insecure: true`: TLS certificates are NOT checked; anyone on the path can impersonate the cloud and read its credentials"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|error| OpenstackError::Config(format!("HTTP client: {error}")))?;
        Ok(OpenstackClient {
            http,
            auth: connection.auth,
            session: Mutex::new(None),
            compute_minor: Mutex::new(None),
            requests_sent: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
        })
    }

    /// Requests sent so far (Keystone's included).
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent.load(Ordering::Relaxed)
    }

    /// Tokens Keystone issued to this client so far.
    pub fn tokens_issued(&self) -> u64 {
        self.tokens_issued.load(Ordering::Relaxed)
    }

    /// Forgets the token, so that the next request gets a new one (what a 401 does).
    pub async fn forget_token(&self) {
        *self.session.lock().await = None;
    }

    fn transport(
        &self,
        service: &'static str,
        url: &str,
        error: &reqwest::Error,
    ) -> OpenstackError {
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            detail.push_str(": ");
            detail.push_str(&inner.to_string());
            source = inner.source();
        }
        OpenstackError::Transport {
            service,
            url: url.to_string(),
            detail,
        }
    }

    async fn issue_token(&self) -> Result<Session, OpenstackError> {
        self.requests_sent.fetch_add(1, Ordering::Relaxed);
        let url = self.auth.tokens_url();
        let response = self
            .http
            .post(&url)
            .json(&self.auth.request_body())
            .send()
            .await
            .map_err(|error| self.transport("keystone", &url, &error))?;
        let status = response.status();
        let subject_token = response
            .headers()
            .get("X-Subject-Token")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let text = response
            .text()
            .await
            .map_err(|error| self.transport("keystone", &url, &error))?;
        if !status.is_success() {
            return Err(OpenstackError::Http {
                service: "keystone",
                method: "POST".into(),
                path: "/v3/auth/tokens".into(),
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        let subject_token = subject_token.ok_or_else(|| {
            OpenstackError::Protocol("Keystone issued a token without X-Subject-Token".into())
        })?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|error| OpenstackError::Protocol(format!("Keystone's token: {error}")))?;
        let issued = issued_token(&subject_token, &body)?;
        let region = self.auth.region.as_deref();
        let interface = self.auth.interface.as_str();
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
        Ok(Session {
            token: issued.token,
            renew_at: Instant::now() + issued.lifetime.mul_f64(0.8),
            compute_url: endpoint(&issued.catalog, "compute", interface, region)?,
            placement_url: endpoint(&issued.catalog, "placement", interface, region)?,
        })
    }

    /// The token and endpoints, renewed when due.
    async fn session(&self) -> Result<(String, String, String), OpenstackError> {
        let mut session = self.session.lock().await;
        let due = session
            .as_ref()
            .is_none_or(|session| Instant::now() >= session.renew_at);
        if due {
            *session = Some(self.issue_token().await?);
        }
        let session = session.as_ref().expect("a session was just issued");
        Ok((
            session.token.clone(),
            session.compute_url.clone(),
            session.placement_url.clone(),
        ))
    }

    /// The compute microversion in use, negotiated on first use.
    pub async fn compute_minor(&self) -> Result<u32, OpenstackError> {
        let mut minor = self.compute_minor.lock().await;
        if let Some(minor) = *minor {
            return Ok(minor);
        }
        // The versioned root: `{"version": {"version": "2.93", "min_version": "2.1", …}}`.
        let document = self.send("nova", Method::GET, "/", None, None).await?;
        let max = document
            .get("version")
            .and_then(|version| version.get("version"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let negotiated = negotiate(max)?;
        *minor = Some(negotiated);
        Ok(negotiated)
    }

    /// A Compute API request at the negotiated microversion; `path` is below the endpoint
    /// (`/servers/detail`).
    pub async fn compute(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, OpenstackError> {
        let minor = self.compute_minor().await?;
        self.send("nova", method, path, body, Some(minor)).await
    }

    /// A Placement request (version 1.0 answers: no microversion header).
    pub async fn placement(&self, path: &str) -> Result<Value, OpenstackError> {
        self.send("placement", Method::GET, path, None, None).await
    }

    async fn send(
        &self,
        service: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        compute_minor: Option<u32>,
    ) -> Result<Value, OpenstackError> {
        let mut renewed = false;
        loop {
            let (token, compute_url, placement_url) = self.session().await?;
            let base = if service == "placement" {
                placement_url
            } else {
                compute_url
            };
            let url = format!("{base}{path}");
            self.requests_sent.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("X-Auth-Token", &token)
                .header("Accept", "application/json");
            if let Some(minor) = compute_minor {
                request = request
                    .header("OpenStack-API-Version", format!("compute 2.{minor}"))
                    .header("X-OpenStack-Nova-API-Version", format!("2.{minor}"));
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|error| self.transport(service, &url, &error))?;
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|error| self.transport(service, &url, &error))?;
            if status.as_u16() == 401 && !renewed {
                // The token was revoked or expired before its time: one new token, one retry.
                renewed = true;
                self.forget_token().await;
                continue;
            }
            if !status.is_success() {
                return Err(OpenstackError::Http {
                    service,
                    method: method.to_string(),
                    path: path.to_string(),
                    status: status.as_u16(),
                    message: error_message(&text),
                });
            }
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|error| {
                OpenstackError::Protocol(format!("{method} {path}: {error}: {text:.200}"))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_microversion_is_the_highest_both_know() {
        assert_eq!(negotiate("2.93").unwrap(), 93);
        assert_eq!(negotiate("2.104").unwrap(), MAX_COMPUTE_MINOR);
        assert_eq!(negotiate("2.79").unwrap(), 79);
        assert!(matches!(negotiate("2.38"), Err(OpenstackError::Config(_))));
        assert!(matches!(negotiate(""), Err(OpenstackError::Config(_))));
    }

    #[test]
    fn error_bodies_of_nova_keystone_and_placement_are_read() {
        assert_eq!(
            error_message(
                r#"{"conflictingRequest": {"code": 409, "message": "Cannot 'os-migrateLive' instance"}}"#
            ),
            "Cannot 'os-migrateLive' instance"
        );
        assert_eq!(
            error_message(
                r#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#
            ),
            "The request you have made requires authentication."
        );
        assert_eq!(
            error_message(
                r#"{"errors": [{"status": 404, "detail": "No resource provider with uuid x found"}]}"#
            ),
            "No resource provider with uuid x found"
        );
        assert_eq!(error_message("plain text"), "plain text");
    }
}
