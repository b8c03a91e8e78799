//! Dotted-number versions (`8.2.1`, `4.12`) and their ordering.
//!
//! Versions compare number by number, missing parts count as zero (`8.2` == `8.2.0`).
//! This module knows nothing of catalogs, channels or hosts.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A version made of dot-separated unsigned numbers. Keeps the text it was parsed from for display.
#[derive(Clone, Debug)]
pub struct Version {
    parts: Vec<u64>,
    text: String,
}

/// Why a string is not a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a dotted-number version (expected e.g. \"8.2.1\")")]
pub struct VersionParseError {
    pub text: String,
}

impl Version {
    /// The numbers of this version, most significant first.
    pub fn parts(&self) -> &[u64] {
        &self.parts
    }

    /// The text this version was written as.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Parts without trailing zeros, so that equal versions have equal keys.
    fn significant(&self) -> &[u64] {
        let keep = self
            .parts
            .iter()
            .rposition(|p| *p != 0)
            .map_or(0, |i| i + 1);
        &self.parts[..keep]
    }
}

impl FromStr for Version {
    type Err = VersionParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || VersionParseError {
            text: text.to_string(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(error());
        }
        let parts = trimmed
            .split('.')
            .map(|part| {
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(error());
                }
                part.parse::<u64>().map_err(|_| error())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Version {
            parts,
            text: trimmed.to_string(),
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let length = self.parts.len().max(other.parts.len());
        (0..length)
            .map(|i| {
                let left = self.parts.get(i).copied().unwrap_or(0);
                let right = other.parts.get(i).copied().unwrap_or(0);
                left.cmp(&right)
            })
            .find(|ordering| *ordering != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.significant().hash(state);
    }
}

impl fmt::Display for Version {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn compares_number_by_number_not_as_text() {
        assert!(v("8.10.0") > v("8.9.9"));
        assert!(v("8.2.1") > v("8.2"));
        assert_eq!(v("8.2"), v("8.2.0"));
        assert!(v("10") > v("9.99"));
    }

    #[test]
    fn rejects_non_numeric_parts() {
        for bad in ["", "8..1", "8.x", "v8", "8.2-rc1", " . "] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?} should be refused");
        }
    }
}
