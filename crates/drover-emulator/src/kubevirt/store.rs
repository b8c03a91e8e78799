//! The emulated API server's object store: every object as JSON with its `resourceVersion`,
//! the cluster-wide revision counter, the bounded log of watch events, list selection (field
//! and label selectors, `limit`/`continue`) and the Kubernetes `Status` bodies of errors.
//!
//! Objects are rendered from the world by `cluster` and handed here with [`Store::sync`]: an
//! object whose rendering changed gets the next revision and a `MODIFIED` event, a new one
//! `ADDED`, a vanished one `DELETED`, as the API server's watch cache reports them
//! (k8s.io/apimachinery `pkg/watch` event types). A `resourceVersion` is an opaque string to
//! clients; here it is the decimal revision.
//!
//! This module must not know the simulator, KubeVirt or HTTP.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast;

/// Watch events kept for watches that resume from a `resourceVersion`; an older one is answered
/// `410 Gone` (reason `Expired`), as the API server answers a version its watch cache dropped.
pub const MAX_EVENTS_KEPT: usize = 8_192;
/// Events a slow watcher may fall behind before its watch is ended with `410 Expired`.
pub const WATCH_CHANNEL_CAPACITY: usize = 4_096;

/// One change, as a watch streams it: `{"type": "MODIFIED", "object": {...}}`.
#[derive(Clone, Debug)]
pub struct Event {
    pub revision: u64,
    /// The resource's plural (`nodes`, `virtualmachineinstancemigrations`).
    pub resource: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub object: Value,
}

impl Event {
    /// The event as one line of a watch stream.
    pub fn to_line(&self) -> String {
        let mut line = json!({"type": self.kind, "object": self.object}).to_string();
        line.push('\n');
        line
    }
}

type Key = (String, String, String);

struct Stored {
    revision: u64,
    /// The object as rendered, without `metadata.resourceVersion`.
    rendered: Value,
}

/// The store. Not shared by itself: `cluster` keeps it behind a mutex.
pub struct Store {
    revision: u64,
    objects: BTreeMap<Key, Stored>,
    events: VecDeque<Arc<Event>>,
    sender: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

/// The namespace and name of an object (`""` for a cluster-scoped object's namespace).
pub fn object_key(object: &Value) -> (String, String) {
    let text = |field: &str| {
        object["metadata"][field]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    (text("namespace"), text("name"))
}

fn with_revision(rendered: &Value, revision: u64) -> Value {
    let mut object = rendered.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "resourceVersion".to_string(),
            Value::String(revision.to_string()),
        );
    }
    object
}

impl Store {
    pub fn new() -> Store {
        let (sender, _) = broadcast::channel(WATCH_CHANNEL_CAPACITY);
        // Revisions start above 1 so that "0" keeps its API meaning ("any version").
        Store {
            revision: 1,
            objects: BTreeMap::new(),
            events: VecDeque::new(),
            sender,
        }
    }

    /// The latest revision (a list's `metadata.resourceVersion`).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn record(&mut self, resource: &str, kind: &'static str, object: Value) {
        let event = Arc::new(Event {
            revision: self.revision,
            resource: resource.to_string(),
            kind,
            object,
        });
        if self.events.len() >= MAX_EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(Arc::clone(&event));
        // No receiver is not an error: nobody watches.
        let _ = self.sender.send(event);
    }

    /// Stores `rendered` as the current state of one object, recording a change if it changed.
    pub fn put(&mut self, resource: &str, rendered: Value) -> Value {
        let (namespace, name) = object_key(&rendered);
        let key = (resource.to_string(), namespace, name);
        if let Some(stored) = self.objects.get(&key) {
            if stored.rendered == rendered {
                return with_revision(&stored.rendered, stored.revision);
            }
        }
        self.revision += 1;
        let kind = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let object = with_revision(&rendered, self.revision);
        self.objects.insert(
            key,
            Stored {
                revision: self.revision,
                rendered,
            },
        );
        self.record(resource, kind, object.clone());
        object
    }

    /// Forgets one object, recording its deletion; its last state, if it was there.
    pub fn remove(&mut self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (
            resource.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let stored = self.objects.remove(&key)?;
        self.revision += 1;
        let object = with_revision(&stored.rendered, self.revision);
        self.record(resource, "DELETED", object.clone());
        Some(object)
    }

    /// Makes `rendered` the whole current set of `resource`: changed objects are stored, the
    /// ones no longer rendered removed.
    pub fn sync(&mut self, resource: &str, rendered: Vec<Value>) {
        let mut present = std::collections::BTreeSet::new();
        for object in rendered {
            present.insert(object_key(&object));
            self.put(resource, object);
        }
        let gone: Vec<(String, String)> = self
            .objects
            .keys()
            .filter(|(kind, namespace, name)| {
                kind == resource && !present.contains(&(namespace.clone(), name.clone()))
            })
            .map(|(_, namespace, name)| (namespace.clone(), name.clone()))
            .collect();
        for (namespace, name) in gone {
            self.remove(resource, &namespace, &name);
        }
    }

    /// Stores the `changed` objects of `resource` and removes those whose key is not in
    /// `present` (an incremental [`Store::sync`]: objects not rendered again stay as they are).
    pub fn sync_changed(
        &mut self,
        resource: &str,
        present: &std::collections::BTreeSet<(String, String)>,
        changed: Vec<Value>,
    ) {
        for object in changed {
            self.put(resource, object);
        }
        let gone: Vec<(String, String)> = self
            .of_resource(resource)
            .map(|((_, namespace, name), _)| (namespace.clone(), name.clone()))
            .filter(|key| !present.contains(key))
            .collect();
        for (namespace, name) in gone {
            self.remove(resource, &namespace, &name);
        }
    }

    /// The objects of one resource, in key order (a range of the map, not a scan of it).
    fn of_resource<'a>(
        &'a self,
        resource: &'a str,
    ) -> impl Iterator<Item = (&'a Key, &'a Stored)> + 'a {
        self.objects
            .range((resource.to_string(), String::new(), String::new())..)
            .take_while(move |((kind, _, _), _)| kind == resource)
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.objects
            .get(&(
                resource.to_string(),
                namespace.to_string(),
                name.to_string(),
            ))
            .map(|stored| with_revision(&stored.rendered, stored.revision))
    }

    /// The objects of `resource` (in `namespace`, or all) that `selection` selects, sorted by
    /// namespace and name, one page of them, and the `continue` token of the next page.
    pub fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        selection: &Selection,
        page: &Page,
    ) -> (Vec<Value>, Option<String>) {
        let start = page.after.clone();
        let mut items = Vec::new();
        let mut next = None;
        for ((_, object_namespace, name), stored) in self.of_resource(resource) {
            if namespace.is_some_and(|wanted| wanted != object_namespace) {
                continue;
            }
            if start
                .as_ref()
                .is_some_and(|after| (object_namespace, name) <= (&after.0, &after.1))
            {
                continue;
            }
            if !selection.selects(&stored.rendered) {
                continue;
            }
            if page.limit.is_some_and(|limit| items.len() >= limit) {
                next = items
                    .last()
                    .map(|last: &Value| continue_token(&object_key(last)));
                break;
            }
            items.push(with_revision(&stored.rendered, stored.revision));
        }
        (items, next)
    }

    /// The events after `revision`, oldest first, or `Err` when some of them were dropped.
    pub fn events_after(&self, revision: u64) -> Result<Vec<Arc<Event>>, u64> {
        let oldest = self
            .events
            .front()
            .map_or(self.revision + 1, |event| event.revision);
        if revision + 1 < oldest && revision < self.revision {
            return Err(oldest);
        }
        Ok(self
            .events
            .iter()
            .filter(|event| event.revision > revision)
            .cloned()
            .collect())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}

/// Where a page starts: after this namespace and name (from a `continue` token), and how many.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub limit: Option<usize>,
    pub after: Option<(String, String)>,
}

/// The `continue` token for a page ending at `key`: opaque to clients (hex of `ns/name`).
pub fn continue_token(key: &(String, String)) -> String {
    format!("{}/{}", key.0, key.1)
        .bytes()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Reads a `continue` token back; `None` when it is not one of ours.
pub fn read_continue_token(token: &str) -> Option<(String, String)> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(token.get(at..at + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (namespace, name) = text.split_once('/')?;
    Some((namespace.to_string(), name.to_string()))
}

/// One requirement of a field or label selector.
#[derive(Clone, Debug, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A list's or watch's `fieldSelector` and `labelSelector`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    fields: Vec<Requirement>,
    labels: Vec<Requirement>,
}

/// The fields a field selector may name: the ones every resource supports
/// (`metadata.name`, `metadata.namespace`) and the pod fields `kubectl drain` uses.
const SELECTABLE_FIELDS: [&str; 4] = [
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
];

/// Splits a selector at the commas that are not inside `in (a,b)` parentheses.
fn split_terms(selector: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for character in selector.chars() {
        match character {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(character);
    }
    terms.push(current);
    terms
        .into_iter()
        .map(|term| term.trim().to_string())
        .filter(|term| !term.is_empty())
        .collect()
}

fn parse_term(term: &str, set_based: bool) -> Result<Requirement, String> {
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(
            key.trim().to_string(),
            value.trim().to_string(),
        ));
    }
    if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Equals(
            key.trim().to_string(),
            value.trim().to_string(),
        ));
    }
    if set_based {
        for (word, negated) in [(" notin ", true), (" in ", false)] {
            if let Some((key, values)) = term.split_once(word) {
                let values = values
                    .trim()
                    .strip_prefix('(')
                    .and_then(|values| values.strip_suffix(')'))
                    .ok_or_else(|| format!("unable to parse requirement: {term:?}"))?;
                let values: Vec<String> = values
                    .split(',')
                    .map(|value| value.trim().to_string())
                    .collect();
                let key = key.trim().to_string();
                return Ok(if negated {
                    Requirement::NotIn(key, values)
                } else {
                    Requirement::In(key, values)
                });
            }
        }
        if let Some(key) = term.strip_prefix('!') {
            return Ok(Requirement::NotExists(key.trim().to_string()));
        }
        if !term.contains(' ') {
            return Ok(Requirement::Exists(term.to_string()));
        }
    }
    Err(format!("unable to parse requirement: {term:?}"))
}

impl Selection {
    /// Reads the two selectors; `Err` with the API server's kind of message when one is not
    /// understood (answered `400 BadRequest`).
    pub fn parse(field_selector: &str, label_selector: &str) -> Result<Selection, String> {
        let mut fields = Vec::new();
        for term in split_terms(field_selector) {
            let requirement = parse_term(&term, false)?;
            let key = match &requirement {
                Requirement::Equals(key, _) | Requirement::NotEquals(key, _) => key.clone(),
                _ => return Err(format!("invalid selector: {term:?}")),
            };
            if !SELECTABLE_FIELDS.contains(&key.as_str()) {
                return Err(format!("field label not supported: {key}"));
            }
            fields.push(requirement);
        }
        let labels = split_terms(label_selector)
            .iter()
            .map(|term| parse_term(term, true))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Selection { fields, labels })
    }

    pub fn selects(&self, object: &Value) -> bool {
        let field_value = |path: &str| -> Option<String> {
            let mut value = object;
            for part in path.split('.') {
                value = value.get(part)?;
            }
            value.as_str().map(str::to_string)
        };
        let label_value = |key: &str| -> Option<String> {
            object["metadata"]["labels"][key]
                .as_str()
                .map(str::to_string)
        };
        let holds = |requirement: &Requirement, lookup: &dyn Fn(&str) -> Option<String>| {
            match requirement {
                Requirement::Equals(key, value) => lookup(key).unwrap_or_default() == *value,
                Requirement::NotEquals(key, value) => lookup(key).unwrap_or_default() != *value,
                Requirement::Exists(key) => lookup(key).is_some(),
                Requirement::NotExists(key) => lookup(key).is_none(),
                Requirement::In(key, values) => {
                    lookup(key).is_some_and(|found| values.contains(&found))
                }
                Requirement::NotIn(key, values) => {
                    lookup(key).is_none_or(|found| !values.contains(&found))
                }
            }
        };
        self.fields
            .iter()
            .all(|requirement| holds(requirement, &field_value))
            && self
                .labels
                .iter()
                .all(|requirement| holds(requirement, &label_value))
    }
}

/// A Kubernetes `Status` error body (k8s.io/apimachinery `pkg/apis/meta/v1` `Status`,
/// `StatusReason`): `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
/// "message":…,"reason":…,"details":…,"code":…}`.
pub fn status_failure(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

/// `404 NotFound` as the API server words it: `pods "web-01" not found`.
pub fn not_found(group: &str, resource: &str, name: &str) -> (u16, Value) {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    (
        404,
        status_failure(
            404,
            "NotFound",
            &format!("{qualified} \"{name}\" not found"),
            Some(json!({"name": name, "group": group, "kind": resource})),
        ),
    )
}

/// `409 AlreadyExists`: `… "name" already exists`.
pub fn already_exists(group: &str, resource: &str, name: &str) -> (u16, Value) {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    (
        409,
        status_failure(
            409,
            "AlreadyExists",
            &format!("{qualified} \"{name}\" already exists"),
            Some(json!({"name": name, "group": group, "kind": resource})),
        ),
    )
}

/// `409 Conflict` of an update whose `resourceVersion` is not the object's latest.
pub fn conflict(group: &str, resource: &str, name: &str) -> (u16, Value) {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    (
        409,
        status_failure(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {qualified} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            Some(json!({"name": name, "group": group, "kind": resource})),
        ),
    )
}

/// `422 Invalid` with one cause per field (`FieldValueRequired`, `FieldValueInvalid`, …).
pub fn invalid(
    group: &str,
    kind: &str,
    name: &str,
    causes: &[(&str, &str, String)],
) -> (u16, Value) {
    let messages: Vec<String> = causes
        .iter()
        .map(|(_, field, message)| format!("{field}: {message}"))
        .collect();
    let causes: Vec<Value> = causes
        .iter()
        .map(|(reason, field, message)| json!({"reason": reason, "message": message, "field": field}))
        .collect();
    (
        422,
        status_failure(
            422,
            "Invalid",
            &format!("{kind} \"{name}\" is invalid: {}", messages.join(", ")),
            Some(json!({"name": name, "group": group, "kind": kind, "causes": causes})),
        ),
    )
}

/// `400 BadRequest`.
pub fn bad_request(message: &str) -> (u16, Value) {
    (400, status_failure(400, "BadRequest", message, None))
}

/// `405 MethodNotAllowed`.
pub fn method_not_allowed(message: &str) -> (u16, Value) {
    (405, status_failure(405, "MethodNotAllowed", message, None))
}

/// `200 Success` Status (the answer to a delete or an eviction).
pub fn status_success(code: u16, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

/// The PATCH media types the API server accepts for these resources, in its error's words.
const PATCH_TYPES: &str =
    "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json";

/// RFC 7386 JSON merge patch: objects merge, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(target_fields) = target else {
        return;
    };
    for (key, value) in patch_fields {
        if value.is_null() {
            target_fields.remove(key);
        } else {
            merge(
                target_fields.entry(key.clone()).or_insert(Value::Null),
                value,
            );
        }
    }
}

/// A JSON pointer's parts (`/metadata/labels/a~1b` → `metadata`, `labels`, `a/b`).
fn pointer_parts(path: &str) -> Vec<String> {
    path.split('/')
        .skip(1)
        .map(|part| part.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// RFC 6902 JSON patch, the operations kubectl and the clients send (`add`, `replace`,
/// `remove`, `test`) on object members.
fn json_patch(target: &mut Value, operations: &Value) -> Result<(), String> {
    let operations = operations
        .as_array()
        .ok_or("a JSON patch is a list of operations")?;
    for operation in operations {
        let op = operation["op"].as_str().unwrap_or_default();
        let path = operation["path"].as_str().unwrap_or_default();
        let parts = pointer_parts(path);
        let Some((last, parents)) = parts.split_last() else {
            return Err(format!("invalid path {path:?}"));
        };
        let mut parent = &mut *target;
        for part in parents {
            parent = parent
                .get_mut(part.as_str())
                .ok_or_else(|| format!("doc is missing path: {path:?}"))?;
        }
        let fields = parent
            .as_object_mut()
            .ok_or_else(|| format!("doc is missing path: {path:?}"))?;
        match op {
            "add" | "replace" => {
                if op == "replace" && !fields.contains_key(last) {
                    return Err(format!(
                        "replace operation does not apply: doc is missing key: {path}"
                    ));
                }
                fields.insert(last.clone(), operation["value"].clone());
            }
            "remove" => {
                fields.remove(last).ok_or_else(|| {
                    format!("remove operation does not apply: doc is missing key: {path}")
                })?;
            }
            "test" => {
                if fields.get(last) != Some(&operation["value"]) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("unsupported patch operation {other:?}")),
        }
    }
    Ok(())
}

/// Applies a PATCH body of `content_type` to `original`: merge and strategic merge patches
/// (the same on these objects: no list the emulator lets a client change has a merge key),
/// and JSON patches. Server-side apply is not served (`415`).
pub fn apply_patch(
    content_type: &str,
    original: &Value,
    body: &str,
) -> Result<Value, (u16, Value)> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let unsupported = || {
        (
            415,
            status_failure(
                415,
                "UnsupportedMediaType",
                &format!(
                    "the body of the request was in an unknown format - accepted media types include: {PATCH_TYPES}"
                ),
                None,
            ),
        )
    };
    let patch: Value = serde_json::from_str(body).map_err(|error| {
        bad_request(&format!(
            "the body of the request could not be read: {error}"
        ))
    })?;
    let mut patched = original.clone();
    match media.as_str() {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            // A merge patch that is not an object would replace the whole object (RFC 7386),
            // which no API object survives: the API server refuses to decode the result.
            if !patch.is_object() {
                return Err(bad_request(
                    "the body of the request is a merge patch that is not a JSON object",
                ));
            }
            merge(&mut patched, &patch)
        }
        "application/json-patch+json" => json_patch(&mut patched, &patch)
            .map_err(|problem| (422, status_failure(422, "Invalid", &problem, None)))?,
        _ => return Err(unsupported()),
    }
    Ok(patched)
}

/// Whether an update names a `resourceVersion` other than the object's: the optimistic
/// concurrency check of the API server (answered `409 Conflict`).
pub fn stale(update: &Value, current: &Value) -> bool {
    match update["metadata"]["resourceVersion"].as_str() {
        Some(version) if !version.is_empty() => {
            Some(version) != current["metadata"]["resourceVersion"].as_str()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, zone: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"zone": zone}}, "spec": {"nodeName": name}})
    }

    #[test]
    fn a_changed_rendering_gets_the_next_revision_and_an_event() {
        let mut store = Store::new();
        store.sync("nodes", vec![node("a", "1"), node("b", "1")]);
        let first = store.revision();
        store.sync("nodes", vec![node("a", "1"), node("b", "1")]);
        assert_eq!(
            store.revision(),
            first,
            "an unchanged rendering is no change"
        );
        store.sync("nodes", vec![node("a", "2")]);
        let events = store.events_after(first).expect("kept");
        let kinds: Vec<(&str, String)> = events
            .iter()
            .map(|event| (event.kind, object_key(&event.object).1))
            .collect();
        assert_eq!(
            kinds,
            vec![("MODIFIED", "a".to_string()), ("DELETED", "b".to_string())]
        );
        assert_eq!(
            store.get("nodes", "", "a").expect("a")["metadata"]["resourceVersion"],
            json!((first + 1).to_string())
        );
    }

    #[test]
    fn pages_continue_after_the_last_name_of_the_previous_page() {
        let mut store = Store::new();
        store.sync(
            "nodes",
            (0..5)
                .map(|index| node(&format!("n{index}"), "z"))
                .collect(),
        );
        let everything = Selection::default();
        let (first, token) = store.list(
            "nodes",
            None,
            &everything,
            &Page {
                limit: Some(2),
                after: None,
            },
        );
        assert_eq!(first.len(), 2);
        let after = read_continue_token(&token.expect("more")).expect("ours");
        let (rest, token) = store.list(
            "nodes",
            None,
            &everything,
            &Page {
                limit: Some(10),
                after: Some(after),
            },
        );
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[0]["metadata"]["name"], "n2");
        assert!(token.is_none());
    }

    #[test]
    fn selectors_select_by_field_and_label() {
        let selection = Selection::parse("spec.nodeName=a", "zone in (1,2),!gone").expect("valid");
        assert!(selection.selects(&node("a", "1")));
        assert!(!selection.selects(&node("b", "1")));
        assert!(!Selection::parse("", "zone=3")
            .expect("valid")
            .selects(&node("a", "1")));
        assert!(Selection::parse("spec.unknown=1", "").is_err());
    }

    #[test]
    fn patches_merge_replace_and_remove() {
        let original = json!({"metadata": {"name": "a"}, "spec": {"unschedulable": true, "x": 1}});
        let merged = apply_patch(
            "application/strategic-merge-patch+json",
            &original,
            r#"{"spec":{"unschedulable":null}}"#,
        )
        .expect("merged");
        assert_eq!(merged["spec"], json!({"x": 1}));
        let patched = apply_patch(
            "application/json-patch+json",
            &original,
            r#"[{"op":"replace","path":"/spec/unschedulable","value":false}]"#,
        )
        .expect("patched");
        assert_eq!(patched["spec"]["unschedulable"], json!(false));
        let refused = apply_patch("application/apply-patch+yaml", &original, "{}");
        assert_eq!(refused.expect_err("not served").0, 415);
        let refused = apply_patch("application/merge-patch+json", &original, "[]");
        assert_eq!(refused.expect_err("not an object").0, 400);
    }

    #[test]
    fn a_watch_from_a_dropped_revision_is_told_so() {
        let mut store = Store::new();
        for index in 0..(MAX_EVENTS_KEPT + 10) {
            store.put("nodes", node("a", &index.to_string()));
        }
        assert!(store.events_after(1).is_err());
        assert!(store
            .events_after(store.revision())
            .expect("kept")
            .is_empty());
    }
}
