//! Reads the `kind` tag of the `driver:` section and hands the rest of the mapping to the
//! section type of that kind, without losing positions.
//!
//! serde's derived internally tagged enums buffer the whole mapping before they read it, so every
//! error inside would be reported at `driver` instead of, say, `driver.faults[2].vm`. Here the
//! entries are read one by one: those before `kind` (usually none) are buffered, the ones after it
//! are streamed straight from the YAML parser to the section type, which keeps their positions.
//! This module knows the tag and the three section types, and nothing of what they contain.

use std::fmt;
use std::vec;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::driver::{
    CloudstackSection, CommandSection, DriverSection, GanetiSection, KubevirtSection,
    LibvirtSection, OpenstackSection, OvirtSection, SimulatorSection, XapiSection,
};

const KIND_KEY: &str = "kind";

impl<'de> Deserialize<'de> for DriverSection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DriverSectionVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum DriverKind {
    Simulator,
    Libvirt,
    Command,
    Xapi,
    Ovirt,
    Ganeti,
    Cloudstack,
    Kubevirt,
    Openstack,
}

impl DriverKind {
    fn read_section<'de, M: MapAccess<'de>>(self, entries: M) -> Result<DriverSection, M::Error> {
        let deserializer = MapAccessDeserializer::new(entries);
        match self {
            DriverKind::Simulator => {
                SimulatorSection::deserialize(deserializer).map(DriverSection::Simulator)
            }
            DriverKind::Libvirt => {
                LibvirtSection::deserialize(deserializer).map(DriverSection::Libvirt)
            }
            DriverKind::Command => {
                CommandSection::deserialize(deserializer).map(DriverSection::Command)
            }
            DriverKind::Xapi => XapiSection::deserialize(deserializer).map(DriverSection::Xapi),
            DriverKind::Ovirt => OvirtSection::deserialize(deserializer).map(DriverSection::Ovirt),
            DriverKind::Ganeti => {
                GanetiSection::deserialize(deserializer).map(DriverSection::Ganeti)
            }
            DriverKind::Cloudstack => {
                CloudstackSection::deserialize(deserializer).map(DriverSection::Cloudstack)
            }
            DriverKind::Kubevirt => {
                KubevirtSection::deserialize(deserializer).map(DriverSection::Kubevirt)
            }
            DriverKind::Openstack => {
                OpenstackSection::deserialize(deserializer).map(DriverSection::Openstack)
            }
        }
    }
}

struct DriverSectionVisitor;

impl<'de> Visitor<'de> for DriverSectionVisitor {
    type Value = DriverSection;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a driver mapping such as {kind: simulator}")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut entries: M) -> Result<DriverSection, M::Error> {
        let mut entries_before_kind = Vec::new();
        while let Some(key) = entries.next_key::<String>()? {
            if key == KIND_KEY {
                let kind: DriverKind = entries.next_value()?;
                return kind.read_section(ReplayedThenStreamed {
                    replayed: entries_before_kind.into_iter(),
                    replayed_value: None,
                    streamed: entries,
                });
            }
            let value: Value = entries.next_value()?;
            entries_before_kind.push((key, value));
        }
        Err(de::Error::custom(
            "missing field `kind` (simulator, libvirt, command, xapi or ovirt)",
        ))
    }
}

/// The entries read before `kind` (replayed from their buffered values), then the rest of the
/// mapping as the parser delivers it.
struct ReplayedThenStreamed<M> {
    replayed: vec::IntoIter<(String, Value)>,
    /// The value of the replayed key handed out last, until it is asked for.
    replayed_value: Option<Value>,
    streamed: M,
}

impl<'de, M: MapAccess<'de>> MapAccess<'de> for ReplayedThenStreamed<M> {
    type Error = M::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, M::Error> {
        match self.replayed.next() {
            Some((key, value)) => {
                self.replayed_value = Some(value);
                seed.deserialize(key.into_deserializer()).map(Some)
            }
            None => self.streamed.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, M::Error> {
        match self.replayed_value.take() {
            Some(value) => seed.deserialize(value).map_err(de::Error::custom),
            None => self.streamed.next_value_seed(seed),
        }
    }
}
