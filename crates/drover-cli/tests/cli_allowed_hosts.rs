//! `allowed_hosts` through the binary: a bad list is refused with exit 2 and `file:line:col`,
//! and a pinned VM that can never leave its host makes `drover plan` exit 3 naming it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn testdata(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(file)
}

fn plan(file: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["plan", "-i"])
        .arg(testdata(file))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn bad_allowed_hosts_exit_two_naming_file_line_column_and_field() {
    let cases = [
        (
            "bad/unknown-allowed-host.yaml",
            "unknown-allowed-host.yaml:6:66: vms[0].allowed_hosts[1]: unknown host \"xs09\"",
        ),
        (
            "bad/empty-allowed-hosts.yaml",
            "empty-allowed-hosts.yaml:6:59: vms[0].allowed_hosts: must name at least one host",
        ),
        (
            "bad/allowed-hosts-without-own-host.yaml",
            "allowed-hosts-without-own-host.yaml:6:59: vms[0].allowed_hosts: must include the VM's own host \"xs01\"",
        ),
    ];
    for (file, expected) in cases {
        let output = plan(file);
        let message = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{file}: {message}");
        assert!(
            message.contains(expected),
            "{file}: expected {expected:?} in {message:?}"
        );
        assert!(output.stdout.is_empty(), "{file}: bad input prints no data");
    }
}

#[test]
fn a_vm_that_can_never_leave_its_host_fails_the_plan_naming_it() {
    let output = plan("plans/17-impossible-constraint.yaml");
    assert_eq!(output.status.code(), Some(3));
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("host-constraints"), "{text}");
    assert!(text.contains("appliance on n1"), "{text}");
}
