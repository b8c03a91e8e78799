//! Drover's own cordon and maintenance marks on hosts. libvirt has neither: the driver keeps them
//! and reports them in host facts and discovery, and refuses to place VMs on a host it marked in
//! maintenance.
//!
//! With a marks file they survive Drover's process: every change rewrites the file (write to a
//! temporary file, fsync, rename), and a driver opened later — `drover resume`, `drover discover`
//! — starts from it, so a host Drover cordoned stays cordoned for every `drover` command until
//! Drover uncordons it. Without a file they live in memory only. This module knows nothing of
//! libvirt.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::LibvirtError;

/// What Drover set on one host; `None`: never set, so the platform's (or a command's) answer
/// stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HostMarks {
    pub cordoned: Option<bool>,
    pub in_maintenance: Option<bool>,
}

/// Shared between calls; the lock is never held across an await.
#[derive(Debug, Default)]
pub(crate) struct DroverHostMarks {
    by_host: Mutex<BTreeMap<String, HostMarks>>,
    file: Option<PathBuf>,
}

impl DroverHostMarks {
    /// Marks kept in `file` (read now if it exists), or in memory only.
    pub(crate) fn open(file: Option<PathBuf>) -> Result<Self, LibvirtError> {
        let by_host = match &file {
            Some(path) if path.exists() => read_marks(path)?,
            _ => BTreeMap::new(),
        };
        Ok(DroverHostMarks {
            by_host: Mutex::new(by_host),
            file,
        })
    }

    /// Changes the marks and, with a file, writes them all while the lock is held, so that two
    /// concurrent changes are written in the order they were made.
    fn change(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, HostMarks>),
    ) -> Result<(), LibvirtError> {
        // Each update is one field of one entry, so a panic elsewhere cannot leave the map
        // half-updated: a poisoned lock is still good to use.
        let mut marks = self.by_host.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut marks);
        match &self.file {
            Some(path) => write_marks(path, &marks),
            None => Ok(()),
        }
    }

    pub(crate) fn of(&self, host: &str) -> HostMarks {
        let marks = self.by_host.lock().unwrap_or_else(|p| p.into_inner());
        marks.get(host).copied().unwrap_or_default()
    }

    pub(crate) fn set_cordoned(&self, host: &str, cordoned: bool) -> Result<(), LibvirtError> {
        self.change(|marks| marks.entry(host.to_string()).or_default().cordoned = Some(cordoned))
    }

    pub(crate) fn set_in_maintenance(
        &self,
        host: &str,
        in_maintenance: bool,
    ) -> Result<(), LibvirtError> {
        self.change(|marks| {
            marks.entry(host.to_string()).or_default().in_maintenance = Some(in_maintenance)
        })
    }

    pub(crate) fn is_in_maintenance(&self, host: &str) -> bool {
        self.of(host).in_maintenance.unwrap_or(false)
    }
}

fn marks_file_error(path: &Path, detail: impl std::fmt::Display) -> LibvirtError {
    LibvirtError::MarksFile {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

fn read_marks(path: &Path) -> Result<BTreeMap<String, HostMarks>, LibvirtError> {
    let text = std::fs::read_to_string(path).map_err(|error| marks_file_error(path, error))?;
    serde_json::from_str(&text).map_err(|error| marks_file_error(path, error))
}

/// A crash mid-write leaves either the old file or the new one, never half of one.
fn write_marks(path: &Path, marks: &BTreeMap<String, HostMarks>) -> Result<(), LibvirtError> {
    let text = serde_json::to_string_pretty(marks).map_err(|e| marks_file_error(path, e))?;
    let temporary = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().map_err(|error| marks_file_error(path, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_per_host_and_unset_until_set() {
        let marks = DroverHostMarks::default();
        assert_eq!(marks.of("h1"), HostMarks::default());
        marks.set_cordoned("h1", true).unwrap();
        marks.set_in_maintenance("h1", true).unwrap();
        marks.set_in_maintenance("h1", false).unwrap();
        assert_eq!(
            marks.of("h1"),
            HostMarks {
                cordoned: Some(true),
                in_maintenance: Some(false)
            }
        );
        assert!(!marks.is_in_maintenance("h1"));
        assert_eq!(marks.of("h2"), HostMarks::default());
    }

    #[test]
    fn marks_in_a_file_survive_the_driver() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("pool.libvirt-marks.json");
        let marks = DroverHostMarks::open(Some(path.clone())).unwrap();
        marks.set_cordoned("h1", true).unwrap();
        marks.set_in_maintenance("h2", true).unwrap();
        drop(marks);
        let reopened = DroverHostMarks::open(Some(path.clone())).unwrap();
        assert_eq!(reopened.of("h1").cordoned, Some(true));
        assert!(reopened.is_in_maintenance("h2"));
        assert_eq!(reopened.of("h3"), HostMarks::default());
        std::fs::write(&path, "{not json").unwrap();
        let broken = DroverHostMarks::open(Some(path.clone())).unwrap_err();
        assert!(
            broken.to_string().contains("pool.libvirt-marks.json"),
            "{broken}"
        );
    }
}
