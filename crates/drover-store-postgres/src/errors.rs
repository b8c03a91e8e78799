//! Mapping client and pool failures to `drover_store::StoreError`, naming the store by its URL
//! without password and the operation that failed, so the CLI can print the message as is.
//!
//! The remedy decides the variant: unreachable (check the server and the URL), unauthorized
//! (check PGPASSWORD or the password file), timed out (retry later), anything else. This module
//! must not know table layouts or what a stored value means.

use std::time::Duration;

use deadpool_postgres::PoolError;
use drover_store::StoreError;
use tokio_postgres::error::SqlState;

/// What every error needs: which store, how long operations may wait.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub(crate) url_without_password: String,
    pub(crate) query_timeout: Duration,
}

impl Place {
    pub(crate) fn client_error(&self, operation: &str, error: tokio_postgres::Error) -> StoreError {
        let url_without_password = self.url_without_password.clone();
        if let Some(code) = error.code() {
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            {
                return StoreError::Unauthorized {
                    url_without_password,
                    detail: database_message(&error),
                };
            }
            if *code == SqlState::QUERY_CANCELED || *code == SqlState::LOCK_NOT_AVAILABLE {
                return StoreError::TimedOut {
                    url_without_password,
                    operation: operation.to_string(),
                    waited_ms: millis(self.query_timeout),
                };
            }
            if *code == SqlState::INVALID_CATALOG_NAME
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::TOO_MANY_CONNECTIONS
            {
                return StoreError::Unreachable {
                    url_without_password,
                    detail: database_message(&error),
                };
            }
            return StoreError::Database {
                url_without_password,
                operation: operation.to_string(),
                detail: database_message(&error),
            };
        }
        let detail = error_chain(&error);
        if detail.contains("password missing") {
            return StoreError::Unauthorized {
                url_without_password,
                detail: "the server asks for a password and none was found".to_string(),
            };
        }
        if is_tls_failure(&error) {
            return StoreError::TlsRefused {
                url_without_password,
                detail,
            };
        }
        // No database error: the connection could not be made or was lost.
        StoreError::Unreachable {
            url_without_password,
            detail: format!("{operation}: {detail}"),
        }
    }

    pub(crate) fn pool_error(&self, operation: &str, error: PoolError) -> StoreError {
        match error {
            PoolError::Backend(error) => self.client_error(operation, error),
            PoolError::Timeout(_) => self.timed_out(operation),
            other => StoreError::Unreachable {
                url_without_password: self.url_without_password.clone(),
                detail: format!("{operation}: {other}"),
            },
        }
    }

    pub(crate) fn timed_out(&self, operation: &str) -> StoreError {
        StoreError::TimedOut {
            url_without_password: self.url_without_password.clone(),
            operation: operation.to_string(),
            waited_ms: millis(self.query_timeout),
        }
    }

    /// PostgreSQL stores signed 64-bit integers; refusing larger values beats wrapping them.
    pub(crate) fn integer(&self, field: &'static str, value: u64) -> Result<i64, StoreError> {
        i64::try_from(value).map_err(|_| StoreError::ValueOutOfRange {
            path: self.url_without_password.clone().into(),
            field,
            value,
        })
    }
}

/// Reads back a column the schema keeps non-negative.
pub(crate) fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn database_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db_error) => format!("{} ({})", db_error.message(), db_error.code().code()),
        None => error_chain(error),
    }
}

/// The handshake failed (rustls's own error in the chain), or the server refused TLS that the
/// URL requires (tokio-postgres's message for it).
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = current {
        if cause.downcast_ref::<rustls::Error>().is_some()
            || cause.to_string().contains("server does not support TLS")
        {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return true;
            }
        }
        current = cause.source();
    }
    false
}

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
