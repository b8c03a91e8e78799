//! Serde for `drover_core::Version` as its text (the core has no serde, by design), for the
//! world's fields that hold a version (`#[serde(with = "version_text")]`).
//!
//! A leaf: it knows the version type and serde, and nothing of the world, the state file or the
//! platform's rules.

use drover_core::Version;
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(version: &Version, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(version.as_str())
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Version, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}
