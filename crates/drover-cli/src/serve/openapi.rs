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
        api::clusters::MaxUnavailableBody,
        api::runs::CreateRunBody,
        api::runs::UpgradeHostBody,
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
    document
        .to_pretty_json()
        .expect("the OpenAPI document is plain data")
        + "\n"
}
