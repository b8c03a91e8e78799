//! Maintenance windows against the calendar: converts platform time to local weekday and minute
//! in the policy's time zone (jiff) and asks the core's pure window rule.

use drover_core::MaintenanceWindow;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Whether any window is open at `now_ms`; no windows means always open. An unknown time zone
/// (refused when the inventory was read) falls back to UTC rather than blocking forever.
pub fn is_open(windows: &[MaintenanceWindow], time_zone: &str, now_ms: u64) -> bool {
    if windows.is_empty() {
        return true;
    }
    let zone = TimeZone::get(time_zone).unwrap_or(TimeZone::UTC);
    let Ok(timestamp) = Timestamp::from_millisecond(now_ms as i64) else {
        return true;
    };
    let local = timestamp.to_zoned(zone);
    let weekday = local.weekday().to_monday_zero_offset() as u8;
    let minute = local.hour() as u16 * 60 + local.minute() as u16;
    windows.iter().any(|w| w.is_open_at(weekday, minute))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturday_night_window_spans_midnight() {
        let window = MaintenanceWindow {
            days: vec![5],
            start_minute: 22 * 60,
            end_minute: 6 * 60,
        };
        // 2026-11-21 is a Saturday.
        let at = |text: &str| text.parse::<Timestamp>().unwrap().as_millisecond() as u64;
        assert!(is_open(
            std::slice::from_ref(&window),
            "UTC",
            at("2026-11-21T23:30:00Z")
        ));
        assert!(is_open(
            std::slice::from_ref(&window),
            "UTC",
            at("2026-11-22T05:59:00Z")
        ));
        assert!(!is_open(
            std::slice::from_ref(&window),
            "UTC",
            at("2026-11-22T06:00:00Z")
        ));
        assert!(!is_open(
            std::slice::from_ref(&window),
            "UTC",
            at("2026-11-21T21:00:00Z")
        ));
        // 23:30 in Paris is 22:30 UTC.
        assert!(is_open(
            std::slice::from_ref(&window),
            "Europe/Paris",
            at("2026-11-21T22:30:00Z")
        ));
        assert!(!is_open(
            std::slice::from_ref(&window),
            "Europe/Paris",
            at("2026-11-21T20:30:00Z")
        ));
    }
}
