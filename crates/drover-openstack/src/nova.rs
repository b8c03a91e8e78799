//! Nova's compute services, hypervisors, servers, server groups and aggregates, with
//! Placement's inventories, as Drover's hosts and VMs: pure functions over the API's answers.
//!
//! - A host is a `nova-compute` service (`GET /os-services?binary=nova-compute`, api-ref
//!   `os-services.inc`: `id`, `host`, `zone`, `status` `enabled`/`disabled`, `state` `up`/`down`,
//!   `disabled_reason`, `forced_down`, `updated_at`). It is `Down` when its state is `down` or it
//!   is forced down; `Maintenance` when Drover's reason says so ([`REASON_MAINTENANCE`]);
//!   cordoned when the service is disabled (by anyone), except a maintenance Drover entered on
//!   an enabled service ([`REASON_MAINTENANCE_WAS_ENABLED`]). Nova has no maintenance state of
//!   its own: Drover's maintenance is a disabled service with Drover's reason.
//! - Its hypervisor (`GET /os-hypervisors/detail`, matched by `service.host`; its `id` is the
//!   compute node's UUID, which is also its Placement resource provider's UUID) gives
//!   `host_ip`. Memory and vCPUs are Placement's (`GET /resource_providers/{uuid}/inventories`:
//!   `(total - reserved) * allocation_ratio` of `MEMORY_MB` and `VCPU`), what the scheduler
//!   itself places against; the hypervisor's `memory_mb`/`vcpus` (gone at 2.88) only when
//!   Placement has no inventory.
//! - Fault domains: the service's availability zone (label `openstack.availability_zone`) and
//!   the host aggregates it belongs to (`GET /os-aggregates`, label `openstack.aggregates`).
//! - A VM is a server (`GET /servers/detail?all_tenants=True`, api-ref `servers.inc`) on its
//!   `OS-EXT-SRV-ATTR:host`, sized by its embedded `flavor` (`ram`, `vcpus`, `disk`,
//!   `ephemeral`, `swap`, 2.47+). It runs when its `status` is `ACTIVE` (or `MIGRATING`). A
//!   server booted from a volume (`image` is `""`) with no ephemeral or swap disk has no local
//!   disk; any other needs a block migration to live-migrate, which the operator allows or not
//!   (`allow_block_migration`): if not, it is `local_storage` and not migratable (the plan shuts
//!   it down instead). A server without a host (shelved offloaded, never scheduled) is left out.
//! - Server groups (`GET /os-server-groups?all_projects=True`, 2.64 `policy`) with
//!   `anti-affinity` or `soft-anti-affinity` make their members an anti-affinity group named
//!   after the group; `affinity` groups are not modelled (the scheduler keeps them together).
//! - Server names are not unique in Nova: a name two servers share is shown as `NAME.ID8`
//!   (the first 8 characters of the UUID), see [`vm_names`].
//!
//! This module knows Nova's and Placement's fields and Drover's model, and nothing of HTTP.

use std::collections::{BTreeMap, BTreeSet};

use drover_core::{Host, HostId, HostRole, HostState, RestartPolicy, Version, Vm, VmState};
use drover_driver::Discovered;
use serde_json::Value;

/// Every reason Drover writes starts with this; a service disabled with another reason was
/// disabled by someone else, and Drover never enables it.
pub const REASON_PREFIX: &str = "drover:";
/// Drover's reason for a cordon (the run is named after it).
pub const REASON_CORDONED: &str = "drover: cordoned";
/// Drover's reason for maintenance on a service that was enabled: leaving it enables it.
pub const REASON_MAINTENANCE_WAS_ENABLED: &str = "drover: maintenance; was enabled";
/// Drover's reason for maintenance on a disabled service; the previous reason follows and is
/// put back when the maintenance ends.
pub const REASON_MAINTENANCE_WAS_DISABLED: &str = "drover: maintenance; was disabled: ";
/// What every maintenance reason starts with.
pub const REASON_MAINTENANCE: &str = "drover: maintenance";
/// Host labels carrying the fault domains.
pub const ZONE_LABEL: &str = "openstack.availability_zone";
pub const AGGREGATES_LABEL: &str = "openstack.aggregates";

pub fn text<'a>(record: &'a Value, name: &str) -> &'a str {
    record.get(name).and_then(Value::as_str).unwrap_or("")
}

fn number(record: &Value, name: &str) -> u64 {
    record.get(name).and_then(Value::as_u64).unwrap_or(0)
}

/// A `nova-compute` service as `os-services` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    pub id: String,
    pub host: String,
    pub zone: String,
    pub enabled: bool,
    pub up: bool,
    pub forced_down: bool,
    pub disabled_reason: String,
    pub updated_at: String,
}

impl ServiceView {
    /// Drover disabled this service (its reason is Drover's).
    pub fn disabled_by_drover(&self) -> bool {
        !self.enabled && self.disabled_reason.starts_with(REASON_PREFIX)
    }

    pub fn in_maintenance(&self) -> bool {
        !self.enabled && self.disabled_reason.starts_with(REASON_MAINTENANCE)
    }

    /// Cordoned as Drover reports it: disabled, unless only for a maintenance Drover entered.
    pub fn cordoned(&self) -> bool {
        !self.enabled
            && !self
                .disabled_reason
                .starts_with(REASON_MAINTENANCE_WAS_ENABLED)
    }

    pub fn answers(&self) -> bool {
        self.up && !self.forced_down
    }
}

pub fn service_view(record: &Value) -> ServiceView {
    ServiceView {
        id: match record.get("id") {
            Some(Value::Number(number)) => number.to_string(),
            _ => text(record, "id").to_string(),
        },
        host: text(record, "host").to_string(),
        zone: text(record, "zone").to_string(),
        enabled: text(record, "status") == "enabled",
        up: text(record, "state") == "up",
        forced_down: record
            .get("forced_down")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        disabled_reason: text(record, "disabled_reason").to_string(),
        updated_at: text(record, "updated_at").to_string(),
    }
}

/// A server as `servers/detail` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerView {
    pub id: String,
    pub name: String,
    pub host: String,
    /// `ACTIVE`, `SHUTOFF`, `MIGRATING`, `VERIFY_RESIZE`, `ERROR`, … (api-ref `servers.inc`).
    pub status: String,
    /// `OS-EXT-STS:task_state`: empty when no operation is under way.
    pub task_state: String,
    pub memory_mib: u64,
    pub vcpus: u32,
    /// A root, ephemeral or swap disk on the compute host (not a volume).
    pub local_disk: bool,
}

impl ServerView {
    pub fn running(&self) -> bool {
        self.status == "ACTIVE" || self.status == "MIGRATING"
    }

    /// Settled: no task under way (migrating, stopping, resizing…).
    pub fn idle(&self) -> bool {
        self.task_state.is_empty()
    }
}

pub fn server_view(record: &Value) -> ServerView {
    let flavor = record.get("flavor").unwrap_or(&Value::Null);
    // `image` is "" for a server booted from a volume, else `{"id": …, "links": …}`.
    let image_booted = match record.get("image") {
        Some(Value::String(image)) => !image.is_empty(),
        Some(Value::Object(_)) => true,
        _ => false,
    };
    let local_disk = (image_booted && number(flavor, "disk") > 0)
        || number(flavor, "ephemeral") > 0
        || number(flavor, "swap") > 0;
    ServerView {
        id: text(record, "id").to_string(),
        name: text(record, "name").to_string(),
        host: text(record, "OS-EXT-SRV-ATTR:host").to_string(),
        status: text(record, "status").to_string(),
        task_state: text(record, "OS-EXT-STS:task_state").to_string(),
        memory_mib: number(flavor, "ram"),
        vcpus: u32::try_from(number(flavor, "vcpus").max(1)).unwrap_or(u32::MAX),
        local_disk,
    }
}

/// Drover's name of every server, by server id: its name, or `NAME.ID8` for a name that
/// servers share (or that is empty).
pub fn vm_names(servers: &[ServerView]) -> BTreeMap<String, String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for server in servers {
        *count.entry(server.name.as_str()).or_default() += 1;
    }
    servers
        .iter()
        .map(|server| {
            let name = if count[server.name.as_str()] == 1 && !server.name.is_empty() {
                server.name.clone()
            } else {
                format!("{}.{}", server.name, &server.id[..server.id.len().min(8)])
            };
            (server.id.clone(), name)
        })
        .collect()
}

/// Usable capacity of one resource class of an inventory: `(total - reserved) *
/// allocation_ratio` (Placement's capacity rule, api-ref "Resource provider inventories").
pub fn capacity(inventories: &Value, class: &str) -> Option<u64> {
    let inventory = inventories.get("inventories")?.get(class)?;
    let total = inventory.get("total")?.as_f64()?;
    let reserved = inventory
        .get("reserved")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let ratio = inventory
        .get("allocation_ratio")
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    // Capacity is whole units; a fractional product rounds down, as Placement's does.
    Some(((total - reserved).max(0.0) * ratio).floor() as u64)
}

/// Everything discovery reads.
pub struct DiscoveryInputs<'a> {
    pub services: &'a [Value],
    pub hypervisors: &'a [Value],
    /// Placement inventories by resource provider (= hypervisor) id.
    pub inventories: &'a BTreeMap<String, Value>,
    pub servers: &'a [Value],
    pub server_groups: &'a [Value],
    pub aggregates: &'a [Value],
    /// Each host's version (the `host_facts` command's, else the hypervisor's version).
    pub versions: &'a BTreeMap<String, Version>,
    pub allow_block_migration: bool,
}

/// The hypervisor of each compute host, by `service.host`.
pub fn hypervisors_by_host(hypervisors: &[Value]) -> BTreeMap<String, &Value> {
    hypervisors
        .iter()
        .filter_map(|hypervisor| {
            let host = hypervisor
                .get("service")
                .map(|service| text(service, "host"))?;
            Some((host.to_string(), hypervisor))
        })
        .collect()
}

pub fn discovered(inputs: &DiscoveryInputs) -> Result<Discovered, String> {
    let hypervisors = hypervisors_by_host(inputs.hypervisors);
    let mut aggregates_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for aggregate in inputs.aggregates {
        for host in aggregate
            .get("hosts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            aggregates_of
                .entry(host)
                .or_default()
                .insert(text(aggregate, "name"));
        }
    }
    let mut hosts = Vec::new();
    let mut index_of = BTreeMap::new();
    for record in inputs.services {
        let service = service_view(record);
        if service.host.is_empty() || index_of.contains_key(&service.host) {
            continue;
        }
        let hypervisor = hypervisors.get(&service.host).copied();
        let inventory = hypervisor.and_then(|h| inputs.inventories.get(text(h, "id")));
        let memory_mib = inventory
            .and_then(|inventory| capacity(inventory, "MEMORY_MB"))
            .or_else(|| hypervisor.map(|h| number(h, "memory_mb")))
            .unwrap_or(0);
        let cpus = inventory
            .and_then(|inventory| capacity(inventory, "VCPU"))
            .or_else(|| hypervisor.map(|h| number(h, "vcpus")))
            .unwrap_or(0);
        let version = inputs
            .versions
            .get(&service.host)
            .cloned()
            .ok_or_else(|| format!("compute host {}: no version", service.host))?;
        let hypervisor_up = hypervisor.is_none_or(|h| text(h, "state") != "down");
        let mut labels = BTreeMap::new();
        if !service.zone.is_empty() {
            labels.insert(ZONE_LABEL.to_string(), service.zone.clone());
        }
        if let Some(names) = aggregates_of.get(service.host.as_str()) {
            let names: Vec<&str> = names.iter().copied().collect();
            labels.insert(AGGREGATES_LABEL.to_string(), names.join(","));
        }
        index_of.insert(service.host.clone(), hosts.len());
        hosts.push(Host {
            name: service.host.clone(),
            role: HostRole::Compute,
            version,
            memory_mib,
            cpus: u32::try_from(cpus).unwrap_or(u32::MAX),
            state: if !service.answers() || !hypervisor_up {
                HostState::Down
            } else if service.in_maintenance() {
                HostState::Maintenance
            } else {
                HostState::Up
            },
            cordoned: service.cordoned(),
            labels,
        });
    }
    let views: Vec<ServerView> = inputs.servers.iter().map(server_view).collect();
    let names = vm_names(&views);
    let mut group_of: BTreeMap<&str, String> = BTreeMap::new();
    for group in inputs.server_groups {
        // 2.64+: `policy`; before: `policies` (a list of one).
        let policy = group
            .get("policy")
            .and_then(Value::as_str)
            .or_else(|| {
                group
                    .get("policies")
                    .and_then(Value::as_array)
                    .and_then(|policies| policies.first())
                    .and_then(Value::as_str)
            })
            .unwrap_or("");
        if policy != "anti-affinity" && policy != "soft-anti-affinity" {
            continue;
        }
        let label = match text(group, "name") {
            "" => text(group, "id").to_string(),
            name => name.to_string(),
        };
        for member in group
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            group_of.insert(member, label.clone());
        }
    }
    let mut vms = Vec::new();
    for server in &views {
        let Some(&host_index) = index_of.get(&server.host) else {
            continue;
        };
        let needs_block_migration = server.local_disk;
        let movable = !needs_block_migration || inputs.allow_block_migration;
        vms.push(Vm {
            name: names[&server.id].clone(),
            host: HostId(host_index as u32),
            memory_mib: server.memory_mib,
            vcpus: server.vcpus,
            state: if server.running() {
                VmState::Running
            } else {
                VmState::Stopped
            },
            migratable: movable,
            local_storage: !movable,
            unmovable: None,
            restart_policy: RestartPolicy::Manual,
            anti_affinity: group_of.get(server.id.as_str()).cloned(),
            allowed_hosts: None,
        });
    }
    Ok(Discovered {
        hosts,
        vms,
        // Nova has no cloud-wide setting that blocks a roll.
        settings: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(host: &str, status: &str, state: &str, reason: Option<&str>) -> Value {
        json!({"id": format!("uuid-{host}"), "binary": "nova-compute", "host": host, "zone": "nova",
               "status": status, "state": state, "disabled_reason": reason, "forced_down": false,
               "updated_at": "2026-12-06T10:00:00.000000"})
    }

    fn hypervisor(host: &str) -> Value {
        json!({"id": format!("rp-{host}"), "hypervisor_hostname": host, "state": "up",
               "status": "enabled", "host_ip": "127.0.0.1", "hypervisor_version": 1000,
               "service": {"host": host, "id": format!("uuid-{host}"), "disabled_reason": null}})
    }

    fn server(id: &str, name: &str, host: &str, status: &str, image: Value, disk: u64) -> Value {
        json!({"id": id, "name": name, "status": status, "OS-EXT-SRV-ATTR:host": host,
               "OS-EXT-STS:task_state": null, "image": image,
               "flavor": {"ram": 256, "vcpus": 2, "disk": disk, "ephemeral": 0, "swap": 0}})
    }

    #[test]
    fn services_servers_and_groups_map_onto_the_model() {
        let services = vec![
            service("c1", "enabled", "up", None),
            service("c2", "disabled", "up", Some(REASON_CORDONED)),
            service("c3", "disabled", "up", Some(REASON_MAINTENANCE_WAS_ENABLED)),
            service("c4", "disabled", "down", Some("hardware ticket 42")),
        ];
        let hypervisors: Vec<Value> = ["c1", "c2", "c3", "c4"].map(hypervisor).to_vec();
        let inventories = BTreeMap::from([(
            "rp-c1".to_string(),
            json!({"inventories": {
                "MEMORY_MB": {"total": 8192, "reserved": 512, "allocation_ratio": 1.5},
                "VCPU": {"total": 4, "reserved": 0, "allocation_ratio": 16.0}}}),
        )]);
        let servers = vec![
            server("aaaaaaaa-1", "web", "c1", "ACTIVE", json!(""), 0),
            server("bbbbbbbb-2", "db", "c1", "SHUTOFF", json!({"id": "img"}), 1),
            server("cccccccc-3", "dup", "c2", "ACTIVE", json!(""), 0),
            server("dddddddd-4", "dup", "c2", "ACTIVE", json!(""), 0),
            server("eeeeeeee-5", "gone", "", "SHELVED_OFFLOADED", json!(""), 0),
        ];
        let groups = vec![
            json!({"id": "g1", "name": "spread", "policy": "soft-anti-affinity",
                   "members": ["aaaaaaaa-1", "cccccccc-3"]}),
            json!({"id": "g2", "name": "together", "policy": "affinity", "members": ["bbbbbbbb-2"]}),
        ];
        let aggregates = vec![json!({"name": "rack-a", "hosts": ["c1", "c2"]})];
        let versions = ["c1", "c2", "c3", "c4"]
            .iter()
            .map(|host| (host.to_string(), "26.2.2".parse().unwrap()))
            .collect();
        let inputs = DiscoveryInputs {
            services: &services,
            hypervisors: &hypervisors,
            inventories: &inventories,
            servers: &servers,
            server_groups: &groups,
            aggregates: &aggregates,
            versions: &versions,
            allow_block_migration: false,
        };
        let found = discovered(&inputs).unwrap();
        let states: Vec<(HostState, bool)> =
            found.hosts.iter().map(|h| (h.state, h.cordoned)).collect();
        assert_eq!(
            states,
            [
                (HostState::Up, false),
                (HostState::Up, true),
                (HostState::Maintenance, false),
                (HostState::Down, true)
            ]
        );
        assert_eq!(found.hosts[0].memory_mib, 11_520);
        assert_eq!(found.hosts[0].cpus, 64);
        assert_eq!(found.hosts[0].labels[AGGREGATES_LABEL], "rack-a");
        assert_eq!(found.hosts[0].labels[ZONE_LABEL], "nova");
        let names: Vec<&str> = found.vms.iter().map(|vm| vm.name.as_str()).collect();
        assert_eq!(names, ["web", "db", "dup.cccccccc", "dup.dddddddd"]);
        let web = &found.vms[0];
        assert!(web.migratable && !web.local_storage && web.state == VmState::Running);
        assert_eq!(web.anti_affinity.as_deref(), Some("spread"));
        let db = &found.vms[1];
        assert!(!db.migratable && db.local_storage && db.state == VmState::Stopped);
        assert_eq!(db.anti_affinity, None);
        let with_block = discovered(&DiscoveryInputs {
            allow_block_migration: true,
            ..inputs
        })
        .unwrap();
        assert!(with_block.vms[1].migratable && !with_block.vms[1].local_storage);
    }

    #[test]
    fn only_drovers_reasons_count_as_drovers() {
        let mine = service_view(&service("c", "disabled", "up", Some(REASON_CORDONED)));
        assert!(mine.disabled_by_drover() && mine.cordoned() && !mine.in_maintenance());
        let theirs = service_view(&service("c", "disabled", "up", Some("RMA")));
        assert!(!theirs.disabled_by_drover() && theirs.cordoned());
        let reason = format!("{REASON_MAINTENANCE_WAS_DISABLED}{REASON_CORDONED}");
        let maintenance = service_view(&service("c", "disabled", "up", Some(&reason)));
        assert!(maintenance.in_maintenance() && maintenance.cordoned());
        let enabled = service_view(&service("c", "enabled", "up", Some(REASON_CORDONED)));
        assert!(!enabled.disabled_by_drover() && !enabled.cordoned());
    }
}
