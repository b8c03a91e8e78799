//! `drover bench` and `drover generate`: planner figures on generated clusters, printed as ratios
//! against lower bounds and two baseline strategies; and generated inventories for rehearsals.
//! Peak memory comes from the binary's counting allocator.

use clap::Args;
use drover_sim::{BenchPhase, BenchRow, GenerateSpec};
use serde::Serialize;

use crate::exit::Failure;

mod end_to_end;
mod hroller;
use crate::output::{print_document, print_table, table, OutputFormat};

#[derive(Args)]
pub struct BenchArgs {
    /// Only the 100- and 1,000-host scenarios (seconds instead of a minute).
    #[arg(long)]
    quick: bool,
    /// Only the end-to-end rows (read, validate, plan, write an inventory file), without the
    /// planner scenarios.
    #[arg(long)]
    end_to_end: bool,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// Instead of the planner's rows: Drover against Ganeti's hroller (which must be on PATH:
    /// apt-get install ganeti-htools-3.0) on the same Ganeti-style clusters, 50, 200 and 1,000
    /// nodes (50 with --quick), shared storage and mostly DRBD.
    #[arg(long)]
    hroller: bool,
    /// hroller is stopped after this long and reported as "no answer".
    #[arg(long, default_value_t = 400, requires = "hroller")]
    hroller_timeout_secs: u64,
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Compute hosts.
    #[arg(long, default_value_t = 20)]
    hosts: usize,
    /// Pool masters (0 or 1).
    #[arg(long, default_value_t = 1)]
    masters: usize,
    #[arg(long, default_value_t = 0)]
    management_hosts: usize,
    /// Lowest memory fill of a host, 0..1.
    #[arg(long, default_value_t = 0.6)]
    utilization_min: f64,
    /// Highest memory fill of a host, 0..1.
    #[arg(long, default_value_t = 0.9)]
    utilization_max: f64,
    #[arg(long, default_value_t = 0.01)]
    local_storage_fraction: f64,
    #[arg(long, default_value_t = 0.01)]
    no_tools_fraction: f64,
    #[arg(long, default_value_t = 0)]
    anti_affinity_groups: usize,
    /// policy.max_unavailable of the generated inventory: a number or "auto".
    #[arg(long, default_value = "1")]
    max_unavailable: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn generate(args: &GenerateArgs) -> Result<(), Failure> {
    let spec = GenerateSpec {
        hosts: args.hosts,
        masters: args.masters,
        management_hosts: args.management_hosts,
        utilization_min: args.utilization_min,
        utilization_max: args.utilization_max,
        local_storage_fraction: args.local_storage_fraction,
        no_tools_fraction: args.no_tools_fraction,
        anti_affinity_groups: args.anti_affinity_groups,
        max_unavailable: crate::inventory_args::parse_max_unavailable(&args.max_unavailable)?,
        seed: args.seed,
        ..GenerateSpec::default()
    };
    let cluster = drover_sim::try_generate(&spec).map_err(Failure::bad_input)?;
    print!("{}", drover_schema::inventory::inventory_to_yaml(&cluster));
    Ok(())
}

/// One bench row as printed in JSON/YAML.
#[derive(Serialize)]
struct BenchDocument<'a> {
    scenarios: Vec<BenchEntry<'a>>,
    end_to_end: Vec<end_to_end::EndToEndRow>,
}

#[derive(Serialize)]
struct BenchEntry<'a> {
    hosts: usize,
    vms: usize,
    utilization: &'a str,
    max_unavailable: u32,
    feasible: bool,
    plan_secs: f64,
    plan_peak_memory_mib: f64,
    waves: usize,
    waves_lower_bound: usize,
    waves_ratio: f64,
    migrations: usize,
    migrations_lower_bound: usize,
    migrations_ratio: f64,
    move_back_ratio: f64,
    worst_fit_ratio: f64,
    verified: Option<bool>,
}

const MIB: f64 = 1024.0 * 1024.0;

pub fn run(args: &BenchArgs) -> Result<(), Failure> {
    if args.hroller {
        let timeout = std::time::Duration::from_secs(args.hroller_timeout_secs);
        let rows = hroller::rows(args.quick, timeout)?;
        return match args.output.document() {
            Some(format) => print_document(&rows, format),
            None => {
                print_hroller_table(&rows);
                Ok(())
            }
        };
    }
    let scenarios = match args.end_to_end {
        true => Vec::new(),
        false => drover_sim::standard_scenarios(args.quick),
    };
    let mut rows = Vec::with_capacity(scenarios.len());
    for scenario in &scenarios {
        eprintln!(
            "bench: {} hosts, {}, max_unavailable {} …",
            scenario.hosts,
            scenario.utilization_description(),
            match scenario.max_unavailable {
                drover_core::MaxUnavailable::Count(count) => count.to_string(),
                _ => "auto".to_string(),
            }
        );
        let mut base = 0usize;
        let mut probe = |phase: BenchPhase| match phase {
            BenchPhase::Start => {
                base = crate::alloc::reset_peak();
                0
            }
            BenchPhase::End => crate::alloc::peak_bytes().saturating_sub(base) as u64,
        };
        rows.push(drover_sim::run_scenario(scenario, &mut probe));
    }
    let end_to_end_rows = end_to_end::rows(args.quick)?;
    match args.output.document() {
        Some(format) => print_document(
            &BenchDocument {
                scenarios: rows.iter().map(entry).collect(),
                end_to_end: end_to_end_rows,
            },
            format,
        ),
        None => {
            if !rows.is_empty() {
                print_bench_table(&rows);
                println!();
            }
            print_end_to_end_table(&end_to_end_rows);
            Ok(())
        }
    }
}

fn print_hroller_table(rows: &[hroller::HrollerRow]) {
    let mut view = table(&[
        "nodes",
        "storage",
        "memory",
        "instances",
        "rounds hroller/drover",
        "moves executed hroller/drover",
        "plan CPU hroller/drover",
        "unsafe rounds hroller",
        "drover safe",
    ]);
    let or_none = |value: Option<usize>| value.map_or("no answer".to_string(), |v| v.to_string());
    for row in rows {
        view.add_row(vec![
            row.nodes.to_string(),
            row.storage.to_string(),
            format!("{}%", row.memory_utilization_percent),
            row.instances.to_string(),
            format!("{} / {}", or_none(row.hroller_rounds), row.drover_rounds),
            format!(
                "{} / {}",
                or_none(row.hroller_moves_executed),
                row.drover_moves
            ),
            format!("{:.3}s / {:.3}s", row.hroller_cpu_secs, row.drover_cpu_secs),
            or_none(row.hroller_unsafe_rounds),
            if row.drover_safe { "yes" } else { "NO" }.to_string(),
        ]);
    }
    print_table(&view);
    for row in rows {
        let label = format!(
            "{} nodes, {}, {}%",
            row.nodes, row.storage, row.memory_utilization_percent
        );
        if let Some(error) = &row.hroller_error {
            println!("{label}: hroller: {error}");
        }
        if let Some(violation) = &row.hroller_first_violation {
            println!("{label}: hroller {violation}");
        }
        if let Some(violation) = &row.drover_first_violation {
            println!("{label}: drover: {violation}");
        }
    }
    println!(
        "hroller's moves as executed: every instance that leaves a group's node moves out and back \
         (hroller assumes it); its rounds are checked by Drover's plan checker on that placement."
    );
    println!("Goal: never more rounds than hroller, never an unsafe round, 1,000 DRBD nodes planned in < 1 s.");
}

fn print_end_to_end_table(rows: &[end_to_end::EndToEndRow]) {
    println!("End to end (drover plan -i FILE -o json: read, validate, plan, write):");
    let mut view = table(&[
        "format",
        "hosts",
        "vms",
        "file",
        "total",
        "cpu",
        "peak mem",
        "plan alone",
        "total/plan",
        "load",
        "write",
        "read alone",
        "total/read",
    ]);
    for row in rows {
        view.add_row(vec![
            row.format.to_string(),
            row.hosts.to_string(),
            row.vms.to_string(),
            format!("{:.1} MiB", row.file_mib),
            format!("{:.3}s", row.total_secs),
            format!("{:.3}s", row.total_cpu_secs),
            format!("{:.1} MiB", row.total_peak_memory_mib),
            format!("{:.3}s", row.plan_secs),
            format!("{:.1}", row.total_to_plan_ratio),
            format!("{:.3}s", row.load_secs),
            format!("{:.3}s", row.write_secs),
            format!("{:.3}s", row.read_secs),
            format!("{:.1}", row.total_to_read_ratio),
        ]);
    }
    print_table(&view);
    println!("Target: 10,000 hosts end to end < 1 s and < 500 MiB, YAML and JSON alike.");
    println!("CPU above total: the file was read on several cores; far below it: other work on the machine kept drover waiting.");
}

fn entry(row: &BenchRow) -> BenchEntry<'_> {
    BenchEntry {
        hosts: row.hosts,
        vms: row.vms,
        utilization: &row.utilization,
        max_unavailable: row.max_unavailable,
        feasible: row.feasible,
        plan_secs: row.plan_secs,
        plan_peak_memory_mib: row.plan_peak_memory_bytes as f64 / MIB,
        waves: row.waves,
        waves_lower_bound: row.waves_lower_bound,
        waves_ratio: row.waves_ratio,
        migrations: row.migrations,
        migrations_lower_bound: row.migrations_lower_bound,
        migrations_ratio: row.migrations_ratio,
        move_back_ratio: row.move_back_ratio,
        worst_fit_ratio: row.worst_fit_ratio,
        verified: row.verified,
    }
}

fn print_bench_table(rows: &[BenchRow]) {
    let mut view = table(&[
        "hosts",
        "vms",
        "fill",
        "batch",
        "plan time",
        "peak mem",
        "waves/lb",
        "migrations/lb",
        "move-back/lb",
        "worst-fit/lb",
        "checked",
    ]);
    for row in rows {
        view.add_row(vec![
            row.hosts.to_string(),
            row.vms.to_string(),
            row.utilization.clone(),
            row.max_unavailable.to_string(),
            format!("{:.3}s", row.plan_secs),
            format!("{:.1} MiB", row.plan_peak_memory_bytes as f64 / MIB),
            format!(
                "{}/{} = {:.3}",
                row.waves, row.waves_lower_bound, row.waves_ratio
            ),
            format!(
                "{}/{} = {:.4}",
                row.migrations, row.migrations_lower_bound, row.migrations_ratio
            ),
            format!("{:.3}", row.move_back_ratio),
            format!("{:.3}", row.worst_fit_ratio),
            match row.verified {
                Some(true) => "ok".into(),
                Some(false) => "FAILED".into(),
                None => "-".into(),
            },
        ]);
    }
    print_table(&view);
    println!("Targets: migrations/lb <= 1.01 at 1,000 hosts, 75%, batch 10; planning 10,000 hosts < 2 s and < 2 GiB; waves within 5% of the lower bound where capacity allows.");
}
