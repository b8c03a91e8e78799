//! Refuses cross-site and rebinding requests before any handler runs: a `Host` this server does
//! not answer to (DNS rebinding: a foreign name resolving to 127.0.0.1) gets 421, an `Origin`
//! other than the request's own allowed host gets 403, a body that is not `application/json`
//! gets 415 (a web page can send `text/plain` or a form without a CORS preflight), and a body
//! over the limit gets 413 — all as RFC 9457 problems.
//!
//! Hosts answered to: the bound address, `localhost`, `127.0.0.1` and `[::1]` with the bound
//! port, and the config's `allowed_hosts` (a name alone allows any port). With tokens and no
//! `allowed_hosts`, any `Host` is answered (a rebinding page has no token), but a foreign
//! `Origin` is still refused. This module knows HTTP headers only; it must not know the engine.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::ApiError;
use super::AppState;

/// The largest request body accepted (bodies are a few small fields).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The `Host` values this server answers to.
#[derive(Clone, Debug)]
pub struct AllowedHosts {
    /// `host:port` forms, lower case (the bound address and the loopback names).
    exact: Vec<String>,
    /// Configured names: a name alone matches with any port, `name:port` only that port.
    configured: Vec<String>,
    /// Tokens guard every call and no names were configured: any `Host` is answered.
    any_host: bool,
}

impl AllowedHosts {
    pub fn new(bound: SocketAddr, configured: &[String], tokens_configured: bool) -> Self {
        let port = bound.port();
        let mut exact = vec![
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
            bound.to_string().to_ascii_lowercase(),
        ];
        exact.dedup();
        AllowedHosts {
            exact,
            configured: configured.iter().map(|h| h.to_ascii_lowercase()).collect(),
            any_host: tokens_configured && configured.is_empty(),
        }
    }

    /// Whether `authority` (`name[:port]`, as in `Host` or an origin) is served here.
    pub fn allows(&self, authority: &str) -> bool {
        let authority = authority.trim().to_ascii_lowercase();
        if self.any_host || self.exact.contains(&authority) {
            return true;
        }
        let name = name_of(&authority);
        self.configured
            .iter()
            .any(|entry| *entry == authority || *entry == name)
    }
}

/// The name part of `name[:port]` (`[::1]:8080` → `[::1]`).
fn name_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// The authority of an `Origin` value (`http://localhost:8080` → `localhost:8080`).
fn origin_authority(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
        return None;
    }
    Some(rest)
}

/// The middleware: every route, before authentication.
pub async fn guard_requests(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    // HTTP/2 carries the host as the URI's authority (`:authority`), HTTP/1.1 as `Host`.
    let authority = request.uri().authority().map(|a| a.as_str().to_string());
    match check(
        &state.allowed_hosts,
        request.method(),
        request.headers(),
        authority.as_deref(),
    ) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

fn check(
    allowed: &AllowedHosts,
    method: &Method,
    headers: &HeaderMap,
    authority: Option<&str>,
) -> Result<(), ApiError> {
    let host = header_text(headers, header::HOST)
        .or(authority)
        .unwrap_or_default();
    if !allowed.allows(host) {
        return Err(ApiError::MisdirectedHost(format!(
            "this server does not answer to Host {host:?}; add it to `allowed_hosts` in the serve config if it is yours"
        )));
    }
    if let Some(origin) = header_text(headers, header::ORIGIN) {
        let same_site = origin_authority(origin)
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host.trim()));
        if !same_site {
            return Err(ApiError::ForeignOrigin(format!(
                "requests from web pages of {origin:?} are refused: only the dashboard served at this address may call the API"
            )));
        }
    }
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        check_body_headers(headers)?;
    }
    Ok(())
}

/// A body must be JSON and small; no body needs no content type.
fn check_body_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    let length = match header_text(headers, header::CONTENT_LENGTH) {
        Some(text) => Some(
            text.trim()
                .parse::<u64>()
                .map_err(|_| ApiError::BadRequest {
                    field: "Content-Length".into(),
                    detail: format!("{text:?} is not a number"),
                })?,
        ),
        None => None,
    };
    if length.is_some_and(|bytes| bytes > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let has_body =
        length.is_some_and(|bytes| bytes > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    match header_text(headers, header::CONTENT_TYPE) {
        Some(content_type) if is_json(content_type) => Ok(()),
        Some(content_type) => Err(ApiError::UnsupportedMediaType(format!(
            "request bodies must be `Content-Type: application/json`, not {content_type:?}"
        ))),
        None if has_body => Err(ApiError::UnsupportedMediaType(
            "a request body needs `Content-Type: application/json`".into(),
        )),
        None => Ok(()),
    }
}

pub fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "request bodies may be at most {MAX_BODY_BYTES} bytes"
    ))
}

/// `application/json`, with parameters (`; charset=utf-8`) allowed.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    #[test]
    fn loopback_names_with_the_bound_port_are_served() {
        let allowed = AllowedHosts::new(bound(), &[], false);
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "LOCALHOST:8080",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in ["evil.example:8080", "localhost:9090", "localhost", ""] {
            assert!(!allowed.allows(host), "{host}");
        }
    }

    #[test]
    fn configured_names_allow_any_port_unless_one_is_given() {
        let configured = vec!["drover.example".to_string(), "ops.example:443".to_string()];
        let allowed = AllowedHosts::new(bound(), &configured, false);
        assert!(allowed.allows("drover.example"));
        assert!(allowed.allows("drover.example:8443"));
        assert!(allowed.allows("ops.example:443"));
        assert!(!allowed.allows("ops.example:444"));
        assert!(!allowed.allows("example"));
        let ipv6 = AllowedHosts::new(bound(), &["[fd00::1]".to_string()], false);
        assert!(ipv6.allows("[fd00::1]:8080"));
        assert!(!ipv6.allows("[fd00::2]:8080"));
    }

    #[test]
    fn an_http2_request_is_checked_by_its_authority() {
        let allowed = AllowedHosts::new(bound(), &[], false);
        let headers = HeaderMap::new();
        assert!(check(&allowed, &Method::GET, &headers, Some("localhost:8080")).is_ok());
        assert!(check(&allowed, &Method::GET, &headers, Some("evil.example:8080")).is_err());
        assert!(check(&allowed, &Method::GET, &headers, None).is_err());
    }

    #[test]
    fn origins_parse_to_their_authority() {
        assert_eq!(
            origin_authority("http://localhost:8080"),
            Some("localhost:8080")
        );
        assert_eq!(origin_authority("null"), None);
        assert_eq!(origin_authority("file:///x"), None);
        assert!(is_json("application/json; charset=utf-8"));
        assert!(!is_json("text/plain"));
    }
}
