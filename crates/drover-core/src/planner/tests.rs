//! Unit tests of the planner on small hand-built clusters.

use super::*;
use crate::check::{check_plan, moves_per_vm};
use crate::model::*;

fn host(name: &str, role: HostRole, version: &str, memory_mib: u64) -> Host {
    Host {
        name: name.into(),
        role,
        version: version.parse().unwrap(),
        memory_mib,
        cpus: 16,
        state: HostState::Up,
        cordoned: false,
        labels: Default::default(),
    }
}

fn vm(name: &str, host: u32, memory_mib: u64) -> Vm {
    Vm {
        name: name.into(),
        host: HostId(host),
        memory_mib,
        vcpus: 2,
        state: VmState::Running,
        migratable: true,
        local_storage: false,
        unmovable: None,
        restart_policy: RestartPolicy::Manual,
        anti_affinity: None,
        allowed_hosts: None,
    }
}

fn cluster(hosts: Vec<Host>, vms: Vec<Vm>) -> Cluster {
    Cluster {
        settings: Vec::new(),
        name: "t".into(),
        target_version: "2.0".parse().unwrap(),
        policy: Policy::default(),
        hosts,
        vms,
    }
}

#[test]
fn master_goes_first_alone_and_every_rule_holds() {
    let c = cluster(
        vec![
            host("c1", HostRole::Compute, "1.0", 1000),
            host("m", HostRole::Master, "1.0", 1000),
            host("c2", HostRole::Compute, "1.0", 1000),
        ],
        vec![vm("a", 0, 300), vm("b", 1, 300), vm("c", 2, 300)],
    );
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert_eq!(p.waves[0].kind, WaveKind::Master);
    assert_eq!(p.waves[0].hosts, vec![HostId(1)]);
    assert_eq!(p.waves.len(), 3);
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
}

#[test]
fn vms_move_at_most_once_after_the_first_wave() {
    let hosts = (0..6)
        .map(|i| host(&format!("h{i}"), HostRole::Compute, "1.0", 1000))
        .collect();
    let vms = (0..18).map(|i| vm(&format!("v{i}"), i % 6, 200)).collect();
    let c = cluster(hosts, vms);
    let p = plan(&c);
    assert!(check_plan(&c, &p).is_empty());
    let first_wave: Vec<VmId> = p.waves[0].actions.iter().map(|a| a.vm).collect();
    for (index, moves) in moves_per_vm(&c, &p).iter().enumerate() {
        let limit = if first_wave.contains(&VmId(index as u32)) {
            2
        } else {
            1
        };
        assert!(
            *moves >= 1 && *moves <= limit,
            "vm {index} moved {moves} times"
        );
    }
}

#[test]
fn local_storage_is_shut_down_and_no_tools_vm_restarts_elsewhere() {
    let mut local = vm("local", 0, 100);
    local.local_storage = true;
    let mut no_tools = vm("notools", 0, 100);
    no_tools.migratable = false;
    no_tools.restart_policy = RestartPolicy::Always;
    let c = cluster(
        vec![
            host("h0", HostRole::Compute, "1.0", 1000),
            host("h1", HostRole::Compute, "1.0", 1000),
        ],
        vec![local, no_tools],
    );
    let p = plan(&c);
    // h1 has nothing to move, so it goes first and h0's no-tools VM restarts on the upgraded h1.
    assert_eq!(p.waves[0].hosts, vec![HostId(1)]);
    let kinds: Vec<_> = p.waves[1].actions.iter().map(|a| (a.kind, a.to)).collect();
    assert_eq!(
        kinds,
        vec![
            (ActionKind::Restart, Some(HostId(1))),
            (ActionKind::Shutdown, None)
        ]
    );
    assert!(check_plan(&c, &p).is_empty());
}

#[test]
fn unmovable_vm_fails_unless_resolved() {
    let mut stuck = vm("stuck", 0, 100);
    stuck.migratable = false;
    let mut c = cluster(
        vec![
            host("h0", HostRole::Compute, "1.0", 1000),
            host("h1", HostRole::Compute, "1.0", 1000),
        ],
        vec![stuck],
    );
    let p = plan(&c);
    assert!(!p.is_feasible());
    assert!(p.waves.is_empty());
    assert!(p
        .failed_prechecks()
        .any(|c| c.id == "unmovable-vms" && c.subjects == vec!["stuck"]));
    c.policy.auto_resolve = true;
    let p = plan(&c);
    assert!(p.is_feasible());
    assert_eq!(p.summary.shutdowns, 1);
    assert!(check_plan(&c, &p).is_empty());
}

#[test]
fn never_moves_to_an_older_host() {
    // h0 runs 1.5: its VM may not go to h1 (1.0) before h1 is upgraded, and h2 is full.
    let c = cluster(
        vec![
            host("h0", HostRole::Compute, "1.5", 1000),
            host("h1", HostRole::Compute, "1.0", 1000),
            host("h2", HostRole::Compute, "1.5", 1000),
        ],
        vec![vm("a", 0, 600), vm("b", 2, 600)],
    );
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert!(check_plan(&c, &p).is_empty(), "{:?}", check_plan(&c, &p));
    // The older host is upgraded first, so everything can move once onto newer hosts.
    assert_eq!(p.waves[0].hosts, vec![HostId(1)]);
}

#[test]
fn down_and_current_hosts_are_left_out() {
    let mut down = host("down", HostRole::Compute, "1.0", 1000);
    down.state = HostState::Down;
    let c = cluster(
        vec![
            down,
            host("new", HostRole::Compute, "2.0", 1000),
            host("old", HostRole::Compute, "1.0", 1000),
        ],
        vec![vm("a", 2, 100)],
    );
    let p = plan(&c);
    assert_eq!(p.waves.len(), 1);
    assert_eq!(p.waves[0].hosts, vec![HostId(2)]);
    assert_eq!(p.waves[0].actions[0].to, Some(HostId(1)));
    assert_eq!(p.skipped.len(), 2);
    assert!(p
        .prechecks
        .iter()
        .any(|c| c.id == "hosts-down" && c.status == CheckStatus::Warn));
}

#[test]
fn anti_affinity_is_respected_and_infeasibility_names_the_vm() {
    let mut a = vm("a", 0, 100);
    a.anti_affinity = Some("g".into());
    let mut b = vm("b", 1, 100);
    b.anti_affinity = Some("g".into());
    let c = cluster(
        vec![
            host("h0", HostRole::Compute, "1.0", 1000),
            host("h1", HostRole::Compute, "1.0", 1000),
        ],
        vec![a, b],
    );
    let p = plan(&c);
    assert!(!p.is_feasible());
    let failure = p.failed_prechecks().next().unwrap();
    assert_eq!(failure.id, "placement");
    assert!(
        failure.message.contains("h0") || failure.message.contains("h1"),
        "{}",
        failure.message
    );
}

#[test]
fn auto_batches_follow_capacity() {
    let hosts = (0..10)
        .map(|i| host(&format!("h{i}"), HostRole::Compute, "1.0", 1000))
        .collect();
    let vms = (0..10).map(|i| vm(&format!("v{i}"), i, 500)).collect();
    let mut c = cluster(hosts, vms);
    c.policy.max_unavailable = MaxUnavailable::Auto;
    // Capacity alone decides here: no ceiling below it, no headroom.
    c.policy.max_unavailable_auto_ceiling = HostShare::Percent(100);
    c.policy.host_memory_max_fill_percent = 100;
    let p = plan(&c);
    // Each host withdraws 1000 MiB (500 free + 500 moving); 5000 MiB free in all: 5 at once.
    assert_eq!(p.summary.max_unavailable, 5);
    assert!(check_plan(&c, &p).is_empty(), "{:?}", check_plan(&c, &p));
}

#[test]
fn auto_batches_stop_at_the_ceiling() {
    let hosts = (0..40)
        .map(|i| host(&format!("h{i}"), HostRole::Compute, "1.0", 1000))
        .collect();
    let vms = (0..40).map(|i| vm(&format!("v{i}"), i, 100)).collect();
    let mut c = cluster(hosts, vms);
    c.policy.max_unavailable = MaxUnavailable::Auto;
    let p = plan(&c);
    // Capacity would take 28 hosts down at once; the default ceiling is 10% of 40 hosts.
    assert_eq!(p.summary.max_unavailable, 4);
    assert!(p.waves.iter().all(|w| w.hosts.len() <= 4));
    let capacity = p.prechecks.iter().find(|c| c.id == "capacity").unwrap();
    assert!(
        capacity
            .message
            .contains("max_unavailable_auto_ceiling 10%"),
        "{}",
        capacity.message
    );
    c.policy.max_unavailable_auto_ceiling = HostShare::Hosts(7);
    assert_eq!(plan(&c).summary.max_unavailable, 7);
    assert!(check_plan(&c, &plan(&c)).is_empty());
}

#[test]
fn max_unavailable_as_a_percentage_of_the_hosts() {
    let hosts = (0..20)
        .map(|i| host(&format!("h{i}"), HostRole::Compute, "1.0", 1000))
        .collect();
    let vms = (0..20).map(|i| vm(&format!("v{i}"), i, 100)).collect();
    let mut c = cluster(hosts, vms);
    c.policy.max_unavailable = MaxUnavailable::Percent(15);
    let p = plan(&c);
    // 15% of 20 hosts, rounded down.
    assert_eq!(p.summary.max_unavailable, 3);
    assert!(check_plan(&c, &p).is_empty(), "{:?}", check_plan(&c, &p));
    c.policy.max_unavailable = MaxUnavailable::Percent(1);
    assert_eq!(plan(&c).summary.max_unavailable, 1);
}

#[test]
fn the_checker_refuses_a_wave_above_the_auto_ceiling() {
    let hosts = (0..10)
        .map(|i| host(&format!("h{i}"), HostRole::Compute, "1.0", 1000))
        .collect();
    let mut c = cluster(hosts, Vec::new());
    c.policy.max_unavailable = MaxUnavailable::Auto;
    let mut p = plan(&c);
    p.waves = vec![Wave {
        kind: WaveKind::Compute,
        hosts: c.host_ids().collect(),
        actions: Vec::new(),
        returns: Vec::new(),
    }];
    p.summary.max_unavailable = 10;
    p.summary.waves = 1;
    let violations = check_plan(&c, &p);
    assert!(
        violations.iter().any(|v| v.contains("allowed 1..=1")),
        "{violations:?}"
    );
}

#[test]
fn no_host_is_filled_past_its_headroom() {
    // h1 can take a's 950 MiB only by filling itself to 95 %.
    let c = cluster(
        vec![
            host("h0", HostRole::Compute, "1.0", 1000),
            host("h1", HostRole::Compute, "2.0", 1000),
        ],
        vec![vm("a", 0, 950)],
    );
    let p = plan(&c);
    assert!(!p.is_feasible(), "{:?}", p.waves);
    let headroom = p.prechecks.iter().find(|c| c.id == "headroom").unwrap();
    assert!(headroom.message.contains("90%"), "{}", headroom.message);
    let mut roomy = c.clone();
    roomy.policy.host_memory_max_fill_percent = 100;
    let p = plan(&roomy);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    // The same plan breaks the headroom of the default policy, and the checker says so.
    let violations = check_plan(&c, &p);
    assert!(
        violations.iter().any(|v| v.contains("headroom")),
        "{violations:?}"
    );
    let mut reserved = roomy.clone();
    reserved.policy.host_memory_reserve_mib = 200;
    assert!(!plan(&reserved).is_feasible());
}

#[test]
fn a_full_host_keeps_its_own_vms_through_its_upgrade() {
    // Local VMs come back on their own host even when it is fuller than the headroom.
    let mut local = vm("local", 0, 950);
    local.local_storage = true;
    let c = cluster(
        vec![
            host("h0", HostRole::Compute, "1.0", 1000),
            host("h1", HostRole::Compute, "1.0", 1000),
        ],
        vec![local],
    );
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert!(check_plan(&c, &p).is_empty(), "{:?}", check_plan(&c, &p));
    let headroom = p.prechecks.iter().find(|c| c.id == "headroom").unwrap();
    assert_eq!(headroom.status, CheckStatus::Warn);
    assert_eq!(headroom.subjects, vec!["h0"]);
}

#[test]
fn pool_of_one_shuts_its_vms_down_when_resolved() {
    let mut c = cluster(
        vec![host("xs01", HostRole::Master, "1.0", 1000)],
        vec![vm("a", 0, 300), vm("b", 0, 200)],
    );
    let p = plan(&c);
    assert!(!p.is_feasible());
    let failure: Vec<_> = p.failed_prechecks().collect();
    assert_eq!(failure.len(), 1, "{failure:?}");
    assert_eq!(failure[0].id, "pool-of-one");
    assert!(failure[0].resolvable);
    assert_eq!(failure[0].subjects, vec!["xs01", "a", "b"]);
    c.policy.auto_resolve = true;
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert_eq!(p.waves.len(), 1);
    assert_eq!(p.summary.shutdowns, 2);
    assert!(p.actions().all(|a| a.kind == ActionKind::Shutdown));
    assert!(p
        .prechecks
        .iter()
        .any(|c| c.id == "pool-of-one" && c.status == CheckStatus::Warn));
    assert!(check_plan(&c, &p).is_empty(), "{:?}", check_plan(&c, &p));
}

/// Found by the property test in drover-sim: the first compute wave (h1, h4) had no VM to move,
/// so vm1 of the second wave waited on old h3 (anti-affinity kept it off h1) and moved twice.
#[test]
fn a_vm_after_the_first_compute_wave_moves_once() {
    let hosts = vec![
        host("h0", HostRole::Compute, "1.0", 16384),
        host("h1", HostRole::Compute, "1.0", 17408),
        host("h3", HostRole::Compute, "1.0", 17408),
        host("h4", HostRole::Compute, "1.0", 16384),
        host("h5", HostRole::Compute, "1.0", 16384),
        host("h6", HostRole::Compute, "1.0", 20480),
    ];
    let mut c = cluster(hosts, Vec::new());
    c.hosts[3].state = HostState::Maintenance;
    let mut vm1 = vm("vm1", 4, 512);
    vm1.anti_affinity = Some("g0".into());
    let mut vm6 = vm("vm6", 0, 512);
    vm6.anti_affinity = Some("g0".into());
    c.vms = vec![
        vm1,
        vm("vm3", 5, 512),
        vm("vm4", 2, 512),
        vm6,
        vm("vm7", 2, 512),
    ];
    c.policy.max_unavailable = MaxUnavailable::Count(2);
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
    let moves = moves_per_vm(&c, &p);
    assert!(moves.iter().all(|m| *m == 1), "{moves:?}");
    // The plan the planner made before: vm1 waits on old h3 in the second wave. The checker
    // reports that second move on its own.
    let migrate = |vm: u32, from: u32, to: u32| Action {
        vm: VmId(vm),
        kind: ActionKind::Migrate,
        from: HostId(from),
        to: Some(HostId(to)),
    };
    let wave = |hosts: Vec<u32>, actions: Vec<Action>| Wave {
        kind: WaveKind::Compute,
        hosts: hosts.into_iter().map(HostId).collect(),
        actions,
        returns: Vec::new(),
    };
    let mut old = p.clone();
    old.waves = vec![
        wave(vec![1, 3], Vec::new()),
        wave(vec![0, 4], vec![migrate(3, 0, 1), migrate(0, 4, 2)]),
        wave(
            vec![5, 2],
            vec![
                migrate(1, 5, 0),
                migrate(0, 2, 0),
                migrate(2, 2, 0),
                migrate(4, 2, 0),
            ],
        ),
    ];
    old.summary.waves = 3;
    old.summary.migrations = 6;
    let violations = check_plan(&c, &old);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("migrate vm1")
            && violations[0].contains("second move for a VM first moved after a compute host"),
        "{violations:?}"
    );
}

#[test]
fn the_checker_reports_a_third_move() {
    let hosts = (0..4)
        .map(|i| host(&format!("h{i}"), HostRole::Compute, "1.0", 1000))
        .collect();
    let c = cluster(hosts, vec![vm("a", 0, 100)]);
    let migrate = |from: u32, to: u32| Action {
        vm: VmId(0),
        kind: ActionKind::Migrate,
        from: HostId(from),
        to: Some(HostId(to)),
    };
    let mut p = plan(&c);
    p.waves = (0..3)
        .map(|index| Wave {
            kind: WaveKind::Compute,
            hosts: vec![HostId(index)],
            actions: vec![migrate(index, index + 1)],
            returns: Vec::new(),
        })
        .chain(std::iter::once(Wave {
            kind: WaveKind::Compute,
            hosts: vec![HostId(3)],
            actions: Vec::new(),
            returns: Vec::new(),
        }))
        .collect();
    p.summary.waves = 4;
    p.summary.migrations = 3;
    let violations = check_plan(&c, &p);
    assert!(
        violations
            .iter()
            .any(|v| v.contains("move number 3 (at most two)")),
        "{violations:?}"
    );
}

#[test]
fn one_host_at_a_time_wins_over_max_unavailable() {
    // Oracle PCA: `pca-admin update compute-node` must never run for two nodes at once.
    let hosts = (0..4)
        .map(|i| host(&format!("cn{i}"), HostRole::Compute, "1.0", 1000))
        .collect();
    let vms = (0..4).map(|i| vm(&format!("v{i}"), i, 100)).collect();
    let mut c = cluster(hosts, vms);
    c.policy.max_unavailable = MaxUnavailable::Count(3);
    assert_eq!(plan(&c).summary.max_unavailable, 3, "without the flag");
    c.policy.one_host_at_a_time = true;
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert_eq!(p.summary.max_unavailable, 1);
    assert_eq!(p.waves.len(), 4);
    assert!(p.waves.iter().all(|wave| wave.hosts.len() == 1));
    c.policy.max_unavailable = MaxUnavailable::Auto;
    let p = plan(&c);
    assert!(p.waves.iter().all(|wave| wave.hosts.len() == 1));
    assert!(p
        .prechecks
        .iter()
        .any(|check| check.id == "capacity" && check.message.contains("one_host_at_a_time")));
}
