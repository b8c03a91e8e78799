//! The driver conformance suite: the `Driver` contract (drover-driver's driver.rs) written once
//! as checks and run against every driver. A driver's test describes its platform in a
//! [`Fixture`] (which host and VM each check may use, the target version, call timeouts, and
//! opt-outs with their reasons) and calls [`run_all`], which runs every [`Check`] in order,
//! undoes cordon and maintenance, prints one line per check and panics listing every failure.
//!
//! What the checks hold every driver to: calls are idempotent and observe before acting (a
//! repeated call returns within `CallTimeouts::repeated_call` and changes nothing), every call
//! returns within its timeout, failures are values with the right `DriverError` variant (never a
//! panic), and discovery and `host_facts` report what the calls changed.
//!
//! The run-level scenarios (`scenarios`, run by `scenario_run`) hold drivers to whole runs: a
//! rolling upgrade, a refused and a hung migration, a host that never returns, a process killed
//! mid-wave — each started and resumed through drover-app's launch, with drover-dst's invariants
//! checked on the platform's own state. A driver's test stages each on its platform ([`Stage`]);
//! an emulator-backed stage uses [`emulated`]'s helpers.
//! [`run_settings_scenario`] ("prechecks auto-resolved and restored") rolls a whole platform with
//! blocking settings and checks they were resolved first and put back.
//!
//! A dev-dependency only: this crate must not know any particular driver. The call-level
//! checks know no registry, engine, store or inventory; only `scenario_run` launches runs.

mod call;
mod check;
pub mod checks;
pub mod emulated;
mod error;
mod fixture;
mod observe;
mod report;
mod restore;
mod run;
mod scenario_run;
pub mod scenarios;
mod settings_scenario;

pub use check::Check;
pub use error::ConformanceError;
pub use fixture::{
    CallTimeouts, CompatibilityFixture, Fixture, MigrationFixture, OptOut, PowerFixture,
    UpgradeFixture, UNKNOWN_HOST, UNKNOWN_VM,
};
pub use report::{CheckOutcome, Report, Verdict};
pub use run::{run_all, run_one, run_suite};
pub use scenario_run::{
    run_scenario, run_scenarios, ScenarioOutcome, ScenarioReport, ScenarioVerdict,
};
pub use scenarios::{selected_scenarios, Scenario, Stage, Staged, SCENARIOS_VARIABLE};
pub use settings_scenario::{
    run_settings_scenario, LogEntry, SettingsScenario, SettingsScenarioReport,
};
