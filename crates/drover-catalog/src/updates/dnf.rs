//! `dnf check-update` / `yum check-update` output: `name.arch  version  repository` rows, an
//! optional "Obsoleting Packages" section, and chatter around them.
//!
//! dnf prints a field that overflows its column followed by a line break and indentation, so on
//! a terminal a long name (or version) continues on the next, indented line; such rows are
//! joined back. In the "Obsoleting Packages" section each obsoleting package is followed by the
//! installed package it replaces, indented by four spaces; the replaced package is recorded in
//! [`PackageUpdate::obsoletes`] of the update (merged with the same update listed above, if
//! any). Messages are read in English (run the command with `LANG=C`). This module knows the
//! format only, not which packages matter.

use super::{check_output_size, unparsable, PackageUpdate};
use crate::error::CatalogError;

const FORMAT: &str = "dnf check-update";

/// The header dnf and yum print before the obsoletes.
const OBSOLETING_HEADER: &str = "Obsoleting Packages";

/// Lines dnf, yum and their plugins print around the package rows, by how they start.
const CHATTER_PREFIXES: [&str; 12] = [
    "Last metadata expiration check:",
    "Loaded plugins:",
    "Loading mirror speeds from cached hostfile",
    "Determining fastest mirrors",
    "Updating Subscription Management repositories.",
    "Unable to read consumer identity",
    "This system is not registered",
    "Security: ",
    "Updating and loading repositories:",
    "Repositories loaded.",
    "Metadata cache created.",
    "Waiting for process with pid",
];

/// Parses the standard output of `dnf check-update` or `yum check-update`. Refuses any line
/// that is neither a package row nor known chatter.
pub fn parse_dnf_check_update(text: &str) -> Result<Vec<PackageUpdate>, CatalogError> {
    check_output_size(text, FORMAT)?;
    let mut builder = UpdateList::default();
    for item in read_items(text)? {
        match item {
            Item::ObsoletingHeader => builder.in_obsoleting_section = true,
            Item::Row(row) => builder.add(row)?,
        }
    }
    Ok(builder.updates)
}

/// A package row, its wrapped continuation lines joined.
struct Row {
    line_number: usize,
    first_line: String,
    indented: bool,
    name_and_arch: String,
    version: String,
    repository: String,
}

enum Item {
    ObsoletingHeader,
    Row(Row),
}

/// A row whose fields have not all been seen yet (its name or version wrapped).
struct PartialRow {
    line_number: usize,
    first_line: String,
    indented: bool,
    fields: Vec<String>,
}

fn read_items(text: &str) -> Result<Vec<Item>, CatalogError> {
    let mut items = Vec::new();
    let mut partial: Option<PartialRow> = None;
    for (index, line) in text.lines().enumerate() {
        if let Some(mut row) = partial.take() {
            if !line.starts_with(char::is_whitespace) || line.trim().is_empty() {
                return Err(cut_short(&row));
            }
            row.fields
                .extend(line.split_whitespace().map(str::to_string));
            match complete(row)? {
                Ok(row) => items.push(Item::Row(row)),
                Err(row) => partial = Some(row),
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || is_chatter(trimmed) {
            continue;
        }
        if trimmed == OBSOLETING_HEADER {
            items.push(Item::ObsoletingHeader);
            continue;
        }
        let row = PartialRow {
            line_number: index + 1,
            first_line: line.to_string(),
            indented: line.starts_with(char::is_whitespace),
            fields: line.split_whitespace().map(str::to_string).collect(),
        };
        match complete(row)? {
            Ok(row) => items.push(Item::Row(row)),
            Err(row) => partial = Some(row),
        }
    }
    match partial {
        Some(row) => Err(cut_short(&row)),
        None => Ok(items),
    }
}

/// A finished row when all three fields are in, the partial row back when more must follow.
fn complete(partial: PartialRow) -> Result<Result<Row, PartialRow>, CatalogError> {
    if partial.fields.len() < 3 {
        return Ok(Err(partial));
    }
    if partial.fields.len() > 3 {
        let reason = "expected `name.arch  version  repository`, found more fields";
        return Err(unparsable(
            FORMAT,
            partial.line_number,
            &partial.first_line,
            reason,
        ));
    }
    let mut fields = partial.fields.into_iter();
    let mut next = || fields.next().expect("three fields");
    Ok(Ok(Row {
        line_number: partial.line_number,
        first_line: partial.first_line,
        indented: partial.indented,
        name_and_arch: next(),
        version: next(),
        repository: next(),
    }))
}

fn cut_short(row: &PartialRow) -> CatalogError {
    let reason = "a package row ends before its version and repository";
    unparsable(FORMAT, row.line_number, &row.first_line, reason)
}

fn is_chatter(trimmed: &str) -> bool {
    CHATTER_PREFIXES
        .iter()
        .any(|prefix| trimmed.starts_with(prefix))
        // yum's mirror list: " * base: mirror.example.com".
        || trimmed.starts_with("* ")
        // Metadata download progress: "BaseOS   3.9 MB/s | 8.0 MB   00:02"; no row has a bar.
        || trimmed.contains(" | ")
        || (trimmed.starts_with("Repository ") && trimmed.contains("listed more than once"))
}

/// The updates read so far, and where the obsoletes section stands.
#[derive(Default)]
struct UpdateList {
    updates: Vec<PackageUpdate>,
    in_obsoleting_section: bool,
    /// The update the next indented (obsoleted) row belongs to.
    current_obsoleting: Option<usize>,
}

impl UpdateList {
    fn add(&mut self, row: Row) -> Result<(), CatalogError> {
        let (name, arch) = split_name_and_arch(&row)?;
        check_version(&row)?;
        match (self.in_obsoleting_section, row.indented) {
            (false, false) => self.updates.push(update_from(&row, name, arch)),
            (false, true) => {
                let reason = "an indented package row outside the Obsoleting Packages section";
                return Err(unparsable(FORMAT, row.line_number, &row.first_line, reason));
            }
            (true, false) => self.start_obsoleting(&row, name, arch),
            (true, true) => self.add_obsoleted(&row)?,
        }
        Ok(())
    }

    /// The obsoleting package is usually listed among the updates too; merge into that entry.
    fn start_obsoleting(&mut self, row: &Row, name: &str, arch: &str) {
        let existing = self.updates.iter().position(|update| {
            update.name == name && update.arch == arch && update.available_version == row.version
        });
        let index = existing.unwrap_or_else(|| {
            self.updates.push(update_from(row, name, arch));
            self.updates.len() - 1
        });
        self.current_obsoleting = Some(index);
    }

    fn add_obsoleted(&mut self, row: &Row) -> Result<(), CatalogError> {
        let Some(index) = self.current_obsoleting else {
            let reason = "an obsoleted package with no obsoleting package above it";
            return Err(unparsable(FORMAT, row.line_number, &row.first_line, reason));
        };
        let obsoletes = &mut self.updates[index].obsoletes;
        if !obsoletes.contains(&row.name_and_arch) {
            obsoletes.push(row.name_and_arch.clone());
        }
        Ok(())
    }
}

fn update_from(row: &Row, name: &str, arch: &str) -> PackageUpdate {
    PackageUpdate {
        name: name.to_string(),
        arch: arch.to_string(),
        available_version: row.version.clone(),
        current_version: None,
        source: row.repository.clone(),
        obsoletes: Vec::new(),
    }
}

fn split_name_and_arch(row: &Row) -> Result<(&str, &str), CatalogError> {
    match row.name_and_arch.rsplit_once('.') {
        Some((name, arch)) if !name.is_empty() && !arch.is_empty() => Ok((name, arch)),
        _ => {
            let reason = "the package is not written as `name.arch`";
            Err(unparsable(FORMAT, row.line_number, &row.first_line, reason))
        }
    }
}

/// `[epoch:]version-release` has digits; a column without any means the columns are not what
/// this parser thinks they are.
fn check_version(row: &Row) -> Result<(), CatalogError> {
    if row.version.contains(|c: char| c.is_ascii_digit()) {
        return Ok(());
    }
    let reason = "the second column is not a version such as 1:2.06-70.el9";
    Err(unparsable(FORMAT, row.line_number, &row.first_line, reason))
}
