//! Differential tests of the fast YAML reader against serde_yaml_ng: generated inventories with
//! quoted, unicode, numeric-looking and null-looking scalars, comments, anchors, tags, flow maps,
//! block scalars, CRLF line ends and tabs. Whenever the fast reader (whole, or cut into parts on
//! two threads) gives a document, serde_yaml_ng must give the same one; whatever it declines must
//! still load through the public entry point exactly as serde_yaml_ng reads it.

use proptest::prelude::*;

use super::fast_read::{read_split, read_yaml_fast};
use super::schema::InventoryDocument;
use super::{parse_inventory_file, InventoryError};

/// Scalars as written for text fields: plain, quoted, escaped, unicode, YAML-looking and
/// constructs the fast reader declines.
const NAMES: &[&str] = &[
    "h1",
    "web-01",
    "'h1'",
    "\"h1\"",
    "héllo-ünï",
    "\"caf\\u00e9\"",
    "'it''s'",
    "\"quoted # not a comment\"",
    "a:b",
    "~",
    "",
    "null",
    "123",
    "0x1F",
    "true",
    "8.10",
    "\"a: b\"",
    "name # a comment",
    "&anchor h1",
    "!custom h1",
    "!!str h1",
    "[h1]",
    "{a: b}",
    "|\n    block text",
    "\"two\n    lines\"",
    "plain\n    continued",
    "\"tab\there\"",
    "日本",
    "\u{2028}x",
];

/// Scalars as written for whole-number fields.
const NUMBERS: &[&str] = &[
    "8192",
    "0x2000",
    "0o17",
    "0b101",
    "+8192",
    "08192",
    "8_192",
    "8192.0",
    "1e3",
    "-5",
    "~",
    "",
    "'8192'",
    "!!int 8192",
    "&n 8192",
    ".inf",
    "99999999999999999999",
    "18446744073709551615",
    "4294967296",
    "7 # comment",
];

const VERSIONS: &[&str] = &[
    "8.0.0",
    "'8.2.1'",
    "\"8.2.1\"",
    "8.10",
    "8",
    "8.2.1 # note",
    "~",
    "'8.2'",
];

const BOOLEANS: &[&str] = &[
    "true", "false", "True", "FALSE", "yes", "no", "'true'", "~", "1", "",
];

const HOST_STATES: &[&str] = &["up", "maintenance", "down", "'up'", "UP", "{}", "\"down\""];

const LABELS: &[&str] = &[
    "",
    "\n    rack: r1\n    row: '2'",
    " {rack: r1, row: '2'}",
    " {rack: r1,\n    row: 2}",
    " {a:b}",
    " {}",
    "\n    rack: r1\n    rack: r2",
    " [a, b]",
    " ~",
];

const MAX_UNAVAILABLE: &[&str] = &["1", "auto", "'10%'", "0", "\"auto\"", "3 # three"];

/// Values of each list that the inventory types accept, written in YAML the fast reader takes;
/// the full lists add values the types refuse and constructs the fast reader declines.
const VALID_NAMES: &[&str] = &[
    "h1",
    "web-01",
    "'h1'",
    "\"h1\"",
    "héllo-ünï",
    "'it''s'",
    "\"quoted # not a comment\"",
    "a:b",
    "123",
    "true",
    "8.10",
    "~",
    "name # a comment",
    "日本",
];
const VALID_NUMBERS: &[&str] = &[
    "8192",
    "0x2000",
    "0o17",
    "0b101",
    "+8192",
    "7 # comment",
    "64",
];
const VALID_VERSIONS: &[&str] = &[
    "8.0.0",
    "'8.2.1'",
    "\"8.2.1\"",
    "8.10",
    "8.2.1 # note",
    "'8.2'",
];
const VALID_BOOLEANS: &[&str] = &["true", "false", "True", "FALSE"];
const VALID_HOST_STATES: &[&str] = &["up", "maintenance", "down", "'up'", "\"down\""];
const VALID_LABELS: &[&str] = &[
    "",
    "\n    rack: r1\n    row: '2'",
    " {rack: r1, row: '2'}",
    " {}",
    " ~",
];
const VALID_MAX_UNAVAILABLE: &[&str] = &["1", "auto", "'10%'", "\"auto\"", "3 # three"];

/// Mostly a value the fast reader and the types accept, now and then anything from `wild`: with
/// some thirty fields a file, about two files in three are read by the fast reader, and the rest
/// hold something it declines or the types refuse.
fn pick(
    valid: &'static [&'static str],
    wild: &'static [&'static str],
) -> BoxedStrategy<&'static str> {
    prop_oneof![
        197 => proptest::sample::select(valid),
        3 => proptest::sample::select(wild),
    ]
    .boxed()
}

#[derive(Clone, Debug)]
struct HostText {
    name: &'static str,
    version: &'static str,
    memory: &'static str,
    cpus: &'static str,
    state: Option<&'static str>,
    cordoned: Option<&'static str>,
    labels: Option<&'static str>,
    comment_before: bool,
    flow_style: bool,
}

#[derive(Clone, Debug)]
struct VmText {
    name: &'static str,
    host: &'static str,
    memory: &'static str,
    migratable: Option<&'static str>,
    trailing_comment: bool,
    blank_after: bool,
}

fn host_text() -> impl Strategy<Value = HostText> {
    (
        (
            pick(VALID_NAMES, NAMES),
            pick(VALID_VERSIONS, VERSIONS),
            pick(VALID_NUMBERS, NUMBERS),
            pick(VALID_NUMBERS, NUMBERS),
        ),
        (
            proptest::option::of(pick(VALID_HOST_STATES, HOST_STATES)),
            proptest::option::of(pick(VALID_BOOLEANS, BOOLEANS)),
            proptest::option::of(pick(VALID_LABELS, LABELS)),
        ),
        any::<bool>(),
        proptest::bool::weighted(0.1),
    )
        .prop_map(
            |(
                (name, version, memory, cpus),
                (state, cordoned, labels),
                comment_before,
                flow_style,
            )| {
                HostText {
                    name,
                    version,
                    memory,
                    cpus,
                    state,
                    cordoned,
                    labels,
                    comment_before,
                    flow_style,
                }
            },
        )
}

fn vm_text() -> impl Strategy<Value = VmText> {
    (
        pick(VALID_NAMES, NAMES),
        pick(VALID_NAMES, NAMES),
        pick(VALID_NUMBERS, NUMBERS),
        proptest::option::of(pick(VALID_BOOLEANS, BOOLEANS)),
        any::<bool>(),
        proptest::bool::weighted(0.1),
    )
        .prop_map(
            |(name, host, memory, migratable, trailing_comment, blank_after)| VmText {
                name,
                host,
                memory,
                migratable,
                trailing_comment,
                blank_after,
            },
        )
}

#[derive(Clone, Debug)]
struct InventoryText {
    cluster_name: &'static str,
    target_version: &'static str,
    max_unavailable: &'static str,
    hosts: Vec<HostText>,
    vms: Vec<VmText>,
    indented_sequences: bool,
    vms_first: bool,
    crlf: bool,
}

fn inventory_text() -> impl Strategy<Value = InventoryText> {
    (
        (
            pick(VALID_NAMES, NAMES),
            pick(VALID_VERSIONS, VERSIONS),
            pick(VALID_MAX_UNAVAILABLE, MAX_UNAVAILABLE),
        ),
        proptest::collection::vec(host_text(), 1..5),
        proptest::collection::vec(vm_text(), 0..8),
        (
            proptest::bool::weighted(0.2),
            any::<bool>(),
            proptest::bool::weighted(0.2),
        ),
    )
        .prop_map(
            |(
                (cluster_name, target_version, max_unavailable),
                hosts,
                vms,
                (indented_sequences, vms_first, crlf),
            )| InventoryText {
                cluster_name,
                target_version,
                max_unavailable,
                hosts,
                vms,
                indented_sequences,
                vms_first,
                crlf,
            },
        )
}

fn render(inventory: &InventoryText) -> String {
    let item = if inventory.indented_sequences {
        "  - "
    } else {
        "- "
    };
    let more = if inventory.indented_sequences {
        "    "
    } else {
        "  "
    };
    let mut hosts = String::from("hosts:\n");
    for host in &inventory.hosts {
        if host.comment_before {
            hosts.push_str("# a host\n");
        }
        if host.flow_style {
            hosts.push_str(&format!(
                "{item}{{name: {}, version: {}, memory_mib: {}, cpus: {}}}\n",
                host.name, host.version, host.memory, host.cpus
            ));
            continue;
        }
        hosts.push_str(&format!("{item}name: {}\n", host.name));
        hosts.push_str(&format!("{more}version: {}\n", host.version));
        hosts.push_str(&format!("{more}memory_mib: {}\n", host.memory));
        hosts.push_str(&format!("{more}cpus: {}\n", host.cpus));
        if let Some(state) = host.state {
            hosts.push_str(&format!("{more}state: {state}\n"));
        }
        if let Some(cordoned) = host.cordoned {
            hosts.push_str(&format!("{more}cordoned: {cordoned}\n"));
        }
        if let Some(labels) = host.labels {
            hosts.push_str(&format!(
                "{more}labels:{}\n",
                labels.replace("\n", &format!("\n{}", &more[2..]))
            ));
        }
    }
    let mut vms = String::from("vms:\n");
    for vm in &inventory.vms {
        vms.push_str(&format!("{item}name: {}\n", vm.name));
        vms.push_str(&format!("{more}host: {}\n", vm.host));
        vms.push_str(&format!("{more}memory_mib: {}", vm.memory));
        vms.push_str(if vm.trailing_comment {
            " # MiB\n"
        } else {
            "\n"
        });
        if let Some(migratable) = vm.migratable {
            vms.push_str(&format!("{more}migratable: {migratable}\n"));
        }
        if vm.blank_after {
            vms.push('\n');
        }
    }
    let mut text = format!(
        "# generated\ncluster:\n  name: {}\n  target_version: {}\npolicy:\n  max_unavailable: {}\n",
        inventory.cluster_name, inventory.target_version, inventory.max_unavailable
    );
    if inventory.vms_first {
        text.push_str(&vms);
        text.push_str(&hosts);
    } else {
        text.push_str(&hosts);
        text.push_str(&vms);
    }
    if inventory.crlf {
        text = text.replace('\n', "\r\n");
    }
    text
}

fn plain(text: &str) -> Option<InventoryDocument> {
    serde_yaml_ng::from_str(text).ok()
}

/// Every way the fast reader can read `text`, each of which must agree with serde_yaml_ng.
fn check_against_plain(text: &str) -> Result<(), TestCaseError> {
    let expected = plain(text);
    let whole = drover_yaml::from_str_fast::<InventoryDocument>(text, 64).ok();
    if whole.is_some() {
        prop_assert_eq!(&whole, &expected, "whole text, fast reader:\n{}", text);
    }
    // One item per part, on two threads: every cut the text allows is taken.
    if let Some(split) = drover_yaml::split_top_level_sequences(text, &["hosts", "vms"], 1) {
        let parts = read_split(&split, 2);
        if parts.is_some() {
            prop_assert_eq!(&parts, &expected, "cut text, fast reader:\n{}", text);
        }
    }
    let chosen = read_yaml_fast(text, Some(2));
    if chosen.is_some() {
        prop_assert_eq!(
            &chosen,
            &expected,
            "fast reader as loading uses it:\n{}",
            text
        );
    }
    // The public entry point: what the fast reader declined still loads through serde_yaml_ng.
    let loaded = parse_inventory_file(text, "generated.yaml");
    if let Ok(file) = &loaded {
        prop_assert!(
            expected.is_some(),
            "loaded a text serde_yaml_ng refuses:\n{}",
            text
        );
        prop_assert_eq!(&file.source_text, text);
    }
    if expected.is_none() {
        prop_assert!(
            matches!(loaded, Err(InventoryError::Invalid { .. })),
            "serde_yaml_ng refuses the text, loading must too:\n{}",
            text
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_fast_reader_agrees_with_serde_yaml_ng(inventory in inventory_text()) {
        check_against_plain(&render(&inventory))?;
    }
}

/// A text every reader takes, as `drover generate` writes it.
const GENERATED: &str = "cluster:
  name: pool-a
  target_version: 8.2.1
policy:
  max_unavailable: 1
hosts:
- name: xs01
  role: master
  version: 8.0.0
  memory_mib: 786432
  cpus: 96
  labels:
    rack: r1
- name: xs02
  version: '8.2'
  memory_mib: 786432
  cpus: 96
vms:
- name: web-01
  host: xs01
  memory_mib: 8192
  vcpus: 2
- name: \"db-01\" # the database
  host: xs02
  memory_mib: 16384
  local_storage: true
";

#[test]
fn a_plain_inventory_is_read_by_the_fast_reader_whole_and_cut() {
    let expected = plain(GENERATED).expect("serde_yaml_ng reads it");
    assert_eq!(
        drover_yaml::from_str_fast::<InventoryDocument>(GENERATED, 64).as_ref(),
        Ok(&expected)
    );
    let split = drover_yaml::split_top_level_sequences(GENERATED, &["hosts", "vms"], 1)
        .expect("the text can be cut");
    assert_eq!(split.sequences[1].len(), 2);
    assert_eq!(read_split(&split, 2), Some(expected));
}

/// Lists indented under their keys, as people often write them.
const INDENTED: &str = "cluster: {name: pool-a, target_version: 8.2.1}
hosts:
  - name: xs01
    version: 8.0.0
    memory_mib: 786432
    cpus: 96
  - {name: xs02, version: 8.0.0, memory_mib: 786432, cpus: 96}
vms:
  # the web tier
  - name: web-01
    host: xs01
    memory_mib: 8192
  - name: web-02
    host: xs02
    memory_mib: 8192
";

#[test]
fn indented_lists_are_cut_too() {
    let expected = plain(INDENTED).expect("serde_yaml_ng reads it");
    let split = drover_yaml::split_top_level_sequences(INDENTED, &["hosts", "vms"], 1)
        .expect("the text can be cut");
    assert_eq!(split.sequences[0].len(), 2);
    assert_eq!(split.sequences[1].len(), 2);
    assert_eq!(read_split(&split, 2), Some(expected));
}

#[test]
fn declined_constructs_load_through_serde_yaml_ng() {
    let with_anchor = GENERATED.replace("memory_mib: 8192", "memory_mib: &small 8192");
    let with_alias = format!("{with_anchor}- name: web-02\n  host: xs01\n  memory_mib: *small\n");
    let with_tab = GENERATED.replace("# the database", "\t# the database");
    let with_block_scalar = GENERATED.replace("name: pool-a", "name: |-\n    pool-a");
    for text in [&with_alias, &with_tab, &with_block_scalar] {
        assert!(drover_yaml::from_str_fast::<InventoryDocument>(text, 64).is_err());
        let expected = plain(text).expect("serde_yaml_ng reads it");
        let loaded = parse_inventory_file(text, "declined.yaml").expect("it loads");
        assert_eq!(loaded.cluster.vms.len(), expected.vms.len());
        assert_eq!(loaded.cluster.name, expected.cluster.name);
    }
}

#[test]
fn a_refused_value_is_reported_by_serde_yaml_ng_with_its_position() {
    let text = GENERATED.replace("memory_mib: 16384", "memory_mib: -16384");
    let error = parse_inventory_file(&text, "bad.yaml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "bad.yaml:25:15: vms[1].memory_mib: must be a non-negative integer, got -16384"
    );
}
