//! Drover's simulator: seeded synthetic clusters, virtual-time execution of plans with independent
//! invariant checks, baseline placement strategies and the benchmark harness built on them, and
//! [`SimDriver`], the simulated platform behind the `drover_driver::Driver` trait.
//!
//! This crate may use randomness (always seeded) and `std::time::Instant` (in `bench` only, around
//! the planner call). It knows no inventory format, no terminal and no real platform: it never
//! touches a hypervisor and never reads the wall clock to decide anything. Only `driver` sleeps
//! (through `drover_driver::Clock`, virtual under a paused runtime) and writes a file (its own
//! state file, when asked to).

pub mod baselines;
pub mod bench;
pub mod driver;
pub mod execute;
pub mod ganeti;
pub mod generate;
mod groups;

pub use baselines::{move_back, wave_hosts, worst_fit, BaselineOutcome};
pub use bench::{run_scenario, standard_scenarios, BenchPhase, BenchRow, BenchScenario};
pub use driver::{
    Fault, FaultKind, RandomFaults, SimDriver, SimDriverConfig, SlowStep, WorldSnapshot,
};
pub use execute::{
    simulate, DowntimeEvent, HostTimeline, Seconds, SimEvent, SimEventKind, SimReport,
};
pub use ganeti::{
    generate_ganeti, DiskTemplate, GanetiCluster, GanetiInstance, GanetiNode, GanetiSpec,
};
pub use generate::{generate, try_generate, GenerateSpec, MemoryBucket, AZURE_2019_MEMORY_MIX};

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The plan failed its prechecks; there is nothing to execute.
    #[error("refusing to simulate an infeasible plan; failed prechecks: {}", failed_prechecks.join("; "))]
    InfeasiblePlan { failed_prechecks: Vec<String> },
    /// The plan names a host or VM index that the cluster does not have.
    #[error("the plan does not belong to this cluster: {message}")]
    UnknownReference { message: String },
    /// Executing the plan broke a safety rule; `message` names the hosts and VMs involved.
    #[error("invariant broken at {at_secs} s: {message}")]
    InvariantBroken { at_secs: u64, message: String },
    /// A generator spec that cannot describe a cluster (for example an unparsable version).
    #[error("invalid generator spec: {message}")]
    InvalidSpec { message: String },
    /// A simulated platform configuration that cannot be used (a fault naming an unknown VM, a
    /// probability outside 0..=1).
    #[error("invalid simulated platform configuration: {message}")]
    InvalidDriverConfig { message: String },
    /// The simulated platform's state file cannot be read, written, or does not fit the cluster.
    #[error("simulated platform state file {}: {message}", path.display())]
    StateFile { path: PathBuf, message: String },
}
