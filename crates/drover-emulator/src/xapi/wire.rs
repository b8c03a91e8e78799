//! XAPI's two wire encodings of one value model: XML-RPC (what the official Python SDK's
//! `XenAPI.Session` speaks: it subclasses `xmlrpc.client.ServerProxy`, see `XenAPI.py` in
//! xapi-project/xen-api `python3/examples/XenAPI/XenAPI.py`) and JSON-RPC at `/jsonrpc`
//! (xen-api `ocaml/sdk-gen/component-test/spec/xapi-24/*.json` show its envelopes).
//!
//! The XML-RPC answer is always a struct `{Status: "Success", Value: …}` or
//! `{Status: "Failure", ErrorDescription: [CODE, params…]}` (`_parse_result` in `XenAPI.py`).
//! XAPI sends its 64-bit integers as XML-RPC strings (XML-RPC's `i4` is 32-bit), which is why
//! SDK users write `int(record["memory_static_max"])`. The JSON-RPC error is
//! `{"code": 1, "message": CODE, "data": [params…]}` (`xapi_error.json` in the spec above).
//!
//! This module knows only encodings: no method, record or world.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

/// One XAPI value (the datamodel's types as they travel).
#[derive(Clone, Debug, PartialEq)]
pub enum XapiValue {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// ISO 8601 basic form, `20261206T04:00:00Z`, as XAPI writes `DateTime` fields.
    DateTime(String),
    Array(Vec<XapiValue>),
    Struct(BTreeMap<String, XapiValue>),
}

impl XapiValue {
    pub fn string(text: impl Into<String>) -> XapiValue {
        XapiValue::String(text.into())
    }

    pub fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> XapiValue {
        XapiValue::Array(items.into_iter().map(XapiValue::string).collect())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            XapiValue::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            XapiValue::String(text) | XapiValue::DateTime(text) => Json::String(text.clone()),
            XapiValue::Int(number) => json!(number),
            XapiValue::Float(number) => json!(number),
            XapiValue::Bool(flag) => Json::Bool(*flag),
            XapiValue::Array(items) => Json::Array(items.iter().map(XapiValue::to_json).collect()),
            XapiValue::Struct(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(key, value)| (key.clone(), value.to_json()))
                    .collect::<Map<String, Json>>(),
            ),
        }
    }

    pub fn from_json(value: &Json) -> XapiValue {
        match value {
            Json::Null => XapiValue::String(String::new()),
            Json::Bool(flag) => XapiValue::Bool(*flag),
            Json::Number(number) => match number.as_i64() {
                Some(whole) => XapiValue::Int(whole),
                None => XapiValue::Float(number.as_f64().unwrap_or(0.0)),
            },
            Json::String(text) => XapiValue::String(text.clone()),
            Json::Array(items) => {
                XapiValue::Array(items.iter().map(XapiValue::from_json).collect())
            }
            Json::Object(fields) => XapiValue::Struct(
                fields
                    .iter()
                    .map(|(key, value)| (key.clone(), XapiValue::from_json(value)))
                    .collect(),
            ),
        }
    }

    fn write_xml(&self, out: &mut String) {
        out.push_str("<value>");
        match self {
            // 64-bit integers travel as strings in XAPI's XML-RPC (see the module doc).
            XapiValue::Int(number) => {
                out.push_str("<string>");
                out.push_str(&number.to_string());
                out.push_str("</string>");
            }
            XapiValue::String(text) => {
                out.push_str("<string>");
                escape_into(text, out);
                out.push_str("</string>");
            }
            XapiValue::Float(number) => {
                out.push_str(&format!("<double>{number}</double>"));
            }
            XapiValue::Bool(flag) => {
                out.push_str(if *flag {
                    "<boolean>1</boolean>"
                } else {
                    "<boolean>0</boolean>"
                });
            }
            XapiValue::DateTime(text) => {
                out.push_str("<dateTime.iso8601>");
                escape_into(text, out);
                out.push_str("</dateTime.iso8601>");
            }
            XapiValue::Array(items) => {
                out.push_str("<array><data>");
                for item in items {
                    item.write_xml(out);
                }
                out.push_str("</data></array>");
            }
            XapiValue::Struct(fields) => {
                out.push_str("<struct>");
                for (key, value) in fields {
                    out.push_str("<member><name>");
                    escape_into(key, out);
                    out.push_str("</name>");
                    value.write_xml(out);
                    out.push_str("</member>");
                }
                out.push_str("</struct>");
            }
        }
        out.push_str("</value>");
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

/// What a call answered: a value, or XAPI's error array (`[CODE, params…]`).
pub type CallAnswer = Result<XapiValue, Vec<String>>;

/// A decoded call: the method name and its positional parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub method: String,
    pub params: Vec<XapiValue>,
    /// JSON-RPC's `id`, echoed in the answer.
    pub json_id: Option<Json>,
}

/// Reads an XML-RPC `methodCall`.
pub fn decode_xml_call(body: &str) -> Result<Call, String> {
    let document = roxmltree::Document::parse(body).map_err(|error| error.to_string())?;
    let root = document.root_element();
    if root.tag_name().name() != "methodCall" {
        return Err(format!(
            "expected methodCall, got {}",
            root.tag_name().name()
        ));
    }
    let method = child(root, "methodName")
        .and_then(|node| node.text())
        .ok_or("methodCall has no methodName")?
        .trim()
        .to_string();
    let mut params = Vec::new();
    if let Some(list) = child(root, "params") {
        for param in list.children().filter(|node| node.has_tag_name("param")) {
            let value = child(param, "value").ok_or("param has no value")?;
            params.push(decode_xml_value(value)?);
        }
    }
    Ok(Call {
        method,
        params,
        json_id: None,
    })
}

fn child<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'input>> {
    node.children().find(|child| child.has_tag_name(name))
}

fn decode_xml_value(value: roxmltree::Node) -> Result<XapiValue, String> {
    let Some(typed) = value.children().find(|node| node.is_element()) else {
        // XML-RPC: a value without a type element is a string.
        return Ok(XapiValue::String(value.text().unwrap_or("").to_string()));
    };
    let text = typed.text().unwrap_or("");
    match typed.tag_name().name() {
        "string" => Ok(XapiValue::String(text.to_string())),
        "int" | "i4" | "i8" => text
            .trim()
            .parse()
            .map(XapiValue::Int)
            .map_err(|_| format!("bad integer {text:?}")),
        "double" => text
            .trim()
            .parse()
            .map(XapiValue::Float)
            .map_err(|_| format!("bad double {text:?}")),
        "boolean" => Ok(XapiValue::Bool(text.trim() == "1")),
        "dateTime.iso8601" => Ok(XapiValue::DateTime(text.trim().to_string())),
        // Python's xmlrpc.client sends None as <nil/> when allow_none is set (XenAPI.Session sets it).
        "nil" => Ok(XapiValue::String(String::new())),
        "array" => {
            let data = child(typed, "data").ok_or("array has no data")?;
            data.children()
                .filter(|node| node.has_tag_name("value"))
                .map(decode_xml_value)
                .collect::<Result<Vec<_>, _>>()
                .map(XapiValue::Array)
        }
        "struct" => {
            let mut fields = BTreeMap::new();
            for member in typed.children().filter(|node| node.has_tag_name("member")) {
                let name = child(member, "name")
                    .and_then(|node| node.text())
                    .ok_or("member has no name")?;
                let value = child(member, "value").ok_or("member has no value")?;
                fields.insert(name.to_string(), decode_xml_value(value)?);
            }
            Ok(XapiValue::Struct(fields))
        }
        other => Err(format!("unknown XML-RPC type {other}")),
    }
}

/// Writes an XML-RPC `methodResponse` in XAPI's Status/Value envelope.
pub fn encode_xml_answer(answer: &CallAnswer) -> String {
    let mut envelope = BTreeMap::new();
    match answer {
        Ok(value) => {
            envelope.insert("Status".to_string(), XapiValue::string("Success"));
            envelope.insert("Value".to_string(), value.clone());
        }
        Err(description) => {
            envelope.insert("Status".to_string(), XapiValue::string("Failure"));
            envelope.insert(
                "ErrorDescription".to_string(),
                XapiValue::strings(description.iter().cloned()),
            );
        }
    }
    let mut out = String::from("<?xml version=\"1.0\"?><methodResponse><params><param>");
    XapiValue::Struct(envelope).write_xml(&mut out);
    out.push_str("</param></params></methodResponse>");
    out
}

/// Reads a JSON-RPC request (`{"jsonrpc": "2.0", "method": …, "params": […], "id": …}`).
pub fn decode_json_call(body: &str) -> Result<Call, String> {
    let request: Json = serde_json::from_str(body).map_err(|error| error.to_string())?;
    let method = request
        .get("method")
        .and_then(Json::as_str)
        .ok_or("the request has no method")?
        .to_string();
    let params = match request.get("params") {
        Some(Json::Array(items)) => items.iter().map(XapiValue::from_json).collect(),
        None | Some(Json::Null) => Vec::new(),
        Some(_) => return Err("params must be an array".to_string()),
    };
    Ok(Call {
        method,
        params,
        json_id: request.get("id").cloned(),
    })
}

/// Writes a JSON-RPC 2.0 answer; an XAPI error is code 1, the error code as message and its
/// parameters as data.
pub fn encode_json_answer(answer: &CallAnswer, id: Option<&Json>) -> Json {
    let id = id.cloned().unwrap_or(Json::Null);
    match answer {
        Ok(value) => json!({"jsonrpc": "2.0", "result": value.to_json(), "id": id}),
        Err(description) => {
            let code = description.first().cloned().unwrap_or_default();
            let data: Vec<&String> = description.iter().skip(1).collect();
            json!({"jsonrpc": "2.0", "error": {"code": 1, "message": code, "data": data}, "id": id})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_xml_call_round_trips_into_values() {
        let body = "<?xml version='1.0'?><methodCall><methodName>VM.pool_migrate</methodName><params>\
            <param><value><string>OpaqueRef:s</string></value></param>\
            <param><value>bare</value></param>\
            <param><value><struct><member><name>live</name><value><string>true</string></value></member></struct></value></param>\
            <param><value><array><data><value><int>7</int></value><value><boolean>1</boolean></value></data></array></value></param>\
            </params></methodCall>";
        let call = decode_xml_call(body).unwrap();
        assert_eq!(call.method, "VM.pool_migrate");
        assert_eq!(call.params[0], XapiValue::string("OpaqueRef:s"));
        assert_eq!(call.params[1], XapiValue::string("bare"));
        let XapiValue::Struct(options) = &call.params[2] else {
            panic!("a struct")
        };
        assert_eq!(options["live"], XapiValue::string("true"));
        assert_eq!(
            call.params[3],
            XapiValue::Array(vec![XapiValue::Int(7), XapiValue::Bool(true)])
        );
    }

    #[test]
    fn answers_use_the_status_envelope_and_integers_as_strings() {
        let ok = encode_xml_answer(&Ok(XapiValue::Int(4_294_967_296)));
        assert!(ok.contains("<name>Status</name><value><string>Success</string></value>"));
        assert!(ok.contains("<string>4294967296</string>"));
        let failure = encode_xml_answer(&Err(vec!["SESSION_INVALID".into(), "<x>".into()]));
        assert!(failure.contains("<string>SESSION_INVALID</string>"));
        assert!(failure.contains("&lt;x&gt;"));
        let json = encode_json_answer(
            &Err(vec![
                "HANDLE_INVALID".into(),
                "VM".into(),
                "OpaqueRef:x".into(),
            ]),
            Some(&json!(3)),
        );
        assert_eq!(
            json,
            json!({"jsonrpc": "2.0", "error": {"code": 1, "message": "HANDLE_INVALID", "data": ["VM", "OpaqueRef:x"]}, "id": 3})
        );
    }
}
