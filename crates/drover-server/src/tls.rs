//! HTTPS (cargo feature `tls`): rustls with the ring provider, certificate and key from PEM
//! files. Only this module knows TLS; the router is the same as over plain HTTP.

use std::net::TcpListener;
use std::time::Duration;

use axum::Router;

use super::config::TlsFiles;
use crate::ServerError;

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then lets open
/// connections finish for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    files: &TlsFiles,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), ServerError> {
    // One process-wide provider; a second install (tests in one process) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|error| {
            ServerError::bad_config(format!(
                "TLS: cannot use {} and {}: {error}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    let handle = axum_server::Handle::new();
    let signal_handle = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        signal_handle.graceful_shutdown(Some(grace));
    });
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, config)
        .map_err(ServerError::internal)?
        .handle(handle)
        .serve(router.into_make_service())
        .await
        .map_err(ServerError::internal)?;
    Ok(())
}
