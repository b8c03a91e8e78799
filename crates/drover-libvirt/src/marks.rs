//! Drover's own cordon and maintenance marks on hosts. libvirt has neither: the driver keeps them
//! and reports them in host facts and discovery, and refuses to place VMs on a host it marked in
//! maintenance.
//!
//! They live in memory only and are lost when Drover stops; the engine's journal is the durable
//! record of what Drover changed. This module knows nothing of libvirt.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// What Drover set on one host; `None`: never set, so the platform's (or a command's) answer
/// stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HostMarks {
    pub cordoned: Option<bool>,
    pub in_maintenance: Option<bool>,
}

/// Shared between calls; the lock is never held across an await.
#[derive(Debug, Default)]
pub(crate) struct DroverHostMarks {
    by_host: Mutex<BTreeMap<String, HostMarks>>,
}

impl DroverHostMarks {
    fn with<T>(&self, change: impl FnOnce(&mut BTreeMap<String, HostMarks>) -> T) -> T {
        // Each update is one field of one entry, so a panic elsewhere cannot leave the map
        // half-updated: a poisoned lock is still good to use.
        let mut marks = self.by_host.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut marks)
    }

    pub(crate) fn of(&self, host: &str) -> HostMarks {
        self.with(|marks| marks.get(host).copied().unwrap_or_default())
    }

    pub(crate) fn set_cordoned(&self, host: &str, cordoned: bool) {
        self.with(|marks| marks.entry(host.to_string()).or_default().cordoned = Some(cordoned));
    }

    pub(crate) fn set_in_maintenance(&self, host: &str, in_maintenance: bool) {
        self.with(|marks| {
            marks.entry(host.to_string()).or_default().in_maintenance = Some(in_maintenance)
        });
    }

    pub(crate) fn is_in_maintenance(&self, host: &str) -> bool {
        self.of(host).in_maintenance.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_per_host_and_unset_until_set() {
        let marks = DroverHostMarks::default();
        assert_eq!(marks.of("h1"), HostMarks::default());
        marks.set_cordoned("h1", true);
        marks.set_in_maintenance("h1", true);
        marks.set_in_maintenance("h1", false);
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
}
