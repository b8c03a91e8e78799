//! The benchmark harness: standard scenarios, and one row of figures per scenario comparing the
//! planner with its lower bounds and with the baseline strategies.
//!
//! It times `drover_core::plan` with `std::time::Instant` (the only clock in this crate) and asks
//! the caller for peak memory through a probe, because only the binary can own a counting global
//! allocator. It must not know how rows are printed, nor install an allocator.

use std::time::Instant;

use drover_core::{check::check_plan, Cluster, MaxUnavailable, Plan};

use crate::baselines::{move_back, wave_hosts, worst_fit};
use crate::generate::{generate, GenerateSpec};

/// Plans of clusters up to this many compute hosts are also replayed by `check_plan`, which is
/// slower than the planner.
const LARGEST_VERIFIED_HOSTS: usize = 1_000;
/// Benchmarks use a fixed seed so that rows can be compared between commits.
const BENCH_SEED: u64 = 2019;

/// One benchmark cluster: generated with [`GenerateSpec::default`] except for these fields.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchScenario {
    /// Compute hosts; the cluster also has one pool master.
    pub hosts: usize,
    pub utilization_min: f64,
    pub utilization_max: f64,
    pub max_unavailable: MaxUnavailable,
    pub seed: u64,
}

impl BenchScenario {
    /// `"60–90%"`, or `"75%"` when every host is filled alike.
    pub fn utilization_description(&self) -> String {
        let percent = |fraction: f64| (fraction * 100.0).round();
        if percent(self.utilization_min) == percent(self.utilization_max) {
            format!("{}%", percent(self.utilization_min))
        } else {
            format!(
                "{}–{}%",
                percent(self.utilization_min),
                percent(self.utilization_max)
            )
        }
    }

    /// The generator spec of this scenario's cluster.
    pub fn generate_spec(&self) -> GenerateSpec {
        GenerateSpec {
            hosts: self.hosts,
            masters: 1,
            utilization_min: self.utilization_min,
            utilization_max: self.utilization_max,
            // One group of 2–4 VMs per two hosts: a few HA pairs and triples, as in most clouds.
            anti_affinity_groups: self.hosts / 2,
            max_unavailable: self.max_unavailable,
            seed: self.seed,
            ..GenerateSpec::default()
        }
    }
}

/// Tells the caller's memory probe when planning starts (reset the peak) and ends (read it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchPhase {
    Start,
    End,
}

/// The scenarios of `drover bench`: 100, 1,000 and 10,000 hosts (only the first two when `quick`)
/// × max_unavailable 1, 10 and auto at 60–90% utilization, plus the target case of 1,000 hosts
/// at exactly 75% with max_unavailable 10.
pub fn standard_scenarios(quick: bool) -> Vec<BenchScenario> {
    let sizes: &[usize] = if quick {
        &[100, 1_000]
    } else {
        &[100, 1_000, 10_000]
    };
    let limits = [
        MaxUnavailable::Count(1),
        MaxUnavailable::Count(10),
        MaxUnavailable::Auto,
    ];
    let mut scenarios: Vec<BenchScenario> = sizes
        .iter()
        .flat_map(|hosts| {
            limits.iter().map(|limit| BenchScenario {
                hosts: *hosts,
                utilization_min: 0.6,
                utilization_max: 0.9,
                max_unavailable: *limit,
                seed: BENCH_SEED,
            })
        })
        .collect();
    scenarios.push(BenchScenario {
        hosts: 1_000,
        utilization_min: 0.75,
        utilization_max: 0.75,
        max_unavailable: MaxUnavailable::Count(10),
        seed: BENCH_SEED,
    });
    scenarios
}

/// The figures of one scenario. Ratios are against the lower bounds (1.0 is optimal); a ratio
/// whose lower bound is 0 is 1.0 when the count is 0 too, infinite otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRow {
    /// Every host of the cluster, the master included.
    pub hosts: usize,
    pub vms: usize,
    /// The batch size the planner used (`auto` resolved).
    pub max_unavailable: u32,
    pub utilization: String,
    pub feasible: bool,
    /// Wall-clock seconds spent in `drover_core::plan` alone.
    pub plan_secs: f64,
    /// Peak heap memory during planning, as reported by the caller's probe.
    pub plan_peak_memory_bytes: u64,
    pub waves: usize,
    pub waves_lower_bound: usize,
    pub migrations: usize,
    pub migrations_lower_bound: usize,
    pub move_back_migrations: usize,
    pub worst_fit_migrations: usize,
    pub restarts: usize,
    pub shutdowns: usize,
    pub migrations_ratio: f64,
    pub waves_ratio: f64,
    pub move_back_ratio: f64,
    pub worst_fit_ratio: f64,
    /// `check_plan` found no violation; `None` when the cluster was too large to check.
    pub verified: Option<bool>,
}

/// Generates the scenario's cluster, plans it (timed, memory probed), runs the baselines on the
/// same waves and, for clusters up to 1,000 hosts, checks the plan.
pub fn run_scenario(
    scenario: &BenchScenario,
    peak_memory_probe: &mut dyn FnMut(BenchPhase) -> u64,
) -> BenchRow {
    let cluster = generate(&scenario.generate_spec());
    peak_memory_probe(BenchPhase::Start);
    let started = Instant::now();
    let plan = drover_core::plan(&cluster);
    let plan_secs = started.elapsed().as_secs_f64();
    let plan_peak_memory_bytes = peak_memory_probe(BenchPhase::End);
    let waves = wave_hosts(&cluster, &plan);
    let move_back_migrations = move_back(&cluster, &waves).migrations;
    let worst_fit_migrations = worst_fit(&cluster, &waves).migrations;
    let verified =
        (scenario.hosts <= LARGEST_VERIFIED_HOSTS).then(|| check_plan(&cluster, &plan).is_empty());
    row(
        scenario,
        &cluster,
        &plan,
        Measured {
            plan_secs,
            plan_peak_memory_bytes,
            move_back_migrations,
            worst_fit_migrations,
            verified,
        },
    )
}

/// What `run_scenario` measured besides the plan itself.
struct Measured {
    plan_secs: f64,
    plan_peak_memory_bytes: u64,
    move_back_migrations: usize,
    worst_fit_migrations: usize,
    verified: Option<bool>,
}

fn row(scenario: &BenchScenario, cluster: &Cluster, plan: &Plan, measured: Measured) -> BenchRow {
    let summary = &plan.summary;
    BenchRow {
        hosts: cluster.hosts.len(),
        vms: cluster.vms.len(),
        max_unavailable: summary.max_unavailable,
        utilization: scenario.utilization_description(),
        feasible: plan.is_feasible(),
        plan_secs: measured.plan_secs,
        plan_peak_memory_bytes: measured.plan_peak_memory_bytes,
        waves: summary.waves,
        waves_lower_bound: summary.waves_lower_bound,
        migrations: summary.migrations,
        migrations_lower_bound: summary.migrations_lower_bound,
        move_back_migrations: measured.move_back_migrations,
        worst_fit_migrations: measured.worst_fit_migrations,
        restarts: summary.restarts,
        shutdowns: summary.shutdowns,
        migrations_ratio: ratio(summary.migrations, summary.migrations_lower_bound),
        waves_ratio: ratio(summary.waves, summary.waves_lower_bound),
        move_back_ratio: ratio(
            measured.move_back_migrations,
            summary.migrations_lower_bound,
        ),
        worst_fit_ratio: ratio(
            measured.worst_fit_migrations,
            summary.migrations_lower_bound,
        ),
        verified: measured.verified,
    }
}

fn ratio(count: usize, lower_bound: usize) -> f64 {
    match (count, lower_bound) {
        (0, 0) => 1.0,
        (_, 0) => f64::INFINITY,
        _ => count as f64 / lower_bound as f64,
    }
}
