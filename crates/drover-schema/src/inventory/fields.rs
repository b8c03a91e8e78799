//! serde helpers for inventory values whose default messages would be unclear: whole numbers,
//! ratios, versions, `max_unavailable`, maintenance windows and maps that refuse repeated keys.
//!
//! Each helper checks the form of one value (type, sign, syntax) and nothing else; rules that
//! need the whole document (duplicates, references, capacity, zero limits) live in `validate`.
//! Positions and field paths are added by serde_yaml_ng, so this module knows neither; it knows
//! no section type either (the sections import it, never the other way).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use drover_core::{HostShare, MaintenanceWindow, MaxUnavailable, Version};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::window::{maintenance_window_text, parse_window};

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
    deserializer.deserialize_any(UniqueKeysVisitor::new(
        "label",
        "a mapping of label names to values, such as {rack: r1}",
    ))
}

/// Reads a mapping, refusing a key given twice (a plain map would keep the last one silently);
/// `noun` names the keys in the message and `expecting` describes the mapping. The section
/// types that own such a mapping (the driver's `commands` and libvirt `hosts`) name their key and
/// value types, so this module needs none of them.
pub(crate) fn unique_keys<'de, D, K, V>(
    deserializer: D,
    noun: &'static str,
    expecting: &'static str,
) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Serialize + Ord,
    V: Deserialize<'de>,
{
    deserializer.deserialize_any(UniqueKeysVisitor::new(noun, expecting))
}

/// Reads a number, integer or not, for ratios such as `cpu_overcommit`.
pub(crate) fn number<'de, D>(deserializer: D) -> Result<f64, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_any(RatioVisitor)
}

/// [`number`] for optional fields; absence is handled by `#[serde(default)]`.
pub(crate) fn optional_ratio<'de, D>(deserializer: D) -> Result<Option<f64>, D::Error>
where
    D: Deserializer<'de>,
{
    number(deserializer).map(Some)
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

/// A mapping that refuses a key given twice; `noun` names the keys in the message.
struct UniqueKeysVisitor<K, V> {
    noun: &'static str,
    expecting: &'static str,
    entry_types: PhantomData<(K, V)>,
}

impl<K, V> UniqueKeysVisitor<K, V> {
    fn new(noun: &'static str, expecting: &'static str) -> Self {
        UniqueKeysVisitor {
            noun,
            expecting,
            entry_types: PhantomData,
        }
    }
}

impl<'de, K, V> Visitor<'de> for UniqueKeysVisitor<K, V>
where
    K: Deserialize<'de> + Serialize + Ord,
    V: Deserialize<'de>,
{
    type Value = BTreeMap<K, V>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.expecting)
    }

    /// An empty value (`labels:` with nothing after it) means an empty map.
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_map<M: MapAccess<'de>>(self, mut entries: M) -> Result<Self::Value, M::Error> {
        let mut map = BTreeMap::new();
        while let Some((key, value)) = entries.next_entry::<K, V>()? {
            if map.contains_key(&key) {
                // JSON text shows the key as the file writes it, quoted: "rack", "upgrade".
                let key_text = serde_json::to_string(&key).unwrap_or_default();
                return Err(de::Error::custom(format!(
                    "duplicate {} {key_text}",
                    self.noun
                )));
            }
            map.insert(key, value);
        }
        Ok(map)
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

/// `max_unavailable` as an integer >= 1, a percentage of the hosts ("10%") or the string "auto"
/// (`with = "optional_max_unavailable"`).
pub(crate) mod optional_max_unavailable {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<MaxUnavailable>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(MaxUnavailable::Auto) => serializer.serialize_str("auto"),
            Some(MaxUnavailable::Percent(percent)) => {
                serializer.serialize_str(&HostShare::Percent(*percent).to_text())
            }
            Some(MaxUnavailable::Count(count)) => serializer.serialize_u32(*count),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<MaxUnavailable>, D::Error> {
        let share = deserializer.deserialize_any(HostShareVisitor { auto_allowed: true })?;
        Ok(Some(match share {
            None => MaxUnavailable::Auto,
            Some(HostShare::Hosts(count)) => MaxUnavailable::Count(count),
            Some(HostShare::Percent(percent)) => MaxUnavailable::Percent(percent),
        }))
    }
}

/// `max_unavailable_auto_ceiling` as an integer >= 1 or a percentage of the hosts ("10%")
/// (`with = "optional_host_share"`).
pub(crate) mod optional_host_share {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<HostShare>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(HostShare::Hosts(count)) => serializer.serialize_u32(*count),
            Some(share) => serializer.serialize_str(&share.to_text()),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<HostShare>, D::Error> {
        deserializer.deserialize_any(HostShareVisitor {
            auto_allowed: false,
        })
    }
}

/// A number of hosts (`Hosts`), a percentage of them (`Percent`), or, where allowed, "auto"
/// (`None`). The check is made inside the visitor so that serde_yaml_ng places the error on it.
struct HostShareVisitor {
    auto_allowed: bool,
}

impl HostShareVisitor {
    fn wanted(&self) -> &'static str {
        match self.auto_allowed {
            true => "an integer >= 1, a percentage such as \"10%\" or \"auto\"",
            false => "an integer >= 1 or a percentage such as \"10%\"",
        }
    }

    fn refuse<E: de::Error>(&self, shown: impl fmt::Display) -> E {
        E::custom(format!("must be {}, got {shown}", self.wanted()))
    }
}

impl Visitor<'_> for HostShareVisitor {
    type Value = Option<HostShare>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.wanted())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Option<HostShare>, E> {
        match u32::try_from(value) {
            Ok(0) => Err(self.refuse(value)),
            Ok(count) => Ok(Some(HostShare::Hosts(count))),
            Err(_) => Err(E::custom(format!("{value} is too large"))),
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Option<HostShare>, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(self.refuse(value)),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Option<HostShare>, E> {
        Err(self.refuse(value))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Option<HostShare>, E> {
        if text == "auto" && self.auto_allowed {
            return Ok(None);
        }
        let Some(number) = text.strip_suffix('%') else {
            return Err(self.refuse(format_args!("{text:?}")));
        };
        match number.trim().parse::<u32>() {
            Ok(percent @ 1..=100) => Ok(Some(HostShare::Percent(percent))),
            _ => Err(E::custom(format!(
                "a percentage of the hosts must be a whole number from 1% to 100%, got {text:?}"
            ))),
        }
    }
}

/// Maintenance windows as a list of texts such as "Sat 22:00-06:00" (`with = "window_list"`).
/// `windows:` with nothing after it means no windows.
pub(crate) mod window_list {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        windows: &[MaintenanceWindow],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(windows.iter().map(maintenance_window_text))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<MaintenanceWindow>, D::Error> {
        let texts = Option::<Vec<WindowText>>::deserialize(deserializer)?;
        Ok(texts
            .unwrap_or_default()
            .into_iter()
            .map(|text| text.0)
            .collect())
    }
}

/// One window read from its text; the error names the text and lands on the list item.
struct WindowText(MaintenanceWindow);

impl<'de> Deserialize<'de> for WindowText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(WindowVisitor).map(WindowText)
    }
}

struct WindowVisitor;

impl Visitor<'_> for WindowVisitor {
    type Value = MaintenanceWindow;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a window such as \"Mon-Fri 01:00-05:00\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<MaintenanceWindow, E> {
        parse_window(text).map_err(E::custom)
    }
}
