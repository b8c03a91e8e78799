//! The plan document's JSON shape is a contract: field names, string values, omitted `to`,
//! 1-based wave numbers and the downtime reasons. A hand-made plan pins the exact text; a plan
//! from the real planner checks that the shape holds for what the planner produces.

use std::collections::BTreeSet;

use drover_core::{
    Action, ActionKind, CheckStatus, Cluster, HostId, Plan, Precheck, SkipReason, SkippedHost,
    Summary, VmId, Wave, WaveKind,
};
use drover_schema::document::{self, ActionKindName, PlanDocument};
use drover_schema::parse_inventory;
use serde_json::Value;

const CLUSTER: &str = r#"
cluster: {name: pool-a, target_version: "8.2.1"}
policy: {auto_resolve: true}
hosts:
  - {name: m1, role: master, version: "8.0.0", memory_mib: 65536, cpus: 16}
  - {name: c1, version: "8.0.0", memory_mib: 65536, cpus: 16}
  - {name: c2, version: "8.0.0", memory_mib: 65536, cpus: 16}
  - {name: c3, version: "8.2.1", memory_mib: 65536, cpus: 16}
  - {name: c4, version: "8.0.0", memory_mib: 65536, cpus: 16, state: down}
  - {name: c5, version: "9.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: web, host: m1, memory_mib: 4096}
  - {name: legacy, host: c1, memory_mib: 2048, migratable: false, restart_policy: always}
  - {name: db, host: c2, memory_mib: 8192, local_storage: true}
  - {name: appliance, host: c2, memory_mib: 1024, migratable: false}
"#;

fn cluster() -> Cluster {
    parse_inventory(CLUSTER, "pool.yaml").unwrap()
}

fn action(vm: u32, kind: ActionKind, from: u32, to: Option<u32>) -> Action {
    Action {
        vm: VmId(vm),
        kind,
        from: HostId(from),
        to: to.map(HostId),
    }
}

/// One of everything: each check status, wave kind, action kind and skip reason.
fn hand_made_plan() -> Plan {
    let blocked = Precheck {
        id: "unmovable-vms",
        status: CheckStatus::Warn,
        message: "1 VM can neither migrate nor restart elsewhere: appliance".to_string(),
        resolvable: true,
        subjects: vec!["appliance".to_string()],
    };
    let versions = Precheck {
        id: "target-version",
        status: CheckStatus::Pass,
        message: "3 hosts below 8.2.1".to_string(),
        resolvable: false,
        subjects: vec![],
    };
    let waves = vec![
        Wave {
            kind: WaveKind::Master,
            hosts: vec![HostId(0)],
            actions: vec![action(0, ActionKind::Migrate, 0, Some(3))],
            returns: Vec::new(),
        },
        Wave {
            kind: WaveKind::Compute,
            hosts: vec![HostId(1), HostId(2)],
            actions: vec![
                action(1, ActionKind::Restart, 1, Some(0)),
                action(2, ActionKind::Shutdown, 2, None),
                action(3, ActionKind::Shutdown, 2, None),
            ],
            returns: Vec::new(),
        },
    ];
    let skipped = vec![
        SkippedHost {
            host: HostId(3),
            reason: SkipReason::AtTarget,
        },
        SkippedHost {
            host: HostId(4),
            reason: SkipReason::Down,
        },
        SkippedHost {
            host: HostId(5),
            reason: SkipReason::NewerThanTarget,
        },
    ];
    let summary = Summary {
        waves: 2,
        hosts_to_upgrade: 3,
        migrations: 1,
        restarts: 1,
        shutdowns: 2,
        suspends: 0,
        shelves: 0,
        returns: 0,
        migrations_lower_bound: 1,
        waves_lower_bound: 2,
        max_unavailable: 2,
    };
    Plan {
        prechecks: vec![versions, blocked],
        waves,
        skipped,
        summary,
        final_compatibility_level: None,
    }
}

#[test]
fn hand_made_plan_renders_to_the_documented_json() {
    let document = PlanDocument::new(&cluster(), &hand_made_plan());
    insta::assert_snapshot!("hand_made_plan_json", document::to_json(&document));
}

#[test]
fn a_failed_precheck_makes_the_plan_infeasible() {
    let mut plan = hand_made_plan();
    assert!(PlanDocument::new(&cluster(), &plan).feasible);
    plan.prechecks[1].status = CheckStatus::Fail;
    let json = document::to_json(&PlanDocument::new(&cluster(), &plan));
    assert!(json.contains("\"status\": \"fail\""), "{json}");
    assert!(json.contains("\"feasible\": false"), "{json}");
}

#[test]
fn json_and_yaml_read_back_to_the_same_document() {
    let document = PlanDocument::new(&cluster(), &hand_made_plan());
    let from_json: PlanDocument = serde_json::from_str(&document::to_json(&document)).unwrap();
    let from_yaml: PlanDocument = serde_yaml_ng::from_str(&document::to_yaml(&document)).unwrap();
    assert_eq!(from_json, document);
    assert_eq!(from_yaml, document);
}

#[test]
fn the_final_compatibility_level_is_written_only_when_planned() {
    let mut plan = hand_made_plan();
    let without = document::to_json(&PlanDocument::new(&cluster(), &plan));
    assert!(!without.contains("final_compatibility_level"), "{without}");
    plan.final_compatibility_level = Some("4.14".into());
    let document = PlanDocument::new(&cluster(), &plan);
    let json = document::to_json(&document);
    assert!(
        json.contains("\"final_compatibility_level\": \"4.14\""),
        "{json}"
    );
    let from_json: PlanDocument = serde_json::from_str(&json).unwrap();
    assert_eq!(from_json, document);
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

#[test]
fn planner_output_has_the_documented_shape() {
    let cluster = cluster();
    let plan = drover_core::plan(&cluster);
    let document = PlanDocument::new(&cluster, &plan);
    let json: Value = serde_json::from_str(&document::to_json(&document)).unwrap();

    let top = [
        "cluster",
        "target_version",
        "feasible",
        "prechecks",
        "waves",
        "skipped",
        "summary",
        "downtime",
    ];
    assert_eq!(keys(&json), set(&top));
    assert_eq!(json["cluster"], "pool-a");
    assert_eq!(json["target_version"], "8.2.1");
    assert_eq!(json["feasible"], plan.is_feasible());
    for precheck in json["prechecks"].as_array().unwrap() {
        assert_eq!(
            keys(precheck),
            set(&["id", "status", "message", "resolvable", "subjects"])
        );
        assert!(["pass", "warn", "fail"].contains(&precheck["status"].as_str().unwrap()));
    }
    assert_waves_have_the_documented_shape(&json);
    let summary = [
        "waves",
        "hosts_to_upgrade",
        "migrations",
        "restarts",
        "shutdowns",
        "migrations_lower_bound",
        "waves_lower_bound",
        "max_unavailable",
    ];
    assert_eq!(keys(&json["summary"]), set(&summary));
    assert_eq!(
        json["summary"]["waves"],
        json["waves"].as_array().unwrap().len()
    );
    let skipped: Vec<(&str, &str)> = json["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["host"].as_str().unwrap(),
                entry["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            ("c3", "at-target"),
            ("c4", "down"),
            ("c5", "newer-than-target")
        ]
    );
    assert_downtime_matches_actions(&document);
}

#[test]
fn planner_plan_for_the_test_cluster_uses_every_action_kind() {
    // Guards the shape test above against passing vacuously on an empty plan.
    let cluster = cluster();
    let plan = drover_core::plan(&cluster);
    assert!(plan.is_feasible());
    for kind in [
        ActionKind::Migrate,
        ActionKind::Restart,
        ActionKind::Shutdown,
    ] {
        assert!(
            plan.actions().any(|action| action.kind == kind),
            "no {kind:?}"
        );
    }
}

fn assert_waves_have_the_documented_shape(json: &Value) {
    for (index, wave) in json["waves"].as_array().unwrap().iter().enumerate() {
        assert_eq!(keys(wave), set(&["number", "kind", "hosts", "actions"]));
        assert_eq!(wave["number"], index + 1);
        assert!(["master", "management", "compute"].contains(&wave["kind"].as_str().unwrap()));
        for action in wave["actions"].as_array().unwrap() {
            let kind = action["kind"].as_str().unwrap();
            let expected: &[&str] = match kind {
                "shutdown" => &["vm", "kind", "from"],
                "migrate" | "restart" => &["vm", "kind", "from", "to"],
                other => panic!("unexpected action kind {other:?}"),
            };
            assert_eq!(keys(action), set(expected));
        }
    }
}

/// Every restart and shutdown, and nothing else, has a downtime entry with a reason.
fn assert_downtime_matches_actions(document: &PlanDocument) {
    let stopping: Vec<(&str, ActionKindName)> = document
        .waves
        .iter()
        .flat_map(|wave| &wave.actions)
        .filter(|action| action.kind != ActionKindName::Migrate)
        .map(|action| (action.vm.as_str(), action.kind))
        .collect();
    let downtime: Vec<(&str, ActionKindName)> = document
        .downtime
        .iter()
        .map(|entry| (entry.vm.as_str(), entry.kind))
        .collect();
    assert_eq!(downtime, stopping);
    assert!(document
        .downtime
        .iter()
        .all(|entry| !entry.reason.is_empty()));
    let summary = &document.summary;
    assert_eq!(
        document.downtime.len(),
        summary.restarts + summary.shutdowns
    );
}

const DRBD_RING: &str = r#"
cluster: {name: ring, target_version: "3.1"}
policy: {max_unavailable: 1}
hosts:
  - {name: n1, version: "3.0", memory_mib: 16384, cpus: 8}
  - {name: n2, version: "3.0", memory_mib: 16384, cpus: 8}
  - {name: n3, version: "3.0", memory_mib: 16384, cpus: 8}
vms:
  - {name: d1, host: n1, memory_mib: 4096, allowed_hosts: [n1, n2]}
  - {name: d2, host: n2, memory_mib: 4096, allowed_hosts: [n2, n3]}
  - {name: d3, host: n3, memory_mib: 4096, allowed_hosts: [n3, n1]}
"#;

#[test]
fn returns_are_written_per_wave_and_read_back_into_the_same_waves() {
    let cluster = parse_inventory(DRBD_RING, "ring.yaml").unwrap();
    let plan = drover_core::plan(&cluster);
    assert!(plan.summary.returns > 0, "{plan:?}");
    let document = PlanDocument::new(&cluster, &plan);
    let json: Value = serde_json::from_str(&document::to_json(&document)).unwrap();
    assert_eq!(json["summary"]["returns"], plan.summary.returns);
    let first = &json["waves"][0]["returns"][0];
    assert_eq!(keys(first), set(&["vm", "kind", "from", "to"]));
    assert_eq!(first["kind"], "migrate");
    for text in [document::to_json(&document), document::to_yaml(&document)] {
        let read: PlanDocument = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(read, document);
        assert_eq!(read.waves_on(&cluster).unwrap(), plan.waves);
    }
}

#[test]
fn a_document_without_returns_has_no_returns_key_and_reads_with_none() {
    let document = PlanDocument::new(&cluster(), &hand_made_plan());
    let json = document::to_json(&document);
    assert!(!json.contains("returns"), "{json}");
    let read: PlanDocument = serde_json::from_str(&json).unwrap();
    assert!(read.waves.iter().all(|wave| wave.returns.is_empty()));
}

#[test]
fn a_return_naming_an_unknown_vm_is_refused_by_name() {
    let cluster = parse_inventory(DRBD_RING, "ring.yaml").unwrap();
    let mut document = PlanDocument::new(&cluster, &drover_core::plan(&cluster));
    document.waves[0].returns[0].vm = "ghost".into();
    let error = document.waves_on(&cluster).unwrap_err();
    assert!(error.contains("VM ghost is not in cluster ring"), "{error}");
}
