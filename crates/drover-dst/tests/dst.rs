//! CI's deterministic simulation run: a few hundred seeds (DROVER_DST_SEEDS to change), each a
//! whole rolling upgrade under faults and crashes. A failure prints its seed; replay it with
//! `cargo run --release -p drover-dst -- --first-seed SEED --seeds 1 --verbose`.

#[test]
fn rolling_upgrades_keep_every_invariant_under_faults_and_crashes() {
    let seeds: u64 = std::env::var("DROVER_DST_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut totals = drover_dst::Totals::default();
    let mut failures = Vec::new();
    for seed in 1..=seeds {
        match drover_dst::run_seed(seed) {
            Ok(summary) => totals.add(&summary),
            Err(message) => failures.push(message),
        }
    }
    eprintln!("{totals}");
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        totals.completed > seeds as usize / 3,
        "too few runs completed: {totals}"
    );
    assert!(
        totals.crashes > 0 && totals.faults > 0,
        "the schedule injected nothing: {totals}"
    );
}
