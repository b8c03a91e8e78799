//! A XAPI JSON-RPC client with one session: `session.login_with_password` on first use, a new
//! login on `SESSION_INVALID` (the session expired or the master restarted), and a move to the
//! master on `HOST_IS_SLAVE [master address]` (both codes from xen-api
//! `ocaml/idl/datamodel_errors.ml`). The JSON-RPC envelope is xen-api's
//! (`ocaml/sdk-gen/component-test/spec/xapi-24/*.json`): `{"jsonrpc": "2.0", "method", "params",
//! "id"}`, answered with `result`, or `error: {code, message: CODE, data: params}`.
//!
//! This module must not know Drover's driver contract: it only calls methods.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::XapiError;

/// How to reach and log into a pool.
#[derive(Clone, Debug)]
pub struct XapiConnection {
    /// `https://master` (or `http://` for a loopback emulator).
    pub url: String,
    pub username: String,
    pub password: String,
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
    pub request_timeout: Duration,
}

/// One logged-in connection; calls may run concurrently (the session is shared).
pub struct XapiClient {
    http: reqwest::Client,
    connection: XapiConnection,
    state: Mutex<ClientState>,
    next_id: AtomicU64,
    /// Every call made, for the "XAPI calls per migrated VM" figure.
    calls_made: AtomicU64,
}

struct ClientState {
    base_url: String,
    session: Option<String>,
}

/// Redirects followed in one call at most (a pool has one master; two covers a failover).
const MAX_REDIRECTS: usize = 2;

impl XapiClient {
    pub fn new(connection: XapiConnection) -> Result<XapiClient, XapiError> {
        let mut builder = reqwest::Client::builder().timeout(connection.request_timeout);
        if let Some(path) = &connection.ca_file {
            let pem = std::fs::read(path).map_err(|error| {
                XapiError::Config(format!("cannot read ca_file {}: {error}", path.display()))
            })?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|error| {
                XapiError::Config(format!("ca_file {}: {error}", path.display()))
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        if connection.insecure {
            tracing::warn!(
                url = %connection.url,
                "xapi driver: `insecure: true`: the server's TLS certificate is NOT checked; anyone on the path can impersonate the pool"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|error| XapiError::Config(format!("HTTP client: {error}")))?;
        Ok(XapiClient {
            http,
            state: Mutex::new(ClientState {
                base_url: connection.url.trim_end_matches('/').to_string(),
                session: None,
            }),
            connection,
            next_id: AtomicU64::new(1),
            calls_made: AtomicU64::new(0),
        })
    }

    /// Calls made so far (logins included).
    pub fn calls_made(&self) -> u64 {
        self.calls_made.load(Ordering::Relaxed)
    }

    /// Calls `method` with the session prepended to `params`.
    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, XapiError> {
        let mut relogged = false;
        let mut redirects = 0;
        loop {
            let (base_url, session) = self.session().await?;
            let mut full = Vec::with_capacity(params.len() + 1);
            full.push(Value::String(session.clone()));
            full.extend(params.iter().cloned());
            match self.raw_call(&base_url, method, full).await {
                Err(XapiError::Api { code, .. }) if code == "SESSION_INVALID" && !relogged => {
                    relogged = true;
                    self.forget_session(&session).await;
                }
                Err(XapiError::Api {
                    code,
                    params: error_params,
                }) if code == "HOST_IS_SLAVE" && redirects < MAX_REDIRECTS => {
                    redirects += 1;
                    self.follow_master(&base_url, &error_params).await?;
                }
                answer => return answer,
            }
        }
    }

    async fn forget_session(&self, stale: &str) {
        let mut state = self.state.lock().await;
        if state.session.as_deref() == Some(stale) {
            state.session = None;
        }
    }

    /// `HOST_IS_SLAVE`'s parameter is the master's address: same scheme and port, new host.
    async fn follow_master(&self, base_url: &str, params: &[String]) -> Result<(), XapiError> {
        let master = params.first().ok_or_else(|| {
            XapiError::Protocol("HOST_IS_SLAVE without the master's address".into())
        })?;
        let (scheme, _) = base_url.split_once("://").unwrap_or(("https", ""));
        let new_url = format!("{scheme}://{master}");
        tracing::info!(from = %base_url, to = %new_url, "xapi: following HOST_IS_SLAVE to the pool master");
        let mut state = self.state.lock().await;
        state.base_url = new_url;
        state.session = None;
        Ok(())
    }

    /// The current master URL and a session, logging in if there is none.
    async fn session(&self) -> Result<(String, String), XapiError> {
        let mut state = self.state.lock().await;
        if let Some(session) = &state.session {
            return Ok((state.base_url.clone(), session.clone()));
        }
        let mut redirects = 0;
        loop {
            let params = vec![
                json!(self.connection.username),
                json!(self.connection.password),
                json!("2.21"),
                json!("drover"),
            ];
            match self
                .raw_call(&state.base_url, "session.login_with_password", params)
                .await
            {
                Ok(Value::String(session)) => {
                    state.session = Some(session.clone());
                    return Ok((state.base_url.clone(), session));
                }
                Ok(other) => {
                    return Err(XapiError::Protocol(format!(
                        "login answered {other} instead of a session ref"
                    )))
                }
                Err(XapiError::Api { code, params })
                    if code == "HOST_IS_SLAVE" && redirects < MAX_REDIRECTS =>
                {
                    redirects += 1;
                    let master = params.first().cloned().unwrap_or_default();
                    let (scheme, _) = state.base_url.split_once("://").unwrap_or(("https", ""));
                    state.base_url = format!("{scheme}://{master}");
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn raw_call(
        &self,
        base_url: &str,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, XapiError> {
        self.calls_made.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let url = format!("{base_url}/jsonrpc");
        let request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
        let transport = |detail: String| XapiError::Transport {
            url: url.clone(),
            detail,
        };
        let response = self
            .http
            .post(&url)
            .json(&request)
            .send()
            .await
            .map_err(|error| transport(error.to_string()))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|error| transport(format!("HTTP {status}: {error}")))?;
        if let Some(error) = answer.get("error") {
            return Err(api_error(error));
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| XapiError::Protocol(format!("{method}: neither result nor error")))
    }
}

/// `{code, message: CODE, data}`; data is the parameter list (a single string in some
/// servers' answers, as in the xen-api component-test spec).
fn api_error(error: &Value) -> XapiError {
    let code = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("UNKNOWN_ERROR")
        .to_string();
    let params = match error.get("data") {
        Some(Value::Array(items)) => items.iter().map(text_of).collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![text_of(other)],
    };
    XapiError::Api { code, params }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
