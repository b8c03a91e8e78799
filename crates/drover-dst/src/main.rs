//! `drover-dst`: runs many seeds of the deterministic simulation and prints totals; exits 1 and
//! prints every failing seed if any invariant broke or any seed took longer than its wall-time
//! limit (a hung seed is a reported failure, never a hang).
//!
//!     cargo run --release -p drover-dst -- --seeds 50000 --jobs 2
//!     cargo run --release -p drover-dst -- --first-seed 4242 --seeds 1    # replay one seed

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Seeds run at once (one thread each; every seed is deterministic on its own).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Wall time one seed may take, in seconds; a slower seed is a failure that names it.
    #[arg(long, default_value_t = 1.0)]
    max_seed_secs: f64,
    /// Print one line per seed.
    #[arg(long)]
    verbose: bool,
}

/// How long past its limit a seed may run before the whole tool gives up on it: a seed stuck
/// without engine events (a loop inside one step) cannot stop itself, so the watchdog reports
/// it and ends the process.
const WATCHDOG_FACTOR: u32 = 10;

/// One seed's result and the wall time it took.
type SeedResult = (u64, Result<drover_dst::SeedSummary, String>, Duration);

/// What each worker is running now (seed, since when), for the watchdog.
type Running = Arc<Mutex<Vec<Option<(u64, Instant)>>>>;

fn main() -> ExitCode {
    let args = Args::parse();
    let jobs = args.jobs.max(1);
    let limit = Duration::from_secs_f64(args.max_seed_secs.max(0.001));
    let next_seed = Arc::new(AtomicU64::new(args.first_seed));
    let end_seed = args.first_seed + args.seeds;
    let running: Running = Arc::new(Mutex::new(vec![None; jobs]));
    // Bounded: workers wait for the printer rather than piling up results.
    let (sender, receiver) = mpsc::sync_channel::<SeedResult>(jobs * 4);
    let started = Instant::now();
    for worker in 0..jobs {
        let next_seed = Arc::clone(&next_seed);
        let running = Arc::clone(&running);
        let sender = sender.clone();
        std::thread::spawn(move || loop {
            let seed = next_seed.fetch_add(1, Ordering::Relaxed);
            if seed >= end_seed {
                return;
            }
            let seed_started = Instant::now();
            running.lock().expect("watchdog lock")[worker] = Some((seed, seed_started));
            let result = drover_dst::run_seed_within(seed, limit);
            running.lock().expect("watchdog lock")[worker] = None;
            if sender.send((seed, result, seed_started.elapsed())).is_err() {
                return;
            }
        });
    }
    drop(sender);
    spawn_watchdog(Arc::clone(&running), limit * WATCHDOG_FACTOR);
    let mut totals = drover_dst::Totals::default();
    let mut failures = Vec::new();
    let mut slowest = (0u64, Duration::ZERO);
    for (seed, result, took) in receiver {
        if took > slowest.1 {
            slowest = (seed, took);
        }
        let result = result.and_then(|summary| {
            if took > limit {
                Err(format!(
                    "seed {seed}: took {:.3}s of wall time, more than the limit {:.3}s",
                    took.as_secs_f64(),
                    limit.as_secs_f64()
                ))
            } else {
                Ok(summary)
            }
        });
        match result {
            Ok(summary) => {
                if args.verbose {
                    eprintln!("{summary:?} in {:.3}s", took.as_secs_f64());
                }
                totals.add(&summary);
            }
            Err(message) => {
                eprintln!("FAILED {message}");
                failures.push(seed);
            }
        }
    }
    println!(
        "{totals} in {:.1}s with {jobs} job(s); slowest seed {} took {:.3}s (limit {:.3}s)",
        started.elapsed().as_secs_f64(),
        slowest.0,
        slowest.1.as_secs_f64(),
        limit.as_secs_f64()
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        failures.sort_unstable();
        println!("{} failing seed(s): {:?}", failures.len(), failures);
        ExitCode::FAILURE
    }
}

/// Ends the process, naming the seed, when a seed runs far past its limit without stopping
/// itself (the per-seed limit is checked at every engine event; this catches a loop between
/// events).
fn spawn_watchdog(running: Running, hard_limit: Duration) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(200));
        let stuck = running
            .lock()
            .expect("watchdog lock")
            .iter()
            .flatten()
            .find(|(_, since)| since.elapsed() > hard_limit)
            .copied();
        if let Some((seed, since)) = stuck {
            println!(
                "FAILED seed {seed}: still running after {:.1}s of wall time (hung); replay it with --first-seed {seed} --seeds 1",
                since.elapsed().as_secs_f64()
            );
            println!("1 failing seed(s): [{seed}] (the run was stopped at the hung seed)");
            std::process::exit(1);
        }
    });
}
