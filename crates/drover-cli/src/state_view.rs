//! `drover state migrate --from A --to B`: copies every run and journal between two stores (an
//! SQLite file and a database URL, either way) and verifies them; prints what it copied. The
//! copying is drover-app's `state_migration`; this module knows the flags and the output.

use clap::{Args, Subcommand};

use crate::exit::Failure;
use crate::runs::block_on;

#[derive(Args)]
pub struct StateCommandArgs {
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Subcommand)]
enum StateCommand {
    /// Copy every run and its journal into an empty store, then verify counts and checksums.
    Migrate(MigrateArgs),
}

#[derive(Args)]
struct MigrateArgs {
    /// The store to copy from: an SQLite file (or a database URL).
    #[arg(long)]
    from: std::path::PathBuf,
    /// The empty store to copy into: a database URL (or an SQLite file).
    #[arg(long)]
    to: std::path::PathBuf,
}

pub fn run(args: &StateCommandArgs) -> Result<(), Failure> {
    let StateCommand::Migrate(migrate) = &args.command;
    if !migrate.from.exists() && !is_url(&migrate.from) {
        return Err(Failure::bad_input(format!(
            "--from {}: no such state file",
            migrate.from.display()
        )));
    }
    let migrated = block_on(async {
        let from = drover_app::stores::open_store(&migrate.from)?;
        let to = drover_app::stores::open_store(&migrate.to)?;
        Ok(drover_app::state_migration::migrate(from.as_ref(), to.as_ref()).await?)
    })?;
    println!(
        "copied {} run(s) and {} journal entries from {} to {}; counts and checksums verified",
        migrated.runs,
        migrated.entries,
        migrate.from.display(),
        migrate.to.display()
    );
    if !migrated.skipped_never_started.is_empty() {
        eprintln!(
            "skipped {} run(s) that never started (no journal entry): {}",
            migrated.skipped_never_started.len(),
            migrated.skipped_never_started.join(", ")
        );
    }
    Ok(())
}

fn is_url(path: &std::path::Path) -> bool {
    path.to_str().is_some_and(|text| text.contains("://"))
}
