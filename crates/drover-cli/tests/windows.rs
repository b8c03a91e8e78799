//! Maintenance windows through the real binary (issue 19, item 1): no host starts outside a
//! window, the run sleeps until one opens (virtual time here), and `drover status` says what it
//! waits for ("waiting for window Sun 03:00 (in 1d20h)") while nothing has started.

use std::process::Stdio;
use std::time::{Duration, Instant};

use jiff::{Timestamp, ToSpan};

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

mod cli_common;

use cli_common::{stderr, Workspace};

/// A small pool whose only window is one hour, two days from now (UTC), at 03:00.
fn windowed_inventory(workspace: &Workspace, time_scale: u32) -> (String, Timestamp) {
    let in_two_days = Timestamp::now()
        .checked_add(48.hours())
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC);
    let day = DAY_NAMES[in_two_days.weekday().to_monday_zero_offset() as usize];
    let opening = in_two_days
        .date()
        .at(3, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    let text = format!(
        r#"cluster: {{name: windowed, target_version: "2.0"}}
policy: {{max_unavailable: 1, windows: ["{day} 03:00-04:00"]}}
hosts:
  - {{name: h1, version: "1.0", memory_mib: 65536, cpus: 16}}
  - {{name: h2, version: "1.0", memory_mib: 65536, cpus: 16}}
  - {{name: h3, version: "1.0", memory_mib: 65536, cpus: 16}}
vms:
  - {{name: app-1, host: h1, memory_mib: 4096, vcpus: 2}}
  - {{name: app-2, host: h2, memory_mib: 4096, vcpus: 2}}
driver: {{kind: simulator, time_scale: {time_scale}}}
"#
    );
    let path = workspace.path("windowed.yaml");
    std::fs::write(&path, text).unwrap();
    (path.to_str().unwrap().to_string(), opening)
}

#[test]
fn a_run_outside_its_window_waits_for_it_then_completes() {
    let workspace = Workspace::new();
    let (inventory, opening) = windowed_inventory(&workspace, 0);
    let started = Timestamp::now();
    let output = workspace.drover(&["run", "-i", &inventory, "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["phase"], "completed", "{report}");
    // Nothing started before the window: the run lasted at least until it opened.
    let until_opening_secs = (opening.as_second() - started.as_second()) as u64;
    let duration_secs = report["duration_secs"].as_u64().unwrap();
    assert!(
        duration_secs >= until_opening_secs,
        "the run took {duration_secs} s but the window opened {until_opening_secs} s after its start"
    );
}

#[test]
fn status_says_which_window_the_run_waits_for_while_no_host_has_started() {
    let workspace = Workspace::new();
    let (inventory, _) = windowed_inventory(&workspace, 1);
    let mut run = workspace
        .command(&["run", "-i", &inventory])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    let waiting = loop {
        let output = workspace.drover(&["status", "-o", "json"]);
        if let Ok(status) = serde_json::from_slice::<serde_json::Value>(&output.stdout) {
            if let Some(text) = status["waiting_for_window"].as_str() {
                break (text.to_string(), status);
            }
            last = status.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "status never said it waits for a window: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let table = workspace.drover(&["status"]);
    let _ = run.kill();
    let _ = run.wait();
    let (text, status) = waiting;
    assert!(
        text.contains(" 03:00 (in 1d") || text.contains(" 03:00 (in 2d"),
        "{text}"
    );
    let hosts = status["hosts"].as_array().unwrap();
    assert!(
        // Not started: `waiting` in a wave, or `planned` for a later one.
        hosts
            .iter()
            .all(|h| h["step"] == "waiting" || h["step"] == "planned"),
        "a host started outside the window: {status}"
    );
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(&format!("waiting for window {text}")),
        "{table}"
    );
}
