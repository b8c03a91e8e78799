//! Maintenance windows through the API (issue 19, item 1): a run started by `drover serve`
//! outside its window starts no host, and its `RunView` says what it waits for in
//! `waiting_for_window` ("Sun 03:00 (in 1d20h)"), which the dashboard shows.

mod serve_common;

use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use serve_common::*;

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A pool on wall-clock time whose only window is one hour at 03:00 UTC, two days from now.
fn windowed_pool() -> String {
    let in_two_days = Timestamp::now()
        .checked_add(48.hours())
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC);
    let day = DAY_NAMES[in_two_days.weekday().to_monday_zero_offset() as usize];
    format!(
        r#"
cluster: {{name: windowed, target_version: "2.0"}}
policy: {{max_unavailable: 1, windows: ["{day} 03:00-04:00"]}}
driver: {{kind: simulator, time_scale: 1}}
hosts:
  - {{name: w1, version: "1.0", memory_mib: 65536, cpus: 16}}
  - {{name: w2, version: "1.0", memory_mib: 65536, cpus: 16}}
vms:
  - {{name: v, host: w1, memory_mib: 4096, vcpus: 2}}
"#
    )
}

#[test]
fn the_run_view_says_which_window_the_run_waits_for() {
    let workspace = Workspace::new(&[("windowed.yaml", &windowed_pool())], "");
    let server = workspace.serve(&[]);
    let (status, created) = post(
        &server,
        "/api/v1/clusters/windowed/runs",
        Some(r#"{"run_id": "w"}"#),
    );
    assert_eq!(status, 202, "{created}");
    let view = wait_for_run(&server, "w", None, Duration::from_secs(30), |view| {
        view["waiting_for_window"].is_string()
    });
    let text = view["waiting_for_window"].as_str().unwrap();
    assert!(
        text.contains(" 03:00 (in 1d") || text.contains(" 03:00 (in 2d"),
        "{text}"
    );
    assert_eq!(view["window_open"], false);
    let hosts = view["hosts"].as_array().unwrap();
    assert!(
        hosts.iter().all(|h| h["step"] == "waiting"),
        "a host started outside the window: {view}"
    );
}
