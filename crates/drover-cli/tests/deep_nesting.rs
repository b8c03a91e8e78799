//! Issue 11.7 through the real binary: an inventory or a `drover serve` config nested 100,000
//! levels deep (a 200 KB file) is refused as bad input, with its place named, in linear time —
//! serde_yaml_ng alone took over a minute of CPU on it. The time limit is generous on purpose: it
//! catches quadratic time, not a slow machine.

use std::process::Command;
use std::time::{Duration, Instant};

const DEPTH: usize = 100_000;
const GENEROUS: Duration = Duration::from_secs(20);

fn deeply_nested(prefix: &str) -> String {
    format!(
        "{prefix}x_nested: {}{}\n",
        "[".repeat(DEPTH),
        "]".repeat(DEPTH)
    )
}

#[test]
fn a_deeply_nested_inventory_is_refused_quickly_with_its_place() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("deep.yaml");
    std::fs::write(
        &path,
        deeply_nested("cluster: {name: c, target_version: \"2.0\"}\n"),
    )
    .unwrap();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["plan", "-i"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(started.elapsed() < GENEROUS, "took {:?}", started.elapsed());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("deep.yaml:2:") && stderr.contains("nest deeper than 64 levels"),
        "{stderr}"
    );
}

#[test]
fn a_deeply_nested_serve_config_is_refused_quickly_with_its_place() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("serve.yaml");
    std::fs::write(&path, deeply_nested("")).unwrap();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(started.elapsed() < GENEROUS, "took {:?}", started.elapsed());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("serve.yaml:1:") && stderr.contains("nest deeper than 64 levels"),
        "{stderr}"
    );
}
