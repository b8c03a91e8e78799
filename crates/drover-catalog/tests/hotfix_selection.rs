//! Hotfix selection: supersedence (direct and transitive), prerequisites met by the hotfix or a
//! hotfix that supersedes it, prerequisites that do not apply on their own, installed hotfixes,
//! and installation order.

mod common;

use common::{catalog, example, v};
use drover_catalog::{select_hotfixes, CatalogError, HotfixReason, HotfixSelection};

fn selection(release: &str, installed: &[&str]) -> Vec<HotfixSelection> {
    let installed: Vec<String> = installed.iter().map(|id| id.to_string()).collect();
    select_hotfixes(&example(), &v(release), &installed).unwrap()
}

/// `id (reason, reboot)` per selected hotfix, in installation order.
fn described(selected: &[HotfixSelection]) -> Vec<String> {
    selected
        .iter()
        .map(|hotfix| {
            let reboot = if hotfix.reboot_required {
                "reboot"
            } else {
                "no reboot"
            };
            format!("{} ({}, {reboot})", hotfix.id, hotfix.reason)
        })
        .collect()
}

#[test]
fn transitively_superseded_hotfixes_are_left_out() {
    // HF-1403 supersedes HF-1402, which supersedes HF-1401: only HF-1403 is installed.
    assert_eq!(
        described(&selection("4.14.3", &[])),
        [
            "HF-1403 (applies, no reboot)",
            "HF-1410 (applies, reboot)",
            "HF-1411 (applies, no reboot)",
        ]
    );
}

#[test]
fn a_prerequisite_is_met_by_a_hotfix_that_supersedes_it() {
    // On 4.14.9, HF-1420 supersedes HF-1410, so HF-1411's prerequisite is HF-1420, installed
    // first; HF-1410 itself is never installed.
    assert_eq!(
        described(&selection("4.14.9", &[])),
        [
            "HF-1403 (applies, no reboot)",
            "HF-1420 (applies, reboot)",
            "HF-1411 (applies, no reboot)",
        ]
    );
}

#[test]
fn a_prerequisite_is_added_even_where_it_does_not_apply_on_its_own() {
    // HF-1410 applies to 4.14.3 and 4.14.9 only, but HF-1411 needs it on 4.14.10 too.
    let selected = selection("4.14.10", &[]);
    assert_eq!(
        described(&selected),
        [
            "HF-1403 (applies, no reboot)",
            "HF-1410 (required by HF-1411, reboot)",
            "HF-1411 (applies, no reboot)",
        ]
    );
    assert_eq!(
        selected[1].reason,
        HotfixReason::RequiredBy("HF-1411".to_string())
    );
}

#[test]
fn installed_hotfixes_and_what_they_supersede_are_not_selected_again() {
    assert_eq!(
        described(&selection("4.14.9", &["HF-1403", "HF-1420"])),
        ["HF-1411 (applies, no reboot)"]
    );
    // HF-1420 installed meets HF-1411's need for HF-1410, which it supersedes.
    assert_eq!(
        described(&selection("4.14.9", &["HF-1420"])),
        [
            "HF-1403 (applies, no reboot)",
            "HF-1411 (applies, no reboot)",
        ]
    );
    assert!(selection("4.14.9", &["HF-1403", "HF-1411", "HF-1420"]).is_empty());
}

#[test]
fn an_installed_superseded_hotfix_does_not_stop_its_successor() {
    let selected = selection("4.14.3", &["HF-1401", "HF-1410"]);
    assert_eq!(
        described(&selected),
        [
            "HF-1403 (applies, no reboot)",
            "HF-1411 (applies, no reboot)",
        ]
    );
}

#[test]
fn unknown_installed_ids_are_ignored_and_releases_without_hotfixes_get_none() {
    assert_eq!(
        described(&selection("4.15.1", &["KB-OLD-1"])),
        ["HF-1501 (applies, no reboot)"]
    );
    assert!(selection("4.13.5", &[]).is_empty());
}

#[test]
fn a_late_prerequisite_that_supersedes_a_selected_hotfix_replaces_it() {
    // A needs P, which only applies to 2.0 and supersedes B: installing B next to P would
    // install a superseded hotfix, so B is dropped and P serves both.
    let catalog = catalog(
        r#"
catalog: 1
product: p
releases: [{version: "1.0"}, {version: "2.0", upgrade_from: ["1.0"]}]
hotfixes:
  - {id: A, applies_to: ["1.0"], requires: [P]}
  - {id: B, applies_to: ["1.0"]}
  - {id: P, applies_to: ["2.0"], supersedes: [B], reboot_required: false}
"#,
    );
    let selected = select_hotfixes(&catalog, &v("1.0"), &[]).unwrap();
    assert_eq!(
        described(&selected),
        ["P (required by A, no reboot)", "A (applies, reboot)"]
    );
}

#[test]
fn prerequisites_come_first_and_ties_go_by_id() {
    let catalog = catalog(
        r#"
catalog: 1
product: p
releases: [{version: "1.0"}]
hotfixes:
  - {id: Z, applies_to: ["1.0"], requires: [M]}
  - {id: M, applies_to: ["1.0"], requires: [A]}
  - {id: A, applies_to: ["1.0"]}
  - {id: B, applies_to: ["1.0"]}
  - {id: Y, applies_to: ["1.0"]}
"#,
    );
    let ids: Vec<String> = select_hotfixes(&catalog, &v("1.0"), &[])
        .unwrap()
        .into_iter()
        .map(|hotfix| hotfix.id)
        .collect();
    assert_eq!(ids, ["A", "B", "M", "Y", "Z"]);
}

#[test]
fn a_prerequisite_loop_through_supersedence_is_reported() {
    // A needs R; S supersedes R, so S meets that need; but S needs A. Each rule alone is
    // fine, which is why the catalog accepts it; the order cannot be made.
    let catalog = catalog(
        r#"
catalog: 1
product: p
releases: [{version: "1.0"}]
hotfixes:
  - {id: A, applies_to: ["1.0"], requires: [R]}
  - {id: R, applies_to: ["1.0"]}
  - {id: S, applies_to: ["1.0"], supersedes: [R], requires: [A]}
"#,
    );
    let error = select_hotfixes(&catalog, &v("1.0"), &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the hotfixes for release 1.0 cannot be ordered: A, S wait on each other through their prerequisites"
    );
}

#[test]
fn an_absurd_installed_list_is_refused() {
    let installed = vec!["HF-1401".to_string(); drover_catalog::limits::MAX_INSTALLED_HOTFIXES + 1];
    let error = select_hotfixes(&example(), &v("4.14.3"), &installed).unwrap_err();
    assert!(matches!(
        error,
        CatalogError::InputTooLarge {
            what: "installed hotfixes",
            ..
        }
    ));
}
