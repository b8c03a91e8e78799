//! How the server stops: SIGTERM or SIGINT sets one `watch` flag, and everything that waits
//! (the listener, run threads, event streams, periodic checks) also waits for that flag.
//!
//! A leaf: it must not know what it stops.

use tokio::sync::watch;

/// SIGTERM or SIGINT: tell everything to stop.
pub async fn forward_signals(stop: watch::Sender<bool>) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    eprintln!("shutting down: no new connections; stopping the runs");
    let _ = stop.send(true);
}

/// Resolves once a stop was asked (or nobody can ask any more).
pub async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}
