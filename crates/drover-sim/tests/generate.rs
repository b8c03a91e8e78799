//! The generator: valid clusters, the Azure memory mix, the requested fractions, determinism, speed.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use drover_core::{Cluster, HostRole, VmState};
use drover_sim::{generate, try_generate, GenerateSpec, SimError, AZURE_2019_MEMORY_MIX};

fn thousand_hosts() -> GenerateSpec {
    GenerateSpec {
        hosts: 1_000,
        masters: 1,
        management_hosts: 2,
        anti_affinity_groups: 400,
        old_versions: vec!["8.0.0".into(), "8.1.0".into()],
        seed: 11,
        ..GenerateSpec::default()
    }
}

/// Every rule a generated cluster promises, with the offending names in the message.
fn assert_valid(cluster: &Cluster) {
    let mut memory = vec![0u64; cluster.hosts.len()];
    let mut vcpus = vec![0u64; cluster.hosts.len()];
    for vm in cluster.vms.iter().filter(|vm| vm.is_running()) {
        memory[vm.host.index()] += vm.memory_mib;
        vcpus[vm.host.index()] += vm.vcpus as u64;
    }
    for id in cluster.host_ids() {
        let host = cluster.host(id);
        assert!(
            memory[id.index()] <= host.memory_mib,
            "{} over memory",
            host.name
        );
        assert!(
            vcpus[id.index()] <= cluster.vcpu_capacity(id),
            "{} over vCPUs",
            host.name
        );
    }
    let host_names: HashSet<&str> = cluster.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        host_names.len(),
        cluster.hosts.len(),
        "duplicate host names"
    );
    let vm_names: HashSet<&str> = cluster.vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(vm_names.len(), cluster.vms.len(), "duplicate VM names");
    let mut group_hosts: HashMap<&str, HashSet<u32>> = HashMap::new();
    for vm in &cluster.vms {
        if let Some(group) = vm.anti_affinity.as_deref() {
            let fresh = group_hosts.entry(group).or_default().insert(vm.host.0);
            assert!(
                fresh,
                "group {group} has two members on one host ({})",
                vm.name
            );
        }
    }
}

#[test]
fn a_thousand_host_cluster_is_valid_and_shaped_as_asked() {
    let spec = thousand_hosts();
    let cluster = generate(&spec);
    assert_valid(&cluster);
    assert_eq!(cluster.hosts.len(), 1_003);
    assert_eq!(cluster.hosts[0].name, "m1");
    assert_eq!(cluster.hosts[0].role, HostRole::Master);
    assert_eq!(cluster.hosts[1].name, "mgmt1");
    assert_eq!(cluster.hosts[3].name, "h00001");
    assert_eq!(cluster.vms[0].name, "vm000001");
    let groups: HashSet<&str> = cluster
        .vms
        .iter()
        .filter_map(|vm| vm.anti_affinity.as_deref())
        .collect();
    assert!(groups.len() >= 390, "{} groups", groups.len());
    let versions: HashSet<String> = cluster
        .hosts
        .iter()
        .map(|h| h.version.to_string())
        .collect();
    assert_eq!(versions.len(), 2, "{versions:?}");
}

#[test]
fn vm_memory_follows_the_azure_2019_mix() {
    let cluster = generate(&thousand_hosts());
    let mut counts = [0usize; AZURE_2019_MEMORY_MIX.len()];
    for vm in &cluster.vms {
        assert!(
            vm.memory_mib >= 512 && vm.memory_mib % 256 == 0,
            "{} MiB",
            vm.memory_mib
        );
        assert!((1..=32).contains(&vm.vcpus));
        let bucket = AZURE_2019_MEMORY_MIX
            .iter()
            .position(|b| vm.memory_mib < b.max_gib * 1024)
            .expect("no VM above the largest bucket");
        counts[bucket] += 1;
    }
    for (bucket, count) in AZURE_2019_MEMORY_MIX.iter().zip(counts) {
        let share = 100.0 * count as f64 / cluster.vms.len() as f64;
        assert!(
            (share - bucket.percent as f64).abs() < 1.5,
            "{}–{} GiB: {share:.2}% of VMs, expected {}%",
            bucket.min_gib,
            bucket.max_gib,
            bucket.percent
        );
    }
}

#[test]
fn fractions_and_utilization_come_out_as_asked() {
    let spec = GenerateSpec {
        local_storage_fraction: 0.1,
        no_tools_fraction: 0.05,
        stopped_fraction: 0.2,
        ..thousand_hosts()
    };
    let cluster = generate(&spec);
    let share = |test: &dyn Fn(&drover_core::Vm) -> bool| {
        cluster.vms.iter().filter(|vm| test(vm)).count() as f64 / cluster.vms.len() as f64
    };
    assert!((share(&|vm| vm.local_storage) - 0.1).abs() < 0.01);
    assert!((share(&|vm| !vm.migratable) - 0.05).abs() < 0.01);
    assert!((share(&|vm| vm.state == VmState::Stopped) - 0.2).abs() < 0.01);
    let running_memory: u64 = cluster
        .vms
        .iter()
        .filter(|vm| vm.is_running())
        .map(|vm| vm.memory_mib)
        .sum();
    let total_memory: u64 = cluster.hosts.iter().map(|h| h.memory_mib).sum();
    let utilization = running_memory as f64 / total_memory as f64;
    assert!(
        (utilization - 0.75).abs() < 0.02,
        "utilization {utilization:.3}"
    );
}

#[test]
fn a_fixed_utilization_fills_every_host_to_within_one_vm() {
    let spec = GenerateSpec {
        hosts: 200,
        utilization_min: 0.75,
        utilization_max: 0.75,
        stopped_fraction: 0.0,
        ..GenerateSpec::default()
    };
    let cluster = generate(&spec);
    let mut memory = vec![0u64; cluster.hosts.len()];
    for vm in &cluster.vms {
        memory[vm.host.index()] += vm.memory_mib;
    }
    let target = 0.75 * spec.host_memory_mib as f64;
    let largest_vm = 128.0 * 1024.0;
    for (host, used) in cluster.hosts.iter().zip(memory) {
        assert!(
            (used as f64 - target).abs() <= largest_vm / 2.0,
            "{} holds {used} MiB, target {target}",
            host.name
        );
    }
}

#[test]
fn the_same_spec_gives_the_same_cluster_and_another_seed_another() {
    let spec = GenerateSpec {
        hosts: 50,
        anti_affinity_groups: 10,
        seed: 3,
        ..GenerateSpec::default()
    };
    assert_eq!(generate(&spec), generate(&spec));
    let other = GenerateSpec {
        seed: 4,
        ..spec.clone()
    };
    assert_ne!(generate(&spec).vms, generate(&other).vms);
}

#[test]
fn tiny_and_degenerate_specs_still_give_valid_clusters() {
    for spec in [
        GenerateSpec {
            hosts: 0,
            ..GenerateSpec::default()
        },
        GenerateSpec {
            hosts: 1,
            anti_affinity_groups: 5,
            ..GenerateSpec::default()
        },
        GenerateSpec {
            utilization_min: 1.0,
            utilization_max: 1.0,
            ..GenerateSpec::default()
        },
        GenerateSpec {
            utilization_min: 0.0,
            utilization_max: 0.0,
            ..GenerateSpec::default()
        },
        GenerateSpec {
            host_memory_mib: 4096,
            host_cpus: 1,
            ..GenerateSpec::default()
        },
        GenerateSpec {
            stopped_fraction: 1.0,
            hosts: 3,
            ..GenerateSpec::default()
        },
    ] {
        assert_valid(&generate(&spec));
    }
}

#[test]
fn an_unparsable_version_is_refused() {
    let spec = GenerateSpec {
        old_versions: vec!["eight".into()],
        ..GenerateSpec::default()
    };
    assert!(matches!(
        try_generate(&spec),
        Err(SimError::InvalidSpec { .. })
    ));
    let spec = GenerateSpec {
        old_versions: Vec::new(),
        ..GenerateSpec::default()
    };
    assert!(matches!(
        try_generate(&spec),
        Err(SimError::InvalidSpec { .. })
    ));
}

#[test]
fn ten_thousand_hosts_generate_quickly() {
    let spec = GenerateSpec {
        hosts: 10_000,
        anti_affinity_groups: 5_000,
        ..GenerateSpec::default()
    };
    let started = Instant::now();
    let cluster = generate(&spec);
    let elapsed = started.elapsed();
    println!(
        "generated {} hosts / {} VMs in {elapsed:?}",
        cluster.hosts.len(),
        cluster.vms.len()
    );
    assert_valid(&cluster);
    assert!(cluster.vms.len() > 300_000, "{} VMs", cluster.vms.len());
}
