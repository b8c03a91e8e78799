//! A token-less `drover serve` (allowed on loopback) against the requests a web page the
//! operator opens can make: "simple" POSTs without a CORS preflight (`text/plain`, forms), a
//! foreign `Origin`, a foreign `Host` (DNS rebinding), and an over-size body. Each is refused as
//! an RFC 9457 problem and changes nothing; the dashboard's own JSON requests still work.
//!
//! Requests are written by hand on a TCP socket so that every header is exactly as a browser
//! would send it (HTTP clients fill in `Host` and `Content-Type` themselves).

mod serve_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use serve_common::*;

/// Status, headers (lower-cased names) and body of one raw HTTP/1.1 exchange.
struct RawResponse {
    status: u16,
    headers: String,
    body: String,
}

impl RawResponse {
    fn problem(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn is_problem(&self) -> bool {
        self.headers
            .contains("content-type: application/problem+json")
    }
}

fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_string()
}

/// Sends `head` (request line and headers, without the blank line) and `body`.
fn raw(server: &Server, head: &str, body: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(address(server)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!("{head}\r\nConnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    // The server may answer (and close) before reading a refused body: ignore write errors.
    let _ = stream.write_all(&request);
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    RawResponse {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn post_with(
    server: &Server,
    path: &str,
    host: &str,
    extra_headers: &[&str],
    body: &str,
) -> RawResponse {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}",
        body.len()
    );
    for header in extra_headers {
        head.push_str("\r\n");
        head.push_str(header);
    }
    raw(server, &head, body.as_bytes())
}

fn no_runs_started(server: &Server) {
    let (status, runs) = get(server, "/api/v1/runs");
    assert_eq!(status, 200, "{runs}");
    assert_eq!(
        runs["runs"],
        serde_json::json!([]),
        "a refused request started a run"
    );
}

#[test]
fn simple_cross_site_posts_without_json_are_refused_with_415() {
    let workspace = Workspace::new(&[("open.yaml", OPEN_POOL)], "");
    let server = workspace.serve(&[]);
    let host = address(&server);
    for content_type in [
        "Content-Type: text/plain",
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: multipart/form-data; boundary=x",
    ] {
        let response = post_with(
            &server,
            "/api/v1/clusters/open/runs",
            &host,
            &[content_type],
            "{}",
        );
        assert_eq!(response.status, 415, "{content_type}: {}", response.body);
        assert!(response.is_problem(), "{}", response.headers);
        let problem = response.problem();
        assert_eq!(problem["status"], 415);
        assert_eq!(problem["instance"], "/api/v1/clusters/open/runs");
    }
    // A body without any content type is refused too; an empty form POST as well.
    let response = post_with(&server, "/api/v1/clusters/open/runs", &host, &[], "{}");
    assert_eq!(response.status, 415, "{}", response.body);
    let response = post_with(
        &server,
        "/api/v1/clusters/open/runs",
        &host,
        &["Content-Type: application/x-www-form-urlencoded"],
        "",
    );
    assert_eq!(response.status, 415, "{}", response.body);
    no_runs_started(&server);
}

#[test]
fn a_foreign_origin_is_refused_and_the_servers_own_origin_is_not() {
    let workspace = Workspace::new(&[("open.yaml", OPEN_POOL)], "");
    let server = workspace.serve(&[]);
    let host = address(&server);
    for origin in [
        "Origin: http://evil.example",
        "Origin: null",
        "Origin: http://localhost:1",
    ] {
        let response = post_with(
            &server,
            "/api/v1/clusters/open/runs",
            &host,
            &[origin, "Content-Type: application/json"],
            "{}",
        );
        assert_eq!(response.status, 403, "{origin}: {}", response.body);
        assert!(response.is_problem(), "{}", response.headers);
        assert_eq!(
            response.problem()["type"],
            "https://drover.dev/problems/foreign-origin"
        );
    }
    no_runs_started(&server);
    // The dashboard: JSON from its own origin.
    let own_origin = format!("Origin: {}", server.base);
    let response = post_with(
        &server,
        "/api/v1/clusters/open/plans",
        &host,
        &[&own_origin, "Content-Type: application/json; charset=utf-8"],
        "{}",
    );
    assert_eq!(response.status, 200, "{}", response.body);
}

#[test]
fn a_foreign_host_is_not_served_unless_configured() {
    let workspace = Workspace::new(
        &[("open.yaml", OPEN_POOL)],
        "allowed_hosts: [drover.internal]\n",
    );
    let server = workspace.serve(&[]);
    let port = address(&server).rsplit(':').next().unwrap().to_string();
    let get_inventory = |host: &str| {
        raw(
            &server,
            &format!("GET /api/v1/clusters/open/inventory HTTP/1.1\r\nHost: {host}"),
            b"",
        )
    };
    for host in [format!("rebind.evil.example:{port}"), "127.0.0.1:1".into()] {
        let response = get_inventory(&host);
        assert_eq!(response.status, 421, "{host}: {}", response.body);
        assert!(response.is_problem(), "{}", response.headers);
        assert!(
            !response.body.contains("n1"),
            "inventory leaked: {}",
            response.body
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("drover.internal:{port}"),
    ] {
        let response = get_inventory(&host);
        assert_eq!(response.status, 200, "{host}: {}", response.body);
    }
}

#[test]
fn an_over_size_body_gets_413() {
    let workspace = Workspace::new(&[("open.yaml", OPEN_POOL)], "");
    let server = workspace.serve(&[]);
    let host = address(&server);
    let names: Vec<String> = (0..20_000).map(|i| format!("\"h{i}\"")).collect();
    let body = format!("{{\"hosts\": [{}]}}", names.join(","));
    let response = post_with(
        &server,
        "/api/v1/clusters/open/plans",
        &host,
        &["Content-Type: application/json"],
        &body,
    );
    assert_eq!(response.status, 413, "{}", response.body);
    assert!(response.is_problem(), "{}", response.headers);
    // Without a length (chunked), the limit holds while reading.
    let chunk = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let response = raw(
        &server,
        &format!(
            "POST /api/v1/clusters/open/runs HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
        ),
        chunk.as_bytes(),
    );
    assert_eq!(response.status, 413, "{}", response.body);
    no_runs_started(&server);
}

#[test]
fn a_bad_allowed_hosts_entry_is_refused_before_starting() {
    let workspace = Workspace::new(
        &[("open.yaml", OPEN_POOL)],
        "allowed_hosts: [\"http://drover.internal/\"]\n",
    );
    let output = workspace
        .command()
        .args(["serve", "--config"])
        .arg(workspace.path("serve.yaml"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("allowed_hosts[0]"), "{stderr}");
}
