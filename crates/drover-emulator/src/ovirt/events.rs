//! The emulated engine's audit log as `/ovirt-engine/api/events` serves it: `types/Event.java`
//! (`index`, `code`, `severity` (`LogSeverity`: normal, warning, error, alert), `time`,
//! `description`, `origin`, `custom_id`, `flood_rate`, `correlation_id`, links to `host`, `vm`,
//! `cluster`) and `services/EventsService.java`: `List` with `from` (only events with a greater
//! index) and `max`, newest first ("sorted by the numeric value of the id attribute, starting
//! with the highest value"); `Add` of an external event with the mandatory `custom_id`,
//! `description`, `origin`, `severity` and the optional `cluster`, `host`, `vm` ids. As the model
//! notes, the engine's `id` is the `index`.
//!
//! The engine's own events carry the codes of `AuditLogType.java` (oVirt/ovirt-engine,
//! `backend/manager/modules/common/…/AuditLogType.java`): [`VM_MIGRATION_START`] 62,
//! [`VM_MIGRATION_DONE`] 63, [`VM_MIGRATION_FAILED`] 65, [`VDS_MAINTENANCE`] 15,
//! [`VDS_ACTIVATE`] 16, 17 (`VDS_MAINTENANCE_FAILED`), and [`HOST_UPGRADE_FAILED`] 841 (not in
//! the stored AuditLogType.java, which predates host upgrades: from the engine's code list that
//! oVirt's system tests and SDK examples use, `HOST_UPGRADE_FAILED = 841`). Their description
//! texts are the emulator's wording, not the engine's message catalogue.
//!
//! Bounded: [`MAX_EVENTS`] kept, oldest forgotten first. This module must not know HTTP or the
//! world: it keeps records and writes them as document trees.

use std::collections::VecDeque;

use super::wire::{date_text, Node, API};

pub const VDS_MAINTENANCE: i64 = 15;
pub const VDS_ACTIVATE: i64 = 16;
pub const VM_MIGRATION_START: i64 = 62;
pub const VM_MIGRATION_DONE: i64 = 63;
pub const VM_MIGRATION_FAILED: i64 = 65;
pub const HOST_UPGRADE_FAILED: i64 = 841;

/// Events kept; the oldest is forgotten past this (the engine purges its audit log by age).
pub const MAX_EVENTS: usize = 4_096;

/// What an event is about, as ids (already the model's uuids).
#[derive(Clone, Debug, Default)]
pub struct Subjects {
    pub host: Option<String>,
    pub vm: Option<String>,
    pub cluster: Option<String>,
}

#[derive(Clone, Debug)]
struct Event {
    index: u64,
    code: i64,
    severity: String,
    description: String,
    origin: String,
    custom_id: i64,
    time_ms: u64,
    subjects: Subjects,
}

/// The audit log.
#[derive(Default)]
pub struct EventLog {
    events: VecDeque<Event>,
    last_index: u64,
}

/// An event the engine itself logs (`origin` oVirt, `custom_id` -1, as the model's example).
pub struct Logged<'a> {
    pub code: i64,
    pub severity: &'a str,
    pub description: String,
    pub subjects: Subjects,
}

impl EventLog {
    /// Logs one of the engine's own events.
    pub fn log(&mut self, event: Logged, time_ms: u64) -> u64 {
        self.push(Event {
            index: 0,
            code: event.code,
            severity: event.severity.to_string(),
            description: event.description,
            origin: "oVirt".into(),
            custom_id: -1,
            time_ms,
            subjects: event.subjects,
        })
    }

    fn push(&mut self, mut event: Event) -> u64 {
        self.last_index += 1;
        event.index = self.last_index;
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
        self.last_index
    }

    /// `EventsService.Add`: an external event; `Err` names the missing mandatory fields.
    pub fn add(&mut self, body: &Node, time_ms: u64) -> Result<Node, String> {
        let missing: Vec<&str> = ["custom_id", "description", "origin", "severity"]
            .into_iter()
            .filter(|name| body.value(name).is_none_or(str::is_empty))
            .collect();
        if !missing.is_empty() {
            return Err(format!("Event [{}] required for add", missing.join(", ")));
        }
        let severity = body.value("severity").unwrap_or("");
        if !matches!(severity, "normal" | "warning" | "error" | "alert") {
            return Err(format!("Invalid value '{severity}' for LogSeverity"));
        }
        let id_of = |tag: &str| {
            body.get(tag)
                .and_then(|reference| reference.value("id"))
                .map(str::to_string)
        };
        let index = self.push(Event {
            index: 0,
            // External events have no code of the engine's catalogue.
            code: 0,
            severity: severity.to_string(),
            description: body.value("description").unwrap_or("").to_string(),
            origin: body.value("origin").unwrap_or("").to_string(),
            custom_id: body
                .value("custom_id")
                .and_then(|id| id.parse().ok())
                .unwrap_or(-1),
            time_ms,
            subjects: Subjects {
                host: id_of("host"),
                vm: id_of("vm"),
                cluster: id_of("cluster"),
            },
        });
        Ok(self.node_of(index).unwrap_or_else(|| Node::object("event")))
    }

    /// `EventsService.List`: events after `from`, newest first, at most `max`.
    pub fn list(&self, from: Option<u64>, max: Option<usize>) -> Node {
        let events = self
            .events
            .iter()
            .rev()
            .filter(|event| from.is_none_or(|from| event.index > from))
            .take(max.unwrap_or(usize::MAX))
            .map(event_node)
            .collect();
        Node::list("events", "event", events)
    }

    pub fn node_of(&self, index: u64) -> Option<Node> {
        self.events
            .iter()
            .find(|event| event.index == index)
            .map(event_node)
    }
}

fn event_node(event: &Event) -> Node {
    let api = API;
    let id = event.index.to_string();
    let mut node = Node::object("event")
        .attribute("href", format!("{api}/events/{id}"))
        .attribute("id", &id)
        .field(Node::text("code", event.code))
        .field(Node::text("custom_id", event.custom_id))
        .field(Node::text("description", &event.description))
        .field(Node::text("flood_rate", 30))
        .field(Node::text("index", event.index))
        .field(Node::text("origin", &event.origin))
        .field(Node::text("severity", &event.severity))
        .field(Node::text("time", date_text(event.time_ms)));
    for (tag, collection, id) in [
        ("cluster", "clusters", &event.subjects.cluster),
        ("host", "hosts", &event.subjects.host),
        ("vm", "vms", &event.subjects.vm),
    ] {
        if let Some(id) = id {
            node = node.field(Node::link(tag, format!("{api}/{collection}/{id}"), id));
        }
    }
    node
}
