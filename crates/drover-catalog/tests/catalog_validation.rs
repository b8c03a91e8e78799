//! Catalog parsing and checking: the example parses, JSON is accepted, and every refusal names
//! the file, line, column, field path and the release or hotfix involved.

mod common;

use common::{catalog, example, refusal, v, EXAMPLE_CATALOG};
use drover_catalog::{parse_catalog, CatalogError, VersionPattern};

#[test]
fn the_example_catalog_parses_sorted_and_complete() {
    let catalog = example();
    assert_eq!(catalog.product(), "example-hypervisor");
    assert_eq!(catalog.channels(), ["stable", "eus"]);
    assert_eq!(catalog.releases().len(), 9);
    assert_eq!(catalog.hotfixes().len(), 7);
    let release = catalog.release(&v("4.14.3")).unwrap();
    assert_eq!(release.requires_control_plane, Some(v("5.2")));
    assert_eq!(release.upgrade_from, [VersionPattern::Series(v("4.13"))]);
    assert!(catalog.supersedes("HF-1403", "HF-1401"), "transitively");
    assert!(!catalog.supersedes("HF-1401", "HF-1403"));
}

#[test]
fn json_is_accepted_and_unquoted_versions_keep_their_digits() {
    let json = r#"{"catalog": 1, "product": "p", "channels": ["stable"],
        "releases": [{"version": "8.9", "channels": ["stable"]},
                     {"version": "8.10", "channels": ["stable"], "upgrade_from": ["8.9"]}]}"#;
    let parsed = catalog(json);
    assert_eq!(parsed.releases().len(), 2);
    // Unquoted in YAML, 8.10 must not become the float 8.1.
    let yaml = "catalog: 1\nproduct: p\nreleases:\n  - version: 8.1\n  - version: 8.10\n    upgrade_from: [8.1]\n";
    let parsed = catalog(yaml);
    assert_eq!(parsed.releases()[1].version.as_str(), "8.10");
}

#[test]
fn defaults_assume_a_reboot_and_no_deferral() {
    let parsed = catalog("catalog: 1\nproduct: p\nreleases:\n  - version: \"1\"\nhotfixes:\n  - {id: H1, applies_to: [\"1\"]}\n");
    let release = &parsed.releases()[0];
    assert!(release.reboot_required && !release.reboot_deferrable);
    assert!(release.upgrade_from.is_empty() && release.channels.is_empty());
    assert!(parsed.hotfixes()[0].reboot_required);
}

/// A catalog with one release list and one hotfix list spliced in.
fn with(releases: &str, hotfixes: &str) -> String {
    format!("catalog: 1\nproduct: p\nchannels: [stable, eus]\nreleases:\n{releases}hotfixes:\n{hotfixes}")
}

const TWO_RELEASES: &str = "  - {version: \"8.0\", channels: [stable]}\n  - {version: \"8.1\", channels: [stable], upgrade_from: [\"8.0\"]}\n";

#[test]
fn a_duplicate_version_names_both_places() {
    let text = with(
        "  - version: \"8.2\"\n  - version: \"8.1\"\n  - version: \"8.2.0\"\n",
        "  []\n",
    );
    assert_eq!(
        refusal(&text),
        "test.yaml:7:14: releases[2].version: release 8.2.0 is listed twice (the same version as 8.2 at line 5)"
    );
}

#[test]
fn an_unknown_channel_names_the_release() {
    let text = with(
        "  - version: \"8.0\"\n    channels: [stable, fast]\n",
        "  []\n",
    );
    assert_eq!(
        refusal(&text),
        "test.yaml:6:24: releases[0].channels[1]: release 8.0: unknown channel \"fast\" (declared: stable, eus)"
    );
}

#[test]
fn an_edge_to_an_equal_or_older_version_is_a_downgrade_or_cycle() {
    let text = with(
        "  - version: \"8.0\"\n  - version: \"8.1\"\n    upgrade_from: [\"8.0\", \"8.2\"]\n",
        "  []\n",
    );
    assert_eq!(
        refusal(&text),
        "test.yaml:7:27: releases[1].upgrade_from[1]: release 8.1: upgrade_from \"8.2\" matches no \
         version older than 8.1; an upgrade edge must come from an older version (this one would \
         be a downgrade or a cycle)"
    );
    let own_series = with(
        "  - version: \"8.1\"\n    upgrade_from: [\"8.1.*\"]\n",
        "  []\n",
    );
    assert!(refusal(&own_series)
        .contains("release 8.1: upgrade_from \"8.1.*\" matches no version older than 8.1"));
    let itself = with(
        "  - version: \"8.1\"\n    upgrade_from: [\"8.1.0\"]\n",
        "  []\n",
    );
    assert!(refusal(&itself).contains("releases[0].upgrade_from[0]: release 8.1:"));
}

#[test]
fn a_compatibility_level_listed_twice_names_the_release() {
    let text = with(
        "  - version: \"8.0\"\n    compatibility_levels: [\"4.10\", \"4.9\", \"4.10.0\"]\n",
        "  []\n",
    );
    assert_eq!(
        refusal(&text),
        "test.yaml:6:43: releases[0].compatibility_levels[2]: release 8.0: compatibility level 4.10.0 is listed twice (equal to 4.10)"
    );
}

#[test]
fn an_upgrade_from_older_than_the_catalog_is_fine() {
    let text = with(
        "  - version: \"8.1\"\n    upgrade_from: [\"7.9\", \"6.*\"]\n",
        "  []\n",
    );
    assert_eq!(catalog(&text).releases()[0].upgrade_from.len(), 2);
}

#[test]
fn a_duplicate_hotfix_names_both_places() {
    let text = with(
        TWO_RELEASES,
        "  - {id: HF1, applies_to: [\"8.1\"]}\n  - {id: HF1, applies_to: [\"8.0\"]}\n",
    );
    assert_eq!(
        refusal(&text),
        "test.yaml:9:10: hotfixes[1].id: hotfix HF1 is listed twice (first at line 8)"
    );
}

#[test]
fn unknown_superseded_or_required_hotfixes_are_named() {
    let supersedes = with(
        TWO_RELEASES,
        "  - {id: HF1, applies_to: [\"8.1\"], supersedes: [HF0]}\n",
    );
    assert_eq!(
        refusal(&supersedes),
        "test.yaml:8:49: hotfixes[0].supersedes[0]: hotfix HF1 supersedes \"HF0\", which is not a hotfix of the catalog"
    );
    let requires = with(
        TWO_RELEASES,
        "  - {id: HF1, applies_to: [\"8.1\"], requires: [HF1-base]}\n",
    );
    assert!(refusal(&requires).ends_with(
        "hotfixes[0].requires[0]: hotfix HF1 requires \"HF1-base\", which is not a hotfix of the catalog"
    ));
}

#[test]
fn mutual_supersedence_is_contradictory() {
    let text = with(
        TWO_RELEASES,
        "  - {id: A, applies_to: [\"8.1\"], supersedes: [B]}\n  - {id: B, applies_to: [\"8.1\"], supersedes: [A]}\n",
    );
    assert!(
        refusal(&text).ends_with(
            "hotfixes[0].supersedes: contradictory supersedence: A supersedes B, B supersedes A; a hotfix cannot replace one that replaces it"
        ),
        "{}",
        refusal(&text)
    );
}

#[test]
fn transitive_supersedence_cycles_are_contradictory() {
    let text = with(
        TWO_RELEASES,
        "  - {id: C, applies_to: [\"8.1\"], supersedes: [A]}\n  - {id: A, applies_to: [\"8.1\"], supersedes: [B]}\n  - {id: B, applies_to: [\"8.1\"], supersedes: [C]}\n",
    );
    let message = refusal(&text);
    assert!(
        message.contains("hotfixes[1].supersedes: contradictory supersedence: A supersedes B, B supersedes C, C supersedes A"),
        "{message}"
    );
    let itself = with(
        TWO_RELEASES,
        "  - {id: A, applies_to: [\"8.1\"], supersedes: [A]}\n",
    );
    assert!(refusal(&itself).ends_with("hotfixes[0].supersedes[0]: hotfix A supersedes itself"));
}

#[test]
fn requiring_a_superseded_hotfix_is_contradictory() {
    let text = with(
        TWO_RELEASES,
        "  - {id: A, applies_to: [\"8.1\"], supersedes: [B]}\n  - {id: B, applies_to: [\"8.1\"], supersedes: [C]}\n  - {id: C, applies_to: [\"8.1\"]}\n  - {id: D, applies_to: [\"8.1\"], supersedes: [A], requires: [C]}\n",
    );
    assert!(
        refusal(&text).ends_with(
            "hotfixes[3].requires[0]: hotfix D requires C, which it supersedes: a superseded hotfix is never installed, so the requirement could not be met"
        ),
        "{}",
        refusal(&text)
    );
    let obsoleting = with(
        TWO_RELEASES,
        "  - {id: A, applies_to: [\"8.1\"], requires: [B]}\n  - {id: B, applies_to: [\"8.1\"], supersedes: [A]}\n",
    );
    assert!(refusal(&obsoleting)
        .ends_with("hotfix A requires B, but B supersedes A: installing the prerequisite would make A obsolete"));
}

#[test]
fn prerequisite_cycles_are_refused() {
    let text = with(
        TWO_RELEASES,
        "  - {id: A, applies_to: [\"8.1\"], requires: [B]}\n  - {id: B, applies_to: [\"8.1\"], requires: [A]}\n",
    );
    assert!(refusal(&text).ends_with(
        "hotfixes[0].requires: prerequisite cycle: A requires B, B requires A; none of them could be installed first"
    ));
}

#[test]
fn a_hotfix_pattern_matching_no_release_is_refused() {
    let text = with(
        TWO_RELEASES,
        "  - id: HF9\n    applies_to: [\"8.1\", \"9.*\"]\n",
    );
    assert_eq!(
        refusal(&text),
        "test.yaml:9:25: hotfixes[0].applies_to[1]: hotfix HF9: applies_to \"9.*\" matches no release of the catalog"
    );
    let empty = with(TWO_RELEASES, "  - {id: HF9, applies_to: []}\n");
    assert!(refusal(&empty)
        .ends_with("hotfix HF9: applies_to is empty; name the releases it installs on"));
}

#[test]
fn serde_errors_name_the_release_or_hotfix_of_the_entry() {
    let misspelt = with(
        "  - version: \"8.0\"\n  - version: \"8.1\"\n    reboot_deferable: true\n",
        "  []\n",
    );
    let message = refusal(&misspelt);
    assert!(
        message.starts_with(
            "test.yaml:7:5: releases[1]: release 8.1: unknown field `reboot_deferable`"
        ),
        "{message}"
    );
    let bad_pattern = with(TWO_RELEASES, "  - {id: HF1, applies_to: [\"8.x\"]}\n");
    let message = refusal(&bad_pattern);
    assert!(
        message.starts_with("test.yaml:8:28: hotfixes[0].applies_to[0]: hotfix HF1: \"8.x\" is not a version pattern"),
        "{message}"
    );
    let bare_star = with("  - {version: \"8.1\", upgrade_from: [\"*\"]}\n", "  []\n");
    assert!(refusal(&bare_star).contains("release 8.1: \"*\" would match every version"));
}

#[test]
fn whole_file_problems_point_at_line_one() {
    assert_eq!(
        refusal("# nothing\n\n"),
        "test.yaml:1: the file is empty: a catalog needs at least `catalog`, `product` and `releases`"
    );
    let future = "catalog: 2\nproduct: p\nreleases: [{version: \"1\"}]\n";
    assert_eq!(
        refusal(future),
        "test.yaml:1:10: catalog: catalog format 2 is not known; this Drover reads format 1"
    );
    let no_releases = "catalog: 1\nproduct: p\nreleases: []\n";
    assert_eq!(
        refusal(no_releases),
        "test.yaml:3:11: releases: a catalog lists at least one release"
    );
    let syntax = refusal("catalog: 1\nproduct: [p\n");
    assert!(syntax.starts_with("test.yaml:"), "{syntax}");
    let one = "catalog: 1\nproduct: p\nreleases: [{version: \"1\"}]\n";
    let two_documents = refusal(&format!("{one}---\n{one}"));
    assert!(
        two_documents.starts_with("test.yaml:1: "),
        "{two_documents}"
    );
}

#[test]
fn absurd_sizes_are_refused_before_any_work() {
    let mut text = String::from("catalog: 1\nproduct: p\nreleases:\n");
    for index in 0..=drover_catalog::limits::MAX_RELEASES {
        text.push_str(&format!("  - {{version: \"{index}\"}}\n"));
    }
    assert!(refusal(&text).contains("releases: 2001 releases is more than the limit of 2000"));
    let huge = "#".repeat(drover_catalog::limits::MAX_CATALOG_TEXT_BYTES + 1);
    let error = parse_catalog(&huge, "huge.yaml").unwrap_err();
    assert!(matches!(
        error,
        CatalogError::InvalidCatalog { line: 1, .. }
    ));
    assert!(error.to_string().contains("more than the limit"));
}

#[test]
fn absurd_nesting_is_refused_before_serde_sees_it() {
    // serde_yaml_ng takes tens of seconds on 100,000 nested brackets; this must not.
    let mut text = String::from("catalog: 1\nproduct: p\nreleases: ");
    text.push_str(&"[".repeat(100_000));
    let message = refusal(&text);
    assert!(
        message.starts_with("test.yaml:3:")
            && message.ends_with(
                "mappings and sequences nest deeper than 32 levels here; a catalog needs four"
            ),
        "{message}"
    );
    // Within yaml-rust2's own limit the place is exact: the 33rd level, 31 brackets in.
    let closed = format!(
        "catalog: 1\nproduct: p\nreleases: {}{}\n",
        "[".repeat(40),
        "]".repeat(40)
    );
    assert!(refusal(&closed).starts_with("test.yaml:3:42: mappings and sequences nest deeper"));
    let mut block = String::from("catalog: 1\nproduct: p\nreleases:\n");
    block.push_str(&"- ".repeat(50));
    block.push_str("x\n");
    assert!(refusal(&block).contains("nest deeper than 32 levels"));
}

#[test]
fn the_error_carries_its_parts_for_callers() {
    let text = with("  - version: \"8.0\"\n    channels: [fast]\n", "  []\n");
    let CatalogError::InvalidCatalog {
        source_name,
        line,
        column,
        field_path,
        ..
    } = parse_catalog(&text, "pool.yaml").unwrap_err()
    else {
        panic!("expected InvalidCatalog");
    };
    assert_eq!(
        (source_name.as_str(), line, column, field_path.as_deref()),
        ("pool.yaml", 6, Some(16), Some("releases[0].channels[0]"))
    );
    assert!(EXAMPLE_CATALOG.contains("HF-1420"));
}
