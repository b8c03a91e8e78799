//! The clock the store reads to grant leases and to tell whether one is live: the wall clock in
//! production, a hand-moved one in tests.
//!
//! Lease times are the store's own, never a caller's: every holder's expiry is written and
//! compared by the store's clock, so no two machines' clocks are ever compared. For the SQLite
//! store "the store's clock" is the clock of whichever process on the one machine that shares the
//! file is writing, so all of them read the same system clock. This module must not know leases,
//! locks or SQL.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::duration_ms;

/// Milliseconds since the Unix epoch, as the store reads them for leases.
pub trait LeaseClock: Send + Sync + Debug {
    fn now_ms(&self) -> u64;
}

/// The machine's wall clock (`SystemTime`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl LeaseClock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock set before 1970 reads as the epoch: every lease then looks expired, which
        // only lets a take-over that fencing still guards.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, duration_ms)
    }
}

/// A clock that moves only when told, so tests (and simulations in virtual time) can expire a
/// lease without sleeping.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    pub fn new(now_ms: u64) -> ManualClock {
        ManualClock {
            now_ms: AtomicU64::new(now_ms),
        }
    }

    pub fn set_ms(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.now_ms.fetch_add(duration_ms(by), Ordering::SeqCst);
    }
}

impl LeaseClock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}
