//! `drover bench`'s end-to-end rows: what `drover plan -i FILE -o json` does — read the file,
//! parse and validate it, plan, and write the plan document — on a generated cluster written as
//! YAML and as JSON, timed as a whole and given as ratios against two lower bounds measured on the
//! same text: the planner alone and reading the file's bytes. Peak memory comes from the binary's
//! counting allocator. Knows the inventory and document formats only through `drover-schema`.

use std::path::Path;
use std::time::Instant;

use drover_schema::document::PlanDocument;
use drover_schema::inventory::{load_inventory_file, InventoryDocument};
use drover_sim::GenerateSpec;
use serde::Serialize;

use crate::exit::Failure;

const MIB: f64 = 1024.0 * 1024.0;

/// One inventory format of one generated cluster, read, planned and written end to end.
#[derive(Clone, Debug, Serialize)]
pub struct EndToEndRow {
    pub format: &'static str,
    pub hosts: usize,
    pub vms: usize,
    pub file_mib: f64,
    /// Read, parse and validate, plan, write the plan document (JSON) to a sink.
    pub total_secs: f64,
    /// CPU time of the process (every thread, user and system) over the same span: above
    /// `total_secs` when the parts of a file are read on several cores, below it when other work
    /// on the machine kept the process waiting.
    pub total_cpu_secs: f64,
    pub total_peak_memory_mib: f64,
    /// The read, parse and validate part of the total: `load_inventory_file`.
    pub load_secs: f64,
    /// The plan document built and written as JSON, part of the total.
    pub write_secs: f64,
    /// `drover_core::plan` alone on the same cluster: the lower bound of any end-to-end run.
    pub plan_secs: f64,
    /// Reading the file into memory: the floor of any parser.
    pub read_secs: f64,
    pub total_to_plan_ratio: f64,
    pub total_to_read_ratio: f64,
}

/// The cluster sizes measured: the 10,000 hosts, or 1,000 for `--quick`.
pub fn rows(quick: bool) -> Result<Vec<EndToEndRow>, Failure> {
    let hosts = if quick { 1_000 } else { 10_000 };
    // As `drover generate --hosts N` makes it (its flags' defaults), so the figures match what
    // an operator tries.
    let spec = GenerateSpec {
        hosts,
        masters: 1,
        management_hosts: 0,
        utilization_min: 0.6,
        utilization_max: 0.9,
        local_storage_fraction: 0.01,
        no_tools_fraction: 0.01,
        anti_affinity_groups: 0,
        max_unavailable: drover_core::MaxUnavailable::Count(1),
        seed: 1,
        ..GenerateSpec::default()
    };
    let cluster = drover_sim::try_generate(&spec).map_err(Failure::bad_input)?;
    let document = InventoryDocument::from_cluster(&cluster);
    let yaml = drover_schema::inventory::inventory_to_yaml(&cluster);
    let json = serde_json::to_string_pretty(&document).map_err(Failure::internal)?;
    let mut rows = Vec::new();
    for (format, text) in [("yaml", yaml), ("json", json)] {
        let path = std::env::temp_dir().join(format!(
            "drover-bench-{}-{hosts}.{format}",
            std::process::id()
        ));
        std::fs::write(&path, &text).map_err(Failure::internal)?;
        drop(text);
        eprintln!("bench: end to end, {hosts} hosts, {format} …");
        let row = measure(format, &path);
        // Removed whatever the measure gave: a failed bench leaves no big file behind.
        let _ = std::fs::remove_file(&path);
        rows.push(row?);
    }
    Ok(rows)
}

fn measure(format: &'static str, path: &Path) -> Result<EndToEndRow, Failure> {
    let read_started = Instant::now();
    let file_bytes = std::fs::read(path).map_err(Failure::internal)?.len();
    let read_secs = read_started.elapsed().as_secs_f64();

    let base = crate::alloc::reset_peak();
    let cpu_started = process_cpu_secs();
    let started = Instant::now();
    let file = load_inventory_file(path).map_err(Failure::bad_input)?;
    let load_secs = started.elapsed().as_secs_f64();
    let plan = drover_core::plan(&file.cluster);
    let write_started = Instant::now();
    let document = PlanDocument::new(&file.cluster, &plan);
    // As `drover plan -o json` writes it (`print_document`), to a sink instead of stdout.
    crate::output::write_json_document(&document, std::io::sink())?;
    let write_secs = write_started.elapsed().as_secs_f64();
    let total_secs = started.elapsed().as_secs_f64();
    let total_cpu_secs = process_cpu_secs() - cpu_started;
    let peak_bytes = crate::alloc::peak_bytes().saturating_sub(base);

    let plan_started = Instant::now();
    let replanned = drover_core::plan(&file.cluster);
    let plan_secs = plan_started.elapsed().as_secs_f64();
    debug_assert_eq!(replanned, plan);
    Ok(EndToEndRow {
        format,
        hosts: file.cluster.hosts.len(),
        vms: file.cluster.vms.len(),
        file_mib: file_bytes as f64 / MIB,
        total_secs,
        total_cpu_secs,
        total_peak_memory_mib: peak_bytes as f64 / MIB,
        load_secs,
        write_secs,
        plan_secs,
        read_secs,
        total_to_plan_ratio: total_secs / plan_secs.max(f64::EPSILON),
        total_to_read_ratio: total_secs / read_secs.max(f64::EPSILON),
    })
}

/// User and system CPU time of this process so far, every thread included.
fn process_cpu_secs() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given, which points to
    // one; RUSAGE_SELF is always valid, so it cannot fail.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
