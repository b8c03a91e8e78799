//! The run-level scenarios: whole rolling upgrades driven through the driver under test, each
//! staged with one fault, and each checked with the DST invariants (drover-dst's `Checker`) on
//! the platform's own state after every engine event and at the end. The platform is described
//! once, as a world ([`world`]): an inventory whose `kind: simulator` section carries the
//! scenario's fault. A driver's fixture ([`Stage`]) turns that world into its own platform — the
//! simulator runs it, the XAPI emulator serves it, a fake platform may replace it with its own —
//! or opts out of the scenario with a reason.
//!
//! Plain data and the fixture's contract: this module must not know how a run is driven
//! (`scenario_run` does that) or any particular driver.

use std::any::Any;
use std::path::Path;

use drover_driver::Clock;
use drover_sim::driver::WorldSnapshot;

/// One whole-run situation every driver meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// No fault: every host upgraded and rebooted, every VM back in service.
    FullRollingUpgrade,
    /// The first migration of VM `a` is refused: it goes to another host, the run completes.
    MigrationRefusedRetriedElsewhere,
    /// The first migration of VM `a` never ends: it is given up at its timeout (the driver
    /// cancels it on the platform) and tried again; the run completes.
    MigrationHangsCancelledAtTimeout,
    /// Host `h2` never comes back from its reboot: the run halts, the operator aborts, and every
    /// other host Drover touched is restored.
    HostNeverReturnsAbortRestores,
    /// The process driving the run dies while a migration is in flight (the engine is dropped
    /// mid-wave, nothing saved); a new one resumes the run through drover-app's launch and
    /// completes it.
    KilledMidWaveResumes,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::FullRollingUpgrade,
        Scenario::MigrationRefusedRetriedElsewhere,
        Scenario::MigrationHangsCancelledAtTimeout,
        Scenario::HostNeverReturnsAbortRestores,
        Scenario::KilledMidWaveResumes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::FullRollingUpgrade => "full-rolling-upgrade",
            Scenario::MigrationRefusedRetriedElsewhere => "migration-refused-retried-elsewhere",
            Scenario::MigrationHangsCancelledAtTimeout => "migration-hangs-cancelled-at-timeout",
            Scenario::HostNeverReturnsAbortRestores => "host-never-returns-abort-restores",
            Scenario::KilledMidWaveResumes => "killed-mid-wave-resumes",
        }
    }

    /// The `faults:` entries of the world's simulator section that stage this scenario.
    pub fn faults(self) -> &'static str {
        match self {
            Scenario::FullRollingUpgrade | Scenario::KilledMidWaveResumes => "[]",
            Scenario::MigrationRefusedRetriedElsewhere => {
                "[{fault: migration-refused, vm: a, times: 1}]"
            }
            Scenario::MigrationHangsCancelledAtTimeout => {
                "[{fault: migration-hangs, vm: a, times: 1}]"
            }
            Scenario::HostNeverReturnsAbortRestores => "[{fault: host-never-returns, host: h2}]",
        }
    }
}

/// The environment variable that narrows a run of the scenarios to some of them: names
/// separated by commas (`migration-refused-retried-elsewhere,migration-hangs-cancelled-at-timeout`).
/// For CI on real platforms, where one scenario takes minutes and the whole-run cases the
/// real-binary tests already drive need not run twice; unset or empty means every scenario.
pub const SCENARIOS_VARIABLE: &str = "DROVER_SCENARIOS";

/// The scenarios a run covers: those named by [`SCENARIOS_VARIABLE`], in [`Scenario::ALL`]'s
/// order, else all. A name that is not a scenario panics naming every valid one, so a typo in a
/// CI script never turns into a run of nothing.
pub fn selected_scenarios() -> Vec<Scenario> {
    let wanted = std::env::var(SCENARIOS_VARIABLE).unwrap_or_default();
    selected_from(&wanted).unwrap_or_else(|problem| panic!("{problem}"))
}

fn selected_from(wanted: &str) -> Result<Vec<Scenario>, String> {
    let names: Vec<&str> = wanted
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(Scenario::ALL.to_vec());
    }
    if let Some(unknown) = names.iter().find(|name| {
        Scenario::ALL
            .iter()
            .all(|scenario| scenario.name() != **name)
    }) {
        let valid: Vec<&str> = Scenario::ALL
            .iter()
            .map(|scenario| scenario.name())
            .collect();
        return Err(format!(
            "{SCENARIOS_VARIABLE}: `{unknown}` is not a scenario; expected names among {}",
            valid.join(", ")
        ));
    }
    Ok(Scenario::ALL
        .into_iter()
        .filter(|scenario| names.contains(&scenario.name()))
        .collect())
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The hosts, VMs and policy of every scenario, without a driver section. Three hosts (h1 the
/// pool master), one VM each; platform durations short, so a whole run takes minutes of platform
/// time. Timeouts are five to ten times the durations: on a clock scaled 200×, a machine that
/// stalls a second costs 200 s of platform time, which must not look like a hung step; and still
/// short enough that a hung migration or a lost host is given up on within seconds of wall time.
pub const WORLD: &str = r#"cluster: {name: scenarios, target_version: "2.0"}
policy:
  max_unavailable: 1
  upgrade_duration_secs: 120
  reboot_duration_secs: 60
  migration_overhead_secs: 5
  vm_shutdown_secs: 10
  vm_boot_secs: 10
  max_step_attempts: 3
  retry_backoff_initial_secs: 1
  retry_backoff_max_secs: 2
  step_timeout_secs: 120
  migration_timeout_secs: 300
  upgrade_timeout_secs: 1800
  reboot_timeout_secs: 600
hosts:
  - {name: h1, role: master, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h3, version: "1.0", memory_mib: 16384, cpus: 8}
vms:
  - {name: a, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: b, host: h2, memory_mib: 4096, vcpus: 2}
  - {name: c, host: h3, memory_mib: 4096, vcpus: 2}
"#;

/// The world of `scenario`: [`WORLD`] with a simulator section carrying its faults.
pub fn world(scenario: Scenario) -> String {
    format!(
        "{WORLD}driver: {{kind: simulator, seed: 11, faults: {}}}\n",
        scenario.faults()
    )
}

/// Reads the platform's own state at the run's clock.
pub type Observe = dyn Fn(&Clock) -> Result<WorldSnapshot, String> + Send + Sync;

/// A platform staged for one scenario.
pub struct Staged {
    /// The inventory Drover runs with (the driver's own section).
    pub inventory_text: String,
    /// The platform's own state now, read beside Drover (not through the driver under test);
    /// given the run's clock, for a platform that settles its operations by platform time.
    pub observe: Box<Observe>,
    /// What must live as long as the platform (a served emulator, a temporary directory).
    pub keep_alive: Box<dyn Any + Send>,
}

/// A driver's fixture for the scenarios: how to stage each on its platform.
#[async_trait::async_trait]
pub trait Stage: Send + Sync {
    /// What is under test, for the report.
    fn platform(&self) -> String;

    /// Why this platform cannot stage `scenario`, if it cannot (reported, never hidden).
    fn opt_out(&self, scenario: Scenario) -> Option<String>;

    /// A fresh platform for `scenario`, built from `world` (see [`world`]) in `directory`.
    async fn stage(
        &self,
        scenario: Scenario,
        world: &str,
        directory: &Path,
    ) -> Result<Staged, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_selection_is_every_scenario() {
        assert_eq!(selected_from("").unwrap(), Scenario::ALL.to_vec());
        assert_eq!(selected_from(" , ").unwrap(), Scenario::ALL.to_vec());
    }

    #[test]
    fn a_selection_keeps_the_suite_order_whatever_the_order_written() {
        let selected = selected_from(
            "migration-hangs-cancelled-at-timeout, migration-refused-retried-elsewhere",
        )
        .unwrap();
        assert_eq!(
            selected,
            vec![
                Scenario::MigrationRefusedRetriedElsewhere,
                Scenario::MigrationHangsCancelledAtTimeout
            ]
        );
    }

    #[test]
    fn an_unknown_name_is_refused_naming_the_valid_ones() {
        let problem = selected_from("full-rolling-upgrade,migration-refused").unwrap_err();
        assert!(
            problem.contains("`migration-refused` is not a scenario"),
            "{problem}"
        );
        assert!(problem.contains("killed-mid-wave-resumes"), "{problem}");
    }
}
