//! Drover's store on PostgreSQL: `PostgresStore`, the `drover_store::RunStore` trait for several
//! Drover processes (on several machines) sharing one database, with the same contract as the
//! embedded SQLite store: one run per cluster, one lease holder per run judged by the database's
//! clock, fencing tokens from one store-wide sequence, and a gap-free append-only journal.
//!
//! The client is tokio-postgres with a deadpool-postgres pool, both without default features:
//! they are plain async Rust over the tokio Drover already builds, add about a dozen small crates
//! (the wire protocol, SCRAM, the pool) and no proc-macro or build script that needs a live
//! database, which keeps a build on two cores short. sqlx would add its macro and driver layers
//! for nothing Drover uses (it writes a handful of fixed statements). TLS is rustls (already
//! in the build for the server and the HTTP drivers) through tokio-postgres-rustls, with libpq's
//! `sslmode` meanings (`tls`).
//!
//! The store owns a small runtime of its own (one worker thread, created in `connect`): the pool,
//! every connection, every query and every timeout live there, and each trait method hands its
//! work over and awaits the result. A caller's runtime may be paused (virtual time, where an idle
//! wait for network I/O makes tokio jump to the next timer, so a timeout there would fire at
//! once) or short-lived (the CLI reads in one runtime, drops it, then drives in another); neither
//! matters to connections that never belong to it.
//!
//! This crate must not know clusters, plans, drivers or what entries hold (all opaque strings,
//! as in `drover_store`), nor how holders are named or judged alive; it must not read the
//! caller's clock for leases.

mod background;
mod connection_url;
mod errors;
mod schema;
mod store;
mod tls;

pub use connection_url::{is_postgres_url, ConnectionUrl, PasswordSource};
pub use schema::POSTGRES_SCHEMA_VERSION;
pub use store::{PostgresOptions, PostgresStore};
pub use tls::{CertificateCheck, TlsMode, TlsSettings};
