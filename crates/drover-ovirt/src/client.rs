//! An oVirt REST API v4 client with one SSO token: the password grant at
//! `URL/ovirt-engine/sso/oauth/token` (form `grant_type=password`, `scope=ovirt-app-api`,
//! `username`, `password`; the answer's `access_token`, or the SSO's `error_code`/`error`) on first
//! use, and a new grant when the API answers 401 (the token expired or the engine restarted), once
//! per request, as the official SDK does (`Connection.__wait` in `ovirtsdk4/__init__.py`).
//! Requests carry `Version: 4`, `Accept: application/json` and `Authorization: Bearer TOKEN`; the
//! engine's JSON writes every scalar as a string and a collection as `{"item": […]}`.
//!
//! This module must not know Drover's driver contract: it only sends requests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;

use crate::OvirtError;

/// How to reach and log into an engine.
#[derive(Clone, Debug)]
pub struct OvirtConnection {
    /// `https://engine.example` (or `http://` for a loopback emulator).
    pub url: String,
    pub username: String,
    pub password: String,
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
    pub request_timeout: Duration,
}

/// One logged-in connection; requests may run concurrently (the token is shared).
pub struct OvirtClient {
    http: reqwest::Client,
    connection: OvirtConnection,
    /// `https://engine.example`, without `/ovirt-engine/api`.
    base_url: String,
    token: Mutex<Option<String>>,
    /// Every request made (token grants included), for the "API calls per migrated VM" figure.
    requests_made: AtomicU64,
}

impl OvirtClient {
    pub fn new(connection: OvirtConnection) -> Result<OvirtClient, OvirtError> {
        let mut builder = reqwest::Client::builder().timeout(connection.request_timeout);
        if let Some(path) = &connection.ca_file {
            let pem = std::fs::read(path).map_err(|error| {
                OvirtError::Config(format!("cannot read ca_file {}: {error}", path.display()))
            })?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|error| {
                OvirtError::Config(format!("ca_file {}: {error}", path.display()))
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        if connection.insecure {
            tracing::warn!(
                url = %connection.url,
                "ovirt driver: `insecure: true`: the engine's TLS certificate is NOT checked; anyone on the path can impersonate the engine"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|error| OvirtError::Config(format!("HTTP client: {error}")))?;
        let trimmed = connection.url.trim_end_matches('/');
        let base_url = trimmed
            .strip_suffix("/ovirt-engine/api")
            .unwrap_or(trimmed)
            .to_string();
        Ok(OvirtClient {
            http,
            connection,
            base_url,
            token: Mutex::new(None),
            requests_made: AtomicU64::new(0),
        })
    }

    /// Requests made so far (token grants included).
    pub fn requests_made(&self) -> u64 {
        self.requests_made.load(Ordering::Relaxed)
    }

    pub async fn get(&self, path: &str) -> Result<Value, OvirtError> {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, OvirtError> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Result<Value, OvirtError> {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, OvirtError> {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Sends a request below `/ovirt-engine/api`; on 401 asks the SSO for a new token and sends
    /// it once more.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, OvirtError> {
        let mut granted_again = false;
        loop {
            let token = self.token().await?;
            match self.send_once(&method, path, body.as_ref(), &token).await {
                Err(OvirtError::Api { status: 401, .. }) if !granted_again => {
                    granted_again = true;
                    let mut current = self.token.lock().await;
                    if current.as_deref() == Some(token.as_str()) {
                        *current = None;
                    }
                }
                answer => return answer,
            }
        }
    }

    async fn token(&self) -> Result<String, OvirtError> {
        let mut current = self.token.lock().await;
        if let Some(token) = current.as_ref() {
            return Ok(token.clone());
        }
        self.requests_made.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/ovirt-engine/sso/oauth/token", self.base_url);
        let response = self
            .http
            .post(&url)
            .header("Accept", "application/json")
            .form(&[
                ("grant_type", "password"),
                ("scope", "ovirt-app-api"),
                ("username", self.connection.username.as_str()),
                ("password", self.connection.password.as_str()),
            ])
            .send()
            .await
            .map_err(|error| OvirtError::Transport {
                url: url.clone(),
                detail: error.to_string(),
            })?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|error| OvirtError::Transport {
                url: url.clone(),
                detail: format!("HTTP {status}: {error}"),
            })?;
        if let Some(message) = answer.get("error") {
            // OpenID writes `error` + `error_description`, OAuth `error_code` + `error`.
            let code = answer
                .get("error_code")
                .or_else(|| answer.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            let message = answer
                .get("error_description")
                .unwrap_or(message)
                .as_str()
                .unwrap_or("")
                .to_string();
            return Err(OvirtError::Login { code, message });
        }
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| OvirtError::Protocol("the SSO answered no access_token".into()))?
            .to_string();
        *current = Some(token.clone());
        Ok(token)
    }

    async fn send_once(
        &self,
        method: &reqwest::Method,
        path: &str,
        body: Option<&Value>,
        token: &str,
    ) -> Result<Value, OvirtError> {
        self.requests_made.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/ovirt-engine/api{path}", self.base_url);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("Version", "4")
            .header("Accept", "application/json")
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| OvirtError::Transport {
                url: url.clone(),
                detail: error.to_string(),
            })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|error| OvirtError::Transport {
                url: url.clone(),
                detail: error.to_string(),
            })?;
        let answer: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|error| {
                OvirtError::Protocol(format!("{method} {path}: HTTP {status}, not JSON: {error}"))
            })?
        };
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        // A refused action carries its fault inside the action; other errors carry it bare.
        let fault = answer.get("fault").unwrap_or(&answer);
        let text_of = |name: &str| {
            fault
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Err(OvirtError::Api {
            status,
            reason: text_of("reason"),
            detail: text_of("detail"),
        })
    }
}
