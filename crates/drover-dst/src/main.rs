//! `drover-dst`: runs many seeds of the deterministic simulation and prints totals; exits 1 and
//! prints every failing seed if any invariant broke.
//!
//!     cargo run --release -p drover-dst -- --seeds 5000
//!     cargo run --release -p drover-dst -- --first-seed 4242 --seeds 1    # replay one seed

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "drover-dst",
    about = "Deterministic simulation tests of Drover's engine"
)]
struct Args {
    /// First seed.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Number of seeds.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// Print one line per seed.
    #[arg(long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut totals = drover_dst::Totals::default();
    let mut failures = Vec::new();
    let started = std::time::Instant::now();
    for seed in args.first_seed..args.first_seed + args.seeds {
        match drover_dst::run_seed(seed) {
            Ok(summary) => {
                if args.verbose {
                    eprintln!("{summary:?}");
                }
                totals.add(&summary);
            }
            Err(message) => {
                eprintln!("FAILED {message}");
                failures.push(seed);
            }
        }
    }
    println!("{totals} in {:.1}s", started.elapsed().as_secs_f64());
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("{} failing seed(s): {:?}", failures.len(), failures);
        ExitCode::FAILURE
    }
}
