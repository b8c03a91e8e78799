//! The baseline strategies: move-back pays every move twice, worst fit never beats the planner.

mod common;

use common::{cluster, host, vm};
use drover_core::MaxUnavailable;
use drover_sim::{generate, move_back, wave_hosts, worst_fit, GenerateSpec};

#[test]
fn move_back_moves_every_vm_away_and_back() {
    let mut vms: Vec<_> = (0..12)
        .map(|i| vm(&format!("v{i}"), i % 4, 300 + 50 * i as u64))
        .collect();
    vms[3].local_storage = true;
    vms[5].state = drover_core::VmState::Stopped;
    let c = cluster(
        (0..4)
            .map(|i| host(&format!("h{i}"), "1.0", 4_000))
            .collect(),
        vms,
    );
    let plan = drover_core::plan(&c);
    assert!(plan.is_feasible(), "{:?}", plan.prechecks);
    let outcome = move_back(&c, &wave_hosts(&c, &plan));
    // Ten VMs live-migrate: the local-storage VM is shut down and the stopped VM stays.
    assert_eq!(outcome.migrations, 2 * 10);
    assert!(outcome.feasible);
    assert_eq!(outcome.unplaced_vms, 0);
}

#[test]
fn worst_fit_needs_at_least_as_many_migrations_as_the_planner() {
    let c = generate(&GenerateSpec {
        hosts: 200,
        masters: 1,
        anti_affinity_groups: 60,
        max_unavailable: MaxUnavailable::Count(10),
        seed: 9,
        ..GenerateSpec::default()
    });
    let plan = drover_core::plan(&c);
    assert!(plan.is_feasible(), "{:?}", plan.prechecks);
    let waves = wave_hosts(&c, &plan);
    let spread = worst_fit(&c, &waves);
    let back = move_back(&c, &waves);
    println!(
        "200 hosts: planner {} migrations (lower bound {}), worst fit {}, move back {}",
        plan.summary.migrations,
        plan.summary.migrations_lower_bound,
        spread.migrations,
        back.migrations
    );
    assert!(spread.feasible && back.feasible);
    assert!(spread.migrations >= plan.summary.migrations);
    assert!(back.migrations >= 2 * plan.summary.migrations_lower_bound);
}

#[test]
fn an_infeasible_plan_still_gets_waves_to_compare() {
    let mut stuck = vm("stuck", 0, 100);
    stuck.migratable = false;
    let c = cluster(
        (0..5)
            .map(|i| host(&format!("h{i}"), "1.0", 4_000))
            .collect(),
        vec![stuck],
    );
    let mut plan = drover_core::plan(&c);
    assert!(!plan.is_feasible());
    plan.summary.max_unavailable = 2;
    let waves = wave_hosts(&c, &plan);
    assert_eq!(
        waves.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    let outcome = worst_fit(&c, &waves);
    assert!(!outcome.feasible);
    assert_eq!(outcome.unplaced_vms, 1);
}
