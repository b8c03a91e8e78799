//! Helpers shared by the integration tests: a small inventory, argv lists, driver configs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use drover_command::{CommandDriver, CommandDriverConfig};
use drover_core::Cluster;
use drover_schema::inventory::CommandStep;

pub const INVENTORY: &str = r#"
cluster: {name: pool-a, target_version: "8.2.1"}
hosts:
  - {name: xs01, role: master, version: "8.0.0", memory_mib: 16384, cpus: 8}
  - {name: xs02, version: "8.0.0", memory_mib: 16384, cpus: 8}
vms:
  - {name: web-01, host: xs01, memory_mib: 2048, vcpus: 2}
  - {name: db-01, host: xs02, memory_mib: 2048, vcpus: 2}
"#;

pub fn cluster() -> Cluster {
    drover_schema::parse_inventory(INVENTORY, "test.yaml").expect("the test inventory is valid")
}

pub fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| part.to_string()).collect()
}

/// A config with the given commands, a 10 s timeout and no addresses.
pub fn config(commands: &[(CommandStep, Vec<String>)]) -> CommandDriverConfig {
    CommandDriverConfig {
        commands: commands.iter().cloned().collect(),
        host_addresses: BTreeMap::new(),
        cluster: "pool-a".into(),
        step_timeout: Duration::from_secs(10),
        step_timeouts: BTreeMap::new(),
        known: cluster(),
        upgrade_plans: BTreeMap::new(),
        allow_option_like_values: false,
    }
}

pub fn driver(commands: &[(CommandStep, Vec<String>)]) -> CommandDriver {
    CommandDriver::new(config(commands)).expect("the test commands are valid")
}

/// `sh -c SCRIPT sh ARGS...`: a script that reads Drover's values as positional parameters.
pub fn script_with_args(script: &str, arguments: &[&str]) -> Vec<String> {
    let mut argv = argv(&["sh", "-c", script, "sh"]);
    argv.extend(arguments.iter().map(|a| a.to_string()));
    argv
}
