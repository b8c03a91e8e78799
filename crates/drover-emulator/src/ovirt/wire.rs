//! The oVirt REST API v4's two representations of one document tree: XML (what the official
//! Python SDK reads: `ovirtsdk4.Connection` sends `Accept: application/xml` and parses every
//! answer with its libxml2 reader, `lib/ovirtsdk4/__init__.py` and `ext/ov_xml_reader.c` of
//! PyPI `ovirt-engine-sdk-python`), and JSON (`Accept: application/json`), where the engine
//! writes every scalar as a string, an entity's `id`/`href` attributes as members, and a
//! collection `<hosts><host/>…</hosts>` as `{"host": […]}`.
//!
//! Also reads request bodies (an `<action>` or an entity for `PUT`) in either form into the same
//! tree, so the engine reads `host.id` without knowing which one arrived.
//!
//! Also the engine's date text and the API root path under which every `href` is written.
//!
//! This module knows only representations: no service, entity or world.

use serde_json::{Map, Value as Json};

/// The API's root path, under which every `href` is written.
pub const API: &str = "/ovirt-engine/api";

/// The engine's XML date (`2026-12-06T07:30:00.000+00:00`) for epoch milliseconds.
pub fn date_text(epoch_ms: u64) -> String {
    let seconds = epoch_ms / 1000;
    let days = seconds / 86_400;
    let (hour, minute, second) = (seconds % 86_400 / 3600, seconds % 3600 / 60, seconds % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:03}+00:00",
        epoch_ms % 1000
    )
}

/// One element of a document.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// An entity or structured value: `<tag id=".." href="..">fields</tag>`.
    Object {
        tag: String,
        attributes: Vec<(String, String)>,
        fields: Vec<Node>,
    },
    /// A scalar: `<tag>text</tag>`.
    Text { tag: String, text: String },
    /// A collection: `<tag><item/>…</tag>`, in JSON `{"item": […]}`.
    List {
        tag: String,
        item: String,
        items: Vec<Node>,
    },
}

impl Node {
    pub fn object(tag: &str) -> Node {
        Node::Object {
            tag: tag.to_string(),
            attributes: Vec::new(),
            fields: Vec::new(),
        }
    }

    pub fn text(tag: &str, text: impl ToString) -> Node {
        Node::Text {
            tag: tag.to_string(),
            text: text.to_string(),
        }
    }

    pub fn list(tag: &str, item: &str, items: Vec<Node>) -> Node {
        Node::List {
            tag: tag.to_string(),
            item: item.to_string(),
            items,
        }
    }

    /// A reference to an entity: `<tag href="…" id="…"/>`.
    pub fn link(tag: &str, href: String, id: &str) -> Node {
        Node::object(tag)
            .attribute("href", href)
            .attribute("id", id)
    }

    pub fn attribute(mut self, name: &str, value: impl ToString) -> Node {
        if let Node::Object { attributes, .. } = &mut self {
            attributes.push((name.to_string(), value.to_string()));
        }
        self
    }

    pub fn field(mut self, child: Node) -> Node {
        if let Node::Object { fields, .. } = &mut self {
            fields.push(child);
        }
        self
    }

    pub fn tag(&self) -> &str {
        match self {
            Node::Object { tag, .. } | Node::Text { tag, .. } | Node::List { tag, .. } => tag,
        }
    }

    /// The child named `tag` (a field of an object).
    pub fn get(&self, tag: &str) -> Option<&Node> {
        match self {
            Node::Object { fields, .. } => fields.iter().find(|field| field.tag() == tag),
            _ => None,
        }
    }

    /// An attribute, or a scalar field of that name (JSON puts `id` among the members).
    pub fn value(&self, name: &str) -> Option<&str> {
        match self {
            Node::Object {
                attributes, fields, ..
            } => attributes
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .or_else(|| {
                    fields.iter().find_map(|field| match field {
                        Node::Text { tag, text } if tag == name => Some(text.as_str()),
                        _ => None,
                    })
                }),
            Node::Text { tag, text } if tag == name => Some(text),
            _ => None,
        }
    }

    /// The items of a collection field (`<hosts><host/></hosts>`), empty when absent.
    pub fn items(&self) -> &[Node] {
        match self {
            Node::List { items, .. } => items,
            _ => &[],
        }
    }

    pub fn to_xml(&self) -> String {
        let mut out =
            String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n");
        self.write_xml(&mut out);
        out
    }

    fn write_xml(&self, out: &mut String) {
        match self {
            Node::Object {
                tag,
                attributes,
                fields,
            } => {
                out.push('<');
                out.push_str(tag);
                for (name, value) in attributes {
                    out.push(' ');
                    out.push_str(name);
                    out.push_str("=\"");
                    escape_into(value, out);
                    out.push('"');
                }
                if fields.is_empty() {
                    out.push_str("/>");
                    return;
                }
                out.push('>');
                for field in fields {
                    field.write_xml(out);
                }
                out.push_str("</");
                out.push_str(tag);
                out.push('>');
            }
            Node::Text { tag, text } => {
                out.push('<');
                out.push_str(tag);
                out.push('>');
                escape_into(text, out);
                out.push_str("</");
                out.push_str(tag);
                out.push('>');
            }
            Node::List { tag, items, .. } => {
                out.push('<');
                out.push_str(tag);
                out.push('>');
                for item in items {
                    item.write_xml(out);
                }
                out.push_str("</");
                out.push_str(tag);
                out.push('>');
            }
        }
    }

    /// The engine's JSON: a document's root element is not named (an entity is its members, a
    /// collection is `{"item": […]}`).
    pub fn to_json(&self) -> Json {
        match self {
            Node::Object {
                attributes, fields, ..
            } => {
                let mut members = Map::new();
                for (name, value) in attributes {
                    members.insert(name.clone(), Json::String(value.clone()));
                }
                for field in fields {
                    members.insert(field.tag().to_string(), field.to_json());
                }
                Json::Object(members)
            }
            Node::Text { text, .. } => Json::String(text.clone()),
            Node::List { item, items, .. } => {
                let mut members = Map::new();
                if !items.is_empty() {
                    members.insert(
                        item.clone(),
                        Json::Array(items.iter().map(Node::to_json).collect()),
                    );
                }
                Json::Object(members)
            }
        }
    }
}

fn escape_into(text: &str, out: &mut String) {
    for character in text.chars() {
        match character {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            other => out.push(other),
        }
    }
}

/// Reads a request body: XML (the SDK's `Content-Type: application/xml`) or JSON. An empty body
/// is an empty `<action/>` (the SDK sends one for actions without parameters).
pub fn read_body(body: &str, root: &str) -> Result<Node, String> {
    let trimmed = body.trim_start();
    if trimmed.is_empty() {
        return Ok(Node::object(root));
    }
    if trimmed.starts_with('{') {
        let value: Json = serde_json::from_str(trimmed).map_err(|error| error.to_string())?;
        return Ok(from_json(root, &value));
    }
    let document = roxmltree::Document::parse(trimmed).map_err(|error| error.to_string())?;
    Ok(from_xml(document.root_element()))
}

fn from_xml(element: roxmltree::Node) -> Node {
    let tag = element.tag_name().name().to_string();
    let children: Vec<roxmltree::Node> = element.children().filter(|n| n.is_element()).collect();
    if children.is_empty() && element.attributes().len() == 0 {
        return Node::Text {
            tag,
            text: element.text().unwrap_or("").trim().to_string(),
        };
    }
    // A collection repeats one child tag (`<hosts><host/><host/></hosts>`), or holds one child
    // named as its singular (`hosts` → `host`).
    let first = children.first().map(|child| child.tag_name().name());
    let repeated = children.len() > 1
        && children
            .iter()
            .all(|child| Some(child.tag_name().name()) == first);
    let singular = first.is_some_and(|name| tag == format!("{name}s"));
    if element.attributes().len() == 0 && (repeated || singular) {
        return Node::List {
            item: first.unwrap_or("").to_string(),
            tag,
            items: children.into_iter().map(from_xml).collect(),
        };
    }
    Node::Object {
        tag,
        attributes: element
            .attributes()
            .map(|attribute| (attribute.name().to_string(), attribute.value().to_string()))
            .collect(),
        fields: children.into_iter().map(from_xml).collect(),
    }
}

fn from_json(tag: &str, value: &Json) -> Node {
    match value {
        Json::Object(members) => {
            // `{"host": [ … ]}` as the value of `hosts` is a collection.
            if members.len() == 1 {
                if let Some((item, Json::Array(items))) = members.iter().next() {
                    if tag == format!("{item}s") {
                        return Node::list(
                            tag,
                            item,
                            items.iter().map(|entry| from_json(item, entry)).collect(),
                        );
                    }
                }
            }
            Node::Object {
                tag: tag.to_string(),
                attributes: Vec::new(),
                fields: members
                    .iter()
                    .map(|(name, member)| from_json(name, member))
                    .collect(),
            }
        }
        Json::Array(items) => Node::list(
            tag,
            tag.strip_suffix('s').unwrap_or(tag),
            items
                .iter()
                .map(|entry| from_json(tag.strip_suffix('s').unwrap_or(tag), entry))
                .collect(),
        ),
        Json::String(text) => Node::text(tag, text),
        Json::Null => Node::text(tag, ""),
        other => Node::text(tag, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_the_engines_iso_8601_with_milliseconds() {
        assert_eq!(date_text(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(
            date_text(1_796_529_600_123),
            "2026-12-06T04:00:00.123+00:00"
        );
    }

    fn host() -> Node {
        Node::object("host")
            .attribute("href", "/ovirt-engine/api/hosts/1")
            .attribute("id", "1")
            .field(Node::text("name", "h<1>"))
            .field(Node::text("memory", 1024))
            .field(Node::list("tags", "tag", vec![]))
    }

    #[test]
    fn xml_escapes_and_json_writes_scalars_as_strings() {
        let document = Node::list("hosts", "host", vec![host()]);
        let xml = document.to_xml();
        assert!(xml.contains("<hosts><host href=\"/ovirt-engine/api/hosts/1\" id=\"1\"><name>h&lt;1&gt;</name><memory>1024</memory><tags></tags></host></hosts>"), "{xml}");
        assert_eq!(
            document.to_json(),
            serde_json::json!({"host": [{"href": "/ovirt-engine/api/hosts/1", "id": "1", "name": "h<1>", "memory": "1024", "tags": {}}]})
        );
    }

    #[test]
    fn an_action_reads_the_same_from_xml_and_json() {
        let xml = read_body(
            "<action>\n  <host id=\"abc\"/>\n  <force>true</force>\n</action>",
            "action",
        )
        .unwrap();
        let json = read_body(r#"{"host": {"id": "abc"}, "force": "true"}"#, "action").unwrap();
        for action in [xml, json] {
            assert_eq!(
                action.get("host").and_then(|host| host.value("id")),
                Some("abc")
            );
            assert_eq!(action.value("force"), Some("true"));
        }
        let nested = read_body("<action><vm><placement_policy><hosts><host><name>h2</name></host></hosts></placement_policy></vm></action>", "action").unwrap();
        let hosts = nested
            .get("vm")
            .and_then(|vm| vm.get("placement_policy"))
            .and_then(|policy| policy.get("hosts"))
            .unwrap();
        assert_eq!(hosts.items()[0].value("name"), Some("h2"));
        assert_eq!(read_body("", "action").unwrap(), Node::object("action"));
    }
}
