//! The catalog rules that span values, and the conversion of a read document into a
//! [`Catalog`]: the format version, names, channels, releases (unique versions, known channels,
//! upgrade edges that go up) and list sizes. Hotfix rules live in `hotfix_rules`; the checks of one
//! field that both use (identifiers, list sizes) live in `field_checks`.
//!
//! Every refusal names the release or hotfix and is placed through `Source`; nothing is
//! partially accepted. This module knows no YAML and no positions, and nothing of solving.

use drover_core::Version;

use super::document::{CatalogDocument, ReleaseEntry};
use super::field_checks::{check_count, check_identifier, check_list_lengths};
use super::hotfix_rules;
use super::source::Source;
use crate::error::CatalogError;
use crate::limits::{MAX_CHANNELS, MAX_NAME_CHARS, MAX_RELEASES};
use crate::model::{Catalog, Release};
use crate::pattern::VersionPattern;

/// The only catalog format this crate reads.
const FORMAT_VERSION: u32 = 1;

pub(crate) fn into_catalog(
    document: CatalogDocument,
    source: &Source,
) -> Result<Catalog, CatalogError> {
    if document.catalog != FORMAT_VERSION {
        let message = format!(
            "catalog format {} is not known; this Drover reads format {FORMAT_VERSION}",
            document.catalog
        );
        return Err(source.error_at("catalog", message));
    }
    check_product(&document.product, source)?;
    check_channels(&document.channels, source)?;
    let releases = into_releases(document.releases, &document.channels, source)?;
    let (hotfixes, superseded_closures) =
        hotfix_rules::into_hotfixes(document.hotfixes, &releases, source)?;
    Ok(Catalog::from_checked_parts(
        document.product,
        document.channels,
        releases,
        hotfixes,
        superseded_closures,
    ))
}

fn check_product(product: &str, source: &Source) -> Result<(), CatalogError> {
    if product.trim().is_empty() {
        return Err(source.error_at("product", "the product name is empty"));
    }
    if product.chars().count() > MAX_NAME_CHARS {
        let message = format!("the product name is longer than {MAX_NAME_CHARS} characters");
        return Err(source.error_at("product", message));
    }
    Ok(())
}

fn check_channels(channels: &[String], source: &Source) -> Result<(), CatalogError> {
    check_count(channels.len(), MAX_CHANNELS, "channels", "channels", source)?;
    for (index, channel) in channels.iter().enumerate() {
        let path = format!("channels[{index}]");
        check_identifier(channel, "a channel name", &path, source)?;
        if channels[..index].contains(channel) {
            let message = format!("channel {channel} is declared twice");
            return Err(source.error_at(&path, message));
        }
    }
    Ok(())
}

fn into_releases(
    entries: Vec<ReleaseEntry>,
    channels: &[String],
    source: &Source,
) -> Result<Vec<Release>, CatalogError> {
    if entries.is_empty() {
        return Err(source.error_at("releases", "a catalog lists at least one release"));
    }
    check_count(entries.len(), MAX_RELEASES, "releases", "releases", source)?;
    let mut releases = entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| into_release(index, entry, channels, source))
        .collect::<Result<Vec<_>, _>>()?;
    refuse_duplicate_versions(&releases, source)?;
    releases.sort_by(|left, right| left.version.cmp(&right.version));
    Ok(releases)
}

fn into_release(
    index: usize,
    entry: ReleaseEntry,
    channels: &[String],
    source: &Source,
) -> Result<Release, CatalogError> {
    let path = format!("releases[{index}]");
    let version = entry.version.0;
    let subject = format!("release {version}");
    let lists = [
        ("channels", entry.channels.len()),
        ("upgrade_from", entry.upgrade_from.len()),
        ("compatibility_levels", entry.compatibility_levels.len()),
    ];
    check_list_lengths(&lists, &path, &subject, source)?;
    check_release_channels(&entry.channels, channels, &path, &subject, source)?;
    let upgrade_from: Vec<VersionPattern> =
        entry.upgrade_from.into_iter().map(|text| text.0).collect();
    check_edges_go_up(&version, &upgrade_from, &path, source)?;
    let compatibility_levels: Vec<Version> = entry
        .compatibility_levels
        .into_iter()
        .map(|text| text.0)
        .collect();
    check_unique_levels(&compatibility_levels, &path, &subject, source)?;
    Ok(Release {
        version,
        channels: entry.channels,
        reboot_required: entry.reboot_required,
        reboot_deferrable: entry.reboot_deferrable,
        upgrade_from,
        requires_control_plane: entry.requires_control_plane.map(|text| text.0),
        compatibility_levels,
    })
}

fn check_release_channels(
    release_channels: &[String],
    known_channels: &[String],
    path: &str,
    subject: &str,
    source: &Source,
) -> Result<(), CatalogError> {
    for (index, channel) in release_channels.iter().enumerate() {
        let channel_path = format!("{path}.channels[{index}]");
        if !known_channels.contains(channel) {
            let known = if known_channels.is_empty() {
                "the catalog declares none".to_string()
            } else {
                format!("declared: {}", known_channels.join(", "))
            };
            let message = format!("{subject}: unknown channel {channel:?} ({known})");
            return Err(source.error_at(&channel_path, message));
        }
        if release_channels[..index].contains(channel) {
            let message = format!("{subject}: channel {channel} is listed twice");
            return Err(source.error_at(&channel_path, message));
        }
    }
    Ok(())
}

/// Only versions older than the release match its patterns when solving, so an edge that can
/// match nothing older (`8.1` or `8.1.*` on release 8.1) can only be a downgrade or a cycle.
fn check_edges_go_up(
    version: &Version,
    upgrade_from: &[VersionPattern],
    path: &str,
    source: &Source,
) -> Result<(), CatalogError> {
    for (index, pattern) in upgrade_from.iter().enumerate() {
        if pattern.oldest_match() < version {
            continue;
        }
        let message = format!(
            "release {version}: upgrade_from \"{pattern}\" matches no version older than {version}; an upgrade edge must come from an older version (this one would be a downgrade or a cycle)"
        );
        return Err(source.error_at(&format!("{path}.upgrade_from[{index}]"), message));
    }
    Ok(())
}

/// Sorting finds a repeat in `k log k`, where comparing every pair would cost `k²` per release.
fn check_unique_levels(
    levels: &[Version],
    path: &str,
    subject: &str,
    source: &Source,
) -> Result<(), CatalogError> {
    let mut order: Vec<usize> = (0..levels.len()).collect();
    order.sort_by(|left, right| levels[*left].cmp(&levels[*right]));
    let Some(pair) = order
        .windows(2)
        .find(|pair| levels[pair[0]] == levels[pair[1]])
    else {
        return Ok(());
    };
    let (first, repeat) = (pair[0].min(pair[1]), pair[0].max(pair[1]));
    let message = format!(
        "{subject}: compatibility level {} is listed twice (equal to {})",
        levels[repeat], levels[first]
    );
    Err(source.error_at(&format!("{path}.compatibility_levels[{repeat}]"), message))
}

/// `8.2` and `8.2.0` are the same version, so they are duplicates too.
fn refuse_duplicate_versions(releases: &[Release], source: &Source) -> Result<(), CatalogError> {
    let mut order: Vec<usize> = (0..releases.len()).collect();
    // A stable sort keeps equal versions in file order, so the pair is (first, repeat).
    order.sort_by(|left, right| releases[*left].version.cmp(&releases[*right].version));
    for pair in order.windows(2) {
        let (first, repeat) = (pair[0], pair[1]);
        if releases[first].version != releases[repeat].version {
            continue;
        }
        let first_path = format!("releases[{first}].version");
        let first_line = source
            .line_of(&first_path)
            .map(|line| format!(" at line {line}"))
            .unwrap_or_default();
        let message = format!(
            "release {} is listed twice (the same version as {}{first_line})",
            releases[repeat].version, releases[first].version
        );
        return Err(source.error_at(&format!("releases[{repeat}].version"), message));
    }
    Ok(())
}
