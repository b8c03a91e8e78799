//! The upgrade graph of one path request: the running version and the releases of the channel
//! between it and the target, with an edge wherever a release may be installed from a version.
//!
//! Nodes are sorted by version with the running version first and the target last, and every
//! edge goes from an older node to a newer one, so the graph has no cycle. Its size is bounded
//! by the catalog's release limit; every search visits each node and edge once. This module
//! knows nothing of reboots, messages or how a path is presented.

use std::collections::VecDeque;
use std::ops::Range;

use drover_core::Version;

use crate::model::{Catalog, Release};

pub(super) struct StepGraph<'a> {
    /// Ascending; `versions[0]` is the running version, the last one is the target.
    versions: Vec<Version>,
    /// The release of each node; `None` for the running version.
    releases: Vec<Option<&'a Release>>,
    /// For each node, the older nodes it may be installed from, ascending.
    predecessors: Vec<Vec<usize>>,
}

impl<'a> StepGraph<'a> {
    /// The graph from `from` to `to`, over the releases of `channel` (all when `None`). The
    /// caller has checked that `to` is a release of the channel and newer than `from`.
    pub(super) fn new(
        catalog: &'a Catalog,
        from: &Version,
        to: &Version,
        channel: Option<&str>,
    ) -> StepGraph<'a> {
        let candidates = catalog.releases().iter().filter(|release| {
            release.is_in_channel(channel) && release.version > *from && release.version <= *to
        });
        let mut versions = vec![from.clone()];
        let mut releases = vec![None];
        for release in candidates {
            versions.push(release.version.clone());
            releases.push(Some(release));
        }
        let predecessors = (0..versions.len())
            .map(|node| predecessors_of(node, &versions, releases[node]))
            .collect();
        StepGraph {
            versions,
            releases,
            predecessors,
        }
    }

    pub(super) fn running_version(&self) -> &Version {
        &self.versions[0]
    }

    pub(super) fn release(&self, node: usize) -> &'a Release {
        self.releases[node].expect("only the running version has no release")
    }

    fn target(&self) -> usize {
        self.versions.len() - 1
    }

    /// The nodes of a shortest path after the running version, ending at the target. Among
    /// paths of equal length the one whose first differing hop is newer wins, so skipping
    /// ahead is preferred and the answer is deterministic.
    pub(super) fn shortest_path(&self) -> Option<Vec<usize>> {
        let next_hop = self.next_hops_towards_target();
        let mut path = Vec::new();
        let mut node = 0;
        while node != self.target() {
            node = next_hop[node]?;
            path.push(node);
        }
        Some(path)
    }

    /// Breadth-first from the target along reversed edges, one distance level at a time. Each
    /// level is walked newest first, so a node's recorded next hop is the newest node one step
    /// closer to the target.
    fn next_hops_towards_target(&self) -> Vec<Option<usize>> {
        let mut next_hop = vec![None; self.versions.len()];
        let mut seen = vec![false; self.versions.len()];
        seen[self.target()] = true;
        let mut level = vec![self.target()];
        while !level.is_empty() && !seen[0] {
            level.sort_unstable_by(|left, right| right.cmp(left));
            let mut next_level = Vec::new();
            for &node in &level {
                for &predecessor in &self.predecessors[node] {
                    if !seen[predecessor] {
                        seen[predecessor] = true;
                        next_hop[predecessor] = Some(node);
                        next_level.push(predecessor);
                    }
                }
            }
            level = next_level;
        }
        next_hop
    }

    /// The newest version reachable from the running version (itself when nothing is).
    pub(super) fn newest_reachable(&self) -> &Version {
        let mut successors: Vec<Vec<usize>> = vec![Vec::new(); self.versions.len()];
        for (node, predecessors) in self.predecessors.iter().enumerate() {
            for &predecessor in predecessors {
                successors[predecessor].push(node);
            }
        }
        let mut reached = vec![false; self.versions.len()];
        reached[0] = true;
        let mut queue = VecDeque::from([0]);
        while let Some(node) = queue.pop_front() {
            for &successor in &successors[node] {
                if !reached[successor] {
                    reached[successor] = true;
                    queue.push_back(successor);
                }
            }
        }
        let newest = reached.iter().rposition(|was_reached| *was_reached);
        &self.versions[newest.unwrap_or(0)]
    }
}

/// The older nodes `release` may be installed from. Nodes are sorted, so each pattern's matches
/// among the older nodes are one contiguous range; overlapping ranges are merged first so that
/// each node is listed once, whatever the number of patterns.
fn predecessors_of(node: usize, versions: &[Version], release: Option<&Release>) -> Vec<usize> {
    let Some(release) = release else {
        return Vec::new();
    };
    let older = &versions[..node];
    let mut ranges: Vec<Range<usize>> = release
        .upgrade_from
        .iter()
        .map(|pattern| pattern.matching_range(older))
        .filter(|range| !range.is_empty())
        .collect();
    ranges.sort_unstable_by_key(|range| range.start);
    let mut predecessors = Vec::new();
    let mut covered_until = 0;
    for range in ranges {
        predecessors.extend(range.start.max(covered_until)..range.end);
        covered_until = covered_until.max(range.end);
    }
    predecessors
}
