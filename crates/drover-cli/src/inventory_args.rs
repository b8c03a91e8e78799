//! The options of every command that reads an inventory (`-i`, `--max-unavailable`, `--resolve`,
//! `--host`, `--force-host`) and the inventory loaded with them applied: flags win over the file.
//!
//! Knows the flags and their wording in errors; must not plan, run or print.

use std::path::PathBuf;

use clap::Args;

use crate::exit::Failure;

/// Options shared by every command that reads an inventory.
#[derive(Args)]
pub struct InventoryArgs {
    /// Inventory file (YAML; JSON accepted).
    #[arg(short = 'i', long = "inventory", env = "DROVER_INVENTORY")]
    inventory: PathBuf,
    /// Override policy.max_unavailable: a number of hosts, a percentage of them ("10%"), or "auto".
    #[arg(long, env = "DROVER_MAX_UNAVAILABLE")]
    max_unavailable: Option<String>,
    /// Let Drover resolve resolvable precheck failures (shut down VMs that cannot move).
    #[arg(long)]
    resolve: bool,
    /// Upgrade only this host (repeatable); the others stay as they are.
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Upgrade this host even though it already runs the target (it has package updates).
    #[arg(long = "force-host", value_name = "HOST")]
    force_hosts: Vec<String>,
}

/// The whole inventory file, its cluster with the command-line overrides applied (flags win
/// over the file).
pub fn load_file(args: &InventoryArgs) -> Result<drover_schema::inventory::InventoryFile, Failure> {
    let mut file = drover_schema::inventory::load_inventory_file(&args.inventory)
        .map_err(Failure::bad_input)?;
    let cluster = &mut file.cluster;
    if let Some(value) = &args.max_unavailable {
        cluster.policy.max_unavailable = parse_max_unavailable(value)?;
    }
    if args.resolve {
        cluster.policy.auto_resolve = true;
    }
    select_hosts(cluster, &args.hosts, &args.force_hosts)?;
    drover_app::catalog::resolve_auto_compatibility_level(&mut file)?;
    Ok(file)
}

/// `--host` flags: the run upgrades only these hosts (they win over `policy.only_hosts`);
/// `--force-host` flags add to `policy.force_hosts`.
pub fn select_hosts(
    cluster: &mut drover_core::Cluster,
    hosts: &[String],
    force_hosts: &[String],
) -> Result<(), Failure> {
    for (flag, name) in hosts
        .iter()
        .map(|h| ("--host", h))
        .chain(force_hosts.iter().map(|h| ("--force-host", h)))
    {
        if cluster.host_named(name).is_none() {
            return Err(Failure::bad_input(format!(
                "{flag} {name}: no such host in cluster {}",
                cluster.name
            )));
        }
    }
    if !hosts.is_empty() {
        cluster.policy.only_hosts = Some(hosts.iter().cloned().collect());
    }
    cluster
        .policy
        .force_hosts
        .extend(force_hosts.iter().cloned());
    Ok(())
}

/// The same forms as the inventory's `policy.max_unavailable`: `3`, `10%` or `auto`.
pub fn parse_max_unavailable(value: &str) -> Result<drover_core::MaxUnavailable, Failure> {
    if value == "auto" {
        return Ok(drover_core::MaxUnavailable::Auto);
    }
    let parsed = match value.strip_suffix('%') {
        Some(percent) => percent
            .parse::<u32>()
            .ok()
            .filter(|percent| (1..=100).contains(percent))
            .map(drover_core::MaxUnavailable::Percent),
        None => value
            .parse::<u32>()
            .ok()
            .filter(|count| *count >= 1)
            .map(drover_core::MaxUnavailable::Count),
    };
    parsed.ok_or_else(|| {
        Failure::bad_input(format!(
            "--max-unavailable: expected a whole number >= 1, a percentage from 1% to 100%, or \"auto\", got {value:?}"
        ))
    })
}
