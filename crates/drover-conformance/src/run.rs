//! Running the suite on one platform: every check in [`Check::ALL`]'s order, the fixture's
//! opt-outs reported instead of run, a panic inside a check turned into its failure; `run_all`
//! prints the report and panics listing every failed check.
//!
//! This module knows the order and the opt-outs, not what any check does.

use drover_driver::Driver;
use tokio::time::Instant;

use crate::call::without_panics;
use crate::check::Check;
use crate::checks::run_check;
use crate::error::ConformanceError;
use crate::fixture::Fixture;
use crate::report::{CheckOutcome, Report, Verdict};

/// Runs every check on the platform and prints the report; panics listing every failed check.
/// Returns the report when none failed.
pub async fn run_all(driver: &dyn Driver, fixture: &Fixture) -> Report {
    let report = run_suite(driver, fixture).await;
    println!("{report}");
    if !report.failed().is_empty() {
        panic!(
            "{}; failed checks:\n{}",
            report.summary(),
            report.failures()
        );
    }
    report
}

/// Runs every check on the platform, or reports its opt-out; never panics on a failure.
pub async fn run_suite(driver: &dyn Driver, fixture: &Fixture) -> Report {
    let mut outcomes = Vec::with_capacity(Check::ALL.len());
    for check in Check::ALL {
        let outcome = match fixture.opt_out(check) {
            Some(opt_out) if opt_out.reason.trim().is_empty() => CheckOutcome {
                check,
                verdict: Verdict::Failed(ConformanceError::Fixture(format!(
                    "{check} is opted out without a reason"
                ))),
                elapsed: Default::default(),
            },
            Some(opt_out) => CheckOutcome {
                check,
                verdict: Verdict::OptedOut(opt_out.reason.clone()),
                elapsed: Default::default(),
            },
            None => run_one(check, driver, fixture).await,
        };
        outcomes.push(outcome);
    }
    Report {
        platform: fixture.platform.clone(),
        driver_kind: driver.kind().to_string(),
        outcomes,
    }
}

/// Runs one check (whatever the fixture's opt-outs say) and times it.
pub async fn run_one(check: Check, driver: &dyn Driver, fixture: &Fixture) -> CheckOutcome {
    let started = Instant::now();
    let result = match without_panics(run_check(check, driver, fixture)).await {
        Ok(result) => result,
        Err(message) => Err(ConformanceError::Panicked {
            call: check.name().to_string(),
            message,
        }),
    };
    CheckOutcome {
        check,
        verdict: match result {
            Ok(message) => Verdict::Passed(message),
            Err(error) => Verdict::Failed(error),
        },
        elapsed: started.elapsed(),
    }
}
