//! Seeded synthetic clusters for tests, demos and benchmarks.
//!
//! A [`GenerateSpec`] and its seed fully determine the cluster: same spec, same cluster, on every
//! machine. VM sizes follow the Azure 2019 public trace's memory mix ([`AZURE_2019_MEMORY_MIX`]).
//! Every generated cluster is valid: no host over its memory or vCPU capacity, unique names, and
//! anti-affinity groups whose members start on distinct hosts.
//!
//! This module knows nothing of plans, the planner's strategy, time or IO.

use drover_core::{
    Cluster, Host, HostId, HostRole, HostState, MaxUnavailable, Policy, RestartPolicy, Version, Vm,
    VmState,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::SimError;

/// What a synthetic cluster looks like. Fractions are probabilities per VM, in `0.0..=1.0`.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateSpec {
    /// Compute hosts (`h00001`, `h00002`, …).
    pub hosts: usize,
    /// Pool masters (`m1`); 0 or 1 in every platform Drover knows.
    pub masters: usize,
    /// Management / control-plane hosts (`mgmt1`, …).
    pub management_hosts: usize,
    /// Each host's memory fill by running VMs is drawn uniformly in `[utilization_min, utilization_max]`.
    pub utilization_min: f64,
    pub utilization_max: f64,
    pub host_memory_mib: u64,
    pub host_cpus: u32,
    /// VMs on local storage: shut down for their host's upgrade.
    pub local_storage_fraction: f64,
    /// VMs without guest tools: not migratable, `restart_policy: Always` (restarted elsewhere).
    pub no_tools_fraction: f64,
    /// Stopped VMs; they take no memory and do not count towards the fill. At most 0.95 is used,
    /// so that a host's fill always ends.
    pub stopped_fraction: f64,
    /// Number of anti-affinity groups of 2–4 VMs, each member on a distinct host.
    pub anti_affinity_groups: usize,
    /// Versions hosts run before the upgrade; each host gets one, uniformly.
    pub old_versions: Vec<String>,
    pub target_version: String,
    pub max_unavailable: MaxUnavailable,
    pub seed: u64,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        GenerateSpec {
            hosts: 10,
            masters: 0,
            management_hosts: 0,
            utilization_min: 0.6,
            utilization_max: 0.9,
            // 768 GiB, 96 CPUs: a common two-socket virtualization host.
            host_memory_mib: 786_432,
            host_cpus: 96,
            local_storage_fraction: 0.01,
            no_tools_fraction: 0.01,
            stopped_fraction: 0.05,
            anti_affinity_groups: 0,
            old_versions: vec!["8.0.0".to_string()],
            target_version: "8.2.1".to_string(),
            max_unavailable: MaxUnavailable::Count(1),
            seed: 0,
        }
    }
}

/// One size class of the VM memory mix: sizes in `[min_gib, max_gib)` GiB, `percent` of all VMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBucket {
    pub min_gib: u64,
    pub max_gib: u64,
    pub percent: u32,
}

/// VM memory sizes in Azure's 2019 public VM trace (the largest class capped at 128 GiB).
pub const AZURE_2019_MEMORY_MIX: [MemoryBucket; 6] = [
    MemoryBucket {
        min_gib: 0,
        max_gib: 2,
        percent: 12,
    },
    MemoryBucket {
        min_gib: 2,
        max_gib: 4,
        percent: 17,
    },
    MemoryBucket {
        min_gib: 4,
        max_gib: 8,
        percent: 32,
    },
    MemoryBucket {
        min_gib: 8,
        max_gib: 32,
        percent: 29,
    },
    MemoryBucket {
        min_gib: 32,
        max_gib: 64,
        percent: 7,
    },
    MemoryBucket {
        min_gib: 64,
        max_gib: 128,
        percent: 3,
    },
];

const MIB_PER_GIB: u64 = 1024;
/// VM memory sizes are multiples of this.
const MEMORY_GRANULE_MIB: u64 = 256;
const SMALLEST_VM_MIB: u64 = 512;
/// One vCPU per this much memory, roughly the ratio of general-purpose cloud instance types.
const MIB_PER_VCPU: u64 = 4 * MIB_PER_GIB;
const MOST_VCPUS_PER_VM: u64 = 32;
/// Bounds the number of stopped VMs per host, which take no memory and so never end a fill.
const LARGEST_STOPPED_FRACTION: f64 = 0.95;
/// Attempts to find a free host or VM for an anti-affinity group before giving up on a member.
const GROUP_PICK_ATTEMPTS: usize = 32;

/// Generates the cluster described by `spec`.
///
/// # Panics
/// If a version in the spec does not parse; use [`try_generate`] for specs that come from users.
pub fn generate(spec: &GenerateSpec) -> Cluster {
    try_generate(spec).unwrap_or_else(|error| panic!("{error}"))
}

/// Generates the cluster described by `spec`, refusing unparsable versions.
pub fn try_generate(spec: &GenerateSpec) -> Result<Cluster, SimError> {
    let parse = |text: &str| {
        text.parse::<Version>()
            .map_err(|error| SimError::InvalidSpec {
                message: error.to_string(),
            })
    };
    let target_version = parse(&spec.target_version)?;
    let old_versions = spec
        .old_versions
        .iter()
        .map(|text| parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    if old_versions.is_empty() {
        return Err(SimError::InvalidSpec {
            message: "old_versions is empty: hosts need a version to start from".into(),
        });
    }
    let policy = Policy {
        max_unavailable: spec.max_unavailable,
        ..Policy::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let hosts = generate_hosts(spec, &old_versions, &mut rng);
    let vcpu_capacity = (spec.host_cpus as f64 * policy.cpu_overcommit).floor() as u64;
    let mut filler = HostFiller::new(spec, vcpu_capacity, hosts.len());
    for host in 0..hosts.len() {
        filler.fill_host(HostId(host as u32), &mut rng);
    }
    let mut vms = filler.vms;
    assign_anti_affinity_groups(spec, &filler.host_vm_ranges, &mut vms, &mut rng);
    Ok(Cluster {
        settings: Vec::new(),
        name: format!("generated-{}", spec.seed),
        target_version,
        policy,
        hosts,
        vms,
    })
}

/// Masters first, then management hosts, then compute hosts, as platforms list them.
fn generate_hosts(
    spec: &GenerateSpec,
    old_versions: &[Version],
    rng: &mut ChaCha8Rng,
) -> Vec<Host> {
    let masters = (1..=spec.masters).map(|n| (format!("m{n}"), HostRole::Master));
    let management =
        (1..=spec.management_hosts).map(|n| (format!("mgmt{n}"), HostRole::Management));
    let compute = (1..=spec.hosts).map(|n| (format!("h{n:05}"), HostRole::Compute));
    masters
        .chain(management)
        .chain(compute)
        .map(|(name, role)| Host {
            name,
            role,
            version: old_versions[rng.random_range(0..old_versions.len())].clone(),
            memory_mib: spec.host_memory_mib,
            cpus: spec.host_cpus,
            state: HostState::Up,
            cordoned: false,
            labels: Default::default(),
        })
        .collect()
}

/// A VM drawn from the mix, before it is given a host and a name.
#[derive(Clone, Copy, Debug)]
struct DrawnVm {
    memory_mib: u64,
    vcpus: u32,
    running: bool,
    local_storage: bool,
    no_tools: bool,
}

/// Draws one VM: its memory from the Azure mix, its vCPUs from its memory, its flags from the spec.
fn draw_vm(spec: &GenerateSpec, rng: &mut ChaCha8Rng) -> DrawnVm {
    let memory_mib = draw_memory_mib(rng);
    let vcpus = ((memory_mib + MIB_PER_VCPU / 2) / MIB_PER_VCPU).clamp(1, MOST_VCPUS_PER_VM) as u32;
    let kind = rng.random::<f64>();
    let local_storage = kind < spec.local_storage_fraction;
    let no_tools = !local_storage && kind < spec.local_storage_fraction + spec.no_tools_fraction;
    let stopped_fraction = spec.stopped_fraction.clamp(0.0, LARGEST_STOPPED_FRACTION);
    DrawnVm {
        memory_mib,
        vcpus,
        running: rng.random::<f64>() >= stopped_fraction,
        local_storage,
        no_tools,
    }
}

/// A uniformly chosen multiple of 256 MiB inside a bucket chosen by the mix's shares.
fn draw_memory_mib(rng: &mut ChaCha8Rng) -> u64 {
    let total_percent: u32 = AZURE_2019_MEMORY_MIX.iter().map(|b| b.percent).sum();
    let mut roll = rng.random_range(0..total_percent);
    let bucket = AZURE_2019_MEMORY_MIX
        .iter()
        .find(|bucket| {
            let inside = roll < bucket.percent;
            roll = roll.saturating_sub(bucket.percent);
            inside
        })
        .unwrap_or(&AZURE_2019_MEMORY_MIX[AZURE_2019_MEMORY_MIX.len() - 1]);
    let lowest_granule = bucket.min_gib * MIB_PER_GIB / MEMORY_GRANULE_MIB;
    let end_granule = bucket.max_gib * MIB_PER_GIB / MEMORY_GRANULE_MIB;
    let memory_mib = rng.random_range(lowest_granule..end_granule) * MEMORY_GRANULE_MIB;
    memory_mib.max(SMALLEST_VM_MIB)
}

/// Places drawn VMs host by host. A running VM that ends a host's fill without being placed there
/// is offered to the next host first, so that large VMs are not under-represented in the mix.
struct HostFiller<'a> {
    spec: &'a GenerateSpec,
    vcpu_capacity: u64,
    vms: Vec<Vm>,
    /// The VMs of host `i` are `vms[host_vm_ranges[i].clone()]`: hosts are filled one after another.
    host_vm_ranges: Vec<std::ops::Range<usize>>,
    carried_over: Option<DrawnVm>,
}

impl<'a> HostFiller<'a> {
    fn new(spec: &'a GenerateSpec, vcpu_capacity: u64, host_count: usize) -> Self {
        let expected_vms = host_count * 40;
        HostFiller {
            spec,
            vcpu_capacity,
            vms: Vec::with_capacity(expected_vms),
            host_vm_ranges: Vec::with_capacity(host_count),
            carried_over: None,
        }
    }

    /// Adds running VMs until the host's drawn utilization is reached, plus the stopped VMs drawn
    /// along the way. The VM that crosses the target is kept only if that lands closer to it.
    fn fill_host(&mut self, host: HostId, rng: &mut ChaCha8Rng) {
        let spec = self.spec;
        let (low, high) = if spec.utilization_min <= spec.utilization_max {
            (spec.utilization_min, spec.utilization_max)
        } else {
            (spec.utilization_max, spec.utilization_min)
        };
        let utilization = (low + (high - low) * rng.random::<f64>()).max(0.0);
        let target_mib = (utilization * spec.host_memory_mib as f64).round() as u64;
        let first_vm = self.vms.len();
        let (mut memory_used_mib, mut vcpus_used) = (0u64, 0u64);
        loop {
            let (candidate, was_carried) = match self.carried_over.take() {
                Some(carried) => (carried, true),
                None => (draw_vm(spec, rng), false),
            };
            if !candidate.running {
                self.push_vm(host, candidate);
                continue;
            }
            let memory_after = memory_used_mib + candidate.memory_mib;
            let fits_host = memory_after <= spec.host_memory_mib
                && vcpus_used + candidate.vcpus as u64 <= self.vcpu_capacity;
            if fits_host && memory_after <= target_mib {
                memory_used_mib = memory_after;
                vcpus_used += candidate.vcpus as u64;
                self.push_vm(host, candidate);
                continue;
            }
            let overshoot = memory_after.saturating_sub(target_mib);
            let undershoot = target_mib - memory_used_mib.min(target_mib);
            if fits_host && overshoot < undershoot {
                self.push_vm(host, candidate);
            } else if !was_carried {
                // A VM refused twice is dropped, so one huge VM cannot starve every later host.
                self.carried_over = Some(candidate);
            }
            break;
        }
        self.host_vm_ranges.push(first_vm..self.vms.len());
    }

    fn push_vm(&mut self, host: HostId, drawn: DrawnVm) {
        let number = self.vms.len() + 1;
        self.vms.push(Vm {
            name: format!("vm{number:06}"),
            host,
            memory_mib: drawn.memory_mib,
            vcpus: drawn.vcpus,
            state: if drawn.running {
                VmState::Running
            } else {
                VmState::Stopped
            },
            migratable: !drawn.no_tools,
            local_storage: drawn.local_storage,
            unmovable: None,
            restart_policy: if drawn.no_tools {
                RestartPolicy::Always
            } else {
                RestartPolicy::Manual
            },
            anti_affinity: None,
            allowed_hosts: None,
        });
    }
}

/// Creates `spec.anti_affinity_groups` groups of 2–4 VMs, each member on a different host.
/// Hosts and VMs are picked at random with a bounded number of attempts, so the cost is linear in
/// the number of groups; a group that cannot find two members is left out.
fn assign_anti_affinity_groups(
    spec: &GenerateSpec,
    host_vm_ranges: &[std::ops::Range<usize>],
    vms: &mut [Vm],
    rng: &mut ChaCha8Rng,
) {
    let hosts_with_vms = host_vm_ranges.iter().filter(|r| !r.is_empty()).count();
    if hosts_with_vms < 2 {
        return;
    }
    for group in 0..spec.anti_affinity_groups {
        let size = rng.random_range(2..=4).min(hosts_with_vms);
        let mut chosen_hosts: Vec<usize> = Vec::with_capacity(size);
        let mut members: Vec<usize> = Vec::with_capacity(size);
        for _ in 0..GROUP_PICK_ATTEMPTS * size {
            if members.len() == size {
                break;
            }
            let host = rng.random_range(0..host_vm_ranges.len());
            let range = host_vm_ranges[host].clone();
            if range.is_empty() || chosen_hosts.contains(&host) {
                continue;
            }
            let vm = rng.random_range(range);
            if vms[vm].anti_affinity.is_none() {
                chosen_hosts.push(host);
                members.push(vm);
            }
        }
        if members.len() < 2 {
            continue;
        }
        let name = format!("aa{:05}", group + 1);
        for vm in members {
            vms[vm].anti_affinity = Some(name.clone());
        }
    }
}
