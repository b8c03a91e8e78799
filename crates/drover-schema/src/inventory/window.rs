//! Maintenance windows as text: `"Sat 22:00-06:00"`, `"Mon-Fri 01:00-05:00"`,
//! `"Sat,Sun 00:00-24:00"`, read into a core [`MaintenanceWindow`] and written back.
//!
//! A window is a day part (day names Mon … Sun in any case, `-` for a range, `,` for a list) and
//! a time part `HH:MM-HH:MM`. 24:00 is allowed as an end; an end at or before the start means the
//! window runs past midnight into the next day; a window that opens and closes at the same time
//! is refused. This module knows only this text form: not serde, not file positions, not time zones.

use drover_core::MaintenanceWindow;

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MINUTES_PER_HOUR: u16 = 60;
const MINUTES_PER_DAY: u16 = 24 * MINUTES_PER_HOUR;
/// Consecutive days are written as a range (`Mon-Fri`) from this many on, as a list below it.
const SHORTEST_WRITTEN_RANGE: usize = 3;

/// Reads a window; the error is a message about `text` without position or field path.
pub(crate) fn parse_window(text: &str) -> Result<MaintenanceWindow, String> {
    parse_window_parts(text).map_err(|message| format!("{text:?}: {message}"))
}

/// The text [`parse_window`] reads back to `window` (days sorted, runs of days as ranges).
pub fn maintenance_window_text(window: &MaintenanceWindow) -> String {
    format!(
        "{} {}-{}",
        days_text(&window.days),
        time_text(window.start_minute),
        time_text(window.end_minute)
    )
}

fn parse_window_parts(text: &str) -> Result<MaintenanceWindow, String> {
    let trimmed = text.trim();
    let Some((day_part, time_part)) = trimmed.rsplit_once(char::is_whitespace) else {
        return Err(
            "expected days then times, such as \"Mon-Fri 01:00-05:00\" or \"Sat 22:00-06:00\""
                .to_string(),
        );
    };
    let days = parse_days(day_part)?;
    let (start_minute, end_minute) = parse_time_range(time_part)?;
    Ok(MaintenanceWindow {
        days,
        start_minute,
        end_minute,
    })
}

/// `Mon-Fri`, `Sat,Sun`, `mon-wed, sat`: sorted day numbers without repeats, 0 = Monday.
fn parse_days(day_part: &str) -> Result<Vec<u8>, String> {
    let mut days = Vec::new();
    for item in day_part.split(',').map(str::trim) {
        match item.split_once('-') {
            Some((first, last)) => days.extend(parse_day_range(first.trim(), last.trim())?),
            None => days.push(parse_day(item)?),
        }
    }
    days.sort_unstable();
    days.dedup();
    Ok(days)
}

fn parse_day_range(first: &str, last: &str) -> Result<Vec<u8>, String> {
    let first_day = parse_day(first)?;
    let last_day = parse_day(last)?;
    if last_day < first_day {
        let wrapped: Vec<u8> = (0..=last_day).chain(first_day..=6).collect();
        return Err(format!(
            "day range \"{first}-{last}\" runs backwards (weeks run Mon to Sun; write {:?})",
            days_text(&wrapped)
        ));
    }
    Ok((first_day..=last_day).collect())
}

fn parse_day(name: &str) -> Result<u8, String> {
    let position = DAY_NAMES
        .iter()
        .position(|day| day.eq_ignore_ascii_case(name));
    match position {
        Some(day) => Ok(day as u8),
        None => Err(format!(
            "unknown day {name:?} (days are {})",
            DAY_NAMES.join(" ")
        )),
    }
}

/// `22:00-06:00` → (1320, 360). Refuses 24:00 as a start and a window of no length.
fn parse_time_range(time_part: &str) -> Result<(u16, u16), String> {
    let Some((start_text, end_text)) = time_part.split_once('-') else {
        return Err(format!(
            "expected a time range such as 22:00-06:00, got {time_part:?}"
        ));
    };
    let start_minute = parse_time(start_text)?;
    let end_minute = parse_time(end_text)?;
    if start_minute == MINUTES_PER_DAY {
        return Err("24:00 is allowed only as an end time".to_string());
    }
    if start_minute == end_minute {
        return Err(format!(
            "the window opens and closes at {start_text}, so it never lasts (00:00-24:00 is a whole day)"
        ));
    }
    Ok((start_minute, end_minute))
}

/// `HH:MM` (one or two hour digits, two minute digits) → minutes after midnight, 24:00 = 1440.
fn parse_time(text: &str) -> Result<u16, String> {
    let form_error = || format!("expected a time HH:MM, got {text:?}");
    let (hour_text, minute_text) = text.split_once(':').ok_or_else(form_error)?;
    let hour_form_ok = (1..=2).contains(&hour_text.len());
    let minute_form_ok = minute_text.len() == 2;
    let all_digits = hour_text
        .chars()
        .chain(minute_text.chars())
        .all(|character| character.is_ascii_digit());
    if !(hour_form_ok && minute_form_ok && all_digits) {
        return Err(form_error());
    }
    let hour: u16 = hour_text.parse().map_err(|_| form_error())?;
    let minute: u16 = minute_text.parse().map_err(|_| form_error())?;
    if hour > 24 {
        return Err(format!("hour {hour} is not 00..24"));
    }
    if minute >= MINUTES_PER_HOUR {
        return Err(format!("minute {minute} is not 00..59"));
    }
    if hour == 24 && minute != 0 {
        return Err(format!("{text} is past 24:00"));
    }
    Ok(hour * MINUTES_PER_HOUR + minute)
}

fn time_text(minute_of_day: u16) -> String {
    format!(
        "{:02}:{:02}",
        minute_of_day / MINUTES_PER_HOUR,
        minute_of_day % MINUTES_PER_HOUR
    )
}

/// Sorted days as runs: `Mon-Fri`, `Sat,Sun`, `Mon,Wed-Sun`.
fn days_text(days: &[u8]) -> String {
    let mut sorted: Vec<u8> = days.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut items: Vec<String> = Vec::new();
    for run in consecutive_runs(&sorted) {
        let first = day_name(run[0]);
        let last = day_name(run[run.len() - 1]);
        if run.len() >= SHORTEST_WRITTEN_RANGE {
            items.push(format!("{first}-{last}"));
        } else {
            items.extend(run.iter().map(|day| day_name(*day).to_string()));
        }
    }
    items.join(",")
}

fn consecutive_runs(sorted_days: &[u8]) -> Vec<&[u8]> {
    let mut runs = Vec::new();
    let mut run_start = 0;
    for index in 1..=sorted_days.len() {
        let run_ends =
            index == sorted_days.len() || sorted_days[index] != sorted_days[index - 1] + 1;
        if run_ends {
            runs.push(&sorted_days[run_start..index]);
            run_start = index;
        }
    }
    runs
}

fn day_name(day: u8) -> &'static str {
    DAY_NAMES.get(usize::from(day)).copied().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &[u8], start_minute: u16, end_minute: u16) -> MaintenanceWindow {
        MaintenanceWindow {
            days: days.to_vec(),
            start_minute,
            end_minute,
        }
    }

    #[test]
    fn reads_the_documented_forms() {
        assert_eq!(parse_window("Sat 22:00-06:00"), Ok(window(&[5], 1320, 360)));
        assert_eq!(
            parse_window("Mon-Fri 01:00-05:00"),
            Ok(window(&[0, 1, 2, 3, 4], 60, 300))
        );
        assert_eq!(
            parse_window("Sat,Sun 00:00-24:00"),
            Ok(window(&[5, 6], 0, 1440))
        );
    }

    #[test]
    fn days_are_case_insensitive_sorted_and_unique() {
        assert_eq!(
            parse_window("sun, MON-wed,tue 9:30-10:00"),
            Ok(window(&[0, 1, 2, 6], 570, 600))
        );
    }

    #[test]
    fn refuses_bad_windows() {
        let cases = [
            ("Sat 25:00-06:00", "\"Sat 25:00-06:00\": hour 25 is not 00..24"),
            ("Sat 22:60-06:00", "\"Sat 22:60-06:00\": minute 60 is not 00..59"),
            ("Sat 24:30-06:00", "\"Sat 24:30-06:00\": 24:30 is past 24:00"),
            ("Sat 24:00-06:00", "\"Sat 24:00-06:00\": 24:00 is allowed only as an end time"),
            ("Sat 2200-0600", "\"Sat 2200-0600\": expected a time HH:MM, got \"2200\""),
            ("Sat 22:00", "\"Sat 22:00\": expected a time range such as 22:00-06:00, got \"22:00\""),
            ("Sta 22:00-06:00", "\"Sta 22:00-06:00\": unknown day \"Sta\" (days are Mon Tue Wed Thu Fri Sat Sun)"),
            ("Fri-Mon 22:00-06:00", "\"Fri-Mon 22:00-06:00\": day range \"Fri-Mon\" runs backwards (weeks run Mon to Sun; write \"Mon,Fri-Sun\")"),
            ("22:00-06:00", "\"22:00-06:00\": expected days then times, such as \"Mon-Fri 01:00-05:00\" or \"Sat 22:00-06:00\""),
            ("Sat 05:00-05:00", "\"Sat 05:00-05:00\": the window opens and closes at 05:00, so it never lasts (00:00-24:00 is a whole day)"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_window(text), Err(expected.to_string()), "{text}");
        }
    }

    #[test]
    fn text_reads_back_to_the_same_window() {
        let windows = [
            window(&[5], 1320, 360),
            window(&[0, 1, 2, 3, 4], 60, 300),
            window(&[5, 6], 0, 1440),
            window(&[0, 2, 3, 4, 6], 0, 1),
            window(&[0, 1, 2, 3, 4, 5, 6], 1439, 1440),
        ];
        for original in windows {
            let text = maintenance_window_text(&original);
            assert_eq!(parse_window(&text), Ok(original), "{text}");
        }
        assert_eq!(
            maintenance_window_text(&window(&[0, 2, 3, 4, 6], 0, 1440)),
            "Mon,Wed-Fri,Sun 00:00-24:00"
        );
    }
}
