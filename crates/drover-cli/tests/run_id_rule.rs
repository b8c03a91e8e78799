//! `drover run --run-id` follows the same rule as the API's `run_id` (`src/run_id.rs`): an id
//! outside it is bad input (exit 2) and creates nothing.

use std::process::Command;

fn drover(state: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("--state")
        .arg(state)
        .args(args)
        .env_remove("DROVER_STATE")
        .env("NO_COLOR", "1")
        .output()
        .expect("run drover")
}

#[test]
fn a_run_id_outside_the_rule_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("pool.yaml");
    std::fs::write(
        &inventory,
        r#"
cluster: {name: pool, target_version: "2.0"}
hosts:
  - {name: h1, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: h2, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: a, host: h1, memory_mib: 4096, vcpus: 2}
"#,
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let inventory = inventory.to_str().unwrap();
    for bad in ["has space", "a/b", "bell\u{7}"] {
        let output = drover(&state, &["run", "-i", inventory, "--run-id", bad]);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--run-id"), "{bad:?}: {stderr}");
    }
    let output = drover(&state, &["history", "-o", "json"]);
    let history = String::from_utf8_lossy(&output.stdout);
    assert!(!history.contains("has space"), "{history}");
    let output = drover(&state, &["run", "-i", inventory, "--run-id", "pool.ok_1"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
