//! Who is calling: bearer tokens, compared by their SHA-256 in constant time against the
//! configured hashes (the secrets themselves are never stored). Roles: `viewer` may read
//! (GET), `operator` may do everything. Without configured tokens (allowed only on a loopback
//! address) every caller is an anonymous operator.
//!
//! Browsers' EventSource cannot send headers, so the event stream also accepts
//! `?access_token=`; no other endpoint does. This module must not know the engine.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::config::{Role, TokenEntry};
use super::problem::ApiError;
use super::AppState;

/// The authenticated caller, put in the request's extensions for the handlers.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    fn anonymous() -> Self {
        Caller {
            name: "anonymous".into(),
            role: Role::Operator,
        }
    }
}

/// The token entry whose hash matches, checking every entry so the time taken does not say
/// which one (or whether any) matched.
pub fn find_token<'a>(tokens: &'a [TokenEntry], presented: &str) -> Option<&'a TokenEntry> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(presented.as_bytes());
    let mut found = None;
    for entry in tokens {
        if bool::from(entry.sha256.ct_eq(digest.as_slice())) {
            found = Some(entry);
        }
    }
    found
}

fn bearer_token(request: &Request) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// `?access_token=` on the event stream only.
fn query_token(request: &Request) -> Option<String> {
    if !request.uri().path().ends_with("/events") {
        return None;
    }
    request.uri().query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "access_token").then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten();
        match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(if bytes[index] == b'+' {
                    b' '
                } else {
                    bytes[index]
                });
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decides who calls, refuses unknown tokens (401) and viewers on mutating calls (403).
pub fn authenticate(state: &AppState, request: &Request) -> Result<Caller, ApiError> {
    let tokens = &state.settings.tokens;
    let caller = if tokens.is_empty() {
        Caller::anonymous()
    } else {
        let presented = bearer_token(request)
            .or_else(|| query_token(request))
            .ok_or_else(|| ApiError::Unauthorized("send `Authorization: Bearer <token>`".into()))?;
        let entry = find_token(tokens, &presented)
            .ok_or_else(|| ApiError::Unauthorized("the token matches none configured".into()))?;
        Caller {
            name: entry.name.clone(),
            role: entry.role,
        }
    };
    if !changes_nothing(request) && caller.role != Role::Operator {
        return Err(ApiError::Forbidden(format!(
            "{} is a {}; {} needs an operator token",
            caller.name,
            caller.role.name(),
            request.method()
        )));
    }
    Ok(caller)
}

/// Reads, and `POST /clusters/{c}/plans`, which computes a plan for review and changes nothing:
/// a viewer may do these.
fn changes_nothing(request: &Request) -> bool {
    let method = request.method();
    let path = request.uri().path();
    matches!(*method, Method::GET | Method::HEAD)
        || (*method == Method::POST
            && path.starts_with("/api/v1/clusters/")
            && path.ends_with("/plans"))
}

/// Middleware for the protected routes.
pub async fn require_caller(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    match authenticate(&state, &request) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, token: &str) -> TokenEntry {
        use sha2::Digest;
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&sha2::Sha256::digest(token.as_bytes()));
        TokenEntry {
            name: name.into(),
            role: Role::Viewer,
            sha256,
        }
    }

    #[test]
    fn only_the_matching_token_is_found() {
        let tokens = [entry("alice", "a-secret"), entry("bob", "b-secret")];
        assert_eq!(
            find_token(&tokens, "b-secret").map(|t| t.name.as_str()),
            Some("bob")
        );
        assert!(find_token(&tokens, "c-secret").is_none());
    }

    #[test]
    fn query_tokens_are_percent_decoded() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("plain"), "plain");
    }
}
