//! The engine's clock: epoch milliseconds for the core, and sleeping until a time. Platform time
//! may run faster than the wall clock (the simulator's `time_scale`), and under a paused tokio
//! runtime it is virtual: sleeps end at once and time jumps (deterministic simulation).
//!
//! The clock is anchored: platform time = `platform_anchor_ms + (wall now − wall_anchor_ms) ×
//! scale`, so a run resumed in a new process continues the same timeline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct Clock {
    /// Platform time at `origin`.
    origin_platform_ms: u64,
    origin: Instant,
    scale: f64,
    /// Meant for a paused runtime: nothing outside this process shares the timeline.
    virtual_time: bool,
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Clock {
    /// Platform time is wall time.
    pub fn real() -> Self {
        Clock {
            origin_platform_ms: wall_now_ms(),
            origin: Instant::now(),
            scale: 1.0,
            virtual_time: false,
        }
    }

    /// Platform time runs `scale` times faster than the wall clock and was `platform_anchor_ms`
    /// when the wall clock read `wall_anchor_ms`.
    pub fn anchored(wall_anchor_ms: u64, platform_anchor_ms: u64, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        let wall_elapsed_ms = wall_now_ms().saturating_sub(wall_anchor_ms) as f64;
        let origin_platform_ms = platform_anchor_ms + (wall_elapsed_ms * scale) as u64;
        Clock {
            origin_platform_ms,
            origin: Instant::now(),
            scale,
            virtual_time: false,
        }
    }

    /// Virtual time starting at `start_ms`: meant for a paused tokio runtime, where sleeping
    /// advances time instantly.
    pub fn virtual_from(start_ms: u64) -> Self {
        Clock {
            origin_platform_ms: start_ms,
            origin: Instant::now(),
            scale: 1.0,
            virtual_time: true,
        }
    }

    pub fn is_virtual(&self) -> bool {
        self.virtual_time
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    pub fn now_ms(&self) -> u64 {
        let elapsed = self.origin.elapsed().as_secs_f64() * 1000.0 * self.scale;
        self.origin_platform_ms + elapsed as u64
    }

    /// Wall-clock duration of `platform_ms` of platform time.
    pub fn wall_duration(&self, platform_ms: u64) -> Duration {
        Duration::from_secs_f64(platform_ms as f64 / 1000.0 / self.scale)
    }

    pub async fn sleep_ms(&self, platform_ms: u64) {
        tokio::time::sleep(self.wall_duration(platform_ms)).await;
    }

    pub async fn sleep_until_ms(&self, platform_at_ms: u64) {
        let now = self.now_ms();
        if platform_at_ms > now {
            self.sleep_ms(platform_at_ms - now).await;
        }
    }
}
