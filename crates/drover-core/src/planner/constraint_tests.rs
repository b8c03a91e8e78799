//! Unit tests of host constraints (`Vm::allowed_hosts`) in the planner and the plan checker, on
//! small hand-built clusters: DRBD pairs, pinned VMs, waves split around a VM's partners.

use super::*;
use crate::check::{check_plan, moves_per_vm};
use crate::model::*;

fn compute(name: &str) -> Host {
    Host {
        name: name.into(),
        role: HostRole::Compute,
        version: "1.0".parse().unwrap(),
        memory_mib: 10_000,
        cpus: 16,
        state: HostState::Up,
        cordoned: false,
        labels: Default::default(),
    }
}

/// A VM on `host` that may run only on `allowed` (host indices).
fn pinned(name: &str, host: u32, memory_mib: u64, allowed: &[u32]) -> Vm {
    let mut allowed_hosts: Vec<HostId> = allowed.iter().copied().map(HostId).collect();
    allowed_hosts.sort();
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
        allowed_hosts: Some(allowed_hosts),
    }
}

fn cluster(host_count: usize, vms: Vec<Vm>, max_unavailable: u32) -> Cluster {
    Cluster {
        name: "t".into(),
        target_version: "2.0".parse().unwrap(),
        policy: Policy {
            max_unavailable: MaxUnavailable::Count(max_unavailable),
            ..Policy::default()
        },
        hosts: (0..host_count).map(|i| compute(&format!("n{i}"))).collect(),
        vms,
        settings: Vec::new(),
    }
}

fn wave_of(plan: &Plan, host: u32) -> usize {
    plan.waves
        .iter()
        .position(|w| w.hosts.contains(&HostId(host)))
        .expect("host is in a wave")
}

#[test]
fn a_drbd_instance_goes_only_to_its_secondary_and_the_pair_is_split() {
    // Every host could take the VM; only n1 is allowed. With all four hosts allowed in one wave,
    // n0 and n1 must still land in different waves.
    let c = cluster(4, vec![pinned("drbd-1", 0, 1000, &[0, 1])], 4);
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
    assert_ne!(wave_of(&p, 0), wave_of(&p, 1));
    for action in p.actions() {
        assert!(
            action.to == Some(HostId(0)) || action.to == Some(HostId(1)),
            "{action:?}"
        );
    }
    let check = p.prechecks.iter().find(|c| c.id == "host-constraints");
    assert_eq!(check.map(|c| c.status), Some(CheckStatus::Pass));
}

#[test]
fn a_ring_of_drbd_instances_is_rolled_with_every_vm_on_its_pair() {
    // n0→n1, n1→n2, …, n5→n0: every host is a primary and a secondary.
    let vms = (0..6)
        .map(|i| pinned(&format!("i{i}"), i, 2000, &[i, (i + 1) % 6]))
        .collect();
    let c = cluster(6, vms, 3);
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
    for i in 0..6u32 {
        assert_ne!(wave_of(&p, i), wave_of(&p, (i + 1) % 6), "pair n{i}");
    }
    assert!(moves_per_vm(&c, &p).iter().all(|moves| *moves <= 2));
}

#[test]
fn a_vm_allowed_only_on_its_own_host_fails_the_precheck_naming_it_and_the_host() {
    let c = cluster(
        3,
        vec![
            pinned("licensed", 1, 1000, &[1]),
            pinned("ok", 0, 1000, &[0, 2]),
        ],
        1,
    );
    let p = plan(&c);
    assert!(!p.is_feasible());
    assert!(p.waves.is_empty());
    let check = p
        .failed_prechecks()
        .find(|c| c.id == "host-constraints")
        .expect("host-constraints fails");
    assert!(
        check.message.contains("licensed on n1"),
        "{}",
        check.message
    );
    assert_eq!(
        check.subjects,
        vec!["licensed".to_string(), "n1".to_string()]
    );
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
}

#[test]
fn a_vm_whose_other_allowed_host_is_down_is_shut_down_when_resolved() {
    let mut c = cluster(3, vec![pinned("pinned", 0, 1000, &[0, 2])], 1);
    c.hosts[2].state = HostState::Down;
    c.policy.auto_resolve = true;
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    let action = p.actions().next().expect("one action");
    assert_eq!(action.kind, ActionKind::Shutdown);
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
}

#[test]
fn a_vm_whose_allowed_secondary_is_old_waits_there_and_moves_back_once() {
    // n1 goes first (it is emptier), so the instance on n2 with secondary n3 is evacuated in a
    // later wave onto the old n3 (its only choice) and moves back to n2 when n3 is upgraded.
    let vms = vec![
        pinned("a", 0, 1000, &[0, 1]),
        pinned("b", 0, 1000, &[0, 1]),
        pinned("c", 2, 1000, &[2, 3]),
        pinned("d", 2, 1000, &[2, 3]),
        pinned("e", 3, 1000, &[2, 3]),
    ];
    let c = cluster(4, vms, 1);
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
    assert!(moves_per_vm(&c, &p).iter().all(|moves| *moves <= 2));
}

#[test]
fn a_host_waiting_for_its_partner_is_deferred_not_failed() {
    // n0's VM fits on n1 only once n1's own VM has gone to n2.
    let vms = vec![
        pinned("big", 0, 5000, &[0, 1]),
        pinned("filler", 1, 5000, &[1, 2]),
    ];
    let c = cluster(3, vms, 1);
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
    assert!(wave_of(&p, 1) < wave_of(&p, 0));
}

#[test]
fn the_checker_refuses_a_move_outside_the_allowed_hosts() {
    let c = cluster(3, vec![pinned("drbd", 0, 1000, &[0, 1])], 1);
    let mut p = plan(&c);
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
    let wave = p
        .waves
        .iter_mut()
        .find(|w| w.hosts.contains(&HostId(0)))
        .unwrap();
    wave.actions[0].to = Some(HostId(2));
    let violations = check_plan(&c, &p);
    assert!(
        violations
            .iter()
            .any(|v| v.contains("destination n2 is not among its allowed hosts (n0, n1)")),
        "{violations:?}"
    );
}

#[test]
fn a_constraint_the_capacity_cannot_meet_fails_naming_the_vm_and_its_hosts() {
    // n0 and n1 may only swap their VMs, and neither has room for the other's (90% fill).
    let vms = vec![
        pinned("big", 0, 5000, &[0, 1]),
        pinned("filler", 1, 5000, &[0, 1]),
    ];
    let c = cluster(3, vms, 1);
    let p = plan(&c);
    assert!(!p.is_feasible());
    let failure = p.failed_prechecks().next().unwrap();
    assert!(
        failure.message.contains("big may run only on n0, n1"),
        "{}",
        failure.message
    );
}

#[test]
fn a_vm_never_waits_on_an_old_host_it_could_not_leave_again() {
    // vm1 may go to n7 (old) only if it could leave n7 for its upgrade later: its other allowed
    // hosts n1 and n4 are in maintenance, so it must not. It then has nowhere to go at all.
    let mut c = cluster(
        10,
        vec![
            pinned("vm0", 7, 512, &[7, 8]),
            pinned("vm1", 1, 512, &[1, 7, 4]),
        ],
        1,
    );
    c.hosts[1].state = HostState::Maintenance;
    c.hosts[4].state = HostState::Maintenance;
    let p = plan(&c);
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
    if p.is_feasible() {
        let vm1_moves = p.actions().filter(|a| a.vm == VmId(1)).count();
        assert_eq!(vm1_moves, 1, "{:?}", p.waves);
    } else {
        assert!(p
            .failed_prechecks()
            .any(|c| c.subjects.contains(&"vm1".to_string())));
    }
}
