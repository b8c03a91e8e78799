//! `drover check` and `drover outdated`: what needs upgrading, before anyone plans.
//!
//! `check` asks every host which watched packages it could update (the inventory's
//! `upgrade.check_command`, e.g. `apt list --upgradable` or `dnf check-update`, parsed for both;
//! oVirt's `HostPackagesUpdateTimeInHours` check), says per host whether updates are available,
//! raises an `outdated` event for a host older than the target or than its peers, and says when
//! the catalog's channel offers a release newer than the target. `--write-inventory` writes the
//! inventory back with the hosts that have updates at the target added to `policy.force_hosts`,
//! so that `plan`/`run` upgrade them and leave the others alone. `outdated` lists hosts on old
//! versions and the VMs still running on them (OpenShift's outdated-workload list).
//!
//! Knows the command runner and the catalog's parsers; changes nothing on the hosts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use drover_catalog::{PackageUpdate, WatchList};
use drover_command::{ArgvTemplate, Placeholder, PlaceholderValues, RunLimits, StepContext};
use drover_core::{Cluster, HostId, Version};
use drover_schema::inventory::{CheckFormat, DriverSection, InventoryDocument, InventoryFile};
use serde::Serialize;

use crate::exit::{Failure, EXIT_CHECK_FAILED};
use crate::output::{print_document, print_table, status_cell, table, OutputFormat};

/// At most this many hosts are asked at once.
const MAX_CONCURRENT_CHECKS: usize = 16;
/// `dnf check-update` exits 100 when updates are available.
const DNF_UPDATES_AVAILABLE_EXIT_CODE: i32 = 100;

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

#[derive(Serialize)]
pub struct CheckDocument {
    pub cluster: String,
    pub target_version: String,
    /// A release of the catalog's channel newer than the target, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newer_release_available: Option<String>,
    pub hosts: Vec<HostCheck>,
    pub events: Vec<CheckEvent>,
}

#[derive(Serialize)]
pub struct HostCheck {
    pub host: String,
    pub version: String,
    /// `null` when the check command failed on a host at the target: nobody knows.
    pub updates_available: Option<bool>,
    /// Watched packages with an update (empty when no check command is configured).
    pub packages: Vec<PackageRow>,
    /// Why the check could not ask the host, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct PackageRow {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    pub available_version: String,
}

#[derive(Serialize)]
pub struct CheckEvent {
    pub host: String,
    pub event: &'static str,
    pub message: String,
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

/// Asks every host (bounded concurrency, each under `step_timeout_secs`) and assembles the
/// document. A host that cannot be asked is reported with its error, not fatal.
pub fn check_document(file: &InventoryFile) -> Result<CheckDocument, Failure> {
    let watch_list = WatchList::with_default_system(&file.upgrade.watch_packages)
        .map_err(|error| Failure::bad_input(format!("upgrade.watch_packages: {error}")))?;
    let template = check_template(file)?;
    let answers = match &template {
        Some(template) => ask_hosts(file, template)?,
        None => vec![Ok(Vec::new()); file.cluster.hosts.len()],
    };
    let cluster = &file.cluster;
    let hosts = cluster
        .host_ids()
        .zip(answers)
        .map(|(id, answer)| host_check(cluster, id, answer, &watch_list))
        .collect();
    Ok(CheckDocument {
        cluster: cluster.name.clone(),
        target_version: cluster.target_version.to_string(),
        newer_release_available: newer_release(file)?,
        events: outdated_events(cluster),
        hosts,
    })
}

fn check_template(file: &InventoryFile) -> Result<Option<ArgvTemplate>, Failure> {
    let argv = &file.upgrade.check_command;
    if argv.is_empty() {
        return Ok(None);
    }
    let available = [
        Placeholder::Host,
        Placeholder::HostAddress,
        Placeholder::Cluster,
    ];
    ArgvTemplate::parse("upgrade.check_command", &available, argv)
        .map(Some)
        .map_err(|error| Failure::bad_input(format!("upgrade.check_command: {error}")))
}

type Answer = Result<Vec<PackageUpdate>, String>;

fn ask_hosts(file: &InventoryFile, template: &ArgvTemplate) -> Result<Vec<Answer>, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::internal)?;
    let ask = HostQuery {
        template: template.clone(),
        driver: file.driver.clone(),
        cluster: file.cluster.name.clone(),
        format: file.upgrade.check_format,
        timeout: Duration::from_secs(file.cluster.policy.step_timeout_secs),
    };
    let hosts: Vec<String> = file.cluster.hosts.iter().map(|h| h.name.clone()).collect();
    Ok(runtime.block_on(async {
        let mut answers = Vec::with_capacity(hosts.len());
        for chunk in hosts.chunks(MAX_CONCURRENT_CHECKS) {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, host) in chunk.iter().enumerate() {
                let (ask, host) = (ask.clone(), host.clone());
                tasks.spawn(async move { (index, ask.ask(&host).await) });
            }
            let mut chunk_answers: Vec<Option<Answer>> = vec![None; chunk.len()];
            while let Some(joined) = tasks.join_next().await {
                if let Ok((index, answer)) = joined {
                    chunk_answers[index] = Some(answer);
                }
            }
            answers.extend(
                chunk_answers
                    .into_iter()
                    .map(|a| a.unwrap_or_else(|| Err("the check task panicked".into()))),
            );
        }
        answers
    }))
}

/// What asking one host needs, owned so that hosts are asked concurrently.
#[derive(Clone)]
struct HostQuery {
    template: ArgvTemplate,
    driver: DriverSection,
    cluster: String,
    format: Option<CheckFormat>,
    timeout: Duration,
}

impl HostQuery {
    async fn ask(&self, host: &str) -> Answer {
        let context = StepContext::new("upgrade.check_command", format!("host {host}"));
        let values = PlaceholderValues::new()
            .with(Placeholder::Host, host)
            .with(Placeholder::HostAddress, host_address(&self.driver, host))
            .with(Placeholder::Cluster, self.cluster.as_str());
        let argv = self
            .template
            .render(&context, &values)
            .map_err(|e| e.to_string())?;
        let output = drover_command::run_argv(&argv, RunLimits::with_timeout(self.timeout))
            .await
            .map_err(|error| format!("{}: {error}", argv[0]))?;
        let dnf_has_updates = !output.timed_out
            && output.exit_code == Some(DNF_UPDATES_AVAILABLE_EXIT_CODE)
            && self.format != Some(CheckFormat::Apt);
        if !output.succeeded() && !dnf_has_updates {
            let how = match (output.timed_out, output.exit_code) {
                (true, _) => format!("timed out after {}s", self.timeout.as_secs()),
                (false, Some(code)) => format!("exited with code {code}"),
                (false, None) => "was killed by a signal".to_string(),
            };
            return Err(format!("{} {how}{}", argv[0], output.message_tail()));
        }
        parse_updates(&output.stdout, self.format)
    }
}

/// The format named in the inventory, else recognised: apt prints `[upgradable from: …]` and
/// a `Listing...` header; anything else is read as dnf/yum.
fn parse_updates(stdout: &str, format: Option<CheckFormat>) -> Answer {
    let is_apt = match format {
        Some(format) => format == CheckFormat::Apt,
        None => stdout.contains("[upgradable from:") || stdout.trim_start().starts_with("Listing"),
    };
    let parsed = match is_apt {
        true => drover_catalog::parse_apt_upgradable(stdout),
        false => drover_catalog::parse_dnf_check_update(stdout),
    };
    parsed.map_err(|error| error.to_string())
}

fn host_address(driver: &DriverSection, host: &str) -> String {
    match driver {
        DriverSection::Libvirt(libvirt) => libvirt
            .hosts
            .get(host)
            .map_or(host.to_string(), |h| h.address.clone()),
        _ => host.to_string(),
    }
}

fn host_check(cluster: &Cluster, id: HostId, answer: Answer, watch_list: &WatchList) -> HostCheck {
    let host = cluster.host(id);
    let older_than_target = host.version < cluster.target_version;
    let (packages, error) = match answer {
        Ok(updates) => {
            let rows = drover_catalog::watched_updates(&updates, watch_list)
                .into_iter()
                .map(|update| PackageRow {
                    name: update.name.clone(),
                    current_version: update.current_version.clone(),
                    available_version: update.available_version.clone(),
                })
                .collect();
            (rows, None)
        }
        Err(error) => (Vec::new(), Some(error)),
    };
    // A host below the target has updates whatever its package query said; a host at the
    // target whose query failed is unknown, never "no updates".
    let updates_available = match (&error, older_than_target) {
        (_, true) => Some(true),
        (Some(_), false) => None,
        (None, false) => Some(!packages.is_empty()),
    };
    HostCheck {
        host: host.name.clone(),
        version: host.version.to_string(),
        updates_available,
        packages,
        error,
    }
}

/// An `outdated` event per host older than the target, or older than its newest peer.
fn outdated_events(cluster: &Cluster) -> Vec<CheckEvent> {
    let newest: Option<&Version> = cluster.hosts.iter().map(|h| &h.version).max();
    cluster
        .hosts
        .iter()
        .filter_map(|host| {
            let message = if host.version < cluster.target_version {
                format!(
                    "runs {}, older than the target {}",
                    host.version, cluster.target_version
                )
            } else if newest.is_some_and(|n| host.version < *n) {
                format!("runs {}, older than its peers ({})", host.version, newest?)
            } else {
                return None;
            };
            Some(CheckEvent {
                host: host.name.clone(),
                event: "outdated",
                message,
            })
        })
        .collect()
}

fn newer_release(file: &InventoryFile) -> Result<Option<String>, Failure> {
    let Some(catalog) = crate::catalog_view::load_catalog(&file.upgrade)? else {
        return Ok(None);
    };
    let Some(channel) = &file.upgrade.channel else {
        return Ok(None);
    };
    Ok(
        drover_catalog::is_newer_available(&catalog, channel, &file.cluster.target_version)
            .map(|version| version.to_string()),
    )
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
