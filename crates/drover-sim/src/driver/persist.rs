//! The simulated platform's state file: the world (operations in flight with their platform
//! completion times, boot counters, fault counters, the operation counter the random draws
//! derive from) as JSON, replaced atomically (temporary file, fsync, rename, fsync of the
//! directory) so a process killed mid-write leaves the previous state intact.
//!
//! This module owns the file format and nothing else: it knows no rules of the platform.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::world::PlatformState;

/// Bumped when the file's shape changes incompatibly.
const STATE_FORMAT: u32 = 1;

#[derive(Serialize)]
struct SavedPlatformRef<'a> {
    format: u32,
    platform: &'a PlatformState,
}

#[derive(Deserialize)]
struct SavedPlatform {
    format: u32,
    platform: PlatformState,
}

/// The state saved at `path`, or `None` when there is no file yet.
pub(super) fn load(path: &Path) -> Result<Option<PlatformState>, String> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read it: {error}")),
    };
    let saved: SavedPlatform = serde_json::from_str(&text)
        .map_err(|error| format!("it is not a saved platform: {error}"))?;
    if saved.format != STATE_FORMAT {
        return Err(format!(
            "it has format {}, this Drover reads format {STATE_FORMAT}",
            saved.format
        ));
    }
    Ok(Some(saved.platform))
}

/// Replaces the file at `path` with `state`.
pub(super) fn save(path: &Path, state: &PlatformState) -> Result<(), String> {
    let saved = SavedPlatformRef {
        format: STATE_FORMAT,
        platform: state,
    };
    let bytes = serde_json::to_vec(&saved)
        .map_err(|error| format!("cannot encode the platform: {error}"))?;
    let temporary = temporary_path(path);
    write_synced(&temporary, &bytes)
        .map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
    fs::rename(&temporary, path).map_err(|error| format!("cannot replace it: {error}"))?;
    sync_directory_of(path).map_err(|error| format!("cannot sync its directory: {error}"))
}

/// A temporary name of this process and this save alone: two processes (or two saves in one)
/// writing the same platform file must never rename each other's half-written file, nor find
/// their own renamed away by the other.
fn temporary_path(path: &Path) -> PathBuf {
    static SAVES_STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let save_number = SAVES_STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{}.{save_number}.tmp", std::process::id()));
    path.with_file_name(name)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the rename itself durable (on Unix a directory entry is only durable once its
/// directory is synced; elsewhere there is nothing to do).
fn sync_directory_of(path: &Path) -> std::io::Result<()> {
    if cfg!(unix) {
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(directory)?.sync_all()?;
    }
    Ok(())
}
