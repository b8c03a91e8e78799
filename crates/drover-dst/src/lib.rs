//! Deterministic simulation testing of Drover: whole rolling upgrades run by the real engine on
//! the simulator driver in virtual time, under seeded fault schedules, crashed and resumed at
//! random points, with the invariants checked on the simulated platform after every step.
//! A failure always names its seed; `drover-dst --first-seed N --seeds 1` replays it.

pub mod faulty_store;
pub mod harness;
pub mod invariants;
pub mod recorded;
pub mod scenario;

pub use harness::{run_seed, run_seed_within, SeedSummary, DEFAULT_WALL_LIMIT};
pub use recorded::{check_recorded_run, RunEnd};

/// Totals over many seeds, for the closing figures.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub seeds: usize,
    pub infeasible: usize,
    pub faults: usize,
    pub crashes: u32,
    pub store_faults: u64,
    pub operator_actions: usize,
    pub completed: usize,
    pub aborted: usize,
    pub events: usize,
    pub compatibility_levels_raised: usize,
    /// Returns done and given up on, over every seed.
    pub returns: usize,
    pub returns_failed: usize,
}

impl Totals {
    pub fn add(&mut self, summary: &SeedSummary) {
        self.seeds += 1;
        self.infeasible += usize::from(!summary.feasible);
        self.faults += summary.faults;
        self.crashes += summary.crashes;
        self.store_faults += summary.store_faults;
        self.operator_actions += summary.operator_actions.len();
        self.completed += usize::from(summary.outcome == "completed");
        self.aborted += usize::from(summary.outcome == "aborted");
        self.events += summary.events;
        self.compatibility_levels_raised += usize::from(summary.compatibility_level_raised);
        self.returns += summary.returns;
        self.returns_failed += summary.returns_failed;
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} seeds: {} completed ({} raised the compatibility level), {} aborted, {} without a safe plan; {} faults injected, {} engine crashes, {} store faults, {} operator actions, {} returns ({} given up), {} engine events checked",
            self.seeds, self.completed, self.compatibility_levels_raised, self.aborted, self.infeasible, self.faults, self.crashes, self.store_faults, self.operator_actions, self.returns, self.returns_failed, self.events
        )
    }
}
