//! XAPI's XML-RPC encoding (POST to the server's `/`, where xapi serves XML-RPC: `choose_rpc` in
//! xen-api `ocaml/xapi/helpers.ml`), for servers without JSON-RPC. Values are the JSON values the
//! rest of the driver reads, so discovery and tasks are the same code over both encodings.
//!
//! XAPI's conventions (the XenAPI reference's "Wire protocol", and `XenAPI.py`'s `_parse_result`):
//! every answer is a struct `{Status: "Success", Value: …}` or `{Status: "Failure",
//! ErrorDescription: [CODE, params…]}`; 64-bit integers travel as strings (XML-RPC's `int` is
//! 32-bit), so a JSON number is sent as `<string>`, and an answer's integer stays a string for the
//! driver's readers, which accept both.
//!
//! Written here on roxmltree (already in the workspace for the emulator) rather than with an
//! XML-RPC crate: the crates (`xmlrpc`, `dxr`, `serde_xmlrpc`) bring their own HTTP client or
//! value model, and none knows XAPI's envelope or its integers as strings; the whole encoding is
//! the few functions below.
//!
//! This module must not know sessions, methods or the driver: it encodes calls and decodes answers.

use serde_json::{Map, Value};

use crate::XapiError;

/// The `methodCall` document of `method(params…)`.
pub fn encode_call(method: &str, params: &[Value]) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?><methodCall><methodName>");
    escape_into(method, &mut out);
    out.push_str("</methodName><params>");
    for param in params {
        out.push_str("<param>");
        write_value(param, &mut out);
        out.push_str("</param>");
    }
    out.push_str("</params></methodCall>");
    out
}

fn write_value(value: &Value, out: &mut String) {
    out.push_str("<value>");
    match value {
        // XML-RPC has no null; XAPI has no optional parameters, so an empty string is what a
        // caller without a value means (as Python's XenAPI sends for a missing ref).
        Value::Null => out.push_str("<string></string>"),
        Value::Bool(flag) => out.push_str(if *flag {
            "<boolean>1</boolean>"
        } else {
            "<boolean>0</boolean>"
        }),
        Value::Number(number) if number.is_f64() => {
            out.push_str("<double>");
            out.push_str(&number.to_string());
            out.push_str("</double>");
        }
        // 64-bit integers as strings (see the module doc).
        Value::Number(number) => {
            out.push_str("<string>");
            out.push_str(&number.to_string());
            out.push_str("</string>");
        }
        Value::String(text) => {
            out.push_str("<string>");
            escape_into(text, out);
            out.push_str("</string>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>");
            for item in items {
                write_value(item, out);
            }
            out.push_str("</data></array>");
        }
        Value::Object(fields) => {
            out.push_str("<struct>");
            for (name, field) in fields {
                out.push_str("<member><name>");
                escape_into(name, out);
                out.push_str("</name>");
                write_value(field, out);
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
    }
    out.push_str("</value>");
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

/// The value of a `methodResponse` in XAPI's envelope, or its error.
pub fn decode_answer(body: &str) -> Result<Value, XapiError> {
    let protocol = |detail: String| XapiError::Protocol(format!("XML-RPC answer: {detail}"));
    let document = roxmltree::Document::parse(body).map_err(|error| protocol(error.to_string()))?;
    let root = document.root_element();
    if !root.has_tag_name("methodResponse") {
        return Err(protocol(format!(
            "expected methodResponse, got {}",
            root.tag_name().name()
        )));
    }
    if let Some(fault) = child(root, "fault") {
        // Not XAPI's envelope: a plain XML-RPC fault (xapi sends one for an unknown session
        // with a method it cannot dispatch, as Python's client sees as Fault 401).
        let detail = child(fault, "value")
            .map(decode_value)
            .transpose()
            .map_err(protocol)?
            .unwrap_or(Value::Null);
        return Err(protocol(format!("fault {detail}")));
    }
    let value = child(root, "params")
        .and_then(|params| child(params, "param"))
        .and_then(|param| child(param, "value"))
        .ok_or_else(|| protocol("no params/param/value".into()))?;
    let envelope = decode_value(value).map_err(protocol)?;
    match envelope.get("Status").and_then(Value::as_str) {
        Some("Success") => Ok(envelope.get("Value").cloned().unwrap_or(Value::Null)),
        Some("Failure") => {
            let description: Vec<String> = envelope
                .get("ErrorDescription")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|item| match item {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect();
            let mut description = description.into_iter();
            Err(XapiError::Api {
                code: description.next().unwrap_or_else(|| "UNKNOWN_ERROR".into()),
                params: description.collect(),
            })
        }
        _ => Err(protocol(format!("no Status in {envelope}"))),
    }
}

fn child<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'input>> {
    node.children().find(|child| child.has_tag_name(name))
}

fn decode_value(value: roxmltree::Node) -> Result<Value, String> {
    let Some(typed) = value.children().find(|node| node.is_element()) else {
        // XML-RPC: a value without a type element is a string.
        return Ok(Value::String(value.text().unwrap_or("").to_string()));
    };
    let text = typed.text().unwrap_or("");
    match typed.tag_name().name() {
        "string" | "dateTime.iso8601" => Ok(Value::String(text.to_string())),
        "int" | "i4" | "i8" => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("bad integer {text:?}")),
        "double" => text
            .trim()
            .parse::<f64>()
            .map(Value::from)
            .map_err(|_| format!("bad double {text:?}")),
        "boolean" => Ok(Value::Bool(text.trim() == "1")),
        "nil" => Ok(Value::Null),
        "array" => child(typed, "data")
            .ok_or("array without data")?
            .children()
            .filter(|node| node.has_tag_name("value"))
            .map(decode_value)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        "struct" => {
            let mut fields = Map::new();
            for member in typed.children().filter(|node| node.has_tag_name("member")) {
                let name = child(member, "name")
                    .and_then(|node| node.text())
                    .ok_or("member without name")?;
                let value = child(member, "value").ok_or("member without value")?;
                fields.insert(name.to_string(), decode_value(value)?);
            }
            Ok(Value::Object(fields))
        }
        other => Err(format!("unknown XML-RPC type {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_call_is_encoded_with_integers_as_strings_and_escaped_text() {
        let body = encode_call(
            "VM.start_on",
            &[
                json!("OpaqueRef:a&b"),
                json!(false),
                json!(4_294_967_296u64),
                json!({"live": "true"}),
                json!(["x"]),
            ],
        );
        assert_eq!(
            body,
            "<?xml version=\"1.0\"?><methodCall><methodName>VM.start_on</methodName><params>\
             <param><value><string>OpaqueRef:a&amp;b</string></value></param>\
             <param><value><boolean>0</boolean></value></param>\
             <param><value><string>4294967296</string></value></param>\
             <param><value><struct><member><name>live</name><value><string>true</string></value></member></struct></value></param>\
             <param><value><array><data><value><string>x</string></value></data></array></value></param>\
             </params></methodCall>"
        );
    }

    #[test]
    fn answers_unwrap_xapis_envelope() {
        let success = "<?xml version='1.0'?><methodResponse><params><param><value><struct>\
            <member><name>Status</name><value>Success</value></member>\
            <member><name>Value</name><value><struct>\
              <member><name>memory_total</name><value><string>17179869184</string></value></member>\
              <member><name>live</name><value><boolean>1</boolean></value></member>\
              <member><name>progress</name><value><double>0.5</double></value></member>\
              <member><name>count</name><value><int>3</int></value></member>\
              <member><name>ops</name><value><array><data><value><string>pool_migrate</string></value></data></array></value></member>\
            </struct></value></member></struct></value></param></params></methodResponse>";
        assert_eq!(
            decode_answer(success).unwrap(),
            json!({"memory_total": "17179869184", "live": true, "progress": 0.5, "count": 3, "ops": ["pool_migrate"]})
        );
        let failure = "<methodResponse><params><param><value><struct>\
            <member><name>Status</name><value><string>Failure</string></value></member>\
            <member><name>ErrorDescription</name><value><array><data>\
              <value>HOST_IS_SLAVE</value><value><string>10.0.0.1</string></value>\
            </data></array></value></member></struct></value></param></params></methodResponse>";
        assert_eq!(
            decode_answer(failure),
            Err(XapiError::Api {
                code: "HOST_IS_SLAVE".into(),
                params: vec!["10.0.0.1".into()],
            })
        );
        assert!(matches!(
            decode_answer("{\"not\": \"xml\"}"),
            Err(XapiError::Protocol(_))
        ));
    }
}
