//! Control plane gates, the cluster compatibility level after an upgrade, and channel questions
//! for the approval strategy.

mod common;

use common::{catalog, example, v, versions};
use drover_catalog::{
    compatibility_level_after_upgrade, control_plane_gate, is_newer_available, newest_in_channel,
    solve_path, CatalogError,
};

#[test]
fn the_highest_requirement_along_the_path_is_checked() {
    let catalog = example();
    let path = solve_path(&catalog, &v("4.13.20"), &v("4.15.1"), Some("stable")).unwrap();
    // 4.14.3 and 4.14.10 need 5.2; 4.15.1 needs 5.3.
    let error = control_plane_gate(&catalog, &path, Some(&v("5.2.4"))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "release 4.15.1 requires the control plane at 5.3 or newer, but it runs 5.2.4: upgrade the control plane before any compute host"
    );
    assert_eq!(control_plane_gate(&catalog, &path, Some(&v("5.3"))), Ok(()));
}

#[test]
fn an_unknown_control_plane_is_refused_only_when_a_floor_exists() {
    let catalog = example();
    let needs_floor = solve_path(&catalog, &v("4.13.5"), &v("4.14.3"), None).unwrap();
    let error = control_plane_gate(&catalog, &needs_floor, None).unwrap_err();
    assert_eq!(
        error,
        CatalogError::ControlPlaneVersionUnknown {
            release: v("4.14.3"),
            required: v("5.2"),
        }
    );
    assert!(error
        .to_string()
        .contains("the control plane version is unknown"));
    let no_floor = solve_path(&catalog, &v("4.12.0"), &v("4.13.5"), None).unwrap();
    assert_eq!(control_plane_gate(&catalog, &no_floor, None), Ok(()));
}

#[test]
fn a_single_target_can_be_gated_without_a_path() {
    let catalog = example();
    let error = control_plane_gate(&catalog, &v("4.16.0"), Some(&v("5.3"))).unwrap_err();
    let CatalogError::ControlPlaneTooOld(shortfall) = error else {
        panic!("expected ControlPlaneTooOld, got {error}");
    };
    assert_eq!(
        (
            shortfall.release,
            shortfall.required,
            shortfall.control_plane
        ),
        (v("4.16.0"), v("5.4"), v("5.3"))
    );
    assert_eq!(
        control_plane_gate(&catalog, &v("4.16"), Some(&v("5.4.0"))),
        Ok(())
    );
    let error = control_plane_gate(&catalog, &v("4.17"), Some(&v("9"))).unwrap_err();
    assert_eq!(error.to_string(), "release 4.17 is not in the catalog");
}

#[test]
fn the_cluster_level_is_the_highest_every_upgraded_host_supports() {
    let catalog = example();
    let level = |hosts: &[&str]| compatibility_level_after_upgrade(&catalog, &versions(hosts));
    assert_eq!(
        level(&["4.14.9", "4.14.9", "4.14.3"]).as_deref(),
        Some("4.14")
    );
    // A host still on 4.13 holds the cluster at 4.13.
    assert_eq!(level(&["4.14.9", "4.13.5"]).as_deref(), Some("4.13"));
    assert_eq!(level(&["4.15.1", "4.16.0"]).as_deref(), Some("4.15"));
    assert_eq!(level(&["4.12.30", "4.16.0"]), None, "no level in common");
    assert_eq!(
        level(&["4.14.9", "4.14.4"]),
        None,
        "4.14.4's levels are unknown"
    );
    assert_eq!(level(&[]), None);
}

#[test]
fn levels_compare_as_versions_not_text() {
    let catalog = catalog(
        "catalog: 1\nproduct: p\nreleases:\n  - {version: \"1\", compatibility_levels: [\"4.10\", \"4.9\", \"4.2\"]}\n",
    );
    let level = compatibility_level_after_upgrade(&catalog, &[v("1")]);
    assert_eq!(level.as_deref(), Some("4.10"));
}

const CHANNELS: &str = r#"
catalog: 1
product: p
channels: [stable, eus, candidate]
releases:
  - {version: "1.0", channels: [stable, eus]}
  - {version: "1.2", channels: [stable], upgrade_from: ["1.0"]}
  - {version: "1.3", channels: [], upgrade_from: ["1.2"]}
"#;

#[test]
fn the_newest_release_of_a_channel_is_found() {
    let catalog = catalog(CHANNELS);
    let newest = |channel| newest_in_channel(&catalog, channel).map(|r| r.version.to_string());
    assert_eq!(newest("stable").as_deref(), Some("1.2"));
    assert_eq!(newest("eus").as_deref(), Some("1.0"));
    assert_eq!(newest("candidate"), None);
    assert_eq!(newest("unknown"), None);
    let example = example();
    assert_eq!(
        newest_in_channel(&example, "eus").map(|release| &release.version),
        Some(&v("4.16.0"))
    );
}

#[test]
fn a_newer_release_is_offered_only_when_it_is_newer_than_the_target() {
    let catalog = catalog(CHANNELS);
    assert_eq!(
        is_newer_available(&catalog, "stable", &v("1.0")),
        Some(v("1.2"))
    );
    assert_eq!(is_newer_available(&catalog, "stable", &v("1.2.0")), None);
    assert_eq!(is_newer_available(&catalog, "eus", &v("1.0")), None);
    assert_eq!(is_newer_available(&catalog, "stable", &v("2.0")), None);
}
