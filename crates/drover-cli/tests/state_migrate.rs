//! `drover state migrate`: every run and journal copied into an empty store reads back the same
//! (history, reports), an unfinished run goes on from the copy, and a store that already holds
//! runs is never overwritten (exit 2).

mod cli_common;

use cli_common::*;

const POOL: &str = r#"
cluster: {name: pool-m, target_version: "2.0"}
policy: {max_unavailable: 1, approval: manual}
driver: {kind: simulator, time_scale: 0, seed: 5}
hosts:
  - {name: h1, role: master, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: h2, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: h3, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: v1, host: h2, memory_mib: 4096, vcpus: 2}
  - {name: v2, host: h3, memory_mib: 4096, vcpus: 2}
"#;

/// `drover --state STATE ARGS`.
fn on_store(state: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("--state")
        .arg(state)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DROVER_STATE")
        .output()
        .unwrap()
}

#[test]
fn a_migrated_store_reads_the_same_and_its_unfinished_run_goes_on() {
    let workspace = Workspace::new();
    std::fs::write(workspace.path("pool.yaml"), POOL).unwrap();
    let inventory = workspace.path("pool.yaml");
    let inventory = inventory.to_str().unwrap();
    // One finished run, then one that waits for approval.
    let first = workspace.drover(&["run", "-i", inventory, "--run-id", "first", "-o", "json"]);
    assert_eq!(first.status.code(), Some(5), "{}", stderr(&first));
    let approved = workspace.drover(&["approve", "first", "-o", "json"]);
    assert_eq!(approved.status.code(), Some(0), "{}", stderr(&approved));
    let second = workspace.drover(&["run", "-i", inventory, "--run-id", "second", "-o", "json"]);
    assert_eq!(second.status.code(), Some(5), "{}", stderr(&second));

    let target = workspace.path("copy.db");
    let target_text = target.to_str().unwrap();
    let source = workspace.state();
    let source_text = source.to_str().unwrap();
    let migrate = workspace.drover(&[
        "state",
        "migrate",
        "--from",
        source_text,
        "--to",
        target_text,
    ]);
    assert_eq!(migrate.status.code(), Some(0), "{}", stderr(&migrate));
    assert!(
        stdout(&migrate).contains("copied 2 run(s)"),
        "{}",
        stdout(&migrate)
    );
    for args in [
        vec!["history", "-o", "json"],
        vec!["report", "first", "-o", "json"],
        vec!["report", "second", "-o", "json"],
        vec!["timeline", "first", "-o", "json"],
    ] {
        let original = workspace.json(&args);
        let output = on_store(target_text, &args);
        let copied: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?} on the copy: {e}: {}", stderr(&output)));
        assert_eq!(original, copied, "{args:?} differs after the migration");
    }
    // The copy is a store like any other: the waiting run is approved there and completes.
    let approve = on_store(target_text, &["approve", "second", "-o", "json"]);
    assert_eq!(approve.status.code(), Some(0), "{}", stderr(&approve));

    // Never over a store that holds runs.
    let again = workspace.drover(&[
        "state",
        "migrate",
        "--from",
        source_text,
        "--to",
        target_text,
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("never overwrites"),
        "{}",
        stderr(&again)
    );
}
