//! What Drover reads from a libvirt domain's XML: its disks (for the local-storage rule) and
//! Drover's own metadata element, which libvirt keeps with the domain through migrations:
//!
//! ```xml
//! <metadata>
//!   <drover:vm xmlns:drover="https://drover.dev/xmlns/vm/1"
//!              restart_policy="always" anti_affinity="web" migratable="false"/>
//! </metadata>
//! ```
//!
//! The element is found by namespace and local name (`vm`), whatever its prefix. Every attribute
//! is optional: `restart_policy` is `always` or `manual` (default `manual`), `anti_affinity` a
//! group name (default none; empty means none), `migratable` is `true` or `false` (default
//! `true`). An unknown attribute, a value outside these, or two such elements is an error, so a
//! typo (`migrateable="false"`) can never read as the default.
//!
//! This module knows nothing of libvirt connections or of which rule makes a disk local.

use std::path::PathBuf;

use drover_core::RestartPolicy;
use roxmltree::{Document, Node};

use crate::storage::{DiskSource, DomainDisk};

/// The namespace of Drover's `<metadata>` element.
pub const DROVER_VM_METADATA_NAMESPACE: &str = "https://drover.dev/xmlns/vm/1";
/// The local name of Drover's `<metadata>` element.
const DROVER_VM_ELEMENT: &str = "vm";
const KNOWN_ATTRIBUTES: &str = "restart_policy, anti_affinity, migratable";

/// Drover's per-VM settings from the domain's metadata (defaults where absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroverVmMetadata {
    pub restart_policy: RestartPolicy,
    pub anti_affinity: Option<String>,
    pub migratable: bool,
}

impl Default for DroverVmMetadata {
    /// The inventory's defaults for a VM entry.
    fn default() -> Self {
        DroverVmMetadata {
            unmovable: None,
            restart_policy: RestartPolicy::Manual,
            anti_affinity: None,
            migratable: true,
        }
    }
}

/// A domain's XML as Drover reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainXml {
    pub disks: Vec<DomainDisk>,
    /// `Err` says what is wrong with the metadata element; kept apart from the disks so a caller
    /// whose inventory overrides the metadata can still use the rest.
    pub drover_metadata: Result<DroverVmMetadata, String>,
}

impl DomainXml {
    /// Reads a domain's XML (`virDomainGetXMLDesc`); `Err` when it is not a domain document.
    pub fn parse(xml: &str) -> Result<DomainXml, String> {
        let document = Document::parse(xml).map_err(|e| format!("unreadable domain XML: {e}"))?;
        let domain = document.root_element();
        if !domain.has_tag_name("domain") {
            return Err(format!(
                "the XML's root element is <{}>, not <domain>",
                domain.tag_name().name()
            ));
        }
        Ok(DomainXml {
            disks: disks_of(domain),
            drover_metadata: drover_metadata_of(domain),
        })
    }
}

fn child_elements<'a, 'input>(
    node: Node<'a, 'input>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children()
        .filter(move |child| child.is_element() && child.has_tag_name(name))
}

fn disks_of(domain: Node) -> Vec<DomainDisk> {
    child_elements(domain, "devices")
        .flat_map(|devices| child_elements(devices, "disk"))
        .map(disk_of)
        .collect()
}

fn disk_of(disk: Node) -> DomainDisk {
    let target = child_elements(disk, "target")
        .find_map(|target| target.attribute("dev"))
        .unwrap_or("?")
        .to_string();
    let read_only = child_elements(disk, "readonly").next().is_some();
    let disk_type = disk.attribute("type").unwrap_or("file");
    let source = child_elements(disk, "source").next();
    DomainDisk {
        target,
        source: disk_source(disk_type, source),
        read_only,
    }
}

fn disk_source(disk_type: &str, source: Option<Node>) -> DiskSource {
    let path_attribute = match disk_type {
        "file" => "file",
        "block" => "dev",
        "dir" => "dir",
        "network" => {
            let protocol = source.and_then(|s| s.attribute("protocol")).unwrap_or("?");
            return DiskSource::Network {
                protocol: protocol.to_string(),
            };
        }
        other => {
            return DiskSource::Unplaceable {
                disk_type: other.to_string(),
            }
        }
    };
    match source.and_then(|s| s.attribute(path_attribute)) {
        Some(path) if !path.is_empty() => DiskSource::Path(PathBuf::from(path)),
        _ => DiskSource::Empty,
    }
}

fn drover_metadata_of(domain: Node) -> Result<DroverVmMetadata, String> {
    let mut elements = child_elements(domain, "metadata").flat_map(|metadata| {
        metadata.children().filter(|child| {
            child.is_element()
                && child.tag_name().namespace() == Some(DROVER_VM_METADATA_NAMESPACE)
                && child.tag_name().name() == DROVER_VM_ELEMENT
        })
    });
    let Some(element) = elements.next() else {
        return Ok(DroverVmMetadata::default());
    };
    if elements.next().is_some() {
        return Err(format!(
            "more than one Drover metadata element ({DROVER_VM_METADATA_NAMESPACE})"
        ));
    }
    metadata_from_attributes(element)
}

fn metadata_from_attributes(element: Node) -> Result<DroverVmMetadata, String> {
    let mut metadata = DroverVmMetadata::default();
    for attribute in element.attributes() {
        let value = attribute.value();
        match attribute.name() {
            "restart_policy" => metadata.restart_policy = restart_policy(value)?,
            "anti_affinity" => {
                metadata.anti_affinity = (!value.is_empty()).then(|| value.to_string())
            }
            "migratable" => metadata.migratable = flag("migratable", value)?,
            unknown => {
                return Err(format!(
                    "Drover metadata has unknown attribute {unknown:?}; known: {KNOWN_ATTRIBUTES}"
                ))
            }
        }
    }
    Ok(metadata)
}

fn restart_policy(value: &str) -> Result<RestartPolicy, String> {
    match value {
        "always" => Ok(RestartPolicy::Always),
        "manual" => Ok(RestartPolicy::Manual),
        other => Err(format!(
            "Drover metadata restart_policy={other:?}, which is neither always nor manual"
        )),
    }
}

fn flag(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!(
            "Drover metadata {name}={other:?}, which is neither true nor false"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain_with(metadata: &str, devices: &str) -> String {
        format!(
            "<domain type='qemu'><name>web1</name><memory unit='MiB'>64</memory>\
             <metadata>{metadata}</metadata><devices>{devices}</devices></domain>"
        )
    }

    fn metadata_of(element: &str) -> Result<DroverVmMetadata, String> {
        DomainXml::parse(&domain_with(element, ""))
            .unwrap()
            .drover_metadata
    }

    #[test]
    fn reads_drover_metadata_whatever_the_prefix() {
        let element = r#"<drover:vm xmlns:drover="https://drover.dev/xmlns/vm/1" restart_policy="always" anti_affinity="web" migratable="false"/>"#;
        let expected = DroverVmMetadata {
            unmovable: None,
            restart_policy: RestartPolicy::Always,
            anti_affinity: Some("web".into()),
            migratable: false,
        };
        assert_eq!(metadata_of(element), Ok(expected.clone()));
        let other_prefix = r#"<d:vm xmlns:d="https://drover.dev/xmlns/vm/1" restart_policy="always" anti_affinity="web" migratable="false"/>"#;
        assert_eq!(metadata_of(other_prefix), Ok(expected));
    }

    #[test]
    fn missing_metadata_gives_the_inventory_defaults() {
        assert_eq!(metadata_of(""), Ok(DroverVmMetadata::default()));
        let partial =
            r#"<drover:vm xmlns:drover="https://drover.dev/xmlns/vm/1" anti_affinity=""/>"#;
        assert_eq!(metadata_of(partial), Ok(DroverVmMetadata::default()));
        let foreign = r#"<app:vm xmlns:app="https://example.com/app" migratable="maybe"/>"#;
        assert_eq!(metadata_of(foreign), Ok(DroverVmMetadata::default()));
        let no_metadata = "<domain><name>a</name></domain>";
        let parsed = DomainXml::parse(no_metadata).unwrap();
        assert_eq!(parsed.drover_metadata, Ok(DroverVmMetadata::default()));
        assert!(parsed.disks.is_empty());
    }

    #[test]
    fn bad_metadata_is_an_error_not_a_default() {
        let namespace = r#"xmlns:drover="https://drover.dev/xmlns/vm/1""#;
        let cases = [
            (
                format!(r#"<drover:vm {namespace} migrateable="false"/>"#),
                "unknown attribute \"migrateable\"",
            ),
            (
                format!(r#"<drover:vm {namespace} migratable="no"/>"#),
                "neither true nor false",
            ),
            (
                format!(r#"<drover:vm {namespace} restart_policy="Always"/>"#),
                "neither always nor manual",
            ),
            (
                format!(r#"<drover:vm {namespace}/><drover:vm {namespace}/>"#),
                "more than one",
            ),
        ];
        for (element, expected) in cases {
            let problem = metadata_of(&element).unwrap_err();
            assert!(problem.contains(expected), "{element}: {problem}");
        }
    }

    #[test]
    fn reads_every_kind_of_disk() {
        let devices = "\
            <disk type='file' device='disk'><source file='/var/lib/a.qcow2'/><target dev='vda'/></disk>\
            <disk type='block' device='disk'><source dev='/dev/sdb'/><target dev='vdb'/></disk>\
            <disk type='network' device='disk'><source protocol='rbd' name='pool/img'/><target dev='vdc'/></disk>\
            <disk type='volume' device='disk'><source pool='default' volume='v'/><target dev='vdd'/></disk>\
            <disk type='file' device='cdrom'><target dev='sda'/><readonly/></disk>\
            <disk type='file' device='cdrom'><source file='/srv/a.iso'/><target dev='sdb'/><readonly/></disk>";
        let parsed = DomainXml::parse(&domain_with("", devices)).unwrap();
        let sources: Vec<(&str, &DiskSource, bool)> = parsed
            .disks
            .iter()
            .map(|d| (d.target.as_str(), &d.source, d.read_only))
            .collect();
        assert_eq!(
            sources,
            vec![
                ("vda", &DiskSource::Path("/var/lib/a.qcow2".into()), false),
                ("vdb", &DiskSource::Path("/dev/sdb".into()), false),
                (
                    "vdc",
                    &DiskSource::Network {
                        protocol: "rbd".into()
                    },
                    false
                ),
                (
                    "vdd",
                    &DiskSource::Unplaceable {
                        disk_type: "volume".into()
                    },
                    false
                ),
                ("sda", &DiskSource::Empty, true),
                ("sdb", &DiskSource::Path("/srv/a.iso".into()), true),
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_a_domain() {
        assert!(DomainXml::parse("<network/>")
            .unwrap_err()
            .contains("not <domain>"));
        assert!(DomainXml::parse("<domain>")
            .unwrap_err()
            .contains("unreadable"));
    }
}
