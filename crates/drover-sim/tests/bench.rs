//! The benchmark harness: the scenario list and one small scenario run end to end.

use drover_core::MaxUnavailable;
use drover_sim::{run_scenario, standard_scenarios, BenchPhase, BenchScenario};

#[test]
fn standard_scenarios_cover_the_sizes_and_limits() {
    let full = standard_scenarios(false);
    assert_eq!(full.len(), 3 * 3 + 1);
    assert!(full
        .iter()
        .any(|s| s.hosts == 10_000 && s.max_unavailable == MaxUnavailable::Auto));
    let target = full.last().unwrap();
    assert_eq!(
        (target.hosts, target.utilization_description()),
        (1_000, "75%".to_string())
    );
    let quick = standard_scenarios(true);
    assert_eq!(quick.len(), 2 * 3 + 1);
    assert!(quick.iter().all(|s| s.hosts <= 1_000));
    assert_eq!(quick[0].utilization_description(), "60–90%");
}

#[test]
fn a_scenario_row_is_consistent() {
    let scenario = BenchScenario {
        hosts: 100,
        utilization_min: 0.6,
        utilization_max: 0.9,
        max_unavailable: MaxUnavailable::Count(10),
        seed: 1,
    };
    let mut phases = Vec::new();
    let row = run_scenario(&scenario, &mut |phase| {
        phases.push(phase);
        4_096
    });
    println!("{row:?}");
    assert_eq!(phases, vec![BenchPhase::Start, BenchPhase::End]);
    assert_eq!(row.plan_peak_memory_bytes, 4_096);
    assert_eq!(row.hosts, 101);
    assert!(row.feasible);
    assert_eq!(row.verified, Some(true));
    assert_eq!(row.max_unavailable, 10);
    assert!(row.migrations >= row.migrations_lower_bound);
    assert!(row.waves >= row.waves_lower_bound);
    assert!(row.migrations_ratio >= 1.0 && row.waves_ratio >= 1.0);
    assert!(row.move_back_migrations >= 2 * row.migrations_lower_bound);
    assert!(row.worst_fit_migrations >= row.migrations);
    assert!(
        (row.move_back_ratio - row.move_back_migrations as f64 / row.migrations_lower_bound as f64)
            .abs()
            < 1e-9
    );
}
