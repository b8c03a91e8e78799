//! The bounds this crate works within, so that a hostile or broken input costs a clear error
//! instead of unbounded time or memory.
//!
//! Only numbers live here; the checks are made where the input is read. This module knows
//! nothing of the catalog format or of package managers.

/// The largest catalog text read, in bytes.
pub const MAX_CATALOG_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// The deepest nesting of mappings and sequences read in a catalog. A catalog needs four
/// levels (document, `releases`, a release, its `upgrade_from`); the limit is checked before
/// serde_yaml_ng sees the text, because its parser slows down badly on deep nesting.
pub const MAX_CATALOG_NESTING_DEPTH: usize = 32;

/// The most releases a catalog may list. The path solver's graph has at most this many nodes
/// plus one (the running version), and at most that many squared over two edges.
pub const MAX_RELEASES: usize = 2_000;

/// The most hotfixes a catalog may list; supersedence closures are bit sets of this size.
pub const MAX_HOTFIXES: usize = 2_000;

/// The most channels a catalog may declare.
pub const MAX_CHANNELS: usize = 64;

/// The most entries in any one list of a release or hotfix (`upgrade_from`, `applies_to`,
/// `supersedes`, `requires`, `channels`, `compatibility_levels`).
pub const MAX_LIST_ENTRIES: usize = 256;

/// The longest hotfix id, channel name or product name, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// The most installed hotfix ids a hotfix selection accepts.
pub const MAX_INSTALLED_HOTFIXES: usize = 10_000;

/// The largest package manager output parsed, in bytes.
pub const MAX_UPDATE_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

/// The most patterns a watch list may hold.
pub const MAX_WATCH_PATTERNS: usize = 1_024;

/// The longest watch pattern, in characters.
pub const MAX_WATCH_PATTERN_CHARS: usize = 256;
