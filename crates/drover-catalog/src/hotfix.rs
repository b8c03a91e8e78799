//! Hotfix selection: the smallest set of hotfixes that brings a release up to date, in an order
//! that installs prerequisites first.
//!
//! Every hotfix that applies to the release is wanted unless another applicable hotfix
//! supersedes it (transitively), or it is installed, or an installed hotfix supersedes it. A
//! prerequisite is met by the hotfix itself or by any hotfix that supersedes it, and is added
//! when nothing installed or selected meets it. A superseded hotfix is never selected alongside
//! the one that replaces it (CloudStack warns about exactly that). This module knows the
//! catalog, not hosts or how hotfixes are installed.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use drover_core::Version;

use crate::error::CatalogError;
use crate::id_set::IdSet;
use crate::limits::MAX_INSTALLED_HOTFIXES;
use crate::model::Catalog;

/// Why a hotfix was selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HotfixReason {
    /// It applies to the release and nothing applicable or installed supersedes it.
    Applies,
    /// The named selected hotfix needs it first.
    RequiredBy(String),
}

impl fmt::Display for HotfixReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HotfixReason::Applies => formatter.write_str("applies"),
            HotfixReason::RequiredBy(id) => write!(formatter, "required by {id}"),
        }
    }
}

/// One hotfix to install, in installation order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotfixSelection {
    /// The hotfix id, as in the catalog.
    pub id: String,
    /// Why it was selected.
    pub reason: HotfixReason,
    /// Whether installing it needs a host reboot.
    pub reboot_required: bool,
}

/// The hotfixes to install on a host running `release` that already has `installed` (ids the
/// catalog does not know are ignored: they cannot supersede anything it lists), prerequisites
/// first and otherwise by id. `release` need not be listed in the catalog: the hotfixes'
/// `applies_to` patterns decide.
pub fn select_hotfixes(
    catalog: &Catalog,
    release: &Version,
    installed: &[String],
) -> Result<Vec<HotfixSelection>, CatalogError> {
    if installed.len() > MAX_INSTALLED_HOTFIXES {
        return Err(CatalogError::InputTooLarge {
            what: "installed hotfixes",
            count: installed.len(),
            limit: MAX_INSTALLED_HOTFIXES,
        });
    }
    let covered = covered_by_installed(catalog, installed);
    let wanted = applicable_and_not_superseded(catalog, release, &covered);
    let selection = settle(catalog, &wanted, &covered);
    installation_order(catalog, release, &selection)
}

/// The installed hotfixes and everything they supersede: nothing here needs installing.
fn covered_by_installed(catalog: &Catalog, installed: &[String]) -> IdSet {
    let mut covered = IdSet::with_capacity(catalog.hotfixes().len());
    for index in installed.iter().filter_map(|id| catalog.hotfix_index(id)) {
        covered.insert(index);
        covered.union_with(catalog.superseded_by(index));
    }
    covered
}

fn applicable_and_not_superseded(catalog: &Catalog, release: &Version, covered: &IdSet) -> IdSet {
    let count = catalog.hotfixes().len();
    let mut applicable = IdSet::with_capacity(count);
    let mut superseded = IdSet::with_capacity(count);
    for (index, hotfix) in catalog.hotfixes().iter().enumerate() {
        if hotfix.applies_to_release(release) {
            applicable.insert(index);
            superseded.union_with(catalog.superseded_by(index));
        }
    }
    applicable.subtract(&superseded);
    applicable.subtract(covered);
    applicable
}

/// A set of selected hotfixes with the reason for each.
struct Selection {
    chosen: IdSet,
    /// Everything the chosen hotfixes supersede, transitively.
    superseded_by_chosen: IdSet,
    /// For each hotfix, the chosen hotfix that required it (`None`: it applies in its own right).
    required_by: Vec<Option<usize>>,
}

impl Selection {
    fn add(&mut self, catalog: &Catalog, index: usize, required_by: Option<usize>) {
        self.chosen.insert(index);
        self.superseded_by_chosen
            .union_with(catalog.superseded_by(index));
        self.required_by[index] = required_by;
    }
}

/// A prerequisite added late may supersede a hotfix chosen earlier. Such hotfixes are dropped
/// from the wanted set and the selection is made again; each round drops at least one more
/// hotfix, so there are at most as many rounds as hotfixes.
fn settle(catalog: &Catalog, wanted: &IdSet, covered: &IdSet) -> Selection {
    let mut dropped = IdSet::with_capacity(catalog.hotfixes().len());
    loop {
        let mut still_wanted = wanted.clone();
        still_wanted.subtract(&dropped);
        let mut selection = with_prerequisites(catalog, &still_wanted, covered);
        let mut superseded = selection.superseded_by_chosen.clone();
        superseded.intersect_with(&selection.chosen);
        if superseded.is_subset_of(&dropped) {
            // Whatever needed a dropped hotfix is served by the selected one that supersedes it.
            selection.chosen.subtract(&superseded);
            return selection;
        }
        dropped.union_with(&superseded);
    }
}

/// `wanted` plus, transitively, every prerequisite that nothing installed or chosen meets.
fn with_prerequisites(catalog: &Catalog, wanted: &IdSet, covered: &IdSet) -> Selection {
    let count = catalog.hotfixes().len();
    let mut selection = Selection {
        chosen: IdSet::with_capacity(count),
        superseded_by_chosen: IdSet::with_capacity(count),
        required_by: vec![None; count],
    };
    let mut queue: VecDeque<usize> = wanted.iter().collect();
    for &index in &queue {
        selection.add(catalog, index, None);
    }
    while let Some(index) = queue.pop_front() {
        for required_id in &catalog.hotfixes()[index].requires {
            let required = catalog
                .hotfix_index(required_id)
                .expect("the catalog refuses unknown prerequisites");
            let met = covered.contains(required)
                || selection.chosen.contains(required)
                || selection.superseded_by_chosen.contains(required);
            if !met {
                selection.add(catalog, required, Some(index));
                queue.push_back(required);
            }
        }
    }
    selection
}

/// Prerequisites first (each requirement waits on the selected hotfix that meets it), ties by
/// id. A requirement met through supersedence can close a loop the catalog rules cannot see,
/// so one is reported rather than assumed away.
fn installation_order(
    catalog: &Catalog,
    release: &Version,
    selection: &Selection,
) -> Result<Vec<HotfixSelection>, CatalogError> {
    let mut waits = Waits::between(catalog, selection);
    let mut ready: BTreeSet<usize> = selection
        .chosen
        .iter()
        .filter(|index| waits.waiting_on[*index] == 0)
        .collect();
    let mut ordered = Vec::new();
    while let Some(index) = ready.pop_first() {
        ordered.push(index);
        ready.extend(waits.release_dependents_of(index));
    }
    if ordered.len() < selection.chosen.iter().count() {
        let stuck = selection
            .chosen
            .iter()
            .filter(|index| !ordered.contains(index))
            .map(|index| catalog.hotfixes()[index].id.clone())
            .collect();
        return Err(CatalogError::HotfixOrderCycle {
            release: release.clone(),
            hotfix_ids: stuck,
        });
    }
    Ok(ordered
        .into_iter()
        .map(|index| describe(catalog, selection, index))
        .collect())
}

/// Who waits on whom among the selected hotfixes.
struct Waits {
    /// For each hotfix, how many selected hotfixes must be installed before it.
    waiting_on: Vec<usize>,
    /// For each hotfix, the selected hotfixes that wait on it.
    dependents: Vec<Vec<usize>>,
}

impl Waits {
    fn between(catalog: &Catalog, selection: &Selection) -> Waits {
        let count = catalog.hotfixes().len();
        let mut waits = Waits {
            waiting_on: vec![0; count],
            dependents: vec![Vec::new(); count],
        };
        let mut meets = MeetingHotfix::new(count);
        for index in selection.chosen.iter() {
            for required_id in &catalog.hotfixes()[index].requires {
                let required = catalog.hotfix_index(required_id).expect("checked at parse");
                // Met by something installed: nothing to wait for.
                let Some(meeting) = meets.find(catalog, selection, required) else {
                    continue;
                };
                if meeting != index {
                    waits.waiting_on[index] += 1;
                    waits.dependents[meeting].push(index);
                }
            }
        }
        waits
    }

    /// Marks `installed` as done; returns the dependents that now wait on nothing.
    fn release_dependents_of(&mut self, installed: usize) -> Vec<usize> {
        let mut now_ready = Vec::new();
        for &dependent in &self.dependents[installed] {
            self.waiting_on[dependent] -= 1;
            if self.waiting_on[dependent] == 0 {
                now_ready.push(dependent);
            }
        }
        now_ready
    }
}

/// Which selected hotfix meets a requirement: the required one itself, else the first (by id)
/// selected hotfix that supersedes it. Cached per requirement, so ordering costs at most
/// hotfixes × selected lookups whatever the number of `requires` entries.
struct MeetingHotfix {
    cache: Vec<Option<Option<usize>>>,
}

impl MeetingHotfix {
    fn new(count: usize) -> MeetingHotfix {
        MeetingHotfix {
            cache: vec![None; count],
        }
    }

    fn find(&mut self, catalog: &Catalog, selection: &Selection, required: usize) -> Option<usize> {
        *self.cache[required].get_or_insert_with(|| {
            if selection.chosen.contains(required) {
                return Some(required);
            }
            selection
                .chosen
                .iter()
                .find(|chosen| catalog.superseded_by(*chosen).contains(required))
        })
    }
}

fn describe(catalog: &Catalog, selection: &Selection, index: usize) -> HotfixSelection {
    let hotfix = &catalog.hotfixes()[index];
    let reason = match selection.required_by[index] {
        None => HotfixReason::Applies,
        Some(requirer) => HotfixReason::RequiredBy(catalog.hotfixes()[requirer].id.clone()),
    };
    HotfixSelection {
        id: hotfix.id.clone(),
        reason,
        reboot_required: hotfix.reboot_required,
    }
}
