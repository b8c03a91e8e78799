//! The registry as its callers use it: every built-in driver is registered like any future one,
//! a new run's files are placed by the driver's own section, and what a run records reopens it.

use std::collections::BTreeMap;
use std::path::Path;

use drover_drivers::{OpenContext, PrepareContext, RunDriver};
use drover_schema::inventory::{parse_inventory_file, DriverSection};

const SIMULATED: &str = "cluster: {name: pool-a, target_version: 8.2.1}
hosts:
  - {name: h1, role: master, version: 8.2.0, memory_mib: 65536, cpus: 16}
  - {name: h2, version: 8.2.0, memory_mib: 65536, cpus: 16}
vms:
  - {name: vm1, host: h2, memory_mib: 4096, vcpus: 2}
driver: {kind: simulator, seed: 7, time_scale: 0}
";

fn context<'a>(inventory: &'a Path, prefix: &'a Path, per_cluster: bool) -> PrepareContext<'a> {
    PrepareContext {
        inventory_path: inventory,
        files_prefix: prefix,
        cluster: "pool-a",
        now_ms: 1_000,
        keep_platform_per_cluster: per_cluster,
    }
}

#[test]
fn the_built_in_drivers_are_registered_by_kind() {
    let kinds = drover_drivers::kinds();
    assert!(kinds.contains(&"simulator"), "{kinds:?}");
    assert!(kinds.contains(&"command"), "{kinds:?}");
    assert_eq!(cfg!(feature = "libvirt"), kinds.contains(&"libvirt"));
    let unknown = drover_drivers::registration_of_kind("vmware")
        .err()
        .expect("not registered");
    assert!(unknown.to_string().contains("vmware"), "{unknown}");
}

#[test]
fn the_simulators_world_is_placed_per_run_or_per_cluster() {
    let file = parse_inventory_file(SIMULATED, "inventory.yaml").expect("inventory");
    let prefix = Path::new("/var/lib/drover/drover.db");
    let inventory = Path::new("/etc/drover/pool-a.yaml");
    let per_run = drover_drivers::prepare(
        &file.driver,
        &context(inventory, prefix, false),
        BTreeMap::new(),
    )
    .expect("prepared");
    assert_eq!(
        per_run.platform_file(),
        Some(Path::new("/var/lib/drover/drover.db.pool-a.1000.sim.json"))
    );
    assert!(per_run.virtual_time());
    let per_cluster = drover_drivers::prepare(
        &file.driver,
        &context(inventory, prefix, true),
        BTreeMap::new(),
    )
    .expect("prepared");
    assert_eq!(
        per_cluster.platform_file(),
        Some(Path::new("/var/lib/drover/drover.db.pool-a.sim.json"))
    );
}

#[test]
fn what_a_run_records_reopens_the_same_driver() {
    let file = parse_inventory_file(SIMULATED, "inventory.yaml").expect("inventory");
    let directory = std::env::temp_dir().join(format!("drover-drivers-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("directory");
    let prefix = directory.join("drover.db");
    let prepared = drover_drivers::prepare(
        &file.driver,
        &context(Path::new("inventory.yaml"), &prefix, false),
        BTreeMap::new(),
    )
    .expect("prepared");
    let mut extra = serde_json::Map::new();
    extra.insert("created_by".into(), "alice".into());
    let options = prepared.options_json(extra);
    let recorded =
        RunDriver::from_options(&options, || Err("not needed".into())).expect("reads back");
    assert_eq!(recorded.section, prepared.section);
    assert_eq!(recorded.wall_anchor_ms, 1_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let discovered = runtime.block_on(async {
        let driver = drover_drivers::open(
            &recorded,
            &OpenContext {
                cluster: &file.cluster,
                clock: recorded.new_clock(),
                read_only: true,
            },
        )
        .expect("opens");
        assert_eq!(driver.kind(), "simulator");
        driver.discover().await.expect("discovers")
    });
    assert_eq!(discovered.hosts.len(), 2);
    std::fs::remove_dir_all(&directory).ok();
}

#[test]
fn options_of_earlier_drovers_take_the_section_from_their_inventory() {
    let earlier = r#"{"kind":"simulator","time_scale":0.0,"wall_anchor_ms":5,"platform_anchor_ms":5,"seed":9,"state_file":"/tmp/w.sim.json"}"#;
    let recorded = RunDriver::from_options(earlier, || {
        Ok(parse_inventory_file(SIMULATED, "stored")
            .map_err(|e| e.to_string())?
            .driver)
    })
    .expect("reads back");
    let DriverSection::Simulator(simulator) = &recorded.section else {
        panic!("a simulator section: {:?}", recorded.section);
    };
    assert_eq!(simulator.seed, 9);
    assert_eq!(recorded.platform_file(), Some(Path::new("/tmp/w.sim.json")));
}
