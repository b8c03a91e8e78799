//! The KubeVirt / OpenShift Virtualization front-end: the emulated cluster
//! ([`cluster::ControlPlane`]) served over HTTP on loopback as a Kubernetes API server serves
//! it, the subset Drover's driver, kubectl and the official Python client use:
//! - discovery: `/version`, `/api` (`APIVersions`), `/apis` (`APIGroupList`), `/apis/GROUP`
//!   (`APIGroup`), `/api/v1` and `/apis/GROUP/VERSION` (`APIResourceList`, with the
//!   `pods/eviction` subresource in group `policy` version `v1` and kind `Eviction`, which
//!   `kubectl drain` looks for before it evicts);
//! - `Authorization: Bearer TOKEN` on everything but `/version` and the emulator's own
//!   counters; a wrong or missing token is answered `401` with the `Unauthorized` Status;
//! - per resource (`cluster::RESOURCES`): get, list (`labelSelector`, `fieldSelector`, `limit`,
//!   `continue`, the list's `resourceVersion`), watch (`?watch=true`, from a `resourceVersion`
//!   or from the current state as `ADDED` events, `timeoutSeconds`; one JSON event a line, a
//!   `410 Expired` ERROR event when the version is too old or the watcher falls behind), and
//!   the changing verbs `cluster` serves (node PATCH/PUT, pod eviction, migration create and
//!   delete, HyperConverged PATCH/PUT and its `status` subresource, MachineConfigPool create,
//!   PATCH/PUT, delete and its `status` subresource);
//! - errors as Kubernetes `Status` bodies (`store`); JSON only: a client that asks for
//!   protobuf or a `Table` as well gets JSON, as it accepts.
//!
//! KubeVirt's aggregated API: `PUT /apis/subresources.kubevirt.io/v1/namespaces/NS/
//! virtualmachines/NAME/start` and `…/stop` (what `virtctl start`/`stop` send).
//!
//! Not Kubernetes: `GET /emulator/calls` (the emulator's request and watch-event counters) and
//! `POST /emulator/nodes/NAME/upgrade` and `…/reboot` (stand for a node's upgrade and reboot
//! command steps), `POST /emulator/machineconfigpools/render` (stands for the cluster update
//! that renders the target's MachineConfigs: the target into every MachineConfigPool).
//!
//! Bounded: request bodies ([`MAX_BODY_BYTES`]), requests in progress at once
//! ([`MAX_REQUESTS_IN_PROGRESS`], a further one is answered 429), watches open at once
//! ([`MAX_WATCHES`]) and their length ([`MAX_WATCH_SECS`]), events kept and migrations kept
//! (in `store` and `cluster`).
//!
//! This module must not know the simulator: it speaks to the control plane only.

pub mod cluster;
pub mod machineconfig;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, OriginalUri, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::EmulatorError;
pub use cluster::{ControlPlane, ResourceKind, RESOURCES};
use store::{Page, Selection};

/// The largest request body read; patches, evictions and migrations are small.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Requests answered at once besides watches; the rest are refused with 429.
pub const MAX_REQUESTS_IN_PROGRESS: usize = 64;
/// Watches open at once; a further one is refused with 429.
pub const MAX_WATCHES: usize = 64;
/// The longest a watch stays open (the API server's `--min-request-timeout` default).
pub const MAX_WATCH_SECS: u64 = 1_800;
/// How often the world is rendered again while anyone watches.
const WATCH_REFRESH: Duration = Duration::from_millis(250);
/// The Kubernetes version `/version` reports (OpenShift 4.16's).
const KUBERNETES_VERSION: (&str, &str) = ("1", "29");

#[derive(Clone)]
struct Served {
    control_plane: Arc<ControlPlane>,
    token: Arc<String>,
    in_progress: Arc<Semaphore>,
    watches: Arc<Semaphore>,
}

/// The router serving `control_plane` to holders of `token`.
pub fn router(control_plane: Arc<ControlPlane>, token: String) -> Router {
    let served = Served {
        control_plane,
        token: Arc::new(token),
        in_progress: Arc::new(Semaphore::new(MAX_REQUESTS_IN_PROGRESS)),
        watches: Arc::new(Semaphore::new(MAX_WATCHES)),
    };
    let refresher = served.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(WATCH_REFRESH).await;
            if refresher.watches.available_permits() < MAX_WATCHES {
                let _ = refresher.control_plane.refresh().await;
            }
        }
    });
    Router::new()
        .fallback(answer)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(served)
}

/// A self-signed certificate for `127.0.0.1` and `localhost`: the PEM certificate (which
/// clients trust as their CA) and the PEM key. Kubernetes API servers serve HTTPS only, and
/// kubectl sends its bearer token over HTTPS only.
pub fn self_signed_certificate() -> Result<(String, String), EmulatorError> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(|error| EmulatorError::Serve(format!("no certificate: {error}")))?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
}

/// Serves `control_plane` over HTTPS with `certificate_pem`/`key_pem` on `listener` until the
/// process ends.
pub async fn serve(
    listener: std::net::TcpListener,
    control_plane: Arc<ControlPlane>,
    token: String,
    certificate_pem: &str,
    key_pem: &str,
) -> Result<(), EmulatorError> {
    control_plane
        .refresh()
        .await
        .map_err(|(_, status)| EmulatorError::World(status["message"].to_string()))?;
    // One process-wide provider; a second install (tests in one process) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(
        certificate_pem.as_bytes().to_vec(),
        key_pem.as_bytes().to_vec(),
    )
    .await
    .map_err(|error| EmulatorError::Serve(format!("TLS: {error}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|error| EmulatorError::Serve(error.to_string()))?;
    axum_server::from_tcp_rustls(listener, config)
        .map_err(|error| EmulatorError::Serve(error.to_string()))?
        .serve(router(control_plane, token).into_make_service())
        .await
        .map_err(|source| EmulatorError::Serve(source.to_string()))
}

fn json_response(status: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn failure(answer: (u16, Value)) -> Response {
    json_response(answer.0, &answer.1)
}

fn too_many(what: &str) -> Response {
    failure((
        429,
        store::status_failure(
            429,
            "TooManyRequests",
            &format!("too many {what} at once; try again later"),
            Some(json!({"retryAfterSeconds": 1})),
        ),
    ))
}

fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut pairs: Vec<(&str, &str)> = RESOURCES
        .iter()
        .filter(|resource| !resource.group.is_empty())
        .map(|resource| (resource.group, resource.version))
        .collect();
    pairs.dedup();
    pairs.sort();
    pairs.dedup();
    pairs
}

fn api_group(group: &str, version: &str) -> Value {
    let group_version = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [group_version], "preferredVersion": group_version})
}

fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|resource| resource.group == group && resource.version == version)
        .map(|resource| {
            json!({"name": resource.plural, "singularName": resource.singular,
                "namespaced": resource.namespaced, "kind": resource.kind,
                "verbs": resource.verbs, "shortNames": resource.short_names})
        })
        .collect();
    if resources.is_empty() {
        return None;
    }
    match (group, version) {
        ("", "v1") => resources.push(json!({"name": "pods/eviction", "singularName": "",
            "namespaced": true, "group": "policy", "version": "v1", "kind": "Eviction",
            "verbs": ["create"]})),
        ("hco.kubevirt.io", _) => resources.push(json!({"name": "hyperconvergeds/status",
            "singularName": "", "namespaced": true, "kind": "HyperConverged",
            "verbs": ["get", "patch", "update"]})),
        ("machineconfiguration.openshift.io", _) => resources.push(json!({
            "name": "machineconfigpools/status", "singularName": "", "namespaced": false,
            "kind": "MachineConfigPool", "verbs": ["get", "patch", "update"]})),
        _ => {}
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": group_version, "resources": resources}))
}

/// A decoded resource path.
struct Target {
    resource: &'static ResourceKind,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    /// The path with namespaces and names as placeholders, for the call counter.
    shape: String,
}

fn not_found_path(path: &str) -> (u16, Value) {
    (
        404,
        store::status_failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(
                json!({"causes": [{"reason": "UnexpectedServerResponse", "message": format!("404 page not found: {path}")}]}),
            ),
        ),
    )
}

fn read_target(group: &str, version: &str, rest: &[&str], prefix: &str) -> Option<Target> {
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => {
            (Some(namespace.to_string()), rest)
        }
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, subresource] => (
            *plural,
            Some(name.to_string()),
            Some(subresource.to_string()),
        ),
        _ => return None,
    };
    let resource = cluster::resource_kind(group, version, plural)?;
    if namespace.is_some() && !resource.namespaced {
        return None;
    }
    if name.is_some() && resource.namespaced && namespace.is_none() {
        return None;
    }
    let mut shape = prefix.to_string();
    if namespace.is_some() {
        shape.push_str("/namespaces/{namespace}");
    }
    shape.push('/');
    shape.push_str(plural);
    if name.is_some() {
        shape.push_str("/{name}");
    }
    if let Some(subresource) = &subresource {
        shape.push('/');
        shape.push_str(subresource);
    }
    Some(Target {
        resource,
        namespace,
        name,
        subresource,
        shape,
    })
}

async fn answer(
    State(served): State<Served>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let path = uri.path().to_string();
    let segments: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    let control_plane = &served.control_plane;
    match segments.as_slice() {
        ["version"] => {
            control_plane.count_call(method.as_str(), "/version");
            let (major, minor) = KUBERNETES_VERSION;
            return json_response(
                200,
                &json!({"major": major, "minor": minor, "gitVersion": format!("v{major}.{minor}.0"),
                    "platform": "linux/amd64", "goVersion": "go1.21"}),
            );
        }
        ["emulator", "calls"] => return json_response(200, &control_plane.counters()),
        _ => {}
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if token != served.token.as_str() {
        control_plane.count_call(method.as_str(), "(unauthorized)");
        return failure((
            401,
            store::status_failure(401, "Unauthorized", "Unauthorized", None),
        ));
    }
    // The API server reads `watch` with Go's strconv.ParseBool (the Python client sends True).
    let watch = matches!(
        query.get("watch").map(String::as_str),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True")
    );
    if watch {
        return watch_response(&served, &segments, &path, &query).await;
    }
    let Ok(_permit) = served.in_progress.try_acquire() else {
        return too_many("requests");
    };
    match segments.as_slice() {
        ["emulator", "nodes", node, "upgrade"] if method == Method::POST => {
            control_plane.count_call("POST", "/emulator/nodes/{name}/upgrade");
            return failure(control_plane.upgrade_node(node).await);
        }
        ["emulator", "machineconfigpools", "render"] if method == Method::POST => {
            control_plane.count_call("POST", "/emulator/machineconfigpools/render");
            let rendered = control_plane.render_machine_config_target().await;
            return json_response(200, &json!({"rendered": rendered}));
        }
        ["emulator", "nodes", node, "reboot"] if method == Method::POST => {
            control_plane.count_call("POST", "/emulator/nodes/{name}/reboot");
            return failure(control_plane.reboot_node(node).await);
        }
        ["api"] => {
            control_plane.count_call(method.as_str(), "/api");
            let host = headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("127.0.0.1");
            return json_response(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}),
            );
        }
        ["apis"] => {
            control_plane.count_call(method.as_str(), "/apis");
            let groups: Vec<Value> = group_versions()
                .into_iter()
                .map(|(group, version)| api_group(group, version))
                .collect();
            return json_response(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            );
        }
        ["apis", group] => {
            control_plane.count_call(method.as_str(), "/apis/{group}");
            return match group_versions()
                .into_iter()
                .find(|(known, _)| known == group)
            {
                Some((group, version)) => {
                    let mut document = api_group(group, version);
                    document["kind"] = json!("APIGroup");
                    document["apiVersion"] = json!("v1");
                    json_response(200, &document)
                }
                None => failure(not_found_path(&path)),
            };
        }
        ["api", version] | ["apis", _, version] if segments.len() == 2 || segments.len() == 3 => {
            let group = if segments[0] == "api" {
                ""
            } else {
                segments[1]
            };
            control_plane.count_call(method.as_str(), &path);
            return match resource_list(group, version) {
                Some(document) => json_response(200, &document),
                None => failure(not_found_path(&path)),
            };
        }
        _ => {}
    }
    if let ["apis", "subresources.kubevirt.io", "v1", "namespaces", namespace, "virtualmachines", name, action @ ("start" | "stop")] =
        segments.as_slice()
    {
        control_plane.count_call(
            method.as_str(),
            &format!("/apis/subresources.kubevirt.io/v1/namespaces/{{namespace}}/virtualmachines/{{name}}/{action}"),
        );
        if method != Method::PUT {
            return failure(store::method_not_allowed("start and stop take PUT"));
        }
        return failure(control_plane.vm_power(namespace, name, action).await);
    }
    let Some(target) = decode(&segments) else {
        control_plane.count_call(method.as_str(), "(unknown path)");
        return failure(not_found_path(&path));
    };
    control_plane.count_call(method.as_str(), &target.shape);
    let resource = target.resource;
    match (method.as_str(), &target.name, target.subresource.as_deref()) {
        ("GET", None, _) => {
            let selection = match selection_of(&query) {
                Ok(selection) => selection,
                Err(answer) => return failure(answer),
            };
            let page = match page_of(&query) {
                Ok(page) => page,
                Err(answer) => return failure(answer),
            };
            match control_plane
                .list(resource, target.namespace.as_deref(), &selection, &page)
                .await
            {
                Ok((items, next, revision)) => {
                    let mut metadata = json!({"resourceVersion": revision.to_string()});
                    if let Some(next) = next {
                        metadata["continue"] = json!(next);
                    }
                    json_response(
                        200,
                        &json!({"kind": format!("{}List", resource.kind),
                            "apiVersion": resource.api_version(), "metadata": metadata,
                            "items": items}),
                    )
                }
                Err(answer) => failure(answer),
            }
        }
        ("GET", Some(name), None | Some("status")) => match control_plane
            .get(resource, target.namespace.as_deref().unwrap_or(""), name)
            .await
        {
            Ok(object) => json_response(200, &object),
            Err(answer) => failure(answer),
        },
        _ => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("application/json")
                .to_string();
            let request = cluster::Request {
                method: method.as_str().to_string(),
                namespace: target.namespace.clone(),
                name: target.name.clone(),
                subresource: target.subresource.clone(),
                query: query.clone(),
                content_type,
                body,
            };
            let (status, body) = control_plane.handle(resource, request).await;
            json_response(status, &body)
        }
    }
}

fn decode(segments: &[&str]) -> Option<Target> {
    match segments {
        ["api", "v1", rest @ ..] => read_target("", "v1", rest, "/api/v1"),
        ["apis", group, version, rest @ ..] => {
            read_target(group, version, rest, &format!("/apis/{group}/{version}"))
        }
        _ => None,
    }
}

fn selection_of(query: &HashMap<String, String>) -> Result<Selection, (u16, Value)> {
    let text = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
    Selection::parse(text("fieldSelector"), text("labelSelector"))
        .map_err(|problem| store::bad_request(&problem))
}

fn page_of(query: &HashMap<String, String>) -> Result<Page, (u16, Value)> {
    let limit = match query.get("limit") {
        Some(limit) => Some(
            limit
                .parse::<usize>()
                .map_err(|_| store::bad_request(&format!("invalid limit {limit:?}")))?,
        )
        .filter(|limit| *limit > 0),
        None => None,
    };
    let after =
        match query.get("continue").filter(|token| !token.is_empty()) {
            Some(token) => Some(store::read_continue_token(token).ok_or_else(|| {
                store::bad_request(&format!("continue key is not valid: {token:?}"))
            })?),
            None => None,
        };
    Ok(Page { limit, after })
}

async fn watch_response(
    served: &Served,
    segments: &[&str],
    path: &str,
    query: &HashMap<String, String>,
) -> Response {
    let control_plane = Arc::clone(&served.control_plane);
    let Some(target) = decode(segments).filter(|target| target.name.is_none()) else {
        control_plane.count_call("WATCH", "(unknown path)");
        return failure(not_found_path(path));
    };
    control_plane.count_call("WATCH", &target.shape);
    let Ok(permit) = Arc::clone(&served.watches).try_acquire_owned() else {
        return too_many("watches");
    };
    let selection = match selection_of(query) {
        Ok(selection) => selection,
        Err(answer) => return failure(answer),
    };
    if let Err(answer) = control_plane.refresh().await {
        return failure(answer);
    }
    let since = query
        .get("resourceVersion")
        .and_then(|version| version.parse::<u64>().ok())
        .filter(|version| *version > 0);
    let timeout_secs = query
        .get("timeoutSeconds")
        .and_then(|secs| secs.parse::<u64>().ok())
        .unwrap_or(MAX_WATCH_SECS)
        .min(MAX_WATCH_SECS);
    let plural = target.resource.plural;
    let namespace = target.namespace.clone();
    let wanted = move |resource: &str, object: &Value| {
        resource == plural
            && namespace
                .as_deref()
                .is_none_or(|namespace| object["metadata"]["namespace"] == namespace)
            && selection.selects(object)
    };
    let (initial, mut receiver, mut last_revision) = {
        let store = control_plane.store();
        let receiver = store.subscribe();
        let revision = store.revision();
        let initial: Result<Vec<String>, u64> = match since {
            None => {
                let (items, _) = store.list(
                    plural,
                    target.namespace.as_deref(),
                    &Selection::default(),
                    &Page::default(),
                );
                Ok(items
                    .into_iter()
                    .filter(|object| wanted(plural, object))
                    .map(|object| {
                        let mut line = json!({"type": "ADDED", "object": object}).to_string();
                        line.push('\n');
                        line
                    })
                    .collect())
            }
            Some(version) => store.events_after(version).map(|events| {
                events
                    .iter()
                    .filter(|event| wanted(&event.resource, &event.object))
                    .map(|event| event.to_line())
                    .collect()
            }),
        };
        (initial, receiver, revision)
    };
    let expired = |detail: String| {
        let mut line = json!({"type": "ERROR", "object": store::status_failure(410, "Expired", &detail, None)})
            .to_string();
        line.push('\n');
        line
    };
    let stream = async_stream::stream! {
        let _permit = permit;
        let initial = match initial {
            Ok(lines) => lines,
            Err(oldest) => {
                control_plane.count_watch_events(1);
                yield Ok::<Bytes, std::convert::Infallible>(Bytes::from(expired(format!(
                    "too old resource version: {} ({})", since.unwrap_or(0), oldest.saturating_sub(1)
                ))));
                return;
            }
        };
        control_plane.count_watch_events(initial.len() as u64);
        for line in initial {
            yield Ok(Bytes::from(line));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_secs);
        loop {
            tokio::select! {
                received = receiver.recv() => match received {
                    Ok(event) => {
                        if event.revision <= last_revision || !wanted(&event.resource, &event.object) {
                            continue;
                        }
                        last_revision = event.revision;
                        control_plane.count_watch_events(1);
                        yield Ok(Bytes::from(event.to_line()));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        control_plane.count_watch_events(1);
                        yield Ok(Bytes::from(expired("the watcher fell behind; list again".to_string())));
                        break;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}
