//! The output contracts of the commands whose stdout Drover reads, and their parsers.
//!
//! - `host_facts`: JSON `{"version": "8.2.1", "boot_id": "…", "in_maintenance": false,
//!   "cordoned": false}`, or `key=value` lines with the same keys (blank lines and `#` comments
//!   allowed, a value may be wrapped in one pair of `"` or `'`). `version` and `boot_id` are
//!   required, the other two default to false; booleans are `true`/`false`. Unknown or repeated
//!   keys are refused, so a typo (`in_maintainance`) cannot silently read as false.
//! - `discover`: a YAML or JSON mapping with `hosts:` and optional `vms:`, whose entries are
//!   exactly the inventory's host and VM entries (`{name, version, memory_mib, cpus, role?,
//!   state?, cordoned?, labels?}` and `{name, host, memory_mib, vcpus?, state?, migratable?,
//!   local_storage?, restart_policy?, anti_affinity?, allowed_hosts?}`). `cluster:`, `policy:` and `driver:` are
//!   ignored, so printing a whole inventory file is a valid answer; any other key is refused.
//! - `shutdown_vm`: a line `forced=true` says the VM ignored the graceful shutdown and was
//!   powered off; without one, the shutdown was graceful. Other lines are ignored.
//!
//! Output that was cut to the capture bound is refused rather than parsed in part. This module
//! knows nothing of processes or of which command printed the text.

use std::collections::{BTreeMap, BTreeSet};

use drover_core::execution::{Discovered, HostFacts};
use drover_core::{Host, HostId, Version, Vm};
use drover_schema::inventory::{HostEntry, VmEntry};
use serde::Deserialize;

use crate::error::{CommandError, StepContext};
use crate::runner::StepOutput;

/// What `host_facts` must print, for error messages.
pub const HOST_FACTS_EXPECTED: &str = "JSON {\"version\": \"8.2.1\", \"boot_id\": \"…\", \"in_maintenance\": false, \"cordoned\": false} or key=value lines with those keys (in_maintenance and cordoned optional)";
/// What `discover` must print, for error messages.
pub const DISCOVER_EXPECTED: &str =
    "a YAML or JSON mapping with `hosts:` and `vms:` entries written like the inventory's";
/// What `shutdown_vm` may print, for error messages.
pub const SHUTDOWN_EXPECTED: &str = "at most a line forced=true or forced=false";

/// The host facts a `host_facts` command printed.
pub fn host_facts_from_output(
    context: &StepContext,
    program: &str,
    output: &StepOutput,
) -> Result<HostFacts, CommandError> {
    complete_stdout(output)
        .and_then(parse_host_facts)
        .map_err(|problem| malformed(context, program, output, problem, HOST_FACTS_EXPECTED))
}

/// The hosts and VMs a `discover` command printed.
pub fn discovered_from_output(
    context: &StepContext,
    program: &str,
    output: &StepOutput,
) -> Result<Discovered, CommandError> {
    complete_stdout(output)
        .and_then(parse_discovered)
        .map_err(|problem| malformed(context, program, output, problem, DISCOVER_EXPECTED))
}

/// Whether a `shutdown_vm` command says it had to power the VM off.
pub fn forced_from_output(
    context: &StepContext,
    program: &str,
    output: &StepOutput,
) -> Result<bool, CommandError> {
    parse_forced(&output.stdout)
        .map_err(|problem| malformed(context, program, output, problem, SHUTDOWN_EXPECTED))
}

fn malformed(
    context: &StepContext,
    program: &str,
    output: &StepOutput,
    problem: String,
    expected: &str,
) -> CommandError {
    CommandError::MalformedOutput {
        context: Box::new(context.clone()),
        program: program.into(),
        problem,
        expected: expected.into(),
        output_tail: output.message_tail(),
    }
}

fn complete_stdout(output: &StepOutput) -> Result<&str, String> {
    match output.stdout_dropped_bytes {
        0 => Ok(&output.stdout),
        dropped => Err(format!(
            "more output than Drover keeps ({dropped} bytes were dropped)"
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFactsJson {
    version: String,
    boot_id: String,
    #[serde(default)]
    in_maintenance: bool,
    #[serde(default)]
    cordoned: bool,
}

/// Host facts from JSON or `key=value` lines; `Err` says what is wrong.
pub(crate) fn parse_host_facts(text: &str) -> Result<HostFacts, String> {
    let facts = if text.trim_start().starts_with('{') {
        serde_json::from_str::<HostFactsJson>(text).map_err(|e| format!("invalid JSON: {e}"))?
    } else {
        facts_from_key_values(text)?
    };
    let version: Version = facts.version.parse().map_err(|e| format!("{e}"))?;
    if facts.boot_id.trim().is_empty() {
        return Err("an empty boot_id".into());
    }
    Ok(HostFacts {
        version,
        boot_id: facts.boot_id.trim().to_string(),
        in_maintenance: facts.in_maintenance,
        cordoned: facts.cordoned,
    })
}

const FACT_KEYS: [&str; 4] = ["version", "boot_id", "in_maintenance", "cordoned"];

fn facts_from_key_values(text: &str) -> Result<HostFactsJson, String> {
    let pairs = key_values(text)?;
    let required = |key: &str| {
        pairs
            .get(key)
            .cloned()
            .ok_or_else(|| format!("no {key}= line"))
    };
    let optional_flag = |key: &str| pairs.get(key).map_or(Ok(false), |v| parse_flag(key, v));
    Ok(HostFactsJson {
        version: required("version")?,
        boot_id: required("boot_id")?,
        in_maintenance: optional_flag("in_maintenance")?,
        cordoned: optional_flag("cordoned")?,
    })
}

/// `key=value` lines, each known key at most once.
fn key_values(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut pairs = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {} is not key=value: {line:?}", index + 1));
        };
        let key = key.trim();
        if !FACT_KEYS.contains(&key) {
            return Err(format!(
                "unknown key {key:?} (known: {})",
                FACT_KEYS.join(", ")
            ));
        }
        if pairs
            .insert(key.to_string(), unquote(value.trim()))
            .is_some()
        {
            return Err(format!("{key} more than once"));
        }
    }
    Ok(pairs)
}

/// `"x"` or `'x'` → `x`; anything else as it is.
fn unquote(value: &str) -> String {
    let quoted = value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')));
    match quoted {
        true => value[1..value.len() - 1].to_string(),
        false => value.to_string(),
    }
}

fn parse_flag(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{key}={other}, which is neither true nor false")),
    }
}

/// A `forced=` line, the last one winning; other lines are free text.
pub(crate) fn parse_forced(text: &str) -> Result<bool, String> {
    let mut forced = false;
    for line in text.lines() {
        if let Some(value) = line.trim().strip_prefix("forced=") {
            forced = parse_flag("forced", value.trim())?;
        }
    }
    Ok(forced)
}

/// The answer of a `discover` command: the inventory's entry types, so the format is the one
/// operators already write.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoverDocument {
    hosts: Vec<HostEntry>,
    #[serde(default)]
    vms: Vec<VmEntry>,
    // Accepted and ignored, so that a whole inventory file is a valid answer.
    #[serde(default, rename = "cluster")]
    _cluster: Option<serde_yaml_ng::Value>,
    #[serde(default, rename = "policy")]
    _policy: Option<serde_yaml_ng::Value>,
    #[serde(default, rename = "driver")]
    _driver: Option<serde_yaml_ng::Value>,
}

/// Hosts and VMs from a discover document; `Err` says what is wrong.
pub(crate) fn parse_discovered(text: &str) -> Result<Discovered, String> {
    let document: DiscoverDocument =
        serde_yaml_ng::from_str(text).map_err(|e| format!("an unreadable document: {e}"))?;
    let hosts: Vec<Host> = document.hosts.into_iter().map(host_from_entry).collect();
    require_unique("host", hosts.iter().map(|h| h.name.as_str()))?;
    let host_ids: BTreeMap<&str, HostId> = hosts
        .iter()
        .enumerate()
        .map(|(index, host)| (host.name.as_str(), HostId(index as u32)))
        .collect();
    let vms = document
        .vms
        .into_iter()
        .map(|entry| vm_from_entry(entry, &host_ids))
        .collect::<Result<Vec<_>, _>>()?;
    require_unique("VM", vms.iter().map(|v| v.name.as_str()))?;
    Ok(Discovered {
        settings: None,
        hosts,
        vms,
    })
}

fn require_unique<'a>(kind: &str, names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(format!("{kind} {name:?} more than once"));
        }
    }
    Ok(())
}

fn host_from_entry(entry: HostEntry) -> Host {
    Host {
        name: entry.name,
        role: entry.role,
        version: entry.version,
        memory_mib: entry.memory_mib,
        cpus: entry.cpus,
        state: entry.state,
        cordoned: entry.cordoned,
        labels: entry.labels,
    }
}

fn vm_from_entry(entry: VmEntry, host_ids: &BTreeMap<&str, HostId>) -> Result<Vm, String> {
    let Some(host) = host_ids.get(entry.host.as_str()) else {
        return Err(format!(
            "VM {:?} on host {:?}, which is not among the hosts",
            entry.name, entry.host
        ));
    };
    let allowed_hosts = match &entry.allowed_hosts {
        None => None,
        Some(names) => {
            let mut ids = Vec::with_capacity(names.len());
            for name in names {
                let Some(id) = host_ids.get(name.as_str()) else {
                    return Err(format!(
                        "VM {:?} allows host {name:?}, which is not among the hosts",
                        entry.name
                    ));
                };
                ids.push(*id);
            }
            if !ids.contains(host) {
                return Err(format!(
                    "VM {:?} runs on {:?}, which is not among its allowed_hosts",
                    entry.name, entry.host
                ));
            }
            ids.sort_unstable();
            ids.dedup();
            Some(ids)
        }
    };
    Ok(Vm {
        name: entry.name,
        host: *host,
        memory_mib: entry.memory_mib,
        vcpus: entry.vcpus,
        state: entry.state,
        migratable: entry.migratable,
        local_storage: entry.local_storage,
        unmovable: None,
        restart_policy: entry.restart_policy,
        anti_affinity: entry.anti_affinity,
        allowed_hosts,
    })
}

#[cfg(test)]
mod tests {
    use drover_core::{HostRole, HostState, VmState};

    use super::*;

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn host_facts_as_json() {
        let facts = parse_host_facts(
            r#"{"version": "8.2.1", "boot_id": "b-1", "in_maintenance": true, "cordoned": true}"#,
        )
        .unwrap();
        assert_eq!(
            facts,
            HostFacts {
                version: version("8.2.1"),
                boot_id: "b-1".into(),
                in_maintenance: true,
                cordoned: true
            }
        );
        let minimal = parse_host_facts("\n {\"version\": \"8.0\", \"boot_id\": \"b\"}\n").unwrap();
        assert!(!minimal.in_maintenance && !minimal.cordoned);
    }

    #[test]
    fn host_facts_as_key_values() {
        let text = "# facts of xs01\nversion=\"8.2.1\"\n\nboot_id = 5c1e-77\nin_maintenance=false\ncordoned='true'\n";
        let facts = parse_host_facts(text).unwrap();
        assert_eq!(facts.version, version("8.2.1"));
        assert_eq!(facts.boot_id, "5c1e-77");
        assert!(!facts.in_maintenance && facts.cordoned);
        let minimal = parse_host_facts("version=8\nboot_id=b").unwrap();
        assert!(!minimal.in_maintenance && !minimal.cordoned);
    }

    #[test]
    fn malformed_host_facts_say_what_is_wrong() {
        let cases = [
            ("", "no version= line"),
            ("version=8.2.1", "no boot_id= line"),
            ("version=8.2.x\nboot_id=b", "not a dotted-number version"),
            ("version=8.2\nboot_id=", "empty boot_id"),
            (
                "version=8.2\nboot_id=b\nin_maintenance=yes",
                "neither true nor false",
            ),
            (
                "version=8.2\nboot_id=b\nin_maintainance=true",
                "unknown key",
            ),
            (
                "version=8.2\nversion=8.3\nboot_id=b",
                "version more than once",
            ),
            ("8.2.1", "line 1 is not key=value"),
            (r#"{"version": "8.2"}"#, "missing field `boot_id`"),
            (r#"{"version": 8.2, "boot_id": "b"}"#, "invalid type"),
            (
                r#"{"version": "8", "boot_id": "b", "hostname": "x"}"#,
                "unknown field",
            ),
            ("{not json", "invalid JSON"),
        ];
        for (text, expected) in cases {
            let problem = parse_host_facts(text).unwrap_err();
            assert!(problem.contains(expected), "{text:?}: {problem}");
        }
    }

    #[test]
    fn discover_documents_use_the_inventory_entries() {
        let text = r#"
cluster: {name: ignored, target_version: "9"}
hosts:
  - {name: xs01, role: master, version: "8.0.0", memory_mib: 4096, cpus: 4, state: maintenance, cordoned: true}
  - {name: xs02, version: "8.2.1", memory_mib: 4096, cpus: 4}
vms:
  - {name: web-01, host: xs02, memory_mib: 512, vcpus: 2, state: stopped, migratable: false}
"#;
        let discovered = parse_discovered(text).unwrap();
        assert_eq!(discovered.hosts.len(), 2);
        assert_eq!(discovered.hosts[0].role, HostRole::Master);
        assert_eq!(discovered.hosts[0].state, HostState::Maintenance);
        assert!(discovered.hosts[0].cordoned);
        assert_eq!(discovered.vms[0].host, HostId(1));
        assert_eq!(discovered.vms[0].state, VmState::Stopped);
        assert!(!discovered.vms[0].migratable);
        let json = r#"{"hosts": [{"name": "a", "version": "1", "memory_mib": 1, "cpus": 1}]}"#;
        assert_eq!(parse_discovered(json).unwrap().vms, vec![]);
    }

    #[test]
    fn bad_discover_documents_are_refused() {
        let host = "{name: a, version: \"1\", memory_mib: 1, cpus: 1}";
        let cases = [
            (
                format!("hosts: [{host}, {host}]"),
                "host \"a\" more than once",
            ),
            (
                format!("hosts: [{host}]\nvms: [{{name: v, host: b, memory_mib: 1}}]"),
                "not among the hosts",
            ),
            (
                format!("hosts: [{host}]\nextra: 1"),
                "unknown field `extra`",
            ),
            ("vms: []".to_string(), "missing field `hosts`"),
        ];
        for (text, expected) in cases {
            let problem = parse_discovered(&text).unwrap_err();
            assert!(problem.contains(expected), "{text:?}: {problem}");
        }
    }

    #[test]
    fn shutdown_output_may_say_forced() {
        assert!(!parse_forced("").unwrap());
        assert!(!parse_forced("stopping web-01\nforced=false\n").unwrap());
        assert!(parse_forced("timeout reached\nforced=true\n").unwrap());
        assert!(parse_forced("forced=maybe").is_err());
    }
}
