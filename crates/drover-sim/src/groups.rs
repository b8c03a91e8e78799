//! Anti-affinity group names interned to small integers, shared by the simulator and the
//! baselines so that per-host group bookkeeping compares numbers, not strings.
//!
//! Knows only the cluster model; nothing of plans, time or placement strategies.

use drover_core::Cluster;

/// The group number of every VM (`None`: no group); equal names get equal numbers.
pub(crate) fn intern_anti_affinity_groups(cluster: &Cluster) -> Vec<Option<u32>> {
    let mut names: Vec<&str> = cluster
        .vms
        .iter()
        .filter_map(|vm| vm.anti_affinity.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    cluster
        .vms
        .iter()
        .map(|vm| {
            let name = vm.anti_affinity.as_deref()?;
            names.binary_search(&name).ok().map(|i| i as u32)
        })
        .collect()
}
