//! `apt list --upgradable` output: one `name/suites version arch [flags]` line per package.
//!
//! An update is a line whose flags say `upgradable from: OLD`. With `-a`, apt also lists the
//! installed version (`[installed,upgradable to: NEW]`) and other candidates (no flags); those
//! are well-formed but not updates, so they are passed over. The `Listing...` header, apt's
//! warning that its CLI is not stable (when stderr is merged in) and `N:` notes are chatter.
//! This module knows the format only, not which packages matter.

use super::{check_output_size, unparsable, PackageUpdate};
use crate::error::CatalogError;

const FORMAT: &str = "apt list --upgradable";

/// Parses the standard output of `apt list --upgradable` (with or without `-a`, with or without
/// stderr merged in). Refuses any line that is neither a package nor known chatter.
pub fn parse_apt_upgradable(text: &str) -> Result<Vec<PackageUpdate>, CatalogError> {
    check_output_size(text, FORMAT)?;
    let mut updates = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if is_chatter(line) {
            continue;
        }
        let entry =
            parse_line(line).map_err(|reason| unparsable(FORMAT, index + 1, line, reason))?;
        if let Some(update) = entry {
            updates.push(update);
        }
    }
    Ok(updates)
}

fn is_chatter(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty()
        || trimmed.starts_with("Listing...")
        || trimmed.starts_with("WARNING: apt does not have a stable CLI interface")
        || trimmed.starts_with("N: ")
}

/// `libvirt0/stable-security 9.0.0-4+deb12u2 amd64 [upgradable from: 9.0.0-4+deb12u1]`;
/// `None` for a well-formed line that is not an update.
fn parse_line(line: &str) -> Result<Option<PackageUpdate>, &'static str> {
    let (fields, flags) = match line.split_once(" [") {
        Some((fields, flags)) => {
            let flags = flags
                .strip_suffix(']')
                .ok_or("the bracketed flags are not closed")?;
            (fields, Some(flags))
        }
        None => (line, None),
    };
    let mut words = fields.split_whitespace();
    let (Some(name_and_suites), Some(version), Some(arch), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err("expected `name/suites version arch [flags]`");
    };
    let (name, suites) = name_and_suites
        .split_once('/')
        .ok_or("the package name has no `/suites` part")?;
    if name.is_empty() || suites.is_empty() {
        return Err("the package name or its suites are empty");
    }
    let Some(current_version) = flags.and_then(upgradable_from) else {
        return Ok(None);
    };
    Ok(Some(PackageUpdate {
        name: name.to_string(),
        arch: arch.to_string(),
        available_version: version.to_string(),
        current_version: Some(current_version.to_string()),
        source: suites.to_string(),
        obsoletes: Vec::new(),
    }))
}

/// The installed version in `upgradable from: OLD` among comma-separated flags.
fn upgradable_from(flags: &str) -> Option<&str> {
    flags
        .split(',')
        .find_map(|flag| flag.trim().strip_prefix("upgradable from: "))
        .map(str::trim)
}
