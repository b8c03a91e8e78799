//! A seed's scenario: a generated cluster, policy variations and a fault schedule, all drawn
//! from one ChaCha8 stream so that a seed always means the same test.

use drover_core::{
    ApprovalMode, Cluster, HostId, MaintenanceWindow, MaxUnavailable, PlatformSetting, SettingKind,
    Unmovable, UpgradeMode,
};
use drover_sim::driver::{Fault, FaultKind, RandomFaults, SlowStep};
use drover_sim::GenerateSpec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct Scenario {
    pub cluster: Cluster,
    pub faults: Vec<Fault>,
    pub random_faults: RandomFaults,
    /// The dice for everything decided during the run (crash points, operator choices).
    pub rng: ChaCha8Rng,
}

pub fn scenario(seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let spec = GenerateSpec {
        hosts: rng.random_range(3..=9),
        masters: rng.random_range(0..=1),
        management_hosts: rng.random_range(0..=1),
        utilization_min: 0.2,
        utilization_max: rng.random_range(0.3..0.6),
        host_memory_mib: 65_536,
        host_cpus: 16,
        local_storage_fraction: 0.08,
        no_tools_fraction: 0.08,
        stopped_fraction: 0.1,
        anti_affinity_groups: rng.random_range(0..=2),
        old_versions: vec!["1.0".into(), "1.1".into()],
        target_version: "2.0".into(),
        max_unavailable: MaxUnavailable::Count(rng.random_range(1..=3)),
        seed,
    };
    let mut cluster = drover_sim::generate(&spec);
    let policy = &mut cluster.policy;
    if rng.random_bool(0.15) {
        policy.mode = UpgradeMode::Manual;
    }
    if rng.random_bool(0.15) {
        policy.approval = ApprovalMode::Manual;
    }
    policy.max_step_attempts = rng.random_range(1..=3);
    policy.migration_timeout_secs = 600;
    let mut faults = faults(&mut rng, &cluster);
    compatibility_raise(seed, &mut cluster, &mut faults);
    blocking_settings(seed, &mut cluster, &mut faults);
    host_constraints(seed, &mut cluster);
    drbd_pairs(seed, &mut cluster);
    dispositions(seed, &mut cluster);
    maintenance_windows(seed, &mut cluster);
    let random_faults = if rng.random_bool(0.3) {
        RandomFaults {
            migration_failure: 0.05,
            upgrade_failure: 0.05,
            shutdown_ignored: 0.2,
            host_never_returns: 0.0,
        }
    } else {
        RandomFaults::default()
    };
    Scenario {
        cluster,
        faults,
        random_faults,
        rng,
    }
}

/// Some seeds raise the cluster compatibility level after the last host, half of those on a
/// platform that fails the first raises (sometimes more often than a step may be tried, so the
/// run halts on it). Drawn from a stream of its own, so every other choice of a seed stays what
/// it was before the raise existed.
fn compatibility_raise(seed: u64, cluster: &mut Cluster, faults: &mut Vec<Fault>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    if !rng.random_bool(0.4) {
        return;
    }
    cluster.policy.raise_compatibility_level_to = Some(cluster.target_version.to_string());
    if rng.random_bool(0.5) {
        let times = rng.random_range(1..=4);
        faults.push(Fault::new(FaultKind::CompatibilityLevelFails).times(times));
    }
}

/// Some seeds start with blocking platform settings on (HA, sometimes WLB, sometimes a VM's
/// CD/DVD) and `auto_resolve`, a third of those on a platform that refuses the first resolves
/// (sometimes more often than a step may be tried, so the run halts before any host). Drawn
/// from a stream of its own, so every other choice of a seed stays what it was before.
fn blocking_settings(seed: u64, cluster: &mut Cluster, faults: &mut Vec<Fault>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2);
    if !rng.random_bool(0.4) {
        return;
    }
    cluster.policy.auto_resolve = true;
    cluster
        .settings
        .push(PlatformSetting::pool(SettingKind::HaEnabled));
    if rng.random_bool(0.5) {
        cluster
            .settings
            .push(PlatformSetting::pool(SettingKind::WlbEnabled));
    }
    if rng.random_bool(0.5) && !cluster.vms.is_empty() {
        let vm = &cluster.vms[rng.random_range(0..cluster.vms.len())].name;
        cluster
            .settings
            .push(PlatformSetting::of_vm(SettingKind::VmMediaInserted, vm));
    }
    if rng.random_bool(1.0 / 3.0) {
        let times = rng.random_range(1..=4);
        faults.push(Fault::new(FaultKind::SettingResolveFails).times(times));
    }
}

/// Some seeds restrict VMs to a few hosts (`allowed_hosts`): a fifth of the VMs of those seeds
/// get their own host and one or two others, like a Ganeti DRBD instance's two nodes or a pinned
/// VM; the simulated platform refuses a move outside them. Drawn from a stream of its own, so
/// every other choice of a seed stays what it was before.
fn host_constraints(seed: u64, cluster: &mut Cluster) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(3);
    if !rng.random_bool(0.3) || cluster.hosts.len() < 2 {
        return;
    }
    let host_count = cluster.hosts.len();
    for vm in cluster.vms.iter_mut() {
        if !rng.random_bool(0.2) {
            continue;
        }
        let mut allowed = vec![vm.host];
        let others = rng.random_range(1..=2);
        for _ in 0..others {
            let other = HostId(rng.random_range(0..host_count) as u32);
            if !allowed.contains(&other) {
                allowed.push(other);
            }
        }
        allowed.sort();
        vm.allowed_hosts = Some(allowed);
    }
}

/// Some seeds make the cluster Ganeti-like: most running VMs become DRBD instances, allowed on
/// their own host and one other (their secondary), so the plan sends them to hosts not upgraded
/// yet and brings them back after their wave (`Wave::returns`), and returns run under the
/// seed's faults, crashes and resumes. Drawn from a stream of its own, so every other choice of
/// a seed stays what it was.
fn drbd_pairs(seed: u64, cluster: &mut Cluster) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(5);
    let host_count = cluster.hosts.len();
    if !rng.random_bool(0.25) || host_count < 3 {
        return;
    }
    for vm in cluster.vms.iter_mut() {
        if !rng.random_bool(0.8) {
            continue;
        }
        let offset = rng.random_range(1..host_count);
        let secondary = HostId(((vm.host.index() + offset) % host_count) as u32);
        let mut allowed = vec![vm.host, secondary];
        allowed.sort();
        vm.allowed_hosts = Some(allowed);
    }
}

/// Some seeds give VMs that cannot live-migrate an `unmovable:` choice (suspend, shelve,
/// restart, shutdown), so suspends and shelves run under faults, crashes and resumes too. From a
/// stream of its own, so every other choice of a seed stays what it was.
fn dispositions(seed: u64, cluster: &mut Cluster) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(4);
    if !rng.random_bool(0.3) {
        return;
    }
    let choices = [
        Unmovable::Suspend,
        Unmovable::Shelve,
        Unmovable::Restart,
        Unmovable::Shutdown,
    ];
    for vm in cluster.vms.iter_mut() {
        if (vm.migratable && !vm.local_storage) || !rng.random_bool(0.7) {
            continue;
        }
        vm.unmovable = Some(choices[rng.random_range(0..choices.len())]);
    }
}

/// Zero to four faults on random hosts and VMs.
fn faults(rng: &mut ChaCha8Rng, cluster: &Cluster) -> Vec<Fault> {
    let count = rng.random_range(0..=4);
    (0..count).filter_map(|_| one_fault(rng, cluster)).collect()
}

fn one_fault(rng: &mut ChaCha8Rng, cluster: &Cluster) -> Option<Fault> {
    let host = cluster.hosts[rng.random_range(0..cluster.hosts.len())]
        .name
        .clone();
    let vm = (!cluster.vms.is_empty()).then(|| {
        cluster.vms[rng.random_range(0..cluster.vms.len())]
            .name
            .clone()
    });
    let times = rng.random_range(1..=3);
    Some(match rng.random_range(0..9) {
        0 => Fault::new(FaultKind::MigrationFails)
            .on_vm(&vm?)
            .times(times),
        1 => Fault::new(FaultKind::MigrationRefused).on_vm(&vm?),
        2 => Fault::new(FaultKind::MigrationHangs).on_vm(&vm?).times(1),
        3 => Fault::new(FaultKind::UpgradeFails)
            .on_host(&host)
            .times(times),
        4 => Fault::new(FaultKind::HostNeverReturns).on_host(&host),
        5 => Fault::new(FaultKind::UpgradeDoesNotReboot).on_host(&host),
        6 => Fault::new(FaultKind::RebootIgnored).on_host(&host),
        7 => Fault::new(FaultKind::ShutdownIgnored).on_vm(&vm?),
        _ => Fault::slow(SlowStep::Upgrade, 3.0).on_host(&host),
    })
}

/// Some seeds may start hosts only in a daily maintenance window of one to six hours, so runs
/// wait for windows, wake up when one opens, and span several of them. Drawn from a stream of
/// its own, like the compatibility raise, so every other choice of a seed stays what it was.
fn maintenance_windows(seed: u64, cluster: &mut Cluster) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2);
    if !rng.random_bool(0.25) {
        return;
    }
    let start_hour: u16 = rng.random_range(0..24);
    let hours: u16 = rng.random_range(1..=6);
    cluster.policy.windows = vec![MaintenanceWindow {
        days: (0..7).collect(),
        start_minute: start_hour * 60,
        end_minute: (start_hour + hours) % 24 * 60,
    }];
}
