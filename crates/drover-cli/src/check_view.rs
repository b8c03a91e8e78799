//! `drover check` and `drover outdated`: what needs upgrading, before anyone plans.
//!
//! `check` prints the check document (`drover_app::check`: per host, watched packages with
//! updates; `outdated` events; a newer release in the catalog's channel) and fails (exit 7) when
//! some host could not be asked. `--write-inventory` writes the inventory back with the hosts
//! that have updates at the target added to `policy.force_hosts`, so that `plan`/`run` upgrade
//! them and leave the others alone. `outdated` lists hosts on old versions and the VMs still
//! running on them (OpenShift's outdated-workload list).
//!
//! Knows the terminal and the inventory files; asks no host itself and changes nothing on them.

use std::path::{Path, PathBuf};

use clap::Args;
use drover_app::check::{check_document, outdated_events, CheckDocument};
use drover_schema::inventory::{InventoryDocument, InventoryFile};
use serde::Serialize;

use crate::exit::{Failure, EXIT_CHECK_FAILED};
use crate::output::{print_document, print_table, status_cell, table, OutputFormat};

#[derive(Args)]
pub struct CheckArgs {
    /// Inventory file (its `upgrade:` section says how to ask the hosts).
    #[arg(short = 'i', long = "inventory", env = "DROVER_INVENTORY")]
    inventory: PathBuf,
    /// Write the inventory back here with hosts that have updates added to policy.force_hosts.
    #[arg(long, value_name = "FILE")]
    write_inventory: Option<PathBuf>,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
}

#[derive(Args)]
pub struct OutdatedArgs {
    /// Inventory file.
    #[arg(short = 'i', long = "inventory", env = "DROVER_INVENTORY")]
    inventory: PathBuf,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
}

pub fn check(args: &CheckArgs) -> Result<(), Failure> {
    let mut file = drover_schema::inventory::load_inventory_file(&args.inventory)
        .map_err(Failure::bad_input)?;
    let directory = args.inventory.parent().unwrap_or(Path::new(""));
    resolve_check_command_paths(&mut file.upgrade.check_command, directory);
    let document = check_document(&file)?;
    match args.output.document() {
        Some(format) => print_document(&document, format)?,
        None => print_check(&document),
    }
    if let Some(path) = &args.write_inventory {
        write_with_forced_hosts(&file, &document, path)?;
    }
    failed_checks_result(&document)
}

/// A host that could not be asked is an error of the whole command: "no updates" would be a
/// guess, and a script that sees exit 0 would believe it.
fn failed_checks_result(document: &CheckDocument) -> Result<(), Failure> {
    let failed: Vec<&str> = document
        .hosts
        .iter()
        .filter(|h| h.error.is_some())
        .map(|h| h.host.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(Failure::with_code(
        EXIT_CHECK_FAILED,
        format!(
            "the check command failed on {} of {} host(s): {} (see the table above)",
            failed.len(),
            document.hosts.len(),
            failed.join(", ")
        ),
    ))
}

/// Paths in `upgrade.check_command` resolve against the inventory's directory, as
/// `upgrade.catalog` does: the program when it is a relative path (`./check.sh`,
/// `steps/check.sh`), and any other argument that names a file there (`[sh, check.sh]`).
/// Bare program names (`ssh`, `sh`) are still looked up on PATH; placeholders are left alone.
pub fn resolve_check_command_paths(argv: &mut [String], directory: &Path) {
    for (index, element) in argv.iter_mut().enumerate() {
        let path = Path::new(element.as_str());
        if path.is_absolute() || element.contains('{') || element.starts_with('-') {
            continue;
        }
        let candidate = directory.join(path);
        let is_program_path = index == 0 && element.contains('/');
        let names_a_file_there = index > 0 && candidate.is_file();
        if is_program_path || names_a_file_there {
            let absolute = std::path::absolute(&candidate).unwrap_or(candidate);
            *element = absolute.display().to_string();
        }
    }
}

fn print_check(document: &CheckDocument) {
    let mut view = table(&["host", "version", "updates", "packages"]);
    for host in &document.hosts {
        let packages = match (&host.error, host.packages.is_empty()) {
            (Some(error), _) => format!("check failed: {error}"),
            (None, true) => "-".into(),
            (None, false) => host
                .packages
                .iter()
                .map(|p| format!("{} {}", p.name, p.available_version))
                .collect::<Vec<_>>()
                .join(", "),
        };
        view.add_row(vec![
            host.host.as_str().into(),
            host.version.as_str().into(),
            status_cell(match host.updates_available {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            }),
            packages.into(),
        ]);
    }
    println!(
        "Cluster {} (target {}):",
        document.cluster, document.target_version
    );
    print_table(&view);
    if let Some(engine) = &document.engine {
        let mut engine_view = table(&["engine", "updates", "check"]);
        engine_view.add_row(vec![
            "engine".into(),
            status_cell(match engine.updates_available {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            }),
            engine.message.as_str().into(),
        ]);
        print_table(&engine_view);
    }
    for event in &document.events {
        println!("{}: {} {}", event.event, event.host, event.message);
    }
    if let Some(version) = &document.newer_release_available {
        println!(
            "The catalog's channel offers {version}, newer than the target {}.",
            document.target_version
        );
    }
}

/// The inventory with hosts at the target that have watched updates forced into the upgrade.
fn write_with_forced_hosts(
    file: &InventoryFile,
    document: &CheckDocument,
    path: &PathBuf,
) -> Result<(), Failure> {
    let mut cluster = file.cluster.clone();
    for (host, check) in cluster.hosts.iter().zip(&document.hosts) {
        if check.updates_available == Some(true) && host.version == cluster.target_version {
            cluster.policy.force_hosts.insert(host.name.clone());
        }
    }
    let mut inventory = InventoryDocument::from_cluster(&cluster);
    inventory.driver = Some(file.driver.clone());
    inventory.upgrade = file.upgrade.clone();
    // The written file may live elsewhere: its catalog must still be found.
    if let Some(catalog) = &mut inventory.upgrade.catalog {
        if let Ok(absolute) = std::path::absolute(&*catalog) {
            *catalog = absolute.display().to_string();
        }
    }
    let text = serde_yaml_ng::to_string(&inventory).map_err(Failure::internal)?;
    std::fs::write(path, text).map_err(|error| {
        Failure::bad_input(format!(
            "{}: cannot write the inventory: {error}",
            path.display()
        ))
    })
}

#[derive(Serialize)]
struct OutdatedDocument {
    cluster: String,
    target_version: String,
    hosts: Vec<OutdatedHost>,
}

#[derive(Serialize)]
struct OutdatedHost {
    host: String,
    version: String,
    reason: String,
    vms: Vec<String>,
}

/// `drover outdated`: hosts older than the target or their peers, with the running VMs on them.
pub fn outdated(args: &OutdatedArgs) -> Result<(), Failure> {
    let file = drover_schema::inventory::load_inventory_file(&args.inventory)
        .map_err(Failure::bad_input)?;
    let cluster = &file.cluster;
    let hosts = outdated_events(cluster)
        .into_iter()
        .map(|event| {
            let id = cluster
                .host_named(&event.host)
                .expect("events name hosts of the cluster");
            OutdatedHost {
                version: cluster.host(id).version.to_string(),
                vms: cluster
                    .vms
                    .iter()
                    .filter(|vm| vm.host == id && vm.is_running())
                    .map(|vm| vm.name.clone())
                    .collect(),
                host: event.host,
                reason: event.message,
            }
        })
        .collect();
    let document = OutdatedDocument {
        cluster: cluster.name.clone(),
        target_version: cluster.target_version.to_string(),
        hosts,
    };
    if let Some(format) = args.output.document() {
        return print_document(&document, format);
    }
    let mut view = table(&["host", "version", "running vms", "why"]);
    for host in &document.hosts {
        view.add_row(vec![
            host.host.clone(),
            host.version.clone(),
            host.vms.len().to_string(),
            host.reason.clone(),
        ]);
    }
    print_table(&view);
    let vms: Vec<&str> = document
        .hosts
        .iter()
        .flat_map(|h| h.vms.iter().map(String::as_str))
        .collect();
    println!(
        "{} VM(s) still run on outdated hosts{}",
        vms.len(),
        match vms.is_empty() {
            true => String::new(),
            false => format!(": {}", vms.join(", ")),
        }
    );
    Ok(())
}
