//! The API keeps to its document and the metrics to Prometheus' formats, at the level a client
//! meets them: run ids follow one rule (a control character was a 500 with an unparsable
//! `Location`), query errors are problems, errors are documented as `application/problem+json`,
//! `/runs` takes its parameters in the query, and `/metrics` answers the classic text format
//! unless OpenMetrics is asked for. The real validators run in `tests/api/` (CI).

mod serve_common;

use serde_json::Value;
use serve_common::*;

fn served_document(server: &Server) -> Value {
    let (status, document) = get(server, "/api/v1/openapi.json");
    assert_eq!(status, 200);
    document
}

#[test]
fn a_run_id_outside_the_rule_is_a_400_and_starts_nothing() {
    let workspace = Workspace::new(&[("open.yaml", OPEN_POOL)], "");
    let server = workspace.serve(&[]);
    for run_id in ["a\u{7}b", "line\nbreak", "with space", "", &"x".repeat(129)] {
        let body = serde_json::json!({ "run_id": run_id }).to_string();
        let response = client()
            .post(server.url("/api/v1/clusters/open/runs"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{run_id:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().unwrap();
        assert_eq!(problem["errors"][0]["field"], "run_id", "{problem}");
    }
    let (_, runs) = get(&server, "/api/v1/runs");
    assert_eq!(runs["runs"], serde_json::json!([]));
    let (status, created) = post(
        &server,
        "/api/v1/clusters/open/runs",
        Some(r#"{"run_id": "Open_run-1.a"}"#),
    );
    assert_eq!(status, 202, "{created}");
}

#[test]
fn run_list_parameters_are_query_parameters_and_their_errors_are_problems() {
    let workspace = Workspace::new(&[("open.yaml", OPEN_POOL)], "");
    let server = workspace.serve(&[]);
    let document = served_document(&server);
    let parameters = document["paths"]["/api/v1/runs"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .clone();
    for parameter in &parameters {
        assert_eq!(parameter["in"], "query", "{parameter}");
        assert_eq!(parameter["required"], false, "{parameter}");
    }
    for query in ["limit=abc", "limit=0", "limit=1001", "limit=-1"] {
        let response = client()
            .get(server.url(&format!("/api/v1/runs?{query}")))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{query}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{query}"
        );
    }
    let (status, runs) = get(&server, "/api/v1/runs?cluster=open&limit=1000");
    assert_eq!(status, 200, "{runs}");
}

#[test]
fn every_error_response_is_documented_as_a_problem() {
    let workspace = Workspace::new(&[], "");
    let server = workspace.serve(&[]);
    let document = served_document(&server);
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            for status in ["400", "401", "403", "421", "500"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
            if method == "post" {
                for status in ["413", "415"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = response["content"].as_object().unwrap();
                    assert_eq!(
                        content.keys().collect::<Vec<_>>(),
                        ["application/problem+json"],
                        "{method} {path}: {status}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} error responses");
    let stream = &document["paths"]["/api/v1/runs/{run}/events"]["get"]["responses"]["200"]
        ["content"]["text/event-stream"]["schema"];
    assert_eq!(stream["$ref"], "#/components/schemas/RunEvent", "{stream}");
}

#[test]
fn a_whole_number_written_with_a_fraction_is_a_valid_max_unavailable() {
    let workspace = Workspace::new(&[("open.yaml", OPEN_POOL)], "");
    let server = workspace.serve(&[]);
    let (status, plan) = post(
        &server,
        "/api/v1/clusters/open/plans",
        Some(r#"{"max_unavailable": 2.0}"#),
    );
    assert_eq!(status, 200, "{plan}");
    let (status, plan) = post(
        &server,
        "/api/v1/clusters/open/plans",
        Some(r#"{"max_unavailable": 4294967295}"#),
    );
    assert_eq!(status, 200, "the documented maximum: {plan}");
    for bad in ["2.5", "0", "-1", "4294967296", "\"many\""] {
        let (status, problem) = post(
            &server,
            "/api/v1/clusters/open/plans",
            Some(&format!("{{\"max_unavailable\": {bad}}}")),
        );
        assert_eq!(status, 400, "{bad}: {problem}");
    }
}

#[test]
fn a_percentage_of_the_hosts_is_a_valid_max_unavailable() {
    let workspace = Workspace::new(&[("open.yaml", OPEN_POOL)], "");
    let server = workspace.serve(&[]);
    let (status, plan) = post(
        &server,
        "/api/v1/clusters/open/plans",
        Some(r#"{"max_unavailable": "100%"}"#),
    );
    assert_eq!(status, 200, "{plan}");
    assert_eq!(
        plan["summary"]["max_unavailable"], 3,
        "100% of 3 hosts: {plan}"
    );
    for bad in ["\"0%\"", "\"101%\"", "\"5 %\"", "\"%\""] {
        let (status, problem) = post(
            &server,
            "/api/v1/clusters/open/plans",
            Some(&format!("{{\"max_unavailable\": {bad}}}")),
        );
        assert_eq!(status, 400, "{bad}: {problem}");
    }
}

fn scrape(server: &Server, accept: Option<&str>) -> (String, String) {
    let mut request = client().get(server.url("/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.text().unwrap())
}

#[test]
fn metrics_answer_the_format_asked_for() {
    let workspace = Workspace::new(&[("open.yaml", OPEN_POOL)], "");
    let server = workspace.serve(&[]);
    let _ = get(&server, "/api/v1/clusters");
    for accept in [Some("text/plain; version=0.0.4"), Some("*/*"), None] {
        let (content_type, text) = scrape(&server, accept);
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{accept:?}: {content_type}"
        );
        assert!(
            text.contains("# HELP drover_api_requests_total "),
            "{accept:?}: {text}"
        );
        assert!(
            text.contains("# TYPE drover_migrations_total counter"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }
    let (content_type, text) = scrape(
        &server,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn a_body_that_is_not_an_object_is_a_400() {
    let workspace = Workspace::new(&[("open.yaml", OPEN_POOL)], "");
    let server = workspace.serve(&[]);
    for body in ["[null, null]", "[]", "\"text\"", "7"] {
        let (status, problem) = post(
            &server,
            "/api/v1/clusters/open/hosts/n1/upgrade",
            Some(body),
        );
        assert_eq!(status, 400, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
    }
    let (_, runs) = get(&server, "/api/v1/runs");
    assert_eq!(runs["runs"], serde_json::json!([]));
}
