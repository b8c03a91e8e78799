//! `Execution::with_plan` (a reviewed plan given at the start) and `Plan::with_waves`: a plan
//! the independent checker accepts is the run's plan; one it refuses is replaced by a fresh
//! plan, so a bad plan document can never drive a run.

use drover_core::execution::Execution;
use drover_core::model::*;
use drover_core::{plan, Plan};

fn host(name: &str, role: HostRole) -> Host {
    Host {
        name: name.into(),
        role,
        version: "1.0".parse().unwrap(),
        memory_mib: 8192,
        cpus: 4,
        state: HostState::Up,
        cordoned: false,
        labels: Default::default(),
    }
}

fn vm(name: &str, host: u32) -> Vm {
    Vm {
        name: name.into(),
        host: HostId(host),
        memory_mib: 1024,
        vcpus: 1,
        state: VmState::Running,
        migratable: true,
        local_storage: false,
        unmovable: None,
        restart_policy: RestartPolicy::Manual,
        anti_affinity: None,
        allowed_hosts: None,
    }
}

fn cluster() -> Cluster {
    Cluster {
        settings: Vec::new(),
        name: "c".into(),
        target_version: "2.0".parse().unwrap(),
        policy: Policy::default(),
        hosts: vec![
            host("m", HostRole::Master),
            host("a", HostRole::Compute),
            host("b", HostRole::Compute),
        ],
        vms: vec![vm("v0", 0), vm("v1", 1), vm("v2", 2)],
    }
}

#[test]
fn a_plan_the_checker_accepts_is_the_runs_plan() {
    let cluster = cluster();
    let given = plan(&cluster);
    let execution = Execution::with_plan(cluster, given.clone(), 0);
    assert_eq!(execution.initial_plan(), &given);
    assert!(execution.follows_given_plan());
}

#[test]
fn a_plan_the_checker_refuses_is_replaced_by_a_fresh_one() {
    let cluster = cluster();
    let fresh = plan(&cluster);
    // Every host in one wave: more than max_unavailable (1) down at once, VMs with nowhere to go.
    let mut one_wave = fresh.waves[0].clone();
    for wave in &fresh.waves[1..] {
        one_wave.hosts.extend(wave.hosts.iter().copied());
        one_wave.actions.extend(wave.actions.iter().copied());
    }
    let unsafe_plan: Plan = fresh.with_waves(vec![one_wave]);
    assert!(!drover_core::check::check_plan(&cluster, &unsafe_plan).is_empty());
    let execution = Execution::with_plan(cluster, unsafe_plan, 0);
    assert_eq!(execution.initial_plan(), &fresh);
    assert!(!execution.follows_given_plan());
}

#[test]
fn with_waves_recounts_the_summary() {
    let cluster = cluster();
    let fresh = plan(&cluster);
    assert_eq!(fresh.with_waves(fresh.waves.clone()), fresh);
    let first_only = fresh.with_waves(fresh.waves[..1].to_vec());
    assert_eq!(first_only.summary.waves, 1);
    assert_eq!(
        first_only.summary.migrations,
        fresh.waves[0].actions.len(),
        "{first_only:?}"
    );
    assert_eq!(
        first_only.summary.hosts_to_upgrade,
        fresh.waves[0].hosts.len()
    );
}
