//! A XAPI JSON-RPC client with one session: `session.login_with_password` on first use, a new
//! login on `SESSION_INVALID` (the session expired or the master restarted), and a move to the
//! master on `HOST_IS_SLAVE [master address]` (both codes from xen-api
//! `ocaml/idl/datamodel_errors.ml`). The JSON-RPC envelope is xen-api's
//! (`ocaml/sdk-gen/component-test/spec/xapi-24/*.json`): `{"jsonrpc": "2.0", "method", "params",
//! "id"}`, answered with `result`, or `error: {code, message: CODE, data: params}`.
//!
//! The encoding is [`Transport`]'s: JSON-RPC, XML-RPC at `/` (`crate::xmlrpc`), or `Auto`, which
//! asks `/jsonrpc` first and, when the server answers it with 404 or a body that is not JSON
//! (a server without JSON-RPC), says so once in the log and speaks XML-RPC from then on.
//!
//! This module must not know Drover's driver contract: it only calls methods.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::{xmlrpc, XapiError};

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

/// Which of XAPI's two encodings to speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// JSON-RPC, falling back to XML-RPC on a server without it.
    #[default]
    Auto,
    JsonRpc,
    XmlRpc,
}

/// What [`XapiClient`] speaks now, in an atomic: undecided (`Auto` before its first answer),
/// JSON-RPC or XML-RPC.
const WIRE_UNDECIDED: u8 = 0;
const WIRE_JSON_RPC: u8 = 1;
const WIRE_XML_RPC: u8 = 2;

/// One logged-in connection; calls may run concurrently (the session is shared).
pub struct XapiClient {
    http: reqwest::Client,
    connection: XapiConnection,
    /// `WIRE_*`; fixed from the start unless the transport is `Auto`.
    wire: AtomicU8,
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

/// Why a JSON-RPC call got no JSON-RPC answer.
enum JsonRpcFailure {
    /// 404 or a body that is not JSON: this server has no JSON-RPC.
    NotServed(String),
    Other(XapiError),
}

impl XapiClient {
    /// A client speaking [`Transport::Auto`].
    pub fn new(connection: XapiConnection) -> Result<XapiClient, XapiError> {
        XapiClient::with_transport(connection, Transport::Auto)
    }

    pub fn with_transport(
        connection: XapiConnection,
        transport: Transport,
    ) -> Result<XapiClient, XapiError> {
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
            wire: AtomicU8::new(match transport {
                Transport::Auto => WIRE_UNDECIDED,
                Transport::JsonRpc => WIRE_JSON_RPC,
                Transport::XmlRpc => WIRE_XML_RPC,
            }),
            next_id: AtomicU64::new(1),
            calls_made: AtomicU64::new(0),
        })
    }

    /// The encoding in use: `None` while `Auto` has had no answer yet.
    pub fn wire(&self) -> Option<Transport> {
        match self.wire.load(Ordering::Relaxed) {
            WIRE_JSON_RPC => Some(Transport::JsonRpc),
            WIRE_XML_RPC => Some(Transport::XmlRpc),
            _ => None,
        }
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
        match self.wire.load(Ordering::Relaxed) {
            WIRE_XML_RPC => self.xml_rpc_call(base_url, method, &params).await,
            WIRE_JSON_RPC => match self.json_rpc_call(base_url, method, params).await {
                Ok(answer) => Ok(answer),
                Err(JsonRpcFailure::NotServed(detail)) => Err(XapiError::Transport {
                    url: format!("{base_url}/jsonrpc"),
                    detail: format!(
                        "no JSON-RPC here ({detail}); `transport: xmlrpc` or `auto` speaks XML-RPC"
                    ),
                }),
                Err(JsonRpcFailure::Other(error)) => Err(error),
            },
            _ => match self.json_rpc_call(base_url, method, params.clone()).await {
                Ok(answer) => {
                    self.decide(WIRE_JSON_RPC);
                    Ok(answer)
                }
                Err(JsonRpcFailure::NotServed(detail)) => {
                    if self.decide(WIRE_XML_RPC) {
                        tracing::warn!(
                            url = %base_url,
                            %detail,
                            "xapi: the server has no JSON-RPC at /jsonrpc; speaking XML-RPC from now on"
                        );
                    }
                    self.xml_rpc_call(base_url, method, &params).await
                }
                // An API error is an answer in JSON-RPC: the server speaks it.
                Err(JsonRpcFailure::Other(error @ XapiError::Api { .. })) => {
                    self.decide(WIRE_JSON_RPC);
                    Err(error)
                }
                Err(JsonRpcFailure::Other(error)) => Err(error),
            },
        }
    }

    /// Settles `Auto`'s choice; true for the call that settled it (the one that logs).
    fn decide(&self, wire: u8) -> bool {
        self.wire
            .compare_exchange(WIRE_UNDECIDED, wire, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    async fn json_rpc_call(
        &self,
        base_url: &str,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, JsonRpcFailure> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let url = format!("{base_url}/jsonrpc");
        let request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
        let transport = |detail: String| {
            JsonRpcFailure::Other(XapiError::Transport {
                url: url.clone(),
                detail,
            })
        };
        let response = self
            .http
            .post(&url)
            .json(&request)
            .send()
            .await
            .map_err(|error| transport(error.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(JsonRpcFailure::NotServed(format!("HTTP {status}")));
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| transport(format!("HTTP {status}: {error}")))?;
        let answer: Value = serde_json::from_slice(&body).map_err(|error| {
            JsonRpcFailure::NotServed(format!("HTTP {status}, not JSON: {error}"))
        })?;
        if let Some(error) = answer.get("error") {
            return Err(JsonRpcFailure::Other(api_error(error)));
        }
        answer.get("result").cloned().ok_or_else(|| {
            JsonRpcFailure::Other(XapiError::Protocol(format!(
                "{method}: neither result nor error"
            )))
        })
    }

    async fn xml_rpc_call(
        &self,
        base_url: &str,
        method: &str,
        params: &[Value],
    ) -> Result<Value, XapiError> {
        // xapi serves XML-RPC at `/` (helpers.ml `choose_rpc`).
        let url = format!("{base_url}/");
        let transport = |detail: String| XapiError::Transport {
            url: url.clone(),
            detail,
        };
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "text/xml")
            .body(xmlrpc::encode_call(method, params))
            .send()
            .await
            .map_err(|error| transport(error.to_string()))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|error| transport(format!("HTTP {status}: {error}")))?;
        if !status.is_success() {
            return Err(transport(format!("HTTP {status}")));
        }
        xmlrpc::decode_answer(&body)
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
