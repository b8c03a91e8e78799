//! What a run of the suite found: one outcome per check (passed with its message, failed with
//! why, or opted out with the fixture's reason), printed one line per check, opt-outs included.
//!
//! Plain data and its text: this module must not know drivers or how checks run.

use std::fmt;
use std::time::Duration;

use crate::check::Check;
use crate::error::ConformanceError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed(String),
    Failed(ConformanceError),
    /// Not run; the fixture's reason.
    OptedOut(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    pub check: Check,
    pub verdict: Verdict,
    /// In the runtime's time (virtual under a paused runtime); zero when opted out.
    pub elapsed: Duration,
}

/// Every check's outcome on one platform, in the order they ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The fixture's description of the platform.
    pub platform: String,
    /// `Driver::kind` of the driver under test.
    pub driver_kind: String,
    pub outcomes: Vec<CheckOutcome>,
}

impl Report {
    pub fn passed(&self) -> Vec<Check> {
        self.checks_where(|verdict| matches!(verdict, Verdict::Passed(_)))
    }

    pub fn failed(&self) -> Vec<Check> {
        self.checks_where(|verdict| matches!(verdict, Verdict::Failed(_)))
    }

    pub fn opted_out(&self) -> Vec<Check> {
        self.checks_where(|verdict| matches!(verdict, Verdict::OptedOut(_)))
    }

    fn checks_where(&self, wanted: impl Fn(&Verdict) -> bool) -> Vec<Check> {
        self.outcomes
            .iter()
            .filter(|outcome| wanted(&outcome.verdict))
            .map(|outcome| outcome.check)
            .collect()
    }

    /// The outcome of `check`, if it ran or was opted out.
    pub fn outcome(&self, check: Check) -> Option<&CheckOutcome> {
        self.outcomes.iter().find(|outcome| outcome.check == check)
    }

    /// The summary line: platform, driver and counts.
    pub fn summary(&self) -> String {
        format!(
            "conformance of {} (driver {}): {} passed, {} failed, {} opted out",
            self.platform,
            self.driver_kind,
            self.passed().len(),
            self.failed().len(),
            self.opted_out().len()
        )
    }

    /// Every failed check with its reason, one per line.
    pub fn failures(&self) -> String {
        self.outcomes
            .iter()
            .filter_map(|outcome| match &outcome.verdict {
                Verdict::Failed(error) => Some(format!("  - {}: {error}\n", outcome.check)),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        for outcome in &self.outcomes {
            let (label, text) = match &outcome.verdict {
                Verdict::Passed(message) => ("passed   ", message.clone()),
                Verdict::Failed(error) => ("FAILED   ", error.to_string()),
                Verdict::OptedOut(reason) => ("opted out", reason.clone()),
            };
            writeln!(
                formatter,
                "  {label} {} ({} ms): {text}",
                outcome.check,
                outcome.elapsed.as_millis()
            )?;
        }
        write!(formatter, "{}", self.summary())
    }
}
