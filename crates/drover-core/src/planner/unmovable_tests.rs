//! The planner and the plan checker on VMs that cannot live-migrate and carry `unmovable:`
//! (suspend, shelve, restart, shutdown), and on VMs that can, which the key never touches.

use super::*;
use crate::check::check_plan;
use crate::model::*;
use proptest::prelude::*;

fn host(name: &str, memory_mib: u64) -> Host {
    Host {
        name: name.into(),
        role: HostRole::Compute,
        version: "1.0".parse().unwrap(),
        memory_mib,
        cpus: 16,
        state: HostState::Up,
        cordoned: false,
        labels: Default::default(),
    }
}

fn vm(name: &str, host: u32, memory_mib: u64, unmovable: Option<Unmovable>) -> Vm {
    Vm {
        name: name.into(),
        host: HostId(host),
        memory_mib,
        vcpus: 1,
        state: VmState::Running,
        migratable: unmovable.is_none(),
        local_storage: false,
        unmovable,
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

fn kind_of(plan: &Plan, name: &str, c: &Cluster) -> Vec<(ActionKind, Option<HostId>)> {
    plan.actions()
        .filter(|a| c.vm(a.vm).name == name)
        .map(|a| (a.kind, a.to))
        .collect()
}

#[test]
fn suspend_stays_on_its_host_and_shelve_goes_to_an_upgraded_host() {
    let c = cluster(
        vec![host("h0", 4096), host("h1", 4096)],
        vec![
            vm("mem", 0, 512, Some(Unmovable::Suspend)),
            vm("shelf", 0, 512, Some(Unmovable::Shelve)),
            vm("live", 0, 512, None),
        ],
    );
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert_eq!(kind_of(&p, "mem", &c), vec![(ActionKind::Suspend, None)]);
    assert_eq!(
        kind_of(&p, "shelf", &c),
        vec![(ActionKind::Shelve, Some(HostId(1)))]
    );
    assert_eq!(
        kind_of(&p, "live", &c),
        vec![(ActionKind::Migrate, Some(HostId(1)))]
    );
    assert_eq!((p.summary.suspends, p.summary.shelves), (1, 1));
    // Migrations first, then the shelve, then the suspend right before maintenance.
    let order: Vec<ActionKind> = p.waves[1].actions.iter().map(|a| a.kind).collect();
    assert_eq!(
        order,
        vec![ActionKind::Migrate, ActionKind::Shelve, ActionKind::Suspend]
    );
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
}

#[test]
fn the_key_needs_no_auto_resolve_and_restart_or_shutdown_can_be_asked_for() {
    let c = cluster(
        vec![host("h0", 4096), host("h1", 4096)],
        vec![
            vm("again", 0, 512, Some(Unmovable::Restart)),
            vm("off", 0, 512, Some(Unmovable::Shutdown)),
        ],
    );
    assert!(!c.policy.auto_resolve);
    let p = plan(&c);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert_eq!(
        kind_of(&p, "again", &c),
        vec![(ActionKind::Restart, Some(HostId(1)))]
    );
    assert_eq!(kind_of(&p, "off", &c), vec![(ActionKind::Shutdown, None)]);
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
}

#[test]
fn a_migratable_vm_ignores_the_key_and_local_storage_never_restarts_elsewhere() {
    let mut migratable = vm("live", 0, 512, Some(Unmovable::Suspend));
    migratable.migratable = true;
    let mut local = vm("local", 0, 512, Some(Unmovable::Restart));
    local.local_storage = true;
    let mut local_suspend = vm("local-mem", 0, 512, Some(Unmovable::Suspend));
    local_suspend.local_storage = true;
    local_suspend.migratable = true;
    let c = cluster(
        vec![host("h0", 4096), host("h1", 4096)],
        vec![migratable, local, local_suspend],
    );
    let p = plan(&c);
    assert_eq!(
        kind_of(&p, "live", &c),
        vec![(ActionKind::Migrate, Some(HostId(1)))]
    );
    assert_eq!(kind_of(&p, "local", &c), vec![(ActionKind::Shutdown, None)]);
    assert_eq!(
        kind_of(&p, "local-mem", &c),
        vec![(ActionKind::Suspend, None)]
    );
    assert_eq!(check_plan(&c, &p), Vec::<String>::new());
}

#[test]
fn the_checker_refuses_a_suspend_or_shelve_nobody_asked_for() {
    let c = cluster(
        vec![host("h0", 4096), host("h1", 4096)],
        vec![
            vm("live", 0, 512, None),
            vm("off", 0, 512, Some(Unmovable::Shutdown)),
        ],
    );
    let p = plan(&c);
    let mut waves = p.waves.clone();
    for action in waves.iter_mut().flat_map(|w| w.actions.iter_mut()) {
        match action.kind {
            ActionKind::Migrate => action.kind = ActionKind::Shelve,
            ActionKind::Shutdown => action.kind = ActionKind::Suspend,
            _ => {}
        }
    }
    let forged = p.with_waves(waves);
    let violations = check_plan(&c, &forged);
    assert!(
        violations
            .iter()
            .filter(|v| v.contains("action kind does not suit this VM"))
            .count()
            >= 2,
        "{violations:?}"
    );
}

#[test]
fn a_shelve_in_a_pool_of_one_is_blocked_without_auto_resolve() {
    let c = cluster(
        vec![host("h0", 4096)],
        vec![vm("shelf", 0, 512, Some(Unmovable::Shelve))],
    );
    assert!(!plan(&c).is_feasible());
    let mut resolved = c.clone();
    resolved.policy.auto_resolve = true;
    let p = plan(&resolved);
    assert!(p.is_feasible(), "{:?}", p.prechecks);
    assert_eq!(
        kind_of(&p, "shelf", &resolved),
        vec![(ActionKind::Shutdown, None)]
    );
}

fn choice() -> impl Strategy<Value = Option<Unmovable>> {
    prop_oneof![
        Just(None),
        Just(Some(Unmovable::Suspend)),
        Just(Some(Unmovable::Shelve)),
        Just(Some(Unmovable::Restart)),
        Just(Some(Unmovable::Shutdown)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any mix of dispositions plans into waves the checker accepts, each VM gets exactly the
    /// kind its key asks for (migratable VMs always migrate), and the summary counts them.
    #[test]
    fn every_plan_with_dispositions_passes_the_checker(
        hosts in 2usize..6,
        vms in proptest::collection::vec((0u32..6, 128u64..1024, choice(), any::<bool>()), 1..24),
    ) {
        // Hosts large enough that one takes every VM: capacity is not what this property is about.
        let host_list = (0..hosts).map(|i| host(&format!("h{i}"), 65536)).collect();
        let vm_list = vms
            .iter()
            .enumerate()
            .map(|(i, (on, memory, unmovable, migratable))| {
                let mut v = vm(&format!("v{i}"), on % hosts as u32, *memory, *unmovable);
                v.migratable = *migratable || unmovable.is_none();
                v
            })
            .collect();
        let c = cluster(host_list, vm_list);
        let p = plan(&c);
        prop_assert!(p.is_feasible(), "{:?}", p.prechecks);
        prop_assert_eq!(check_plan(&c, &p), Vec::<String>::new());
        for action in p.actions() {
            let spec = c.vm(action.vm);
            let expected = match (spec.migratable, spec.unmovable) {
                (true, _) => ActionKind::Migrate,
                (false, Some(Unmovable::Suspend)) => ActionKind::Suspend,
                (false, Some(Unmovable::Shelve)) => ActionKind::Shelve,
                (false, Some(Unmovable::Restart)) => ActionKind::Restart,
                (false, Some(Unmovable::Shutdown)) => ActionKind::Shutdown,
                (false, None) => unreachable!("unmovable VMs carry a key here"),
            };
            prop_assert_eq!(action.kind, expected);
            prop_assert_eq!(action.to.is_none(), action.kind.stays_on_own_host());
        }
        let count = |kind| p.actions().filter(|a| a.kind == kind).count();
        prop_assert_eq!(p.summary.suspends, count(ActionKind::Suspend));
        prop_assert_eq!(p.summary.shelves, count(ActionKind::Shelve));
    }
}
