//! The simulator: exact nominal timings, determinism, and loud failures on hand-broken plans.

mod common;

use common::{cluster, host, vm};
use drover_core::{
    Action, ActionKind, HostId, HostState, MaxUnavailable, Plan, RestartPolicy, Summary, VmId,
    Wave, WaveKind,
};
use drover_sim::{generate, simulate, GenerateSpec, SimError, SimEventKind};

/// Default policy: upgrade 1800 s + reboot 300 s per host.
const UPGRADE_AND_REBOOT_SECS: u64 = 1_800 + 300;

/// A hand-written plan with one wave, no precheck and room for all its hosts at once.
fn one_wave_plan(hosts: Vec<HostId>, actions: Vec<Action>) -> Plan {
    Plan {
        prechecks: Vec::new(),
        skipped: Vec::new(),
        summary: Summary {
            max_unavailable: hosts.len() as u32,
            ..Summary::default()
        },
        waves: vec![Wave {
            kind: WaveKind::Compute,
            hosts,
            actions,
            returns: Vec::new(),
        }],
        final_compatibility_level: None,
    }
}

fn migrate(vm: u32, from: u32, to: u32) -> Action {
    Action {
        vm: VmId(vm),
        kind: ActionKind::Migrate,
        from: HostId(from),
        to: Some(HostId(to)),
    }
}

fn expect_broken(result: Result<drover_sim::SimReport, SimError>, needles: &[&str]) {
    match result {
        Err(SimError::InvariantBroken { message, .. }) => {
            for needle in needles {
                assert!(message.contains(needle), "{needle:?} not in {message:?}");
            }
        }
        other => panic!("expected InvariantBroken mentioning {needles:?}, got {other:?}"),
    }
}

#[test]
fn nominal_durations_add_up_exactly_with_seed_zero() {
    // h1 has nothing to move and goes first; then vm a (2000 MiB) migrates to h1 in 5 + 2 s.
    let c = cluster(
        vec![host("h0", "1.0", 10_000), host("h1", "1.0", 10_000)],
        vec![vm("a", 0, 2_000)],
    );
    let plan = drover_core::plan(&c);
    assert_eq!(plan.waves[0].hosts, vec![HostId(1)]);
    let report = simulate(&c, &plan, 0).unwrap();
    assert_eq!(report.makespan_secs, 2 * UPGRADE_AND_REBOOT_SECS + 7);
    assert_eq!(report.migrations, 1);
    assert_eq!(report.peak_hosts_unavailable, 1);
    let second = &report.hosts[1];
    assert_eq!(second.host, HostId(0));
    assert_eq!(second.evacuation_started_secs, UPGRADE_AND_REBOOT_SECS);
    assert_eq!(second.evacuation_finished_secs, UPGRADE_AND_REBOOT_SECS + 7);
    assert_eq!(second.back_in_service_secs, report.makespan_secs);
    assert_eq!(report.total_downtime_secs(), 0);
    let last = report.events.last().unwrap();
    assert_eq!(last.kind, SimEventKind::WaveFinished);
    assert_eq!(last.at_secs, report.makespan_secs);
}

#[test]
fn migrations_respect_the_per_host_limit() {
    // Five 1000 MiB VMs (6 s each) leave h0 two at a time: three rounds of 6 s.
    let c = cluster(
        vec![host("h0", "1.0", 10_000), host("h1", "2.0", 10_000)],
        (0..5).map(|i| vm(&format!("v{i}"), 0, 1_000)).collect(),
    );
    let plan = drover_core::plan(&c);
    let report = simulate(&c, &plan, 0).unwrap();
    assert_eq!(report.hosts[0].evacuation_finished_secs, 18);
    let mut running = 0i32;
    for event in &report.events {
        match event.kind {
            SimEventKind::MigrationStarted => running += 1,
            SimEventKind::MigrationFinished => running -= 1,
            _ => {}
        }
        assert!(running <= 2, "{running} migrations at {} s", event.at_secs);
    }
}

#[test]
fn restarts_and_shutdowns_have_the_downtime_of_the_model() {
    let mut local = vm("local", 0, 1_000);
    local.local_storage = true;
    let mut no_tools = vm("notools", 0, 1_000);
    no_tools.migratable = false;
    no_tools.restart_policy = RestartPolicy::Always;
    let c = cluster(
        vec![host("h0", "1.0", 10_000), host("h1", "2.0", 10_000)],
        vec![local, no_tools],
    );
    let plan = drover_core::plan(&c);
    let report = simulate(&c, &plan, 0).unwrap();
    let downtime = |kind| report.downtime.iter().find(|d| d.kind == kind).unwrap();
    // Restart: 60 s shutdown + 45 s boot. The local VM shuts down after the restart's VM left
    // (60 s), then waits for its shutdown, the upgrade and the reboot, then boots (45 s).
    assert_eq!(downtime(ActionKind::Restart).duration_secs(), 105);
    assert_eq!(downtime(ActionKind::Shutdown).started_secs, 60);
    assert_eq!(
        downtime(ActionKind::Shutdown).duration_secs(),
        60 + UPGRADE_AND_REBOOT_SECS + 45
    );
    assert_eq!((report.restarts, report.shutdowns), (1, 1));
    assert_eq!(report.makespan_secs, 120 + UPGRADE_AND_REBOOT_SECS + 45);
    assert_eq!(
        report.total_downtime_secs(),
        105 + 60 + UPGRADE_AND_REBOOT_SECS + 45
    );
}

#[test]
fn the_same_seed_gives_the_same_report_and_jitter_stays_within_ten_percent() {
    let spec = GenerateSpec {
        hosts: 40,
        masters: 1,
        anti_affinity_groups: 10,
        max_unavailable: MaxUnavailable::Count(4),
        seed: 5,
        ..GenerateSpec::default()
    };
    let c = generate(&spec);
    let plan = drover_core::plan(&c);
    assert!(plan.is_feasible(), "{:?}", plan.prechecks);
    let first = simulate(&c, &plan, 42).unwrap();
    assert_eq!(first, simulate(&c, &plan, 42).unwrap());
    let other = simulate(&c, &plan, 43).unwrap();
    assert_ne!(first.events, other.events);
    let nominal = simulate(&c, &plan, 0).unwrap();
    let (low, high) = (
        nominal.makespan_secs * 8 / 10,
        nominal.makespan_secs * 12 / 10,
    );
    assert!((low..=high).contains(&first.makespan_secs));
    assert!(first
        .events
        .windows(2)
        .all(|w| w[0].at_secs <= w[1].at_secs));
    assert_eq!(first.migrations, plan.summary.migrations);
    assert_eq!(first.hosts.len(), plan.summary.hosts_to_upgrade);
    assert!(first.peak_hosts_unavailable <= 4);
}

#[test]
fn migrating_to_an_older_host_is_caught() {
    let c = cluster(
        vec![host("new", "1.5", 10_000), host("old", "1.0", 10_000)],
        vec![vm("web1", 0, 1_000)],
    );
    let plan = one_wave_plan(vec![HostId(0)], vec![migrate(0, 0, 1)]);
    expect_broken(simulate(&c, &plan, 0), &["web1", "old", "new", "older"]);
}

#[test]
fn exceeding_memory_is_caught_while_the_migration_copies() {
    let c = cluster(
        vec![host("h0", "1.0", 10_000), host("small", "2.0", 1_500)],
        vec![vm("big", 0, 1_000), vm("resident", 1, 1_000)],
    );
    let plan = one_wave_plan(vec![HostId(0)], vec![migrate(0, 0, 1)]);
    expect_broken(simulate(&c, &plan, 0), &["big", "small", "2000 MiB"]);
}

#[test]
fn filling_a_host_past_its_headroom_is_caught() {
    // 9,500 of 10,000 MiB fits the host but not the default headroom (90 %, 9,000 MiB).
    let mut c = cluster(
        vec![host("h0", "1.0", 10_000), host("roomy", "2.0", 10_000)],
        vec![vm("big", 0, 9_500)],
    );
    let plan = one_wave_plan(vec![HostId(0)], vec![migrate(0, 0, 1)]);
    expect_broken(
        simulate(&c, &plan, 0),
        &["big", "roomy", "9500 MiB", "headroom", "9000 MiB"],
    );
    c.policy.host_memory_max_fill_percent = 100;
    assert!(simulate(&c, &plan, 0).is_ok());
    c.policy.host_memory_reserve_mib = 1_000;
    expect_broken(simulate(&c, &plan, 0), &["roomy", "headroom"]);
}

#[test]
fn breaking_anti_affinity_is_caught() {
    let mut a = vm("db1", 0, 100);
    a.anti_affinity = Some("db".into());
    let mut b = vm("db2", 1, 100);
    b.anti_affinity = Some("db".into());
    let c = cluster(
        vec![host("h0", "1.0", 10_000), host("h1", "2.0", 10_000)],
        vec![a, b],
    );
    let plan = one_wave_plan(vec![HostId(0)], vec![migrate(0, 0, 1)]);
    expect_broken(
        simulate(&c, &plan, 0),
        &["db1", "db2", "h1", "anti-affinity"],
    );
}

#[test]
fn too_many_hosts_down_at_once_is_caught() {
    let c = cluster(
        vec![host("h0", "1.0", 10_000), host("h1", "1.0", 10_000)],
        Vec::new(),
    );
    let mut plan = one_wave_plan(vec![HostId(0), HostId(1)], Vec::new());
    plan.summary.max_unavailable = 1;
    expect_broken(simulate(&c, &plan, 0), &["2 hosts unavailable", "h0", "h1"]);
}

#[test]
fn a_forgotten_vm_a_moved_vm_and_a_twice_moved_vm_are_caught() {
    let c = cluster(
        vec![host("h0", "1.0", 10_000), host("h1", "2.0", 10_000)],
        vec![vm("kept", 0, 100), vm("other", 0, 100)],
    );
    let forgotten = one_wave_plan(vec![HostId(0)], vec![migrate(0, 0, 1)]);
    expect_broken(simulate(&c, &forgotten, 0), &["h0", "other", "no action"]);
    let twice = one_wave_plan(
        vec![HostId(0)],
        vec![migrate(0, 0, 1), migrate(1, 0, 1), migrate(0, 0, 1)],
    );
    expect_broken(simulate(&c, &twice, 0), &["kept", "already has an action"]);
    let wrong_source = one_wave_plan(vec![HostId(1)], vec![migrate(0, 1, 0)]);
    expect_broken(simulate(&c, &wrong_source, 0), &["kept", "not running"]);
}

#[test]
fn landing_on_a_host_of_the_same_wave_or_in_maintenance_is_caught() {
    let mut c = cluster(
        vec![
            host("h0", "1.0", 10_000),
            host("h1", "1.0", 10_000),
            host("h2", "2.0", 10_000),
        ],
        vec![vm("a", 0, 100)],
    );
    let same_wave = one_wave_plan(vec![HostId(0), HostId(1)], vec![migrate(0, 0, 1)]);
    expect_broken(simulate(&c, &same_wave, 0), &["h1", "being upgraded"]);
    c.hosts[2].state = HostState::Maintenance;
    let to_maintenance = one_wave_plan(vec![HostId(0)], vec![migrate(0, 0, 2)]);
    expect_broken(simulate(&c, &to_maintenance, 0), &["h2", "in maintenance"]);
}

#[test]
fn live_migrating_a_vm_without_tools_is_caught() {
    let mut stuck = vm("legacy", 0, 100);
    stuck.migratable = false;
    let c = cluster(
        vec![host("h0", "1.0", 10_000), host("h1", "2.0", 10_000)],
        vec![stuck],
    );
    let plan = one_wave_plan(vec![HostId(0)], vec![migrate(0, 0, 1)]);
    expect_broken(simulate(&c, &plan, 0), &["legacy", "cannot live-migrate"]);
}

#[test]
fn an_infeasible_plan_is_refused() {
    let mut stuck = vm("stuck", 0, 100);
    stuck.migratable = false;
    let c = cluster(
        vec![host("h0", "1.0", 10_000), host("h1", "1.0", 10_000)],
        vec![stuck],
    );
    let plan = drover_core::plan(&c);
    assert!(!plan.is_feasible());
    match simulate(&c, &plan, 1) {
        Err(SimError::InfeasiblePlan { failed_prechecks }) => {
            assert!(
                failed_prechecks.iter().any(|c| c.contains("stuck")),
                "{failed_prechecks:?}"
            );
        }
        other => panic!("expected InfeasiblePlan, got {other:?}"),
    }
}

#[test]
fn a_plan_for_another_cluster_is_refused() {
    let c = cluster(vec![host("h0", "1.0", 10_000)], Vec::new());
    let plan = one_wave_plan(vec![HostId(7)], Vec::new());
    assert!(matches!(
        simulate(&c, &plan, 0),
        Err(SimError::UnknownReference { .. })
    ));
}

#[test]
fn a_hundred_host_cluster_one_host_at_a_time_takes_an_upgrade_and_an_evacuation_per_host() {
    let c = generate(&GenerateSpec {
        hosts: 100,
        seed: 1,
        ..GenerateSpec::default()
    });
    let plan = drover_core::plan(&c);
    let report = simulate(&c, &plan, 1).unwrap();
    println!(
        "100 hosts, max_unavailable 1: makespan {} s ({:.1} h), {} migrations, downtime {} s",
        report.makespan_secs,
        report.makespan_secs as f64 / 3600.0,
        report.migrations,
        report.total_downtime_secs()
    );
    // At least upgrade + reboot per host, one host at a time.
    assert!(report.makespan_secs >= 100 * UPGRADE_AND_REBOOT_SECS * 9 / 10);
    assert_eq!(report.peak_hosts_unavailable, 1);
}
