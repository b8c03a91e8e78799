//! A CloudStack API client: signed `GET` requests to the endpoint, `response=json`, lists paged
//! with `page`/`pagesize`, asynchronous jobs followed with `queryAsyncJobResult`.
//!
//! The signature is the API's (apache/cloudstack `ApiServer.verifyRequest`, exoscale/cs
//! `CloudStack._sign`): every parameter, sorted by name, each value encoded as
//! `java.net.URLEncoder` does with `+` as `%20`, joined with `&`, lower-cased, HMAC-SHA1 with
//! the secret key, Base64, sent as `signature`; with `signatureVersion=3` and an `expires` ten
//! minutes ahead (`yyyy-MM-dd'T'HH:mm:ssZ`), as `cs` sends it, so a captured request goes stale.
//! An answer is `{"<command>response": {…}}` with HTTP 200, or the same envelope around
//! `errorcode`/`cserrorcode`/`errortext` with the error code as the HTTP status.
//!
//! This module must not know Drover's driver contract: it only sends requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha1::Sha1;

use crate::CloudstackError;

/// The page size asked for when listing (CloudStack's `default.page.size` is 500).
pub const PAGE_SIZE: usize = 500;
/// Pages read at most for one list (a bound against a server that never ends a list).
pub const MAX_PAGES: usize = 200;
/// How far ahead a request's `expires` is (as `cs`'s default expiration).
const EXPIRATION: Duration = Duration::from_secs(600);

/// How to reach the API.
#[derive(Clone, Debug)]
pub struct CloudstackConnection {
    /// `https://cloud.example/client/api`.
    pub endpoint: String,
    pub api_key: String,
    pub secret_key: String,
    pub request_timeout: Duration,
}

/// One client; requests may run concurrently.
pub struct CloudstackClient {
    http: reqwest::Client,
    connection: CloudstackConnection,
    /// Every request made, for the "API calls per migrated VM" figure.
    requests_made: AtomicU64,
}

/// `java.net.URLEncoder.encode(value, "UTF-8").replaceAll("\\+", "%20")`.
fn java_url_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// The `signature` of `parameters` (which must not contain one).
pub fn signature_of(parameters: &[(String, String)], secret_key: &str) -> String {
    let mut sorted: Vec<&(String, String)> = parameters.iter().collect();
    sorted.sort_by(|left, right| left.0.cmp(&right.0));
    let text = sorted
        .iter()
        .map(|(name, value)| format!("{name}={}", java_url_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
        .to_lowercase();
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret_key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(text.as_bytes());
    data_encoding::BASE64.encode(&mac.finalize().into_bytes())
}

fn text_of<'a>(value: &'a Value, name: &str) -> &'a str {
    value.get(name).and_then(Value::as_str).unwrap_or("")
}

fn integer_of(value: &Value, name: &str) -> i64 {
    match value.get(name) {
        Some(Value::Number(number)) => number.as_i64().unwrap_or(0),
        Some(Value::String(text)) => text.parse().unwrap_or(0),
        _ => 0,
    }
}

impl CloudstackClient {
    pub fn new(connection: CloudstackConnection) -> Result<CloudstackClient, CloudstackError> {
        let http = reqwest::Client::builder()
            .timeout(connection.request_timeout)
            .build()
            .map_err(|error| CloudstackError::Protocol(format!("HTTP client: {error}")))?;
        Ok(CloudstackClient {
            http,
            connection,
            requests_made: AtomicU64::new(0),
        })
    }

    /// Requests made so far.
    pub fn requests_made(&self) -> u64 {
        self.requests_made.load(Ordering::Relaxed)
    }

    fn signed(&self, command: &str, arguments: &[(&str, String)]) -> Vec<(String, String)> {
        let expires_ms = drover_driver::wall_now_ms() + EXPIRATION.as_millis() as u64;
        let expires = jiff::Timestamp::from_millisecond(expires_ms as i64)
            .map(|timestamp| timestamp.strftime("%Y-%m-%dT%H:%M:%S%z").to_string())
            .unwrap_or_default();
        let mut parameters: Vec<(String, String)> = arguments
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        parameters.push(("command".into(), command.into()));
        parameters.push(("apiKey".into(), self.connection.api_key.clone()));
        parameters.push(("response".into(), "json".into()));
        parameters.push(("signatureVersion".into(), "3".into()));
        parameters.push(("expires".into(), expires));
        let signature = signature_of(&parameters, &self.connection.secret_key);
        parameters.push(("signature".into(), signature));
        parameters
    }

    /// One command; its response object (inside `<command>response`).
    pub async fn call(
        &self,
        command: &str,
        arguments: &[(&str, String)],
    ) -> Result<Value, CloudstackError> {
        self.requests_made.fetch_add(1, Ordering::Relaxed);
        let parameters = self.signed(command, arguments);
        let transport = |error: reqwest::Error| CloudstackError::Transport {
            endpoint: self.connection.endpoint.clone(),
            detail: error.to_string(),
        };
        let response = self
            .http
            .get(&self.connection.endpoint)
            .query(&parameters)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(transport)?;
        let document: Value = serde_json::from_str(&body).map_err(|_| {
            CloudstackError::Protocol(format!(
                "{command}: HTTP {status} without the API's JSON: {}",
                body.chars().take(200).collect::<String>()
            ))
        })?;
        let inner = document
            .as_object()
            .and_then(|object| object.values().next())
            .cloned()
            .unwrap_or(Value::Null);
        if status != 200 || inner.get("errorcode").is_some() {
            let error_code = integer_of(&inner, "errorcode");
            return Err(CloudstackError::Api {
                command: command.to_string(),
                error_code: u16::try_from(error_code).unwrap_or(status),
                cs_error_code: integer_of(&inner, "cserrorcode"),
                text: text_of(&inner, "errortext").to_string(),
            });
        }
        Ok(inner)
    }

    /// Every object of a list command (`key` is the list's name, `host` for `listHosts`), page
    /// by page until `count` objects are read.
    pub async fn list(
        &self,
        command: &str,
        arguments: &[(&str, String)],
        key: &str,
    ) -> Result<Vec<Value>, CloudstackError> {
        let mut objects = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut paged: Vec<(&str, String)> = arguments.to_vec();
            paged.push(("page", page.to_string()));
            paged.push(("pagesize", PAGE_SIZE.to_string()));
            let answer = self.call(command, &paged).await?;
            let items = answer
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let count = integer_of(&answer, "count").max(0) as usize;
            let last = items.len() < PAGE_SIZE;
            objects.extend(items);
            if last || objects.len() >= count {
                return Ok(objects);
            }
        }
        Err(CloudstackError::Protocol(format!(
            "{command}: more than {MAX_PAGES} pages"
        )))
    }

    /// An asynchronous command, followed with `queryAsyncJobResult` every `poll` until it ends or
    /// `timeout` passes; its `jobresult`.
    pub async fn run_job(
        &self,
        command: &str,
        arguments: &[(&str, String)],
        timeout: Duration,
        poll: Duration,
    ) -> Result<Value, CloudstackError> {
        let started = self.call(command, arguments).await?;
        let job_id = text_of(&started, "jobid").to_string();
        if job_id.is_empty() {
            return Err(CloudstackError::Protocol(format!(
                "{command}: no jobid in {started}"
            )));
        }
        self.wait_job(command, &job_id, timeout, poll).await
    }

    /// Follows a job until it ends or `timeout` passes.
    pub async fn wait_job(
        &self,
        command: &str,
        job_id: &str,
        timeout: Duration,
        poll: Duration,
    ) -> Result<Value, CloudstackError> {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self
                .call("queryAsyncJobResult", &[("jobid", job_id.to_string())])
                .await?;
            match integer_of(&job, "jobstatus") {
                0 => {}
                1 => return Ok(job.get("jobresult").cloned().unwrap_or(Value::Null)),
                _ => {
                    let result = job.get("jobresult").cloned().unwrap_or(Value::Null);
                    let code = integer_of(&job, "jobresultcode");
                    return Err(CloudstackError::JobFailed {
                        command: command.to_string(),
                        job_id: job_id.to_string(),
                        error_code: u16::try_from(code)
                            .ok()
                            .filter(|code| *code != 0)
                            .unwrap_or(530),
                        cs_error_code: integer_of(&result, "cserrorcode"),
                        text: text_of(&result, "errortext").to_string(),
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(CloudstackError::JobTimeout {
                    command: command.to_string(),
                    job_id: job_id.to_string(),
                    waited_secs: timeout.as_secs(),
                });
            }
            tokio::time::sleep(poll).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_as_java_encodes_them() {
        assert_eq!(java_url_encode("a b~c*-_."), "a%20b%7Ec*-_.");
        assert_eq!(java_url_encode("é"), "%C3%A9");
    }

    #[test]
    fn the_signature_covers_the_sorted_lower_cased_query() {
        let parameters = vec![
            ("response".to_string(), "json".to_string()),
            ("command".to_string(), "listZones".to_string()),
            ("apiKey".to_string(), "Key".to_string()),
        ];
        let reordered = vec![
            parameters[2].clone(),
            parameters[0].clone(),
            parameters[1].clone(),
        ];
        let signature = signature_of(&parameters, "secret");
        assert_eq!(signature, signature_of(&reordered, "secret"));
        assert_ne!(signature, signature_of(&parameters, "other"));
        assert_eq!(signature.len(), 28, "Base64 of 20 bytes");
    }
}
