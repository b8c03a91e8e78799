//! Upgrade path solving: EUS chains, forbidden minor skips, z-stream jumps, channel filtering,
//! tie-breaking, reboot counting in one window, and errors that name the missing edge.

mod common;

use common::{catalog, example, v, versions};
use drover_catalog::{solve_path, CatalogError, UpgradePath};
use drover_core::Version;

fn hop_versions(path: &UpgradePath) -> Vec<Version> {
    path.hops()
        .iter()
        .map(|hop| hop.release_version.clone())
        .collect()
}

fn solved(from: &str, to: &str, channel: Option<&str>) -> UpgradePath {
    solve_path(&example(), &v(from), &v(to), channel)
        .unwrap_or_else(|error| panic!("{from} → {to}: {error}"))
}

fn refused(from: &str, to: &str, channel: Option<&str>) -> CatalogError {
    match solve_path(&example(), &v(from), &v(to), channel) {
        Ok(path) => panic!("{from} → {to} was solved as {}", path.summary()),
        Err(error) => error,
    }
}

#[test]
fn eus_to_eus_passes_through_the_odd_minor_and_reboots_once() {
    let path = solved("4.12.30", "4.14.3", Some("eus"));
    assert_eq!(hop_versions(&path), versions(&["4.13.5", "4.14.3"]));
    // 4.13.5's reboot is deferrable, so the workers reboot once, after 4.14.3.
    assert_eq!(path.reboots_needed(), 1);
    assert!(!path.hops()[0].reboot_after_hop && path.hops()[1].reboot_after_hop);
    assert_eq!(path.summary(), "4.12.30 → 4.13.5 → 4.14.3 (1 reboot)");
}

#[test]
fn a_minor_cannot_be_skipped_nor_entered_from_an_old_z_stream() {
    // 4.13.5 installs only from 4.12.30, and 4.14 only from 4.13.*.
    let path = solved("4.12.0", "4.14.3", None);
    assert_eq!(
        hop_versions(&path),
        versions(&["4.12.30", "4.13.5", "4.14.3"])
    );
}

#[test]
fn a_z_stream_jumps_straight_to_the_newer_z() {
    let path = solved("4.14.3", "4.14.10", None);
    assert_eq!(hop_versions(&path), versions(&["4.14.10"]));
    let path = solved("4.14.3", "4.14.9", Some("eus"));
    assert_eq!(path.summary(), "4.14.3 → 4.14.9 (no reboot)");
}

#[test]
fn a_running_version_missing_from_the_catalog_is_fine() {
    // Hosts may run z-streams the catalog does not list.
    let path = solved("4.14.5", "4.14.9", Some("eus"));
    assert_eq!(hop_versions(&path), versions(&["4.14.9"]));
    assert_eq!(path.from(), &v("4.14.5"));
}

#[test]
fn the_target_itself_is_an_empty_path() {
    let path = solved("4.14.9", "4.14.9.0", Some("eus"));
    assert!(path.is_empty());
    assert_eq!(path.reboots_needed(), 0);
    assert_eq!(path.target(), &v("4.14.9"));
    assert_eq!(path.summary(), "4.14.9 (already there)");
}

#[test]
fn a_target_older_than_the_running_version_is_a_downgrade() {
    let error = refused("4.14.9", "4.13.5", None);
    assert_eq!(
        error.to_string(),
        "cannot upgrade from 4.14.9 to 4.13.5: 4.13.5 is older than 4.14.9, and a downgrade is not an upgrade"
    );
}

#[test]
fn an_unreachable_target_names_the_missing_edge() {
    let error = refused("4.13.2", "4.15.1", Some("eus"));
    assert_eq!(
        error.to_string(),
        "no upgrade path from 4.13.2 to 4.15.1 in channel eus: the newest version reachable \
         from 4.13.2 is 4.14.9, and no release in channel eus up to 4.15.1 can be installed \
         from it; 4.15.1 accepts upgrades only from 4.14.10 (4.14.10 would be accepted but is \
         not in channel eus)"
    );
    let CatalogError::Unreachable(details) = error else {
        panic!("expected Unreachable");
    };
    assert_eq!(details.newest_reachable, v("4.14.9"));
    assert_eq!(details.accepted_outside_channel, versions(&["4.14.10"]));
}

#[test]
fn the_same_request_succeeds_in_the_channel_that_has_the_bridge() {
    let path = solved("4.13.2", "4.15.1", Some("stable"));
    assert_eq!(
        hop_versions(&path),
        versions(&["4.14.3", "4.14.10", "4.15.1"])
    );
}

#[test]
fn a_running_version_nothing_accepts_is_named() {
    let error = refused("4.11.9", "4.12.30", None);
    assert_eq!(
        error.to_string(),
        "no upgrade path from 4.11.9 to 4.12.30: no release up to 4.12.30 can be installed from \
         4.11.9; 4.12.30 accepts upgrades only from 4.12.*"
    );
}

#[test]
fn a_base_release_cannot_be_reached_as_an_upgrade() {
    let error = refused("4.11.9", "4.12.0", Some("stable"));
    assert!(
        error
            .to_string()
            .ends_with("4.12.0 lists no upgrade_from, so it can only be installed fresh"),
        "{error}"
    );
}

#[test]
fn a_target_absent_from_the_catalog_or_channel_is_named() {
    let error = refused("4.14.9", "4.17.0", None);
    assert_eq!(error.to_string(), "release 4.17.0 is not in the catalog");
    let error = refused("4.13.5", "4.13.20", Some("eus"));
    assert_eq!(
        error.to_string(),
        "release 4.13.20 is not in channel eus (it is in: stable)"
    );
    // Checked before "already there": a host at an off-channel version still gets told.
    let error = refused("4.13.20", "4.13.20", Some("eus"));
    assert!(matches!(error, CatalogError::TargetNotInCatalog { .. }));
}

#[test]
fn an_unknown_channel_lists_the_known_ones() {
    let error = refused("4.14.3", "4.14.9", Some("candidate"));
    assert_eq!(
        error.to_string(),
        "unknown channel \"candidate\"; the catalog's channels are: stable, eus"
    );
}

const CHANNEL_SHORTCUT: &str = r#"
catalog: 1
product: p
channels: [stable, fast]
releases:
  - {version: "1.0", channels: [stable, fast]}
  - {version: "2.0", channels: [fast], upgrade_from: ["1.*"]}
  - {version: "2.5", channels: [stable, fast], upgrade_from: ["1.*"]}
  - {version: "2.9", channels: [stable, fast], upgrade_from: ["2.5"]}
  - {version: "3.0", channels: [stable, fast], upgrade_from: ["2.0", "2.9"]}
"#;

#[test]
fn a_channel_only_uses_its_own_releases() {
    let catalog = catalog(CHANNEL_SHORTCUT);
    let fast = solve_path(&catalog, &v("1.0"), &v("3.0"), Some("fast")).unwrap();
    assert_eq!(hop_versions(&fast), versions(&["2.0", "3.0"]));
    let stable = solve_path(&catalog, &v("1.0"), &v("3.0"), Some("stable")).unwrap();
    assert_eq!(hop_versions(&stable), versions(&["2.5", "2.9", "3.0"]));
    let any = solve_path(&catalog, &v("1.0"), &v("3.0"), None).unwrap();
    assert_eq!(hop_versions(&any), versions(&["2.0", "3.0"]));
}

#[test]
fn ties_go_to_the_newer_intermediate_release() {
    let catalog = catalog(
        r#"
catalog: 1
product: p
releases:
  - {version: "1.5", upgrade_from: ["1.0"]}
  - {version: "1.6", upgrade_from: ["1.0"]}
  - {version: "1.4", upgrade_from: ["1.0"]}
  - {version: "2.0", upgrade_from: ["1.4", "1.5", "1.6"]}
"#,
    );
    let path = solve_path(&catalog, &v("1.0"), &v("2.0"), None).unwrap();
    assert_eq!(hop_versions(&path), versions(&["1.6", "2.0"]));
}

const REBOOTS: &str = r#"
catalog: 1
product: p
releases:
  - {version: "2", upgrade_from: ["1"], reboot_required: true, reboot_deferrable: true}
  - {version: "3", upgrade_from: ["2"], reboot_required: true, reboot_deferrable: true}
  - {version: "4", upgrade_from: ["3"], reboot_required: false}
  - {version: "5", upgrade_from: ["4"], reboot_required: true}
  - {version: "6", upgrade_from: ["5"], reboot_required: false}
  - {version: "7", upgrade_from: ["6"], reboot_required: false}
"#;

fn reboot_plan(from: &str, to: &str) -> (usize, Vec<bool>) {
    let path = solve_path(&catalog(REBOOTS), &v(from), &v(to), None).unwrap();
    let after: Vec<bool> = path.hops().iter().map(|hop| hop.reboot_after_hop).collect();
    (path.reboots_needed(), after)
}

#[test]
fn deferrable_reboots_wait_for_the_end_of_the_window() {
    // 2 and 3 defer their reboots; 4 needs none but still owes theirs at the end.
    assert_eq!(reboot_plan("1", "4"), (1, vec![false, false, true]));
}

#[test]
fn a_reboot_that_cannot_wait_also_pays_the_deferred_ones() {
    assert_eq!(reboot_plan("1", "5"), (1, vec![false, false, false, true]));
}

#[test]
fn nothing_owed_after_the_last_reboot_means_no_reboot_at_the_end() {
    assert_eq!(reboot_plan("4", "7"), (1, vec![true, false, false]));
    assert_eq!(reboot_plan("5", "7"), (0, vec![false, false]));
}

#[test]
fn non_deferrable_intermediate_reboots_are_each_counted() {
    let path = solved("4.12.0", "4.14.9", Some("eus"));
    assert_eq!(
        hop_versions(&path),
        versions(&["4.12.30", "4.13.5", "4.14.3", "4.14.9"])
    );
    // 4.12.30 reboots at once; 4.13.5 defers to 4.14.3, which reboots; 4.14.9 needs none.
    let after: Vec<bool> = path.hops().iter().map(|hop| hop.reboot_after_hop).collect();
    assert_eq!(after, vec![true, false, true, false]);
    assert_eq!(
        path.summary(),
        "4.12.0 → 4.12.30 → 4.13.5 → 4.14.3 → 4.14.9 (2 reboots)"
    );
}

#[test]
fn a_dense_catalog_at_the_release_limit_is_solved_and_explained() {
    // Every release accepts every older one: about two million edges.
    let mut text = String::from("catalog: 1\nproduct: p\nreleases:\n");
    for minor in 1..=drover_catalog::limits::MAX_RELEASES {
        text.push_str(&format!(
            "  - {{version: \"1.{minor}\", upgrade_from: [\"1.*\", \"1.0.*\", \"0.9.1\"]}}\n"
        ));
    }
    let catalog = catalog(&text);
    let path = solve_path(&catalog, &v("1.0.3"), &v("1.2000"), None).unwrap();
    assert_eq!(path.summary(), "1.0.3 → 1.2000 (1 reboot)");
    let error = solve_path(&catalog, &v("0.9"), &v("1.2000"), None).unwrap_err();
    assert!(error
        .to_string()
        .contains("no release up to 1.2000 can be installed from 0.9"));
}

mod property {
    //! On random small catalogs, the solver's answer is compared with brute force: every path
    //! from the running version to the target, enumerated.

    use super::*;
    use proptest::prelude::*;

    /// Release `k` (1-based) is version `k.0`; the running version may be `k.5`, off-catalog.
    #[derive(Clone, Debug)]
    struct RandomRelease {
        /// For each older release index, whether it is accepted exactly.
        accepts_exact: Vec<bool>,
        /// Whether it accepts the whole series of the previous major (`k-1.*`).
        accepts_previous_series: bool,
        in_fast: bool,
    }

    fn random_catalog() -> impl Strategy<Value = Vec<RandomRelease>> {
        (2usize..8).prop_flat_map(|count| {
            (0..count)
                .map(|index| {
                    (
                        proptest::collection::vec(proptest::bool::weighted(0.4), index),
                        proptest::bool::weighted(0.3),
                        any::<bool>(),
                    )
                        .prop_map(
                            |(accepts_exact, accepts_previous_series, in_fast)| RandomRelease {
                                accepts_exact,
                                accepts_previous_series,
                                in_fast,
                            },
                        )
                })
                .collect::<Vec<_>>()
        })
    }

    fn catalog_text(releases: &[RandomRelease]) -> String {
        let mut text = String::from("catalog: 1\nproduct: p\nchannels: [all, fast]\nreleases:\n");
        for (index, release) in releases.iter().enumerate() {
            let major = index + 1;
            let mut patterns: Vec<String> = release
                .accepts_exact
                .iter()
                .enumerate()
                .filter(|(_, accepted)| **accepted)
                .map(|(older, _)| format!("\"{}.0\"", older + 1))
                .collect();
            if release.accepts_previous_series {
                patterns.push(format!("\"{}.*\"", major - 1));
            }
            let channels = if release.in_fast {
                "[all, fast]"
            } else {
                "[all]"
            };
            text.push_str(&format!(
                "  - {{version: \"{major}.0\", channels: {channels}, upgrade_from: [{}]}}\n",
                patterns.join(", ")
            ));
        }
        text
    }

    /// Every chain of allowed hops from `from` to `to` within `channel`, by exhaustive search.
    fn all_paths(
        catalog: &drover_catalog::Catalog,
        from: &Version,
        to: &Version,
        channel: Option<&str>,
    ) -> Vec<Vec<Version>> {
        let mut found = Vec::new();
        let mut stack = vec![(from.clone(), Vec::new())];
        while let Some((at, path)) = stack.pop() {
            if at == *to {
                found.push(path);
                continue;
            }
            for release in catalog.releases() {
                if release.is_in_channel(channel)
                    && release.version <= *to
                    && release.is_installable_from(&at)
                {
                    let mut longer: Vec<Version> = path.clone();
                    longer.push(release.version.clone());
                    stack.push((release.version.clone(), longer));
                }
            }
        }
        found
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn the_solver_finds_the_shortest_newest_first_chain(
            releases in random_catalog(),
            from_major in 0usize..4,
            from_is_off_catalog in any::<bool>(),
            to_from_newest in 0usize..3,
            use_fast in proptest::bool::weighted(0.3),
        ) {
            let catalog = catalog(&catalog_text(&releases));
            // Targets near the newest release and running versions near the oldest make for
            // long paths; the early returns below cover the rest.
            let to = v(&format!("{}.0", releases.len().saturating_sub(to_from_newest).max(1)));
            let from = if from_is_off_catalog {
                v(&format!("{from_major}.5"))
            } else {
                v(&format!("{}.0", from_major.max(1)))
            };
            let channel = use_fast.then_some("fast");
            let result = solve_path(&catalog, &from, &to, channel);
            let target_in_channel = catalog.release(&to).unwrap().is_in_channel(channel);
            if !target_in_channel {
                let refused_as_absent = matches!(result, Err(CatalogError::TargetNotInCatalog { .. }));
                prop_assert!(refused_as_absent);
                return Ok(());
            }
            if from > to {
                prop_assert!(matches!(result, Err(CatalogError::Downgrade { .. })), "{result:?}");
                return Ok(());
            }
            let mut expected = all_paths(&catalog, &from, &to, channel);
            let shortest = expected.iter().map(Vec::len).min();
            expected.retain(|path| Some(path.len()) == shortest);
            // Among equally short paths, the newer first differing hop wins.
            let best = expected.into_iter().max();
            match (result, best) {
                (Ok(path), Some(best)) => {
                    prop_assert_eq!(hop_versions(&path), best);
                    let mut at = from.clone();
                    for hop in path.hops() {
                        let release = catalog.release(&hop.release_version).unwrap();
                        prop_assert!(release.is_installable_from(&at));
                        prop_assert!(release.is_in_channel(channel));
                        at = hop.release_version.clone();
                    }
                    prop_assert_eq!(&at, &to);
                }
                (Err(CatalogError::Unreachable(details)), None) => {
                    prop_assert!(details.newest_reachable < to && details.newest_reachable >= from);
                }
                (result, best) => prop_assert!(false, "solver {result:?}, brute force {best:?}"),
            }
        }
    }
}
