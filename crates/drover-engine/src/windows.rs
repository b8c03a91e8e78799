//! Maintenance windows against the calendar: converts platform time to local weekday and minute
//! in the policy's time zone (jiff) and asks the core's pure window rule; finds when the next
//! window opens and words it for people ("Sun 03:00 (in 4h51m)"). The core learns only open or
//! closed and the next opening, as data; this module never changes a run.

use drover_core::execution::Execution;
use drover_core::MaintenanceWindow;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Whether any window is open at `now_ms`; no windows means always open. An unknown time zone
/// (refused when the inventory was read) falls back to UTC rather than blocking forever.
pub fn is_open(windows: &[MaintenanceWindow], time_zone: &str, now_ms: u64) -> bool {
    if windows.is_empty() {
        return true;
    }
    is_open_in(windows, &zone_named(time_zone), now_ms)
}

fn zone_named(time_zone: &str) -> TimeZone {
    TimeZone::get(time_zone).unwrap_or(TimeZone::UTC)
}

fn is_open_in(windows: &[MaintenanceWindow], zone: &TimeZone, now_ms: u64) -> bool {
    if windows.is_empty() {
        return true;
    }
    let Ok(timestamp) = Timestamp::from_millisecond(now_ms as i64) else {
        return true;
    };
    let local = timestamp.to_zoned(zone.clone());
    let weekday = local.weekday().to_monday_zero_offset() as u8;
    let minute = local.hour() as u16 * 60 + local.minute() as u16;
    windows.iter().any(|w| w.is_open_at(weekday, minute))
}

/// How far ahead [`next_opening`] looks: a week and a day covers every weekly window, with
/// room for a daylight-saving shift.
const LOOKAHEAD_MINUTES: u64 = 8 * 24 * 60;
const MINUTE_MS: u64 = 60_000;

/// When a window next opens after `now_ms` (the start of the first local minute at which one is
/// open), or `None` when none opens within a week — then none ever does. With no windows, or a
/// window open now, that is `now_ms`.
pub fn next_opening(windows: &[MaintenanceWindow], time_zone: &str, now_ms: u64) -> Option<u64> {
    if is_open(windows, time_zone, now_ms) {
        return Some(now_ms);
    }
    let zone = zone_named(time_zone);
    let first_minute = now_ms.div_ceil(MINUTE_MS) * MINUTE_MS;
    (0..LOOKAHEAD_MINUTES)
        .map(|minute| first_minute + minute * MINUTE_MS)
        .find(|at| is_open_in(windows, &zone, *at))
}

/// Whether no window of a non-empty list ever opens (a run with them could never start).
pub fn never_open(windows: &[MaintenanceWindow], time_zone: &str, now_ms: u64) -> bool {
    !windows.is_empty() && next_opening(windows, time_zone, now_ms).is_none()
}

/// `at_ms` as the policy's local weekday and time, and how long until then from `now_ms`:
/// "Sun 03:00 (in 4h51m)".
pub fn describe_opening(time_zone: &str, at_ms: u64, now_ms: u64) -> String {
    let zone = zone_named(time_zone);
    let local = Timestamp::from_millisecond(at_ms as i64)
        .map(|t| t.to_zoned(zone).strftime("%a %H:%M").to_string())
        .unwrap_or_else(|_| format!("{at_ms} ms"));
    format!(
        "{local} (in {})",
        duration_text(at_ms.saturating_sub(now_ms))
    )
}

/// What a run waits for when its next wave waits for a window, for status displays and the
/// API: "Sun 03:00 (in 4h51m)", or a sentence when no window ever opens; `None` when the run
/// does not wait for a window.
pub fn waiting_for_window(execution: &Execution, now_ms: u64) -> Option<String> {
    let told = execution.status().waiting_for_window?;
    let policy = &execution.cluster().policy;
    // Before the engine first told the core, the calendar answers.
    let next_opening = told.or_else(|| next_opening(&policy.windows, &policy.time_zone, now_ms));
    Some(match next_opening {
        Some(at_ms) => describe_opening(&policy.time_zone, at_ms, now_ms),
        None => "none: no window of the policy ever opens".to_string(),
    })
}

/// "4h51m", "2d3h", "12m" (minutes rounded up: "in 0m" would read as now).
fn duration_text(ms: u64) -> String {
    let minutes = ms.div_ceil(MINUTE_MS);
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes}m"),
        (0, _) => format!("{hours}h{minutes:02}m"),
        _ => format!("{days}d{hours}h"),
    }
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

    #[test]
    fn the_next_sunday_window_is_found_and_worded_from_a_saturday_evening() {
        let window = MaintenanceWindow {
            days: vec![6],
            start_minute: 3 * 60,
            end_minute: 4 * 60,
        };
        let at = |text: &str| text.parse::<Timestamp>().unwrap().as_millisecond() as u64;
        // Saturday 2026-11-21 22:09 UTC: the window opens Sunday 03:00, in 4h51m.
        let now = at("2026-11-21T22:09:00Z");
        let windows = std::slice::from_ref(&window);
        let opening = next_opening(windows, "UTC", now).unwrap();
        assert_eq!(opening, at("2026-11-22T03:00:00Z"));
        assert_eq!(
            describe_opening("UTC", opening, now),
            "Sun 03:00 (in 4h51m)"
        );
        assert_eq!(next_opening(windows, "UTC", opening), Some(opening));
        assert!(!never_open(windows, "UTC", now));
        let never = MaintenanceWindow {
            days: vec![],
            start_minute: 60,
            end_minute: 120,
        };
        assert!(never_open(std::slice::from_ref(&never), "UTC", now));
        assert!(!never_open(&[], "UTC", now));
    }
}
