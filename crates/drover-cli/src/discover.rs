//! `drover discover`: asks the inventory's driver what the platform looks like now and writes it
//! as an inventory (hosts and VMs as discovered, the rest from the file) that `plan` and
//! `simulate` accept, so a real run can be rehearsed offline.

use std::path::PathBuf;

use clap::Args;
use drover_engine::merge::merge_inventory_with_discovery;
use drover_schema::inventory::InventoryDocument;

use crate::exit::Failure;
use crate::output::{print_document, DocumentFormat};

#[derive(Args)]
pub struct DiscoverArgs {
    /// Inventory file naming the platform (its `driver:` section) and the cluster's target.
    #[arg(short = 'i', long = "inventory", env = "DROVER_INVENTORY")]
    inventory: PathBuf,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = DiscoverFormat::Yaml)]
    output: DiscoverFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DiscoverFormat {
    Yaml,
    Json,
}

pub fn run(args: &DiscoverArgs, state: &crate::runs::StateArgs) -> Result<(), Failure> {
    let file = drover_schema::inventory::load_inventory_file(&args.inventory)
        .map_err(Failure::bad_input)?;
    let new = drover_app::launch::NewRun {
        run_id: String::new(),
        inventory: &file,
        inventory_path: &args.inventory,
        files_prefix: &drover_app::stores::files_prefix(&state.state),
        upgrade_recipes: Default::default(),
        keep_platform_per_cluster: false,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::internal)?;
    let discovered = runtime.block_on(drover_app::launch::discover(&new))?;
    let cluster = merge_inventory_with_discovery(&file.cluster, &discovered);
    let mut document = InventoryDocument::from_cluster(&cluster);
    document.driver = Some(file.driver.clone());
    let format = match args.output {
        DiscoverFormat::Yaml => DocumentFormat::Yaml,
        DiscoverFormat::Json => DocumentFormat::Json,
    };
    print_document(&document, format)
}
