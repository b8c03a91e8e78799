//! serde helpers for inventory values whose default messages would be unclear: whole numbers,
//! ratios, versions and `max_unavailable`.
//!
//! Each helper checks the form of one value (type, sign, syntax) and nothing else; rules that
//! need the whole document (duplicates, references, capacity, zero limits) live in `validate`.
//! Positions and field paths are added by serde_yaml_ng, so this module knows neither.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use drover_core::{MaxUnavailable, Version};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serializer};

/// Reads a non-negative integer, refusing negatives, fractions and values that do not fit.
pub(crate) fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: WholeNumber,
{
    // The range is checked inside the visitor so that serde_yaml_ng places the error on the value.
    deserializer.deserialize_any(WholeNumberVisitor(PhantomData))
}

/// [`whole_number`] for optional fields; absence is handled by `#[serde(default)]`.
pub(crate) fn optional_whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: WholeNumber,
{
    whole_number(deserializer).map(Some)
}

/// The unsigned types inventory counts and sizes are stored in.
pub(crate) trait WholeNumber: TryFrom<u64> {
    const MAX: u64;
}

impl WholeNumber for u32 {
    const MAX: u64 = u32::MAX as u64;
}

impl WholeNumber for u64 {
    const MAX: u64 = u64::MAX;
}

/// Reads a YAML null (`vms:` with nothing after it) as the empty value, like a left-out key.
pub(crate) fn null_as_empty<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Reads `labels`, refusing a key given twice (a plain map would keep the last one silently).
pub(crate) fn unique_labels<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_any(LabelsVisitor)
}

/// Reads a number, integer or not, for ratios such as `cpu_overcommit`.
pub(crate) fn optional_ratio<'de, D>(deserializer: D) -> Result<Option<f64>, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_any(RatioVisitor).map(Some)
}

struct WholeNumberVisitor<T>(PhantomData<T>);

impl<T: WholeNumber> WholeNumberVisitor<T> {
    fn not_a_whole_number<E: de::Error>(shown: impl fmt::Display) -> E {
        E::custom(format!("must be a non-negative integer, got {shown}"))
    }

    fn too_large<E: de::Error>(shown: impl fmt::Display) -> E {
        E::custom(format!("must be at most {}, got {shown}", T::MAX))
    }
}

impl<T: WholeNumber> Visitor<'_> for WholeNumberVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a non-negative integer")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        T::try_from(value).map_err(|_| Self::too_large(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        let value = u64::try_from(value).map_err(|_| Self::not_a_whole_number(value))?;
        self.visit_u64(value)
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<T, E> {
        Err(Self::too_large(value))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<T, E> {
        Err(Self::not_a_whole_number(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        Err(Self::not_a_whole_number(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Err(E::custom("is empty; expected a non-negative integer"))
    }
}

struct LabelsVisitor;

impl<'de> Visitor<'de> for LabelsVisitor {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a mapping of label names to values, such as {rack: r1}")
    }

    /// `labels:` with nothing after it means no labels.
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_map<M: MapAccess<'de>>(self, mut entries: M) -> Result<Self::Value, M::Error> {
        let mut labels = BTreeMap::new();
        while let Some((name, value)) = entries.next_entry::<String, String>()? {
            if labels.contains_key(&name) {
                return Err(de::Error::custom(format!("duplicate label {name:?}")));
            }
            labels.insert(name, value);
        }
        Ok(labels)
    }
}

struct RatioVisitor;

impl Visitor<'_> for RatioVisitor {
    type Value = f64;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a number such as 4.0")
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<f64, E> {
        Ok(value)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<f64, E> {
        Ok(value as f64)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<f64, E> {
        Ok(value as f64)
    }

    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Err(E::custom("is empty; expected a number such as 4.0"))
    }
}

/// Versions as text (`with = "version_text"`).
///
/// serde_yaml_ng hands an unquoted scalar to `deserialize_str` as written, so `version: 8.10` is
/// read as "8.10", not as the float 8.1. Deserializers that have already made the value a number
/// (serde_json reading the document type directly) refuse it as a wrong type instead of guessing.
pub(crate) mod version_text {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        version: &Version,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(version.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Version, D::Error> {
        deserializer.deserialize_str(VersionVisitor)
    }
}

struct VersionVisitor;

impl Visitor<'_> for VersionVisitor {
    type Value = Version;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a quoted version such as \"8.2.1\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Version, E> {
        text.parse().map_err(E::custom)
    }
}

/// `max_unavailable` as an integer >= 1 or the string "auto" (`with = "optional_max_unavailable"`).
pub(crate) mod optional_max_unavailable {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<MaxUnavailable>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(MaxUnavailable::Auto) => serializer.serialize_str("auto"),
            Some(MaxUnavailable::Count(count)) => serializer.serialize_u32(*count),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<MaxUnavailable>, D::Error> {
        deserializer
            .deserialize_any(MaxUnavailableVisitor)
            .map(Some)
    }
}

struct MaxUnavailableVisitor;

impl MaxUnavailableVisitor {
    fn refuse<E: de::Error>(shown: impl fmt::Display) -> E {
        E::custom(format!("must be an integer >= 1 or \"auto\", got {shown}"))
    }
}

impl Visitor<'_> for MaxUnavailableVisitor {
    type Value = MaxUnavailable;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an integer >= 1 or \"auto\"")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<MaxUnavailable, E> {
        match u32::try_from(value) {
            Ok(0) => Err(Self::refuse(value)),
            Ok(count) => Ok(MaxUnavailable::Count(count)),
            Err(_) => Err(E::custom(format!("{value} is too large"))),
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<MaxUnavailable, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(Self::refuse(value)),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<MaxUnavailable, E> {
        Err(Self::refuse(value))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<MaxUnavailable, E> {
        match text {
            "auto" => Ok(MaxUnavailable::Auto),
            _ => Err(Self::refuse(format_args!("{text:?}"))),
        }
    }
}
