//! Property test over small random clusters: every feasible plan passes the independent checker
//! and the simulator, moves every VM that must move, and moves a VM again only when the rules
//! forced it onto a host that is not upgraded yet; every infeasible plan says what blocks it.
//!
//! The cluster is drawn as plain data (`ClusterDraw`) so that proptest shrinks it and prints a
//! short, readable counter-example; the assertion messages add the built cluster in one line per
//! host and VM.

use drover_core::check::{check_plan, moves_per_vm};
use drover_core::planner::{disposition, Disposition};
use drover_core::{
    Cluster, Host, HostId, HostRole, HostState, MaxUnavailable, Plan, Policy, RestartPolicy, Vm,
    VmState, WaveKind,
};
use drover_sim::simulate;
use proptest::prelude::*;

/// Versions hosts may start from; the target is 8.2.1, so some hosts are at or past it.
const VERSIONS: [&str; 6] = ["7.9", "8.0.0", "8.0.0", "8.1", "8.2.1", "9.0"];
const TARGET_VERSION: &str = "8.2.1";

#[derive(Clone, Debug)]
struct HostDraw {
    management: bool,
    version: &'static str,
    state: HostState,
    memory_gib: u64,
    cpus: u32,
}

#[derive(Clone, Copy, Debug)]
enum Guest {
    Tools,
    NoTools { restart_always: bool },
    LocalStorage,
}

#[derive(Clone, Debug)]
struct VmDraw {
    /// Taken modulo the number of hosts.
    host: usize,
    memory_mib: u64,
    vcpus: u32,
    running: bool,
    guest: Guest,
    group: Option<u8>,
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

fn host_draw() -> impl Strategy<Value = HostDraw> {
    let state = prop_oneof![
        8 => Just(HostState::Up),
        1 => Just(HostState::Maintenance),
        1 => Just(HostState::Down),
    ];
    (
        proptest::bool::weighted(0.15),
        proptest::sample::select(&VERSIONS[..]),
        state,
        16u64..=64,
        4u32..=16,
    )
        .prop_map(|(management, version, state, memory_gib, cpus)| HostDraw {
            management,
            version,
            state,
            memory_gib,
            cpus,
        })
}

fn vm_draw() -> impl Strategy<Value = VmDraw> {
    let guest = prop_oneof![
        7 => Just(Guest::Tools),
        3 => any::<bool>().prop_map(|restart_always| Guest::NoTools { restart_always }),
        2 => Just(Guest::LocalStorage),
    ];
    (
        0usize..12,
        2u64..=64,
        1u32..=8,
        proptest::bool::weighted(0.85),
        guest,
        proptest::option::weighted(0.3, 0u8..3),
    )
        .prop_map(|(host, granules, vcpus, running, guest, group)| VmDraw {
            host,
            memory_mib: granules * 256,
            vcpus,
            running,
            guest,
            group,
        })
}

fn cluster_draw() -> impl Strategy<Value = ClusterDraw> {
    let max_unavailable = prop_oneof![
        4 => (1u32..=4).prop_map(MaxUnavailable::Count),
        1 => Just(MaxUnavailable::Auto),
    ];
    (
        proptest::bool::weighted(0.4),
        proptest::collection::vec(host_draw(), 2..=12),
        proptest::collection::vec(vm_draw(), 0..=40),
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

/// Builds the cluster; a running VM that would overfill its host is dropped, so the observed
/// cluster is always within capacity (anti-affinity may already be broken: the planner must cope).
fn build(draw: &ClusterDraw) -> Cluster {
    let hosts: Vec<Host> = draw
        .hosts
        .iter()
        .enumerate()
        .map(|(index, h)| Host {
            name: format!("h{index}"),
            role: match (index, draw.first_host_is_master, h.management) {
                (0, true, _) => HostRole::Master,
                (_, _, true) => HostRole::Management,
                _ => HostRole::Compute,
            },
            version: h.version.parse().expect("listed versions parse"),
            memory_mib: h.memory_gib * 1024,
            cpus: h.cpus,
            state: h.state,
            cordoned: false,
            labels: Default::default(),
        })
        .collect();
    let policy = Policy {
        max_unavailable: draw.max_unavailable,
        auto_resolve: draw.auto_resolve,
        ..Policy::default()
    };
    let mut memory_left: Vec<u64> = hosts.iter().map(|h| h.memory_mib).collect();
    let mut vcpus_left: Vec<u64> = hosts
        .iter()
        .map(|h| (h.cpus as f64 * policy.cpu_overcommit).floor() as u64)
        .collect();
    let mut vms = Vec::new();
    for v in &draw.vms {
        let host = v.host % hosts.len();
        if v.running {
            if v.memory_mib > memory_left[host] || v.vcpus as u64 > vcpus_left[host] {
                continue;
            }
            memory_left[host] -= v.memory_mib;
            vcpus_left[host] -= v.vcpus as u64;
        }
        vms.push(Vm {
            name: format!("vm{}", vms.len()),
            host: HostId(host as u32),
            memory_mib: v.memory_mib,
            vcpus: v.vcpus,
            state: if v.running {
                VmState::Running
            } else {
                VmState::Stopped
            },
            migratable: matches!(v.guest, Guest::Tools),
            local_storage: matches!(v.guest, Guest::LocalStorage),
            unmovable: None,
            restart_policy: match v.guest {
                Guest::NoTools {
                    restart_always: true,
                } => RestartPolicy::Always,
                _ => RestartPolicy::Manual,
            },
            anti_affinity: v.group.map(|g| format!("g{g}")),
            allowed_hosts: None,
        });
    }
    Cluster {
        settings: Vec::new(),
        name: "property".into(),
        target_version: TARGET_VERSION.parse().expect("target parses"),
        policy,
        hosts,
        vms,
    }
}

/// One line per host and VM: what a failing case needs to be reproduced by hand.
fn describe(cluster: &Cluster, plan: &Plan) -> String {
    let mut text = format!(
        "policy: max_unavailable {:?} (resolved {}), auto_resolve {}\n",
        cluster.policy.max_unavailable, plan.summary.max_unavailable, cluster.policy.auto_resolve
    );
    for host in &cluster.hosts {
        text.push_str(&format!(
            "  host {} {:?} {} {:?} {} MiB {} cpus\n",
            host.name, host.role, host.version, host.state, host.memory_mib, host.cpus
        ));
    }
    for vm in &cluster.vms {
        text.push_str(&format!(
            "  vm {} on {} {} MiB {} vCPU {:?} migratable={} local={} {:?} group={:?}\n",
            vm.name,
            cluster.host(vm.host).name,
            vm.memory_mib,
            vm.vcpus,
            vm.state,
            vm.migratable,
            vm.local_storage,
            vm.restart_policy,
            vm.anti_affinity
        ));
    }
    for (index, wave) in plan.waves.iter().enumerate() {
        let actions: Vec<String> = wave
            .actions
            .iter()
            .map(|a| drover_core::planner::describe_action(cluster, a))
            .collect();
        let hosts: Vec<&str> = wave
            .hosts
            .iter()
            .map(|h| cluster.host(*h).name.as_str())
            .collect();
        text.push_str(&format!(
            "  wave {} {hosts:?}: {}\n",
            index + 1,
            actions.join("; ")
        ));
    }
    text
}

// A VM moves again only after it overflowed onto a host that is not upgraded yet. The planner
// allows that only while no compute host runs the target (control-plane waves and the first
// compute wave), and sends a VM that moved once only to upgraded hosts, so: at most two moves,
// and two only for a VM that sat on a control-plane host or in the first compute wave
// (`check_moves_per_vm`). On top, an overflow happens only when no upgraded host can take the VM
// (`check_overflows_were_forced`).

/// The rule of issue 19.10, from the plan's shape alone: no VM moves three times, and a VM moves
/// twice only when it sat on a control-plane host (master, management) or in the first compute wave.
fn check_moves_per_vm(cluster: &Cluster, plan: &Plan) -> Result<(), String> {
    let first_compute_wave = plan
        .waves
        .iter()
        .find(|wave| wave.kind == WaveKind::Compute)
        .map(|wave| wave.hosts.as_slice())
        .unwrap_or_default();
    for (vm, moved) in cluster.vms.iter().zip(moves_per_vm(cluster, plan)) {
        let sat_early = cluster.host(vm.host).role != HostRole::Compute
            || first_compute_wave.contains(&vm.host);
        if moved > 2 || (moved == 2 && !sat_early) {
            return Err(format!(
                "{} moves {moved} times (from {}, {:?})",
                vm.name,
                cluster.host(vm.host).name,
                cluster.host(vm.host).role
            ));
        }
    }
    Ok(())
}

/// Free room per host during a replay of the plan.
struct Room<'a> {
    memory_free_mib: Vec<i64>,
    vcpus_free: Vec<i64>,
    groups_on: Vec<Vec<&'a str>>,
}

impl<'a> Room<'a> {
    fn of(cluster: &'a Cluster) -> Self {
        let mut room = Room {
            // The room the planner may fill: within the headroom of the policy.
            memory_free_mib: cluster
                .host_ids()
                .map(|h| cluster.placement_memory_limit_mib(h) as i64)
                .collect(),
            vcpus_free: cluster
                .host_ids()
                .map(|h| cluster.vcpu_capacity(h) as i64)
                .collect(),
            groups_on: vec![Vec::new(); cluster.hosts.len()],
        };
        for vm in cluster.vms.iter().filter(|vm| vm.is_running()) {
            room.add(vm, vm.host);
        }
        room
    }

    fn add(&mut self, vm: &'a Vm, host: HostId) {
        self.memory_free_mib[host.index()] -= vm.memory_mib as i64;
        self.vcpus_free[host.index()] -= vm.vcpus as i64;
        if let Some(group) = vm.anti_affinity.as_deref() {
            self.groups_on[host.index()].push(group);
        }
    }

    fn remove(&mut self, vm: &'a Vm, host: HostId) {
        self.memory_free_mib[host.index()] += vm.memory_mib as i64;
        self.vcpus_free[host.index()] += vm.vcpus as i64;
        if let Some(group) = vm.anti_affinity.as_deref() {
            let groups = &mut self.groups_on[host.index()];
            if let Some(position) = groups.iter().position(|g| *g == group) {
                groups.swap_remove(position);
            }
        }
    }

    fn takes(&self, vm: &Vm, host: HostId) -> bool {
        self.memory_free_mib[host.index()] >= vm.memory_mib as i64
            && self.vcpus_free[host.index()] >= vm.vcpus as i64
            && vm
                .anti_affinity
                .as_deref()
                .is_none_or(|group| !self.groups_on[host.index()].contains(&group))
    }
}

/// Replays the plan and fails if a VM was sent to a not-yet-upgraded host while an upgraded host
/// (up, not in the wave) could have taken it. Checked at the end of each wave: an upgraded host's
/// room only shrinks during a wave, so room at the end means there was room when the VM was placed.
fn check_overflows_were_forced(cluster: &Cluster, plan: &Plan) -> Result<(), String> {
    let mut room = Room::of(cluster);
    let mut upgraded: Vec<bool> = cluster
        .hosts
        .iter()
        .map(|h| h.version >= cluster.target_version)
        .collect();
    for (number, wave) in plan.waves.iter().enumerate() {
        for action in &wave.actions {
            let vm = cluster.vm(action.vm);
            room.remove(vm, action.from);
            // A shut-down VM comes back on its own host, which the planner keeps counting.
            room.add(vm, action.to.unwrap_or(action.from));
        }
        let receives = |host: HostId| {
            upgraded[host.index()]
                && cluster.host(host).state == HostState::Up
                && !wave.hosts.contains(&host)
        };
        for action in &wave.actions {
            let Some(to) = action.to.filter(|to| !upgraded[to.index()]) else {
                continue;
            };
            let vm = cluster.vm(action.vm);
            if let Some(better) = cluster
                .host_ids()
                .find(|h| receives(*h) && room.takes(vm, *h))
            {
                return Err(format!(
                    "wave {}: {} overflowed onto old host {} although upgraded host {} could take it",
                    number + 1,
                    vm.name,
                    cluster.host(to).name,
                    cluster.host(better).name
                ));
            }
        }
        for host in &wave.hosts {
            upgraded[host.index()] = true;
        }
    }
    Ok(())
}

fn check_feasible_plan(cluster: &Cluster, plan: &Plan, seed: u64) -> Result<(), TestCaseError> {
    let described = || describe(cluster, plan);
    let violations = check_plan(cluster, plan);
    prop_assert!(
        violations.is_empty(),
        "check_plan: {violations:?}\n{}",
        described()
    );
    let report = simulate(cluster, plan, seed);
    prop_assert!(
        report.is_ok(),
        "simulate(seed {seed}): {:?}\n{}",
        report.err(),
        described()
    );
    let report = report.expect("checked just above");
    prop_assert_eq!(report.migrations, plan.summary.migrations);
    prop_assert_eq!(report.restarts, plan.summary.restarts);
    prop_assert_eq!(report.shutdowns, plan.summary.shutdowns);
    let mut upgraded = vec![false; cluster.hosts.len()];
    for host in plan.waves.iter().flat_map(|w| &w.hosts) {
        upgraded[host.index()] = true;
    }
    let moves_bounded = check_moves_per_vm(cluster, plan);
    prop_assert!(
        moves_bounded.is_ok(),
        "{:?}\n{}",
        moves_bounded,
        described()
    );
    let moves = moves_per_vm(cluster, plan);
    let overflows_forced = check_overflows_were_forced(cluster, plan);
    prop_assert!(
        overflows_forced.is_ok(),
        "{:?}\n{}",
        overflows_forced,
        described()
    );
    for (vm, moved) in cluster.vms.iter().zip(moves) {
        let must_move = vm.is_running()
            && upgraded[vm.host.index()]
            && matches!(
                disposition(vm, cluster.policy.auto_resolve),
                Disposition::Migrate | Disposition::Restart
            );
        prop_assert!(
            !must_move || moved >= 1,
            "{} never moved\n{}",
            vm.name,
            described()
        );
    }
    Ok(())
}

/// drover-core's `capacity` precheck reports an N+1 shortfall without naming any host (reported
/// to the core's owners); it is tolerated only when it is the sole failure. Remove this once the
/// core names the host(s) that cannot be emptied.
const UNNAMED_FAILURE_TOLERATED: &str = "capacity";

fn check_infeasible_plan(cluster: &Cluster, plan: &Plan) -> Result<(), TestCaseError> {
    prop_assert!(plan.waves.is_empty(), "an infeasible plan carries waves");
    let named = plan
        .failed_prechecks()
        .any(|check| !check.subjects.is_empty())
        || plan
            .failed_prechecks()
            .all(|check| check.id == UNNAMED_FAILURE_TOLERATED);
    prop_assert!(
        named,
        "no failed precheck names a host or VM: {:?}\n{}",
        plan.failed_prechecks().collect::<Vec<_>>(),
        describe(cluster, plan)
    );
    Ok(())
}

proptest! {
    // The shrunk input and the described cluster are printed on failure; no regression file is
    // written into the source tree.
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_plan_is_safe_and_every_refusal_says_why(draw in cluster_draw()) {
        let cluster = build(&draw);
        let plan = drover_core::plan(&cluster);
        if plan.is_feasible() {
            check_feasible_plan(&cluster, &plan, draw.simulation_seed)?;
        } else {
            check_infeasible_plan(&cluster, &plan)?;
        }
    }
}

proptest! {
    // Moving a VM three times is rare (about one random cluster in a thousand before the planner
    // guaranteed the bound), so this property plans many clusters and simulates none of them.
    #![proptest_config(ProptestConfig {
        cases: 6000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_vm_moves_three_times_and_twice_only_from_the_first_waves(draw in cluster_draw()) {
        let cluster = build(&draw);
        let plan = drover_core::plan(&cluster);
        let bounded = check_moves_per_vm(&cluster, &plan);
        prop_assert!(bounded.is_ok(), "{:?}\n{}", bounded, describe(&cluster, &plan));
        let violations = check_plan(&cluster, &plan);
        prop_assert!(violations.is_empty(), "check_plan: {violations:?}\n{}", describe(&cluster, &plan));
    }
}
