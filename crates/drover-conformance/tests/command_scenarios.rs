//! The run-level scenarios on the command driver and the fake platform of
//! `crates/drover-command/examples/fake-platform/` (shell scripts keeping hosts and VMs in
//! files). The fake platform has its own world (three hosts xs01–xs03 at 8.0.0, one VM each),
//! which stands in for the scenarios' world; its faults are staged by a wrapper this fixture puts
//! in front of the example's `migrate` and `reboot` scripts (the example itself stays a plain
//! example): a refused migration exits non-zero once, a hung one sleeps past the staged
//! inventory's migration timeout once, and a host that never returns is marked `down` after its
//! reboot. The fixture reads the platform's files to observe it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use drover_conformance::{Scenario, Stage, Staged};
use drover_core::Version;
use drover_sim::driver::{
    HistoryEvent, HistoryEventKind, HostSnapshot, PlatformHostState, VmSnapshot, WorldSnapshot,
};

const EXAMPLE_DIRECTORY: &str = "crates/drover-command/examples/fake-platform";
const EXAMPLE_STATE: &str = "/tmp/drover-fake-platform";

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../drover-command/examples/fake-platform")
}

/// `faults.sh FAULTS SCRIPTS STEP ARGS…`: the scenario's fault, then the example's script.
const FAULTS_SCRIPT: &str = r#"#!/bin/sh
set -eu
faults=$1 scripts=$2 step=$3
shift 3
case "$step" in
migrate) # STATE VM FROM TO
    if [ -e "$faults/refuse-$2" ]; then
        rm "$faults/refuse-$2"
        echo "fake-platform: the migration of $2 to $4 is refused" >&2
        exit 1
    fi
    if [ -e "$faults/hang-$2" ]; then
        rm "$faults/hang-$2"
        exec sleep 30
    fi
    exec sh "$scripts/migrate.sh" "$@"
    ;;
reboot) # STATE HOST BOOT_ID_BEFORE
    sh "$scripts/reboot.sh" "$@"
    if [ -e "$faults/never-returns-$2" ]; then
        touch "$1/hosts/$2/down"
    fi
    ;;
esac
"#;

struct FakePlatform;

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .map_err(|error| format!("{}: {error}", path.display()))
}

fn entries(directory: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(|error| error.to_string())? {
        let entry = entry.map_err(|error| error.to_string())?;
        found.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    found.sort();
    Ok(found)
}

/// The platform as its files say. A host marked `down` is reported lost (the history the
/// invariants read), as the simulator reports a host that never came back.
fn observe(state: &Path) -> Result<WorldSnapshot, String> {
    let mut hosts = Vec::new();
    let mut history = Vec::new();
    for (name, directory) in entries(&state.join("hosts"))? {
        let down = directory.join("down").exists();
        if down {
            history.push(HistoryEvent {
                at_ms: 0,
                kind: HistoryEventKind::HostLost { host: name.clone() },
            });
        }
        hosts.push(HostSnapshot {
            version: read(&directory.join("version"))?
                .parse::<Version>()
                .map_err(|error| error.to_string())?,
            boot_id: read(&directory.join("boot_id"))?,
            state: match (down, read(&directory.join("maintenance"))?.as_str()) {
                (true, _) => PlatformHostState::Down,
                (false, "true") => PlatformHostState::Maintenance,
                _ => PlatformHostState::Up,
            },
            cordoned: read(&directory.join("cordoned"))? == "true",
            name,
        });
    }
    let mut vms = Vec::new();
    for (name, directory) in entries(&state.join("vms"))? {
        vms.push(VmSnapshot {
            host: read(&directory.join("host"))?,
            running: read(&directory.join("state"))? == "running",
            name,
        });
    }
    Ok(WorldSnapshot {
        now_ms: 0,
        hosts,
        vms,
        operations: Vec::new(),
        history,
        compatibility_level: read(&state.join("compatibility_level")).ok(),
        // The fake platform has no blocking settings.
        settings: Vec::new(),
    })
}

#[async_trait::async_trait]
impl Stage for FakePlatform {
    fn platform(&self) -> String {
        "the command driver on the fake platform (its own world; faults by a wrapper script)".into()
    }

    fn opt_out(&self, _scenario: Scenario) -> Option<String> {
        None
    }

    async fn stage(
        &self,
        scenario: Scenario,
        _world: &str,
        directory: &Path,
    ) -> Result<Staged, String> {
        let state = directory.join("platform");
        let status = std::process::Command::new("sh")
            .arg(scripts().join("init.sh"))
            .arg(&state)
            .status()
            .map_err(|error| error.to_string())?;
        if !status.success() {
            return Err(format!("init.sh: {status}"));
        }
        let faults = directory.join("faults");
        std::fs::create_dir_all(&faults).map_err(|error| error.to_string())?;
        // The scenarios' VM `a` and host `h2` are the fake platform's web-01 and xs02.
        let fault_file = match scenario {
            Scenario::MigrationRefusedRetriedElsewhere => Some("refuse-web-01"),
            Scenario::MigrationHangsCancelledAtTimeout => Some("hang-web-01"),
            Scenario::HostNeverReturnsAbortRestores => Some("never-returns-xs02"),
            Scenario::FullRollingUpgrade | Scenario::KilledMidWaveResumes => None,
        };
        if let Some(file) = fault_file {
            std::fs::write(faults.join(file), "").map_err(|error| error.to_string())?;
        }
        let wrapper = directory.join("faults.sh");
        std::fs::write(&wrapper, FAULTS_SCRIPT).map_err(|error| error.to_string())?;
        let example = std::fs::read_to_string(scripts().join("inventory.yaml"))
            .map_err(|error| error.to_string())?;
        let scripts_text = scripts().display().to_string();
        let inventory_text = example
            .replace(
                &format!("[sh, {EXAMPLE_DIRECTORY}/migrate.sh,"),
                &format!(
                    "[sh, {}, {}, {EXAMPLE_DIRECTORY}, migrate,",
                    wrapper.display(),
                    faults.display()
                ),
            )
            .replace(
                &format!("[sh, {EXAMPLE_DIRECTORY}/reboot.sh,"),
                &format!(
                    "[sh, {}, {}, {EXAMPLE_DIRECTORY}, reboot,",
                    wrapper.display(),
                    faults.display()
                ),
            )
            .replace(EXAMPLE_DIRECTORY, &scripts_text)
            .replace(EXAMPLE_STATE, &state.display().to_string())
            // A hung migration and a lost host are given up on within seconds.
            .replace("migration_timeout_secs: 60", "migration_timeout_secs: 3")
            .replace("reboot_timeout_secs: 60", "reboot_timeout_secs: 5");
        if !inventory_text.contains("faults.sh") {
            return Err("the example's migrate and reboot commands were not found".into());
        }
        Ok(Staged {
            inventory_text,
            observe: Box::new(move |_clock| observe(&state)),
            keep_alive: Box::new(()),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_driver_on_the_fake_platform_meets_every_scenario() {
    let report = drover_conformance::run_scenarios(Arc::new(FakePlatform)).await;
    assert_eq!(
        report.passed(),
        drover_conformance::selected_scenarios(),
        "{report}"
    );
}
