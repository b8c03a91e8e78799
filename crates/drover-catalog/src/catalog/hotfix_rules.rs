//! The catalog rules for hotfixes: unique ids, `applies_to` patterns that match a release,
//! `supersedes` and `requires` that name known hotfixes, no supersedence or prerequisite
//! cycles, and no hotfix that requires one it supersedes (or one that supersedes it).
//!
//! It turns the read entries into [`Hotfix`]es sorted by id, plus each hotfix's transitive
//! supersedence set for selection. Refusals name the hotfix and are placed through `Source`.
//! This module knows nothing of YAML, positions or how a selection is made.

use drover_core::Version;

use super::document::HotfixEntry;
use super::field_checks::{check_count, check_identifier, check_list_lengths};
use super::source::Source;
use crate::error::CatalogError;
use crate::hotfix_graph::{find_cycle, transitive_closures};
use crate::id_set::IdSet;
use crate::limits::MAX_HOTFIXES;
use crate::model::{Hotfix, Release};

/// Which list of a hotfix an edge comes from; names the field and the verb of messages.
#[derive(Clone, Copy)]
enum Reference {
    Supersedes,
    Requires,
}

impl Reference {
    fn field(self) -> &'static str {
        match self {
            Reference::Supersedes => "supersedes",
            Reference::Requires => "requires",
        }
    }

    fn list(self, hotfix: &Hotfix) -> &[String] {
        match self {
            Reference::Supersedes => &hotfix.supersedes,
            Reference::Requires => &hotfix.requires,
        }
    }
}

/// Hotfixes sorted by id, and for each the set of hotfixes it supersedes transitively.
pub(crate) fn into_hotfixes(
    entries: Vec<HotfixEntry>,
    releases: &[Release],
    source: &Source,
) -> Result<(Vec<Hotfix>, Vec<IdSet>), CatalogError> {
    check_count(entries.len(), MAX_HOTFIXES, "hotfixes", "hotfixes", source)?;
    let release_versions: Vec<Version> = releases.iter().map(|r| r.version.clone()).collect();
    let hotfixes = entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| into_hotfix(index, entry, &release_versions, source))
        .collect::<Result<Vec<_>, _>>()?;
    let sorted = SortedHotfixes::new(hotfixes, source)?;
    let supersedes = sorted.edges(Reference::Supersedes, source)?;
    let requires = sorted.edges(Reference::Requires, source)?;
    sorted.refuse_cycle(&supersedes, Reference::Supersedes, source)?;
    sorted.refuse_cycle(&requires, Reference::Requires, source)?;
    let closures = transitive_closures(&supersedes);
    sorted.refuse_requiring_superseded(&requires, &closures, source)?;
    Ok((sorted.into_hotfixes(), closures))
}

/// `release_versions` is sorted, so whether a pattern matches a release is a binary search.
fn into_hotfix(
    index: usize,
    entry: HotfixEntry,
    release_versions: &[Version],
    source: &Source,
) -> Result<Hotfix, CatalogError> {
    let path = format!("hotfixes[{index}]");
    check_identifier(&entry.id, "a hotfix id", &format!("{path}.id"), source)?;
    let subject = format!("hotfix {}", entry.id);
    let lists = [
        ("applies_to", entry.applies_to.len()),
        ("supersedes", entry.supersedes.len()),
        ("requires", entry.requires.len()),
    ];
    check_list_lengths(&lists, &path, &subject, source)?;
    if entry.applies_to.is_empty() {
        let message = format!("{subject}: applies_to is empty; name the releases it installs on");
        return Err(source.error_at(&format!("{path}.applies_to"), message));
    }
    for (pattern_index, pattern) in entry.applies_to.iter().enumerate() {
        if pattern.0.matching_range(release_versions).is_empty() {
            let message = format!(
                "{subject}: applies_to \"{}\" matches no release of the catalog",
                pattern.0
            );
            let pattern_path = format!("{path}.applies_to[{pattern_index}]");
            return Err(source.error_at(&pattern_path, message));
        }
    }
    Ok(Hotfix {
        id: entry.id,
        applies_to: entry.applies_to.into_iter().map(|text| text.0).collect(),
        supersedes: entry.supersedes,
        requires: entry.requires,
        reboot_required: entry.reboot_required,
    })
}

/// Hotfixes sorted by id, remembering each one's index in the file for error positions.
struct SortedHotfixes {
    hotfixes: Vec<Hotfix>,
    file_index: Vec<usize>,
}

impl SortedHotfixes {
    fn new(hotfixes: Vec<Hotfix>, source: &Source) -> Result<SortedHotfixes, CatalogError> {
        let mut order: Vec<usize> = (0..hotfixes.len()).collect();
        order.sort_by(|left, right| hotfixes[*left].id.cmp(&hotfixes[*right].id));
        for pair in order.windows(2) {
            let (first, repeat) = (pair[0], pair[1]);
            if hotfixes[first].id == hotfixes[repeat].id {
                let first_line = source
                    .line_of(&format!("hotfixes[{first}].id"))
                    .map(|line| format!(" (first at line {line})"))
                    .unwrap_or_default();
                let message = format!("hotfix {} is listed twice{first_line}", hotfixes[repeat].id);
                return Err(source.error_at(&format!("hotfixes[{repeat}].id"), message));
            }
        }
        let mut slots: Vec<Option<Hotfix>> = hotfixes.into_iter().map(Some).collect();
        let sorted = order
            .iter()
            .map(|index| slots[*index].take().expect("each index appears once"))
            .collect();
        Ok(SortedHotfixes {
            hotfixes: sorted,
            file_index: order,
        })
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.hotfixes
            .binary_search_by(|hotfix| hotfix.id.as_str().cmp(id))
            .ok()
    }

    /// The path of entry `position` of `reference` in the hotfix at sorted index `index`.
    fn path(&self, index: usize, reference: Reference, position: Option<usize>) -> String {
        let base = format!("hotfixes[{}].{}", self.file_index[index], reference.field());
        match position {
            Some(position) => format!("{base}[{position}]"),
            None => base,
        }
    }

    /// The edges of one kind as sorted indices, refusing unknown and self references.
    fn edges(
        &self,
        reference: Reference,
        source: &Source,
    ) -> Result<Vec<Vec<usize>>, CatalogError> {
        let mut edges = Vec::with_capacity(self.hotfixes.len());
        for (index, hotfix) in self.hotfixes.iter().enumerate() {
            let mut targets = Vec::new();
            for (position, target_id) in reference.list(hotfix).iter().enumerate() {
                let path = self.path(index, reference, Some(position));
                let verb = reference.field();
                let Some(target) = self.index_of(target_id) else {
                    let message = format!(
                        "hotfix {} {verb} {target_id:?}, which is not a hotfix of the catalog",
                        hotfix.id
                    );
                    return Err(source.error_at(&path, message));
                };
                if target == index {
                    let message = format!("hotfix {} {verb} itself", hotfix.id);
                    return Err(source.error_at(&path, message));
                }
                targets.push(target);
            }
            targets.sort_unstable();
            targets.dedup();
            edges.push(targets);
        }
        Ok(edges)
    }

    fn refuse_cycle(
        &self,
        edges: &[Vec<usize>],
        reference: Reference,
        source: &Source,
    ) -> Result<(), CatalogError> {
        let Some(cycle) = find_cycle(edges) else {
            return Ok(());
        };
        let verb = reference.field();
        let chain: Vec<String> = cycle
            .windows(2)
            .map(|pair| {
                let (from, to) = (&self.hotfixes[pair[0]].id, &self.hotfixes[pair[1]].id);
                format!("{from} {verb} {to}")
            })
            .collect();
        let message = match reference {
            Reference::Supersedes => format!(
                "contradictory supersedence: {}; a hotfix cannot replace one that replaces it",
                chain.join(", ")
            ),
            Reference::Requires => format!(
                "prerequisite cycle: {}; none of them could be installed first",
                chain.join(", ")
            ),
        };
        Err(source.error_at(&self.path(cycle[0], reference, None), message))
    }

    /// A superseded hotfix is never installed, so requiring one that the hotfix itself
    /// supersedes can never be met; requiring one that supersedes it makes it obsolete.
    fn refuse_requiring_superseded(
        &self,
        requires: &[Vec<usize>],
        closures: &[IdSet],
        source: &Source,
    ) -> Result<(), CatalogError> {
        for (index, targets) in requires.iter().enumerate() {
            for &target in targets {
                let (id, target_id) = (&self.hotfixes[index].id, &self.hotfixes[target].id);
                let problem = if closures[index].contains(target) {
                    format!("hotfix {id} requires {target_id}, which it supersedes: a superseded hotfix is never installed, so the requirement could not be met")
                } else if closures[target].contains(index) {
                    format!("hotfix {id} requires {target_id}, but {target_id} supersedes {id}: installing the prerequisite would make {id} obsolete")
                } else {
                    continue;
                };
                let position = self.hotfixes[index]
                    .requires
                    .iter()
                    .position(|r| r == target_id);
                return Err(
                    source.error_at(&self.path(index, Reference::Requires, position), problem)
                );
            }
        }
        Ok(())
    }

    fn into_hotfixes(self) -> Vec<Hotfix> {
        self.hotfixes
    }
}
