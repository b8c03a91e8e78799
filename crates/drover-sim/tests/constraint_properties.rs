//! Property test of host constraints (`Vm::allowed_hosts`) over small random clusters: DRBD-like
//! pairs, pinned VMs and wider allowed sets. Every feasible plan passes the independent checker
//! (which refuses any VM placed outside its allowed hosts) and the simulator; no VM moves three
//! times, a VM without a constraint moves twice only when it sat on a control-plane host or in
//! the first compute wave (issue 19.10), and a constrained VM moves twice only after its first
//! move took it to a host not yet upgraded; every infeasible plan names what blocks it. On
//! Ganeti-like mostly-DRBD clusters every return goes back to the upgraded host the VM left in
//! its wave, from a host not upgraded yet, and the simulator runs it.

use drover_core::check::{check_plan, moves_per_vm};
use drover_core::{
    Cluster, Host, HostId, HostRole, HostState, MaxUnavailable, Plan, Policy, RestartPolicy, Vm,
    VmState, WaveKind,
};
use drover_sim::simulate;
use proptest::prelude::*;

const VERSIONS: [&str; 4] = ["8.0.0", "8.0.0", "8.1", "8.2.1"];

#[derive(Clone, Debug)]
struct HostDraw {
    version: &'static str,
    state: HostState,
    memory_gib: u64,
}

#[derive(Clone, Debug)]
enum Constraint {
    None,
    /// Its own host only.
    Pinned,
    /// Its own host and the host `offset` places further (a DRBD primary and secondary).
    Pair {
        offset: usize,
    },
    /// Its own host and two others.
    Three {
        first: usize,
        second: usize,
    },
}

#[derive(Clone, Debug)]
struct VmDraw {
    host: usize,
    memory_mib: u64,
    migratable: bool,
    constraint: Constraint,
}

#[derive(Clone, Debug)]
struct ClusterDraw {
    first_host_is_master: bool,
    hosts: Vec<HostDraw>,
    vms: Vec<VmDraw>,
    max_unavailable: MaxUnavailable,
    auto_resolve: bool,
    simulation_seed: u64,
}

fn cluster_draw() -> impl Strategy<Value = ClusterDraw> {
    let host = (
        proptest::sample::select(&VERSIONS[..]),
        prop_oneof![
            12 => Just(HostState::Up),
            1 => Just(HostState::Maintenance),
            1 => Just(HostState::Down),
        ],
        16u64..=64,
    )
        .prop_map(|(version, state, memory_gib)| HostDraw {
            version,
            state,
            memory_gib,
        });
    let constraint = prop_oneof![
        3 => Just(Constraint::None),
        1 => Just(Constraint::Pinned),
        6 => (1usize..12).prop_map(|offset| Constraint::Pair { offset }),
        2 => (1usize..12, 1usize..12)
            .prop_map(|(first, second)| Constraint::Three { first, second }),
    ];
    let vm = (
        0usize..12,
        2u64..=48,
        proptest::bool::weighted(0.9),
        constraint,
    )
        .prop_map(|(host, granules, migratable, constraint)| VmDraw {
            host,
            memory_mib: granules * 256,
            migratable,
            constraint,
        });
    let max_unavailable = prop_oneof![
        4 => (1u32..=4).prop_map(MaxUnavailable::Count),
        1 => Just(MaxUnavailable::Auto),
    ];
    (
        proptest::bool::weighted(0.3),
        proptest::collection::vec(host, 2..=12),
        proptest::collection::vec(vm, 0..=40),
        max_unavailable,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(first_host_is_master, hosts, vms, max_unavailable, auto_resolve, simulation_seed)| {
                ClusterDraw {
                    first_host_is_master,
                    hosts,
                    vms,
                    max_unavailable,
                    auto_resolve,
                    simulation_seed,
                }
            },
        )
}

/// Builds the cluster; a VM that would overfill its host is dropped.
fn build(draw: &ClusterDraw) -> Cluster {
    let hosts: Vec<Host> = draw
        .hosts
        .iter()
        .enumerate()
        .map(|(index, h)| Host {
            name: format!("h{index}"),
            role: if index == 0 && draw.first_host_is_master {
                HostRole::Master
            } else {
                HostRole::Compute
            },
            version: h.version.parse().expect("listed versions parse"),
            memory_mib: h.memory_gib * 1024,
            cpus: 64,
            state: h.state,
            cordoned: false,
            labels: Default::default(),
        })
        .collect();
    let host_count = hosts.len();
    let mut memory_left: Vec<u64> = hosts.iter().map(|h| h.memory_mib).collect();
    let mut vms = Vec::new();
    for v in &draw.vms {
        let host = v.host % host_count;
        if v.memory_mib > memory_left[host] {
            continue;
        }
        memory_left[host] -= v.memory_mib;
        let others = |offset: usize| (host + offset) % host_count;
        let mut allowed: Option<Vec<HostId>> = match v.constraint {
            Constraint::None => None,
            Constraint::Pinned => Some(vec![host]),
            Constraint::Pair { offset } => Some(vec![host, others(offset)]),
            Constraint::Three { first, second } => Some(vec![host, others(first), others(second)]),
        }
        .map(|hosts| hosts.into_iter().map(|h| HostId(h as u32)).collect());
        if let Some(allowed) = allowed.as_mut() {
            allowed.sort();
            allowed.dedup();
        }
        vms.push(Vm {
            name: format!("vm{}", vms.len()),
            host: HostId(host as u32),
            memory_mib: v.memory_mib,
            vcpus: 1,
            state: VmState::Running,
            migratable: v.migratable,
            local_storage: false,
            unmovable: None,
            restart_policy: RestartPolicy::Manual,
            anti_affinity: None,
            allowed_hosts: allowed,
        });
    }
    Cluster {
        name: "constraints".into(),
        target_version: "8.2.1".parse().expect("target parses"),
        policy: Policy {
            max_unavailable: draw.max_unavailable,
            auto_resolve: draw.auto_resolve,
            ..Policy::default()
        },
        hosts,
        vms,
        settings: Vec::new(),
    }
}

fn describe(cluster: &Cluster, plan: &Plan) -> String {
    let mut text = format!(
        "policy: max_unavailable {:?} (resolved {}), auto_resolve {}\n",
        cluster.policy.max_unavailable, plan.summary.max_unavailable, cluster.policy.auto_resolve
    );
    for host in &cluster.hosts {
        text.push_str(&format!(
            "  host {} {:?} {} {:?} {} MiB\n",
            host.name, host.role, host.version, host.state, host.memory_mib
        ));
    }
    for vm in &cluster.vms {
        let allowed = vm.allowed_hosts.as_ref().map(|allowed| {
            allowed
                .iter()
                .map(|h| cluster.host(*h).name.clone())
                .collect::<Vec<_>>()
        });
        text.push_str(&format!(
            "  vm {} on {} {} MiB migratable={} allowed={allowed:?}\n",
            vm.name,
            cluster.host(vm.host).name,
            vm.memory_mib,
            vm.migratable
        ));
    }
    for (index, wave) in plan.waves.iter().enumerate() {
        let actions: Vec<String> = wave
            .actions
            .iter()
            .map(|a| drover_core::planner::describe_action(cluster, a))
            .collect();
        text.push_str(&format!("  wave {}: {}\n", index + 1, actions.join("; ")));
        if !wave.returns.is_empty() {
            let returns: Vec<String> = wave
                .returns
                .iter()
                .map(|a| drover_core::planner::describe_action(cluster, a))
                .collect();
            text.push_str(&format!("    returns: {}\n", returns.join("; ")));
        }
    }
    for check in plan.failed_prechecks() {
        text.push_str(&format!("  failed {}: {}\n", check.id, check.message));
    }
    text
}

/// Issue 19.10 for VMs without a constraint; for a constrained VM at most two moves, the second
/// only after its first move went to a host below the target (its allowed hosts were all old).
fn check_moves(cluster: &Cluster, plan: &Plan) -> Result<(), String> {
    let first_compute_wave = plan
        .waves
        .iter()
        .find(|wave| wave.kind == WaveKind::Compute)
        .map(|wave| wave.hosts.as_slice())
        .unwrap_or_default();
    let mut first_destination_was_old = vec![None; cluster.vms.len()];
    let mut upgraded: Vec<bool> = cluster
        .hosts
        .iter()
        .map(|h| h.version >= cluster.target_version)
        .collect();
    for wave in &plan.waves {
        for action in &wave.actions {
            if let Some(to) = action.to {
                first_destination_was_old[action.vm.index()].get_or_insert(!upgraded[to.index()]);
            }
        }
        for host in &wave.hosts {
            upgraded[host.index()] = true;
        }
    }
    for ((index, vm), moved) in cluster
        .vms
        .iter()
        .enumerate()
        .zip(moves_per_vm(cluster, plan))
    {
        let sat_early = cluster.host(vm.host).role != HostRole::Compute
            || first_compute_wave.contains(&vm.host);
        let forced_onto_old_host =
            vm.allowed_hosts.is_some() && first_destination_was_old[index] == Some(true);
        if moved > 2 || (moved == 2 && !sat_early && !forced_onto_old_host) {
            return Err(format!("{} moves {moved} times", vm.name));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1500,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_plan_keeps_vms_on_their_allowed_hosts(draw in cluster_draw()) {
        let cluster = build(&draw);
        let plan = drover_core::plan(&cluster);
        let violations = check_plan(&cluster, &plan);
        prop_assert!(violations.is_empty(), "check_plan: {violations:?}\n{}", describe(&cluster, &plan));
        let moves = check_moves(&cluster, &plan);
        prop_assert!(moves.is_ok(), "{:?}\n{}", moves, describe(&cluster, &plan));
        if plan.is_feasible() {
            let report = simulate(&cluster, &plan, draw.simulation_seed);
            prop_assert!(report.is_ok(), "simulate: {:?}\n{}", report.err(), describe(&cluster, &plan));
        } else {
            prop_assert!(plan.waves.is_empty());
            let named = plan.failed_prechecks().any(|check| !check.subjects.is_empty())
                || plan.failed_prechecks().all(|check| check.id == "capacity");
            prop_assert!(named, "no failed precheck names a host or VM\n{}", describe(&cluster, &plan));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// A cluster of DRBD pairs only, with room to spare, always has a plan.
    #[test]
    fn a_drbd_cluster_with_room_always_has_a_plan(
        host_count in 2usize..=10,
        offsets in proptest::collection::vec(1usize..10, 1..=30),
        max_unavailable in 1u32..=5,
    ) {
        let hosts = (0..host_count).map(|_| HostDraw {
            version: "8.0.0",
            state: HostState::Up,
            memory_gib: 64,
        }).collect();
        let vms = offsets.iter().enumerate().map(|(index, offset)| VmDraw {
            host: index,
            memory_mib: 1024,
            migratable: true,
            constraint: Constraint::Pair { offset: 1 + offset % (host_count - 1) },
        }).collect();
        let draw = ClusterDraw {
            first_host_is_master: false,
            hosts,
            vms,
            max_unavailable: MaxUnavailable::Count(max_unavailable),
            auto_resolve: false,
            simulation_seed: 7,
        };
        let cluster = build(&draw);
        let plan = drover_core::plan(&cluster);
        prop_assert!(plan.is_feasible(), "{}", describe(&cluster, &plan));
        prop_assert!(check_plan(&cluster, &plan).is_empty(), "{}", describe(&cluster, &plan));
    }
}

/// Every return of `plan` brings a VM back to the host it left in the same wave, which that wave
/// upgraded, from a host not upgraded yet (outside this and every earlier wave).
fn check_returns(cluster: &Cluster, plan: &Plan) -> Result<(), String> {
    let mut upgraded: Vec<bool> = cluster
        .hosts
        .iter()
        .map(|h| h.version >= cluster.target_version)
        .collect();
    for (index, wave) in plan.waves.iter().enumerate() {
        for host in &wave.hosts {
            upgraded[host.index()] = true;
        }
        for back in &wave.returns {
            let name = &cluster.vm(back.vm).name;
            let home = back.to.ok_or(format!(
                "wave {}: return of {name} has no destination",
                index + 1
            ))?;
            let left_home = wave
                .actions
                .iter()
                .any(|out| out.vm == back.vm && out.from == home && out.to == Some(back.from));
            if !left_home || !wave.hosts.contains(&home) {
                return Err(format!(
                    "wave {}: {name} returns to {home:?}, not the host it left",
                    index + 1
                ));
            }
            if upgraded[back.from.index()] {
                return Err(format!(
                    "wave {}: {name} returns from an upgraded host",
                    index + 1
                ));
            }
            if cluster.vm(back.vm).allowed_hosts.is_none() {
                return Err(format!(
                    "wave {}: {name} has no host constraint but returns",
                    index + 1
                ));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Ganeti-like clusters, mostly DRBD, filled up to 70 %: every plan passes the checker and
    /// the simulator (which runs the returns), every return lands on the upgraded home host it
    /// left in its wave, from a host not upgraded yet, and no VM moves more than twice.
    #[test]
    fn drbd_clusters_with_returns_pass_the_checker_and_the_simulator(
        nodes in 3usize..=24,
        instances_per_node in 2usize..=12,
        drbd_percent in 50u32..=100,
        utilization_percent in 20u32..=70,
        seed in any::<u64>(),
    ) {
        let ganeti = drover_sim::generate_ganeti(&drover_sim::GanetiSpec {
            nodes,
            instances_per_node,
            drbd_fraction: drbd_percent as f64 / 100.0,
            utilization: utilization_percent as f64 / 100.0,
            seed,
        });
        let cluster = ganeti.to_cluster();
        let plan = drover_core::plan(&cluster);
        let violations = check_plan(&cluster, &plan);
        prop_assert!(violations.is_empty(), "check_plan: {violations:?}\n{}", describe(&cluster, &plan));
        let returns = check_returns(&cluster, &plan);
        prop_assert!(returns.is_ok(), "{:?}\n{}", returns, describe(&cluster, &plan));
        prop_assert!(moves_per_vm(&cluster, &plan).iter().all(|moves| *moves <= 2));
        prop_assert_eq!(plan.summary.returns, plan.returns().count());
        if plan.is_feasible() {
            let report = simulate(&cluster, &plan, seed);
            prop_assert!(report.is_ok(), "simulate: {:?}\n{}", report.err(), describe(&cluster, &plan));
            prop_assert_eq!(report.unwrap().returns, plan.summary.returns);
        }
    }
}
