//! Watch lists: which packages count for "an upgrade is available", as glob patterns with `*`
//! (any run of characters, also none) and `?` (exactly one character).
//!
//! A watch list joins the system patterns (the virtualization stack, see
//! [`DEFAULT_SYSTEM_WATCH_PATTERNS`]) with the operator's own. Matching is linear in the
//! pattern and name lengths times the number of stars at worst, and both are bounded. This
//! module knows nothing of package managers' output formats.

use crate::error::CatalogError;
use crate::limits::{MAX_WATCH_PATTERNS, MAX_WATCH_PATTERN_CHARS};

/// The packages whose updates matter on a virtualization host, modelled on what oVirt's
/// upgrade manager checks: the host agent (`vdsm*`, `ovirt-*`), the hypervisor (`qemu-kvm*`,
/// `qemu-system-*`, `qemu-img*`, `libvirt*`, `xen*`), the kernel and its modules (`kernel*` on
/// RPM systems, `linux-image-*` on Debian and Ubuntu, `kmod-*`), and the storage lock and
/// volume manager the agent relies on (`sanlock*`, `lvm2*`). Kernel headers and tools for
/// building (`linux-libc-dev`) are deliberately not matched on Debian.
pub const DEFAULT_SYSTEM_WATCH_PATTERNS: &[&str] = &[
    "vdsm*",
    "ovirt-*",
    "qemu-kvm*",
    "qemu-system-*",
    "qemu-img*",
    "libvirt*",
    "xen*",
    "kernel*",
    "linux-image-*",
    "kmod-*",
    "sanlock*",
    "lvm2*",
];

/// A checked set of package name patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchList {
    patterns: Vec<Vec<char>>,
    texts: Vec<String>,
}

impl WatchList {
    /// A watch list of the `system` patterns and the operator's `user` patterns. Refuses empty
    /// or over-long patterns, patterns with spaces, and more than the pattern limit.
    pub fn new(system: &[&str], user: &[String]) -> Result<WatchList, CatalogError> {
        let count = system.len() + user.len();
        if count > MAX_WATCH_PATTERNS {
            return Err(CatalogError::InputTooLarge {
                what: "watch patterns",
                count,
                limit: MAX_WATCH_PATTERNS,
            });
        }
        let texts: Vec<String> = system
            .iter()
            .map(|text| text.to_string())
            .chain(user.iter().cloned())
            .collect();
        texts.iter().try_for_each(|text| check_pattern(text))?;
        Ok(WatchList {
            patterns: texts.iter().map(|text| text.chars().collect()).collect(),
            texts,
        })
    }

    /// The default system patterns plus the operator's `user` patterns.
    pub fn with_default_system(user: &[String]) -> Result<WatchList, CatalogError> {
        WatchList::new(DEFAULT_SYSTEM_WATCH_PATTERNS, user)
    }

    /// Whether `package_name` matches any pattern.
    pub fn matches(&self, package_name: &str) -> bool {
        self.matching_pattern(package_name).is_some()
    }

    /// The first pattern that `package_name` matches, to explain why an update counts.
    pub fn matching_pattern(&self, package_name: &str) -> Option<&str> {
        let name: Vec<char> = package_name.chars().collect();
        self.patterns
            .iter()
            .position(|pattern| glob_matches(pattern, &name))
            .map(|index| self.texts[index].as_str())
    }

    /// The patterns, system ones first, as given.
    pub fn patterns(&self) -> &[String] {
        &self.texts
    }
}

fn check_pattern(text: &str) -> Result<(), CatalogError> {
    let reason = if text.is_empty() {
        "is empty".to_string()
    } else if text.chars().count() > MAX_WATCH_PATTERN_CHARS {
        format!("is longer than {MAX_WATCH_PATTERN_CHARS} characters")
    } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "contains a space or control character (package names have none)".to_string()
    } else {
        return Ok(());
    };
    Err(CatalogError::InvalidWatchPattern {
        pattern: text.to_string(),
        reason,
    })
}

/// Glob matching with `*` and `?`. On a mismatch after a star, the star takes one more
/// character and matching resumes there; earlier stars never need revisiting, because the last
/// star can absorb anything they could.
fn glob_matches(pattern: &[char], name: &[char]) -> bool {
    let (mut pattern_at, mut name_at) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while name_at < name.len() {
        match pattern.get(pattern_at) {
            Some('*') => {
                last_star = Some((pattern_at, name_at));
                pattern_at += 1;
            }
            Some(&c) if c == '?' || c == name[name_at] => {
                pattern_at += 1;
                name_at += 1;
            }
            _ => {
                let Some((star_at, star_name_at)) = last_star else {
                    return false;
                };
                pattern_at = star_at + 1;
                name_at = star_name_at + 1;
                last_star = Some((star_at, star_name_at + 1));
            }
        }
    }
    pattern[pattern_at..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        let pattern: Vec<char> = pattern.chars().collect();
        let name: Vec<char> = name.chars().collect();
        glob_matches(&pattern, &name)
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("qemu-*", "qemu-kvm"));
        assert!(matches("qemu-*", "qemu-"));
        assert!(!matches("qemu-*", "qemu"));
        assert!(matches("*", ""));
        assert!(matches("lib?irt*", "libvirt-daemon"));
        assert!(!matches("lib?irt", "libirt"));
        assert!(matches("*-kvm-*", "qemu-kvm-core"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("kernel", "kernel"));
        assert!(!matches("kernel", "kernel-core"));
    }
}
