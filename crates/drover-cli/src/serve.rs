//! `drover serve`: its flags, and `--hash-token` (a token on stdin, its SHA-256 on stdout). The
//! daemon itself is `drover_server`; this module only hands it the flags and the state file.
//!
//! Knows the flags and the terminal; must not know HTTP, the API or how runs are driven.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;

use crate::exit::Failure;
use crate::runs::StateArgs;

#[derive(Args)]
pub struct ServeArgs {
    /// Configuration file (YAML): clusters, tokens, TLS, limits.
    #[arg(long, env = "DROVER_SERVE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long, env = "DROVER_LISTEN")]
    listen: Option<String>,
    /// TLS certificate (PEM); needs a drover built with `--features tls`.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Read a token on stdin and print the sha256 to put in the config's `tokens:`.
    #[arg(long, exclusive = true)]
    hash_token: bool,
}

pub fn run(args: &ServeArgs, state: &StateArgs) -> Result<(), Failure> {
    if args.hash_token {
        return print_token_hash();
    }
    let overrides = drover_server::Overrides {
        config: args.config.as_deref(),
        listen: args.listen.as_deref(),
        tls_cert: args.tls_cert.as_deref(),
        tls_key: args.tls_key.as_deref(),
    };
    Ok(drover_server::serve(&overrides, &state.state)?)
}

fn print_token_hash() -> Result<(), Failure> {
    let mut token = String::new();
    std::io::stdin().read_to_string(&mut token)?;
    let token = token.trim_end_matches(['\r', '\n']);
    if token.is_empty() {
        return Err(Failure::bad_input("--hash-token: no token on stdin"));
    }
    println!("{}", drover_server::token_sha256_hex(token));
    Ok(())
}
