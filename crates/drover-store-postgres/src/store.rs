//! `PostgresStore`: the `RunStore` trait in SQL on a pooled PostgreSQL connection, each
//! operation one transaction on the store's own runtime (see `background`).
//!
//! How the contract holds with many processes on many machines:
//! - one run per cluster: `locks.cluster` is the primary key; `start_run` inserts the lock row
//!   first (`ON CONFLICT DO NOTHING`, which waits for a concurrent inserter's outcome), so of two
//!   starts on one cluster exactly one wins and the other is told `LockHeld`;
//! - leases: every expiry is a time of the database's clock (`clock_timestamp()`), read inside
//!   the transaction that compares or writes it; the caller's clock is never used;
//! - fencing: tokens come from one store-wide sequence, drawn under a transaction-scoped
//!   advisory lock on the cluster that every start, grant, break and release of its lock row
//!   takes first, so a cluster's tokens strictly increase and none is reused; a fenced write locks the
//!   lock row `FOR SHARE` in its own transaction, so no take-over can commit between the check
//!   and the write;
//! - the journal: an append increments `runs.last_seq` under the run row's lock in the same
//!   transaction as the insert, so seqs are gap-free and unique under any number of writers.
//!
//! This module must not know what runs, entries or holders mean (opaque strings), nor read the
//! caller's clock.

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use drover_store::{
    ClusterLock, JournalEntry, Lease, NewEntry, NewRun, RunRecord, RunStore, StoreError,
};
use tokio_postgres::{Row, Transaction};

use crate::background::Background;
use crate::connection_url::ConnectionUrl;
use crate::errors::{millis, unsigned, Place};
use crate::schema;
use crate::tls::{CertificateCheck, TlsMode};

/// The expiry of a lease that never expires, as the SQLite store writes it.
const LEASE_NEVER_EXPIRES_AT_MS: u64 = i64::MAX as u64;

const RUN_COLUMNS: &str = "id, cluster, inventory_sha256, inventory_text, state, \
                           created_at_ms, updated_at_ms, options_json";
const LOCK_COLUMNS: &str = "cluster, run_id, holder, since_ms, fencing_token, lease_expires_at_ms";

/// How a `PostgresStore` connects and waits.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The most connections this store opens at once.
    pub pool_size: usize,
    /// The longest any operation may take, waiting for a connection included; also the
    /// server-side `statement_timeout` of every statement.
    pub query_timeout: Duration,
    /// Added to the database's clock for every lease time. Zero in production; tests move lease
    /// time with it (every handle sharing one offset), as a `ManualClock` does on SQLite.
    pub lease_clock_offset_ms: Arc<AtomicI64>,
    /// `synchronous_commit = off` for this store's sessions when `relax_durability` is called.
    pub allow_relaxed_durability: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 8,
            query_timeout: Duration::from_secs(10),
            lease_clock_offset_ms: Arc::new(AtomicI64::new(0)),
            allow_relaxed_durability: true,
        }
    }
}

/// What the store's runtime needs for every operation.
#[derive(Debug)]
struct Shared {
    pool: Pool,
    place: Place,
    lease_clock_offset_ms: Arc<AtomicI64>,
    relaxed_durability: std::sync::atomic::AtomicBool,
}

/// A Drover store in a PostgreSQL database, shared by any number of processes and machines.
#[derive(Debug)]
pub struct PostgresStore {
    shared: Arc<Shared>,
    options: PostgresOptions,
    // Declared last: dropped after `shared`, so the pool's connections go with their runtime.
    background: Background,
}

impl PostgresStore {
    /// Connects to `url` with the default options: see `connect_with`.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, PostgresOptions::default())
    }

    /// Parses `url` (password from PGPASSWORD or the password file, never the URL), starts the
    /// store's runtime, connects, and applies the schema migrations (refusing a newer schema,
    /// changing nothing). May be called from inside or outside any runtime.
    pub fn connect_with(url: &str, options: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let url = ConnectionUrl::parse(url)?;
        let place = Place {
            url_without_password: url.url_without_password().to_string(),
            query_timeout: options.query_timeout,
        };
        let mut config = url.config().clone();
        let statement_timeout_ms = millis(options.query_timeout);
        let mut session_options = config.get_options().unwrap_or_default().to_string();
        // The server also ends a session left idle inside a transaction (a drover process
        // paused or cut off mid-write): its row locks must not keep another instance from
        // taking the run over.
        session_options.push_str(&format!(
            " -c statement_timeout={statement_timeout_ms} -c lock_timeout={statement_timeout_ms} \
             -c idle_in_transaction_session_timeout={statement_timeout_ms}"
        ));
        config.options(session_options.trim());
        config.connect_timeout(options.query_timeout);
        config.application_name("drover");
        let connector = url
            .tls()
            .connector()
            .map_err(|detail| StoreError::InvalidUrl {
                url_without_password: place.url_without_password.clone(),
                detail,
            })?;
        warn_when_unchecked(&url);
        let background = Background::start(&place.url_without_password)?;
        let manager = Manager::from_config(
            config,
            connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.query_timeout))
            .create_timeout(Some(options.query_timeout))
            .recycle_timeout(Some(options.query_timeout))
            .build()
            .map_err(|error| StoreError::Database {
                url_without_password: place.url_without_password.clone(),
                operation: "building the connection pool".to_string(),
                detail: error.to_string(),
            })?;
        let shared = Arc::new(Shared {
            pool,
            place,
            lease_clock_offset_ms: Arc::clone(&options.lease_clock_offset_ms),
            relaxed_durability: std::sync::atomic::AtomicBool::new(false),
        });
        let setup = Arc::clone(&shared);
        background.block_on(async move {
            let operation = "connecting";
            let work = async {
                let mut client = setup
                    .pool
                    .get()
                    .await
                    .map_err(|error| setup.place.pool_error(operation, error))?;
                schema::migrate(&mut client, &setup.place).await
            };
            tokio::time::timeout(setup.place.query_timeout, work)
                .await
                .unwrap_or_else(|_| Err(setup.place.timed_out(operation)))
        })?;
        Ok(PostgresStore {
            shared,
            options,
            background,
        })
    }

    /// Another handle on the same database with the same options (its own pool and runtime), as
    /// another process would open it.
    pub fn reopen(&self, url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, self.options.clone())
    }

    /// The URL as it may be shown.
    pub fn url_without_password(&self) -> &str {
        &self.shared.place.url_without_password
    }

    /// Runs `work` with a pooled connection on the store's runtime, all of it (the wait for a
    /// connection included) bounded by the query timeout.
    async fn with_connection<T, Work, WorkFuture>(
        &self,
        operation: String,
        work: Work,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        Work: FnOnce(deadpool_postgres::Object, Arc<Shared>) -> WorkFuture + Send + 'static,
        WorkFuture: Future<Output = Result<T, StoreError>> + Send,
    {
        let shared = Arc::clone(&self.shared);
        self.background
            .run(async move {
                let timeout = shared.place.query_timeout;
                let attempt = async {
                    let client = shared
                        .pool
                        .get()
                        .await
                        .map_err(|error| shared.place.pool_error(&operation, error))?;
                    if shared.relaxed_durability.load(Ordering::Relaxed) {
                        client
                            .batch_execute("SET synchronous_commit = off")
                            .await
                            .map_err(|error| shared.place.client_error(&operation, error))?;
                    }
                    work(client, Arc::clone(&shared)).await
                };
                tokio::time::timeout(timeout, attempt)
                    .await
                    .unwrap_or_else(|_| Err(shared.place.timed_out(&operation)))
            })
            .await
    }
}

impl Shared {
    fn error(&self, operation: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        let operation = operation.to_string();
        move |error| self.place.client_error(&operation, error)
    }

    /// Now, in ms, by the database's clock (plus the test offset).
    async fn now_ms(&self, transaction: &Transaction<'_>) -> Result<u64, StoreError> {
        let row = transaction
            .query_one(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                &[],
            )
            .await
            .map_err(self.error("reading the database's clock"))?;
        let now_ms: i64 = row.get(0);
        let offset_ms = self.lease_clock_offset_ms.load(Ordering::Relaxed);
        Ok(unsigned(now_ms.saturating_add(offset_ms)))
    }

    async fn lock_row(
        &self,
        transaction: &Transaction<'_>,
        cluster: &str,
        row_lock: &str,
    ) -> Result<Option<LockRow>, StoreError> {
        transaction
            .query_opt(
                &format!("SELECT {LOCK_COLUMNS} FROM locks WHERE cluster = $1 {row_lock}"),
                &[&cluster],
            )
            .await
            .map(|row| row.as_ref().map(read_lock_row))
            .map_err(self.error(&format!("reading cluster {cluster}'s lock")))
    }

    /// Serializes, until commit, every transaction that may create, hand over or delete
    /// `cluster`'s lock row: a token drawn after this is larger than any token the cluster's
    /// row ever had, even when a concurrent start or release is still in flight.
    async fn serialize_cluster(
        &self,
        transaction: &Transaction<'_>,
        cluster: &str,
    ) -> Result<(), StoreError> {
        transaction
            .execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&cluster],
            )
            .await
            .map(|_| ())
            .map_err(self.error(&format!("waiting for cluster {cluster}'s lock row")))
    }

    async fn next_fencing_token(&self, transaction: &Transaction<'_>) -> Result<u64, StoreError> {
        let row = transaction
            .query_one("SELECT nextval('fencing_tokens')", &[])
            .await
            .map_err(self.error("handing out a fencing token"))?;
        Ok(unsigned(row.get(0)))
    }

    /// The fence check of a write to `run_id` on `cluster` under `fence`, inside the write's
    /// transaction: the lock row is locked `FOR SHARE` until commit, so a take-over waits for the
    /// write rather than slipping in between.
    async fn check_fence(
        &self,
        transaction: &Transaction<'_>,
        fence: &Lease,
        cluster: &str,
        run_id: &str,
        row_lock: &str,
    ) -> Result<LockRow, StoreError> {
        let current = self.lock_row(transaction, cluster, row_lock).await?;
        let covers_the_write = fence.cluster == cluster && fence.run_id == run_id;
        match current {
            Some(current)
                if covers_the_write
                    && current.run_id == fence.run_id
                    && current.fencing_token == fence.fencing_token =>
            {
                Ok(current)
            }
            current => Err(StoreError::Fenced {
                cluster: cluster.to_string(),
                run_id: run_id.to_string(),
                token: fence.fencing_token,
                current_token: current.as_ref().map(|current| current.fencing_token),
                current_holder: current.map(|current| current.holder),
            }),
        }
    }

    async fn require_run(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
    ) -> Result<(), StoreError> {
        let row = transaction
            .query_opt("SELECT 1 FROM runs WHERE id = $1", &[&run_id])
            .await
            .map_err(self.error(&format!("looking up run {run_id}")))?;
        match row {
            Some(_) => Ok(()),
            None => Err(self.unknown_run(run_id)),
        }
    }

    fn unknown_run(&self, run_id: &str) -> StoreError {
        StoreError::UnknownRun {
            path: self.place.url_without_password.clone().into(),
            run_id: run_id.to_string(),
        }
    }

    /// Appends inside `transaction`: takes the next seq from the run's counter (locking the run
    /// row until commit) and writes the entry.
    async fn insert_entry(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
        entry: &NewEntry,
    ) -> Result<u64, StoreError> {
        let at_ms = self.place.integer("at_ms", entry.at_ms)?;
        let operation = format!("appending a {} entry to run {run_id}", entry.kind);
        let row = transaction
            .query_opt(
                "UPDATE runs SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
                &[&run_id],
            )
            .await
            .map_err(self.error(&operation))?;
        let Some(row) = row else {
            return Err(self.unknown_run(run_id));
        };
        let seq: i64 = row.get(0);
        transaction
            .execute(
                "INSERT INTO journal (run_id, seq, at_ms, kind, payload_json) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[&run_id, &seq, &at_ms, &entry.kind, &entry.payload_json],
            )
            .await
            .map_err(self.error(&operation))?;
        Ok(unsigned(seq))
    }

    async fn update_lease(
        &self,
        transaction: &Transaction<'_>,
        lock: &LockRow,
        holder: &str,
        fencing_token: u64,
        lease_expires_at_ms: u64,
    ) -> Result<(), StoreError> {
        let fencing_token = self.place.integer("fencing_token", fencing_token)?;
        let lease_expires_at_ms = self
            .place
            .integer("lease_expires_at_ms", lease_expires_at_ms)?;
        transaction
            .execute(
                "UPDATE locks SET holder = $3, fencing_token = $4, lease_expires_at_ms = $5 \
                 WHERE cluster = $1 AND run_id = $2",
                &[
                    &lock.cluster,
                    &lock.run_id,
                    &holder,
                    &fencing_token,
                    &lease_expires_at_ms,
                ],
            )
            .await
            .map(|_| ())
            .map_err(self.error(&format!(
                "giving run {}'s lease on cluster {} to {holder}",
                lock.run_id, lock.cluster
            )))
    }

    /// Inserts a lock row unless the cluster has one (a concurrent inserter's outcome is waited
    /// for); `Ok(false)` when it had.
    async fn insert_lock(
        &self,
        transaction: &Transaction<'_>,
        lock: &LockRow,
    ) -> Result<bool, StoreError> {
        let since_ms = self.place.integer("since_ms", lock.since_ms)?;
        let fencing_token = self.place.integer("fencing_token", lock.fencing_token)?;
        let lease_expires_at_ms = self
            .place
            .integer("lease_expires_at_ms", lock.lease_expires_at_ms)?;
        transaction
            .execute(
                &format!(
                    "INSERT INTO locks ({LOCK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (cluster) DO NOTHING"
                ),
                &[
                    &lock.cluster,
                    &lock.run_id,
                    &lock.holder,
                    &since_ms,
                    &fencing_token,
                    &lease_expires_at_ms,
                ],
            )
            .await
            .map(|inserted| inserted == 1)
            .map_err(self.error(&format!(
                "locking cluster {} for run {}",
                lock.cluster, lock.run_id
            )))
    }
}

/// A lock row as stored (expiry not yet compared with any clock).
#[derive(Debug, Clone)]
struct LockRow {
    cluster: String,
    run_id: String,
    holder: String,
    since_ms: u64,
    fencing_token: u64,
    lease_expires_at_ms: u64,
}

impl LockRow {
    /// A lease ending at `now_ms` is over, so a released lease lets the next holder in at once.
    fn lease_live_at(&self, now_ms: u64) -> bool {
        now_ms < self.lease_expires_at_ms
    }

    fn at(self, now_ms: u64) -> ClusterLock {
        let lease_live = self.lease_live_at(now_ms);
        ClusterLock {
            cluster: self.cluster,
            run_id: self.run_id,
            holder: self.holder,
            since_ms: self.since_ms,
            fencing_token: self.fencing_token,
            lease_expires_at_ms: self.lease_expires_at_ms,
            lease_live,
        }
    }

    fn lease(&self, holder: &str, fencing_token: u64, expires_at_ms: u64) -> Lease {
        Lease {
            cluster: self.cluster.clone(),
            run_id: self.run_id.clone(),
            holder: holder.to_string(),
            fencing_token,
            expires_at_ms,
        }
    }

    fn lock_held(self) -> StoreError {
        StoreError::LockHeld {
            cluster: self.cluster,
            run_id: self.run_id,
            holder: self.holder,
            since_ms: self.since_ms,
        }
    }

    fn lease_held(&self, now_ms: u64) -> StoreError {
        StoreError::LeaseHeld {
            cluster: self.cluster.clone(),
            run_id: self.run_id.clone(),
            holder: self.holder.clone(),
            expires_in_ms: self.lease_expires_at_ms.saturating_sub(now_ms),
        }
    }
}

fn read_lock_row(row: &Row) -> LockRow {
    LockRow {
        cluster: row.get(0),
        run_id: row.get(1),
        holder: row.get(2),
        since_ms: unsigned(row.get(3)),
        fencing_token: unsigned(row.get(4)),
        lease_expires_at_ms: unsigned(row.get(5)),
    }
}

fn read_run(row: &Row) -> RunRecord {
    RunRecord {
        id: row.get(0),
        cluster: row.get(1),
        inventory_sha256: row.get(2),
        inventory_text: row.get(3),
        state: row.get(4),
        created_at_ms: unsigned(row.get(5)),
        updated_at_ms: unsigned(row.get(6)),
        options_json: row.get(7),
    }
}

fn read_entry(row: &Row) -> JournalEntry {
    JournalEntry {
        seq: unsigned(row.get(0)),
        at_ms: unsigned(row.get(1)),
        kind: row.get(2),
        payload_json: row.get(3),
    }
}

/// When a lease granted at `now_ms` for `ttl` ends; capped at "never" so it fits the column.
fn lease_end_ms(now_ms: u64, ttl: Duration) -> u64 {
    now_ms
        .saturating_add(millis(ttl))
        .min(LEASE_NEVER_EXPIRES_AT_MS)
}

/// The refusal for a compare-and-swap that expected a lock row which is gone.
fn lock_released(cluster: &str) -> StoreError {
    StoreError::LockHeld {
        cluster: cluster.to_string(),
        run_id: "(none: the lock was released)".to_string(),
        holder: "(none)".to_string(),
        since_ms: 0,
    }
}

#[async_trait]
impl RunStore for PostgresStore {
    /// `synchronous_commit = off` on this store's sessions: a commit returns before its WAL is
    /// flushed, yet a crash of Drover's process loses nothing (the server has it), which is the
    /// trade the trait asks for; the database's own crash safety is untouched.
    fn relax_durability(&self) -> Result<(), StoreError> {
        if self.options.allow_relaxed_durability {
            self.shared
                .relaxed_durability
                .store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn start_run(
        &self,
        new_run: &NewRun,
        holder: &str,
        lease_ttl: Duration,
        first_entry: &NewEntry,
    ) -> Result<Lease, StoreError> {
        let (new_run, holder, first_entry) =
            (new_run.clone(), holder.to_string(), first_entry.clone());
        let operation = format!("starting run {}", new_run.id);
        self.with_connection(operation.clone(), move |mut client, shared| async move {
            let error = shared.error(&operation);
            let created_at_ms = shared
                .place
                .integer("created_at_ms", new_run.created_at_ms)?;
            let transaction = client.transaction().await.map_err(&error)?;
            shared
                .serialize_cluster(&transaction, &new_run.cluster)
                .await?;
            let now_ms = shared.now_ms(&transaction).await?;
            let lock = LockRow {
                cluster: new_run.cluster.clone(),
                run_id: new_run.id.clone(),
                holder: holder.clone(),
                since_ms: new_run.created_at_ms,
                fencing_token: shared.next_fencing_token(&transaction).await?,
                lease_expires_at_ms: lease_end_ms(now_ms, lease_ttl),
            };
            // The lock first: a concurrent start on the cluster (even with this run id) then
            // waits for this one and is told `LockHeld`, as on SQLite.
            if !shared.insert_lock(&transaction, &lock).await? {
                let current = shared.lock_row(&transaction, &new_run.cluster, "").await?;
                return Err(match current {
                    Some(current) => current.lock_held(),
                    None => shared.place.timed_out(&operation),
                });
            }
            let inserted = transaction
                .execute(
                    "INSERT INTO runs (id, cluster, inventory_sha256, inventory_text, state, \
                                       created_at_ms, updated_at_ms, options_json) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (id) DO NOTHING",
                    &[
                        &new_run.id,
                        &new_run.cluster,
                        &new_run.inventory_sha256,
                        &new_run.inventory_text,
                        &new_run.state,
                        &created_at_ms,
                        &new_run.options_json,
                    ],
                )
                .await
                .map_err(&error)?;
            if inserted == 0 {
                return Err(StoreError::RunExists {
                    path: shared.place.url_without_password.clone().into(),
                    run_id: new_run.id.clone(),
                });
            }
            shared
                .insert_entry(&transaction, &new_run.id, &first_entry)
                .await?;
            transaction.commit().await.map_err(&error)?;
            Ok(lock.lease(&holder, lock.fencing_token, lock.lease_expires_at_ms))
        })
        .await
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let run_id = run_id.to_string();
        let operation = format!("reading run {run_id}");
        self.with_connection(operation.clone(), move |client, shared| async move {
            client
                .query_opt(
                    &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"),
                    &[&run_id],
                )
                .await
                .map(|row| row.as_ref().map(read_run))
                .map_err(shared.error(&operation))
        })
        .await
    }

    async fn runs(
        &self,
        cluster: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let cluster = cluster.map(str::to_string);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let operation = match &cluster {
            Some(cluster) => format!("listing runs of cluster {cluster}"),
            None => "listing runs".to_string(),
        };
        self.with_connection(operation.clone(), move |client, shared| async move {
            client
                .query(
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM runs \
                         WHERE $1::text IS NULL OR cluster = $1 \
                         ORDER BY created_at_ms DESC, created_order DESC LIMIT $2"
                    ),
                    &[&cluster, &limit],
                )
                .await
                .map(|rows| rows.iter().map(read_run).collect())
                .map_err(shared.error(&operation))
        })
        .await
    }

    async fn entries(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.entries_after(run_id, 0).await
    }

    async fn entries_after(
        &self,
        run_id: &str,
        after_seq: u64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let run_id = run_id.to_string();
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let operation = format!("reading the journal of run {run_id} after entry {after_seq}");
        self.with_connection(operation.clone(), move |client, shared| async move {
            client
                .query(
                    "SELECT seq, at_ms, kind, payload_json FROM journal \
                     WHERE run_id = $1 AND seq > $2 ORDER BY seq",
                    &[&run_id, &after],
                )
                .await
                .map(|rows| rows.iter().map(read_entry).collect())
                .map_err(shared.error(&operation))
        })
        .await
    }

    async fn append(
        &self,
        run_id: &str,
        entry: &NewEntry,
        fence: Option<&Lease>,
    ) -> Result<u64, StoreError> {
        let (run_id, entry, fence) = (run_id.to_string(), entry.clone(), fence.cloned());
        let operation = format!("appending a {} entry to run {run_id}", entry.kind);
        self.with_connection(operation.clone(), move |mut client, shared| async move {
            let error = shared.error(&operation);
            let transaction = client.transaction().await.map_err(&error)?;
            shared.require_run(&transaction, &run_id).await?;
            if let Some(fence) = &fence {
                shared
                    .check_fence(&transaction, fence, &fence.cluster, &run_id, "FOR SHARE")
                    .await?;
            }
            let seq = shared.insert_entry(&transaction, &run_id, &entry).await?;
            transaction.commit().await.map_err(&error)?;
            Ok(seq)
        })
        .await
    }

    async fn set_run_state(
        &self,
        run_id: &str,
        state: &str,
        updated_at_ms: u64,
        fence: Option<&Lease>,
    ) -> Result<(), StoreError> {
        let (run_id, state, fence) = (run_id.to_string(), state.to_string(), fence.cloned());
        let operation = format!("setting the state of run {run_id} to {state}");
        self.with_connection(operation.clone(), move |mut client, shared| async move {
            let error = shared.error(&operation);
            let updated_at_ms = shared.place.integer("updated_at_ms", updated_at_ms)?;
            let transaction = client.transaction().await.map_err(&error)?;
            if let Some(fence) = &fence {
                shared
                    .check_fence(&transaction, fence, &fence.cluster, &run_id, "FOR SHARE")
                    .await?;
            }
            let updated = transaction
                .execute(
                    "UPDATE runs SET state = $2, updated_at_ms = $3 WHERE id = $1",
                    &[&run_id, &state, &updated_at_ms],
                )
                .await
                .map_err(&error)?;
            if updated == 0 {
                return Err(shared.unknown_run(&run_id));
            }
            transaction.commit().await.map_err(&error)
        })
        .await
    }

    async fn cluster_lock(&self, cluster: &str) -> Result<Option<ClusterLock>, StoreError> {
        let cluster = cluster.to_string();
        let operation = format!("reading cluster {cluster}'s lock");
        self.with_connection(operation.clone(), move |mut client, shared| async move {
            let error = shared.error(&operation);
            let transaction = client.transaction().await.map_err(&error)?;
            let row = shared.lock_row(&transaction, &cluster, "").await?;
            let now_ms = shared.now_ms(&transaction).await?;
            transaction.commit().await.map_err(&error)?;
            Ok(row.map(|row| row.at(now_ms)))
        })
        .await
    }

    async fn acquire_lease(
        &self,
        cluster: &str,
        run_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let (cluster, run_id, holder) =
            (cluster.to_string(), run_id.to_string(), holder.to_string());
        let operation = format!("acquiring run {run_id}'s lease on cluster {cluster}");
        self.with_connection(operation.clone(), move |mut client, shared| async move {
            let error = shared.error(&operation);
            let transaction = client.transaction().await.map_err(&error)?;
            shared.require_run(&transaction, &run_id).await?;
            shared.serialize_cluster(&transaction, &cluster).await?;
            // Twice at most: a free cluster that another transaction locks at the same moment
            // is read again, now with its row.
            for _ in 0..2 {
                let current = shared
                    .lock_row(&transaction, &cluster, "FOR UPDATE")
                    .await?;
                let now_ms = shared.now_ms(&transaction).await?;
                let expires_at_ms = lease_end_ms(now_ms, ttl);
                let lease = match current {
                    None => {
                        let lock = LockRow {
                            cluster: cluster.clone(),
                            run_id: run_id.clone(),
                            holder: holder.clone(),
                            since_ms: now_ms,
                            fencing_token: shared.next_fencing_token(&transaction).await?,
                            lease_expires_at_ms: expires_at_ms,
                        };
                        if !shared.insert_lock(&transaction, &lock).await? {
                            continue;
                        }
                        lock.lease(&holder, lock.fencing_token, expires_at_ms)
                    }
                    Some(current) if current.run_id != run_id => return Err(current.lock_held()),
                    Some(current) if current.holder != holder && current.lease_live_at(now_ms) => {
                        return Err(current.lease_held(now_ms));
                    }
                    Some(current) => {
                        let fencing_token = if current.holder == holder {
                            current.fencing_token
                        } else {
                            shared.next_fencing_token(&transaction).await?
                        };
                        shared
                            .update_lease(
                                &transaction,
                                &current,
                                &holder,
                                fencing_token,
                                expires_at_ms,
                            )
                            .await?;
                        current.lease(&holder, fencing_token, expires_at_ms)
                    }
                };
                transaction.commit().await.map_err(&error)?;
                return Ok(lease);
            }
            Err(shared.place.timed_out(&operation))
        })
        .await
    }

    async fn break_lease(
        &self,
        lease_seen: &ClusterLock,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let (lease_seen, holder) = (lease_seen.clone(), holder.to_string());
        let operation = format!(
            "breaking {}'s lease of run {} on cluster {}",
            lease_seen.holder, lease_seen.run_id, lease_seen.cluster
        );
        self.with_connection(operation.clone(), move |mut client, shared| async move {
            let error = shared.error(&operation);
            let cluster = lease_seen.cluster.as_str();
            let transaction = client.transaction().await.map_err(&error)?;
            shared.serialize_cluster(&transaction, cluster).await?;
            let current = shared.lock_row(&transaction, cluster, "FOR UPDATE").await?;
            let now_ms = shared.now_ms(&transaction).await?;
            let current = match current {
                None => return Err(lock_released(cluster)),
                Some(current) if current.run_id != lease_seen.run_id => {
                    return Err(current.lock_held())
                }
                Some(current)
                    if current.holder != lease_seen.holder
                        || current.fencing_token != lease_seen.fencing_token =>
                {
                    return Err(current.lease_held(now_ms));
                }
                Some(current) => current,
            };
            let expires_at_ms = lease_end_ms(now_ms, ttl);
            let fencing_token = shared.next_fencing_token(&transaction).await?;
            shared
                .update_lease(
                    &transaction,
                    &current,
                    &holder,
                    fencing_token,
                    expires_at_ms,
                )
                .await?;
            transaction.commit().await.map_err(&error)?;
            Ok(current.lease(&holder, fencing_token, expires_at_ms))
        })
        .await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let lease = lease.clone();
        let operation = format!(
            "renewing run {}'s lease on cluster {}",
            lease.run_id, lease.cluster
        );
        self.with_connection(operation.clone(), move |mut client, shared| async move {
            let error = shared.error(&operation);
            let transaction = client.transaction().await.map_err(&error)?;
            let current = shared
                .check_fence(
                    &transaction,
                    &lease,
                    &lease.cluster,
                    &lease.run_id,
                    "FOR UPDATE",
                )
                .await?;
            let now_ms = shared.now_ms(&transaction).await?;
            let expires_at_ms = lease_end_ms(now_ms, ttl);
            shared
                .update_lease(
                    &transaction,
                    &current,
                    &current.holder,
                    current.fencing_token,
                    expires_at_ms,
                )
                .await?;
            transaction.commit().await.map_err(&error)?;
            Ok(current.lease(&current.holder, current.fencing_token, expires_at_ms))
        })
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let lease = lease.clone();
        let operation = format!(
            "releasing run {}'s lease on cluster {}",
            lease.run_id, lease.cluster
        );
        self.with_connection(operation.clone(), move |mut client, shared| async move {
            let error = shared.error(&operation);
            let token = shared.place.integer("fencing_token", lease.fencing_token)?;
            let transaction = client.transaction().await.map_err(&error)?;
            let now_ms = shared.now_ms(&transaction).await?;
            let now_ms = shared.place.integer("now_ms", now_ms)?;
            transaction
                .execute(
                    "UPDATE locks SET lease_expires_at_ms = LEAST(lease_expires_at_ms, $4) \
                     WHERE cluster = $1 AND run_id = $2 AND fencing_token = $3",
                    &[&lease.cluster, &lease.run_id, &token, &now_ms],
                )
                .await
                .map_err(&error)?;
            transaction.commit().await.map_err(&error)
        })
        .await
    }

    async fn release_lock(
        &self,
        cluster: &str,
        run_id: &str,
        fence: Option<&Lease>,
    ) -> Result<(), StoreError> {
        let (cluster, run_id, fence) = (cluster.to_string(), run_id.to_string(), fence.cloned());
        let operation = format!("releasing cluster {cluster}'s lock for run {run_id}");
        self.with_connection(operation.clone(), move |mut client, shared| async move {
            let error = shared.error(&operation);
            let transaction = client.transaction().await.map_err(&error)?;
            shared.serialize_cluster(&transaction, &cluster).await?;
            if let Some(fence) = &fence {
                shared
                    .check_fence(&transaction, fence, &cluster, &run_id, "FOR UPDATE")
                    .await?;
            }
            transaction
                .execute(
                    "DELETE FROM locks WHERE cluster = $1 AND run_id = $2",
                    &[&cluster, &run_id],
                )
                .await
                .map_err(&error)?;
            transaction.commit().await.map_err(&error)
        })
        .await
    }
}

/// `sslmode=require` without a CA file encrypts but authenticates nobody (libpq's meaning): said
/// once per store on stderr, as the HTTP drivers do for `insecure`, so it is never a surprise.
fn warn_when_unchecked(url: &ConnectionUrl) {
    let tls = url.tls();
    if tls.mode == TlsMode::Require && tls.check == CertificateCheck::None {
        tracing::warn!(
            "drover store {}: sslmode=require without sslrootcert encrypts the connection but does \
             not check the server's certificate; use sslmode=verify-full&sslrootcert=CA_FILE",
            url.url_without_password()
        );
    }
}
