//! Every kind of bad inventory is refused with `file:line[:column]: field.path: message`.
//!
//! Each test starts from a valid inventory and breaks one thing, so the expected line and column
//! can be read off the text. The full message is compared, so wording changes are deliberate.

use std::path::Path;

use drover_schema::{load_inventory, parse_inventory, InventoryError};

/// A valid inventory in flow style, one entry per line (the lines are numbered in the tests).
const VALID: &str = r#"cluster: {name: pool-a, target_version: "8.2.1"}
policy: {max_unavailable: 1}
hosts:
  - {name: xs01, role: master, version: "8.0.0", memory_mib: 65536, cpus: 16}
  - {name: xs02, version: "8.0.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: web-01, host: xs01, memory_mib: 8192, vcpus: 4}
  - {name: web-02, host: xs02, memory_mib: 8192}
"#;

/// The same inventory in block style, where mappings start at their first key.
const VALID_BLOCK: &str = r#"cluster:
  name: pool-a
  target_version: "8.2.1"
hosts:
  - name: xs01
    role: master
    version: "8.0.0"
    memory_mib: 65536
    cpus: 16
  - name: xs02
    version: "8.0.0"
    memory_mib: 65536
    cpus: 16
vms:
  - name: web-01
    host: xs01
    memory_mib: 8192
    vcpus: 4
"#;

/// `text` with `from` (which must occur exactly once) replaced by `to`.
fn edited(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    text.replacen(from, to, 1)
}

#[track_caller]
fn assert_refused(text: &str, expected: &str) {
    let error = parse_inventory(text, "pool.yaml").expect_err("the inventory must be refused");
    assert!(error.is_bad_input());
    assert_eq!(error.to_string(), expected);
}

#[test]
fn the_valid_inventories_are_accepted() {
    parse_inventory(VALID, "pool.yaml").unwrap();
    parse_inventory(VALID_BLOCK, "pool.yaml").unwrap();
}

#[test]
fn error_parts_are_available_separately() {
    let text = edited(VALID, "host: xs02", "host: xs09");
    let error = parse_inventory(&text, "pool.yaml").unwrap_err();
    assert_eq!(error.source_name(), "pool.yaml");
    assert_eq!(error.line(), Some(8));
    assert_eq!(error.column(), Some(26));
    assert_eq!(error.field_path(), Some("vms[1].host"));
    assert!(matches!(error, InventoryError::Invalid { .. }));
}

#[test]
fn malformed_yaml() {
    let text = edited(VALID, "\"8.2.1\"}", "\"8.2.1\"");
    assert_refused(
        &text,
        "pool.yaml:2:1: syntax error: did not find expected ',' or '}', while parsing a flow mapping at line 1 column 10",
    );
}

#[test]
fn malformed_json_file_names_the_line() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken.json");
    let error = load_inventory(&path).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("{}:5:5: syntax error: ", path.display())),
        "{message}"
    );
    assert_eq!(error.line(), Some(5));
}

#[test]
fn tab_indentation_is_named() {
    let text = edited(VALID, "\n  - {name: xs02", "\n\t- {name: xs02");
    assert_refused(
        &text,
        "pool.yaml:5:1: syntax error: found character that cannot start any token, while scanning for the next token (a tab: YAML indents with spaces only)",
    );
}

#[test]
fn unreadable_file() {
    let error = load_inventory(Path::new("/nonexistent/pool.yaml")).unwrap_err();
    assert!(error.is_bad_input());
    assert_eq!(error.line(), None);
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/pool.yaml: cannot read the inventory: "),
        "{error}"
    );
}

#[test]
fn empty_file() {
    assert_refused(
        "",
        "pool.yaml:1: the file is empty: an inventory needs at least `cluster` and `hosts`",
    );
    assert_refused(
        "# nothing yet\n\n",
        "pool.yaml:1: the file is empty: an inventory needs at least `cluster` and `hosts`",
    );
}

#[test]
fn not_a_mapping() {
    assert_refused(
        "- xs01\n- xs02\n",
        "pool.yaml:1:1: invalid type: sequence, expected an inventory mapping with `cluster` and `hosts` (and optional `policy`, `vms`, `driver`)",
    );
}

#[test]
fn more_than_one_document() {
    let text = format!("{VALID}---\n{VALID}");
    assert_refused(
        &text,
        "pool.yaml:9:1: an inventory is a single YAML document, but a second one starts here",
    );
}

#[test]
fn unknown_top_level_key() {
    let text = format!("{VALID}hots: []\n");
    assert_refused(
        &text,
        "pool.yaml:9:1: unknown field `hots`, expected one of `cluster`, `policy`, `hosts`, `vms`, `driver`, `upgrade`",
    );
}

#[test]
fn unknown_nested_key() {
    let text = edited(VALID, "cpus: 16}\nvms", "cpus: 16, rack: r1}\nvms");
    assert_refused(
        &text,
        "pool.yaml:5:65: hosts[1]: unknown field `rack`, expected one of `name`, `role`, `version`, `memory_mib`, `cpus`, `state`, `cordoned`, `labels`",
    );
}

#[test]
fn key_given_twice() {
    let text = edited(VALID, "name: web-02,", "name: web-02, name: web-03,");
    assert_refused(&text, "pool.yaml:8:5: vms[1]: duplicate field `name`");
    let text = edited(
        VALID,
        "cpus: 16}\nvms",
        "cpus: 16, labels: {rack: r1, rack: r2}}\nvms",
    );
    assert_refused(
        &text,
        "pool.yaml:5:73: hosts[1].labels: duplicate label \"rack\"",
    );
}

#[test]
fn unknown_policy_key() {
    let text = edited(VALID, "max_unavailable: 1", "max_unavailable: 1, batch: 2");
    assert_refused(
        &text,
        "pool.yaml:2:30: policy: unknown field `batch`, expected one of `max_unavailable`, `cpu_overcommit`, `auto_resolve`, `upgrade_duration_secs`, `reboot_duration_secs`, `migration_bandwidth_mib_per_sec`, `migration_overhead_secs`, `max_concurrent_migrations_per_host`, `max_concurrent_migrations_per_cluster`, `vm_shutdown_secs`, `vm_boot_secs`, `mode`, `approval`, `max_step_attempts`, `retry_backoff_initial_secs`, `retry_backoff_max_secs`, `step_timeout_secs`, `migration_timeout_secs`, `upgrade_timeout_secs`, `reboot_timeout_secs`, `vm_shutdown_timeout_secs`, `unschedulable_timeout_secs`, `pending_timeout_secs`, `batch_eviction_size`, `batch_eviction_interval_secs`, `windows`, `time_zone`, `only_hosts`, `force_hosts`, `raise_compatibility_level_to`, `max_unavailable_auto_ceiling`, `host_memory_reserve_mib`, `host_memory_max_fill_percent`, `one_host_at_a_time`",
    );
}

#[test]
fn wrong_type() {
    let text = edited(
        VALID_BLOCK,
        "    cpus: 16\n  - name: xs02",
        "    cpus: many\n  - name: xs02",
    );
    assert_refused(
        &text,
        "pool.yaml:9:11: hosts[0].cpus: invalid type: string \"many\", expected a non-negative integer",
    );
    let text = edited(VALID, "max_unavailable: 1", "auto_resolve: maybe");
    assert_refused(
        &text,
        "pool.yaml:2:24: policy.auto_resolve: invalid type: string \"maybe\", expected a boolean",
    );
}

#[test]
fn wrong_type_for_a_whole_section() {
    let text = edited(VALID, "policy: {max_unavailable: 1}", "policy: [1]");
    assert_refused(
        &text,
        "pool.yaml:2:9: policy: invalid type: sequence, expected a mapping of policy settings",
    );
}

#[test]
fn negative_size() {
    let text = edited(VALID, "memory_mib: 8192}", "memory_mib: -5}");
    assert_refused(
        &text,
        "pool.yaml:8:44: vms[1].memory_mib: must be a non-negative integer, got -5",
    );
}

#[test]
fn size_too_large_for_its_type() {
    let text = edited(VALID, "vcpus: 4", "vcpus: 4294967296");
    assert_refused(
        &text,
        "pool.yaml:7:57: vms[0].vcpus: must be at most 4294967295, got 4294967296",
    );
    let text = edited(VALID, "vcpus: 4", "vcpus: 99999999999999999999999");
    assert_refused(
        &text,
        "pool.yaml:7:57: vms[0].vcpus: must be at most 4294967295, got 99999999999999999999999",
    );
}

#[test]
fn fractional_size() {
    let text = edited(VALID, "vcpus: 4", "vcpus: 2.5");
    assert_refused(
        &text,
        "pool.yaml:7:57: vms[0].vcpus: must be a non-negative integer, got 2.5",
    );
}

#[test]
fn zero_host_memory() {
    let text = edited(
        VALID_BLOCK,
        "    memory_mib: 65536\n    cpus: 16\n  - name: xs02",
        "    memory_mib: 0\n    cpus: 16\n  - name: xs02",
    );
    assert_refused(
        &text,
        "pool.yaml:8:17: hosts[0].memory_mib: must be at least 1, got 0",
    );
}

#[test]
fn zero_host_cpus() {
    let text = edited(
        VALID,
        "memory_mib: 65536, cpus: 16}\nvms",
        "memory_mib: 65536, cpus: 0}\nvms",
    );
    assert_refused(
        &text,
        "pool.yaml:5:61: hosts[1].cpus: must be at least 1, got 0",
    );
}

#[test]
fn zero_vm_memory() {
    let text = edited(VALID, "memory_mib: 8192, vcpus", "memory_mib: 0, vcpus");
    assert_refused(
        &text,
        "pool.yaml:7:44: vms[0].memory_mib: must be at least 1, got 0",
    );
}

#[test]
fn duplicate_host_names() {
    let text = edited(VALID, "name: xs02", "name: xs01");
    assert_refused(
        &text,
        "pool.yaml:5:12: hosts[1].name: duplicate host name \"xs01\": already used by hosts[0].name at line 4",
    );
}

#[test]
fn duplicate_vm_names() {
    let text = edited(
        VALID_BLOCK,
        "vcpus: 4\n",
        "vcpus: 4\n  - {name: web-01, host: xs02, memory_mib: 1024}\n",
    );
    assert_refused(
        &text,
        "pool.yaml:19:12: vms[1].name: duplicate VM name \"web-01\": already used by vms[0].name at line 15",
    );
}

#[test]
fn vm_on_unknown_host() {
    let text = edited(VALID, "host: xs02", "host: xs09");
    assert_refused(
        &text,
        "pool.yaml:8:26: vms[1].host: unknown host \"xs09\" (hosts are xs01, xs02)",
    );
}

#[test]
fn unknown_host_list_is_shortened() {
    let hosts: String = (1..=12)
        .map(|n| format!("  - {{name: h{n:02}, version: \"1\", memory_mib: 1024, cpus: 1}}\n"))
        .collect();
    let text = format!(
        "cluster: {{name: big, target_version: \"2\"}}\nhosts:\n{hosts}vms:\n  - {{name: a, host: h13, memory_mib: 1}}\n"
    );
    assert_refused(
        &text,
        "pool.yaml:16:21: vms[0].host: unknown host \"h13\" (hosts are h01, h02, h03, h04, h05, h06, h07, h08, ...)",
    );
}

#[test]
fn bad_version_string() {
    let text = edited(
        VALID,
        "\"8.0.0\", memory_mib: 65536, cpus: 16}\nvms",
        "\"8.x\", memory_mib: 65536, cpus: 16}\nvms",
    );
    assert_refused(
        &text,
        "pool.yaml:5:27: hosts[1].version: \"8.x\" is not a dotted-number version (expected e.g. \"8.2.1\")",
    );
    let text = edited(VALID, "target_version: \"8.2.1\"", "target_version: latest");
    assert_refused(
        &text,
        "pool.yaml:1:41: cluster.target_version: \"latest\" is not a dotted-number version (expected e.g. \"8.2.1\")",
    );
}

#[test]
fn bad_enum_value_lists_the_allowed_values() {
    let text = edited(VALID, "role: master", "role: boss");
    assert_refused(
        &text,
        "pool.yaml:4:24: hosts[0].role: unknown variant `boss`, expected one of `master`, `management`, `compute`",
    );
    let text = edited(VALID, "vcpus: 4}", "vcpus: 4, restart_policy: sometimes}");
    assert_refused(
        &text,
        "pool.yaml:7:76: vms[0].restart_policy: unknown variant `sometimes`, expected `always` or `manual`",
    );
}

#[test]
fn max_unavailable_zero() {
    let text = edited(VALID, "max_unavailable: 1", "max_unavailable: 0");
    assert_refused(
        &text,
        "pool.yaml:2:27: policy.max_unavailable: must be an integer >= 1, a percentage such as \"10%\" or \"auto\", got 0",
    );
}

#[test]
fn max_unavailable_negative() {
    let text = edited(VALID, "max_unavailable: 1", "max_unavailable: -2");
    assert_refused(
        &text,
        "pool.yaml:2:27: policy.max_unavailable: must be an integer >= 1, a percentage such as \"10%\" or \"auto\", got -2",
    );
}

#[test]
fn max_unavailable_other_string() {
    let text = edited(VALID, "max_unavailable: 1", "max_unavailable: all");
    assert_refused(
        &text,
        "pool.yaml:2:27: policy.max_unavailable: must be an integer >= 1, a percentage such as \"10%\" or \"auto\", got \"all\"",
    );
}

#[test]
fn cpu_overcommit_not_positive() {
    let text = edited(VALID, "max_unavailable: 1", "cpu_overcommit: 0");
    assert_refused(
        &text,
        "pool.yaml:2:26: policy.cpu_overcommit: must be a number greater than 0, got 0",
    );
    let text = edited(VALID, "max_unavailable: 1", "cpu_overcommit: -1.5");
    assert_refused(
        &text,
        "pool.yaml:2:26: policy.cpu_overcommit: must be a number greater than 0, got -1.5",
    );
}

#[test]
fn zero_migration_limits() {
    let text = edited(
        VALID,
        "max_unavailable: 1",
        "max_concurrent_migrations_per_host: 0",
    );
    assert_refused(
        &text,
        "pool.yaml:2:46: policy.max_concurrent_migrations_per_host: must be at least 1, got 0",
    );
}

#[test]
fn missing_required_fields() {
    // (text removed from VALID, expected message)
    let cases = [
        (
            "name: pool-a, ",
            "pool.yaml:1:10: cluster: missing field `name`",
        ),
        (
            ", target_version: \"8.2.1\"",
            "pool.yaml:1:10: cluster: missing field `target_version`",
        ),
        (
            "name: xs01, ",
            "pool.yaml:4:5: hosts[0]: missing field `name`",
        ),
        (
            "version: \"8.0.0\", memory_mib: 65536, cpus: 16}\nvms",
            "pool.yaml:5:5: hosts[1]: missing field `version`",
        ),
        (
            ", memory_mib: 65536, cpus: 16}\nvms",
            "pool.yaml:5:5: hosts[1]: missing field `memory_mib`",
        ),
        (
            ", cpus: 16}\nvms",
            "pool.yaml:5:5: hosts[1]: missing field `cpus`",
        ),
        (
            "name: web-02, ",
            "pool.yaml:8:5: vms[1]: missing field `name`",
        ),
        (
            "host: xs02, ",
            "pool.yaml:8:5: vms[1]: missing field `host`",
        ),
        (
            ", memory_mib: 8192}",
            "pool.yaml:8:5: vms[1]: missing field `memory_mib`",
        ),
    ];
    for (removed, expected) in cases {
        // Keep the closing brace and the `vms` key when the removed text spans them.
        let kept = removed
            .find('}')
            .map_or(String::new(), |brace| removed[brace..].to_string());
        let text = edited(VALID, removed, &kept);
        assert_refused(&text, expected);
    }
}

#[test]
fn missing_hosts() {
    let text = "cluster: {name: pool-a, target_version: \"8.2.1\"}\n";
    assert_refused(text, "pool.yaml:1:1: missing field `hosts`");
    let text = "cluster: {name: pool-a, target_version: \"8.2.1\"}\nhosts: []\n";
    assert_refused(text, "pool.yaml:2:8: hosts: must list at least one host");
}

#[test]
fn empty_name() {
    let text = edited(VALID, "name: web-01", "name: \"\"");
    assert_refused(&text, "pool.yaml:7:12: vms[0].name: must not be empty");
}

#[test]
fn host_over_memory_capacity() {
    let text = edited(VALID_BLOCK, "    memory_mib: 8192", "    memory_mib: 70000");
    assert_refused(
        &text,
        "pool.yaml:5:5: hosts[0]: host \"xs01\" is over capacity: its running VMs use 70000 MiB of memory, more than its memory_mib 65536",
    );
}

#[test]
fn memory_beyond_one_exbibyte_is_refused() {
    let text = edited(
        VALID_BLOCK,
        "    memory_mib: 8192",
        "    memory_mib: 18446744073709551615",
    );
    assert_refused(
        &text,
        "pool.yaml:17:17: vms[0].memory_mib: must be at most 1099511627776 (1 EiB), got 18446744073709551615",
    );
    let text = edited(
        VALID_BLOCK,
        "    role: master\n    version: \"8.0.0\"\n    memory_mib: 65536",
        "    role: master\n    version: \"8.0.0\"\n    memory_mib: 1099511627777",
    );
    assert_refused(
        &text,
        "pool.yaml:8:17: hosts[0].memory_mib: must be at most 1099511627776 (1 EiB), got 1099511627777",
    );
}

/// The fast reader's proptest found two VMs whose memory added up past `u64::MAX` on one host
/// (an overflow, before memory was bounded and summed in `u128`): VMs of the largest memory on
/// one host are reported over capacity with their exact sum.
#[test]
fn running_vms_of_the_largest_memory_on_one_host_are_over_capacity() {
    let text = edited(
        VALID_BLOCK,
        "    memory_mib: 8192\n    vcpus: 4\n",
        "    memory_mib: 1099511627776\n    vcpus: 4\n  - {name: web-02, host: xs01, memory_mib: 1099511627776, vcpus: 1}\n",
    );
    assert_refused(
        &text,
        "pool.yaml:5:5: hosts[0]: host \"xs01\" is over capacity: its running VMs use 2199023255552 MiB of memory, more than its memory_mib 65536",
    );
}

#[test]
fn stopped_vms_do_not_count_against_capacity() {
    let text = edited(
        VALID_BLOCK,
        "    memory_mib: 8192",
        "    memory_mib: 70000\n    state: stopped",
    );
    parse_inventory(&text, "pool.yaml").unwrap();
}

#[test]
fn host_over_vcpu_capacity() {
    let text = edited(VALID, "max_unavailable: 1", "cpu_overcommit: 1.5");
    let text = edited(&text, "vcpus: 4", "vcpus: 25");
    assert_refused(
        &text,
        "pool.yaml:4:5: hosts[0]: host \"xs01\" is over capacity: its running VMs use 25 vCPUs, more than its limit of 24 (cpus 16 × cpu_overcommit 1.5)",
    );
}

#[test]
fn numeric_versions_are_refused_when_the_written_text_is_lost() {
    // Through parse_inventory an unquoted 8.10 keeps its text; serde_json has already made it a
    // float, so reading the document type directly must refuse it rather than guess 8.1.
    let json = r#"{"cluster": {"name": "a", "target_version": 8.10}, "hosts": []}"#;
    let error = serde_json::from_str::<drover_schema::InventoryDocument>(json).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid type: floating point `8.1`, expected a quoted version such as \"8.2.1\" at line 1 column 48"
    );
}

#[test]
fn bad_window_day() {
    let text = edited(
        VALID,
        "max_unavailable: 1",
        "windows: [\"Mon-Fri 01:00-05:00\", \"Sta 22:00-06:00\"]",
    );
    assert_refused(
        &text,
        "pool.yaml:2:43: policy.windows[1]: \"Sta 22:00-06:00\": unknown day \"Sta\" (days are Mon Tue Wed Thu Fri Sat Sun)",
    );
}

#[test]
fn bad_window_hour() {
    let text = edited(
        VALID_BLOCK,
        "hosts:\n",
        "policy:\n  windows:\n    - Sat 22:00-06:00\n    - Sat 25:00-06:00\nhosts:\n",
    );
    assert_refused(
        &text,
        "pool.yaml:7:7: policy.windows[1]: \"Sat 25:00-06:00\": hour 25 is not 00..24",
    );
}

#[test]
fn window_that_opens_and_closes_at_once() {
    let text = edited(
        VALID,
        "max_unavailable: 1",
        "windows: [\"Sun 03:00-03:00\"]",
    );
    assert_refused(
        &text,
        "pool.yaml:2:20: policy.windows[0]: \"Sun 03:00-03:00\": the window opens and closes at 03:00, so it never lasts (00:00-24:00 is a whole day)",
    );
}

#[test]
fn window_that_is_not_a_text() {
    let text = edited(VALID, "max_unavailable: 1", "windows: \"Sun 03:00-04:00\"");
    assert_refused(
        &text,
        "pool.yaml:2:19: policy.windows: invalid type: string \"Sun 03:00-04:00\", expected a sequence",
    );
}

#[test]
fn unknown_time_zone() {
    let text = edited(VALID, "max_unavailable: 1", "time_zone: Mars/Olympus_Mons");
    assert_refused(
        &text,
        "pool.yaml:2:21: policy.time_zone: unknown time zone \"Mars/Olympus_Mons\" (expected an IANA name such as \"Europe/Paris\" or \"UTC\")",
    );
}

#[test]
fn empty_compatibility_level() {
    let text = edited(
        VALID,
        "max_unavailable: 1",
        "raise_compatibility_level_to: \" \"",
    );
    assert_refused(
        &text,
        "pool.yaml:2:40: policy.raise_compatibility_level_to: must not be empty",
    );
}

#[test]
fn compatibility_level_that_is_not_a_text() {
    let text = edited(
        VALID,
        "max_unavailable: 1",
        "raise_compatibility_level_to: [4]",
    );
    assert_refused(
        &text,
        "pool.yaml:2:40: policy.raise_compatibility_level_to: invalid type: sequence, expected a string",
    );
}

#[test]
fn zero_step_attempts() {
    let text = edited(VALID, "max_unavailable: 1", "max_step_attempts: 0");
    assert_refused(
        &text,
        "pool.yaml:2:29: policy.max_step_attempts: must be at least 1, got 0 (the first try is an attempt)",
    );
}

#[test]
fn zero_batch_eviction_size() {
    let text = edited(VALID, "max_unavailable: 1", "batch_eviction_size: 0");
    assert_refused(
        &text,
        "pool.yaml:2:31: policy.batch_eviction_size: must be at least 1, got 0 (no VM could ever be restarted)",
    );
}

#[test]
fn zero_timeouts() {
    let timeout_keys = [
        "step_timeout_secs",
        "migration_timeout_secs",
        "upgrade_timeout_secs",
        "reboot_timeout_secs",
        "vm_shutdown_timeout_secs",
        "unschedulable_timeout_secs",
        "pending_timeout_secs",
    ];
    for key in timeout_keys {
        let text = edited(VALID, "max_unavailable: 1", &format!("{key}: 0"));
        let column = "policy: {".len() + key.len() + ": ".len() + 1;
        assert_refused(
            &text,
            &format!("pool.yaml:2:{column}: policy.{key}: must be at least 1, got 0 (a timeout of 0 seconds would fail every step at once)"),
        );
    }
}

#[test]
fn retry_backoff_out_of_order() {
    let text = edited(
        VALID,
        "max_unavailable: 1",
        "retry_backoff_initial_secs: 600, retry_backoff_max_secs: 60",
    );
    assert_refused(
        &text,
        "pool.yaml:2:38: policy.retry_backoff_initial_secs: must be at most retry_backoff_max_secs (60), got 600",
    );
    let text = edited(VALID, "max_unavailable: 1", "retry_backoff_max_secs: 2");
    assert_refused(
        &text,
        "pool.yaml:2:34: policy.retry_backoff_max_secs: must be at least retry_backoff_initial_secs (5, its default), got 2",
    );
}

#[test]
fn bad_mode_and_approval() {
    let text = edited(VALID, "max_unavailable: 1", "mode: semi");
    assert_refused(
        &text,
        "pool.yaml:2:16: policy.mode: unknown variant `semi`, expected `automatic` or `manual`",
    );
    let text = edited(VALID, "max_unavailable: 1", "approval: yes");
    assert_refused(
        &text,
        "pool.yaml:2:20: policy.approval: unknown variant `yes`, expected `automatic` or `manual`",
    );
}

#[test]
fn cordoned_is_a_boolean() {
    let text = edited(
        VALID,
        "cpus: 16}\nvms",
        "cpus: 16, cordoned: sometimes}\nvms",
    );
    assert_refused(
        &text,
        "pool.yaml:5:75: hosts[1].cordoned: invalid type: string \"sometimes\", expected a boolean",
    );
}

#[test]
fn bad_upgrade_sections() {
    assert_refused(
        &format!("{VALID}upgrade: {{control_plane_version: five}}\n"),
        "pool.yaml:9:34: upgrade.control_plane_version: \"five\" is not a dotted-number version (expected e.g. \"8.2.1\")",
    );
    assert_refused(
        &format!("{VALID}upgrade:\n  installed_hotfixes: {{xs09: [HF-1]}}\n"),
        "pool.yaml:10:30: upgrade.installed_hotfixes.xs09: unknown host \"xs09\" (hosts are xs01, xs02)",
    );
    assert_refused(
        &format!("{VALID}upgrade: {{catalog: \"\"}}\n"),
        "pool.yaml:9:20: upgrade.catalog: must not be empty",
    );
    assert_refused(
        &format!("{VALID}upgrade: {{check_format: rpm}}\n"),
        "pool.yaml:9:25: upgrade.check_format: unknown variant `rpm`, expected `apt` or `dnf`",
    );
}

#[test]
fn max_unavailable_takes_a_percentage_of_the_hosts() {
    let text = edited(VALID, "max_unavailable: 1", "max_unavailable: 50%");
    let cluster = parse_inventory(&text, "pool.yaml").unwrap();
    assert_eq!(
        cluster.policy.max_unavailable,
        drover_core::MaxUnavailable::Percent(50)
    );
    let text = edited(VALID, "max_unavailable: 1", "max_unavailable: 0%");
    assert_refused(
        &text,
        "pool.yaml:2:27: policy.max_unavailable: a percentage of the hosts must be a whole number from 1% to 100%, got \"0%\"",
    );
    let text = edited(VALID, "max_unavailable: 1", "max_unavailable: 12.5%");
    assert_refused(
        &text,
        "pool.yaml:2:27: policy.max_unavailable: a percentage of the hosts must be a whole number from 1% to 100%, got \"12.5%\"",
    );
    let text = edited(VALID, "max_unavailable: 1", "max_unavailable: most");
    assert_refused(
        &text,
        "pool.yaml:2:27: policy.max_unavailable: must be an integer >= 1, a percentage such as \"10%\" or \"auto\", got \"most\"",
    );
}

#[test]
fn auto_ceiling_and_headroom_are_checked_where_written() {
    let text = edited(
        VALID,
        "max_unavailable: 1",
        "max_unavailable: auto, max_unavailable_auto_ceiling: 150%",
    );
    assert_refused(
        &text,
        "pool.yaml:2:63: policy.max_unavailable_auto_ceiling: a percentage of the hosts must be a whole number from 1% to 100%, got \"150%\"",
    );
    let text = edited(
        VALID,
        "max_unavailable: 1",
        "max_unavailable: auto, max_unavailable_auto_ceiling: auto",
    );
    assert_refused(
        &text,
        "pool.yaml:2:63: policy.max_unavailable_auto_ceiling: must be an integer >= 1 or a percentage such as \"10%\", got \"auto\"",
    );
    let text = edited(
        VALID,
        "max_unavailable: 1",
        "host_memory_max_fill_percent: 101",
    );
    assert_refused(
        &text,
        "pool.yaml:2:40: policy.host_memory_max_fill_percent: must be a whole number from 1 to 100, got 101",
    );
    let text = edited(VALID, "max_unavailable: 1", "host_memory_reserve_mib: -1");
    assert_refused(
        &text,
        "pool.yaml:2:35: policy.host_memory_reserve_mib: must be a non-negative integer, got -1",
    );
    let text = edited(
        VALID,
        "max_unavailable: 1",
        "max_unavailable_auto_ceiling: 25%, host_memory_reserve_mib: 4096, host_memory_max_fill_percent: 80",
    );
    let policy = parse_inventory(&text, "pool.yaml").unwrap().policy;
    assert_eq!(
        policy.max_unavailable_auto_ceiling,
        drover_core::HostShare::Percent(25)
    );
    assert_eq!(policy.host_memory_reserve_mib, 4096);
    assert_eq!(policy.host_memory_max_fill_percent, 80);
}

/// Issue 11.7: serde_yaml_ng takes time quadratic in the depth of `[[[…]]]` (over 60 s of CPU at
/// depth 100,000); the depth is bounded before it parses. The time limit is generous on purpose:
/// it catches quadratic time, not a slow machine.
#[test]
fn deep_nesting_is_refused_before_parsing_in_linear_time() {
    let depth = 100_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let text = format!("x_nested: {nested}\n{VALID}");
    let started = std::time::Instant::now();
    assert_refused(
        &text,
        "pool.yaml:1:266: mappings and sequences nest deeper than 64 levels here; an inventory needs five",
    );
    let elapsed = started.elapsed();
    assert!(elapsed.as_secs() < 10, "took {elapsed:?}");
    let json = format!("{{\"x_nested\": {nested}}}");
    let started = std::time::Instant::now();
    assert!(parse_inventory(&json, "pool.json").is_err());
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
}
