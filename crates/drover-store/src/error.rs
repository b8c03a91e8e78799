//! `StoreError`, the one error type of this crate, and the mapping from SQLite failures to it.
//!
//! Every message names the database path and the run or cluster involved, so the CLI can print
//! it as is. This module must not know table layouts or what any stored value means.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::ErrorCode;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "drover store {path} is corrupt or not a SQLite database ({detail}); the file was left untouched"
    )]
    Corrupt { path: PathBuf, detail: String },

    #[error(
        "drover store {path} has schema version {found} but this drover supports up to {supported}: \
         it was created by a newer drover; upgrade drover (the file was left untouched)"
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error(
        "{path} is a SQLite database but not a drover store (it has tables but no meta table); \
         refusing to use it (the file was left untouched)"
    )]
    ForeignDatabase { path: PathBuf },

    #[error(
        "drover store {path}: SQLite would not switch to WAL mode (journal mode is {journal_mode}); \
         keep the store on a local filesystem"
    )]
    WalUnavailable { path: PathBuf, journal_mode: String },

    #[error("drover store {path}: run {run_id} already exists")]
    RunExists { path: PathBuf, run_id: String },

    #[error("drover store {path}: no run {run_id}")]
    UnknownRun { path: PathBuf, run_id: String },

    #[error("cluster {cluster} is locked by run {run_id} (holder {holder}, since_ms {since_ms})")]
    LockHeld {
        cluster: String,
        run_id: String,
        holder: String,
        since_ms: u64,
    },

    /// A write made under a lease that is no longer the cluster's current one: another holder
    /// took the run over (or the run's lock was released), so this holder must stop at once.
    #[error(
        "cluster {cluster}: run {run_id}'s lease with fencing token {token} was superseded \
         ({}); this holder must stop driving the run",
        describe_current_lease(*current_token, current_holder.as_deref())
    )]
    Fenced {
        cluster: String,
        run_id: String,
        token: u64,
        /// The token of the cluster's lock row now, `None` when the cluster has no lock.
        current_token: Option<u64>,
        /// Who holds the cluster's lock now, `None` when the cluster has no lock.
        current_holder: Option<String>,
    },

    /// Another holder's lease on the run is still live (by the store's clock).
    #[error(
        "cluster {cluster}: run {run_id} is driven by holder {holder}, whose lease expires in \
         {expires_in_ms} ms"
    )]
    LeaseHeld {
        cluster: String,
        run_id: String,
        holder: String,
        expires_in_ms: u64,
    },

    #[error(
        "drover store {path} is busy (another drover process is writing to it): {operation} gave up \
         after waiting {waited_ms} ms"
    )]
    Busy {
        path: PathBuf,
        operation: String,
        waited_ms: u64,
    },

    #[error("drover store {path}: {field} = {value} does not fit SQLite's signed 64-bit integers")]
    ValueOutOfRange {
        path: PathBuf,
        field: &'static str,
        value: u64,
    },

    /// A networked store's URL that cannot be used as given (malformed, a password in it, a TLS
    /// mode this build lacks). Nothing was connected to, so nothing was written.
    #[error(
        "the state URL (--state / DROVER_STATE) {url_without_password} cannot be used: {detail}"
    )]
    InvalidUrl {
        url_without_password: String,
        detail: String,
    },

    /// A networked store that could not be reached (refused, no route, name unknown, no such
    /// database, connection lost).
    #[error(
        "drover store {url_without_password} (--state / DROVER_STATE) is unreachable: {detail}"
    )]
    Unreachable {
        url_without_password: String,
        detail: String,
    },

    /// A networked store whose TLS handshake failed: its certificate is not signed by the CA
    /// file, not issued for the host, or it offers no TLS where the URL requires it. A setting
    /// to correct, not a fault to retry.
    #[error(
        "drover store {url_without_password} (--state / DROVER_STATE): TLS refused: {detail}; \
         check sslmode and sslrootcert in the URL (or PGSSLMODE / PGSSLROOTCERT)"
    )]
    TlsRefused {
        url_without_password: String,
        detail: String,
    },

    /// A networked store that refused the credentials. The message never holds the password.
    #[error(
        "drover store {url_without_password} (--state / DROVER_STATE) refused the credentials: \
         {detail}; the password comes from PGPASSWORD or the password file (PGPASSFILE, else \
         ~/.pgpass), never from the URL"
    )]
    Unauthorized {
        url_without_password: String,
        detail: String,
    },

    /// A networked store's operation that did not finish in time (a connection from a full
    /// pool, or a statement past its timeout); it was abandoned, its transaction rolled back.
    #[error(
        "drover store {url_without_password} (--state / DROVER_STATE): {operation} gave up \
         after {waited_ms} ms"
    )]
    TimedOut {
        url_without_password: String,
        operation: String,
        waited_ms: u64,
    },

    /// Any other failure reported by a networked store's database.
    #[error("drover store {url_without_password}: {operation} failed: {detail}")]
    Database {
        url_without_password: String,
        operation: String,
        detail: String,
    },

    #[error("cannot read drover store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("drover store {path}: {operation} failed: {source}")]
    Sqlite {
        path: PathBuf,
        operation: String,
        #[source]
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// Whether the same write may succeed if tried again a little later (the store was busy or
    /// out of reach), as opposed to a refusal that repeating cannot change.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Busy { .. } | StoreError::Unreachable { .. } | StoreError::TimedOut { .. }
        )
    }
}

/// Where a store lives and how long it waits for other writers: the context every error needs.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    pub(crate) path: PathBuf,
    pub(crate) busy_timeout: Duration,
}

impl Location {
    pub(crate) fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Classifies a SQLite failure: waiting too long and damaged files get their own variants
    /// because the operator's remedy differs (retry later, restore a backup) from a plain bug.
    pub(crate) fn sqlite_error(&self, operation: String, source: rusqlite::Error) -> StoreError {
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) => StoreError::Busy {
                path: self.path(),
                operation,
                waited_ms: duration_ms(self.busy_timeout),
            },
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
                path: self.path(),
                detail: format!("{operation}: {source}"),
            },
            _ => StoreError::Sqlite {
                path: self.path(),
                operation,
                source,
            },
        }
    }

    /// SQLite stores signed 64-bit integers; refusing larger values beats wrapping them.
    pub(crate) fn sql_integer(&self, field: &'static str, value: u64) -> Result<i64, StoreError> {
        i64::try_from(value).map_err(|_| StoreError::ValueOutOfRange {
            path: self.path(),
            field,
            value,
        })
    }
}

/// Attaches a store's location and a description of the operation to a SQLite result.
pub(crate) trait SqliteContext<T> {
    fn during(
        self,
        location: &Location,
        operation: impl FnOnce() -> String,
    ) -> Result<T, StoreError>;
}

impl<T> SqliteContext<T> for Result<T, rusqlite::Error> {
    fn during(
        self,
        location: &Location,
        operation: impl FnOnce() -> String,
    ) -> Result<T, StoreError> {
        self.map_err(|source| location.sqlite_error(operation(), source))
    }
}

/// The second half of a `Fenced` message: who holds the cluster now, if anyone.
fn describe_current_lease(current_token: Option<u64>, current_holder: Option<&str>) -> String {
    match (current_token, current_holder) {
        (Some(token), Some(holder)) => {
            format!("the lock is now held by {holder} with fencing token {token}")
        }
        _ => "the cluster's lock was released".to_string(),
    }
}

pub(crate) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
