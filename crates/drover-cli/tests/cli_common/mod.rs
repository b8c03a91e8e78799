//! Shared by the CLI tests that run the real `drover` binary: a temporary directory with a state
//! file, the command line pointed at it (no colour, no `DROVER_STATE` from the environment), and
//! the repository's `testdata/`.
//!
//! Test scaffolding only; it must not hide the behaviour under test.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A file under the repository's `testdata/`.
pub fn testdata_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(relative)
}

/// A file under the repository's `testdata/`, as an argument.
pub fn testdata(relative: &str) -> String {
    testdata_path(relative).to_str().unwrap().to_string()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A temporary directory whose `state.db` every command of this workspace uses.
pub struct Workspace {
    pub directory: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Workspace {
            directory: tempfile::tempdir().unwrap(),
        }
    }

    pub fn state(&self) -> PathBuf {
        self.path("state.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_drover"));
        command
            .arg("--state")
            .arg(self.state())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("DROVER_STATE");
        command
    }

    pub fn drover(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `drover ARGS` and reads its stdout as JSON, failing with its stderr otherwise.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let output = self.drover(args);
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stderr(&output)))
    }
}

/// The command driver's fake platform (shell scripts under
/// `crates/drover-command/examples/fake-platform` that keep each host's state in files): sets
/// `platform` up afresh (every host on the old version, every VM where it started) and returns
/// the example inventory rewritten to drive it.
pub fn fake_platform(platform: &std::path::Path) -> String {
    let examples = std::fs::canonicalize(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../drover-command/examples/fake-platform"),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(platform);
    let init = Command::new("sh")
        .arg(examples.join("init.sh"))
        .arg(platform)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));
    std::fs::read_to_string(examples.join("inventory.yaml"))
        .unwrap()
        .replace(
            "crates/drover-command/examples/fake-platform",
            examples.to_str().unwrap(),
        )
        .replace("/tmp/drover-fake-platform", platform.to_str().unwrap())
}
