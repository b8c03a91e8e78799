//! Whether a domain's disks live on local storage, which libvirt refuses to live-migrate and
//! which ties a stopped VM to the host holding its disks.
//!
//! The rule, disk by disk (a domain is `local_storage` when any of its disks is local; a domain
//! with no disks is not):
//! - a drive without a medium (an empty CD-ROM) or a read-only disk never counts: libvirt itself
//!   migrates those (the same path must exist on the destination);
//! - a network disk (`<disk type='network'>`: rbd, nfs, iscsi, gluster, nbd, …) is shared: its
//!   data lives on other machines;
//! - a file, block device or directory is local unless its path lies under one of the configured
//!   shared path prefixes (whole path components: `/mnt/shared` covers `/mnt/shared/a.qcow2`,
//!   not `/mnt/shared2/a.qcow2`); with no prefix configured (the default) every such disk is
//!   local. A relative path or one with `..` is local, as Drover cannot place it;
//! - a pool volume (`type='volume'`) or any other kind is local: Drover cannot tell from the
//!   domain alone whether the pool is shared.
//!
//! The rule is conservative: a shared disk Drover takes for local makes the planner shut the VM
//! down instead of migrating it; the opposite mistake would only be refused by libvirt.
//!
//! This module knows nothing of XML or of libvirt connections.

use std::path::{Component, Path, PathBuf};

/// Where a disk's data comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskSource {
    /// `<disk type='network'>`, with its protocol (`rbd`, `nfs`, `iscsi`, `gluster`, …).
    Network { protocol: String },
    /// A file, block device or directory on the host.
    Path(PathBuf),
    /// A disk Drover cannot place from the domain alone: a pool volume, NVMe, vhost-user….
    Unplaceable { disk_type: String },
    /// No medium (an empty CD-ROM or floppy drive).
    Empty,
}

/// One disk of a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainDisk {
    /// The guest's device name (`vda`), for messages.
    pub target: String,
    pub source: DiskSource,
    /// `<readonly/>`.
    pub read_only: bool,
}

/// The local-storage rule (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedStorageRule {
    /// Paths under these are on shared storage (an NFS or cluster file system mount, SAN
    /// multipath devices under `/dev/mapper`). Absolute paths.
    pub shared_path_prefixes: Vec<PathBuf>,
}

impl SharedStorageRule {
    pub fn with_shared_path_prefixes(prefixes: impl IntoIterator<Item = PathBuf>) -> Self {
        SharedStorageRule {
            shared_path_prefixes: prefixes.into_iter().collect(),
        }
    }

    /// Whether any disk keeps the domain on its host.
    pub fn has_local_storage(&self, disks: &[DomainDisk]) -> bool {
        disks.iter().any(|disk| self.is_local(disk))
    }

    /// The first disk that keeps the domain on its host, for messages.
    pub fn first_local_disk<'a>(&self, disks: &'a [DomainDisk]) -> Option<&'a DomainDisk> {
        disks.iter().find(|disk| self.is_local(disk))
    }

    pub fn is_local(&self, disk: &DomainDisk) -> bool {
        if disk.read_only {
            return false;
        }
        match &disk.source {
            DiskSource::Empty | DiskSource::Network { .. } => false,
            DiskSource::Path(path) => !self.is_under_shared_prefix(path),
            DiskSource::Unplaceable { .. } => true,
        }
    }

    fn is_under_shared_prefix(&self, path: &Path) -> bool {
        let placeable = path.is_absolute()
            && path
                .components()
                .all(|component| !matches!(component, Component::ParentDir));
        placeable
            && self
                .shared_path_prefixes
                .iter()
                .any(|prefix| path.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(source: DiskSource) -> DomainDisk {
        DomainDisk {
            target: "vda".into(),
            source,
            read_only: false,
        }
    }

    fn file(path: &str) -> DomainDisk {
        disk(DiskSource::Path(path.into()))
    }

    #[test]
    fn without_prefixes_every_path_disk_is_local() {
        let rule = SharedStorageRule::default();
        assert!(rule.is_local(&file("/var/lib/libvirt/images/a.qcow2")));
        assert!(rule.is_local(&file("/dev/sdb")));
        assert!(!rule.is_local(&disk(DiskSource::Network {
            protocol: "rbd".into()
        })));
        assert!(!rule.is_local(&disk(DiskSource::Empty)));
        assert!(rule.is_local(&disk(DiskSource::Unplaceable {
            disk_type: "volume".into()
        })));
    }

    #[test]
    fn prefixes_match_whole_path_components() {
        let rule = SharedStorageRule::with_shared_path_prefixes([
            PathBuf::from("/mnt/shared"),
            PathBuf::from("/dev/mapper"),
        ]);
        assert!(!rule.is_local(&file("/mnt/shared/a.qcow2")));
        assert!(!rule.is_local(&file("/mnt/shared/deep/b.raw")));
        assert!(!rule.is_local(&file("/dev/mapper/mpatha")));
        assert!(rule.is_local(&file("/mnt/shared2/a.qcow2")));
        assert!(rule.is_local(&file("/mnt/shared/../local/a.qcow2")));
        assert!(rule.is_local(&file("mnt/shared/a.qcow2")));
    }

    #[test]
    fn read_only_disks_never_count() {
        let rule = SharedStorageRule::default();
        let iso = DomainDisk {
            target: "sda".into(),
            source: DiskSource::Path("/srv/iso/debian.iso".into()),
            read_only: true,
        };
        assert!(!rule.is_local(&iso));
    }

    #[test]
    fn a_domain_is_local_when_any_disk_is() {
        let rule = SharedStorageRule::with_shared_path_prefixes([PathBuf::from("/nfs")]);
        let shared = file("/nfs/a.qcow2");
        let local = file("/var/lib/libvirt/images/scratch.raw");
        assert!(!rule.has_local_storage(&[]));
        assert!(!rule.has_local_storage(std::slice::from_ref(&shared)));
        assert!(rule.has_local_storage(&[shared.clone(), local.clone()]));
        assert_eq!(
            rule.first_local_disk(&[shared, local.clone()]),
            Some(&local)
        );
    }
}
