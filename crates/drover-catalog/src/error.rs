//! The one error type of this crate: why a catalog, a path request, a gate, a hotfix selection or
//! a package manager's output was refused.
//!
//! Catalog errors carry a file name, a position, a field path and a message, and print as one
//! line (`catalog.yaml:14:7: releases[3].upgrade_from[0]: release 8.1: ...`), like inventory
//! errors. This module knows no YAML parser and no solver; it only holds and renders the facts
//! the other modules found. It does not decide exit codes: that is the CLI's business.

use std::fmt;

use drover_core::Version;

/// Everything this crate can refuse. Every message names the release, hotfix, channel, package
/// line or pattern involved, so an operator can act on it without reading code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The catalog text is not a valid catalog: bad YAML, a wrong type, or a broken rule.
    #[error("{}", render_located(.source_name, *.line, *.column, .field_path.as_deref(), .message))]
    InvalidCatalog {
        /// The file name the caller gave for the text.
        source_name: String,
        /// 1-based line of the offending node (1 when the problem is the file as a whole).
        line: usize,
        /// 1-based column of the offending node, when known.
        column: Option<usize>,
        /// Where in the document, in `releases[3].upgrade_from[0]` notation.
        field_path: Option<String>,
        /// What is wrong, naming the release or hotfix.
        message: String,
    },
    /// A channel was asked for that the catalog does not declare.
    #[error("unknown channel {channel:?}; the catalog's channels are: {}", list_or_none(.known_channels))]
    UnknownChannel {
        /// The channel asked for.
        channel: String,
        /// The channels the catalog declares.
        known_channels: Vec<String>,
    },
    /// The requested target is not a release of the catalog, or not one of the channel.
    #[error("{}", render_target_absent(.target, .channel.as_deref(), .channels_of_target))]
    TargetNotInCatalog {
        /// The target asked for.
        target: Version,
        /// The channel asked for, if any.
        channel: Option<String>,
        /// The channels the target is in, when the catalog has it but not in the asked channel.
        channels_of_target: Vec<String>,
    },
    /// A version was named (a path hop, a gate target) that the catalog does not list.
    #[error("release {version} is not in the catalog")]
    ReleaseNotInCatalog {
        /// The version that is not a release.
        version: Version,
    },
    /// The running version is newer than the target: upgrades never go down.
    #[error("cannot upgrade from {from} to {to}: {to} is older than {from}, and a downgrade is not an upgrade")]
    Downgrade {
        /// The running version.
        from: Version,
        /// The older target.
        to: Version,
    },
    /// No chain of allowed upgrades leads from `from` to `to`; the details say where it breaks.
    /// (Boxed: the details are large, and every `Result` of this crate carries the enum.)
    #[error("{0}")]
    Unreachable(Box<UnreachableTarget>),
    /// A release needs a newer control plane (manager, management nodes) than the one running.
    #[error("release {} requires the control plane at {} or newer, but it runs {}: upgrade the control plane before any compute host", .0.release, .0.required, .0.control_plane)]
    ControlPlaneTooOld(Box<ControlPlaneShortfall>),
    /// A release needs a minimum control plane version, and the caller does not know the
    /// version running: refusing is safer than guessing.
    #[error("release {release} requires the control plane at {required} or newer, and the control plane version is unknown: find it out before upgrading compute hosts")]
    ControlPlaneVersionUnknown {
        /// The release with the highest requirement.
        release: Version,
        /// Its minimum control plane version.
        required: Version,
    },
    /// Hotfix prerequisites, once met through supersedence, wait on each other.
    #[error("the hotfixes for release {release} cannot be ordered: {} wait on each other through their prerequisites", .hotfix_ids.join(", "))]
    HotfixOrderCycle {
        /// The release the hotfixes were selected for.
        release: Version,
        /// The selected hotfixes that could not be placed, by id.
        hotfix_ids: Vec<String>,
    },
    /// An input is larger than this crate agrees to work on.
    #[error("{what}: {count} is more than the limit of {limit}")]
    InputTooLarge {
        /// What was counted (bytes of some output, installed hotfixes, watch patterns).
        what: &'static str,
        /// How many there were.
        count: usize,
        /// The most accepted (see [`crate::limits`]).
        limit: usize,
    },
    /// A line of package manager output that is neither a package nor known chatter. Refusing
    /// it is deliberate: a silently skipped line could hide an update.
    #[error("{format} output, line {line_number}: {reason}: {line:?}")]
    UnparsableUpdateOutput {
        /// The command whose output it is.
        format: &'static str,
        /// 1-based line number (of a wrapped row, its first line).
        line_number: usize,
        /// The line as printed.
        line: String,
        /// What was expected instead.
        reason: String,
    },
    /// A package watch pattern that cannot be used.
    #[error("watch pattern {pattern:?}: {reason}")]
    InvalidWatchPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why no upgrade path leads to a target: how far the running version gets and what the
/// target accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreachableTarget {
    /// The running version.
    pub from: Version,
    /// The target asked for.
    pub to: Version,
    /// The channel asked for, if any.
    pub channel: Option<String>,
    /// The newest version that can be reached from `from`: where the chain breaks.
    pub newest_reachable: Version,
    /// The `upgrade_from` patterns of the target, as written.
    pub target_accepts_from: Vec<String>,
    /// Releases the target accepts that are outside the channel (at most a few).
    pub accepted_outside_channel: Vec<Version>,
}

/// A control plane older than a release requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPlaneShortfall {
    /// The release with the highest requirement.
    pub release: Version,
    /// Its minimum control plane version.
    pub required: Version,
    /// The control plane version running.
    pub control_plane: Version,
}

/// The error of [`crate::solve_path`]. The crate has one error enum; this name says which of its
/// variants a path request returns (`UnknownChannel`, `TargetNotInCatalog`, `Downgrade`,
/// `Unreachable`).
pub type PathError = CatalogError;

/// The error of [`crate::control_plane_gate`]: `ControlPlaneTooOld`,
/// `ControlPlaneVersionUnknown` or `ReleaseNotInCatalog`.
pub type GateError = CatalogError;

/// `file:line[:column]: [path: ]message`, the shape compilers use, so editors can jump to it.
fn render_located(
    source_name: &str,
    line: usize,
    column: Option<usize>,
    field_path: Option<&str>,
    message: &str,
) -> String {
    let column_text = column
        .map(|column| format!(":{column}"))
        .unwrap_or_default();
    let path_text = field_path
        .map(|path| format!("{path}: "))
        .unwrap_or_default();
    format!("{source_name}:{line}{column_text}: {path_text}{message}")
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

fn render_target_absent(
    target: &Version,
    channel: Option<&str>,
    channels_of_target: &[String],
) -> String {
    match channel {
        Some(channel) if !channels_of_target.is_empty() => format!(
            "release {target} is not in channel {channel} (it is in: {})",
            channels_of_target.join(", ")
        ),
        Some(channel) => format!(
            "release {target} is not in the catalog, so channel {channel} cannot lead to it"
        ),
        None => format!("release {target} is not in the catalog"),
    }
}

impl fmt::Display for UnreachableTarget {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (from, to) = (&self.from, &self.to);
        let in_channel = self
            .channel
            .as_deref()
            .map(|channel| format!(" in channel {channel}"))
            .unwrap_or_default();
        let stuck_at = if self.newest_reachable == *from {
            format!("no release{in_channel} up to {to} can be installed from {from}")
        } else {
            format!(
                "the newest version reachable from {from} is {}, and no release{in_channel} up to {to} can be installed from it",
                self.newest_reachable
            )
        };
        let accepts = if self.target_accepts_from.is_empty() {
            format!("{to} lists no upgrade_from, so it can only be installed fresh")
        } else {
            format!(
                "{to} accepts upgrades only from {}",
                self.target_accepts_from.join(", ")
            )
        };
        let outside =
            render_outside_channel(&self.accepted_outside_channel, self.channel.as_deref());
        write!(
            formatter,
            "no upgrade path from {from} to {to}{in_channel}: {stuck_at}; {accepts}{outside}"
        )
    }
}

fn render_outside_channel(versions: &[Version], channel: Option<&str>) -> String {
    let Some(channel) = channel else {
        return String::new();
    };
    if versions.is_empty() {
        return String::new();
    }
    let listed: Vec<String> = versions.iter().map(Version::to_string).collect();
    format!(
        " ({} would be accepted but {} not in channel {channel})",
        listed.join(", "),
        if listed.len() == 1 { "is" } else { "are" }
    )
}
