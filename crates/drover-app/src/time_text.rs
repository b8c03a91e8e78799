//! How times read in documents and tables: a UTC date (`2026-12-06T01:02:03Z`), a duration
//! (`1h02m03s`), and an offset from a run's start (`+1h02m03s`, for simulated runs whose clock
//! is not the wall clock).
//!
//! Pure text from numbers: this module must not read a clock or know runs.

/// A UTC date rounded to the second; the milliseconds themselves when out of range.
pub fn timestamp(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64).map_or_else(
        |_| ms.to_string(),
        |t| {
            t.round(jiff::Unit::Second)
                .map_or_else(|_| t.to_string(), |t| t.to_string())
        },
    )
}

/// `45s`, `2m05s`, `1h02m03s`.
pub fn format_duration_secs(seconds: u64) -> String {
    let (hours, minutes, secs) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    match (hours, minutes) {
        (0, 0) => format!("{secs}s"),
        (0, _) => format!("{minutes}m{secs:02}s"),
        _ => format!("{hours}h{minutes:02}m{secs:02}s"),
    }
}

/// `+1h02m` style: how long after the run's start.
pub fn offset(seconds: u64) -> String {
    format!("+{}", format_duration_secs(seconds))
}
