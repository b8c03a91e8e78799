//! The `drover-emulator ovirt` subcommand: it prints the address it listens on and answers the
//! engine's SSO there; it refuses a non-loopback address.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const INVENTORY: &str = r#"
cluster: {name: binary, target_version: "4.5.6"}
hosts:
  - {name: h1, version: "4.5.4", memory_mib: 16384, cpus: 8}
vms:
  - {name: web, host: h1, memory_mib: 1024, vcpus: 1}
"#;

struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn emulator(directory: &std::path::Path, listen: &str) -> Command {
    let inventory = directory.join("inventory.yaml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_drover-emulator"));
    command
        .args(["ovirt", "--inventory"])
        .arg(&inventory)
        .args([
            "--listen",
            listen,
            "--password-env",
            "DROVER_EMULATOR_OVIRT_TEST_PASSWORD",
        ])
        .env("DROVER_EMULATOR_OVIRT_TEST_PASSWORD", "pw");
    command
}

#[test]
fn the_binary_serves_the_engine_on_the_port_it_prints() {
    let directory = tempfile::tempdir().unwrap();
    let mut child = emulator(directory.path(), "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Emulator(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();
    let answer: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{url}/ovirt-engine/sso/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("scope", "ovirt-app-api"),
            ("username", "admin@internal"),
            ("password", "pw"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(answer["token_type"], "bearer", "{answer}");
    assert!(answer["access_token"]
        .as_str()
        .is_some_and(|token| !token.is_empty()));
}

#[test]
fn the_binary_refuses_a_non_loopback_address() {
    let directory = tempfile::tempdir().unwrap();
    let output = emulator(directory.path(), "0.0.0.0:0").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("is not a loopback address"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
