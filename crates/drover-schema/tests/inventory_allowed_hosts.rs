//! `allowed_hosts` on a VM: read into sorted host ids, written back by name, and refused with
//! `file:line:col: field.path: message` when it names an unknown host, is empty, or leaves out
//! the VM's own host.

use drover_core::HostId;
use drover_schema::inventory::inventory_to_yaml;
use drover_schema::parse_inventory;

const VALID: &str = r#"cluster: {name: ganeti, target_version: "3.1"}
hosts:
  - {name: node1, version: "3.0", memory_mib: 65536, cpus: 16}
  - {name: node2, version: "3.0", memory_mib: 65536, cpus: 16}
  - {name: node3, version: "3.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: drbd-1, host: node1, memory_mib: 8192, allowed_hosts: [node2, node1]}
  - {name: shared-1, host: node2, memory_mib: 8192}
"#;

#[track_caller]
fn assert_refused(text: &str, expected: &str) {
    let error = parse_inventory(text, "pool.yaml").expect_err("the inventory must be refused");
    assert!(error.is_bad_input());
    assert_eq!(error.to_string(), expected);
}

#[test]
fn allowed_hosts_are_read_sorted_and_absent_means_any_host() {
    let cluster = parse_inventory(VALID, "pool.yaml").unwrap();
    assert_eq!(
        cluster.vms[0].allowed_hosts,
        Some(vec![HostId(0), HostId(1)])
    );
    assert_eq!(cluster.vms[1].allowed_hosts, None);
}

#[test]
fn allowed_hosts_are_written_back_by_name() {
    let cluster = parse_inventory(VALID, "pool.yaml").unwrap();
    let written = inventory_to_yaml(&cluster);
    assert!(written.contains("node1"), "{written}");
    let again = parse_inventory(&written, "again.yaml").unwrap();
    assert_eq!(again, cluster);
}

#[test]
fn an_unknown_allowed_host_is_refused_at_its_position() {
    let text = VALID.replace("[node2, node1]", "[node2, node9, node1]");
    assert_refused(
        &text,
        "pool.yaml:7:74: vms[0].allowed_hosts[1]: unknown host \"node9\" (hosts are node1, node2, node3)",
    );
}

#[test]
fn an_empty_allowed_hosts_list_is_refused() {
    let text = VALID.replace("[node2, node1]", "[]");
    assert_refused(
        &text,
        "pool.yaml:7:66: vms[0].allowed_hosts: must name at least one host (leave the key out to allow any host)",
    );
}

#[test]
fn allowed_hosts_without_the_vms_own_host_are_refused() {
    let text = VALID.replace("[node2, node1]", "[node2, node3]");
    assert_refused(
        &text,
        "pool.yaml:7:66: vms[0].allowed_hosts: must include the VM's own host \"node1\": a VM runs only on its allowed hosts",
    );
}
