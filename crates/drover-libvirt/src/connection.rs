//! One libvirt connection per host, opened on first use and opened again when it dies (its
//! libvirtd restarted, the host rebooted, a call got no answer).
//!
//! libvirt's calls block, so every one runs on tokio's blocking threads under a timeout. A call
//! that times out leaves its thread behind until libvirt gives up (keepalive, below); the
//! connection it used is dropped from the pool so the next call does not queue behind it.
//!
//! Process-wide setup, once: libvirt's default error printer is silenced (errors are values
//! here), and libvirt's default event loop runs on a thread of its own so that connections can
//! use keepalive: a host that stops answering without closing its socket is declared dead after
//! about `KEEPALIVE_INTERVAL_SECS × (KEEPALIVE_UNANSWERED_COUNT + 1)` seconds, which ends the
//! calls stuck on it.
//!
//! A connection's close may wait on the network, so it is never closed on an async thread: the
//! last reference closes it on a short-lived thread of its own.
//!
//! This module knows nothing of domains, discovery or migrations.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Mutex;
use virt::connect::Connect;

use crate::error::LibvirtError;

/// Seconds between keepalive probes on an idle connection.
const KEEPALIVE_INTERVAL_SECS: i32 = 5;
/// Unanswered probes after which libvirt closes the connection.
const KEEPALIVE_UNANSWERED_COUNT: u32 = 3;
/// How long the local liveness check of a pooled connection may take.
const LIVENESS_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed turn of libvirt's event loop, wait this long before the next one.
const EVENT_LOOP_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A libvirt connection that is closed on a thread of its own.
pub(crate) struct OpenConnection {
    connect: Option<Connect>,
}

impl OpenConnection {
    pub(crate) fn get(&self) -> &Connect {
        self.connect
            .as_ref()
            .expect("an open connection is only taken away by its drop")
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Some(connect) = self.connect.take() {
            // If no thread can be started the closure, and with it the connection, is dropped
            // here: closing inline is the only option left.
            let _ = std::thread::Builder::new()
                .name("libvirt-close".into())
                .spawn(move || drop(connect));
        }
    }
}

/// One host's slot: its URI and the connection currently in use.
struct HostSlot {
    uri: String,
    current: Mutex<Option<Arc<OpenConnection>>>,
}

/// The connections of every host of the driver.
pub(crate) struct Connections {
    slots: BTreeMap<String, HostSlot>,
    connect_timeout: Duration,
}

impl Connections {
    /// `uris`: host name → libvirt URI.
    pub(crate) fn new(uris: BTreeMap<String, String>, connect_timeout: Duration) -> Self {
        prepare_libvirt();
        let slots = uris
            .into_iter()
            .map(|(host, uri)| {
                let slot = HostSlot {
                    uri,
                    current: Mutex::new(None),
                };
                (host, slot)
            })
            .collect();
        Connections {
            slots,
            connect_timeout,
        }
    }

    pub(crate) fn uri_of(&self, host: &str) -> Result<&str, LibvirtError> {
        self.slot(host).map(|slot| slot.uri.as_str())
    }

    fn slot(&self, host: &str) -> Result<&HostSlot, LibvirtError> {
        self.slots
            .get(host)
            .ok_or_else(|| LibvirtError::UnknownHost(host.to_string()))
    }

    /// Runs `work` with the host's connection on a blocking thread, under `timeout`.
    pub(crate) async fn call<T, F>(
        &self,
        host: &str,
        operation: &str,
        timeout: Duration,
        work: F,
    ) -> Result<T, LibvirtError>
    where
        T: Send + 'static,
        F: FnOnce(&Connect) -> Result<T, LibvirtError> + Send + 'static,
    {
        let connection = self.connection(host).await?;
        self.call_on(host, &connection, operation, timeout, work)
            .await
    }

    /// Like [`Connections::call`], on a connection the caller holds (a migration uses one
    /// connection from start to end).
    pub(crate) async fn call_on<T, F>(
        &self,
        host: &str,
        connection: &Arc<OpenConnection>,
        operation: &str,
        timeout: Duration,
        work: F,
    ) -> Result<T, LibvirtError>
    where
        T: Send + 'static,
        F: FnOnce(&Connect) -> Result<T, LibvirtError> + Send + 'static,
    {
        let worker_connection = Arc::clone(connection);
        let running = tokio::task::spawn_blocking(move || {
            let result = work(worker_connection.get());
            let connection_died =
                result.is_err() && !worker_connection.get().is_alive().unwrap_or(false);
            (result, connection_died)
        });
        match tokio::time::timeout(timeout, running).await {
            Err(_elapsed) => {
                self.forget(host, connection).await;
                Err(LibvirtError::no_answer(host, operation, timeout))
            }
            Ok(Err(join_error)) => Err(LibvirtError::Libvirt {
                host: host.to_string(),
                operation: operation.to_string(),
                detail: format!("the libvirt call did not complete: {join_error}"),
            }),
            Ok(Ok((Err(error), true))) => {
                self.forget(host, connection).await;
                Err(LibvirtError::Unreachable {
                    host: host.to_string(),
                    detail: format!("the connection was lost during {operation}: {error}"),
                })
            }
            Ok(Ok((result, _))) => result,
        }
    }

    /// The host's live connection, opened (again) when there is none or it died.
    pub(crate) async fn connection(&self, host: &str) -> Result<Arc<OpenConnection>, LibvirtError> {
        let slot = self.slot(host)?;
        // Held while opening, so that concurrent callers share one new connection.
        let mut current = slot.current.lock().await;
        if let Some(connection) = current.as_ref() {
            if is_alive(connection).await {
                return Ok(Arc::clone(connection));
            }
            tracing::debug!(host, "libvirt connection lost; reconnecting");
        }
        *current = None;
        let opened = self.open(host, &slot.uri).await?;
        *current = Some(Arc::clone(&opened));
        Ok(opened)
    }

    async fn open(&self, host: &str, uri: &str) -> Result<Arc<OpenConnection>, LibvirtError> {
        let uri_to_open = uri.to_string();
        let opening = tokio::task::spawn_blocking(move || open_with_keepalive(&uri_to_open));
        let unreachable = |detail: String| LibvirtError::Unreachable {
            host: host.to_string(),
            detail,
        };
        match tokio::time::timeout(self.connect_timeout, opening).await {
            Err(_elapsed) => Err(LibvirtError::no_answer(
                host,
                &format!("connect to {uri}"),
                self.connect_timeout,
            )),
            Ok(Err(join_error)) => Err(unreachable(format!(
                "connecting to {uri} did not complete: {join_error}"
            ))),
            Ok(Ok(Err(error))) => Err(unreachable(format!(
                "cannot connect to {uri}: {}",
                error.message()
            ))),
            Ok(Ok(Ok(connection))) => {
                tracing::debug!(host, uri, "libvirt connection opened");
                Ok(Arc::new(connection))
            }
        }
    }

    /// Drops `connection` from the pool unless another call already replaced it.
    async fn forget(&self, host: &str, connection: &Arc<OpenConnection>) {
        let Ok(slot) = self.slot(host) else {
            return;
        };
        let mut current = slot.current.lock().await;
        if current
            .as_ref()
            .is_some_and(|pooled| Arc::ptr_eq(pooled, connection))
        {
            *current = None;
        }
    }
}

fn open_with_keepalive(uri: &str) -> Result<OpenConnection, virt::error::Error> {
    let connect = Connect::open(Some(uri))?;
    if libvirt_event_loop_runs() {
        // Not every driver supports keepalive (test:///, qemu:///system locally); those have
        // no network to lose.
        let _ = connect.set_keep_alive(KEEPALIVE_INTERVAL_SECS, KEEPALIVE_UNANSWERED_COUNT);
    }
    Ok(OpenConnection {
        connect: Some(connect),
    })
}

/// libvirt's local view of the connection (no network round trip), off the async threads.
async fn is_alive(connection: &Arc<OpenConnection>) -> bool {
    let checked = Arc::clone(connection);
    let checking = tokio::task::spawn_blocking(move || checked.get().is_alive().unwrap_or(false));
    matches!(
        tokio::time::timeout(LIVENESS_CHECK_TIMEOUT, checking).await,
        Ok(Ok(true))
    )
}

/// Silences libvirt's error printer and starts its event loop, once per process.
fn prepare_libvirt() {
    libvirt_event_loop_runs();
}

static EVENT_LOOP_RUNS: OnceLock<bool> = OnceLock::new();

/// Whether libvirt's default event loop runs (so keepalive works). Registering it must come
/// before the connections that use it are opened.
fn libvirt_event_loop_runs() -> bool {
    *EVENT_LOOP_RUNS.get_or_init(|| {
        virt::error::clear_error_callback();
        if let Err(error) = virt::event::event_register_default_impl() {
            tracing::warn!(%error, "libvirt event loop unavailable; connections run without keepalive");
            return false;
        }
        std::thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(run_libvirt_event_loop)
            .is_ok()
    })
}

fn run_libvirt_event_loop() {
    loop {
        if virt::event::event_run_default_impl().is_err() {
            std::thread::sleep(EVENT_LOOP_RETRY_PAUSE);
        }
    }
}
