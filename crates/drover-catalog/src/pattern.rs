//! Version patterns as written in a catalog's `upgrade_from` and `applies_to`: an exact version
//! (`8.0`) or a series with a trailing wildcard (`8.0.*`).
//!
//! A series matches every version that starts with its numbers, missing parts counting as zero,
//! so `8.0.*` matches `8.0`, `8.0.0` and `8.0.7.1` but not `8.1`. Versions that share a prefix
//! are contiguous in version order, which lets a sorted list answer "which versions match" with
//! two binary searches. This module knows nothing of releases, hotfixes or upgrade direction.

use std::fmt;
use std::ops::Range;

use drover_core::Version;

/// An exact version or a `prefix.*` series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionPattern {
    /// Matches versions equal to this one (`8.2` matches `8.2.0`).
    Exact(Version),
    /// Matches versions whose leading numbers are this prefix's (`8.0.*`).
    Series(Version),
}

impl VersionPattern {
    /// Reads `8.0` or `8.0.*`. A bare `*`, or a wildcard anywhere but at the end, is refused:
    /// "any version" would also match newer versions, which an upgrade edge must never do.
    pub fn parse(text: &str) -> Result<VersionPattern, String> {
        let trimmed = text.trim();
        if trimmed == "*" {
            return Err(format!(
                "{text:?} would match every version; write a series such as \"8.*\""
            ));
        }
        if let Some(prefix) = trimmed.strip_suffix(".*") {
            return parse_version(prefix, text).map(VersionPattern::Series);
        }
        parse_version(trimmed, text).map(VersionPattern::Exact)
    }

    /// Whether `version` matches this pattern.
    pub fn matches(&self, version: &Version) -> bool {
        match self {
            VersionPattern::Exact(exact) => exact == version,
            VersionPattern::Series(prefix) => has_prefix(version, prefix),
        }
    }

    /// The oldest version this pattern matches: the exact version, or the series prefix itself.
    pub fn oldest_match(&self) -> &Version {
        match self {
            VersionPattern::Exact(version) | VersionPattern::Series(version) => version,
        }
    }

    /// The indices of the versions of `sorted` (ascending, without duplicates) that match.
    pub fn matching_range(&self, sorted: &[Version]) -> Range<usize> {
        let start = sorted.partition_point(|version| version < self.oldest_match());
        let length = sorted[start..]
            .iter()
            .take_while(|version| self.matches(version))
            .count();
        start..start + length
    }
}

impl fmt::Display for VersionPattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionPattern::Exact(version) => write!(formatter, "{version}"),
            VersionPattern::Series(prefix) => write!(formatter, "{prefix}.*"),
        }
    }
}

fn parse_version(text: &str, whole_pattern: &str) -> Result<Version, String> {
    text.parse().map_err(|_| {
        format!(
            "{whole_pattern:?} is not a version pattern (expected a version such as \"8.0\" or a series such as \"8.0.*\")"
        )
    })
}

/// Whether the leading numbers of `version` are those of `prefix` (missing parts are zero).
fn has_prefix(version: &Version, prefix: &Version) -> bool {
    prefix
        .parts()
        .iter()
        .enumerate()
        .all(|(index, part)| version.parts().get(index).copied().unwrap_or(0) == *part)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    fn p(text: &str) -> VersionPattern {
        VersionPattern::parse(text).unwrap()
    }

    #[test]
    fn a_series_matches_its_prefix_with_missing_parts_as_zero() {
        assert!(p("8.0.*").matches(&v("8.0")));
        assert!(p("8.0.*").matches(&v("8.0.7.1")));
        assert!(!p("8.0.*").matches(&v("8.1")));
        assert!(p("8.*").matches(&v("8.10.2")));
        assert!(!p("8.*").matches(&v("80.1")));
    }

    #[test]
    fn an_exact_pattern_matches_equal_versions_only() {
        assert!(p("8.2").matches(&v("8.2.0")));
        assert!(!p("8.2").matches(&v("8.2.1")));
    }

    #[test]
    fn refuses_wildcards_that_are_not_a_trailing_series() {
        for bad in ["*", "8.*.1", "8.x", "", "8.0.**", "*.1"] {
            assert!(
                VersionPattern::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn finds_the_contiguous_range_of_matches_in_sorted_versions() {
        let sorted: Vec<Version> = ["7.9", "8.0", "8.0.3", "8.0.10", "8.1", "9"]
            .iter()
            .map(|text| v(text))
            .collect();
        assert_eq!(p("8.0.*").matching_range(&sorted), 1..4);
        assert_eq!(p("8.1").matching_range(&sorted), 4..5);
        assert_eq!(p("8.5").matching_range(&sorted), 5..5);
    }

    #[test]
    fn displays_as_written_in_the_catalog() {
        assert_eq!(p("4.14.*").to_string(), "4.14.*");
        assert_eq!(p("4.14.10").to_string(), "4.14.10");
    }
}
