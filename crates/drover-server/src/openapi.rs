//! The OpenAPI 3.1 document of the API, generated from the handlers' and views' annotations
//! (utoipa). Served at `/api/v1/openapi.json` and kept in the repository at
//! `docs/openapi.json`; a test fails when the two differ.
//!
//! This module only lists what the API has; it must not define behaviour.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api;
use super::problem::{FieldError, Problem};
use super::views;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Drover API",
        description = "Rolling upgrades of virtualization clusters: clusters, plans, runs, operator actions and live events."
    ),
    paths(
        api::whoami,
        api::clusters::list,
        api::clusters::detail,
        api::clusters::inventory,
        api::clusters::hosts,
        api::clusters::host,
        api::clusters::plan,
        api::clusters::last_check,
        api::clusters::check_now,
        api::runs::create,
        api::runs::upgrade_host,
        api::runs::list,
        api::runs::view,
        api::runs::report,
        api::runs::run_action,
        api::runs::host_action,
        api::events::stream,
    ),
    components(schemas(
        Problem,
        FieldError,
        views::ClusterList,
        views::ClusterSummary,
        views::ClusterDetail,
        views::HostList,
        views::HostView,
        views::RunList,
        views::RunSummary,
        views::RunView,
        views::RunHostView,
        views::ConditionView,
        views::WaveView,
        views::MigrationView,
        views::VmDownView,
        views::VmActionView,
        views::TimelineView,
        views::WhoAmI,
        views::Accepted,
        api::clusters::PlanBody,
        api::runs::CreateRunBody,
        api::runs::UpgradeHostBody,
        api::runs::RunActionName,
        api::runs::HostActionName,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Who is calling"),
        (name = "clusters", description = "Served clusters, hosts, inventories and plans"),
        (name = "runs", description = "Runs, their live events and operator actions"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as served and as kept in `docs/openapi.json`.
pub fn document_json() -> String {
    let mut document = ApiDoc::openapi();
    // The version in the document would change with every release and make the kept copy
    // drift for no reason.
    document.info.version = "v1".into();
    let mut document = serde_json::to_value(&document).expect("the OpenAPI document is plain data");
    complete_responses(&mut document);
    state_body_constraints(&mut document);
    serde_json::to_string_pretty(&document).expect("the OpenAPI document is plain data") + "\n"
}

/// Problems every operation can answer (middleware and authentication run before handlers).
const PROBLEMS_OF_EVERY_OPERATION: &[(&str, &str)] = &[
    ("400", "A malformed request: the problem names the field"),
    ("401", "No token, or a token that matches none configured"),
    (
        "403",
        "A viewer token on an operator call, or a request from another web origin",
    ),
    ("421", "A Host header this server does not answer to"),
    ("500", "An internal error"),
];

/// Problems of operations that take a body (every POST).
const PROBLEMS_OF_BODIES: &[(&str, &str)] = &[
    ("413", "The request body is larger than 64 KiB"),
    ("415", "The request body is not application/json"),
];

/// Every error an operation can answer is documented, as `application/problem+json` (the
/// annotations name the handlers' own; the middleware's are the same for every operation).
fn complete_responses(document: &mut serde_json::Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let has_path_parameters = path.contains('{');
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in operations.iter_mut() {
            let mut added: Vec<(&str, &str)> = PROBLEMS_OF_EVERY_OPERATION.to_vec();
            if method == "post" {
                added.extend_from_slice(PROBLEMS_OF_BODIES);
            }
            if has_path_parameters {
                added.push(("404", "No such cluster, host, run or action"));
            }
            let responses = &mut operation["responses"];
            for (status, description) in added {
                if responses.get(status).is_none() {
                    responses[status] = serde_json::json!({"description": description});
                }
            }
            if let Some(responses) = responses.as_object_mut() {
                for (status, response) in responses.iter_mut() {
                    if status.starts_with('4') || status.starts_with('5') {
                        response["content"] = problem_content();
                    }
                }
            }
            // Every body is optional: an empty body means `{}` (every field has a default).
            if let Some(body) = operation.get_mut("requestBody") {
                body["required"] = false.into();
            }
        }
    }
}

/// Each Server-Sent Event (`event` and `data`, as OpenAPI 3.1 tools read a stream): `run`
/// carries a RunView, `step` a host's step change, `end` how the run ended, each as JSON.
fn describe_event_stream(document: &mut serde_json::Value) {
    let json_data = |schema: serde_json::Value| {
        serde_json::json!({
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": schema
        })
    };
    let event = |name: &str, schema: serde_json::Value| {
        serde_json::json!({
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"const": name},
                "data": json_data(schema),
                "id": {"type": "string"},
                "retry": {"type": "integer"}
            }
        })
    };
    let schemas = &mut document["components"]["schemas"];
    schemas["StepEvent"] = serde_json::json!({
        "type": "object",
        "required": ["host", "step", "at_ms"],
        "properties": {
            "host": {"type": "string"},
            "step": {"type": "string"},
            "at_ms": {"type": "integer", "minimum": 0}
        }
    });
    schemas["EndEvent"] = serde_json::json!({
        "type": "object",
        "required": ["run", "phase"],
        "properties": {"run": {"type": "string"}, "phase": {"type": "string"}}
    });
    schemas["RunEvent"] = serde_json::json!({
        "description": "One Server-Sent Event of a run's stream.",
        "oneOf": [
            event("run", serde_json::json!({"$ref": "#/components/schemas/RunView"})),
            event("step", serde_json::json!({"$ref": "#/components/schemas/StepEvent"})),
            event("end", serde_json::json!({"$ref": "#/components/schemas/EndEvent"}))
        ]
    });
    let stream = &mut document["paths"]["/api/v1/runs/{run}/events"]["get"]["responses"]["200"]
        ["content"]["text/event-stream"];
    stream["schema"] = serde_json::json!({"$ref": "#/components/schemas/RunEvent"});
}

fn problem_content() -> serde_json::Value {
    serde_json::json!({
        super::problem::PROBLEM_CONTENT_TYPE: {
            "schema": {"$ref": "#/components/schemas/Problem"}
        }
    })
}

/// Constraints the handlers check that the derived schemas cannot say.
fn state_body_constraints(document: &mut serde_json::Value) {
    let schemas = &mut document["components"]["schemas"];
    schemas["MaxUnavailableBody"] = serde_json::json!({
        "description": "A number of hosts (at least 1), a percentage of the cluster's hosts (\"10%\", rounded down, at least 1 host), or \"auto\" (the largest batch capacity allows, up to the policy's auto ceiling).",
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": u32::MAX},
            {"type": "string", "pattern": "^(auto|([1-9][0-9]?|100)%)$"}
        ]
    });
    describe_event_stream(document);
    let schemas = &mut document["components"]["schemas"];
    schemas["PlanBody"]["properties"]["max_unavailable"] = serde_json::json!({
        "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/MaxUnavailableBody"}]
    });
    // One rule for run ids, the CLI's too (`drover_app::run_id`).
    for body in ["CreateRunBody", "UpgradeHostBody"] {
        let run_id = &mut schemas[body]["properties"]["run_id"];
        run_id["pattern"] = drover_app::run_id::RUN_ID_PATTERN.into();
        run_id["maxLength"] = drover_app::run_id::RUN_ID_MAX_CHARS.into();
    }
}
