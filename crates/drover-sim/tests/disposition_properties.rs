//! Property test over small random clusters whose unmovable VMs ask `unmovable:` suspend, shelve,
//! restart or shutdown: every plan passes the checker and the simulator, the simulator's counts
//! match the plan's, a suspended VM is resumed on the host it was suspended on after that host's
//! upgrade (its downtime covers the upgrade), and a shelved VM comes back on another host.

use drover_core::check::check_plan;
use drover_core::{
    ActionKind, Cluster, Host, HostRole, HostState, Policy, RestartPolicy, Unmovable, Vm, VmId,
    VmState,
};
use drover_sim::simulate;
use proptest::prelude::*;

fn host(index: usize) -> Host {
    Host {
        name: format!("h{index}"),
        role: HostRole::Compute,
        version: "1.0".parse().unwrap(),
        memory_mib: 65536,
        cpus: 64,
        state: HostState::Up,
        cordoned: false,
        labels: Default::default(),
    }
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
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn plans_with_suspends_and_shelves_simulate_cleanly(
        hosts in 2usize..6,
        vms in proptest::collection::vec((0usize..6, 256u64..2048, choice(), any::<bool>()), 1..20),
        seed in 0u64..4,
    ) {
        let vm_list: Vec<Vm> = vms
            .iter()
            .enumerate()
            .map(|(i, (on, memory, unmovable, local))| Vm {
                name: format!("v{i}"),
                host: drover_core::HostId((on % hosts) as u32),
                memory_mib: *memory,
                vcpus: 1,
                state: VmState::Running,
                migratable: unmovable.is_none(),
                local_storage: *local && unmovable.is_some(),
                unmovable: *unmovable,
                restart_policy: RestartPolicy::Manual,
                anti_affinity: None,
                allowed_hosts: None,
            })
            .collect();
        let cluster = Cluster {
            settings: Vec::new(),
            name: "p".into(),
            target_version: "2.0".parse().unwrap(),
            policy: Policy::default(),
            hosts: (0..hosts).map(host).collect(),
            vms: vm_list,
        };
        let plan = drover_core::plan(&cluster);
        prop_assert!(plan.is_feasible(), "{:?}", plan.prechecks);
        prop_assert_eq!(check_plan(&cluster, &plan), Vec::<String>::new());
        let report = simulate(&cluster, &plan, seed);
        prop_assert!(report.is_ok(), "{:?}", report.as_ref().err());
        let report = report.unwrap();
        prop_assert_eq!(report.suspends, plan.summary.suspends);
        prop_assert_eq!(report.shelves, plan.summary.shelves);
        prop_assert_eq!(report.restarts, plan.summary.restarts);
        prop_assert_eq!(report.shutdowns, plan.summary.shutdowns);
        let upgrade_secs = cluster.policy.upgrade_duration_secs;
        for event in &report.downtime {
            let action = plan
                .actions()
                .find(|a| a.vm == event.vm && a.kind == event.kind)
                .expect("every downtime has its action");
            match event.kind {
                ActionKind::Suspend => {
                    prop_assert!(action.to.is_none());
                    // Down through its host's upgrade (jitter is at most 10%).
                    prop_assert!(event.duration_secs() * 10 >= upgrade_secs * 9);
                }
                ActionKind::Shelve => {
                    prop_assert!(action.to.is_some_and(|to| to != action.from));
                }
                _ => {}
            }
        }
        let suspended: Vec<VmId> = plan
            .actions()
            .filter(|a| a.kind == ActionKind::Suspend)
            .map(|a| a.vm)
            .collect();
        prop_assert_eq!(
            report.downtime.iter().filter(|d| d.kind == ActionKind::Suspend).count(),
            suspended.len()
        );
    }
}
