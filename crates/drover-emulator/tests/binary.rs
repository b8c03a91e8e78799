//! The `drover-emulator` binary: `xapi --inventory FILE --listen 127.0.0.1:0` prints the address
//! it listens on and answers XAPI there; it refuses a non-loopback address and a missing password.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const INVENTORY: &str = r#"
cluster: {name: binary, target_version: "8.4"}
hosts:
  - {name: xs1, role: master, version: "8.2", memory_mib: 16384, cpus: 8}
vms:
  - {name: web, host: xs1, memory_mib: 1024, vcpus: 1}
"#;

struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn emulator(directory: &std::path::Path, listen: &str, password: Option<&str>) -> Command {
    let inventory = directory.join("inventory.yaml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_drover-emulator"));
    command
        .args(["xapi", "--inventory"])
        .arg(&inventory)
        .args([
            "--listen",
            listen,
            "--password-env",
            "DROVER_EMULATOR_TEST_PASSWORD",
        ])
        .env_remove("DROVER_EMULATOR_TEST_PASSWORD");
    if let Some(password) = password {
        command.env("DROVER_EMULATOR_TEST_PASSWORD", password);
    }
    command
}

#[test]
fn the_binary_serves_xapi_on_the_port_it_prints() {
    let directory = tempfile::tempdir().unwrap();
    let mut child = emulator(directory.path(), "127.0.0.1:0", Some("pw"))
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
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let answer: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{url}/jsonrpc"))
        .json(&serde_json::json!({"jsonrpc": "2.0", "method": "session.login_with_password", "params": ["root", "pw"], "id": 1}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        answer["result"].as_str().unwrap().starts_with("OpaqueRef:"),
        "{answer}"
    );
}

#[test]
fn the_binary_refuses_a_non_loopback_address_and_a_missing_password() {
    let directory = tempfile::tempdir().unwrap();
    let output = emulator(directory.path(), "0.0.0.0:0", Some("pw"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("is not a loopback address"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = emulator(directory.path(), "127.0.0.1:0", None)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("no password: set DROVER_EMULATOR_TEST_PASSWORD"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
