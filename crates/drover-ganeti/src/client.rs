//! A RAPI v2 client: one reqwest client with rustls, the cluster's CA (`ca_file`) or, only when
//! asked, no certificate check at all (`insecure`, logged as a warning when the client is built);
//! HTTP basic authentication on every request (RAPI's `--require-authentication`, users from
//! `/var/lib/ganeti/rapi/users`, doc/rapi.rst "Users and passwords").
//!
//! Requests and answers are JSON (doc/rapi.rst "Protocol": bodies are JSON, a resource that
//! starts a job answers the job id). An HTTP error's body is `{"code", "message", "explain"}`.
//!
//! This module must not know Drover's driver contract, nodes or instances: it only sends
//! requests and counts them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::GanetiError;

/// How to reach and authenticate to a cluster's RAPI.
#[derive(Clone, Debug)]
pub struct RapiConnection {
    /// `https://cluster:5080` (the master's RAPI; the cluster address follows the master).
    pub url: String,
    pub username: String,
    pub password: String,
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
    pub request_timeout: Duration,
}

/// One RAPI endpoint; requests may run concurrently.
pub struct RapiClient {
    http: reqwest::Client,
    base_url: String,
    username: String,
    password: String,
    /// Every request sent, for the "RAPI calls per migrated instance" figure.
    requests_sent: AtomicU64,
}

impl RapiClient {
    pub fn new(connection: RapiConnection) -> Result<RapiClient, GanetiError> {
        let mut builder = reqwest::Client::builder().timeout(connection.request_timeout);
        if let Some(path) = &connection.ca_file {
            let pem = std::fs::read(path).map_err(|error| {
                GanetiError::Config(format!("cannot read ca_file {}: {error}", path.display()))
            })?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|error| {
                GanetiError::Config(format!("ca_file {}: {error}", path.display()))
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        if connection.insecure {
            tracing::warn!(
                url = %connection.url,
                "ganeti driver: `insecure: true`: the RAPI certificate is NOT checked; anyone on the path can impersonate the cluster and read its password"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|error| GanetiError::Config(format!("HTTP client: {error}")))?;
        Ok(RapiClient {
            http,
            base_url: connection.url.trim_end_matches('/').to_string(),
            username: connection.username,
            password: connection.password,
            requests_sent: AtomicU64::new(0),
        })
    }

    /// Requests sent so far.
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent.load(Ordering::Relaxed)
    }

    pub async fn get(&self, path: &str) -> Result<Value, GanetiError> {
        self.request(Method::GET, path, None).await
    }

    /// Sends a request and returns the JSON answer.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, GanetiError> {
        self.requests_sent.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}{path}", self.base_url);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .basic_auth(&self.username, Some(&self.password));
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |detail: String| GanetiError::Transport {
            url: self.base_url.clone(),
            detail,
        };
        let response = request
            .send()
            .await
            .map_err(|error| transport(error_chain(&error)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| transport(error_chain(&error)))?;
        if !status.is_success() {
            // `{"code": 404, "message": "Not Found", "explain": "…"}` (lib/http/__init__.py).
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|answer| {
                    let message = answer.get("message")?.as_str()?.to_string();
                    let explain = answer.get("explain").and_then(Value::as_str).unwrap_or("");
                    Some(match explain {
                        "" => message,
                        explain => format!("{message} ({explain})"),
                    })
                })
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(GanetiError::Http {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_str(&text).map_err(|error| {
            GanetiError::Protocol(format!("{method} {path}: not JSON ({error}): {text:.200}"))
        })
    }

    /// Sends a request that starts a job and returns the job id (RAPI answers it as a number,
    /// older servers as a string).
    pub async fn submit(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<u64, GanetiError> {
        let answer = self.request(method.clone(), path, body).await?;
        job_id_of(&answer).ok_or_else(|| {
            GanetiError::Protocol(format!(
                "{method} {path}: answered {answer} instead of a job id"
            ))
        })
    }
}

fn job_id_of(answer: &Value) -> Option<u64> {
    match answer {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// reqwest's error with its causes (the TLS reason is only in the source chain).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A node or instance name in a URL path: Ganeti names are DNS names, so only the characters
/// outside `[A-Za-z0-9.-_]` are escaped.
pub fn path_segment(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len());
    for byte in name.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                escaped.push(byte as char)
            }
            other => escaped.push_str(&format!("%{other:02X}")),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_numbers_or_numeric_strings() {
        assert_eq!(job_id_of(&serde_json::json!(12)), Some(12));
        assert_eq!(job_id_of(&serde_json::json!("13")), Some(13));
        assert_eq!(job_id_of(&serde_json::json!({"id": 1})), None);
    }

    #[test]
    fn names_are_escaped_only_outside_dns_characters() {
        assert_eq!(path_segment("gnt1.drover.test"), "gnt1.drover.test");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }
}
