//! Where the libraries' log events go: stderr (data stays on stdout), warnings and errors only
//! unless `DROVER_LOG` says otherwise (`DROVER_LOG=info`, `DROVER_LOG=drover_engine=debug`, the
//! `tracing` filter syntax). A store write tried again, a libvirt migration that failed, an
//! insecure XAPI connection: an operator sees them. Colours only on a terminal without
//! `NO_COLOR`. Knows nothing of the commands.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The level shown when `DROVER_LOG` is not set.
const DEFAULT_FILTER: &str = "warn";

/// Installs the subscriber once, at start. A bad `DROVER_LOG` falls back to the default (and
/// says so): logging must never stop a command.
pub fn install() {
    let filter = match std::env::var("DROVER_LOG") {
        Ok(text) => EnvFilter::try_new(&text).unwrap_or_else(|error| {
            eprintln!("DROVER_LOG={text:?} is not a log filter ({error}); showing warnings");
            EnvFilter::new(DEFAULT_FILTER)
        }),
        Err(_) => EnvFilter::new(DEFAULT_FILTER),
    };
    let colours = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours)
        .with_target(false)
        .try_init();
}
