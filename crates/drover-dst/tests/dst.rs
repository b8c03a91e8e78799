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

/// Seeds that once broke a promise (issue 11): a refused VM start retried in a tight loop
/// forever (19659); a skipped host whose upgrade timed out counted as back in service, or its
/// refused exit from maintenance dropped (6894 … 28909, 7369, 17112, 24088); a host that ignores
/// reboots halting again after every retry, so the run never finished (11517 … 26822). Each
/// must now finish with every invariant kept, within the per-seed wall-time limit.
#[test]
fn regression_seeds_finish_and_keep_every_invariant() {
    const REGRESSION_SEEDS: [u64; 17] = [
        19659, 6894, 6981, 14924, 17177, 23655, 25086, 26427, 28694, 28909, 7369, 17112, 24088,
        11517, 13272, 25485, 26822,
    ];
    let failures: Vec<String> = REGRESSION_SEEDS
        .iter()
        .filter_map(|seed| drover_dst::run_seed(*seed).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} regression seed(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A seed replays exactly: the same summary every time (failures print their seed to be
/// replayed). Seeds 61 and 161 once came out differently from run to run (the harness's
/// `select!` polled its branches in random order); 1709 has store faults of every kind.
#[test]
fn seeds_replay_exactly() {
    for seed in [61, 161, 1709] {
        let first = drover_dst::run_seed(seed).map(|summary| format!("{summary:?}"));
        for _ in 0..3 {
            let again = drover_dst::run_seed(seed).map(|summary| format!("{summary:?}"));
            assert_eq!(first, again, "seed {seed} did not replay exactly");
        }
    }
}
