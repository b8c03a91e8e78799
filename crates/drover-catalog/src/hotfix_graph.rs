//! Graph walks over hotfix references (`supersedes`, `requires`) given as adjacency lists of
//! indices: finding a cycle, and transitive closures of an acyclic graph.
//!
//! Every walk is iterative (no recursion, so a long chain cannot overflow the stack) and visits
//! each node and edge a bounded number of times. This module knows nothing of what the edges
//! mean; callers turn a found cycle into a message.

use crate::id_set::IdSet;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Unvisited,
    OnStack,
    Done,
}

/// A cycle of `edges`, as the nodes along it with the first repeated at the end, if any.
/// The search starts from the lowest index, so the same graph always reports the same cycle.
pub(crate) fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut marks = vec![Mark::Unvisited; edges.len()];
    (0..edges.len()).find_map(|start| {
        if marks[start] == Mark::Unvisited {
            cycle_from(start, edges, &mut marks)
        } else {
            None
        }
    })
}

/// Depth-first from `start` with an explicit stack of (node, next edge to follow).
fn cycle_from(start: usize, edges: &[Vec<usize>], marks: &mut [Mark]) -> Option<Vec<usize>> {
    let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
    marks[start] = Mark::OnStack;
    while let Some((node, next_edge)) = stack.last_mut() {
        let node = *node;
        let Some(&target) = edges[node].get(*next_edge) else {
            marks[node] = Mark::Done;
            stack.pop();
            continue;
        };
        *next_edge += 1;
        match marks[target] {
            Mark::OnStack => return Some(cycle_path(&stack, target)),
            Mark::Unvisited => {
                marks[target] = Mark::OnStack;
                stack.push((target, 0));
            }
            Mark::Done => {}
        }
    }
    None
}

fn cycle_path(stack: &[(usize, usize)], repeated: usize) -> Vec<usize> {
    let start = stack
        .iter()
        .position(|(node, _)| *node == repeated)
        .expect("a node marked on-stack is on the stack");
    let mut path: Vec<usize> = stack[start..].iter().map(|(node, _)| *node).collect();
    path.push(repeated);
    path
}

/// For each node, every node reachable from it through one or more edges. `edges` must be
/// acyclic (check with [`find_cycle`] first).
pub(crate) fn transitive_closures(edges: &[Vec<usize>]) -> Vec<IdSet> {
    let mut closures: Vec<Option<IdSet>> = vec![None; edges.len()];
    for start in 0..edges.len() {
        close_from(start, edges, &mut closures);
    }
    closures
        .into_iter()
        .map(|closure| closure.expect("every node was closed"))
        .collect()
}

/// Closes every node reachable from `start` in post-order, so a node's targets are closed
/// before it is.
fn close_from(start: usize, edges: &[Vec<usize>], closures: &mut [Option<IdSet>]) {
    let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
    while let Some((node, next_edge)) = stack.last_mut() {
        let node = *node;
        if closures[node].is_some() {
            stack.pop();
            continue;
        }
        if let Some(&target) = edges[node].get(*next_edge) {
            *next_edge += 1;
            if closures[target].is_none() {
                stack.push((target, 0));
            }
            continue;
        }
        let mut closure = IdSet::with_capacity(edges.len());
        for &target in &edges[node] {
            closure.insert(target);
            closure.union_with(closures[target].as_ref().expect("targets close first"));
        }
        closures[node] = Some(closure);
        stack.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cycle_and_reports_it_closed() {
        let edges = vec![vec![1], vec![2], vec![0], vec![]];
        assert_eq!(find_cycle(&edges), Some(vec![0, 1, 2, 0]));
        assert_eq!(find_cycle(&[vec![0]]), Some(vec![0, 0]));
    }

    #[test]
    fn a_diamond_is_not_a_cycle() {
        let edges = vec![vec![1, 2], vec![3], vec![3], vec![]];
        assert_eq!(find_cycle(&edges), None);
        let closures = transitive_closures(&edges);
        assert_eq!(closures[0].iter().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(closures[1].iter().collect::<Vec<_>>(), vec![3]);
        assert_eq!(closures[3].iter().count(), 0);
    }

    #[test]
    fn a_long_chain_needs_no_recursion() {
        let length = 5_000;
        let edges: Vec<Vec<usize>> = (0..length)
            .map(|node| {
                if node + 1 < length {
                    vec![node + 1]
                } else {
                    vec![]
                }
            })
            .collect();
        assert_eq!(find_cycle(&edges), None);
        assert_eq!(transitive_closures(&edges)[0].iter().count(), length - 1);
    }
}
