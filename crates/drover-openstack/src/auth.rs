//! Keystone v3 authentication: the `POST /v3/auth/tokens` request body for a password or an
//! application credential (Keystone api-ref `authenticate-v3.inc`: "Password authentication
//! with scoped authorization", "Authenticating with an Application Credential"), the token from
//! the `X-Subject-Token` answer header, its lifetime from the body's `issued_at`/`expires_at`,
//! and the endpoints of the body's `catalog` (`type`, `endpoints[].interface`, `region_id`,
//! `url`).
//!
//! Pure functions and plain data: this module knows Keystone's JSON, and nothing of HTTP
//! clients, Nova or Drover's model.

use std::time::Duration;

use serde_json::{json, Value};

use crate::OpenstackError;

/// Who Drover is to Keystone.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user's password, scoped to a project (an admin project: Nova's default policy gives
    /// `os-services`, `os-migrateLive`, `os-migrations` and `os-hypervisors` to admins only).
    Password {
        username: String,
        user_domain: String,
        password: String,
        project: String,
        project_domain: String,
    },
    /// An application credential (its project and roles are fixed when it is created; a scope
    /// in the request is refused).
    ApplicationCredential { id: String, secret: String },
}

impl std::fmt::Debug for Credentials {
    // Never print a password or a secret, even in a debug log.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Password {
                username, project, ..
            } => write!(
                formatter,
                "Password {{ username: {username:?}, project: {project:?}, .. }}"
            ),
            Credentials::ApplicationCredential { id, .. } => {
                write!(formatter, "ApplicationCredential {{ id: {id:?}, .. }}")
            }
        }
    }
}

/// Where Keystone is and who asks.
#[derive(Clone, Debug)]
pub struct KeystoneAuth {
    /// `https://keystone.example:5000/v3` (with or without the `/v3`).
    pub auth_url: String,
    pub credentials: Credentials,
    /// The catalog's region (`region_id`); `None` takes the first endpoint of each type.
    pub region: Option<String>,
    /// The catalog interface Drover uses (`public`, `internal` or `admin`).
    pub interface: String,
}

impl KeystoneAuth {
    /// `POST` target: the auth URL with exactly one `/v3`.
    pub fn tokens_url(&self) -> String {
        let base = self.auth_url.trim_end_matches('/');
        let base = base.strip_suffix("/v3").unwrap_or(base);
        format!("{base}/v3/auth/tokens")
    }

    pub fn request_body(&self) -> Value {
        match &self.credentials {
            Credentials::Password {
                username,
                user_domain,
                password,
                project,
                project_domain,
            } => json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": username, "domain": {"name": user_domain}, "password": password}}},
                "scope": {"project": {"name": project, "domain": {"name": project_domain}}}
            }}),
            Credentials::ApplicationCredential { id, secret } => json!({"auth": {
                "identity": {"methods": ["application_credential"],
                    "application_credential": {"id": id, "secret": secret}}
            }}),
        }
    }
}

/// A token and what came with it.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token: String,
    /// `expires_at - issued_at`, as Keystone said them.
    pub lifetime: Duration,
    pub catalog: Vec<Value>,
}

/// Reads the answer of `POST /v3/auth/tokens` (the token itself is the `X-Subject-Token`
/// header, passed in as `subject_token`).
pub fn issued_token(subject_token: &str, body: &Value) -> Result<IssuedToken, OpenstackError> {
    let token = body
        .get("token")
        .ok_or_else(|| OpenstackError::Protocol("Keystone's answer has no `token`".into()))?;
    let time = |name: &str| {
        token
            .get(name)
            .and_then(Value::as_str)
            .and_then(epoch_seconds)
            .ok_or_else(|| {
                OpenstackError::Protocol(format!("Keystone's token has no readable `{name}`"))
            })
    };
    let lifetime_secs = time("expires_at")?.saturating_sub(time("issued_at")?);
    Ok(IssuedToken {
        token: subject_token.to_string(),
        lifetime: Duration::from_secs(lifetime_secs),
        catalog: token
            .get("catalog")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    })
}

/// The URL of the catalog's endpoint of `service_type` for `interface` (and `region`).
pub fn endpoint(
    catalog: &[Value],
    service_type: &str,
    interface: &str,
    region: Option<&str>,
) -> Result<String, OpenstackError> {
    let service = catalog
        .iter()
        .find(|service| service.get("type").and_then(Value::as_str) == Some(service_type))
        .ok_or_else(|| {
            OpenstackError::Config(format!(
                "the service catalog has no `{service_type}` service"
            ))
        })?;
    service
        .get("endpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|endpoint| endpoint.get("interface").and_then(Value::as_str) == Some(interface))
        .find(|endpoint| {
            region.is_none_or(|region| {
                endpoint.get("region_id").and_then(Value::as_str) == Some(region)
                    || endpoint.get("region").and_then(Value::as_str) == Some(region)
            })
        })
        .and_then(|endpoint| endpoint.get("url").and_then(Value::as_str))
        .map(|url| url.trim_end_matches('/').to_string())
        .ok_or_else(|| {
            OpenstackError::Config(format!(
                "the service catalog has no {interface} `{service_type}` endpoint{}",
                region
                    .map(|r| format!(" in region {r}"))
                    .unwrap_or_default()
            ))
        })
}

/// Seconds since 1970 of an ISO 8601 UTC time as Keystone writes it
/// (`2026-12-06T10:53:18.000000Z`); fractions are dropped.
pub fn epoch_seconds(text: &str) -> Option<u64> {
    let text = text.trim_end_matches('Z');
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-').map(|part| part.parse::<i64>());
    let (year, month, day) = (
        date_parts.next()?.ok()?,
        date_parts.next()?.ok()?,
        date_parts.next()?.ok()?,
    );
    let time = time.split(['.', '+']).next()?;
    let mut time_parts = time.splitn(3, ':').map(|part| part.parse::<i64>());
    let (hour, minute, second) = (
        time_parts.next()?.ok()?,
        time_parts.next()?.ok()?,
        time_parts.next()?.ok()?,
    );
    // Days from the civil date (Howard Hinnant's days_from_civil).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    u64::try_from(days * 86_400 + hour * 3_600 + minute * 60 + second).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_times_are_read_as_utc_seconds() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00.000000Z"), Some(0));
        assert_eq!(
            epoch_seconds("2026-12-06T10:53:18.000000Z"),
            Some(1_796_554_398)
        );
        assert_eq!(epoch_seconds("2000-03-01T00:00:01Z"), Some(951_868_801));
        assert_eq!(epoch_seconds("not a time"), None);
    }

    #[test]
    fn a_token_answer_gives_its_lifetime_and_catalog_endpoints() {
        let body = json!({"token": {
        "issued_at": "2026-12-06T10:00:00.000000Z", "expires_at": "2026-12-06T11:00:00.000000Z",
        "catalog": [
            {"type": "compute", "endpoints": [
                {"interface": "admin", "region_id": "RegionOne", "url": "http://a:8774/v2.1"},
                {"interface": "public", "region_id": "RegionTwo", "url": "http://two:8774/v2.1/"},
                {"interface": "public", "region_id": "RegionOne", "url": "http://one:8774/v2.1/"}]},
            {"type": "placement", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": "http://p:8778"}]}
        ]}});
        let token = issued_token("gAAAA", &body).unwrap();
        assert_eq!(token.token, "gAAAA");
        assert_eq!(token.lifetime, Duration::from_secs(3_600));
        assert_eq!(
            endpoint(&token.catalog, "compute", "public", Some("RegionOne")).unwrap(),
            "http://one:8774/v2.1"
        );
        assert_eq!(
            endpoint(&token.catalog, "compute", "public", None).unwrap(),
            "http://two:8774/v2.1"
        );
        assert!(matches!(
            endpoint(&token.catalog, "network", "public", None),
            Err(OpenstackError::Config(_))
        ));
    }

    #[test]
    fn request_bodies_follow_keystones_v3_shapes_and_never_print_secrets() {
        let auth = KeystoneAuth {
            auth_url: "http://k:5000/v3/".into(),
            credentials: Credentials::ApplicationCredential {
                id: "abc".into(),
                secret: "s3cret".into(),
            },
            region: None,
            interface: "public".into(),
        };
        assert_eq!(auth.tokens_url(), "http://k:5000/v3/auth/tokens");
        let body = auth.request_body();
        assert_eq!(
            body["auth"]["identity"]["methods"][0],
            "application_credential"
        );
        assert!(body["auth"].get("scope").is_none());
        assert!(!format!("{auth:?}").contains("s3cret"));
        let password = KeystoneAuth {
            auth_url: "http://k:5000".into(),
            credentials: Credentials::Password {
                username: "drover".into(),
                user_domain: "Default".into(),
                password: "pw".into(),
                project: "admin".into(),
                project_domain: "Default".into(),
            },
            region: None,
            interface: "public".into(),
        };
        assert_eq!(password.tokens_url(), "http://k:5000/v3/auth/tokens");
        let body = password.request_body();
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["name"],
            "drover"
        );
        assert_eq!(body["auth"]["scope"]["project"]["name"], "admin");
        assert!(!format!("{password:?}").contains("pw\""));
    }
}
