//! Ganeti-style clusters, for comparing Drover with Ganeti's `hroller` on the same clusters:
//! one node group, and instances that are either DRBD (a primary and a secondary node: it may run
//! only on those two) or on shared storage (it may migrate anywhere). Seeded, as everything here.
//!
//! It knows no file format: the CLI writes these clusters in Ganeti's htools text format and runs
//! `hroller`; this module only draws the cluster and turns it into a Drover [`Cluster`].

use drover_core::{
    Cluster, Host, HostId, HostRole, HostShare, HostState, MaxUnavailable, Policy, RestartPolicy,
    Vm, VmState,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Memory sizes of the generated instances, MiB (the reference generator's choices).
const INSTANCE_MEMORY_MIB: [u64; 4] = [1024, 2048, 4096, 8192];
const INSTANCE_DISK_MIB: [u64; 3] = [10_240, 20_480, 51_200];
const INSTANCE_VCPUS: [u32; 3] = [1, 2, 4];
/// Memory each node keeps for itself (Ganeti's `mem_node`), MiB.
pub const NODE_OWN_MEMORY_MIB: u64 = 1024;
pub const NODE_DISK_MIB: u64 = 4 * 1024 * 1024;
pub const NODE_CPUS: u32 = 32;
/// Nodes looked at (at random) for each instance's primary before falling back to all of them.
const PRIMARY_CANDIDATES: usize = 8;

#[derive(Clone, Debug, PartialEq)]
pub struct GanetiSpec {
    pub nodes: usize,
    pub instances_per_node: usize,
    /// Share of instances that are DRBD; the rest are on shared storage (`sharedfile`).
    pub drbd_fraction: f64,
    /// Memory of the running instances over the memory nodes offer instances.
    pub utilization: f64,
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskTemplate {
    Drbd,
    SharedFile,
}

impl DiskTemplate {
    /// The name Ganeti gives the template.
    pub fn ganeti_name(self) -> &'static str {
        match self {
            DiskTemplate::Drbd => "drbd",
            DiskTemplate::SharedFile => "sharedfile",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GanetiNode {
    pub name: String,
    /// Total memory, the node's own share included (Ganeti's `mem_total`).
    pub memory_total_mib: u64,
    pub disk_free_mib: u64,
    pub master: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GanetiInstance {
    pub name: String,
    pub memory_mib: u64,
    pub disk_mib: u64,
    pub vcpus: u32,
    pub template: DiskTemplate,
    /// Index into [`GanetiCluster::nodes`].
    pub primary: usize,
    /// DRBD only.
    pub secondary: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GanetiCluster {
    pub nodes: Vec<GanetiNode>,
    pub instances: Vec<GanetiInstance>,
}

impl GanetiCluster {
    /// Memory left on a node for instances: total less its own share less its instances.
    pub fn memory_free_mib(&self, node: usize) -> u64 {
        let used: u64 = self
            .instances
            .iter()
            .filter(|i| i.primary == node)
            .map(|i| i.memory_mib)
            .sum();
        self.nodes[node].memory_total_mib - NODE_OWN_MEMORY_MIB - used
    }

    /// The same cluster as Drover sees it: a host per node (memory it offers instances), a VM
    /// per instance, a DRBD instance allowed only on its primary and secondary. Every node is a
    /// compute host (hroller does not put the master first either), Drover may fill nodes to
    /// 100 % as hroller does, and the batch size is capacity's own (`auto`, no ceiling).
    pub fn to_cluster(&self) -> Cluster {
        let hosts = self
            .nodes
            .iter()
            .map(|node| Host {
                name: node.name.clone(),
                role: HostRole::Compute,
                version: "3.0".parse().expect("a version"),
                memory_mib: node.memory_total_mib - NODE_OWN_MEMORY_MIB,
                cpus: NODE_CPUS,
                state: HostState::Up,
                cordoned: false,
                labels: Default::default(),
            })
            .collect();
        let vms = self
            .instances
            .iter()
            .map(|instance| {
                let allowed_hosts = instance.secondary.map(|secondary| {
                    let mut pair = vec![HostId(instance.primary as u32), HostId(secondary as u32)];
                    pair.sort();
                    pair
                });
                Vm {
                    name: instance.name.clone(),
                    host: HostId(instance.primary as u32),
                    memory_mib: instance.memory_mib,
                    vcpus: instance.vcpus,
                    state: VmState::Running,
                    migratable: true,
                    local_storage: false,
                    unmovable: None,
                    restart_policy: RestartPolicy::Manual,
                    anti_affinity: None,
                    allowed_hosts,
                }
            })
            .collect();
        Cluster {
            name: "ganeti".into(),
            target_version: "3.1".parse().expect("a version"),
            policy: Policy {
                max_unavailable: MaxUnavailable::Auto,
                max_unavailable_auto_ceiling: HostShare::Percent(100),
                host_memory_max_fill_percent: 100,
                host_memory_reserve_mib: 0,
                ..Policy::default()
            },
            hosts,
            vms,
            settings: Vec::new(),
        }
    }
}

/// Draws a cluster: instances first, node memory sized so that they fill `utilization` of it,
/// then each instance (largest first) on a roomy node, a DRBD instance's secondary another
/// node with disk for it.
pub fn generate_ganeti(spec: &GanetiSpec) -> GanetiCluster {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let node_count = spec.nodes.max(2);
    let instance_count = node_count * spec.instances_per_node;
    let mut instances: Vec<GanetiInstance> = (0..instance_count)
        .map(|index| GanetiInstance {
            name: format!("inst-{index:05}"),
            memory_mib: INSTANCE_MEMORY_MIB[rng.random_range(0..INSTANCE_MEMORY_MIB.len())],
            disk_mib: INSTANCE_DISK_MIB[rng.random_range(0..INSTANCE_DISK_MIB.len())],
            vcpus: INSTANCE_VCPUS[rng.random_range(0..INSTANCE_VCPUS.len())],
            template: if rng.random::<f64>() < spec.drbd_fraction {
                DiskTemplate::Drbd
            } else {
                DiskTemplate::SharedFile
            },
            primary: 0,
            secondary: None,
        })
        .collect();
    let total_memory_mib: u64 = instances.iter().map(|i| i.memory_mib).sum();
    let per_node_mib = total_memory_mib as f64 / node_count as f64 / spec.utilization.max(0.05);
    // Rounded up to 4 GiB, as real nodes' memory is.
    let memory_total_mib = (per_node_mib as u64 + NODE_OWN_MEMORY_MIB).div_ceil(4096) * 4096;
    let mut nodes: Vec<GanetiNode> = (0..node_count)
        .map(|index| GanetiNode {
            name: format!("node-{index:04}"),
            memory_total_mib,
            disk_free_mib: NODE_DISK_MIB,
            master: index == 0,
        })
        .collect();
    let mut memory_free: Vec<u64> = vec![memory_total_mib - NODE_OWN_MEMORY_MIB; node_count];
    let mut order: Vec<usize> = (0..instances.len()).collect();
    order.sort_by_key(|index| std::cmp::Reverse(instances[*index].memory_mib));
    for index in order {
        let memory = instances[index].memory_mib;
        let disk = instances[index].disk_mib;
        let fits = |node: usize, memory_free: &[u64], nodes: &[GanetiNode]| {
            memory_free[node] >= memory && nodes[node].disk_free_mib >= disk
        };
        // The roomiest of a few random nodes, with some noise so that nodes do not fill evenly.
        let noise = memory_total_mib / 4;
        let candidates: Vec<(usize, u64)> = (0..PRIMARY_CANDIDATES)
            .map(|_| {
                let node = rng.random_range(0..node_count);
                (node, rng.random_range(0..=noise))
            })
            .collect();
        let primary = candidates
            .iter()
            .filter(|(node, _)| fits(*node, &memory_free, &nodes))
            .max_by_key(|(node, jitter)| memory_free[*node] + jitter)
            .map(|(node, _)| *node)
            .or_else(|| (0..node_count).find(|node| fits(*node, &memory_free, &nodes)))
            .expect("node memory is sized for every instance");
        memory_free[primary] -= memory;
        nodes[primary].disk_free_mib -= disk;
        instances[index].primary = primary;
        if instances[index].template == DiskTemplate::Drbd {
            let offset = rng.random_range(1..node_count);
            let secondary = (0..node_count)
                .map(|step| (primary + offset + step) % node_count)
                .find(|node| *node != primary && nodes[*node].disk_free_mib >= disk)
                .expect("nodes have disk for every secondary");
            nodes[secondary].disk_free_mib -= disk;
            instances[index].secondary = Some(secondary);
        }
    }
    GanetiCluster { nodes, instances }
}
